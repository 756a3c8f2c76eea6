/**
 * The workloads, written once against the System interface. Each runs in a fresh child
 * process (bench/child.ts) and returns named figures in ms (or tasks/s, or bytes).
 */
import { Matrix, seededRandom } from 'volley';
import { multiplyJs, multiplyWasm } from '../../sdk/kernels/gemm.js';
import type { System } from '../systems/types.js';

/** W1 of the seed: 16 sleep tasks, 9.9 s of sleep in all, 1.5 s the longest. */
export const W1_DURATIONS = [0.1, 0.2, 0.1, 0.5, 0.7, 0.9, 0.5, 0.4, 1.5, 1.3, 1.0, 0.3, 0.7, 0.6, 0.3, 0.8];

/**
 * When W1 would end, counted from the first thread's start, if starting a thread cost `threadMs`
 * of CPU and nothing else took any: `cores` threads start at a time (the pool's policy), so the
 * k-th (from 0) is ready at (floor(k / cores) + 1) x threadMs; each task goes, in submit order, to
 * the first thread free (one just ready, or one whose task ended).
 */
export function w1Model(threadMs: number, cores: number, durations: readonly number[] = W1_DURATIONS): { endMs: number; longestStartMs: number } {
  const free = durations.map((_, k) => (Math.floor(k / cores) + 1) * threadMs);
  let endMs = 0;
  let longestStartMs = 0;
  let longest = 0;
  for (const d of durations) {
    free.sort((a, b) => a - b);
    const at = free.shift()!;
    free.push(at + d * 1000);
    endMs = Math.max(endMs, at + d * 1000);
    if (d > longest) {
      longest = d;
      longestStartMs = at;
    }
  }
  return { endMs, longestStartMs };
}

export type WorkloadName = 'w1' | 'w2' | 'w3' | 'hop' | 'scale-noop' | 'scale-tree' | 'kernel';

export interface WorkloadParams {
  /** W2 matrix size; the kernel figure's too. */
  size?: number;
  /** W3: concurrent no-ops and sequential round trips. */
  concurrent?: number;
  sequential?: number;
  /** Object hop sizes in bytes. */
  hopBytes?: number[];
  /** Scaling: number of tasks or tree inputs. */
  n?: number;
}

export type Figures = Record<string, number>;

const now = () => performance.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function check(what: string, ok: boolean): void {
  if (!ok) throw new Error(`${what}: wrong result`);
}

