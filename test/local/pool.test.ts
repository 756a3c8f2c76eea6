/**
 * The worker pool's start-up policy, with thread entries that misbehave on purpose: one that
 * throws while loading, one that never reports ready. Counts, not clocks: a thread that never
 * becomes ready stays "starting" however long the test takes.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import { TaskError, WorkerCrashedError } from 'volley';
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

  it('starts minWorkers threads at once, before any task', async () => {
    const pool = new WorkerPool({ maxWorkers: 4, minWorkers: 3, idleTimeoutMs: 1000 }, new MemoryStore(), entry('setInterval(() => {}, 1000)'));
    try {
      assert.equal(pool.stats().started, 3);
      assert.equal(pool.stats().alive, 3);
    } finally {
      await pool.close();
    }
  });
});
