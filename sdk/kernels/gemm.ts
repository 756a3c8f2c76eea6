/**
 * The float64 matrix product behind `Matrix.multiply`: a WebAssembly SIMD128 kernel
 * (sdk/kernels/gemm.wat) where the runtime has WebAssembly with SIMD, and the JavaScript i-k-j
 * loop otherwise.
 *
 * Why a kernel of our own: V8 does not vectorise the JavaScript loop (a cache-blocked JS loop is
 * no faster), and no maintained npm package does a float64 matrix product in WebAssembly SIMD:
 * @stdlib/blas's dgemm is plain JavaScript (or a native addon), the TensorFlow.js WASM backend is
 * float32 only, ml-matrix and mathjs are plain JavaScript. WebAssembly's f64x2 runs as SSE/AVX
 * on x86-64 and as NEON on arm64 (Lambda's Graviton), from the same bytes. The kernel is written
 * in the WebAssembly text format and assembled at build time by wabt (infra/build-wasm.mjs): the
 * same kernel in AssemblyScript ran as fast and gave the same bits, but its toolchain is ~100 MB
 * (binaryen) against wabt's 5.5 MB with no dependencies, and in WAT the instructions that decide
 * the rounding are exactly the ones written.
 *
 * Both kernels give the same bits for finite inputs: each C[i][j] is summed in the order
 * k = 0..m-1 with a separate multiply and add per term, from +0 (see gemm.wat). Where B holds
 * an infinity or NaN the JS kernel runs, because it skips zeros of A (0 · ∞ adds nothing there,
 * NaN in the SIMD kernel), and the two would differ.
 */
import { UsageError } from '../errors.js';
import { GEMM_WASM } from './gemm-wasm.generated.js';

/**
 * Which kernel `Matrix.multiply` uses in this runtime, and why.
 *
 * @public
 */
export interface KernelInfo {
  /** 'wasm-simd128': the WebAssembly SIMD kernel; 'js': the JavaScript loop (no WebAssembly SIMD here). */
  name: 'wasm-simd128' | 'js';
  /** Why that kernel, e.g. "this runtime has no WebAssembly (as under node --jitless)". */
  reason: string;
}

/** The JavaScript kernel: C = A · B for row-major A (n x m) and B (m x p). */
export function multiplyJs(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  const c = new Float64Array(n * p);
  // i-k-j order: the inner loop walks rows of b and c contiguously.
  for (let i = 0; i < n; i++) {
    const ci = i * p;
    for (let k = 0; k < m; k++) {
      const aik = a[i * m + k]!;
      if (aik === 0) continue;
      const bk = k * p;
      for (let j = 0; j < p; j++) c[ci + j]! += aik * b[bk + j]!;
    }
  }
  return c;
}

// Tile and block sizes of gemm.wat: the micro-kernel updates 4 x 4 values of C; a block of
// MC rows x KC values of A (128 KiB) is packed at a time. Measured on x86-64: 4x4 tiles with
// 64 x 256 blocks were as fast as 6x4 or 3x8 tiles and other block sizes, within noise.
const TILE = 4;
const MC = 64;
const KC = 256;
const PAGE = 65536;
/** Memory a thread keeps between products (the module's memory never shrinks): 16 MiB. */
const KEEP_BYTES = 16 * 2 ** 20;
/** Working set of one call into the module; larger products are cut into blocks of rows and columns. */
const BLOCK_BYTES = 512 * 2 ** 20;

/**
 * The part of the WebAssembly JS API used here (the project's lib settings and @types/node 20
 * do not declare it).
 */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

type Gemm = (a: number, pb: number, c: number, wa: number, rows: number, m: number, ldc: number, mc: number, kc: number) => void;

let info: KernelInfo | undefined;
let module: object | undefined;
let api: WasmApi | undefined;
/** This thread's kept instance and its memory (at most KEEP_BYTES). */
let kept: { memory: WasmMemory; gemm: Gemm } | undefined;

function bytes(): Uint8Array {
  return new Uint8Array(Buffer.from(GEMM_WASM, 'base64'));
}

/**
 * Picks the kernel for a runtime: the SIMD one if `wasm` (the runtime's WebAssembly object)
 * exists and validates the module (an engine without SIMD128 rejects its f64x2 instructions).
 * Anything else that fails while compiling is a bug and is thrown, not hidden.
 */
export function chooseKernel(wasm: WasmApi | undefined): { info: KernelInfo; module?: object } {
  if (wasm === undefined) {
    return { info: { name: 'js', reason: 'this runtime has no WebAssembly (as under node --jitless)' } };
  }
  const code = bytes();
  if (!wasm.validate(code)) {
    return { info: { name: 'js', reason: "this runtime's WebAssembly does not accept the SIMD128 (f64x2) kernel" } };
  }
  return { info: { name: 'wasm-simd128', reason: 'WebAssembly with SIMD128 is available' }, module: new wasm.Module(code) };
}

