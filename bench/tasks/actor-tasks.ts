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
