/**
 * The one-screen summary printed at `shutdown()`: tasks by outcome and function, retried runs
 * and rebuilds, the slowest runs, bytes moved, and cost.
 */
import type { RunEndEvent, TaskOutcome, VolleyEvent } from '../events.js';
import type { CostReport } from './cost.js';
import type { JobCounts } from './counts.js';

const SLOWEST = 5;

interface FnStats {
  outcomes: Partial<Record<TaskOutcome, number>>;
  /** Runs that failed and were run again. */
  retried: number;
  /** Runs that reached a worker (retried ones included), and their time. */
  ran: number;
  workMs: number;
}

export interface SlowTask {
  taskId: string;
  fn: string;
  ms: number;
  worker?: string;
}

/** Per-function outcomes and times, and the slowest tasks: constant memory. */
export class SummaryCollector {
  readonly byFn = new Map<string, FnStats>();
  /** The slowest tasks, slowest first. */
  readonly slowest: SlowTask[] = [];

  readonly onEvent = (e: VolleyEvent): void => {
    if (e.type === 'finished' || e.type === 'retrying') this.ended(e);
  };

  private ended(e: RunEndEvent): void {
    let s = this.byFn.get(e.fn);
    if (!s) this.byFn.set(e.fn, (s = { outcomes: {}, retried: 0, ran: 0, workMs: 0 }));
    if (e.type === 'finished') s.outcomes[e.outcome] = (s.outcomes[e.outcome] ?? 0) + 1;
    else s.retried++;
    if (e.dispatchedAt === undefined) return;
    const ms = e.timing ? e.timing.fetchMs + e.timing.runMs + e.timing.storeMs : e.time - e.dispatchedAt;
    s.ran++;
    s.workMs += ms;
    const list = this.slowest;
    if (list.length < SLOWEST || ms > list[list.length - 1]!.ms) {
      list.push({ taskId: e.taskId, fn: e.fn, ms, worker: e.worker?.id });
      list.sort((a, b) => b.ms - a.ms);
      if (list.length > SLOWEST) list.pop();
    }
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatUsd(x: number): string {
  if (x === 0) return '$0';
  if (x < 0.01) return `$${x.toPrecision(2)}`;
  return `$${x.toFixed(2)}`;
}

function ms(x: number): string {
  return x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 2 : 1)} ms`;
}

/** The summary's text (no colours: it may go to a log). */
export function formatSummary(input: { job: string; target: string; elapsedMs: number; counts: JobCounts; collector: SummaryCollector; cost?: CostReport; costError?: string }): string {
  const { counts, collector, cost } = input;
  const a = counts.all;
  const lines: string[] = [];
  lines.push(
    `volley job ${input.job} on ${input.target}: ${a.total} task(s) in ${ms(input.elapsedMs)} — ${a.done} ok, ${a.failed} not ok${a.running + a.pending ? `, ${a.running + a.pending} unfinished` : ''}, ${counts.retries} run(s) retried${counts.rebuilds ? `, ${counts.rebuilds} rebuilt` : ''}`,
  );
  const fns = [...collector.byFn.entries()];
  if (fns.length) {
    const w = Math.min(28, Math.max(8, ...fns.map(([f]) => f.length)));
    lines.push(`  ${'function'.padEnd(w)}  ${'tasks'.padStart(7)}  ${'ok'.padStart(7)}  ${'not ok'.padStart(7)}  mean run`);
    for (const [fn, s] of fns.slice(0, 12)) {
      const n = Object.values(s.outcomes).reduce((x, y) => x + (y ?? 0), 0);
      const ok = s.outcomes.ok ?? 0;
      const bad = Object.entries(s.outcomes)
        .filter(([o]) => o !== 'ok')
        .map(([o, k]) => `${k} ${o}`)
        .concat(s.retried ? [`${s.retried} run(s) retried`] : [])
        .join(', ');
      lines.push(`  ${fn.slice(0, w).padEnd(w)}  ${String(n).padStart(7)}  ${String(ok).padStart(7)}  ${String(n - ok).padStart(7)}  ${s.ran ? ms(s.workMs / s.ran) : '-'}${bad ? `  (${bad})` : ''}`);
    }
    if (fns.length > 12) lines.push(`  … and ${fns.length - 12} more function(s)`);
  }
  if (collector.slowest.length) {
    lines.push(`  slowest: ${collector.slowest.map((t) => `${t.taskId} ${ms(t.ms)}${t.worker ? ` on ${t.worker}` : ''}`).join('; ')}`);
  }
  if (cost) {
    const s3 = cost.s3;
    lines.push(`  objects: ${formatBytes(s3.bytesWritten)} written (${s3.putRequests} PUT), ${formatBytes(s3.bytesRead)} read (${s3.getRequests} GET, ${formatBytes(s3.bytesToDriver)} by the driver)`);
    const l = cost.lambda;
    lines.push(
      `  cost${cost.estimate ? ' (estimate for Lambda)' : ''}: ${formatUsd(cost.totalUsd)} — Lambda ${formatUsd(l.usd)} (${l.requests} requests, ${l.gbSeconds.toFixed(2)} GB-s${l.coldStarts ? ` with ${l.coldStarts} cold start(s)' INIT` : ''}${l.byMemory.length ? ` at ${l.byMemory.map((b) => `${b.memoryMB} MB ${b.architecture}`).join(', ')}` : ''}), S3 ${formatUsd(s3.usd)}; ${cost.prices.region} prices of ${cost.prices.asOf}`,
    );
  }
  if (input.costError) lines.push(`  cost: not priced — ${input.costError}`);
  return `${lines.join('\n')}\n`;
}
