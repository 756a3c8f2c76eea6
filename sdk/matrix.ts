import { UsageError } from './errors.js';
import { kernelInfo, multiply, type KernelInfo } from './kernels/gemm.js';

const BRAND = Symbol.for('volley.Matrix');

/**
 * A dense row-major matrix of float64 values. It travels between tasks as raw bytes
 * (its `data` is a Float64Array), never as JSON.
 *
 * @public
 */
export class Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
  /** @internal brand that survives two copies of the library being loaded (ESM and CJS). */
  readonly [BRAND] = true;

  constructor(rows: number, cols: number, data?: Float64Array) {
    if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
      throw new UsageError(`Matrix dimensions must be non-negative integers, got ${rows}x${cols}`);
    }
    const n = rows * cols;
    if (data !== undefined && !(data instanceof Float64Array)) {
      throw new UsageError(`Matrix data must be a Float64Array, got ${Object.prototype.toString.call(data)}`);
    }
    if (data !== undefined && data.length !== n) {
      throw new UsageError(`Matrix ${rows}x${cols} needs ${n} values, but data has ${data.length}`);
    }
    this.rows = rows;
    this.cols = cols;
    this.data = data ?? new Float64Array(n);
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** A rows x cols matrix of independent standard normal values (Box-Muller). */
  static random(rows: number, cols: number, rng: () => number = Math.random): Matrix {
    const m = new Matrix(rows, cols);
    const d = m.data;
    for (let i = 0; i < d.length; i += 2) {
      const u = 1 - rng();
      const v = rng();
      const r = Math.sqrt(-2 * Math.log(u));
      d[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < d.length) d[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return m;
  }

  /** The value at row i, column j. */
  get(i: number, j: number): number {
    return this.data[i * this.cols + j]!;
  }

  /**
   * Which kernel `multiply` uses in this runtime: 'wasm-simd128' (WebAssembly SIMD, several
   * times faster) where the runtime has WebAssembly with SIMD128, else 'js', with the reason.
   * Both give the same results (bit for bit for finite values); a product whose right operand
   * holds an infinity or NaN always runs on the JS kernel (see sdk/kernels/gemm.ts).
   */
  static get kernel(): KernelInfo {
    return kernelInfo();
  }

  /** The matrix product this · other (see `Matrix.kernel` for how it is computed). */
  multiply(other: Matrix): Matrix {
    if (this.cols !== other.rows) {
      throw new UsageError(`cannot multiply a ${this.rows}x${this.cols} matrix by a ${other.rows}x${other.cols} matrix`);
    }
    return new Matrix(this.rows, other.cols, multiply(this.data, other.data, this.rows, this.cols, other.cols));
  }

  /** The element-wise sum this + other. */
  add(other: Matrix): Matrix {
    if (this.rows !== other.rows || this.cols !== other.cols) {
      throw new UsageError(`cannot add a ${this.rows}x${this.cols} matrix to a ${other.rows}x${other.cols} matrix`);
    }
    const out = new Matrix(this.rows, this.cols);
    const a = this.data;
    const b = other.data;
    const c = out.data;
    for (let i = 0; i < c.length; i++) c[i] = a[i]! + b[i]!;
    return out;
  }

  /** Sum of all elements: a cheap checksum for comparing results. */
  sum(): number {
    let s = 0;
    const d = this.data;
    for (let i = 0; i < d.length; i++) s += d[i]!;
    return s;
  }
}

/** A small seeded PRNG (mulberry32), so that examples and tests can reproduce matrices. */
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
