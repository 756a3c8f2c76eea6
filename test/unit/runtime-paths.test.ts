/**
 * The orchestrator's paths besides failures (dag.test.ts has those): shutdown, what running
 * tasks ask of the driver (nested tasks, their puts, waits and cancels), results that hold
 * refs, dispatch and its concurrency bound, and the events of a run. Tasks run in this
 * process through the real worker-side code (`executeTask`) and the real task sessions: on the
 * embedded runtime a ThreadSession whose channel calls the runtime's host directly (what the
 * pool forwards from a thread), on the Lambda path a Runtime of the running task's own, as the
 * Lambda handler makes it. Nothing here waits on a clock: held runs and counts decide.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  DependencyError,
  ObjectLostError,
  ObjectStoreError,
  ProtocolError,
  Runtime,
  TaskCancelledError,
  TaskError,
  UsageError,
  WorkerCrashedError,
  type ObjectRef,
  get,
  put,
  remote,
  wait,
  type VolleyEvent,
} from 'volley';
import type { Backend, TaskHost } from '../../sdk/backend.js';
import { markWorker } from '../../sdk/context.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { ThreadSession } from '../../sdk/local/thread-session.js';
import { hostLink } from '../fakes/thread-link.js';
import type { ObjectStore } from '../../sdk/backend.js';
import { ACTOR_OP_TASK, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';
import { decode, encodeArgs } from '../../sdk/serialize.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { childIdPrefix, useAsyncTaskScope, type TaskSession } from '../../sdk/worker/nested.js';
import { fast, scriptedBackend, turns } from '../fakes/scripted-backend.js';
import { describe as describeValue, failIfNegative, filled, inc } from '../fixtures/tasks.js';

// This process plays the workers too: a running task's .remote()/get/put/wait reach its session.
markWorker();
useAsyncTaskScope();

const sq = remote(function sq(x: number): number {
  return x * x;
});
const fails = remote(function fails(why: string): never {
  throw new RangeError(`fails: ${why}`);
});
const sumSquares = remote(async function sumSquares(n: number): Promise<number> {
  const values = await get(Array.from({ length: n }, (_, i) => sq.remote(i)));
  return values.reduce((a, b) => a + b, 0);
});
const refsOf = remote(function refsOf(n: number) {
  return { squares: Array.from({ length: n }, (_, i) => sq.remote(i)), big: put(new Float64Array(1000).fill(2)) };
});
const total = remote(function total(v: { squares: number[]; big: Float64Array }): number {
  return v.squares.reduce((a, b) => a + b, 0) + v.big.reduce((a, b) => a + b, 0);
});
const getsFailure = remote(async function getsFailure(): Promise<number> {
  return get(fails.remote('in the child'));
});
const waitsForOne = remote(async function waitsForOne(n: number): Promise<string> {
  const { ready, pending } = await wait(
    Array.from({ length: n }, (_, i) => sq.remote(i)),
    { numReturns: 1 },
  );
  return `${ready.length}/${pending.length}`;
});
/** Starts a chain of tasks `n` deep (named apart from the constant: inside, `deep` is the remote one). */
const deep = remote(async function deepLink(n: number): Promise<number> {
  return n === 0 ? 0 : 1 + (await get(deep.remote(n - 1)));
});
/** Makes two large objects and returns a ref to one of them. */
const keepsOne = remote(function keepsOne(): { kept: unknown } {
  put(new Float64Array(500).fill(1));
  return { kept: put(new Float64Array(500).fill(3)) };
});

/** Gets the value of a child's result that holds refs. */
const getsRefs = remote(async function getsRefs(n: number): Promise<number> {
  const v = (await get(refsOf.remote(n))) as unknown as { squares: number[]; big: Float64Array };
  return v.squares.reduce((a, b) => a + b, 0) + v.big.reduce((a, b) => a + b, 0);
});
/** Waits in two gets at once: one for a child held at the gate `name`, one for a quick child. */
const twoGets = remote(async function twoGets(name: string): Promise<string> {
  const quick = get(sq.remote(2));
  const slow = get(held.remote(name));
  const q = await quick;
  const g = gate(`${name}:quick`);
  g.reached = true;
  return `${q} ${await slow}`;
});

/** Test-controlled gates a task can wait at, by name. */
const gates = new Map<string, { open: () => void; opened: Promise<void>; reached: boolean }>();
function gate(name: string) {
  let g = gates.get(name);
  if (!g) {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    g = { open, opened, reached: false };
    gates.set(name, g);
  }
  return g;
}
/** Gets a child's value, then waits at the gate `name` before returning it. */
const thenWaits = remote(async function thenWaits(x: number, name: string): Promise<number> {
  const v = await get(sq.remote(x));
  const g = gate(name);
  g.reached = true;
  await g.opened;
  return v;
});
/** Waits at the gate `name`. */
const held = remote(async function held(name: string): Promise<string> {
  const g = gate(name);
  g.reached = true;
  await g.opened;
  return name;
});

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 2000 && !cond(); i++) await turns(1);
  assert.ok(cond(), what);
};

/** Live timers of this process (a retry's backoff is one). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/**
 * `inc(1)` whose first run crashed, waiting out a ten-minute retry backoff; `before` is the
 * count of live timers before it was submitted.
 */
async function backingOff() {
  const f = scriptedBackend((env, nth) => {
    if (nth === 1) throw new WorkerCrashedError(env.fn, env.taskId, 'exit code 137');
  });
  const rt = new Runtime({ retryBaseDelayMs: 600_000, retryMaxDelayMs: 600_000 }, { backend: f.backend });
  let retrying = 0;
  rt.onEvent((e) => {
    if (e.type === 'retrying') retrying++;
  });
  const before = timers();
  const ref = rt.remote(inc, 1);
  await until(() => retrying === 1, 'the first run failed and a retry waits');
  return { f, rt, ref, before };
}

