/**
 * The faast.js function module: faast.js proxies every exported function. Values travel as
 * JSON (faast.js encodes typed arrays as number arrays), which is what its local mode does.
 */
import * as k from './kernels.js';

/** Tells faast.js where this (ES) module lives; it looks CommonJS modules up in require.cache. */
export const FAAST_URL = import.meta.url;

export async function sleep(seconds: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return `slept ${seconds} s`;
}

export function noop(): null {
  return null;
}

export function createMatrix(size: number, seed: number): Float64Array {
  return k.randomMatrix(size, seed);
}

export function multiply(size: number, x: Float64Array, y: Float64Array): { ms: number; data: Float64Array } {
  const t0 = performance.now();
  const data = k.multiply(x, y, size);
  return { ms: performance.now() - t0, data };
}

export function sum(x: Float64Array, y: Float64Array): Float64Array {
  return k.add(x, y);
}

export function hopLength(a: Float64Array): number {
  return a.length;
}

export function leaf(i: number): number {
  return i;
}

export function add(a: number, b: number): number {
  return a + b;
}
