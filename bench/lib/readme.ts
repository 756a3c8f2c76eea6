/** The "Performance" section at the very end of README.md, written from one full run. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SYSTEM_LABELS, type SystemName } from '../systems/types.js';
import type { Machine } from './machine.js';
import { HEADLINE_METRICS, hopMetrics } from './plan.js';
import { fmt, ratio, type SystemFigures, type TargetResult } from './report.js';
import { repoRoot } from './paths.js';
import { w1Model } from './workloads.js';
import { INVOKE_TARGET, S3_TARGET, type AwsPathFigures } from './aws-path.js';

export interface SectionInput {
  date: string;
  commit: string;
  runs: number;
  machine: Machine;
  systems: SystemName[];
  figures: Partial<Record<SystemName, SystemFigures>>;
  targets: TargetResult[];
  jsonFile: string;
  charts: string[];
  notes: string[];
  awsPath?: AwsPathFigures;
}

export function performanceSection(i: SectionInput): string {
  const rel = (f: string) => relative(repoRoot, f).split('\\').join('/');
  const gib = (i.machine.memoryBytes / 2 ** 30).toFixed(0);
  const others = i.systems.filter((s) => s !== 'pool');
  const lines: string[] = [];
  lines.push('## Performance', '');
  lines.push(
    `Latest full \`npm run bench\`, ${i.date.slice(0, 10)}, on ${i.machine.cores} cores (${i.machine.cpuModel}), ${gib} GiB, Node ${i.machine.node}, commit ${i.commit}. ` +
      `Median of ${i.runs} runs, each system in fresh child processes; the ratio is a system's time over the time of a bare pool of 16 tinypool threads measured in the same run (for tasks/s, the pool's rate over the system's), so below 1 is faster.`,
    '',
  );
  lines.push(`| figure | ${SYSTEM_LABELS.pool} | ${others.map((s) => `${SYSTEM_LABELS[s]} | ratio`).join(' | ')} |`);
  lines.push(`| --- | ---: | ${others.map(() => '---: | ---:').join(' | ')} |`);
  const hops = hopMetrics([8e6, 100e6]).filter((m) => i.figures.pool?.[m.key]);
  for (const m of [...HEADLINE_METRICS, ...hops]) {
    const cells = others.map((s) => {
      const r = ratio(i.figures, s, m.key, m.higherIsBetter);
      return `${fmt(i.figures[s]?.[m.key]?.median, m.unit)} | ${r === undefined ? '-' : `${r.toFixed(2)}x`}`;
    });
    lines.push(`| ${m.label} | ${fmt(i.figures.pool?.[m.key]?.median, m.unit)} | ${cells.join(' | ')} |`);
  }
  lines.push('');
  const t = i.targets
    .filter((x) => x.pass !== undefined)
    .map(
      (x) =>
        `${x.name}: ${x.pass ? 'pass' : 'miss'} (${x.unit === 'x' ? `${x.median!.toFixed(2)}x` : x.unit === 'tasks/s' ? `${Math.round(x.median!).toLocaleString('en-US')} tasks/s` : x.median! >= 100 ? `${(x.median! / 1000).toFixed(2)} s` : `${x.median!.toFixed(3)} ms`})`,
    );
  if (t.length) lines.push(`Targets (the embedded runtime, or the emulator tier where named): ${t.join('; ')}.`, '');
  if (i.targets.some((x) => x.metric === 'w1ColdMs' && x.pass === false)) {
    // What Node's own worker bootstrap alone (about 30 ms of CPU a thread here: bench/startup.ts, layer 'node') would allow on these cores.
    const floor = w1Model(30, i.machine.cores);
    lines.push(
      'W1 with start-up starts a worker thread for each task running at once: a task runs alone in its thread, as an invocation runs alone in its Lambda sandbox. ' +
        `On ${i.machine.cores} cores the threads start ${i.machine.cores} at a time, and the 1.5 s task, ninth in line, waits for the ninth thread or for one freed by a 0.1 s task. ` +
        `If a thread cost no more than Node's own worker bootstrap (about 30 ms of CPU, without the ESM loader a task module needs), it would start after ${(floor.longestStartMs / 1000).toFixed(2)} s and W1 would end at ${(floor.endMs / 1000).toFixed(2)} s. ` +
        '`node dist/bench/startup.js` measures where the time goes; docs/ARCHITECTURE.md explains it.',
      '',
    );
  }
  if (i.awsPath) {
    const a = i.awsPath;
    lines.push(
      `AWS path, against local endpoints: one client invokes ${Math.round(a.invokePerSec.median).toLocaleString('en-US')} tasks/s (median; target ${INVOKE_TARGET.toLocaleString('en-US')}/s: ${a.invokePerSec.median >= INVOKE_TARGET ? 'pass' : 'miss'}); ` +
        `${(a.s3Sizes ?? []).map((z) => `a ${z.sizeMB} MB round trip through the S3 store runs at ${(z.ratio * 100).toFixed(0)} % of the raw SDK's speed`).join(', ')} on the same s3rver (medians; target ${S3_TARGET * 100} %: ${(a.s3Sizes ?? []).every((z) => z.ratio >= S3_TARGET) ? 'pass' : 'miss'}).`,
      '',
    );
  }
  for (const n of i.notes) lines.push(`- ${n}`);
  if (i.notes.length) lines.push('');
  lines.push(
    `Data: [${rel(i.jsonFile)}](${rel(i.jsonFile)}); charts: ${i.charts.map((c) => `[${rel(c).split('/').pop()}](${rel(c)})`).join(', ')}. Scaling (makespan and driver RSS up to 10,000 tasks and a sum tree over 10,000 inputs) is in the JSON and the charts.`,
  );
  return `${lines.join('\n')}\n`;
}

/** Replaces the Performance section of README.md (up to the next "## " heading), or appends it at the end. */
export function updateReadme(section: string): void {
  const file = join(repoRoot, 'README.md');
  const text = readFileSync(file, 'utf8');
  const at = text.indexOf('\n## Performance\n');
  if (at < 0) {
    writeFileSync(file, `${text.replace(/\s*$/, '')}\n\n${section}`);
    return;
  }
  const next = text.indexOf('\n## ', at + 1);
  const tail = next < 0 ? '' : `\n${text.slice(next)}`;
  writeFileSync(file, `${text.slice(0, at)}\n${section}${tail}`);
}
