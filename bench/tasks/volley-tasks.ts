/**
 * The benchmark's volley tasks. Workers import this module by its URL (recorded by remote()),
 * so it holds task definitions only: no driver code runs at its top level. Names start with
 * "bench" so they never collide with the examples' tasks in the same Lambda bundle.
 */
import { Matrix, remote, seededRandom } from 'volley';

export const sleepTask = remote(async function benchSleep(seconds: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return `slept ${seconds} s`;
});

export const noop = remote(function benchNoop(): null {
  return null;
});

export const createMatrix = remote(function benchCreateMatrix(size: number, seed: number): Matrix {
  return Matrix.random(size, size, seededRandom(seed));
});

export const multiply = remote(function benchMultiply(x: Matrix, y: Matrix): Matrix {
  return x.multiply(y);
});

export const sum = remote(function benchSum(x: Matrix, y: Matrix): Matrix {
  return x.add(y);
});

/** One object hop: the array arrives by ref through the store; only its length comes back. */
export const hopLength = remote(function benchHopLength(a: Float64Array): number {
  return a.length;
});

export const leaf = remote(function benchLeaf(i: number): number {
  return i;
});

export const add = remote(function benchAdd(a: number, b: number): number {
  return a + b;
});