/** The kernel `Matrix.multiply` uses here (decided once per thread, on first use). */
export function kernelInfo(): KernelInfo {
  if (!info) {
    api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    const chosen = chooseKernel(api);
    info = chosen.info;
    module = chosen.module;
  }
  return info;
}

/** C = A · B with the best kernel of this runtime; same contract as multiplyJs. */
export function multiply(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  if (kernelInfo().name === 'js' || !allFinite(b)) return multiplyJs(a, b, n, m, p);
  return multiplyWasm(a, b, n, m, p);
}

function allFinite(d: Float64Array): boolean {
  for (let i = 0; i < d.length; i++) {
    const x = d[i]!;
    if (x - x !== 0) return false; // NaN for ±Infinity and NaN
  }
  return true;
}

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

function instance(needBytes: number): { memory: WasmMemory; gemm: Gemm } {
  const why = kernelInfo().reason;
  const wasm = api;
  const code = module;
  if (!wasm || !code) throw new UsageError(`the WebAssembly matrix kernel cannot run here: ${why}; use the JS kernel (multiplyJs)`);
  const make = (pages: number) => {
    const memory = new wasm.Memory({ initial: pages });
    const inst = new wasm.Instance(code, { env: { memory } });
    return { memory, gemm: inst.exports.gemm as Gemm };
  };
  const pages = Math.ceil(needBytes / PAGE);
  // A large product gets memory of its own, released with it; small ones share the kept instance.
  if (needBytes > KEEP_BYTES) return make(pages);
  kept ??= make(pages);
  const have = kept.memory.buffer.byteLength / PAGE;
  if (have < pages) kept.memory.grow(pages - have);
  return kept;
}

/**
 * C = A · B with the SIMD kernel. Exported for tests and the benchmark; `blockBytes` (the
 * working set of one call into the module) is a parameter so that tests can make the blocks small.
 */
export function multiplyWasm(a: Float64Array, b: Float64Array, n: number, m: number, p: number, blockBytes = BLOCK_BYTES): Float64Array {
  const out = new Float64Array(n * p);
  if (n === 0 || m === 0 || p === 0) return out;
  // Columns of B in blocks of nc (a multiple of the tile), rows of A in blocks of rb, so that
  // packed B (m x nc), A (rb x m), C (rb x nc) and the packed A block fit in blockBytes.
  const packedBytes = 8 * MC * KC;
  const half = Math.max(0, (blockBytes - packedBytes) / 2);
  const nc = Math.min(roundUp(p, TILE), Math.max(TILE, Math.floor(half / (8 * m * TILE)) * TILE));
  const rb = Math.min(roundUp(n, TILE), Math.max(TILE, Math.floor((blockBytes - packedBytes - 8 * m * nc) / (8 * (m + nc)) / TILE) * TILE));
  const need = 8 * (m * nc + rb * m + rb * nc + MC * KC);
  if (need >= 2 ** 31) {
    // Inner dimension beyond ~2^25: even one 4-row, 4-column block exceeds what the kernel
    // addresses safely (31 bits); the JS kernel has no such limit.
    return multiplyJs(a, b, n, m, p);
  }
  const { memory, gemm } = instance(need);
  const f = new Float64Array(memory.buffer);
  // Layout in float64 units: packed B | A rows | C rows | packed A block.
  const PB = 0;
  const A = PB + m * nc;
  const C = A + rb * m;
  const WA = C + rb * nc;
  for (let j0 = 0; j0 < p; j0 += nc) {
    const w = Math.min(nc, p - j0);
    const panels = roundUp(w, TILE);
    // Pack B[:, j0 .. j0+w-1] into panels of 4 columns, k-major, zero past column p.
    let d = PB;
    for (let jp = 0; jp < panels; jp += TILE) {
      const cols = Math.min(TILE, w - jp);
      for (let k = 0; k < m; k++) {
        const src = k * p + j0 + jp;
        for (let t = 0; t < cols; t++) f[d + t] = b[src + t]!;
        for (let t = cols; t < TILE; t++) f[d + t] = 0;
        d += TILE;
      }
    }
    for (let i0 = 0; i0 < n; i0 += rb) {
      const rows = Math.min(rb, n - i0);
      f.set(a.subarray(i0 * m, (i0 + rows) * m), A);
      f.fill(0, C, C + roundUp(rows, TILE) * panels);
      gemm(A * 8, PB * 8, C * 8, WA * 8, rows, m, panels, MC, KC);
      if (panels === p) out.set(f.subarray(C, C + rows * p), i0 * p);
      else for (let i = 0; i < rows; i++) out.set(f.subarray(C + i * panels, C + i * panels + w), (i0 + i) * p + j0);
    }
  }
  return out;
}