/** The embedded runtime's worker side in this process: each task's ThreadSession talks to the runtime's host directly. */
function threaded(opts: { maxTaskDepth?: number; script?: (env: TaskEnvelope) => Promise<void> | void } = {}) {
  const store = new MemoryStore();
  let host: TaskHost | undefined;
  const invoked: string[] = [];
  const envs = new Map<string, TaskEnvelope>();
  const cancels: Array<[string, boolean]> = [];
  // The worker's own depth check is out of the way: the driver's is the one under test.
  const link = hostLink(store, () => host, opts.maxTaskDepth ?? 100);
  const backend: Backend = {
    name: 'threaded',
    keyPrefix: 'volley/',
    maxConcurrency: 100,
    store,
    invoker: {
      serve(h: TaskHost) {
        host = h;
      },
      async invoke(env: TaskEnvelope): Promise<ResultEnvelope> {
        invoked.push(env.fn);
        envs.set(env.taskId, env);
        await opts.script?.(env);
        return executeTask(structuredClone(env), { store, keyPrefix: 'volley/', session: (e) => new ThreadSession(e, link) });
      },
      cancel(taskId: string, force: boolean) {
        cancels.push([taskId, force]);
      },
      async close() {},
    },
  };
  return { backend, store, invoked, envs, cancels, host: () => host! };
}

/** The Lambda path in this process: a running task's session is a Runtime of its own (ids under the task's id) on the same store, which may not delete. */
function lambdaLike(rewrite?: (res: ResultEnvelope) => ResultEnvelope) {
  const store = new MemoryStore();
  const invoked: string[] = [];
  const invoker = {
    async invoke(env: TaskEnvelope): Promise<ResultEnvelope> {
      invoked.push(env.fn);
      const session = (e: TaskEnvelope) =>
        new Runtime(
          { jobId: e.job.slice(0, e.job.indexOf('/')), inlineThresholdBytes: e.inlineLimit },
          { backend: workerBackend, nest: { idPrefix: childIdPrefix(e), depth: e.depth ?? 0, runId: e.job.slice(e.job.indexOf('/') + 1) } },
        ) as unknown as TaskSession;
      const res = await executeTask(structuredClone(env), { store, keyPrefix: 'volley/', session });
      return rewrite ? rewrite(res) : res;
    },
    async close() {},
  };
  const noDelete: ObjectStore = { put: (k, b) => store.put(k, b), get: (k) => store.get(k), deletePrefix: () => Promise.reject(new Error('a worker cannot delete')) };
  const workerBackend: Backend = { name: 'lambda-task', keyPrefix: 'volley/', maxConcurrency: 100, store: noDelete, invoker };
  const backend: Backend = { name: 'lambda-like', keyPrefix: 'volley/', maxConcurrency: 100, store, invoker };
  return { backend, store, invoked };
}

const present = (store: MemoryStore, key: string) => {
  try {
    store.getSync(key);
    return true;
  } catch {
    return false;
  }
};