export async function runWorkload(sys: System, name: WorkloadName, p: WorkloadParams): Promise<Figures> {
  switch (name) {
    case 'w1': {
      // Start-up included: from before the pool/runtime exists until the last result is in.
      const t0 = now();
      await sys.start();
      const cold = await sys.sleepFanout(W1_DURATIONS);
      const t1 = now();
      const warm = await sys.sleepFanout(W1_DURATIONS);
      const t2 = now();
      check('W1', cold.length === 16 && warm.length === 16 && cold[8] === 'slept 1.5 s');
      return { w1ColdMs: t1 - t0, w1WarmMs: t2 - t1 };
    }
    case 'w2': {
      const size = p.size ?? 1000;
      await sys.start();
      await sys.matrixDag(Math.min(size, 64)); // warm: workers up, code paths compiled
      const t0 = now();
      const r = await sys.matrixDag(size);
      const totalMs = now() - t0;
      check('W2', Number.isFinite(r.checksum));
      return { w2TotalMs: totalMs, w2MatmulMs: r.matmulMs, w2Checksum: r.checksum };
    }
    case 'w3': {
      const n = p.concurrent ?? 1000;
      const seq = p.sequential ?? 200;
      await sys.start();
      await sys.noops(Math.min(n, 200)); // warm: workers up
      // The first batch runs while V8 still compiles the hot paths (driver and workers); later
      // batches show the steady state. Both are reported; the target is judged on the latter.
      const rates: number[] = [];
      const calls: number[] = [];
      let cpu0: number | undefined;
      let own0: NodeJS.CpuUsage | undefined;
      for (let b = 0; b < 5; b++) {
        if (b === 1) {
          cpu0 = sys.workerCpuMs?.();
          own0 = process.cpuUsage();
        }
        const c0 = sys.invocations?.();
        const t0 = now();
        await sys.noops(n);
        rates.push(n / ((now() - t0) / 1000));
        if (c0 !== undefined) calls.push(sys.invocations!() - c0);
      }
      const [first, ...warm] = rates;
      // Lambda invocations per 1,000 tasks in the warm batches (the AWS path only).
      const invocations: Figures = calls.length ? { w3InvocationsPer1000: (median(calls.slice(1)) * 1000) / n } : {};
      // The Lambda side's CPU per task over the warm batches (the emulator tier): on a loaded machine a steadier figure than the rate.
      const cpu1 = cpu0 === undefined ? undefined : sys.workerCpuMs?.();
      if (cpu0 !== undefined && cpu1 !== undefined) {
        invocations.w3WorkerCpuMsPerTask = (cpu1 - cpu0) / (4 * n);
        // And the driver's (this process, all its threads: on the emulator tier only the driver runs here).
        const own = process.cpuUsage(own0);
        invocations.w3DriverCpuMsPerTask = (own.user + own.system) / 1000 / (4 * n);
      }
      for (let i = 0; i < 20; i++) await sys.roundTrip();
      const lat: number[] = [];
      for (let i = 0; i < seq; i++) {
        const s = now();
        await sys.roundTrip();
        lat.push(now() - s);
      }
      return { w3FirstTasksPerSec: first!, w3TasksPerSec: median(warm), w3SeqMedianMs: median(lat), w3SeqMinMs: Math.min(...lat), ...invocations };
    }
    case 'hop': {
      await sys.start();
      await sys.hop(new Float64Array(1024)); // warm
      const out: Figures = {};
      for (const bytes of p.hopBytes ?? [8e6, 100e6]) {
        const a = new Float64Array(Math.round(bytes / 8));
        for (let i = 0; i < a.length; i++) a[i] = Math.random(); // real doubles: no system gets cheap text
        const t0 = now();
        const len = await sys.hop(a);
        out[`hop${Math.round(bytes / 1e6)}MBMs`] = now() - t0;
        check('hop', len === a.length);
      }
      return out;
    }
    case 'kernel': {
      // The matrix product alone, in this (driver) thread: the JS kernel once (it takes seconds),
      // the WebAssembly SIMD kernel five times (the median is reported, wall and CPU time), and their results compared.
      const size = p.size ?? 1000;
      const rng = seededRandom(1);
      const a = Matrix.random(size, size, rng).data;
      const b = Matrix.random(size, size, rng).data;
      multiplyWasm(a, b, 64, 64, 64); // warm: module compiled, instance made
      const t0 = now();
      const js = multiplyJs(a, b, size, size, size);
      const jsMs = now() - t0;
      const wasm: number[] = [];
      const cpu: number[] = [];
      let c: Float64Array = new Float64Array(0);
      for (let r = 0; r < 5; r++) {
        const t = now();
        const u = process.cpuUsage();
        c = multiplyWasm(a, b, size, size, size);
        wasm.push(now() - t);
        const d = process.cpuUsage(u);
        cpu.push((d.user + d.system) / 1000);
      }
      check(
        'kernel',
        c.every((x, i) => x === js[i]),
      );
      // CPU time as well: on a shared machine, wall time includes waiting for a core.
      return { matmulJsMs: jsMs, matmulWasmMs: median(wasm), matmulWasmCpuMs: median(cpu) };
    }
    case 'scale-noop':
    case 'scale-tree': {
      const n = p.n ?? 10;
      await sys.start();
      await sys.noops(16); // warm
      const c0 = sys.invocations?.();
      const t0 = now();
      if (name === 'scale-noop') await sys.noops(n);
      else check('tree', (await sys.sumTree(n)) === (n * (n - 1)) / 2);
      const makespanMs = now() - t0;
      const calls: Figures = c0 === undefined ? {} : { invocations: sys.invocations!() - c0 };
      return { makespanMs, peakRssBytes: process.resourceUsage().maxRSS * 1024, ...calls };
    }
  }
}
