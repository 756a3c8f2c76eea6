/**
 * faast.js in its local mode: each call runs in one of `concurrency` child processes, with
 * arguments and results as JSON. Like the bare pool it has no refs: the driver chains
 * dependent calls and every value passes through it.
 */
import { importPeer } from '../lib/peers.js';
import type * as Tasks from '../tasks/faast-tasks.js';
import type { System } from './types.js';

type Fns = { [K in keyof typeof Tasks]: (typeof Tasks)[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : never };
interface FaastModule {
  functions: Fns;
  cleanup(): Promise<void>;
}
type FaastFn = (provider: 'local', mod: object, options: Record<string, unknown>) => Promise<FaastModule>;

export const FAAST_CONCURRENCY = 16;

export class FaastSystem implements System {
  readonly name = 'faast';
  private m?: FaastModule;

  private get f(): Fns {
    if (!this.m) throw new Error('start() first');
    return this.m.functions;
  }

  async start(): Promise<void> {
    const { faast } = await importPeer<{ faast: FaastFn }>('faastjs');
    const mod = await import('../tasks/faast-tasks.js');
    this.m = await faast('local', mod, {
      concurrency: FAAST_CONCURRENCY,
      maxRetries: 0,
      gc: 'off',
      timeout: 900,
    });
  }

  sleepFanout(seconds: readonly number[]): Promise<string[]> {
    return Promise.all(seconds.map((s) => this.f.sleep(s)));
  }

  async matrixDag(size: number): Promise<{ checksum: number; matmulMs: number }> {
    const f = this.f;
    const mul = async (a: number, b: number) => {
      const [x, y] = await Promise.all([f.createMatrix(size, a), f.createMatrix(size, b)]);
      return f.multiply(size, x, y);
    };
    const [p1, p2] = await Promise.all([mul(1, 2), mul(3, 4)]);
    const s = await f.sum(p1.data, p2.data);
    let checksum = 0;
    for (let i = 0; i < s.length; i++) checksum += s[i]!;
    return { checksum, matmulMs: p1.ms + p2.ms };
  }

  async noops(n: number): Promise<void> {
    const all = new Array<Promise<unknown>>(n);
    for (let i = 0; i < n; i++) all[i] = this.f.noop();
    await Promise.all(all);
  }

  async roundTrip(): Promise<void> {
    await this.f.noop();
  }

  hop(a: Float64Array): Promise<number> {
    return this.f.hopLength(a);
  }

  sumTree(n: number): Promise<number> {
    const f = this.f;
    const tree = async (lo: number, hi: number): Promise<number> => {
      if (hi - lo === 1) return f.leaf(lo);
      const mid = (lo + hi) >>> 1;
      const [a, b] = await Promise.all([tree(lo, mid), tree(mid, hi)]);
      return f.add(a, b);
    };
    return tree(0, n);
  }

  async stop(): Promise<void> {
    await this.m?.cleanup();
  }
}
