/**
 * W2 of the seed: four 1000x1000 normal matrices made by tasks, two products computed in
 * parallel from their refs, and a sum of the products. Only the final matrix is fetched; the
 * intermediates move between workers through the object store.
 *
 *   npm run build && node dist/examples/matrix-dag.js [size]
 */
import { Matrix, get, init, isWorker, remote, seededRandom, shutdown } from 'volley';

export const createMatrix = remote(function createMatrix(size: number, seed: number): Matrix {
  return Matrix.random(size, size, seededRandom(seed));
});

export const multiply = remote(function multiply(x: Matrix, y: Matrix): Matrix {
  return x.multiply(y);
});

export const sum = remote(function sum(x: Matrix, y: Matrix): Matrix {
  return x.add(y);
});

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 1000);
  console.log(`W2 matrix DAG: 4 random ${size}x${size} matrices, 2 products in parallel, 1 sum`);
  const t0 = performance.now();
  const rt = await init();
  const [m1, m2, m3, m4] = [1, 2, 3, 4].map((seed) => createMatrix.remote(size, seed));
  const p1 = multiply.remote(m1!, m2!);
  const p2 = multiply.remote(m3!, m4!);
  const result = await get(sum.remote(p1, p2));
  const seconds = (performance.now() - t0) / 1000;
  const matmulMs = rt.stats().get('multiply')?.runMs ?? 0;
  console.log(`  volley (embedded runtime, including start-up): ${seconds.toFixed(2)} s; the two multiplies ran ${(matmulMs / 1000).toFixed(2)} s of worker time`);
  await shutdown();

  // The same computation in this process, to check the result.
  const [a, b, c, d] = [1, 2, 3, 4].map((seed) => Matrix.random(size, size, seededRandom(seed)));
  const expected = a!.multiply(b!).add(c!.multiply(d!));
  const same = expected.data.every((v, i) => v === result.data[i]);
  console.log(`  checksum ${result.sum().toFixed(6)} (in-process: ${expected.sum().toFixed(6)}) ${same ? 'identical' : 'MISMATCH'}`);
  if (!same) process.exitCode = 1;
}

if (!isWorker()) await main();