describe('shutdown', () => {
  it("stops the workers, then removes this run's objects and nothing else, then closes the backend; a second call does nothing", async () => {
    const f = scriptedBackend();
    const log: string[] = [];
    const { invoker, store } = f.backend;
    const close = invoker.close.bind(invoker);
    invoker.close = async () => {
      log.push('invoker.close');
      await close();
    };
    const removePrefix = store.deletePrefix.bind(store);
    store.deletePrefix = async (p: string) => {
      log.push(`deletePrefix ${p}`);
      return removePrefix(p);
    };
    f.backend.close = async () => {
      log.push('backend.close');
    };
    await f.store.put('volley/jobs/another-job/x', new Uint8Array(8));
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.remote(filled, 100, 1);
    await rt.wait([data]);
    const key = `volley/jobs/${rt.jobId}/${rt.runId}/${data.id}`;
    assert.equal(present(f.store, key), true);
    await rt.shutdown();
    assert.deepEqual(log, ['invoker.close', `deletePrefix volley/jobs/${rt.jobId}/${rt.runId}/`, 'backend.close']);
    assert.equal(present(f.store, key), false);
    assert.equal(present(f.store, 'volley/jobs/another-job/x'), true);
    assert.equal(rt.isShutdown, true);
    await rt.shutdown();
    assert.equal(log.length, 3, 'a second shutdown does nothing');
    assert.throws(
      () => rt.remote(inc, 1),
      (e: unknown) => e instanceof UsageError && e.message === 'inc.remote() was called after shutdown(); call init() (or create a new Runtime) first',
    );
    assert.throws(
      () => rt.put(1),
      (e: unknown) => e instanceof UsageError && /^put\(\) was called after shutdown\(\)/.test(e.message),
    );
    await assert.rejects(rt.get(data), (e: unknown) => e instanceof UsageError && e.message === `get(): ref ${data.id} belongs to a runtime that was shut down; its value is gone`);
  });

  it('a store that does not answer holds shutdown only until shutdownTimeoutMs, which then names what it left', async () => {
    const f = scriptedBackend();
    let closed = false;
    f.backend.store.deletePrefix = () => new Promise<number>(() => {});
    f.backend.close = async () => {
      closed = true;
    };
    const rt = new Runtime({ ...fast, shutdownTimeoutMs: 10, jobId: 'stalled-job' }, { backend: f.backend });
    assert.equal(await rt.get(rt.remote(inc, 1)), 2);
    await assert.rejects(rt.shutdown(), (e: unknown) => {
      assert.ok(e instanceof ObjectStoreError);
      assert.equal(
        e.message,
        `shutdown() could not remove the job's objects under volley/jobs/stalled-job/${rt.runId}/ within 10 ms (init({ shutdownTimeoutMs })): the store did not answer; they stay until the bucket's lifecycle rule expires them, or run npx volley cleanup --job stalled-job`,
      );
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal(closed, true, 'the backend is closed all the same');
  });

  it("a task waiting out a retry's backoff fails at shutdown, and its timer does not outlive the runtime", async () => {
    const { f, rt, ref, before } = await backingOff();
    assert.equal(timers(), before + 1, "the retry's timer");
    const value = rt.get(ref);
    await rt.shutdown();
    await assert.rejects(value, (e: unknown) => e instanceof UsageError && e.code === 'SHUT_DOWN' && e.message === 'the runtime was shut down before this task finished');
    assert.equal(timers(), before, 'the timer was cleared');
    assert.deepEqual(f.fns(), ['inc#1']);
  });
});

describe('shutdown before the backend is up', () => {
  it('closes the backend it was given, removes nothing, and fails what was submitted', async () => {
    const f = scriptedBackend();
    const log: string[] = [];
    f.backend.invoker.close = async () => {
      log.push('invoker.close');
    };
    f.backend.store.deletePrefix = async () => {
      log.push('deletePrefix');
      return 0;
    };
    f.backend.close = async () => {
      log.push('backend.close');
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(inc, 1);
    const value = rt.get(ref);
    await rt.shutdown();
    await assert.rejects(value, (e: unknown) => e instanceof UsageError && e.code === 'SHUT_DOWN');
    await assert.rejects(rt.ready(), (e: unknown) => e instanceof UsageError && e.message === 'the runtime was shut down while starting');
    await turns();
    assert.deepEqual(log, ['invoker.close', 'backend.close']);
    assert.deepEqual(f.fns(), [], 'nothing ran');
  });
});

describe('tasks that start tasks, on the embedded runtime', () => {
  it('a task gets the values of the tasks it started; while it waits it leaves its slot to them', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: w.backend });
    assert.equal(await rt.get(rt.remote(sumSquares, 4)), 0 + 1 + 4 + 9);
    assert.deepEqual(w.invoked, ['sumSquares', 'sq', 'sq', 'sq', 'sq']);
    await rt.shutdown();
  });

  it('once its wait is over the task takes its slot again: nothing else runs beside it under maxConcurrency 1', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: w.backend });
    const parent = rt.remote(thenWaits, 3, 'slot');
    await until(() => gate('slot').reached, 'the parent got its child and waits at its gate');
    const other = rt.remote(sq, 5);
    await turns();
    assert.deepEqual(w.invoked, ['thenWaits', 'sq'], 'the second sq waits for the slot');
    gate('slot').open();
    assert.deepEqual(await rt.get([parent, other]), [9, 25]);
    assert.deepEqual(w.invoked, ['thenWaits', 'sq', 'sq']);
    await rt.shutdown();
  });

  it("a child's failure reaches the task that gets it as the child's error; wait() inside a task counts ready refs", async () => {
    const w = threaded();
    const rt = new Runtime(fast, { backend: w.backend });
    await assert.rejects(rt.get(rt.remote(getsFailure)), (e: unknown) => {
      assert.ok(e instanceof TaskError);
      assert.match(e.message, /fails: in the child/);
      assert.equal(e.functionName, 'getsFailure');
      assert.ok(e.cause instanceof TaskError && e.cause.functionName === 'fails', 'the child is the cause');
      return true;
    });
    assert.equal(await rt.get(rt.remote(waitsForOne, 3)), '1/2');
    await rt.shutdown();
  });

  it('a result that holds refs reads their values, and passes them on as an argument', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: w.backend });
    const made = rt.remote(refsOf, 3);
    const v = (await rt.get(made)) as unknown as { squares: number[]; big: Float64Array };
    assert.deepEqual(v.squares, [0, 1, 4]);
    assert.equal(v.big.length, 1000);
    assert.equal(
      v.big.reduce((a, b) => a + b, 0),
      2000,
    );
    assert.equal(await rt.get(rt.remote(total, made as never)), 5 + 2000);
    await rt.shutdown();
  });

  it('a task gets the value of a child whose result holds refs', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: w.backend });
    assert.equal(await rt.get(rt.remote(getsRefs, 3)), 5 + 2000);
    await rt.shutdown();
  });

  it('a task waiting in two gets at once takes its slot back only when both have ended', async () => {
    const w = threaded();
    // Two slots: the held child takes one, the waiting parent none, so one is left.
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: w.backend });
    const parent = rt.remote(twoGets, 'two');
    await until(() => gate('two:quick').reached && gate('two').reached, 'one get ended, the other child runs');
    const other = rt.remote(sq, 7);
    assert.equal(await rt.get(other), 49, 'the parent still waits: its slot is free');
    gate('two').open();
    assert.equal(await rt.get(parent), '4 two');
    await rt.shutdown();
  });

  it("the worker's own depth check uses the depth the driver sent", async () => {
    const w = threaded({ maxTaskDepth: 2 });
    const rt = new Runtime(fast, { backend: w.backend });
    assert.equal(await rt.get(rt.remote(deep, 2)), 2);
    await assert.rejects(rt.get(rt.remote(deep, 3)), (e: unknown) => e instanceof TaskError && /TaskDepthError: deepLink\.remote\(\) would start a task at nesting depth 3/.test(e.message));
    assert.equal(w.invoked.length, 3 + 3, 'the refused start never reached the driver');
    await rt.shutdown();
  });

  it('what a task made and did not return is freed when it finishes; what it returned stays', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: w.backend });
    const ref = rt.remote(keepsOne);
    const out = (await rt.get(ref)) as unknown as { kept: Float64Array };
    assert.equal(out.kept[0], 3);
    const prefix = `volley/jobs/${rt.jobId}/${rt.runId}/${ref.id}`;
    await until(() => !present(w.store, `${prefix}.1`), 'the dropped object is deleted');
    assert.equal(present(w.store, `${prefix}.2`), true, 'the returned one is kept');
    await rt.shutdown();
  });

  it('refuses a start deeper than maxTaskDepth with a TaskDepthError the task sees', async () => {
    const w = threaded();
    const rt = new Runtime({ ...fast, maxTaskDepth: 2 }, { backend: w.backend });
    assert.equal(await rt.get(rt.remote(deep, 2)), 2);
    await assert.rejects(rt.get(rt.remote(deep, 3)), (e: unknown) => {
      assert.ok(e instanceof TaskError);
      assert.match(e.message, /failed: TaskDepthError: deepLink\.remote\(\) would start a task at nesting depth 3, deeper than maxTaskDepth \(2\)/);
      return true;
    });
    await rt.shutdown();
  });

  it("what the host takes from a running task: bad options, unknown refs, repeated ids and others' tasks are refused", async () => {
    const w = threaded();
    const rt = new Runtime(fast, { backend: w.backend });
    const outcomes = new Map<string, string>();
    rt.onEvent((e) => {
      if (e.type === 'finished') outcomes.set(e.taskId, e.outcome);
    });
    const parent = rt.remote(held, 'host');
    await until(() => gate('host').reached, 'the parent runs');
    const host = w.host();
    const p = parent.id;
    const args = (...a: unknown[]) => encodeArgs(a, () => {});
    const states = async (ids: string[]) => host.await(p, { refs: ids, numReturns: ids.length, payloads: true });

    host.submit(p, { id: `${p}.1`, fn: 'sq', options: { maxRetries: 'x' as never }, args: args(2), deps: [] });
    host.submit(p, { id: `${p}.2`, fn: 'sq', options: {}, args: args(3), deps: ['no-such-ref'] });
    host.submit(p, { id: `${p}.3`, fn: 'sq', options: {}, args: args(4), deps: [] });
    host.submit(p, { id: `${p}.3`, fn: 'sq', options: {}, args: args(5), deps: [] });
    host.put(p, `${p}.4`, args(7));
    host.put(p, `${p}.4`, args(8));
    host.submit(p, { id: `${p}.10`, fn: 'sq', options: { timeoutMs: -1 }, args: args(2), deps: ['no-such-ref'] });
    host.submit(p, { id: `${p}.8`, fn: ACTOR_OP_TASK, options: {}, args: args(1, 2), deps: [] });
    let reply = await states([`${p}.1`, `${p}.2`, `${p}.3`, `${p}.4`]);
    assert.deepEqual(reply.states, [2, 2, 1, 1]);
    assert.match(reply.errors![0]!.message, /^sq\.remote\(\): .*maxRetries/);
    assert.equal(reply.errors![1]!.message, 'sq.remote() was given ref no-such-ref, whose object is gone: a ref made inside a task lives until that task returns, unless the task returns it');
    assert.equal(reply.errors![2], undefined);
    assert.deepEqual(reply.contained, [undefined, undefined, undefined, undefined]);
    assert.equal(w.invoked.filter((f) => f === 'sq').length, 1, 'a repeated id starts nothing');
    assert.equal(reply.payloads![2]!.kind, 'inline');
    const put7 = reply.payloads![3]!;
    assert.ok(put7.kind === 'inline');
    assert.deepEqual(decode(put7.bytes), [7], 'a repeated put keeps the first value');
    reply = await states([`${p}.10`]);
    assert.match(reply.errors![0]!.message, /^sq\.remote\(\): .*timeoutMs/, 'the first problem found is the one reported');
    reply = await states([`${p}.8`]);
    assert.deepEqual(reply.states, [2]);
    assert.equal(reply.errors![0]!.message, 'an actor operation is [op, args]');
    reply = await host.await(p, { refs: [`${p}.3`], numReturns: 1, payloads: false });
    assert.deepEqual(reply.states, [1]);
    assert.equal(reply.payloads, undefined, 'wait() gets states only');

    await assert.rejects(host.await(p, { refs: [`${p}.3`, 'gone'], numReturns: 2, payloads: true }), (e: unknown) => {
      return e instanceof UsageError && e.message === 'ref gone is gone: a ref made inside a task lives until that task returns, unless the task returns it';
    });
    await assert.rejects(host.await(p, { refs: ['gone'], numReturns: 1, payloads: false }), (e: unknown) => e instanceof UsageError && /^ref gone is gone/.test(e.message));
    await assert.rejects(host.await('not-a-task', { refs: [], numReturns: 0, payloads: true }), (e: unknown) => {
      return e instanceof ProtocolError && e.message === 'task not-a-task asked to wait for refs but is not running';
    });

    // A running task may cancel the tasks it started, and nothing else.
    const other = rt.remote(held, 'other');
    host.submit(p, { id: `${p}.5`, fn: 'held', options: {}, args: args('child'), deps: [] });
    await until(() => gate('other').reached && gate('child').reached, 'both run');
    host.cancel(p, other.id, false, true);
    host.cancel(p, `${p}.5`, true, true);
    reply = await states([`${p}.5`]);
    assert.deepEqual(reply.states, [2]);
    assert.equal(reply.errors![0]!.name, 'TaskCancelledError');
    gate('other').open();
    gate('child').open();
    assert.equal(await rt.get(other), 'other', 'not its child: not cancelled');

    // A child still running when its parent returns: the parent can no longer cancel it.
    host.submit(p, { id: `${p}.9`, fn: 'held', options: {}, args: args('late child'), deps: [] });
    await until(() => gate('late child').reached, 'the late child runs');
    gate('host').open();
    assert.equal(await rt.get(parent), 'host');
    host.cancel(p, `${p}.9`, true, true);
    gate('late child').open();
    // The parent has finished: what it sends now is dropped.
    host.submit(p, { id: `${p}.6`, fn: 'sq', options: {}, args: args(6), deps: [] });
    host.put(p, `${p}.7`, args(1));
    await turns();
    assert.deepEqual(w.invoked, ['held', 'sq', 'held', 'held', 'held']);
    assert.deepEqual(w.cancels, [[`${p}.5`, true]], 'the finished parent could not cancel its late child');
    assert.equal(outcomes.get(`${p}.9`), 'ok');
    await assert.rejects(states([`${p}.6`]), (e: unknown) => e instanceof ProtocolError && /is not running/.test(e.message));
    await rt.shutdown();
  });
});

