/**
 * Actors: a counter, and a parameter server that parallel tasks train: each task holds the
 * server's handle, pulls the weights and pushes its gradients, step after step. An actor's
 * calls run one at a time, each caller's in the order it made them, on the instance the actor
 * holds: a worker thread on the embedded runtime, a log of versions in S3 on Lambda (see
 * README, Actors).
 *
 *   npm run build && node dist/examples/actor-counter.js
 */
import { Matrix, get, init, isWorker, kill, remote, seededRandom, shutdown, type ActorHandle } from 'volley';

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

/** A training worker: pulls the weights, pushes a gradient, `steps` times; returns the sum of what it pushed. */
export const train = remote(async function train(ps: ActorHandle<{ get(): Matrix; push(g: Matrix): number }>, size: number, seed: number, steps: number): Promise<Matrix> {
  const random = seededRandom(seed);
  let pushed = new Matrix(size, size);
  for (let step = 0; step < steps; step++) {
    const w = await get(ps.get.remote());
    // A stand-in for a real gradient: small random steps, scaled by how far the weights have come.
    const g = Matrix.random(size, size, random);
    const k = 1 / (1 + Math.abs(w.sum()) / (size * size));
    for (let i = 0; i < g.data.length; i++) g.data[i]! *= k;
    await get(ps.push.remote(g));
    pushed = pushed.add(g);
  }
  return pushed;
});

async function main(): Promise<void> {
  await init();
  const counter = ClickCounter.remote();
  const refs = [1, 2, 3, 4, 5].map((n) => counter.add.remote(n));
  console.log(`counter after each call: ${(await get(refs)).join(', ')}`);

  const size = 100;
  const steps = 3;
  const ps = ParameterServer.remote(size);
  // Four workers train at once, each holding the server's handle.
  const workers = Array.from({ length: 4 }, (_, i) => train.remote(ps, size, i, steps));
  const pushed = await get(workers);
  const w = await get(ps.get.remote());
  const expected = pushed.reduce((a, b) => a.add(b), new Matrix(size, size));
  const worst = w.data.reduce((m, v, i) => Math.max(m, Math.abs(v - expected.data[i]!)), 0);
  console.log(`parameter server: ${await get(ps.push.remote(new Matrix(size, size)))} updates from ${workers.length} workers x ${steps} steps (+1 from the driver)`);
  console.log(`  its weights are the sum of every gradient pushed (largest difference ${worst.toExponential(1)}, from the order of additions)`);

  kill(counter);
  kill(ps);
  await shutdown();
}

if (!isWorker()) await main();
