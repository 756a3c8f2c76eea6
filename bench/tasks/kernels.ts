/**
 * volley's Matrix arithmetic (sdk/matrix.ts: mulberry32, Box-Muller, the element-wise sum)
 * without the Matrix class, for the faast.js tasks, whose values travel as plain arrays. The
 * kernels must be the same arithmetic as volley's so that only the system differs between
 * columns: the product calls volley's own kernel (sdk/kernels/gemm.ts, the WebAssembly SIMD
 * one where the runtime has it), as the bare pool's tasks do through Matrix.multiply.
 */
import { multiply as gemm } from '../../sdk/kernels/gemm.js';

export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomMatrix(size: number, seed: number): Float64Array {
  const rng = seededRandom(seed);
  const d = new Float64Array(size * size);
  for (let i = 0; i < d.length; i += 2) {
    const u = 1 - rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    d[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < d.length) d[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return d;
}

export function multiply(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const f64 = (x: ArrayLike<number>) => (x instanceof Float64Array ? x : Float64Array.from(x));
  return gemm(f64(a), f64(b), n, n, n);
}

export function add(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const c = new Float64Array(a.length);
  for (let i = 0; i < c.length; i++) c[i] = a[i]! + b[i]!;
  return c;
}

export function checksum(d: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]!;
  return s;
}