describe('a task cancelled while its function runs on', () => {
  it('is no longer served: what it starts, puts or waits for is refused', async () => {
    const w = threaded();
    const rt = new Runtime(fast, { backend: w.backend });
    const parent = rt.remote(held, 'cancelled parent');
    await until(() => gate('cancelled parent').reached, 'the parent runs');
    rt.cancel(parent);
    await assert.rejects(rt.get(parent), TaskCancelledError);
    const host = w.host();
    const p = parent.id;
    host.submit(p, { id: `${p}.1`, fn: 'sq', options: {}, args: encodeArgs([2], () => {}), deps: [] });
    host.put(
      p,
      `${p}.2`,
      encodeArgs([1], () => {}),
    );
    await assert.rejects(host.await(p, { refs: [], numReturns: 0, payloads: true }), (e: unknown) => e instanceof ProtocolError && /is not running/.test(e.message));
    await turns();
    assert.deepEqual(w.invoked, ['held'], 'nothing it started ran');
    gate('cancelled parent').open();
    await rt.shutdown();
  });
});

describe('results that hold refs, on the Lambda path', () => {
  it("a result's refs made by the task's own session are adopted: their values come back, and pass on as an argument", async () => {
    const l = lambdaLike();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: l.backend });
    const made = rt.remote(refsOf, 2);
    const v = (await rt.get(made)) as unknown as { squares: number[]; big: Float64Array };
    assert.deepEqual(v.squares, [0, 1]);
    assert.equal(v.big[999], 2);
    assert.equal(await rt.get(rt.remote(total, made as never)), 1 + 2000);
    assert.deepEqual(l.invoked, ['refsOf', 'sq', 'sq', 'total']);
    await rt.shutdown();
  });

  it("a result holding a ref stored outside this run's prefix is refused", async () => {
    const l = lambdaLike((res) => {
      if (res.kind === 'error' || !res.refs) return res;
      const refs = { ...res.refs };
      for (const id of Object.keys(refs)) if (refs[id]!.kind === 'stored') refs[id] = { kind: 'stored', key: `volley/jobs/elsewhere/${'x'.repeat(300)}`, size: 8 };
      return { ...res, refs };
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: l.backend });
    const made = rt.remote(refsOf.options({ maxRetries: 0 }), 1);
    await assert.rejects(rt.get(made), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.match(
        (e as Error).message,
        new RegExp(
          `the result of task ${made.id} holds ref ${made.id}\\.\\d+ stored at volley/jobs/elsewhere/${'x'.repeat(200 - 'volley/jobs/elsewhere/'.length)}, outside this run \\(volley/jobs/${rt.jobId}/${rt.runId}/\\)`,
        ),
      );
      return true;
    });
    await rt.shutdown();
  });
});

