/**
 * The failure model on the embedded runtime, as a user meets it: retries of system failures
 * and (when asked) exceptions, the attempts on the final error, readable dependency chains,
 * cancel, and rebuilding results whose stored objects were lost.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, describe, it } from 'node:test';
import { DependencyError, ObjectLostError, Runtime, TaskCancelledError, TaskError, TaskTimeoutError, UsageError, WorkerCrashedError, cancel, taskContext, type InitOptions } from 'volley';
import { add, failIfNegative, filled, inc, nap } from '../fixtures/tasks.js';
import { failOn, firstOf, mark, runStamp, scaled, spinUntilKilled, untilCancelled } from '../fixtures/failure-tasks.js';
import { scaleInside } from '../fixtures/inner-task.js';

const runtimes: Runtime[] = [];
const start = (o?: InitOptions) => {
  const rt = new Runtime({ retryBaseDelayMs: 5, retryMaxDelayMs: 50, ...o, local: { maxWorkers: 2, ...o?.local } });
  runtimes.push(rt);
  return rt;
};
after(() => Promise.all(runtimes.map((r) => r.shutdown())));

const tmp = mkdtempSync(join(tmpdir(), 'volley-failures-'));
let files = 0;
const file = () => join(tmp, `f${++files}`);
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : []);

/** The runtime's MemoryStore (to lose objects on purpose). */
async function storeOf(rt: Runtime): Promise<{ delete(keys: string[]): Promise<void>; keys(): string[] }> {
  return ((await (rt as unknown as { starting: Promise<{ store: never }> }).starting) as { store: never }).store;
}

describe('a task defined inside a function', () => {
  it('fails at get with a TaskNotFoundError that says to define the task at the top level of a module', async () => {
    // The worker imports the module, where the enclosing function never runs; the message used
    // to end at "did not call remote() with that name", with no word of why or of the fix.
    const rt = start();
    const err = await rt.get(scaleInside(rt, 2)).catch((e: unknown) => e);
    assert.ok(err instanceof TaskError, String(err));
    assert.equal(err.remote?.name, 'TaskNotFoundError');
    assert.equal(err.remote?.code, 'TASK_NOT_FOUND');
    assert.match(err.message, /task "scaledInside" is not registered in this worker: its module .*inner-task\.js was loaded but did not call remote\(\) with that name at its top level/);
    assert.match(err.message, /Fix: define the task at the top level of a module .* pass what it used from the enclosing function as arguments/);
  });
});

