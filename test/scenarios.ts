/**
 * Scenarios every target must pass, written once. `test/local` runs them on the embedded
 * runtime; the emulator tier runs them through the real Lambda Invoke and S3 protocols.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DependencyError, GetTimeoutError, Matrix, SerializationError, TaskError, TaskTimeoutError, seededRandom, type Runtime } from 'volley';
import { add, deepSum, describe as describeValue, failIfNegative, filled, inc, madd, makeMatrix, matmul, matrixKernel, nap } from './fixtures/tasks.js';
import { shout } from './fixtures/more-tasks.js';

export interface ScenarioOptions {
  /** Name of the tier, shown in test names. */
  tier: string;
  /** Starts a runtime on the tier. Called once; the scenarios shut it down. */
  start: () => Promise<Runtime>;
  /** Matrix size for W2. */
  matrixSize?: number;
  /** Scale of W1's sleeps (1 = the seed's seconds). */
  sleepScale?: number;
}

const W1 = [0.1, 0.2, 0.1, 0.5, 0.7, 0.9, 0.5, 0.4, 1.5, 1.3, 1.0, 0.3, 0.7, 0.6, 0.3, 0.8];

export function defineScenarios(o: ScenarioOptions): void {
  describe(`scenarios on ${o.tier}`, () => {
    let rt: Runtime;
    before(async () => {
      rt = await o.start();
    });
    after(async () => {
      await rt?.shutdown();
    });

    it('W1: fans out 16 sleeping tasks and returns their results in order', async () => {
      const scale = o.sleepScale ?? 0.2;
      const t0 = performance.now();
      const refs = W1.map((s, i) => rt.remote(nap, Math.round(s * 1000 * scale), `t${i}`));
      const out = await rt.get(refs);
      const elapsed = performance.now() - t0;
      assert.deepEqual(
        out,
        W1.map((s, i) => `t${i} after ${Math.round(s * 1000 * scale)} ms`),
      );
      // Sequentially this would take the sum of the sleeps; concurrency must beat that clearly.
      const sequential = W1.reduce((a, b) => a + b, 0) * 1000 * scale;
      assert.ok(elapsed < sequential, `16 tasks took ${elapsed.toFixed(0)} ms, no faster than running them one by one (${sequential} ms)`);
    });

    it('W2: matrices flow between tasks by ref; only the final sum is fetched', async () => {
      const n = o.matrixSize ?? 120;
      const [m1, m2, m3, m4] = [1, 2, 3, 4].map((seed) => rt.remote(makeMatrix, n, seed));
      const p1 = rt.remote(matmul, m1!, m2!);
      const p2 = rt.remote(matmul, m3!, m4!);
      const result = await rt.get(rt.remote(madd, p1, p2));
      const [a, b, c, d] = [1, 2, 3, 4].map((seed) => Matrix.random(n, n, seededRandom(seed)));
      const expected = a!.multiply(b!).add(c!.multiply(d!));
      assert.ok(result instanceof Matrix);
      assert.equal(result.rows, n);
      assert.deepEqual(result.data, expected.data);
      // The product ran on the WebAssembly SIMD kernel there, as it does here (Node 20+ has SIMD128).
      assert.equal(await rt.get(rt.remote(matrixKernel)), 'wasm-simd128');
    });

    it('resolves refs nested in arrays and plain objects', async () => {
      const one = rt.remote(add, 0, 1);
      const two = rt.put(2);
      const total = await rt.get(rt.remote(deepSum, { a: one, list: [two, 3, { deep: [one, two] }], n: 10 }));
      assert.equal(total, 1 + 2 + 3 + 1 + 2 + 10);
    });

    it('runs tasks from several modules and chains dependent tasks', async () => {
      let ref = rt.remote(inc, 0);
      for (let i = 0; i < 5; i++) ref = rt.remote(inc, ref);
      assert.equal(await rt.get(ref), 6);
      assert.equal(await rt.get(rt.remote(shout, 'hey')), 'HEY!');
    });

    it('keeps typed arrays, Buffers, Maps and large values intact through the store', async () => {
      const big = new Float64Array(50_000).map((_, i) => i * 0.5);
      const bigRef = rt.put(big);
      assert.equal(await rt.get(rt.remote(describeValue, bigRef)), `Float64Array(50000) sum=${big.reduce((a, b) => a + b, 0)}`);
      assert.equal(await rt.get(rt.remote(describeValue, Buffer.from('bytes'))), 'Buffer(5)');
      assert.equal(await rt.get(rt.remote(describeValue, new Map([[1, 'a']]))), 'Map(1)');
      const back = await rt.get(rt.remote(filled, 40_000, 1.25));
      assert.ok(back instanceof Float64Array);
      assert.equal(back.length, 40_000);
      assert.ok(back.every((v) => v === 1.25));
      assert.deepEqual(await rt.get(bigRef), big);
    });

    it('carries a task error through a chain of three tasks to get, with the original in the cause chain', async () => {
      const bad = rt.remote(failIfNegative, -5);
      const second = rt.remote(inc, bad);
      const third = rt.remote(inc, second);
      const err = await rt.get(third).then(
        () => assert.fail('get should have thrown'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DependencyError, `expected DependencyError, got ${String(err)}`);
      assert.equal(err.functionName, 'inc');
      assert.equal(err.code, 'DEPENDENCY_FAILED');
      assert.equal(err.retryable, false);
      let root: unknown = err;
      while (root instanceof DependencyError) root = root.cause;
      assert.ok(root instanceof TaskError);
      assert.equal(root.functionName, 'failIfNegative');
      assert.equal(root.remote?.name, 'ValidationFailure');
      assert.match(root.remote?.message ?? '', /expected a non-negative number, got -5/);
      assert.match(root.remote?.stack ?? '', /failIfNegative/);
      assert.equal(root.code, 'TASK_FAILED');
      assert.equal(root.retryable, false);
      await assert.rejects(rt.get(bad), (e: unknown) => e instanceof TaskError && e.fault === 'user');
    });

    it('stops a task that runs past its timeout and reports it', async () => {
      const slow = nap.options({ timeoutMs: 1000 });
      const err = await rt.get(rt.remote(slow, 5000, 'slow')).catch((e: unknown) => e);
      assert.ok(err instanceof TaskTimeoutError, `expected TaskTimeoutError, got ${String(err)}`);
      assert.equal(err.functionName, 'nap');
      assert.equal(err.code, 'TASK_TIMEOUT');
      assert.equal(err.retryable, true);
      // The runtime keeps working afterwards.
      assert.equal(await rt.get(rt.remote(add, 2, 3)), 5);
    });

    it('get with timeoutMs raises GetTimeoutError while the task keeps running', async () => {
      const ref = rt.remote(nap, 600, 'late');
      await assert.rejects(rt.get(ref, { timeoutMs: 50 }), (e: unknown) => e instanceof GetTimeoutError && e.pending.includes(ref.id));
      assert.equal(await rt.get(ref), 'late after 600 ms');
    });

    it('put once, use in many tasks; wait returns ready and pending in input order', async () => {
      const base = rt.put(100);
      const refs = [1500, 1, 1200].map((ms, i) => rt.remote(nap, ms, `w${i}`));
      const sums = await rt.get([1, 2, 3].map((k) => rt.remote(add, base, k)));
      assert.deepEqual(sums, [101, 102, 103]);
      const { ready, pending } = await rt.wait(refs, { numReturns: 1 });
      assert.deepEqual(ready, [refs[1]]);
      assert.deepEqual(pending, [refs[0], refs[2]]);
      const all = await rt.wait(refs, { numReturns: 3, timeoutMs: 10_000 });
      assert.deepEqual(all.ready, refs);
      const none = await rt.wait([rt.remote(nap, 500, 'x')], { timeoutMs: 10 });
      assert.equal(none.ready.length, 0);
    });

    it('rejects an argument that cannot travel at the call site', () => {
      class Point {
        constructor(readonly x: number) {}
      }
      assert.throws(
        () => rt.remote(describeValue, new Point(1)),
        (e: unknown) => e instanceof SerializationError && /class Point/.test(e.message) && e.path === 'args[0]',
      );
      assert.throws(
        () => rt.remote(describeValue, { f: () => 1 }),
        (e: unknown) => e instanceof SerializationError && e.path === 'args[0].f',
      );
    });
  });
}
