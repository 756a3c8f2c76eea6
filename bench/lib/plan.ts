/**
 * What a run measures: the jobs (one system, one workload, one fresh child process each), the
 * figures they report, and the caps that keep the slowest peer from taking the whole run.
 */
import type { SystemName } from '../systems/types.js';
import type { BenchOptions } from './cli.js';
import type { WorkloadName, WorkloadParams } from './workloads.js';

export interface Job {
  group: 'w1' | 'w2' | 'w3' | 'hop' | 'scale' | 'kernel';
  system: SystemName;
  workload: WorkloadName;
  params: WorkloadParams;
  /** Prefix of the figure keys this job reports (scaling: "noop@1000."). */
  prefix: string;
  run: number;
  runs: number;
  label: string;
}

export interface MetricDef {
  key: string;
  label: string;
  /** How to show it: ms shown as seconds ('s'), ms, tasks/s, bytes shown as MB, or a count. */
  unit: 's' | 'ms' | 'tasks/s' | 'MB' | 'count';
  higherIsBetter?: boolean;
}

export const HEADLINE_METRICS: MetricDef[] = [
  { key: 'w1ColdMs', label: 'W1 sleep fan-out, with start-up', unit: 's' },
  { key: 'w1WarmMs', label: 'W1 sleep fan-out, warm', unit: 's' },
  { key: 'w2TotalMs', label: 'W2 matrix DAG, total', unit: 's' },
  { key: 'w2MatmulMs', label: 'W2 matmul (2 products, in-task time)', unit: 's' },
  { key: 'matmulWasmMs', label: 'matmul 1000x1000, one thread: WebAssembly SIMD kernel', unit: 's' },
  { key: 'matmulWasmCpuMs', label: 'matmul 1000x1000, one thread: WebAssembly SIMD kernel, CPU time', unit: 's' },
  { key: 'matmulJsMs', label: 'matmul 1000x1000, one thread: JS kernel', unit: 's' },
  { key: 'w3TasksPerSec', label: 'W3 1,000 concurrent no-ops (warm: median of batches 2-5)', unit: 'tasks/s', higherIsBetter: true },
  { key: 'w3FirstTasksPerSec', label: 'W3 1,000 concurrent no-ops, first batch (JIT cold)', unit: 'tasks/s', higherIsBetter: true },
  { key: 'w3SeqMedianMs', label: 'W3 sequential round trip, median of 200', unit: 'ms' },
  { key: 'w3InvocationsPer1000', label: 'W3 Lambda invocations per 1,000 no-ops (AWS path)', unit: 'count' },
  { key: 'w3WorkerCpuMsPerTask', label: 'W3 CPU of the Lambda side per no-op (serverless-offline process, warm batches)', unit: 'ms' },
  { key: 'w3DriverCpuMsPerTask', label: "W3 CPU of the driver per no-op (the driver's process, warm batches; the emulator tier)", unit: 'ms' },
];

export function hopMetrics(bytes: number[]): MetricDef[] {
  return bytes.map((b) => ({ key: `hop${Math.round(b / 1e6)}MBMs`, label: `object hop, ${Math.round(b / 1e6)} MB Float64Array`, unit: 'ms' }));
}

export interface Plan {
  jobs: Job[];
  hopBytes: number[];
  scaleN: number[];
  w2Size: number;
  notes: string[];
}

