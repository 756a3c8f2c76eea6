/**
 * Self-contained copies of volley's Matrix kernels (sdk/matrix.ts: mulberry32, Box-Muller,
 * the i-k-j product, the element-wise sum), for the faast.js tasks: faast.js bundles its
 * function module with webpack, and the kernels must be the same arithmetic as volley's so
 * that only the system differs between columns.
 */
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
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ci = i * n;
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      if (aik === 0) continue;
      const bk = k * n;
      for (let j = 0; j < n; j++) c[ci + j]! += aik * b[bk + j]!;
    }
  }
  return c;
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