describe('dispatch', () => {
  it('a queued task whose argument is lost meanwhile waits for its rebuild, or fails if it cannot be rebuilt, without running', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64, maxConcurrency: 1 }, { backend: f.backend });
    const data = rt.remote(filled, 100, 2);
    const stored = rt.put(new Float64Array(100).fill(1));
    await rt.wait([data]);
    // The slot is taken: both readers wait in the queue with their arguments ready.
    let releaseBlocker!: () => void;
    const blocker = new Promise<void>((r) => (releaseBlocker = r));
    f.backend.invoker.invoke = ((invoke) => async (env: TaskEnvelope, o) => {
      if (env.fn === 'inc') await blocker;
      return invoke(env, o);
    })(f.backend.invoker.invoke.bind(f.backend.invoker));
    const busy = rt.remote(inc, 1);
    await turns();
    const one = rt.remote(describeValue, data);
    const two = rt.remote(describeValue, stored);
    await f.store.deletePrefix('volley/');
    // get() finds both objects missing: the task's result is rebuilt, the put() value cannot be.
    const rebuilt = rt.get(data);
    await assert.rejects(rt.get(stored), ObjectLostError);
    releaseBlocker();
    assert.equal((await rebuilt).length, 100);
    assert.equal(await rt.get(one), 'Float64Array(100) sum=200');
    await assert.rejects(rt.get(two), (e: unknown) => e instanceof DependencyError && e.cause instanceof ObjectLostError);
    assert.equal(await rt.get(busy), 2);
    assert.deepEqual(f.fns(), ['filled#1', 'inc#1', 'filled#2', 'describeValue#1'], 'the reader of the lost put() never ran; the other ran once, after the rebuild');
    await rt.shutdown();
  });

  it('an invoker that takes several tasks per slot gets that many times maxConcurrency', async () => {
    const releases: Array<() => void> = [];
    let free = false;
    const f = scriptedBackend(async () => {
      if (!free) await new Promise<void>((r) => releases.push(r));
    });
    f.backend.invoker.tasksPerSlot = () => 3;
    const rt = new Runtime({ ...fast, maxConcurrency: 2 }, { backend: f.backend });
    const refs = Array.from({ length: 8 }, (_, i) => rt.remote(inc, i));
    await turns();
    assert.equal(f.invoked.length, 6);
    releases.shift()!();
    await until(() => f.invoked.length === 7, 'one more once one is done');
    await turns();
    assert.equal(f.invoked.length, 7);
    free = true;
    for (const r of releases.splice(0)) r();
    assert.deepEqual(await rt.get(refs), [1, 2, 3, 4, 5, 6, 7, 8]);
    await rt.shutdown();
  });

  it('runs every task of a queue longer than its compaction threshold, in order', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    const n = 1100;
    const refs = Array.from({ length: n }, (_, i) => rt.remote(inc, i));
    const values = await rt.get(refs);
    assert.equal(values.length, n);
    assert.ok(values.every((v, i) => v === i + 1));
    assert.deepEqual(
      f.invoked.map((i) => i.taskId),
      refs.map((r) => r.id),
    );
    await rt.shutdown();
  });

  it('an argument list too large for the payload goes to the store under the task, and is deleted when the task is done', async () => {
    let argsKey: string | undefined;
    const f = scriptedBackend((env) => {
      if (env.args.kind === 'stored') argsKey = env.args.key;
    }, 2048);
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(describeValue, new Float64Array(200).fill(1));
    assert.equal(await rt.get(ref), 'Float64Array(200) sum=200');
    assert.equal(argsKey, `volley/jobs/${rt.jobId}/${rt.runId}/${ref.id}.args`);
    await until(() => !present(f.store, argsKey!), 'the arguments are deleted');
    await rt.shutdown();
  });

  it("a cancelled run's slot is free again once its invocation returns", async () => {
    const releases: Array<() => void> = [];
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') await new Promise<void>((r) => releases.push(r));
    });
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    const first = rt.remote(inc, 1);
    await until(() => releases.length === 1, 'the first run is out');
    rt.cancel(first, { force: true });
    await assert.rejects(rt.get(first), TaskCancelledError);
    const second = rt.remote(sq, 4);
    await turns();
    assert.deepEqual(f.fns(), ['inc#1'], 'the cancelled run still holds the slot');
    releases.shift()!();
    assert.equal(await rt.get(second), 16);
    await rt.shutdown();
  });
});

