/**
 * Chaining: a task's dependent follows it into the same invocation (InvokeOptions.after). The
 * batch wire format's `after`, the Lambda handler filling a follower's arguments from earlier
 * answers (in this process, on its own thread, with an in-memory store), and the orchestrator
 * against the scripted backend with the capability (test/fakes/scripted-backend.ts), whose
 * turns stand for invocations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyError, ProtocolError, remote, Runtime, TaskCancelledError, TaskError, WorkerCrashedError, type ObjectRef, type VolleyEvent } from 'volley';
import { createHandler } from '../../sdk/aws/handler.js';
import { validateBatchRequest } from '../../sdk/aws/wire.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { PROTOCOL_VERSION, toWire, type TaskEnvelope } from '../../sdk/protocol.js';
import { ObjectRef as Ref } from '../../sdk/ref.js';
import { encodeArgs } from '../../sdk/serialize.js';
import { fast, scriptedBackend } from '../fakes/scripted-backend.js';

/** Registered in this process: the handler tests name them by task name. */
const chainLeaf = remote(function chainLeaf(x: number): number {
  return x;
});
const chainAdd = remote(function chainAdd(a: number, b: number): number {
  if (a < 0 || b < 0) throw new RangeError(`negative input ${a}, ${b}`);
  return a + b;
});
export const chainBig = remote(function chainBig(n: number): Float64Array {
  return new Float64Array(n).fill(2);
});
export const chainLength = remote(function chainLength(a: Float64Array, b: number): number {
  return a.length * a[0]! + b;
});

const RUN = 'job1/AAAAAAAAAAAAAAAAAAAAAA';
const PREFIX = `volley/jobs/${RUN}/`;

/** A task's envelope in wire form; `refs` are ids its arguments name (as refs, in order, after `plain`). */
function task(id: string, fn: string, plain: unknown[], refs: string[] = [], deps: Record<string, unknown> = {}): unknown {
  const args = [...plain, ...refs.map((r) => new Ref(r, {} as never))];
  const env: TaskEnvelope = {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: RUN,
    taskId: id,
    fn,
    args: { kind: 'inline', bytes: encodeArgs(args, () => {}) },
    deps: deps as TaskEnvelope['deps'],
    resultKey: `${PREFIX}${id}`,
    inlineLimit: 1024,
  };
  return toWire(env);
}
const item = (t: unknown, after?: string[]) => ({ task: t, timeoutMs: 5000, memoryMB: 1024, ...(after ? { after } : {}) });
const batch = (...tasks: unknown[]) => JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 6000, tasks }));

