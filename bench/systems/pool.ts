/**
 * The baseline: a bare pool of 16 worker threads (tinypool), the analogue of the tutorial's
 * ProcessPoolExecutor. No refs and no store: dependent work is chained by the driver, and
 * every value passes through it.
 */
import { importPeer } from '../lib/peers.js';
import type { System } from './types.js';

interface RunOptions {
  name: string;
}
interface TinypoolLike {
  run(task: unknown, options: RunOptions): Promise<unknown>;
  destroy(): Promise<void>;
  readonly threads: unknown[];
}
type TinypoolCtor = new (options: Record<string, unknown>) => TinypoolLike;

export const POOL_THREADS = 16;

export class PoolSystem implements System {
  readonly name = 'pool';
  private pool?: TinypoolLike;

  private get p(): TinypoolLike {
    if (!this.pool) throw new Error('start() first');
    return this.pool;
  }

  private run<T>(name: string, task?: unknown): Promise<T> {
    return this.p.run(task, { name }) as Promise<T>;
  }

  async start(): Promise<void> {
    const { Tinypool } = await importPeer<{ Tinypool: TinypoolCtor }>('tinypool');
    this.pool = new Tinypool({
      filename: new URL('../tasks/pool-worker.js', import.meta.url).href,
      minThreads: POOL_THREADS,
      maxThreads: POOL_THREADS,
    });
  }

  sleepFanout(seconds: readonly number[]): Promise<string[]> {
    return Promise.all(seconds.map((s) => this.run<string>('sleep', s)));
  }

  async matrixDag(size: number): Promise<{ checksum: number; matmulMs: number }> {
    const create = (seed: number) => this.run<Float64Array>('createMatrix', { size, seed });
    const mul = async (a: Promise<Float64Array>, b: Promise<Float64Array>) => {
      const [x, y] = await Promise.all([a, b]);
      return this.run<{ ms: number; data: Float64Array }>('multiply', { size, x, y });
    };
    const [p1, p2] = await Promise.all([mul(create(1), create(2)), mul(create(3), create(4))]);
    const s = await this.run<Float64Array>('sum', { size, x: p1.data, y: p2.data });
    let checksum = 0;
    for (let i = 0; i < s.length; i++) checksum += s[i]!;
    return { checksum, matmulMs: p1.ms + p2.ms };
  }

  async noops(n: number): Promise<void> {
    const all = new Array<Promise<unknown>>(n);
    for (let i = 0; i < n; i++) all[i] = this.run('noop');
    await Promise.all(all);
  }

  async roundTrip(): Promise<void> {
    await this.run('noop');
  }

  hop(a: Float64Array): Promise<number> {
    return this.run<number>('hopLength', a);
  }

  sumTree(n: number): Promise<number> {
    const tree = async (lo: number, hi: number): Promise<number> => {
      if (hi - lo === 1) return this.run<number>('leaf', lo);
      const mid = (lo + hi) >>> 1;
      const [a, b] = await Promise.all([tree(lo, mid), tree(mid, hi)]);
      return this.run<number>('add', { a, b });
    };
    return tree(0, n);
  }

  info(): Record<string, unknown> {
    return { threads: this.pool?.threads.length };
  }

  async stop(): Promise<void> {
    await this.pool?.destroy();
  }
}
