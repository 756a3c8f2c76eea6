/**
 * The orchestrator against a fake backend: tasks run in this process through the real
 * worker-side code, and the fake records every invocation and every store access.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DependencyError, Matrix, Runtime, TaskError } from 'volley';
import type { Backend, InvokeOptions, ObjectStore } from '../../sdk/backend.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { add, deepSum, failIfNegative, inc, madd, makeMatrix, matmul, describe as describeValue } from '../fixtures/tasks.js';

class CountingStore implements ObjectStore {
  gets: string[] = [];
  puts: string[] = [];
  constructor(readonly inner: MemoryStore) {}
  put(key: string, bytes: Uint8Array) {
    this.puts.push(key);
    return this.inner.put(key, bytes);
  }
  get(key: string) {
    this.gets.push(key);
    return this.inner.get(key);
  }
  deletePrefix(prefix: string) {
    return this.inner.deletePrefix(prefix);
  }
}

/** Lets every pending promise chain and I/O callback of the in-process backend run. */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Runs tasks in-process; with `manual`, each invocation waits until released. */
function fakeBackend(opts: { maxConcurrency?: number; manual?: boolean } = {}) {
  const shared = new MemoryStore();
  const driverStore = new CountingStore(shared);
  const workerStore = new CountingStore(shared);
  const invoked: TaskEnvelope[] = [];
  const held: Array<() => void> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const backend: Backend = {
    name: 'fake',
    keyPrefix: 'volley/',
    maxConcurrency: opts.maxConcurrency ?? 100,
    store: driverStore,
    invoker: {
      async invoke(env: TaskEnvelope, _o: InvokeOptions): Promise<ResultEnvelope> {
        invoked.push(env);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        if (opts.manual) await new Promise<void>((r) => held.push(r));
        try {
          return await executeTask(structuredClone(env), { store: workerStore, keyPrefix: 'volley/' });
        } finally {
          inFlight--;
        }
      },
      async close() {},
    },
  };
  const release = async () => {
    while (held.length) held.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { backend, driverStore, workerStore, invoked, held, release, maxInFlight: () => maxInFlight, shared };
}

describe('orchestrator', () => {
  it('dispatches a task only when all its ref arguments are ready', async () => {
    const f = fakeBackend({ manual: true });
    const rt = new Runtime({}, { backend: f.backend });
    await rt.ready();
    const a = rt.remote(inc, 1);
    const b = rt.remote(inc, 10);
    const c = rt.remote(add, a, b);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      f.invoked.map((e) => e.fn),
      ['inc', 'inc'],
    );
    f.held.shift()!(); // a finishes, b is still running
    await turns(); // every in-process step that can run has run: no clock involved
    assert.deepEqual(
      f.invoked.map((e) => e.fn),
      ['inc', 'inc'],
    );
    await f.release();
    await turns(); // every in-process step that can run has run: no clock involved
    assert.deepEqual(
      f.invoked.map((e) => e.fn),
      ['inc', 'inc', 'add'],
    );
    await f.release();
    assert.equal(await rt.get(c), 13);
    await rt.shutdown();
  });

  it('keeps at most maxConcurrency tasks in flight', async () => {
    const f = fakeBackend({ maxConcurrency: 3 });
    const rt = new Runtime({ maxConcurrency: 3 }, { backend: f.backend });
    const out = await rt.get(Array.from({ length: 20 }, (_, i) => rt.remote(inc, i)));
    assert.deepEqual(
      out,
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.equal(f.maxInFlight(), 3);
    await rt.shutdown();
  });

  it('hands refs to workers as store keys: the driver reads only what get asks for', async () => {
    const f = fakeBackend();
    const rt = new Runtime({ inlineThresholdBytes: 1024 }, { backend: f.backend });
    const [m1, m2, m3, m4] = [1, 2, 3, 4].map((s) => rt.remote(makeMatrix, 20, s));
    const sum = rt.remote(madd, rt.remote(matmul, m1!, m2!), rt.remote(matmul, m3!, m4!));
    const result = await rt.get(sum);
    assert.ok(result instanceof Matrix);
    assert.deepEqual(f.driverStore.gets, [`volley/jobs/${rt.jobId}/${rt.runId}/${sum.id}`]);
    assert.equal(f.driverStore.puts.length, 0);
    // Every intermediate was written once by a worker and read by the worker that needed it.
    assert.equal(f.workerStore.puts.length, 7);
    assert.equal(f.workerStore.gets.length, 6);
    const matmulEnv = f.invoked.find((e) => e.fn === 'matmul')!;
    assert.deepEqual(
      Object.values(matmulEnv.deps).map((p) => p.kind),
      ['stored', 'stored'],
    );
    await rt.shutdown();
    assert.equal(f.shared.size, 0, "shutdown removes the job's objects");
  });

  it('uploads a large call-site argument once, and a put() value once for many tasks', async () => {
    const f = fakeBackend();
    const rt = new Runtime({ inlineThresholdBytes: 1024 }, { backend: f.backend });
    const big = new Float64Array(10_000).fill(2);
    assert.match(await rt.get(rt.remote(describeValue, big)), /^Float64Array\(10000\) sum=20000$/);
    assert.equal(f.driverStore.puts.length, 1);
    const shared = rt.put(big);
    await rt.get([1, 2, 3].map(() => rt.remote(describeValue, shared)));
    assert.equal(f.driverStore.puts.length, 2);
    for (const env of f.invoked) {
      const inlineBytes = [env.args, ...Object.values(env.deps)].reduce((n, p) => n + (p.kind === 'inline' ? p.bytes.length : 0), 0);
      assert.ok(inlineBytes <= 1024, `envelope of ${env.fn} carries ${inlineBytes} inline bytes`);
    }
    await rt.shutdown();
  });

  it('fails the dependents of a failed task without running them', async () => {
    const f = fakeBackend();
    const rt = new Runtime({}, { backend: f.backend });
    const bad = rt.remote(failIfNegative, -1);
    const dep1 = rt.remote(inc, bad);
    const dep2 = rt.remote(add, dep1, 5);
    await assert.rejects(rt.get(dep2), (e: unknown) => e instanceof DependencyError && e.cause instanceof DependencyError && (e.cause as DependencyError).cause instanceof TaskError);
    // Submitted after the failure is known: fails at once, too.
    await assert.rejects(rt.get(rt.remote(inc, dep2)), DependencyError);
    assert.deepEqual(
      f.invoked.map((e) => e.fn),
      ['failIfNegative'],
    );
    const { ready, pending } = await rt.wait([dep1, dep2], { numReturns: 2 });
    assert.equal(ready.length, 2, 'failed refs count as ready in wait()');
    assert.equal(pending.length, 0);
    await rt.shutdown();
  });
});

describe('envelope size', () => {
  it('passes many small ref values by key once they would overflow one envelope', async () => {
    const f = fakeBackend();
    const rt = new Runtime({}, { backend: f.backend });
    // 40 values of ~90 KiB: each is inline (under 100 KiB), together 3.5 MiB.
    const parts = Array.from({ length: 40 }, (_, i) => rt.put(new Float64Array(11_500).fill(i)));
    const total = await rt.get(
      rt.remote(
        deepSum,
        parts.map((p) => ({ p })),
      ),
    );
    assert.equal(total, (11_500 * (39 * 40)) / 2, 'every value arrived intact');
    const env = f.invoked.at(-1)!;
    const inlineBytes = [env.args, ...Object.values(env.deps)].reduce((n, p) => n + (p.kind === 'inline' ? p.bytes.length : 0), 0);
    assert.ok(inlineBytes <= 3 * 1024 * 1024, `envelope carries ${inlineBytes} inline bytes`);
    assert.ok(f.driverStore.puts.length > 0 && f.driverStore.puts.length < 40, `${f.driverStore.puts.length} values moved to the store`);
    // A second task with the same refs reuses what was already written.
    const before = f.driverStore.puts.length;
    await rt.get(rt.remote(deepSum, parts));
    assert.equal(f.driverStore.puts.length, before);
    await rt.shutdown();
  });
});
