/** The actor and the task the actor benchmark compares: the same work, a counter's increment. */
import { remote } from 'volley';

export const BenchCounter = remote(
  class BenchCounter {
    n = 0;
    add(k: number): number {
      this.n += k;
      return this.n;
    }
  },
);

export const benchAdd = remote(function benchAdd(n: number, k: number): number {
  return n + k;
});

/** An actor with a larger state (a Float64Array of `n` elements): what a call costs when the state is not tiny. */
export const BenchVector = remote(
  class BenchVector {
    v: Float64Array;
    constructor(n: number) {
      this.v = new Float64Array(n);
    }
    bump(i: number): number {
      const j = i % this.v.length;
      this.v[j] = (this.v[j] ?? 0) + 1;
      return this.v[j]!;
    }
  },
);