describe('events', () => {
  it("a run's events say who ran it, when, how it ended and what it returned", async () => {
    const f = scriptedBackend((env, nth) => {
      if (env.fn === 'filled' && nth === 1) throw new WorkerCrashedError('filled', env.taskId, 'exit code 137');
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const events: VolleyEvent[] = [];
    rt.onEvent((e) => events.push(e));
    const data = rt.remote(filled.options({ memoryMB: 256 }), 100, 1);
    const bad = rt.remote(failIfNegative, -1);
    await rt.wait<unknown>([data, bad], { numReturns: 2 });
    const ofTask = (id: string, type: string) => events.filter((e) => e.type === type && 'taskId' in e && e.taskId === id) as never as Array<Record<string, unknown>>;
    const [retrying] = ofTask(data.id, 'retrying');
    const [finished] = ofTask(data.id, 'finished');
    const [submitted] = ofTask(data.id, 'submitted');
    assert.ok(retrying && finished && submitted);
    assert.equal(retrying.attempt, 1);
    assert.equal(retrying.reason, 'retry');
    assert.equal(retrying.memoryMB, 256);
    assert.equal(typeof retrying.delayMs, 'number');
    assert.equal((retrying.error as { name: string }).name, 'WorkerCrashedError');
    assert.equal(finished.attempt, 2);
    assert.equal(finished.outcome, 'ok');
    assert.equal(finished.fn, 'filled');
    assert.equal(finished.memoryMB, 256);
    assert.deepEqual(finished.deps, []);
    assert.equal(finished.submittedAt, submitted.time);
    assert.ok((finished.dispatchedAt as number) >= (submitted.time as number));
    assert.ok((finished.time as number) >= (finished.dispatchedAt as number));
    assert.deepEqual(finished.result, { bytes: (finished.result as { bytes: number }).bytes, stored: true });
    assert.ok((finished.result as { bytes: number }).bytes > 800);
    assert.equal(typeof (finished.timing as { runMs: number }).runMs, 'number');
    assert.equal(typeof finished.startedAt, 'number');
    assert.equal(finished.error, undefined);
    const [failed] = ofTask(bad.id, 'finished');
    assert.equal(failed!.outcome, 'failed');
    assert.equal(failed!.attempt, 1);
    assert.equal(failed!.result, undefined);
    assert.ok(failed!.error);

    const dependent = rt.remote(describeValue, bad);
    await rt.wait([dependent]);
    const [dep] = ofTask(dependent.id, 'finished');
    assert.equal(dep!.outcome, 'dependency');
    assert.equal(dep!.attempt, 1, 'a task that never ran counts one attempt');
    assert.equal(dep!.dispatchedAt, undefined);
    assert.deepEqual(dep!.deps, [bad.id]);
    assert.equal((dep!.error as { name: string }).name, 'DependencyError');
    await rt.shutdown();
  });
});

describe('refs given to the driver', () => {
  it('names what is not a ref, and a ref of another runtime or of one that was shut down', async () => {
    const f = scriptedBackend();
    const rt = new Runtime(fast, { backend: f.backend });
    const other = new Runtime(fast, { backend: scriptedBackend().backend });
    await assert.rejects(rt.get([null] as never), (e: unknown) => e instanceof UsageError && e.message === 'get(): item 0 is not an ObjectRef (got null); pass refs returned by .remote() or put()');
    await assert.rejects(
      rt.wait([rt.put(1), 'x'] as never),
      (e: unknown) => e instanceof UsageError && e.message === 'wait(): item 1 is not an ObjectRef (got string); pass refs returned by .remote() or put()',
    );
    const foreign = other.put(2);
    await assert.rejects(rt.get(foreign), (e: unknown) => e instanceof UsageError && e.message === `get(): ref ${foreign.id} belongs to another runtime; use that runtime's get()`);
    assert.throws(
      () => rt.cancel(foreign),
      (e: unknown) => e instanceof UsageError && /^cancel\(\): ref .* belongs to another runtime/.test(e.message),
    );
    assert.equal(await other.get(foreign), 2);
    await rt.shutdown();
    await other.shutdown();
  });
});

describe("the driver's own store calls", () => {
  it('are made again after a retryable fault, up to three more times; other faults at once', async () => {
    const f = scriptedBackend();
    const store = f.backend.store;
    const read = store.get.bind(store);
    let faults = 0;
    let calls = 0;
    let retryable = true;
    store.get = async (key: string) => {
      calls++;
      if (faults > 0) {
        faults--;
        throw new ObjectStoreError(`S3 said SlowDown for ${key}`, key, { retryable });
      }
      return read(key);
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 64 }, { backend: f.backend });
    const data = rt.put(new Float64Array(100).fill(4));
    await rt.wait([data]);
    faults = 3;
    assert.equal((await rt.get(data))[99], 4, 'three faults, then an answer');
    assert.equal(calls, 4);
    calls = 0;
    faults = 4;
    await assert.rejects(rt.get(data), (e: unknown) => e instanceof ObjectStoreError && /SlowDown/.test(e.message));
    assert.equal(calls, 4, 'four tries in all');
    calls = 0;
    faults = 1;
    retryable = false;
    await assert.rejects(rt.get(data), ObjectStoreError);
    assert.equal(calls, 1, 'not retryable: one try');
    await rt.shutdown();
  });

  it("a result's contained object found missing is not rebuilt by get(): the error names its key", async () => {
    const l = lambdaLike();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: l.backend });
    const made = rt.remote(refsOf, 1);
    await rt.wait([made]);
    const bigKey = `volley/jobs/${rt.jobId}/${rt.runId}/${made.id}.2`;
    assert.equal(present(l.store, bigKey), true);
    await l.store.delete([bigKey]);
    await assert.rejects(rt.get(made), (e: unknown) => e instanceof ObjectStoreError && e.code === 'OBJECT_MISSING' && e.key === bigKey);
    assert.deepEqual(l.invoked, ['refsOf', 'sq'], 'nothing ran again');
    await rt.shutdown();
  });
});

