/**
 * The worker pool's dispatch path, with scripted thread entries that answer at once: how the
 * results of one message reach the orchestrator (invokeThen) and when the pool starts threads
 * for tasks of a function it has not seen run. Counts, not clocks.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, it } from 'node:test';
import type { InvokeCallback } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { batchLimit } from '../../sdk/local/policy.js';
import { WorkerPool } from '../../sdk/local/pool.js';
import { PROTOCOL_VERSION, type ResultEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';

/** The pool's packed message format (sdk/local/wire.ts), for the scripted threads. */
const wire = new URL('../../sdk/local/wire.js', import.meta.url).href;
const entry = (code: string) => new URL(`data:text/javascript,${encodeURIComponent(code)}`);

/**
 * A thread that answers every message of tasks with one message of results, after `delayMs`;
 * each result's bytes hold how many tasks came in that message, and its run time is `runMs`.
 */
function answering(runMs: number, delayMs = 0): URL {
  return entry(`
    import { parentPort } from 'node:worker_threads';
    import { packResults, unpackTasks } from '${wire}';
    parentPort.on('message', (m) => {
      if (m.kind !== 'tasks') return;
      const envs = unpackTasks(m.batch).map((t) => t.env);
      const batch = packResults(envs.map((e) => ({ v: ${PROTOCOL_VERSION}, kind: 'value', taskId: e.taskId, bytes: new Uint8Array([envs.length]), timing: { fetchMs: 0, runMs: ${runMs}, storeMs: 0, startedAt: 0 } })));
      if (${delayMs} > 0) setTimeout(() => parentPort.postMessage({ kind: 'results', batch }), ${delayMs});
      else parentPort.postMessage({ kind: 'results', batch });
    });
    parentPort.postMessage({ kind: 'ready' });
  `);
}

function envelope(id: string, fn = 'work'): TaskEnvelope {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'j',
    taskId: id,
    fn,
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: {},
    resultKey: `j/${id}`,
    inlineLimit: 1024,
  };
}

const opts = { timeoutMs: 60_000, memoryMB: 128 };

/** invokeThen as a promise of the result, calling `then` synchronously inside the pool's callback first. */
function run(pool: WorkerPool, id: string, then?: () => void): Promise<ResultEnvelope> {
  return new Promise((resolve, reject) => {
    const done: InvokeCallback = (res, err) => {
      if (!res) return reject(err as Error);
      then?.();
      resolve(res);
    };
    pool.invokeThen(envelope(id), opts, done);
  });
}

describe('worker pool dispatch', () => {
  it('the tasks that one message of results makes ready go to the worker together, in one message', async () => {
    // Two threads: one answers, the other is idle when the results arrive.
    const pool = new WorkerPool({ maxWorkers: 2, minWorkers: 2, idleTimeoutMs: 1000 }, new MemoryStore(), answering(0));
    try {
      // Until both threads are up (results name their worker): the function is now known to be short.
      // Short tasks handed over together are batched, a fair share per core: enough for two batches.
      for (let seen = new Set<string>(), round = 0; seen.size < 2; round++) {
        const some = await Promise.all(Array.from({ length: 64 }, (_, i) => run(pool, `warm-${round}-${i}`)));
        seen = new Set(some.map((r) => r.worker!.id));
      }
      const dependents: Promise<ResultEnvelope>[] = [];
      // Inside the callback of a result, as the orchestrator does when a result makes tasks ready.
      await run(pool, 'input', () => {
        for (let i = 0; i < 3; i++) dependents.push(run(pool, `dep-${i}`));
        assert.equal(pool.stats().queued, 3, 'queued while the results are handed over, not sent one by one');
      });
      const sizes = (await Promise.all(dependents)).map((r) => (r as { bytes: Uint8Array }).bytes[0]);
      // Without the hand-over, the first dependent would go alone to the idle worker.
      // The first task of a batch leaves the queue before the batch size is set from what is left.
      const first = Math.min(3, batchLimit(2, availableParallelism()));
      assert.equal(sizes[0], first, `the first dependents went out ${sizes[0]} to a message, expected ${first}`);
    } finally {
      await pool.close();
    }
  });

  it('a failure reaches the callback on a later microtask, never inside invokeThen', async () => {
    const pool = new WorkerPool({ maxWorkers: 1, minWorkers: 0, idleTimeoutMs: 1000 }, new MemoryStore(), answering(0));
    await pool.close();
    let called = false;
    const failed = new Promise<unknown>((resolve) =>
      pool.invokeThen(envelope('late'), opts, (res, err) => {
        called = true;
        resolve(res ?? err);
      }),
    );
    assert.equal(called, false);
    assert.match(String(await failed), /shut down/);
  });

  it('does not start threads beyond one per core while its workers keep answering, for tasks of a function it has not seen finish quickly', { timeout: 60_000 }, async () => {
    const cores = availableParallelism();
    const spare = 12;
    // Each task reports 3 ms of run time (not short: one task per message) and is answered at once.
    const pool = new WorkerPool({ maxWorkers: cores + spare, minWorkers: 0, idleTimeoutMs: 1000 }, new MemoryStore(), answering(3));
    try {
      const all = Array.from({ length: 20_000 }, (_, i) => run(pool, `t-${i}`));
      await Promise.all(all);
      // The queue's head waits far longer than SPAWN_AFTER_MS in all (a pool that looked only at
      // that starts all `spare` threads), but some worker answers every fraction of a ms; the
      // margin is for a loaded machine, where a thread may get no CPU for SPAWN_AFTER_MS.
      const started = pool.stats().started;
      assert.ok(started <= cores + spare / 2, `started ${started} threads on ${cores} cores while the workers kept answering`);
    } finally {
      await pool.close();
    }
  });
});