describe('retries', () => {
  it('runs a task again when its worker crashes, by default up to 3 times', async () => {
    const rt = start();
    assert.equal(await rt.get(rt.remote(failOn, [1, 2, 3], 'crash')), 4);
    const err = await rt.get(rt.remote(failOn, [1, 2, 3, 4], 'crash')).catch((e: unknown) => e);
    assert.ok(err instanceof WorkerCrashedError, String(err));
    assert.equal(err.fault, 'infrastructure');
    assert.equal(err.attempts?.length, 4);
    assert.deepEqual(
      err.attempts?.map((a) => [a.attempt, a.name, a.code]),
      [1, 2, 3, 4].map((n) => [n, 'WorkerCrashedError', 'WORKER_CRASHED']),
    );
    assert.match(err.message, /exited with code 71 .*\[after 4 attempts — 1: WorkerCrashedError \(WORKER_CRASHED\); 2: /);
    assert.match(err.attempts![0]!.message, /exited with code 71/);
  });

  it('maxRetries: 0 never retries, -1 retries until it works', async () => {
    const rt = start();
    const once = await rt.get(rt.remote(failOn.options({ maxRetries: 0 }), [1], 'crash')).catch((e: unknown) => e);
    assert.ok(once instanceof WorkerCrashedError);
    assert.equal(once.attempts?.length, 1);
    assert.doesNotMatch(once.message, /attempts/);
    assert.equal(await rt.get(rt.remote(failOn.options({ maxRetries: -1 }), [1, 2, 3, 4, 5, 6], 'crash')), 7);
    assert.throws(
      () => failOn.options({ maxRetries: -2 }),
      (e: unknown) => e instanceof UsageError && /maxRetries must be an integer >= -1/.test(e.message),
    );
  });

  it('retries a timed-out task (a timeout is a system failure)', async () => {
    const rt = start();
    assert.equal(await rt.get(rt.remote(failOn.options({ timeoutMs: 300 }), [1], 'hang')), 2);
    const err = await rt.get(rt.remote(failOn.options({ timeoutMs: 200, maxRetries: 1 }), [1, 2], 'hang')).catch((e: unknown) => e);
    assert.ok(err instanceof TaskTimeoutError, String(err));
    assert.deepEqual(
      err.attempts?.map((a) => a.code),
      ['TASK_TIMEOUT', 'TASK_TIMEOUT'],
    );
  });

  it("does not retry the task's own exceptions unless retryExceptions says so", async () => {
    const rt = start();
    const plain = await rt.get(rt.remote(failOn, [1], 'throw')).catch((e: unknown) => e);
    assert.ok(plain instanceof TaskError && plain.fault === 'user' && plain.remote?.name === 'TransientError', String(plain));
    assert.equal(plain.attempts?.length, 1);
    assert.equal(await rt.get(rt.remote(failOn.options({ retryExceptions: true }), [1, 2], 'throw')), 3);
    assert.equal(await rt.get(rt.remote(failOn.options({ retryExceptions: ['TransientError'] }), [1], 'throw')), 2);
    const other = await rt.get(rt.remote(failOn.options({ retryExceptions: ['OtherError'] }), [1], 'throw')).catch((e: unknown) => e);
    assert.ok(other instanceof TaskError && other.attempts?.length === 1);
    // The predicate runs in the driver, on the TaskError.
    const seen: string[] = [];
    const pred = (e: TaskError) => {
      seen.push(`${e.remote?.name}: ${e.remote?.message}`);
      return /attempt 1$/.test(e.remote?.message ?? '');
    };
    const err = await rt.get(rt.remote(failOn.options({ retryExceptions: pred }), [1, 2], 'throw')).catch((e: unknown) => e);
    assert.ok(err instanceof TaskError);
    assert.deepEqual(seen, ['TransientError: failed on attempt 1', 'TransientError: failed on attempt 2']);
    assert.deepEqual(
      err.attempts?.map((a) => [a.name, a.fault]),
      [
        ['TransientError', 'user'],
        ['TransientError', 'user'],
      ],
    );
    assert.throws(() => failOn.options({ retryExceptions: 'yes' as never }), UsageError);
  });

  it('the first committed result wins: a rebuilt or repeated run cannot change what dependents saw', async () => {
    const rt = start();
    const ref = rt.remote(runStamp, 20_000);
    const [a, b] = await rt.get([rt.remote(firstOf, ref), rt.remote(firstOf, ref)]);
    const direct = await rt.get(ref);
    assert.equal(a, b);
    assert.equal(a, direct[0]);
    // A second write of the same key (a late duplicate run) is ignored by the store.
    const store = await storeOf(rt);
    const key = store.keys().find((k) => k.endsWith(ref.id))!;
    await (store as unknown as { put(k: string, b: Uint8Array): Promise<void> }).put(key, new Uint8Array(8));
    assert.equal((await rt.get(ref))[0], direct[0]);
  });
});

describe('errors of dependency chains', () => {
  it('names the direct upstream task and the one that failed, and prints the remote stack once', async () => {
    const rt = start();
    const a = rt.remote(failIfNegative, -1);
    const b = rt.remote(inc, a);
    const c = rt.remote(inc, b);
    const e1 = await rt.get(b).catch((e: unknown) => e);
    const e2 = await rt.get(c).catch((e: unknown) => e);
    assert.ok(e1 instanceof DependencyError && e2 instanceof DependencyError);
    assert.equal(e1.message, `Task inc (${b.id}) did not run: its argument from failIfNegative (${a.id}) failed: ValidationFailure: expected a non-negative number, got -1`);
    assert.equal(
      e2.message,
      `Task inc (${c.id}) did not run: its argument from inc (${b.id}) was not computed, because failIfNegative (${a.id}) failed: ValidationFailure: expected a non-negative number, got -1`,
    );
    assert.equal(e2.cause, e1);
    const printed = inspect(e2);
    assert.equal(printed.split('--- remote stack').length - 1, 1, printed);
    assert.equal(printed.split('at failIfNegative').length - 1, 1, printed);
    assert.ok(printed.split('\n').length < 40, `${printed.split('\n').length} lines:\n${printed}`);
  });
});

describe('cancel', () => {
  it('a task not started yet never starts; its dependents fail with TaskCancelledError as cause', async () => {
    const rt = start();
    const f = file();
    const slow = rt.remote(nap, 300, 'x');
    const victim = rt.remote(mark, f, 'ran', slow);
    const after = rt.remote(mark, f, 'after', victim);
    rt.cancel(victim);
    const err = await rt.get(victim).catch((e: unknown) => e);
    assert.ok(err instanceof TaskCancelledError && /cancelled before it started/.test(err.message), String(err));
    const dep = await rt.get(after).catch((e: unknown) => e);
    assert.ok(dep instanceof DependencyError && dep.cause === err, String(dep));
    await rt.get(slow);
    await rt.get(rt.remote(nap, 50, 'y'));
    assert.deepEqual(lines(f), [], 'the cancelled task never ran');
    rt.cancel(slow); // finished: nothing happens
    assert.equal(await rt.get(slow), 'x after 300 ms');
  });

  it('a running task sees its signal aborted (taskContext().signal); get raises at once', async () => {
    const rt = start();
    const f = file();
    const ref = rt.remote(untilCancelled, f);
    await waitFor(() => lines(f).length > 0, 5000);
    cancel(ref);
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof TaskCancelledError && /while it ran/.test(e.message));
    await waitFor(() => lines(f).length > 1, 5000);
    assert.deepEqual(lines(f), ['started', 'aborted: TaskCancelledError']);
    assert.throws(
      () => taskContext(),
      (e: unknown) => e instanceof UsageError && /outside a running task/.test(e.message),
    );
  });

  it('force stops a task that never yields (its worker thread is terminated) and the pool goes on', async () => {
    const rt = start();
    const f = file();
    const ref = rt.remote(spinUntilKilled, f);
    await waitFor(() => lines(f).length > 0, 5000);
    rt.cancel(ref, { force: true });
    await assert.rejects(rt.get(ref), (e: unknown) => e instanceof TaskCancelledError && /its worker stopped/.test(e.message));
    assert.deepEqual(await rt.get([rt.remote(add, 1, 2), rt.remote(add, 3, 4), rt.remote(add, 5, 6)]), [3, 7, 11]);
    assert.throws(
      () => rt.cancel(rt.put(new Float64Array(20_000))),
      (e: unknown) => e instanceof UsageError && /made by put/.test(e.message),
    );
    assert.throws(() => rt.cancel(ref, { force: 'yes' } as never), UsageError);
  });
});

