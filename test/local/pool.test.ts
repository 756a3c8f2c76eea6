/**
 * The worker pool's start-up policy, with thread entries that misbehave on purpose: one that
 * throws while loading, one that never reports ready. Counts, not clocks: a thread that never
 * becomes ready stays "starting" however long the test takes.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { Runtime, TaskError, WorkerCrashedError } from 'volley';
import { loadedBuiltins } from '../fixtures/startup-tasks.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { WorkerPool } from '../../sdk/local/pool.js';
import { PROTOCOL_VERSION, type TaskEnvelope } from '../../sdk/protocol.js';

const entry = (code: string) => new URL(`data:text/javascript,${encodeURIComponent(code)}`);

function envelope(i: number): TaskEnvelope {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'j',
    taskId: `t-${i}`,
    fn: 'work',
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: {},
    resultKey: `j/t-${i}`,
    inlineLimit: 1024,
  };
}

describe('worker pool start-up', () => {
  it('a worker that fails to start fails the queued tasks with WorkerCrashedError saying why, instead of retrying forever', { timeout: 30_000 }, async () => {
    const pool = new WorkerPool({ maxWorkers: 4, minWorkers: 0, idleTimeoutMs: 1000 }, new MemoryStore(), entry('throw new Error("cannot load the task module")'));
    try {
      const out = await Promise.all([1, 2, 3].map((i) => pool.invoke(envelope(i), { timeoutMs: 60_000, memoryMB: 128 }).catch((e: unknown) => e)));
      for (const [i, e] of out.entries()) {
        assert.ok(e instanceof WorkerCrashedError, String(e));
        assert.equal(e.taskId, `t-${i + 1}`);
        assert.equal(e.fault, 'infrastructure');
        assert.match(e.message, /a worker thread failed to start: cannot load the task module/);
      }
      assert.ok(pool.stats().started <= availableParallelism(), `started ${pool.stats().started} threads for 3 tasks that cannot run`);
    } finally {
      await pool.close();
    }
  });

  it('starts at most one thread per core at a time, however many tasks are queued', async () => {
    const pool = new WorkerPool({ maxWorkers: 16, minWorkers: 0, idleTimeoutMs: 1000 }, new MemoryStore(), entry('setInterval(() => {}, 1000)'));
    const cores = availableParallelism();
    const calls = Array.from({ length: 12 }, (_, i) => pool.invoke(envelope(i), { timeoutMs: 60_000, memoryMB: 128 }).catch((e: unknown) => e));
    assert.equal(pool.stats().started, Math.min(cores, 16), 'one per core, started at once');
    // Those threads never report ready: however long we wait, no more are started.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(pool.stats().started, Math.min(cores, 16));
    assert.equal(pool.stats().queued, 12);
    await pool.close();
    for (const e of await Promise.all(calls)) assert.ok(e instanceof TaskError && /shut down/.test(e.message), String(e));
  });

  it('starts minWorkers threads before any task, one per core at a time', { timeout: 30_000 }, async () => {
    const cores = availableParallelism();
    // Threads that never report ready: only the first one per core is started.
    const stuck = new WorkerPool({ maxWorkers: 16, minWorkers: cores + 2, idleTimeoutMs: 1000 }, new MemoryStore(), entry('setInterval(() => {}, 1000)'));
    try {
      assert.equal(stuck.stats().started, cores);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(stuck.stats().started, cores, 'no more threads while the first ones are starting');
    } finally {
      await stuck.close();
    }
    // Threads that start: each one ready lets the next start, until minWorkers are up, with no task.
    const ready = entry('import { parentPort } from "node:worker_threads"; parentPort.postMessage({ kind: "ready" }); setInterval(() => {}, 1000);');
    const pool = new WorkerPool({ maxWorkers: 16, minWorkers: cores + 2, idleTimeoutMs: 1000 }, new MemoryStore(), ready);
    try {
      while (pool.stats().alive < cores + 2) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(pool.stats().started, cores + 2, 'minWorkers threads, and no more');
      assert.equal(pool.stats().queued, 0);
    } finally {
      await pool.close();
    }
  });
});

describe('what a worker thread loads', () => {
  it('a thread running a task loads the built-ins the task needs, and none of the driver-only ones (crypto, http, the AWS path)', { timeout: 30_000 }, async () => {
    // Every thread pays to compile each built-in module it loads (they are not in the worker's
    // startup snapshot); with 16 threads starting on 2 cores, that cost is the start-up time.
    const rt = await new Runtime({ local: { maxWorkers: 1 } }).ready();
    try {
      const loaded = new Set(await rt.get(rt.remote(loadedBuiltins)));
      // What a task does need: worker_threads (the thread's port) and v8 (values travel as V8's serialization).
      for (const m of ['worker_threads', 'v8']) assert.ok(loaded.has(m), `${m} should be loaded; the thread loaded ${[...loaded].join(', ')}`);
      const driverOnly = [...loaded].filter((m) => m === 'crypto' || m.startsWith('internal/crypto/') || ['http', 'https', 'net', 'tls', 'zlib'].includes(m));
      assert.deepEqual(driverOnly, [], `a worker thread loaded ${driverOnly.join(', ')}`);
    } finally {
      await rt.shutdown();
    }
  });
});
