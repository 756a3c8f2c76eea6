/**
 * Matrix maths against independent oracles: products worked out by hand, and a naive
 * triple loop (row times column, the textbook definition) on random rectangular matrices.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Matrix, UsageError, seededRandom } from 'volley';
import { naiveProduct } from '../oracle.js';

const m = (rows: number, cols: number, values: number[]) => new Matrix(rows, cols, new Float64Array(values));

describe('Matrix', () => {
  it('multiplies known matrices to their hand-computed products', () => {
    // [1 2 3]   [ 7  8]   [ 58  64]
    // [4 5 6] x [ 9 10] = [139 154]
    //           [11 12]
    const p = m(2, 3, [1, 2, 3, 4, 5, 6]).multiply(m(3, 2, [7, 8, 9, 10, 11, 12]));
    assert.equal(p.rows, 2);
    assert.equal(p.cols, 2);
    assert.deepEqual([...p.data], [58, 64, 139, 154]);
    // Not commutative: the other order is 3x3.
    const q = m(3, 2, [7, 8, 9, 10, 11, 12]).multiply(m(2, 3, [1, 2, 3, 4, 5, 6]));
    assert.deepEqual([...q.data], [39, 54, 69, 49, 68, 87, 59, 82, 105]);
    // Zeros in the left matrix (skipped by the inner loop) still give the right product.
    assert.deepEqual([...m(2, 2, [0, 1, 0, 0]).multiply(m(2, 2, [5, 6, 7, 8])).data], [7, 8, 0, 0]);
    // A row vector times a column vector, and the identity.
    assert.deepEqual([...m(1, 3, [1, -2, 3]).multiply(m(3, 1, [4, 5, 6])).data], [12]);
    const a = m(2, 2, [1.5, -2, 3, 4]);
    assert.deepEqual([...a.multiply(m(2, 2, [1, 0, 0, 1])).data], [...a.data]);
  });

  it('agrees with a naive triple loop on random rectangular matrices', () => {
    const rng = seededRandom(7);
    for (const [n, k, p] of [
      [1, 1, 1],
      [3, 5, 2],
      [17, 9, 23],
      [40, 40, 40],
    ] as const) {
      const a = Matrix.random(n, k, rng);
      const b = Matrix.random(k, p, rng);
      const got = a.multiply(b);
      const want = naiveProduct(a.rows, a.cols, a.data, b.cols, b.data);
      assert.equal(got.rows, n);
      assert.equal(got.cols, p);
      for (let i = 0; i < want.length; i++) {
        assert.ok(Math.abs(got.data[i]! - want[i]!) <= 1e-12 * Math.max(1, Math.abs(want[i]!)), `${n}x${k}·${k}x${p}: element ${i} is ${got.data[i]}, expected ${want[i]}`);
      }
    }
  });

  it('adds element-wise, sums all elements and reads by row and column', () => {
    const s = m(2, 3, [1, 2, 3, 4, 5, 6]).add(m(2, 3, [10, 20, 30, 40, 50, 60]));
    assert.deepEqual([...s.data], [11, 22, 33, 44, 55, 66]);
    assert.equal(s.sum(), 231);
    assert.equal(s.get(0, 2), 33);
    assert.equal(s.get(1, 0), 44);
    assert.equal(new Matrix(0, 0).sum(), 0);
  });

  it('refuses mismatched shapes and bad data, saying which', () => {
    assert.throws(
      () => m(2, 3, [1, 2, 3, 4, 5, 6]).multiply(m(2, 3, [1, 2, 3, 4, 5, 6])),
      (e: unknown) => e instanceof UsageError && /cannot multiply a 2x3 matrix by a 2x3 matrix/.test(e.message),
    );
    assert.throws(
      () => m(2, 2, [1, 2, 3, 4]).add(m(2, 1, [1, 2])),
      (e: unknown) => e instanceof UsageError && /cannot add a 2x2 matrix to a 2x1 matrix/.test(e.message),
    );
    assert.throws(
      () => new Matrix(2, 2, new Float64Array(3)),
      (e: unknown) => e instanceof UsageError && /needs 4 values, but data has 3/.test(e.message),
    );
    assert.throws(
      () => new Matrix(-1, 2),
      (e: unknown) => e instanceof UsageError && /non-negative integers, got -1x2/.test(e.message),
    );
    assert.throws(() => new Matrix(1.5, 2), UsageError);
    assert.throws(
      () => new Matrix(1, 2, [1, 2] as never),
      (e: unknown) => e instanceof UsageError && /must be a Float64Array/.test(e.message),
    );
  });

  it('draws standard normal values, reproducibly from a seed', () => {
    const a = Matrix.random(100, 101, seededRandom(3));
    assert.deepEqual(a.data, Matrix.random(100, 101, seededRandom(3)).data);
    assert.notDeepEqual(a.data, Matrix.random(100, 101, seededRandom(4)).data);
    const n = a.data.length;
    const mean = a.sum() / n;
    const variance = a.data.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
    // 10,100 draws: the mean is within 4 standard errors of 0, the variance near 1.
    assert.ok(Math.abs(mean) < 4 / Math.sqrt(n), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.1, `variance ${variance}`);
    assert.ok(a.data.every((x) => Number.isFinite(x)));
  });
});
