import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { after, describe, it } from 'node:test';
import { DuplicateTaskError, Runtime, UsageError, WorkerCrashedError, get, init, put, remote, shutdown, wait } from 'volley';
import { add, byOptionName, countCalls, crash, gate, inc, nap, quickUnless, rendezvous } from '../fixtures/tasks.js';
import { TaskTimeoutError } from 'volley';

interface PoolView {
  stats(): { alive: number; started: number; busy: number; queued: number };
  slots: Set<{ worker: Worker }>;
}

/** The embedded runtime's worker pool (internal), to see its threads. */
async function poolOf(rt: Runtime): Promise<PoolView> {
  return (await (rt as unknown as { starting: Promise<{ pool: PoolView }> }).starting).pool;
}

const workersOf = (pool: PoolView): Worker[] => [...pool.slots].map((s) => s.worker);

/** Awaits `p` while keeping the process alive: idle workers and their timers are unref'd. */
async function held<T>(p: Promise<T>): Promise<T> {
  const t = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(t);
  }
}

/** Waits, by turns of the event loop and not by a clock, until `cond()` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}

describe('the default runtime (top-level API)', () => {
  after(() => shutdown());

  it('init, rf.remote, put, get, wait and shutdown work as in Ray', async () => {
    const rt = await init({ local: { maxWorkers: 4 } });
    await assert.rejects(init(), (e: unknown) => e instanceof UsageError && /called twice/.test(e.message));
    const x = put(40);
    const ref = add.remote(x, 2);
    assert.equal(await get(ref), 42);
    assert.deepEqual(await get([inc.remote(1), inc.remote(ref)]), [2, 43]);
    const { ready } = await wait([nap.remote(1, 'a')], { timeoutMs: 10_000 });
    assert.equal(ready.length, 1);
    assert.equal(rt.isShutdown, false);
    await shutdown();
    assert.equal(rt.isShutdown, true);
    await assert.rejects(get(ref), (e: unknown) => e instanceof UsageError && /shut down/.test(e.message));
  });

  it('starts on first use without init(), like ray.init()', async () => {
    assert.equal(await get(add.remote(1, 1)), 2);
    await shutdown();
  });

  it('calling a remote function directly says to use .remote', () => {
    assert.throws(
      () => (add as unknown as (a: number, b: number) => number)(1, 2),
      (e: unknown) => e instanceof UsageError && /add\.remote\(/.test(e.message),
    );
  });

  it('a second task with the same name is a clear error', () => {
    assert.throws(
      () =>
        remote(function add(a: number) {
          return a;
        }),
      (e: unknown) => e instanceof DuplicateTaskError && /two tasks are named "add"/.test(e.message),
    );
    assert.throws(
      () => remote((x: number) => x),
      (e: unknown) => e instanceof UsageError && /named function/.test(e.message),
    );
    assert.throws(
      () => remote(add as never, { timeout: 3 } as never),
      (e: unknown) => e instanceof UsageError && /valid options are: name, timeoutMs, memoryMB/.test(e.message),
    );
  });

  it('remote(fn, { name }) names a task, and .options() cannot rename it', async () => {
    assert.equal(byOptionName.taskName, 'doubleByName');
    assert.equal(await get(byOptionName.remote(21)), 42);
    assert.equal(await get(byOptionName.options({ timeoutMs: 5000 }).remote(4)), 8);
    assert.equal(byOptionName.options({ timeoutMs: 5000 }).taskName, 'doubleByName');
    assert.throws(
      () => byOptionName.options({ name: 'other' } as never),
      (e: unknown) => e instanceof UsageError && /doubleByName\.options\(\) cannot change the task name/.test(e.message) && /remote\(fn, \{ name \}\)/.test(e.message),
    );
    await shutdown();
  });
});

describe('the embedded runtime', () => {
  const runtimes: Runtime[] = [];
  const start = (o?: ConstructorParameters<typeof Runtime>[0]) => {
    const rt = new Runtime(o);
    runtimes.push(rt);
    return rt;
  };
  after(() => Promise.all(runtimes.map((r) => r.shutdown())));

  it('reports a worker that exits during a task as a crash, replaces it and keeps going', async () => {
    const rt = start({ local: { maxWorkers: 2 } });
    const err = await rt.get(rt.remote(crash, 3)).catch((e: unknown) => e);
    assert.ok(err instanceof WorkerCrashedError, `expected WorkerCrashedError, got ${String(err)}`);
    assert.equal(err.functionName, 'crash');
    assert.equal(err.fault, 'infrastructure');
    assert.match(err.message, /exited with code 3/);
    assert.deepEqual(await rt.get([1, 2, 3].map((x) => rt.remote(inc, x))), [2, 3, 4]);
  });

  for (const how of ['exit', 'hang'] as const) {
    it(`loses no task when a worker ${how === 'exit' ? 'dies' : 'times out'} among many short tasks`, async () => {
      const rt = start({ local: { maxWorkers: 2 } });
      const fn = quickUnless.options({ timeoutMs: 1500, maxRetries: 0 });
      // Warm up: the pool learns that this function is short and starts batching it.
      await rt.get(Array.from({ length: 20 }, (_, i) => rt.remote(fn, i, -1, how)));
      const refs = Array.from({ length: 400 }, (_, i) => rt.remote(fn, i, 150, how));
      const settled = await Promise.allSettled(refs.map((r) => rt.get(r)));
      const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [[i, s.reason] as const] : []));
      assert.equal(failed.length, 1, `failures: ${failed.map(([i, e]) => `${i}: ${String(e)}`).join('; ')}`);
      assert.equal(failed[0]![0], 150);
      assert.ok(how === 'exit' ? failed[0]![1] instanceof WorkerCrashedError : failed[0]![1] instanceof TaskTimeoutError, String(failed[0]![1]));
      settled.forEach((s, i) => i !== 150 && assert.deepEqual(s, { status: 'fulfilled', value: i }));
    });
  }

  it('keeps module state between tasks on a warm worker, like Lambda', async () => {
    const rt = start({ local: { maxWorkers: 1 } });
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) counts.push(await rt.get(rt.remote(countCalls)));
    assert.deepEqual(counts, [1, 2, 3]);
  });

  it('validates wait() arguments eagerly and says how to fix the call', async () => {
    const rt = start();
    const a = rt.put(1);
    await assert.rejects(rt.wait([a, a]), (e: unknown) => e instanceof UsageError && /same ref .* twice \(positions 0 and 1\)/.test(e.message));
    await assert.rejects(rt.wait([a], { numReturns: 2 }), (e: unknown) => e instanceof UsageError && /numReturns must be an integer from 1 to the number of refs \(1\)/.test(e.message));
    await assert.rejects(rt.wait([a], { timeoutMs: -1 }), (e: unknown) => e instanceof UsageError && /timeoutMs must be a number >= 0/.test(e.message));
    await assert.rejects(rt.wait([a], { numreturns: 1 } as never), (e: unknown) => e instanceof UsageError && /valid options are: numReturns, timeoutMs/.test(e.message));
    await assert.rejects(rt.get(a, { timeoutMs: Number.NaN }), UsageError);
    await assert.rejects(rt.get([a, 'x' as never]), (e: unknown) => e instanceof UsageError && /item 1 is not an ObjectRef/.test(e.message));
  });

  it('refuses refs from another runtime', async () => {
    const a = start();
    const b = start();
    const ref = a.put(1);
    assert.throws(
      () => b.remote(inc, ref),
      (e: unknown) => e instanceof UsageError && /another runtime/.test(e.message),
    );
    await assert.rejects(b.get(ref), (e: unknown) => e instanceof UsageError && /another runtime/.test(e.message));
  });

  it('unknown init options are listed with the valid ones', () => {
    assert.throws(
      () => new Runtime({ workers: 3 } as never),
      (e: unknown) => e instanceof UsageError && /unknown option\(s\) "workers"; valid options are: target/.test(e.message),
    );
    assert.throws(
      () => new Runtime({ local: { maxWorkers: 0 } }),
      (e: unknown) => e instanceof UsageError && /maxWorkers/.test(e.message),
    );
  });

  it('grows the pool on demand up to maxWorkers and reclaims idle workers', async () => {
    const rt = start({ local: { maxWorkers: 3, idleTimeoutMs: 200 } });
    const pool = await poolOf(rt);
    assert.equal(pool.stats().alive, 0, 'no worker before the first task');
    const dir = mkdtempSync(join(tmpdir(), 'volley-grow-'));
    try {
      // Six tasks that each wait for three to have started: three threads, never a fourth.
      const seen = await rt.get(Array.from({ length: 6 }, (_, i) => rt.remote(rendezvous, dir, `t${i}`, 3)));
      assert.ok(
        seen.every((n) => n >= 3),
        `each saw at least three side by side: ${seen.join(', ')}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(pool.stats().started, 3);
    const workers = workersOf(pool);
    await held(Promise.all(workers.map((w) => once(w, 'exit'))));
    assert.equal(pool.stats().alive, 0, 'idle workers were stopped');
    assert.equal(await rt.get(rt.remote(add, 1, 2)), 3);
    assert.equal(pool.stats().started, 4, 'a new task starts a new worker');
  });

  it('keeps minWorkers threads from the start, and past the idle timeout', async () => {
    const rt = start({ local: { maxWorkers: 3, minWorkers: 2, idleTimeoutMs: 20 } });
    const pool = await poolOf(rt);
    // Paced one per core at a time: on a single core, the second starts when the first is ready.
    assert.equal(pool.stats().started, Math.min(2, availableParallelism()), 'started before any task');
    const dir = mkdtempSync(join(tmpdir(), 'volley-min-'));
    try {
      await rt.get(Array.from({ length: 3 }, (_, i) => rt.remote(rendezvous, dir, `t${i}`, 3)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(pool.stats().alive, 3);
    // The third goes when idle; the two others stay however long the pool waits.
    const workers = workersOf(pool);
    await held(Promise.race(workers.map((w) => once(w, 'exit'))));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(pool.stats().alive, 2);
    assert.equal(workers.filter((w) => w.threadId !== -1).length, 2);
  });

  it('a task past its timeout is stopped with its thread, which the pool replaces', { timeout: 60_000 }, async () => {
    const rt = start({ local: { maxWorkers: 1 } });
    const pool = await poolOf(rt);
    // maxRetries: 0: a timeout is retried by default, and this checks one run's thread.
    const ref = rt.remote(quickUnless.options({ timeoutMs: 300, maxRetries: 0 }), 1, 1, 'hang');
    await until(() => pool.stats().busy === 1);
    const [worker] = workersOf(pool);
    const exited = once(worker!, 'exit');
    const err = await rt.get(ref).catch((e: unknown) => e);
    assert.ok(err instanceof TaskTimeoutError && err.timeoutMs === 300, String(err));
    await exited; // a thread left running would never exit: the test times out instead
    assert.equal(worker!.threadId, -1);
    assert.equal(await rt.get(rt.remote(inc, 1)), 2, 'the next task runs on a new thread');
    assert.equal(pool.stats().started, 2);
  });

  it('shutdown stops every worker thread it started', async () => {
    const rt = new Runtime({ local: { maxWorkers: 4 } });
    const pool = await poolOf(rt);
    const dir = mkdtempSync(join(tmpdir(), 'volley-stop-'));
    try {
      await rt.get([1, 2, 3, 4].map((i) => rt.remote(rendezvous, dir, `t${i}`, 4)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const workers = workersOf(pool);
    try {
      assert.equal(workers.length, 4);
      assert.ok(
        workers.every((w) => w.threadId > 0),
        "alive (idle, unref'd) before shutdown",
      );
      await rt.shutdown();
      assert.deepEqual(
        workers.map((w) => w.threadId),
        [-1, -1, -1, -1],
        'every thread has exited when shutdown() resolves',
      );
    } finally {
      await Promise.all(workers.map((w) => w.terminate())); // no-op unless the assertion failed
    }
  });

  it('shutdown with tasks running and queued fails them all with a UsageError and stops the threads', async () => {
    const rt = new Runtime({ local: { maxWorkers: 2 } });
    const pool = await poolOf(rt);
    const dir = mkdtempSync(join(tmpdir(), 'volley-gate-'));
    let workers: Worker[] = [];
    try {
      const refs = [0, 1, 2, 3, 4].map((i) => rt.remote(gate, join(dir, 'never'), `g${i}`));
      await until(() => pool.stats().busy === 2);
      workers = workersOf(pool);
      assert.equal(pool.stats().queued, 3, 'two running, three queued');
      const results = refs.map((r) =>
        rt.get(r).then(
          () => 'ran',
          (e: unknown) => e,
        ),
      );
      await rt.shutdown();
      for (const r of await Promise.all(results)) {
        assert.ok(r instanceof UsageError && /the runtime was shut down before this task finished/.test(r.message), String(r));
      }
      assert.deepEqual(
        workers.map((w) => w.threadId),
        [-1, -1],
      );
      // Nothing ran on after shutdown: opening the gate now changes nothing.
      writeFileSync(join(dir, 'never'), '');
      assert.throws(
        () => rt.remote(inc, 1),
        (e: unknown) => e instanceof UsageError && /after shutdown\(\)/.test(e.message),
      );
    } finally {
      await Promise.all(workers.map((w) => w.terminate())); // no-op unless an assertion failed
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