describe('queue and retries', () => {
  it('a task cancelled while it waits in the queue is never invoked', async () => {
    const releases: Array<() => void> = [];
    const f = scriptedBackend(async (env) => {
      if (env.fn === 'inc') await new Promise<void>((r) => releases.push(r));
    });
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    const busy = rt.remote(inc, 1);
    const queued = rt.remote(sq, 3);
    const after = rt.remote(sq, 4);
    await until(() => releases.length === 1, 'the first run is out');
    rt.cancel(queued);
    await assert.rejects(rt.get(queued), (e: unknown) => e instanceof TaskCancelledError && /before it started$/.test(e.message));
    releases.shift()!();
    assert.deepEqual(await rt.get([busy, after]), [2, 16]);
    assert.deepEqual(f.fns(), ['inc#1', 'sq#1']);
    assert.deepEqual(
      f.invoked.map((i) => i.taskId),
      [busy.id, after.id],
    );
    await rt.shutdown();
  });

  it("a task cancelled during a retry's backoff is cancelled before it started again, and its timer is cleared", async () => {
    const { f, rt, ref, before } = await backingOff();
    assert.equal(timers(), before + 1);
    rt.cancel(ref, { force: true });
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof TaskCancelledError && /before it started$/.test(e.message));
    assert.equal(timers(), before, 'the timer was cleared');
    assert.deepEqual(f.cancels, [], 'no run was out to stop');
    assert.deepEqual(f.fns(), ['inc#1']);
    await rt.shutdown();
  });

  it('an invoker that answers by callback (invokeThen) is used for values and for failures', async () => {
    const f = scriptedBackend((env) => {
      if (env.fn === 'sq') throw new WorkerCrashedError('sq', env.taskId, 'lost');
    });
    const inv = f.backend.invoker;
    let byCallback = 0;
    inv.invokeThen = (env, o, done) => {
      byCallback++;
      inv.invoke(env, o).then(
        (res) => done(res, undefined),
        (err: unknown) => done(undefined, err),
      );
    };
    const rt = new Runtime(fast, { backend: f.backend });
    assert.equal(await rt.get(rt.remote(inc, 1)), 2);
    await assert.rejects(rt.get(rt.remote(sq.options({ maxRetries: 1 }), 2)), (e: unknown) => e instanceof WorkerCrashedError && /lost/.test(e.message));
    assert.equal(byCallback, 3);
    assert.deepEqual(f.fns(), ['inc#1', 'sq#1', 'sq#2']);
    await rt.shutdown();
  });

  it('a value spilled for want of room is written once for every task that reads it', async () => {
    const f = scriptedBackend(undefined, 2048);
    const puts: string[] = [];
    const write = f.backend.store.put.bind(f.backend.store);
    f.backend.store.put = (key: string, bytes: Uint8Array) => {
      puts.push(key);
      return write(key, bytes);
    };
    const rt = new Runtime({ ...fast, maxConcurrency: 1 }, { backend: f.backend });
    const data = rt.remote(filled, 200, 1);
    await rt.wait([data]);
    assert.deepEqual(await rt.get([rt.remote(describeValue, data), rt.remote(describeValue, data)]), ['Float64Array(200) sum=200', 'Float64Array(200) sum=200']);
    assert.deepEqual(puts, [`volley/jobs/${rt.jobId}/${rt.runId}/${data.id}`]);
    await rt.shutdown();
  });

  it('a task whose arguments cannot be spilled (the store refuses) fails with the store error', async () => {
    const f = scriptedBackend(undefined, 2048);
    f.backend.store.put = async (key: string) => {
      throw new ObjectStoreError(`access denied writing ${key}`, key);
    };
    const rt = new Runtime(fast, { backend: f.backend });
    const ref = rt.remote(describeValue.options({ maxRetries: 0 }), new Float64Array(200));
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof TaskError && new RegExp(`could not be run: access denied writing volley/jobs/.*/${ref.id}\\.args`).test(e.message));
    assert.deepEqual(f.fns(), [], 'never invoked');
    await rt.shutdown();
  });
});

