/**
 * Scenarios every target must pass, written once. `test/local` runs them on the embedded
 * runtime; the emulator tier runs them through the real Lambda Invoke and S3 protocols.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DependencyError, GetTimeoutError, Matrix, SerializationError, TaskError, TaskTimeoutError, seededRandom, type Runtime } from 'volley';
import {
  add,
  deepSum,
  describe as describeValue,
  echo,
  failIfNegative,
  filled,
  inc,
  madd,
  makeMatrix,
  matmul,
  matrixKernel,
  nap,
  quickUnless,
  rendezvous,
  returnsFunction,
  throwsString,
} from './fixtures/tasks.js';
import { shout } from './fixtures/more-tasks.js';
import { naiveProduct, naiveSum } from './oracle.js';

export interface ScenarioOptions {
  /** Name of the tier, shown in test names. */
  tier: string;
  /** Starts a runtime on the tier. Called once; the scenarios shut it down. */
  start: () => Promise<Runtime>;
  /** Matrix size for W2. */
  matrixSize?: number;
  /** Scale of W1's sleeps (1 = the seed's seconds). */
  sleepScale?: number;
  /**
   * A directory every worker of the tier can see (workers on this machine). Where there is
   * one, a barrier in it checks that 16 tasks really run side by side.
   */
  sharedDir?: string;
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
      const refs = W1.map((s, i) => rt.remote(nap, Math.round(s * 1000 * scale), `t${i}`));
      const out = await rt.get(refs);
      assert.deepEqual(
        out,
        W1.map((s, i) => `t${i} after ${Math.round(s * 1000 * scale)} ms`),
      );
    });

    // Side by side, shown by a barrier rather than by a stopwatch: each of the 16 tasks waits
    // until all 16 have started, so with fewer running at once they would see fewer.
    it('runs 16 tasks side by side', { skip: o.sharedDir ? false : 'needs a directory that every worker sees' }, async () => {
      const dir = mkdtempSync(join(o.sharedDir!, 'volley-rendezvous-'));
      try {
        const seen = await rt.get(Array.from({ length: 16 }, (_, i) => rt.remote(rendezvous, dir, `t${i}`, 16)));
        assert.deepEqual(seen, Array(16).fill(16));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('W2: matrices flow between tasks by ref; the result is the product sum, checked by a naive triple loop', async () => {
      const n = o.matrixSize ?? 120;
      const [m1, m2, m3, m4] = [1, 2, 3, 4].map((seed) => rt.remote(makeMatrix, n, seed));
      const p1 = rt.remote(matmul, m1!, m2!);
      const p2 = rt.remote(matmul, m3!, m4!);
      const result = await rt.get(rt.remote(madd, p1, p2));
      const [a, b, c, d] = [1, 2, 3, 4].map((seed) => Matrix.random(n, n, seededRandom(seed)).data);
      const expected = naiveSum(naiveProduct(n, n, a!, n, b!), naiveProduct(n, n, c!, n, d!));
      assert.ok(result instanceof Matrix);
      assert.equal(result.rows, n);
      assert.equal(result.cols, n);
      for (let i = 0; i < expected.length; i++) {
        if (Math.abs(result.data[i]! - expected[i]!) > 1e-9 * Math.max(1, Math.abs(expected[i]!))) {
          assert.fail(`element (${Math.floor(i / n)}, ${i % n}) is ${result.data[i]}, the triple loop gives ${expected[i]}`);
        }
      }
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
      // Above the 100 KiB inline threshold both ways: the argument and the result go through the store.
      const buf = Buffer.alloc(300_000);
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 7) & 0xff;
      const bufBack = await rt.get(rt.remote(echo, buf));
      assert.ok(Buffer.isBuffer(bufBack), 'a Buffer comes back as a Buffer');
      assert.ok(bufBack.equals(buf), 'byte for byte');
      const map = new Map<unknown, unknown>(Array.from({ length: 5_000 }, (_, i) => [i % 2 ? `k${i}` : i, { i, s: 'x'.repeat(20), d: new Date(i) }]));
      const mapBack = await rt.get(rt.remote(echo, map));
      assert.ok(mapBack instanceof Map);
      assert.deepEqual(mapBack, map);
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
      const ref = rt.remote(slow, 5000, 'slow');
      const err = await rt.get(ref).catch((e: unknown) => e);
      assert.ok(err instanceof TaskTimeoutError, `expected TaskTimeoutError, got ${String(err)}`);
      assert.equal(err.functionName, 'nap');
      assert.equal(err.code, 'TASK_TIMEOUT');
      assert.equal(err.retryable, true);
      assert.equal(err.taskId, ref.id);
      assert.equal(err.timeoutMs, 1000);
      assert.equal(err.fault, 'infrastructure');
      assert.match(err.message, /timed out after 1000 ms and was stopped; raise its timeout with nap\.options\(\{ timeoutMs \}\)/);
      // The runtime keeps working afterwards.
      assert.equal(await rt.get(rt.remote(add, 2, 3)), 5);
    });

    it('get with timeoutMs raises GetTimeoutError while the task keeps running', async () => {
      const ref = rt.remote(nap, 600, 'late');
      await assert.rejects(rt.get(ref, { timeoutMs: 50 }), (e: unknown) => e instanceof GetTimeoutError && e.pending.includes(ref.id));
      assert.equal(await rt.get(ref), 'late after 600 ms');
    });

    it('put once, use in many tasks', async () => {
      // 160 KB: above the inline threshold, so it is stored once and every task reads it.
      const values = new Float64Array(20_000).map((_, i) => i % 100);
      const base = rt.put(values);
      const sums = await rt.get([1, 2, 3].map((k) => rt.remote(deepSum, [base, k])));
      const total = values.reduce((a, b) => a + b, 0);
      assert.deepEqual(sums, [total + 1, total + 2, total + 3]);
    });

    it('wait returns ready and pending in input order', async () => {
      // Tasks that never finish on their own are pending whatever the machine's speed.
      const hang = quickUnless.options({ timeoutMs: 60_000 });
      const refs = [rt.remote(hang, 0, 0, 'hang'), rt.remote(inc, 1), rt.remote(hang, 2, 2, 'hang'), rt.remote(inc, 3)];
      await rt.get([refs[1]!, refs[3]!]);
      const { ready, pending } = await rt.wait(refs, { numReturns: 1 });
      assert.deepEqual(ready, [refs[1]]);
      assert.deepEqual(pending, [refs[0], refs[2], refs[3]]);
      const two = await rt.wait(refs, { numReturns: 2, timeoutMs: 0 });
      assert.deepEqual(two.ready, [refs[1], refs[3]]);
      assert.deepEqual(two.pending, [refs[0], refs[2]]);
      const none = await rt.wait(refs, { numReturns: 3, timeoutMs: 10 });
      assert.deepEqual(none.ready, [refs[1], refs[3]], 'after the timeout, what is ready');
      assert.deepEqual(none.pending, [refs[0], refs[2]]);
    });

    it('a task that throws something other than an Error fails with what it threw', async () => {
      const ref = rt.remote(throwsString, 'plain string');
      const err = await rt.get(ref).catch((e: unknown) => e);
      assert.ok(err instanceof TaskError && !(err instanceof DependencyError), String(err));
      assert.equal(err.fault, 'user');
      assert.equal(err.remote?.name, 'NonErrorThrown');
      assert.match(err.remote?.message ?? '', /a non-Error value was thrown: plain string/);
    });

    it('a task whose result cannot travel fails with a SerializationError naming the result', async () => {
      const err = await rt.get(rt.remote(returnsFunction)).catch((e: unknown) => e);
      assert.ok(err instanceof TaskError, String(err));
      assert.equal(err.fault, 'user');
      assert.equal(err.remote?.name, 'SerializationError');
      assert.match(err.remote?.message ?? '', /^result of returnsFunction is a function, which cannot be sent/);
      assert.equal(await rt.get(rt.remote(inc, 1)), 2, 'the worker keeps working');
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