describe('the batch wire format: after', () => {
  const p = item(task('p', 'chainLeaf', [1]));
  const q = item(task('q', 'chainLeaf', [2]));

  it('accepts a follower naming earlier tasks of its batch', () => {
    const req = validateBatchRequest(batch(p, q, item(task('f', 'chainAdd', [], ['p', 'q']), ['p', 'q'])));
    assert.deepEqual(req.tasks[2]!.after, ['p', 'q']);
  });

  it('refuses an after that names no earlier task, names one twice, or one its deps already give', () => {
    const bad: Array<[unknown, RegExp]> = [
      [batch(item(task('f', 'chainAdd', [], ['p']), ['p']), p), /names "p", which is not the id of an earlier task/],
      [batch(p, item(task('f', 'chainAdd', [], ['f']), ['f'])), /names "f", which is not the id of an earlier task/],
      [batch(p, item(task('f', 'chainAdd', [], ['x']), ['x'])), /not the id of an earlier task/],
      [batch(p, item(task('f', 'chainAdd', [], ['p', 'p']), ['p', 'p'])), /names "p" twice/],
      [batch(p, item(task('f', 'chainAdd', [], ['p'], { p: { kind: 'inline', bytes: { $b64: '' } } }), ['p'])), /which the task's deps already give/],
      [batch(p, item(task('f', 'chainAdd', [], ['p']), [])), /after must be a list of 1 to/],
      [batch(p, { ...item(task('f', 'chainAdd', [], ['p'])), after: 'p' }), /after must be a list of 1 to/],
      [batch(p, item(task('f', 'chainAdd', [], ['p']), [7 as never])), /not the id of an earlier task/],
    ];
    for (const [x, re] of bad)
      assert.throws(
        () => validateBatchRequest(x),
        (e: unknown) => e instanceof ProtocolError && re.test(e.message),
        JSON.stringify(x).slice(0, 160),
      );
  });
});

describe('the Lambda handler runs a follower with the answers of earlier tasks of its batch', () => {
  const run = async (req: unknown, store = new MemoryStore()) => {
    const answer = (await createHandler({ VOLLEY_BUCKET: 'b' }, () => store)(req)) as { kind: string; results: Array<Record<string, unknown>> };
    return answer;
  };
  const value = (r: Record<string, unknown>) => r.kind;

  it('fills inline and stored results in: the follower computes from them', async () => {
    const store = new MemoryStore();
    // 200 doubles (1,600 bytes) are over the envelope's inline limit of 1,024: stored.
    const a = await run(batch(item(task('big', 'chainBig', [200])), item(task('one', 'chainLeaf', [5])), item(task('f', 'chainLength', [], ['big', 'one']), ['big', 'one'])), store);
    assert.deepEqual(a.results.map(value), ['stored', 'value', 'value']);
    assert.equal(a.results[0]!.key, `${PREFIX}big`);
    const f = a.results[2]!.bytes as { $b64: string };
    // 200 * 2 + 5, encoded by the worker: decode it as the driver would.
    const { decode } = await import('../../sdk/serialize.js');
    assert.equal(decode(new Uint8Array(Buffer.from(f.$b64, 'base64'))), 405);
  });

  it('does not start a follower whose producer failed, nor one whose producer was not started', async () => {
    const a = await run(
      batch(item(task('bad', 'chainAdd', [-1, 1])), item(task('f', 'chainAdd', [1], ['bad']), ['bad']), item(task('g', 'chainAdd', [1], ['f']), ['f']), item(task('ok', 'chainLeaf', [3]))),
    );
    assert.deepEqual(a.results.map(value), ['error', 'notStarted', 'notStarted', 'value']);
  });

  it('refuses a batch whose follower names a later task, as any malformed batch', async () => {
    const a = (await createHandler({ VOLLEY_BUCKET: 'b' }, () => new MemoryStore())(batch(item(task('f', 'chainAdd', [1], ['p']), ['p']), item(task('p', 'chainLeaf', [1]))))) as Record<
      string,
      unknown
    >;
    assert.equal(a.kind, 'error');
    assert.match(String((a.error as { message: string }).message), /not the id of an earlier task/);
  });
});

/** A sum tree over `lo..hi-1` of chainLeaf and chainAdd tasks, submitted depth-first (a task after its arguments). */
function tree(rt: Runtime, lo: number, hi: number, refs: ObjectRef<number>[] = []): ObjectRef<number> {
  const r = hi - lo === 1 ? rt.remote(chainLeaf, lo) : rt.remote(chainAdd, tree(rt, lo, (lo + hi) >>> 1, refs), tree(rt, (lo + hi) >>> 1, hi, refs));
  refs.push(r);
  return r;
}

describe('the orchestrator hands dependents over with their producers', () => {
  it('runs a whole tree submitted in one turn as one invocation, each task once, its dependents as followers', async () => {
    const f = scriptedBackend(undefined, undefined, { chains: () => true });
    const rt = new Runtime(fast, { backend: f.backend });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    try {
      await rt.ready();
      const refs: ObjectRef<number>[] = [];
      assert.equal(await rt.get(tree(rt, 0, 16, refs)), 120);
      assert.equal(f.invocations.count, 1, 'one invocation: no round trip per level');
      assert.equal(f.invocations.followers, 15);
      assert.equal(f.invoked.length, 31, 'each task ran once: a follower is not dispatched again when its arguments settle');
      assert.deepEqual(await rt.get(refs.slice(0, 3)), [0, 1, 1], 'intermediate results are there');
      assert.equal(events.filter((e) => e.type === 'dispatched').length, 31);
    } finally {
      await rt.shutdown();
    }
  });

  it('without the capability (or for functions it does not chain), runs one invocation per level', async () => {
    const f = scriptedBackend(undefined, undefined, { chains: (fn) => fn !== 'chainAdd' });
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      assert.equal(await rt.get(tree(rt, 0, 16)), 120);
      assert.equal(f.invocations.count, 5);
      assert.equal(f.invocations.followers, 0);
    } finally {
      await rt.shutdown();
    }
  });

  it('runs a follower whose producer failed once after the producer ran again, once, with no event for the hand-back', async () => {
    let target = '';
    const f = scriptedBackend(
      (env) => {
        if (env.taskId === target && env.attempt === undefined) throw new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
      },
      undefined,
      { chains: () => true },
    );
    const rt = new Runtime(fast, { backend: f.backend });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    try {
      await rt.ready();
      const a = rt.remote(chainLeaf, 4);
      target = a.id;
      const b = rt.remote(chainLeaf, 5);
      const sum = rt.remote(chainAdd, a, b);
      const top = rt.remote(chainAdd, sum, b);
      assert.equal(await rt.get(top), 14);
      assert.deepEqual(
        f.invoked.map((i) => `${i.taskId === a.id ? 'a' : i.taskId === b.id ? 'b' : i.taskId === sum.id ? 'sum' : 'top'}#${i.attempt}`),
        ['a#1', 'b#1', 'a#2', 'sum#1', 'top#1'],
        'the followers ran once each, after the retry of their producer',
      );
      assert.equal(f.invocations.followers, 2, 'after the retry of a, sum and top followed it into its invocation');
      assert.equal(rt.faultCounts.retries, 1);
      const of = (id: string, type: VolleyEvent['type']) => events.filter((e) => e.type === type && 'taskId' in e && e.taskId === id).length;
      assert.equal(of(sum.id, 'dispatched'), 1, 'handed back (NOT_CHAINED): not a run, no event');
      assert.equal(of(top.id, 'dispatched'), 1);
      assert.equal(of(a.id, 'dispatched'), 2);
    } finally {
      await rt.shutdown();
    }
  });

  it('fails a follower with DependencyError when its producer fails for good; the follower never runs', async () => {
    const f = scriptedBackend(undefined, undefined, { chains: () => true });
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const bad = rt.remote(chainAdd, -1, 2);
      const next = rt.remote(chainAdd, bad, 1);
      const last = rt.remote(chainAdd, next, 1);
      await assert.rejects(rt.get(bad), (e: unknown) => e instanceof TaskError && e.remote?.name === 'RangeError');
      await assert.rejects(rt.get(next), (e: unknown) => e instanceof DependencyError);
      await assert.rejects(rt.get(last), (e: unknown) => e instanceof DependencyError);
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [bad.id],
      );
    } finally {
      await rt.shutdown();
    }
  });

  it('never starts a follower cancelled before its invocation left; its producer runs', async () => {
    const f = scriptedBackend(undefined, undefined, { chains: () => true });
    const rt = new Runtime(fast, { backend: f.backend });
    try {
      await rt.ready();
      const a = rt.remote(chainLeaf, 1);
      const follower = rt.remote(chainAdd, a, 1);
      const after = rt.remote(chainAdd, follower, 1);
      rt.cancel(follower);
      await assert.rejects(rt.get(follower), (e: unknown) => e instanceof TaskCancelledError);
      await assert.rejects(rt.get(after), (e: unknown) => e instanceof DependencyError);
      assert.equal(await rt.get(a), 1);
      assert.deepEqual(
        f.invoked.map((i) => i.taskId),
        [a.id],
      );
    } finally {
      await rt.shutdown();
    }
  });
});