describe('observers', () => {
  it('write the timeline asked for at shutdown, also when the backend never came up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volley-timeline-'));
    try {
      const rt = new Runtime({ ...fast, timeline: join(dir, 'a.json'), summary: false, progress: false }, { backend: scriptedBackend().backend });
      const ref = rt.remote(inc, 1);
      assert.equal(await rt.get(ref), 2);
      await rt.shutdown();
      assert.match(readFileSync(join(dir, 'a.json'), 'utf8'), new RegExp(ref.id));
      const early = new Runtime({ ...fast, timeline: join(dir, 'b.json'), summary: false, progress: false }, { backend: scriptedBackend().backend });
      early.remote(inc, 1);
      await early.shutdown();
      assert.match(readFileSync(join(dir, 'b.json'), 'utf8'), /"traceEvents"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('count the tasks submitted before they were loaded', async () => {
    const f = scriptedBackend();
    const rt = new Runtime({ ...fast, cost: true, summary: false, progress: false }, { backend: f.backend });
    const refs = [rt.remote(inc, 1), rt.remote(inc, 2), rt.remote(inc, 3)];
    assert.deepEqual(await rt.get(refs), [2, 3, 4]);
    const report = await rt.cost();
    assert.equal(report.lambda.requests, 3);
    assert.equal(report.prices.region, 'us-east-1');
    await rt.shutdown();
  });
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Starts a child with a stored result, waits for it, and returns without its ref. */
const dropsChild = remote(async function dropsChild(): Promise<number> {
  await wait([filled.remote(100, 1)]);
  return 1;
});
/** Returns a ref to a child task's (stored) result, and starts a reader of it that it does not wait for. */
const returnsChild = remote(function returnsChild(): { child: unknown } {
  const child = filled.remote(100, 4);
  describeValue.remote(child);
  return { child };
});
/** A result large enough to be stored that holds a ref to a stored object. */
const refAndBulk = remote(function refAndBulk(): { big: unknown; bulk: Float64Array } {
  return { big: put(new Float64Array(1000).fill(2)), bulk: new Float64Array(100).fill(1) };
});

describe('what a finished task made, and results that hold refs', () => {
  it("a child task's result its parent did not return is deleted when the parent finishes", async () => {
    const w = threaded();
    const written: string[] = [];
    const write = w.store.put.bind(w.store);
    w.store.put = (key: string, bytes: Uint8Array) => {
      written.push(key);
      return write(key, bytes);
    };
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: w.backend });
    const parent = rt.remote(dropsChild);
    assert.equal(await rt.get(parent), 1);
    const key = `volley/jobs/${rt.jobId}/${rt.runId}/${parent.id}.1`;
    assert.deepEqual(written, [key], "the child's result was stored");
    await until(() => !present(w.store, key), "the child's result is deleted");
    await rt.shutdown();
  });

  it("a child's object lost while a sibling reading it still runs is rebuilt for that sibling, also after the parent returned the child's ref", async () => {
    let releaseReader!: () => void;
    const readerHeld = new Promise<void>((r) => (releaseReader = r));
    const w = threaded({
      script: async (env) => {
        if (env.fn === 'describeValue' && w.invoked.filter((f) => f === 'describeValue').length === 1) await readerHeld;
      },
    });
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: w.backend });
    const parent = rt.remote(returnsChild);
    await rt.wait([parent]);
    await until(() => w.invoked.includes('describeValue'), 'the reader was sent, and is held before it reads');
    await w.store.delete([`volley/jobs/${rt.jobId}/${rt.runId}/${parent.id}.1`]);
    releaseReader();
    await until(() => w.invoked.length === 5, 'the reader runs again once the child is rebuilt');
    assert.deepEqual(w.invoked, ['returnsChild', 'filled', 'describeValue', 'filled', 'describeValue']);
    assert.equal(((await rt.get(parent)) as unknown as { child: Float64Array }).child[99], 4, "the parent's result reads the rebuilt object");
    assert.equal(rt.faultCounts.rebuilds, 1);
    await rt.shutdown();
  });

  it('a stored result whose contained object is missing fails get() with the contained key, and runs nothing again', async () => {
    const l = lambdaLike();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: l.backend });
    const made = rt.remote(refAndBulk);
    await rt.wait([made]);
    const prefix = `volley/jobs/${rt.jobId}/${rt.runId}/`;
    assert.equal(present(l.store, `${prefix}${made.id}`), true, 'the result itself is stored');
    const bigKey = `${prefix}${made.id}.1`;
    await l.store.delete([bigKey]);
    await assert.rejects(rt.get(made), (e: unknown) => e instanceof ObjectStoreError && e.code === 'OBJECT_MISSING' && e.key === bigKey);
    assert.deepEqual(l.invoked, ['refAndBulk'], 'nothing ran again');
    await rt.shutdown();
  });

  it("on the Lambda path, the objects a result holds are deleted once the program drops the result's ref", async () => {
    const l = lambdaLike();
    const rt = new Runtime({ ...fast, inlineThresholdBytes: 256 }, { backend: l.backend });
    let made: ObjectRef<unknown> | undefined = rt.remote(keepsOne);
    await rt.wait([made]);
    const keptKey = `volley/jobs/${rt.jobId}/${rt.runId}/${made.id}.2`;
    assert.equal(present(l.store, keptKey), true);
    made = undefined;
    for (let i = 0; i < 50 && present(l.store, keptKey); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 0));
      await turns(2);
    }
    assert.equal(present(l.store, keptKey), false, 'freed with the result that held it');
    await rt.shutdown();
  });
});

describe('a wait from a run that already ended', () => {
  it('does not change how many tasks run: a run the driver no longer counts neither gives back nor takes a slot', async () => {
    const w = threaded({
      script: (env) => {
        if (env.fn === 'inc') throw new WorkerCrashedError('inc', env.taskId, 'exit code 137');
      },
    });
    const rt = new Runtime({ retryBaseDelayMs: 600_000, retryMaxDelayMs: 600_000, maxConcurrency: 1 }, { backend: w.backend });
    let retrying = 0;
    rt.onEvent((e) => {
      if (e.type === 'retrying') retrying++;
    });
    // Its run ended (the worker crashed); it waits out a long backoff.
    const ended = rt.remote(inc, 1);
    await until(() => retrying === 1, 'the run ended and a retry waits');
    const blocker = rt.remote(held, 'ended run');
    await until(() => gate('ended run').reached, 'the blocker takes the one slot');
    const queued = rt.remote(sq, 5);
    // What that run's thread sent before it was stopped: a wait for the blocker.
    const waiting = w.host().await(ended.id, { refs: [blocker.id], numReturns: 1, payloads: false });
    await turns();
    assert.deepEqual(w.invoked, ['inc', 'held'], 'the queued task still waits for the slot');
    gate('ended run').open();
    assert.deepEqual((await waiting).states, [1]);
    assert.equal(await rt.get(queued), 25);
    const after = rt.remote(sq, 6);
    await until(() => w.invoked.length === 4, 'the slot is free again once the wait is over');
    assert.equal(await rt.get(after), 36);
    const failed = rt.get(ended);
    await rt.shutdown();
    await assert.rejects(failed, (e: unknown) => e instanceof UsageError && e.code === 'SHUT_DOWN');
  });
});

describe('observers: the cost of large results', () => {
  it('count a result above the multipart threshold (16 MiB) as a multipart upload of 8 MiB parts', async () => {
    const f = scriptedBackend();
    const MiB = 1024 * 1024;
    const rt = new Runtime({ ...fast, cost: true, summary: false, progress: false }, { backend: f.backend });
    let bytes = 0;
    rt.onEvent((e) => {
      if (e.type === 'finished' && e.result?.stored) bytes = e.result.bytes;
    });
    // 17.6 MB: three parts of at most 8 MiB, with the upload's create and complete requests.
    const big = rt.remote(filled, 2_200_000, 1);
    await rt.wait([big]);
    assert.ok(bytes > 16 * MiB && bytes <= 24 * MiB, String(bytes));
    const report = await rt.cost();
    assert.equal(report.s3.putRequests, 2 + 3);
    await rt.shutdown();
  });
});
