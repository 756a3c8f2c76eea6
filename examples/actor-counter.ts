/**
 * Actors: a counter, and a parameter server that sums the matrices parallel tasks compute.
 * An actor's calls run one at a time, in the order they were made, on the instance it holds:
 * a worker thread on the embedded runtime, versions in S3 on Lambda (see README, Actors).
 *
 *   npm run build && node dist/examples/actor-counter.js
 */
import { Matrix, get, init, isWorker, kill, remote, seededRandom, shutdown } from 'volley';

export const ClickCounter = remote(
  class ClickCounter {
    count = 0;
    add(n: number): number {
      this.count += n;
      return this.count;
    }
  },
);

/** Keeps a running sum of the gradients pushed to it (fields are plain values: a Matrix and a number). */
export const ParameterServer = remote(
  class ParameterServer {
    weights: Matrix;
    updates = 0;
    constructor(size: number) {
      this.weights = new Matrix(size, size);
    }
    push(gradient: Matrix): number {
      this.weights = this.weights.add(gradient);
      return ++this.updates;
    }
    get(): Matrix {
      return this.weights;
    }
  },
);

/** A worker's step: some gradient, computed in parallel with the others. */
export const gradient = remote(function gradient(size: number, seed: number): Matrix {
  const x = Matrix.random(size, size, seededRandom(seed));
  return x.multiply(x);
});

async function main(): Promise<void> {
  await init();
  const counter = ClickCounter.remote();
  const refs = [1, 2, 3, 4, 5].map((n) => counter.add.remote(n));
  console.log(`counter after each call: ${(await get(refs)).join(', ')}`);

  const size = 100;
  const ps = ParameterServer.remote(size);
  const grads = Array.from({ length: 8 }, (_, i) => gradient.remote(size, i));
  // Each push runs once its gradient is ready, in the order pushed; the tasks run in parallel.
  const pushes = grads.map((g) => ps.push.remote(g));
  console.log(`parameter server: ${(await get(pushes)).at(-1)} updates`);
  const w = await get(ps.get.remote());
  const expected = (await get(grads)).reduce((a, b) => a.add(b), new Matrix(size, size));
  console.log(`  sum of ${grads.length} gradients (${w.rows}x${w.cols}) matches the driver's own sum: ${w.data.every((v, i) => v === expected.data[i])}`);

  kill(counter);
  kill(ps);
  await shutdown();
}

if (!isWorker()) await main();
