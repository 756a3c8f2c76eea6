/**
 * Independent oracles for tests: the textbook definitions, written without volley's code, so a
 * test that compares against them fails when volley's own implementation is wrong.
 */

/** C = A·B by the definition c[i][j] = Σ_k a[i][k]·b[k][j], for row-major A (n x k) and B (k x p). */
export function naiveProduct(n: number, k: number, a: ArrayLike<number>, p: number, b: ArrayLike<number>): Float64Array {
  const c = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * p + j]!;
      c[i * p + j] = s;
    }
  }
  return c;
}

/** Element-wise sum of two equally long arrays. */
export function naiveSum(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i]! + b[i]!);
}
