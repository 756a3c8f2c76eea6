/**
 * The orchestrator's object lifetime and shutdown against an in-process backend whose tasks
 * of one function (`inc`) wait at a gate the test opens: what happens while a task is still
 * pending is then decided by the test, not by timing. Garbage collection is forced (gc()).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DependencyError, Runtime, UsageError, type ObjectRef } from 'volley';
import type { Backend, InvokeOptions } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { deepSum, inc } from '../fixtures/tasks.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Collects garbage and lets FinalizationRegistry callbacks run until `done()` (at most 50 rounds). */
async function collectUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
    await turns(2);
  }
}

function gatedBackend() {
  const store = new MemoryStore();
  const deleted: string[] = [];
  const waiting: Array<() => void> = [];
  let open = false;
  const backend: Backend = {
    name: 'gated',
    keyPrefix: 'volley/',
    maxConcurrency: 100,
    store: {
      put: (k, b) => store.put(k, b),
      get: (k) => store.get(k),
      deletePrefix: (p) => store.deletePrefix(p),
      delete: async (keys) => {
        deleted.push(...keys);
        await store.delete(keys);
      },
    },
    invoker: {
      async invoke(env: TaskEnvelope, _o: InvokeOptions): Promise<ResultEnvelope> {
        if (env.fn === 'inc' && !open) await new Promise<void>((r) => waiting.push(r));
        return executeTask(structuredClone(env), { store, keyPrefix: 'volley/' });
      },
      async close() {},
    },
  };
  const openGate = () => {
    open = true;
    for (const w of waiting.splice(0)) w();
  };
  const has = (key: string) => {
    try {
      store.getSync(key);
      return true;
    } catch {
      return false;
    }
  };
  return { backend, store, deleted, openGate, has, waiting };
}

describe('object lifetime', () => {
  it('keeps a dropped object while a pending task needs it, and frees it once that task is done', async () => {
    const f = gatedBackend();
    const rt = await new Runtime({ inlineThresholdBytes: 1024 }, { backend: f.backend }).ready();
    const gate = rt.remote(inc, 1); // waits at the gate
    let neededKey = '';
    let unneededKey = '';
    const user = (() => {
      // Both 8 KB values are stored; the program drops both refs when this function returns.
      const needed = rt.put(new Float64Array(1000).fill(2));
      const unneeded = rt.put(new Float64Array(1000).fill(3));
      neededKey = `volley/jobs/${rt.jobId}/${rt.runId}/${needed.id}`;
      unneededKey = `volley/jobs/${rt.jobId}/${rt.runId}/${unneeded.id}`;
      return rt.remote(deepSum, [needed, gate]);
    })();
    await turns();
    assert.ok(f.has(neededKey) && f.has(unneededKey), 'both were stored');
    // The unneeded one goes: proof that the collector ran and the finalizers fired.
    await collectUntil(() => !f.has(unneededKey));
    assert.ok(!f.has(unneededKey), 'a dropped object no task needs is freed');
    assert.ok(f.has(neededKey), 'a dropped object a pending task needs stays');
    f.openGate();
    assert.equal(await rt.get(user), 1000 * 2 + 2, 'the task read it');
    await collectUntil(() => !f.has(neededKey));
    assert.ok(!f.has(neededKey), 'freed once the task that needed it finished');
    assert.deepEqual(f.deleted.sort(), [neededKey, unneededKey].sort());
    await rt.shutdown();
  });

  it('keeps an object whose ref the program still holds', async () => {
    const f = gatedBackend();
    const rt = await new Runtime({ inlineThresholdBytes: 1024 }, { backend: f.backend }).ready();
    const kept: ObjectRef<Float64Array> = rt.put(new Float64Array(1000).fill(1));
    let droppedKey = '';
    (() => {
      droppedKey = `volley/jobs/${rt.jobId}/${rt.runId}/${rt.put(new Float64Array(1000)).id}`;
    })();
    await turns();
    await collectUntil(() => !f.has(droppedKey));
    assert.ok(!f.has(droppedKey));
    assert.deepEqual(await rt.get(kept), new Float64Array(1000).fill(1));
    await rt.shutdown();
  });
});

describe('shutdown', () => {
  it('fails a running task with a UsageError and its dependent with a DependencyError, removes the job objects, and refuses new work', async () => {
    const f = gatedBackend();
    const rt = await new Runtime({ inlineThresholdBytes: 1024 }, { backend: f.backend }).ready();
    const big = rt.put(new Float64Array(1000));
    const running = rt.remote(inc, 1);
    const dependent = rt.remote(inc, running);
    await turns();
    assert.equal(f.waiting.length, 1, 'one task is running, its dependent waits for it');
    assert.ok(f.store.size > 0);
    const outcomes = [running, dependent].map((r) =>
      rt.get(r).then(
        () => 'ran',
        (e: unknown) => e,
      ),
    );
    await rt.shutdown();
    const [r1, r2] = await Promise.all(outcomes);
    assert.ok(r1 instanceof UsageError && /shut down before this task finished/.test(r1.message), String(r1));
    assert.ok(r2 instanceof DependencyError && r2.cause instanceof UsageError && /shut down before this task finished/.test(r2.message), String(r2));
    assert.equal(f.store.size, 0, 'the job prefix is removed');
    assert.equal(rt.isShutdown, true);
    assert.throws(
      () => rt.put(1),
      (e: unknown) => e instanceof UsageError && /put\(\) was called after shutdown\(\)/.test(e.message),
    );
    assert.throws(
      () => rt.remote(inc, 1),
      (e: unknown) => e instanceof UsageError && /inc\.remote\(\) was called after shutdown\(\)/.test(e.message),
    );
    await assert.rejects(rt.get(big), (e: unknown) => e instanceof UsageError && /shut down; its value is gone/.test(e.message));
    await rt.shutdown(); // idempotent
    f.openGate();
  });
});