describe('cancel, recursive', () => {
  it('cancels the tasks a task started unless recursive is false (through the hook nested tasks call)', async () => {
    const rt = start();
    const parent = rt.remote(nap, 2000, 'parent');
    const child = rt.remote(nap, 2000, 'child');
    rt.addChild(parent.id, child);
    assert.deepEqual(rt.childrenOf(parent.id), [child.id]);
    const other = rt.remote(nap, 2000, 'other parent');
    const kept = rt.remote(nap, 50, 'kept child');
    rt.addChild(other.id, kept);
    rt.cancel(parent);
    rt.cancel(other, { recursive: false });
    await assert.rejects(rt.get(child), TaskCancelledError);
    await assert.rejects(rt.get(other), TaskCancelledError);
    assert.equal(await rt.get(kept), 'kept child after 50 ms');
  });
});

describe('lineage reconstruction', () => {
  it("rebuilds a task's result whose stored object was lost, for get and for dependents", async () => {
    const rt = start();
    const store = await storeOf(rt);
    const big = rt.remote(filled, 20_000, 3);
    await rt.get(big);
    const key = store.keys().find((k) => k.endsWith(big.id))!;
    await store.delete([key]);
    assert.equal(await rt.get(rt.remote(firstOf, big)), 3, 'a dependent made it rebuild');
    await store.delete([key]);
    assert.equal((await rt.get(big))[19_999], 3, 'get made it rebuild');
    assert.equal(rt.faultCounts.rebuilds, 2);
  });

  it('rebuilds recursively: an upstream result freed meanwhile is run again too', async () => {
    const rt = start();
    const store = await storeOf(rt);
    let up: ReturnType<typeof rt.remote<typeof filled>> | undefined = rt.remote(filled, 20_000, 5);
    const down = rt.remote(scaled, up, 2);
    await rt.get(down);
    up = undefined;
    // Let the program's ref to `up` be collected: the entry is freed and its bytes deleted.
    for (let i = 0; i < 10 && store.keys().length > 1; i++) {
      globalThis.gc?.();
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const k of store.keys()) await store.delete([k]);
    assert.equal((await rt.get(down))[0], 10);
  });

  it('a put() object that is lost fails with ObjectLostError, and so do tasks that need it', async () => {
    const rt = start();
    const store = await storeOf(rt);
    const x = rt.put(new Float64Array(20_000).fill(1));
    await rt.get(x);
    await store.delete(store.keys());
    const err = await rt.get(x).catch((e: unknown) => e);
    assert.ok(err instanceof ObjectLostError && /stored by put\(\)/.test(err.message), String(err));
    const dep = await rt.get(rt.remote(firstOf, x)).catch((e: unknown) => e);
    assert.ok(dep instanceof DependencyError && dep.cause instanceof ObjectLostError, String(dep));
  });

  it('gives up after maxRetries rebuilds with ObjectLostError', async () => {
    const rt = start();
    const store = await storeOf(rt);
    const big = rt.remote(filled.options({ maxRetries: 1 }), 20_000, 3);
    await rt.get(big);
    const lose = () => store.delete(store.keys().filter((k) => k.endsWith(big.id)));
    await lose();
    await rt.get(big);
    await lose();
    await assert.rejects(rt.get(big), (e: unknown) => e instanceof ObjectLostError && /rebuilt 1 time/.test(e.message));
  });
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
