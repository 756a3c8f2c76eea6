/**
 * The bare pool's worker module (tinypool): one exported function per task, the same
 * computations as the volley tasks (volley's Matrix kernels), with no object store and no
 * refs: the driver passes values in and gets values back, copied by postMessage
 * (structured clone), as a plain pool does.
 */
import { Matrix, seededRandom } from 'volley';

export async function sleep(seconds: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return `slept ${seconds} s`;
}

export function noop(): null {
  return null;
}

export function createMatrix({ size, seed }: { size: number; seed: number }): Float64Array {
  return Matrix.random(size, size, seededRandom(seed)).data;
}

export function multiply({ size, x, y }: { size: number; x: Float64Array; y: Float64Array }): { ms: number; data: Float64Array } {
  const t0 = performance.now();
  const out = new Matrix(size, size, x).multiply(new Matrix(size, size, y)).data;
  return { ms: performance.now() - t0, data: out };
}

export function sum({ size, x, y }: { size: number; x: Float64Array; y: Float64Array }): Float64Array {
  return new Matrix(size, size, x).add(new Matrix(size, size, y)).data;
}

export function hopLength(a: Float64Array): number {
  return a.length;
}

export function leaf(i: number): number {
  return i;
}

export function add({ a, b }: { a: number; b: number }): number {
  return a + b;
}
