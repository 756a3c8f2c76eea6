/** volley, through an explicit Runtime: the embedded runtime, or the emulator tier. */
import { readdirSync, readFileSync } from 'node:fs';
import { Runtime, type InitOptions, type ObjectRef } from 'volley';
import { repoRoot } from '../lib/paths.js';
import * as t from '../tasks/volley-tasks.js';
import type { System } from './types.js';

interface PoolCounts {
  started: number;
  chained: number;
}

export class VolleySystem implements System {
  protected rt?: Runtime;

  constructor(
    readonly name: string,
    protected options: InitOptions = {},
  ) {}

  private get runtime(): Runtime {
    if (!this.rt) throw new Error('start() first');
    return this.rt;
  }

  async start(): Promise<void> {
    this.rt = await new Runtime(this.options).ready();
    const invoker = (await this.rt.backendReady()).invoker as { stats?(): PoolCounts };
    if (invoker.stats) this.poolCounts = () => invoker.stats!();
  }

  /** The embedded runtime's pool: threads started and tasks run behind their producers in one batch (chained), for the record. */
  private poolCounts?: () => PoolCounts;

  info(): Record<string, unknown> {
    const c = this.poolCounts?.();
    return c ? { threadsStarted: c.started, chainedTasks: c.chained } : {};
  }

  async sleepFanout(seconds: readonly number[]): Promise<string[]> {
    const rt = this.runtime;
    return rt.get(seconds.map((s) => rt.remote(t.sleepTask, s)));
  }

  async matrixDag(size: number): Promise<{ checksum: number; matmulMs: number }> {
    const rt = this.runtime;
    const before = rt.stats().get('benchMultiply')?.runMs ?? 0;
    const [m1, m2, m3, m4] = [1, 2, 3, 4].map((seed) => rt.remote(t.createMatrix, size, seed));
    const p1 = rt.remote(t.multiply, m1!, m2!);
    const p2 = rt.remote(t.multiply, m3!, m4!);
    const result = await rt.get(rt.remote(t.sum, p1, p2));
    const matmulMs = (rt.stats().get('benchMultiply')?.runMs ?? 0) - before;
    return { checksum: result.sum(), matmulMs };
  }

  async noops(n: number): Promise<void> {
    const rt = this.runtime;
    const refs = new Array<ObjectRef<null>>(n);
    for (let i = 0; i < n; i++) refs[i] = rt.remote(t.noop);
    await rt.get(refs);
  }

  async roundTrip(): Promise<void> {
    const rt = this.runtime;
    await rt.get(rt.remote(t.noop));
  }

  async hop(a: Float64Array): Promise<number> {
    const rt = this.runtime;
    return rt.get(rt.remote(t.hopLength, rt.put(a)));
  }

  async sumTree(n: number): Promise<number> {
    const rt = this.runtime;
    const tree = (lo: number, hi: number): ObjectRef<number> => {
      if (hi - lo === 1) return rt.remote(t.leaf, lo);
      const mid = (lo + hi) >>> 1;
      return rt.remote(t.add, tree(lo, mid), tree(mid, hi));
    };
    return rt.get(tree(0, n));
  }

  async stop(): Promise<void> {
    await this.rt?.shutdown();
  }
}

/** The emulator-tier task bundle: the default task modules plus the bench's own. */
const BENCH_TASKS = ['bench/tasks/volley-tasks.ts'];

interface Emulators {
  aws: NonNullable<InitOptions['aws']>;
  stop(): Promise<void>;
}

/**
 * volley on the emulator tier (serverless-offline + s3rver speaking the AWS wire protocols).
 * The emulators are started in setup(), outside every timing, as a deployed stack would be;
 * the runtime's own start-up and the workers' cold starts are timed like the others'.
 */
export class EmulatorSystem extends VolleySystem {
  private emu?: Emulators;

  constructor() {
    super('emulator');
  }

  async setup(): Promise<void> {
    const url = new URL('infra/emulators.js', new URL(`file://${repoRoot}dist/`));
    const { startEmulators } = (await import(url.href)) as { startEmulators(o: object): Promise<Emulators> };
    this.emu = await startEmulators({ extraTasks: BENCH_TASKS, bucket: 'volley-bench' });
    this.options = { target: 'emulator', aws: this.emu.aws, maxConcurrency: 16 };
  }

  /**
   * The runtime over a backend built here, so that the Invoke requests its Lambda client sends
   * can be counted (a middleware: one count per request on the wire, batches included).
   */
  override async start(): Promise<void> {
    const { createAwsBackend } = await import('../../sdk/aws/backend.js');
    const { resolveInitOptions } = await import('../../sdk/options.js');
    const backend = await createAwsBackend(resolveInitOptions(this.options));
    backend.invoker.client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'InvokeCommand') this.sent++;
        return next(args);
      },
      { step: 'initialize', name: 'benchCountInvocations' },
    );
    this.rt = await new Runtime(this.options, { backend }).ready();
  }

  private sent = 0;

  invocations(): number {
    return this.sent;
  }

  private offlinePid?: number;

  /**
   * CPU time (user + system, all threads) of the serverless-offline process so far, from Linux's
   * /proc/<pid>/stat in clock ticks of 10 ms (USER_HZ); undefined elsewhere. The process is the
   * child of this one whose command line runs `offline`.
   */
  workerCpuMs(): number | undefined {
    const stat = (pid: number | string): string[] | undefined => {
      try {
        const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return s.slice(s.lastIndexOf(')') + 2).split(' ');
      } catch {
        return undefined;
      }
    };
    if (this.offlinePid === undefined) {
      let pids: string[];
      try {
        pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
      } catch {
        return undefined;
      }
      this.offlinePid = Number(
        pids.find((d) => {
          if (Number(stat(d)?.[1]) !== process.pid) return false;
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes('offline');
          } catch {
            return false;
          }
        }) ?? Number.NaN,
      );
    }
    const f = Number.isNaN(this.offlinePid) ? undefined : stat(this.offlinePid);
    return f ? (Number(f[11]) + Number(f[12])) * 10 : undefined;
  }

  override async stop(): Promise<void> {
    try {
      await super.stop();
    } finally {
      await this.emu?.stop();
    }
  }
}
