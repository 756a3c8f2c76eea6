/**
 * From job results to what a person reads: min/median per figure, ratios to the bare pool
 * measured in the same run, pass/miss against the targets of the core issue, and the table.
 */
import { SYSTEM_LABELS, type SystemName } from '../systems/types.js';
import { HEADLINE_METRICS, hopMetrics, type MetricDef, type Plan } from './plan.js';
import type { JobResult } from './runner.js';
import { summarize, type Summary } from './stats.js';

export type SystemFigures = Record<string, Summary>;

export interface Target {
  name: string;
  metric: string;
  /** 'value': the volley median against a fixed bound; 'ratio': against the bare pool. */
  kind: 'value' | 'ratio';
  bound: number;
  higherIsBetter?: boolean;
  unit: string;
  /** Whose figure is judged: volley on the embedded runtime unless named. */
  system?: SystemName;
}

/**
 * The emulator tier's sum tree over 1,000 inputs before short tasks shared invocations (full
 * run of 2026-11-24 on this machine, one invocation per task): batching is to make it at least
 * three times faster.
 */
const EMULATOR_TREE_1000_BEFORE_MS = 3184;

/** The targets set in the core issue for the embedded runtime on this 2-core machine, and for the emulator tier. */
export const TARGETS: Target[] = [
  { name: 'W1 with start-up <= 1.60 s', metric: 'w1ColdMs', kind: 'value', bound: 1600, unit: 'ms' },
  { name: 'W1 warm <= 1.53 s', metric: 'w1WarmMs', kind: 'value', bound: 1530, unit: 'ms' },
  { name: 'W3 >= 15,000 tasks/s (warm)', metric: 'w3TasksPerSec', kind: 'value', bound: 15000, higherIsBetter: true, unit: 'tasks/s' },
  { name: 'W3 sequential <= 0.15 ms', metric: 'w3SeqMedianMs', kind: 'value', bound: 0.15, unit: 'ms' },
  { name: 'matmul 1000x1000 (1 thread) <= 0.4 s', metric: 'matmulWasmMs', kind: 'value', bound: 400, unit: 'ms' },
  { name: 'W2 total within 10 % of the bare pool', metric: 'w2TotalMs', kind: 'ratio', bound: 1.1, unit: 'x' },
  // Dependent tasks: every level of the tree is a round trip through the driver, for volley and the pool alike.
  ...[100, 1000, 10000].map((n): Target => ({ name: `sum tree over ${n.toLocaleString('en-US')} within 1.3x of the bare pool`, metric: `tree@${n}.makespanMs`, kind: 'ratio', bound: 1.3, unit: 'x' })),
  { name: 'emulator W3 >= 10,000 tasks/s (warm)', metric: 'w3TasksPerSec', kind: 'value', bound: 10000, higherIsBetter: true, unit: 'tasks/s', system: 'emulator' },
  {
    name: `emulator sum tree N=1,000 <= ${(EMULATOR_TREE_1000_BEFORE_MS / 3000).toFixed(2)} s (3x)`,
    metric: 'tree@1000.makespanMs',
    kind: 'value',
    bound: EMULATOR_TREE_1000_BEFORE_MS / 3,
    unit: 'ms',
    system: 'emulator',
  },
];

export interface TargetResult extends Target {
  /** The volley median (or its ratio to the pool), and the best run's. */
  median?: number;
  best?: number;
  pass?: boolean;
}

export function aggregate(results: JobResult[]): Partial<Record<SystemName, SystemFigures>> {
  const raw = new Map<SystemName, Map<string, number[]>>();
  for (const r of results) {
    if (!r.ok) continue;
    const m = raw.get(r.job.system) ?? new Map<string, number[]>();
    raw.set(r.job.system, m);
    for (const [k, v] of Object.entries(r.figures)) {
      const key = r.job.prefix + k;
      m.set(key, [...(m.get(key) ?? []), v]);
    }
  }
  const out: Partial<Record<SystemName, SystemFigures>> = {};
  for (const [sys, m] of raw) {
    const f: SystemFigures = {};
    for (const [k, vs] of m) f[k] = summarize(vs, k.endsWith('TasksPerSec'));
    out[sys] = f;
  }
  return out;
}

/**
 * A system's figure relative to the bare pool's, as a time ratio: its time / the pool's time
 * (for tasks/s: the pool's / its own). Below 1 is faster than the bare pool. Medians.
 */
export function ratio(figs: Partial<Record<SystemName, SystemFigures>>, system: SystemName, key: string, higherIsBetter = false): number | undefined {
  const a = figs[system]?.[key]?.median;
  const b = figs.pool?.[key]?.median;
  if (a === undefined || b === undefined || a === 0 || b === 0) return undefined;
  return higherIsBetter ? b / a : a / b;
}

