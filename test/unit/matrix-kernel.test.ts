/**
 * The matrix product kernels (sdk/kernels/gemm.ts): the WebAssembly SIMD kernel and the JS
 * fallback, each against an independent oracle (the textbook triple loop), on small, odd,
 * non-square and block-crossing shapes; which kernel runs where; and how the package entries
 * load the kernel.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Matrix, seededRandom } from 'volley';
import { chooseKernel, multiplyJs, multiplyWasm, type WasmApi } from '../../sdk/kernels/gemm.js';
import { naiveProduct } from '../oracle.js';

const dist = fileURLToPath(new URL('../../', import.meta.url));

/** Every value within 1e-12 relative of the oracle's (absolute near zero, relative to the row's scale). */
function assertClose(got: Float64Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = 1e-12 * Math.max(1, Math.abs(want[i]!));
    assert.ok(Math.abs(got[i]! - want[i]!) <= tol, `${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

const rng = seededRandom(20261126);
const random = (len: number) => Matrix.random(1, len, rng).data;

/** Shapes: 1x1, the classic 3x5 · 5x2, odd and prime sizes, and sizes past the 4x4 tile, the
 * 64-row and 256-deep blocks of the kernel; plus sized random shapes. */
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 2],
  [2, 3, 1],
  [1, 7, 1],
  [5, 1, 6],
  [4, 4, 4],
  [7, 13, 9],
  [17, 3, 31],
  [65, 257, 67],
  [130, 40, 5],
  [3, 300, 129],
];
for (let i = 0; i < 24; i++) SHAPES.push([1 + Math.floor(rng() * 40), 1 + Math.floor(rng() * 40), 1 + Math.floor(rng() * 40)]);

describe('the matrix product kernels', () => {
  it('runs the WebAssembly SIMD kernel on this Node', () => {
    assert.equal(Matrix.kernel.name, 'wasm-simd128', Matrix.kernel.reason);
  });

  for (const [kernel, mul] of [
    ['WebAssembly SIMD', (a: Float64Array, b: Float64Array, n: number, m: number, p: number) => multiplyWasm(a, b, n, m, p)],
    ['JS (the fallback)', multiplyJs],
  ] as const) {
    it(`${kernel}: equals the triple loop within 1e-12 relative on ${SHAPES.length} shapes`, () => {
      for (const [n, m, p] of SHAPES) {
        const a = random(n * m);
        const b = random(m * p);
        assertClose(mul(a, b, n, m, p), naiveProduct(n, m, a, p, b), `${n}x${m} · ${m}x${p}`);
      }
    });
  }

  it("gives the JS kernel's results bit for bit (same order of summation), also through Matrix.multiply", () => {
    for (const [n, m, p] of SHAPES) {
      const a = new Matrix(n, m, random(n * m));
      const b = new Matrix(m, p, random(m * p));
      const js = multiplyJs(a.data, b.data, n, m, p);
      assert.deepEqual(multiplyWasm(a.data, b.data, n, m, p), js, `${n}x${m} · ${m}x${p}`);
      assert.deepEqual(a.multiply(b).data, js, `Matrix.multiply ${n}x${m} · ${m}x${p}`);
    }
  });

  it('cuts a product too large for one call into blocks of rows and columns, with the same result', () => {
    // Working sets of a few KiB force several row and column blocks (and ragged last blocks).
    for (const [n, m, p] of [
      [37, 29, 23],
      [9, 300, 10],
      [64, 8, 70],
    ] as const) {
      const a = random(n * m);
      const b = random(m * p);
      const want = multiplyJs(a, b, n, m, p);
      for (const block of [140_000, 160_000, 200_000]) assert.deepEqual(multiplyWasm(a, b, n, m, p, block), want, `${n}x${m} · ${m}x${p} in ${block}-byte blocks`);
    }
  });

  it('handles empty dimensions and zero matrices', () => {
    assert.deepEqual(new Matrix(0, 3).multiply(new Matrix(3, 4)).data, new Float64Array(0));
    assert.deepEqual(new Matrix(2, 0).multiply(new Matrix(0, 3)).data, new Float64Array(6));
    assert.deepEqual(new Matrix(3, 5).multiply(Matrix.random(5, 2, rng)).data, new Float64Array(6));
  });

  it("keeps the JS kernel's answer where B holds infinities or NaN (a zero in A skips its row of B)", () => {
    const a = new Matrix(1, 2, new Float64Array([0, 1]));
    const b = new Matrix(2, 1, new Float64Array([Infinity, 2]));
    assert.deepEqual(a.multiply(b).data, new Float64Array([2]));
    // The SIMD kernel alone follows IEEE 754 (0 · ∞ = NaN): that is why such products go to the JS kernel.
    assert.ok(Number.isNaN(multiplyWasm(a.data, b.data, 1, 2, 1)[0]));
    const c = new Matrix(2, 2, new Float64Array([1, 0, 0, 1]));
    const d = new Matrix(2, 2, new Float64Array([NaN, 1, -Infinity, 3]));
    const got = c.multiply(d).data;
    assert.ok(Number.isNaN(got[0]));
    assert.deepEqual([...got.slice(1)], [1, -Infinity, 3]);
  });

  it('falls back to the JS kernel, saying why, where WebAssembly or its SIMD is missing', () => {
    const none = chooseKernel(undefined);
    assert.equal(none.info.name, 'js');
    assert.match(none.info.reason, /no WebAssembly/);
    // An engine without SIMD128 rejects the module at validation, as WebAssembly.validate does.
    const real = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const noSimd: WasmApi = { ...real, validate: () => false, Module: real.Module, Instance: real.Instance, Memory: real.Memory };
    const old = chooseKernel(noSimd);
    assert.equal(old.info.name, 'js');
    assert.match(old.info.reason, /SIMD128/);
    assert.equal(chooseKernel(real).info.name, 'wasm-simd128');
  });

  it('a Node without WebAssembly (--jitless) multiplies with the JS kernel and gets the same bits', async () => {
    const script = `
      const { Matrix, seededRandom } = await import(${JSON.stringify(`${dist}esm/index.js`)});
      const r = seededRandom(7);
      const c = Matrix.random(9, 11, r).multiply(Matrix.random(11, 6, r));
      console.log(JSON.stringify({ kernel: Matrix.kernel, data: [...c.data] }));`;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--jitless', '--input-type=module', '-e', script], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    const { kernel, data } = JSON.parse(out) as { kernel: { name: string; reason: string }; data: number[] };
    assert.equal(kernel.name, 'js');
    assert.match(kernel.reason, /no WebAssembly/);
    const r = seededRandom(7);
    assert.deepEqual(data, [...Matrix.random(9, 11, r).multiply(Matrix.random(11, 6, r)).data]);
  });

  it('loads from the CommonJS entry too (the kernel is embedded, no file to find)', () => {
    const cjs = createRequire(import.meta.url)(`${dist}cjs/index.cjs`) as typeof import('volley');
    assert.equal(cjs.Matrix.kernel.name, 'wasm-simd128');
    const a = cjs.Matrix.random(5, 7, seededRandom(1));
    const b = cjs.Matrix.random(7, 3, seededRandom(2));
    assertClose(a.multiply(b).data, naiveProduct(5, 7, a.data, 3, b.data), 'CJS 5x7 · 7x3');
  });
});
