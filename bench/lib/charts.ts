/**
 * Charts rendered to SVG by vega-lite (compiled to a vega spec) and vega's headless view:
 * makespan and driver RSS against N on log scales, and the headline figures of each system
 * as a ratio to the bare pool.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SYSTEM_LABELS, type SystemName } from '../systems/types.js';
import { importPeer } from './peers.js';
import { HEADLINE_METRICS, type Plan } from './plan.js';
import { ratio, type SystemFigures } from './report.js';

interface VegaLite {
  compile(spec: object): { spec: object };
}
interface Vega {
  parse(spec: object): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}

const SHORT: Record<string, string> = {
  w1ColdMs: 'W1 with start-up',
  w1WarmMs: 'W1 warm',
  w2TotalMs: 'W2 total',
  w2MatmulMs: 'W2 matmul',
  matmulWasmMs: 'matmul kernel (wasm)',
  matmulJsMs: 'matmul kernel (JS)',
  w3TasksPerSec: 'W3 tasks/s',
  w3FirstTasksPerSec: 'W3 1st batch',
  w3SeqMedianMs: 'W3 round trip',
};

async function render(spec: object, file: string): Promise<void> {
  const vl = await importPeer<VegaLite>('vega-lite');
  const vega = await importPeer<Vega>('vega');
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  writeFileSync(file, await view.toSVG());
  view.finalize();
}

/** Colours fixed per system; only the systems present in `rows` appear in the legend. */
function colorScale(systems: SystemName[], rows: Array<Record<string, unknown>>) {
  const palette: Record<SystemName, string> = { pool: '#7f7f7f', volley: '#1f77b4', faast: '#ff7f0e', emulator: '#2ca02c' };
  const present = systems.filter((s) => rows.some((r) => r.system === SYSTEM_LABELS[s]));
  return { domain: present.map((s) => SYSTEM_LABELS[s]), range: present.map((s) => palette[s]) };
}

const LEGEND = { orient: 'bottom', title: null, labelLimit: 400, columns: 2 };

export async function renderCharts(dir: string, plan: Plan, systems: SystemName[], figs: Partial<Record<SystemName, SystemFigures>>, caption: string): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];

  // Scaling: one row per (system, kind, N).
  const points: Array<Record<string, unknown>> = [];
  for (const s of systems) {
    for (const kind of ['noop', 'tree'] as const) {
      for (const n of plan.scaleN) {
        const mk = figs[s]?.[`${kind}@${n}.makespanMs`];
        const rss = figs[s]?.[`${kind}@${n}.peakRssBytes`];
        if (!mk || !rss) continue;
        points.push({
          system: SYSTEM_LABELS[s],
          workload: kind === 'noop' ? 'N no-op tasks' : 'fan-in sum tree over N inputs',
          N: n,
          makespan: Math.max(mk.median, 0.01),
          rss: rss.median / 2 ** 20,
        });
      }
    }
  }
  if (points.length) {
    const color = colorScale(systems, points);
    const scaling = (field: string, title: string, log: boolean) => ({
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: { text: title, subtitle: caption },
      data: { values: points },
      facet: { column: { field: 'workload', type: 'nominal', title: null } },
      spec: {
        width: 320,
        height: 240,
        layer: [{ mark: { type: 'line', point: true } }],
        encoding: {
          x: { field: 'N', type: 'quantitative', scale: { type: 'log' }, axis: { values: plan.scaleN, format: '~s' }, title: 'N (log scale)' },
          y: { field, type: 'quantitative', scale: log ? { type: 'log' } : { zero: true }, title: field === 'rss' ? 'driver peak RSS, MiB' : 'makespan, ms (log scale)' },
          color: { field: 'system', type: 'nominal', scale: color, legend: LEGEND },
        },
      },
    });
    const f1 = join(dir, 'scaling-makespan.svg');
    await render(scaling('makespan', 'Makespan against N (median)', true), f1);
    const f2 = join(dir, 'scaling-rss.svg');
    await render(scaling('rss', 'Driver peak RSS against N (median)', false), f2);
    written.push(f1, f2);
  }

  // Ratios of the headline figures.
  const bars: Array<Record<string, unknown>> = [];
  for (const s of systems) {
    for (const m of HEADLINE_METRICS) {
      const r = s === 'pool' ? (figs.pool?.[m.key] ? 1 : undefined) : ratio(figs, s, m.key, m.higherIsBetter);
      if (r !== undefined) bars.push({ system: SYSTEM_LABELS[s], figure: SHORT[m.key] ?? m.key, ratio: r });
    }
  }
  if (bars.length) {
    const color = colorScale(systems, bars);
    const spec = {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: { text: 'W1 / W2 / W3: time relative to the bare pool (median; below 1 is faster)', subtitle: caption },
      data: { values: bars },
      width: 560,
      height: 300,
      layer: [
        {
          // Bars grow from 1 (the bare pool) up (slower) or down (faster), on a log scale.
          mark: { type: 'bar', minBandSize: 2 },
          encoding: {
            x: { field: 'figure', type: 'nominal', sort: Object.values(SHORT), title: null, axis: { labelAngle: 0 } },
            xOffset: { field: 'system', type: 'nominal', sort: color.domain },
            y: { field: 'ratio', type: 'quantitative', scale: { type: 'log' }, title: 'time / bare pool time (log scale)' },
            y2: { datum: 1 },
            color: { field: 'system', type: 'nominal', scale: color, legend: LEGEND },
            tooltip: [{ field: 'system' }, { field: 'figure' }, { field: 'ratio', format: '.2f' }],
          },
        },
        {
          mark: { type: 'text', dy: -6, fontSize: 9 },
          encoding: {
            x: { field: 'figure', type: 'nominal', sort: Object.values(SHORT) },
            xOffset: { field: 'system', type: 'nominal', sort: color.domain },
            y: { field: 'ratio', type: 'quantitative' },
            text: { field: 'ratio', type: 'quantitative', format: '.2f' },
          },
        },
        { mark: { type: 'rule', color: 'black', strokeDash: [4, 3] }, encoding: { y: { datum: 1 } } },
      ],
    };
    const f3 = join(dir, 'ratios.svg');
    await render(spec, f3);
    written.push(f3);
  }
  return written;
}