export function judge(figs: Partial<Record<SystemName, SystemFigures>>): TargetResult[] {
  return TARGETS.map((t) => {
    const s = figs[t.system ?? 'volley']?.[t.metric];
    if (!s) return { ...t };
    if (t.kind === 'ratio') {
      const pool = figs.pool?.[t.metric];
      if (!pool) return { ...t };
      const median = s.median / pool.median;
      return { ...t, median, best: s.min / pool.min, pass: median <= t.bound };
    }
    return { ...t, median: s.median, best: s.min, pass: t.higherIsBetter ? s.median >= t.bound : s.median <= t.bound };
  });
}

export function fmt(v: number | undefined, unit: MetricDef['unit'] | 'x'): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  switch (unit) {
    case 's':
      return `${(v / 1000).toFixed(2)} s`;
    case 'ms':
      return v < 1 ? `${v.toFixed(3)} ms` : v < 100 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
    case 'tasks/s':
      return `${Math.round(v).toLocaleString('en-US')}/s`;
    case 'MB':
      return `${Math.round(v / 1e6)} MB`;
    case 'count':
      return Math.round(v).toLocaleString('en-US');
    case 'x':
      return `${v.toFixed(2)}x`;
  }
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** All figures of the run as rows: headline, hops, then the scaling points. */
export function metricRows(plan: Plan): MetricDef[] {
  const rows = [...HEADLINE_METRICS, ...hopMetrics(plan.hopBytes)];
  for (const kind of ['noop', 'tree'] as const) {
    for (const n of plan.scaleN) {
      const what = kind === 'noop' ? `${n.toLocaleString('en-US')} no-ops` : `sum tree over ${n.toLocaleString('en-US')}`;
      rows.push({ key: `${kind}@${n}.makespanMs`, label: `scaling: ${what}, makespan`, unit: 'ms' });
      rows.push({ key: `${kind}@${n}.peakRssBytes`, label: `scaling: ${what}, driver peak RSS`, unit: 'MB' });
      rows.push({ key: `${kind}@${n}.invocations`, label: `scaling: ${what}, Lambda invocations (AWS path)`, unit: 'count' });
    }
  }
  return rows;
}

export function table(plan: Plan, systems: SystemName[], figs: Partial<Record<SystemName, SystemFigures>>): string {
  const rows = metricRows(plan).filter((m) => systems.some((s) => figs[s]?.[m.key]));
  const labelW = Math.max(...rows.map((r) => r.label.length), 10);
  const cell = (s: SystemName, m: MetricDef) => {
    const f = figs[s]?.[m.key];
    if (!f) return '-';
    const r = s === 'pool' ? undefined : ratio(figs, s, m.key, m.higherIsBetter);
    const mm = f.values.length > 1 ? `${fmt(f.min, m.unit)} / ${fmt(f.median, m.unit)}` : fmt(f.median, m.unit);
    return r === undefined ? mm : `${mm} (${r.toFixed(2)}x)`;
  };
  const cells = rows.map((m) => systems.map((s) => cell(s, m)));
  const widths = systems.map((s, i) => Math.max(SYSTEM_LABELS[s].length, ...cells.map((c) => c[i]!.length)));
  const lines: string[] = [];
  lines.push(`${pad('figure (min / median; (ratio) = time vs bare pool)', labelW)}  ${systems.map((s, i) => pad(SYSTEM_LABELS[s], widths[i]!, true)).join('  ')}`);
  lines.push('-'.repeat(lines[0]!.length));
  rows.forEach((m, j) => lines.push(`${pad(m.label, labelW)}  ${cells[j]!.map((c, i) => pad(c, widths[i]!, true)).join('  ')}`));
  return lines.join('\n');
}

export function targetLines(results: TargetResult[]): string {
  return results
    .map((t) => {
      const unit = t.unit === 'x' ? 'x' : t.unit === 'tasks/s' ? 'tasks/s' : 'ms';
      const shown = (v?: number) => (unit === 'ms' ? fmt(v, v !== undefined && v >= 100 ? 's' : 'ms') : fmt(v, unit as 'x' | 'tasks/s'));
      if (t.pass === undefined) return `  ${pad(t.name, 48)} not measured`;
      const by = t.pass ? '' : t.higherIsBetter ? `  (${((t.median! / t.bound) * 100).toFixed(0)} % of the target)` : `  (${((t.median! / t.bound - 1) * 100).toFixed(0)} % over)`;
      return `  ${pad(t.name, 48)} median ${pad(shown(t.median), 12, true)}  best ${pad(shown(t.best), 12, true)}  ${t.pass ? 'PASS' : 'MISS'}${by}`;
    })
    .join('\n');
}