export function makePlan(o: BenchOptions): Plan {
  const others: SystemName[] = [...o.systems];
  if (o.emulator) others.push('emulator');
  const systems: SystemName[] = ['pool', ...others];
  const w2Size = o.quick ? 300 : 1000;
  const hopBytes = o.quick ? [8e6] : [8e6, 100e6];
  const scaleN = o.quick ? [10, 100, 1000] : [10, 100, 1000, 10000];
  const notes: string[] = [];
  const want = (g: string) => !o.only || o.only.includes(g);
  const jobs: Job[] = [];

  const add = (group: Job['group'], workload: WorkloadName, params: WorkloadParams, prefix: string, label: string, runsFor: (s: SystemName) => number, which = systems) => {
    const maxRuns = Math.max(...which.map(runsFor));
    for (let run = 0; run < maxRuns; run++) {
      for (const system of which) {
        const runs = runsFor(system);
        if (run < runs) jobs.push({ group, system, workload, params, prefix, run, runs, label });
      }
    }
  };
  const all = () => o.runs;
  const slowPeer = systems.includes('faast') && !o.quick;

  if (want('w1')) add('w1', 'w1', {}, '', 'W1 sleep fan-out (cold + warm)', all);
  if (want('w2')) {
    add('w2', 'w2', { size: w2Size }, '', `W2 matrix DAG ${w2Size}x${w2Size}`, (s) => (s === 'faast' && slowPeer ? 1 : o.runs));
    if (slowPeer && o.runs > 1) notes.push(`faast.js W2 ran once, not ${o.runs} times: it sends each 8 MB matrix as JSON and takes tens of seconds per run.`);
  }
  // volley's matrix kernel alone, JS vs WebAssembly SIMD, in one thread: no system involved.
  // At least 3 runs (also in --quick), each in a fresh process.
  if (want('kernel')) add('kernel', 'kernel', { size: 1000 }, '', 'matmul kernel 1000x1000, JS vs WebAssembly', () => Math.max(3, o.runs), ['volley']);
  if (want('w3')) add('w3', 'w3', { concurrent: 1000, sequential: 200 }, '', 'W3 no-op throughput and latency', all);
  // The slow systems (seconds of start-up per child process) run only W1-W3 in --quick.
  const heavy = (s: SystemName) => s === 'faast' || s === 'emulator';
  const cheap = systems.filter((s) => !o.quick || !heavy(s));
  if (want('hop')) {
    for (const bytes of hopBytes) {
      // faast.js sends a Float64Array as a JSON number array: 100 MB of random doubles is ~250 MB of text.
      const which = bytes > 8e6 ? cheap.filter((s) => s !== 'faast') : cheap;
      add('hop', 'hop', { hopBytes: [bytes] }, '', `object hop ${Math.round(bytes / 1e6)} MB`, all, which);
    }
    if (systems.includes('faast') && !o.quick) notes.push('faast.js skips the 100 MB hop: it would send 12.5 million random doubles as about 250 MB of JSON text.');
  }
  if (want('scale')) {
    for (const kind of ['noop', 'tree'] as const) {
      for (const n of scaleN) {
        const which = cheap.filter((s) => s !== 'emulator' || n <= 1000);
        add(
          'scale',
          kind === 'noop' ? 'scale-noop' : 'scale-tree',
          { n },
          `${kind}@${n}.`,
          `scaling: ${kind === 'noop' ? `${n} no-ops` : `sum tree over ${n}`}`,
          (s) => ((s === 'faast' && slowPeer && n >= 10000) || (s === 'emulator' && !o.quick) ? 1 : o.runs),
          which,
        );
      }
    }
    if (slowPeer && o.runs > 1) notes.push(`faast.js ran the N = 10,000 scaling points once, not ${o.runs} times (about 1,000 tasks/s: tens of seconds each).`);
    if (systems.includes('emulator') && !o.quick) notes.push('The emulator tier runs each scaling point once and stops at N = 1,000 (a few hundred HTTP invocations per second).');
  }
  if (o.quick) {
    const slow = systems.filter(heavy).map((s) => (s === 'faast' ? 'faast.js' : 'the emulator tier'));
    notes.push(`--quick: one run, W2 at 300x300, the 8 MB hop only, N up to 1,000${slow.length ? `; ${slow.join(' and ')} ran W1-W3 only` : ''}.`);
  }
  return { jobs, hopBytes, scaleN, w2Size, notes };
}
