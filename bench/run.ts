/**
 * `npm run bench`: volley side by side with its peers on the seed's workloads, every system
 * judged as a ratio to a bare pool of 16 worker threads measured in the same run.
 *
 *   npm run bench                      full run (minutes): 3 runs of every figure
 *   npm run bench -- --quick           smoke check (about a minute)
 *   npm run bench -- --help            all options
 *
 * Each (system, workload, run) is a fresh child process (bench/child.ts). Results: a table
 * here, JSON under bench/results/, SVG charts under bench/results/charts/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isWorker } from 'volley';
import { spawnSync } from 'node:child_process';
import { awsPathLines, runAwsPath } from './lib/aws-path.js';
import { actorLines, type ActorFigures } from './actors.js';
import { emulatorActorLines, type EmulatorActorFigures } from './actors-emulator.js';
import { renderCharts } from './lib/charts.js';
import { parseArgs, USAGE, type BenchOptions } from './lib/cli.js';
import { commit, machine, type Machine } from './lib/machine.js';
import { ensurePeers } from './lib/peers.js';
import { repoRoot, resultsDir } from './lib/paths.js';
import { makePlan } from './lib/plan.js';
import { performanceSection, updateReadme } from './lib/readme.js';
import { aggregate, judge, table, targetLines, type SystemFigures, type TargetResult } from './lib/report.js';
import { Progress, runChild, type JobResult } from './lib/runner.js';
import { SYSTEM_LABELS, type SystemName } from './systems/types.js';

/** The emulator tier is built elsewhere; the flag works once its module is in the build. */
function emulatorAvailable(): boolean {
  return existsSync(join(repoRoot, 'dist', 'infra', 'emulators.js'));
}

async function main(o: BenchOptions): Promise<void> {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  if (o.emulator && !emulatorAvailable()) {
    log('--emulator: volley on the emulator tier is not available yet (infra/emulators.ts is not in this build); running without it.');
    o.emulator = false;
  }
  ensurePeers(log);
  const plan = makePlan(o);
  const systems = [...new Set(plan.jobs.map((j) => j.system))] as SystemName[];
  const full = !o.quick && !o.only && o.systems.length === 2 && o.runs >= 3;
  const date = new Date();
  const mach = machine();
  const sha = commit();
  log(`volley bench (${o.quick ? 'quick' : full ? 'full' : 'partial'}): ${plan.jobs.length} child processes, ${o.runs} run(s) each; ${systems.map((s) => SYSTEM_LABELS[s]).join(', ')}`);
  log(`machine: ${mach.cores} cores, ${mach.cpuModel}, ${(mach.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${mach.node}; commit ${sha}`);

  const progress = new Progress(plan.jobs.length);
  const results: JobResult[] = [];
  for (const [i, job] of plan.jobs.entries()) {
    progress.show(i, `${SYSTEM_LABELS[job.system]}: ${job.label}${job.runs > 1 ? `, run ${job.run + 1}/${job.runs}` : ''}`);
    const r = await runChild(job, 15 * 60_000);
    results.push(r);
    if (!r.ok) progress.log(`FAILED ${job.system} ${job.label}: ${r.error}`);
  }
  progress.end();

  const awsPath = o.emulator ? await runAwsPath(o.quick ? 1 : o.runs, o.quick ? 2000 : 5000, log, o.quick ? '8' : '8,100') : undefined;

  const actors = runActorBench(o.quick, log);
  const actorsEmulator = o.emulator ? runActorBench(o.quick, log, 'actors-emulator.js') : undefined;
  const figures = aggregate(results);
  const targets = judge(figures);
  const caption = `${date.toISOString().slice(0, 10)} · ${mach.cores} cores ${mach.cpuModel} · Node ${mach.node} · ${o.quick ? 'quick run' : `median of ${o.runs}`}`;

  const dir = o.quick ? join(resultsDir, 'quick') : full ? resultsDir : join(resultsDir, 'partial');
  mkdirSync(dir, { recursive: true });
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const jsonFile = join(dir, `${stamp}.json`);
  const charts = await renderCharts(join(dir, 'charts'), plan, systems, figures, caption);
  const failures = results.filter((r) => !r.ok);
  const doc = {
    date: date.toISOString(),
    commit: sha,
    mode: o.quick ? 'quick' : full ? 'full' : 'partial',
    runs: o.runs,
    machine: mach,
    systems: Object.fromEntries(systems.map((s) => [s, SYSTEM_LABELS[s]])),
    ratioDefinition: "system time / bare pool time, medians (for tasks/s: the pool's rate / the system's); below 1 is faster",
    notes: plan.notes,
    figures,
    targets,
    awsPath,
    actors,
    actorsEmulator,
    charts: charts.map((c) => c.slice(repoRoot.length)),
    failures: failures.map((r) => ({ system: r.job.system, job: r.job.label, run: r.job.run, error: r.error })),
    jobs: results.map((r) => ({ system: r.job.system, workload: r.job.workload, params: r.job.params, run: r.job.run, ok: r.ok, wallMs: Math.round(r.wallMs), figures: r.figures, info: r.info })),
  };
  writeFileSync(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);

  console.log('');
  console.log(table(plan, systems, figures));
  console.log('');
  console.log('Targets (volley: the embedded runtime, or the emulator tier where named; judged on the median):');
  console.log(targetLines(targets));
  if (awsPath) console.log(awsPathLines(awsPath));
  if (actors) console.log(actorLines(actors));
  if (actorsEmulator) console.log(emulatorActorLines(actorsEmulator));
  for (const n of plan.notes) console.log(`note: ${n}`);
  if (failures.length) console.log(`${failures.length} job(s) failed; see "failures" in the JSON.`);
  console.log('');
  console.log(`results: ${jsonFile.slice(repoRoot.length)}`);
  for (const c of charts) console.log(`chart:   ${c.slice(repoRoot.length)}`);

  if (o.updateReadme) {
    if (!full) console.log('--update-readme: only a full run (no --quick/--only/--systems, 3+ runs) updates README.md; skipped.');
    else {
      updateReadme(performanceSection({ date: doc.date, commit: sha, runs: o.runs, machine: mach, systems, figures, targets, jsonFile, charts, notes: plan.notes, awsPath }));
      console.log('README.md: Performance section updated.');
    }
  }
  if (failures.length) process.exitCode = 1;
}

/** Actor calls against plain tasks, in a fresh process: bench/actors.ts (embedded runtime) or bench/actors-emulator.ts (emulator tier). */
function runActorBench(quick: boolean, log: (s: string) => void): ActorFigures | undefined;
function runActorBench(quick: boolean, log: (s: string) => void, script: 'actors-emulator.js'): EmulatorActorFigures | undefined;
function runActorBench(quick: boolean, log: (s: string) => void, script = 'actors.js'): ActorFigures | EmulatorActorFigures | undefined {
  if (script !== 'actors.js') log('Actors on the emulator tier: per-call S3 traffic and latency...');
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'bench', script), ...(quick ? ['--quick'] : [])], { encoding: 'utf8', timeout: 10 * 60_000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ActorFigures | EmulatorActorFigures;
  } catch {
    log(`actor benchmark (${script}) failed: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
    return undefined;
  }
}

/** Rewrites README's Performance section from a saved full run. */
function readmeFrom(file: string): void {
  const path = resolve(file);
  const doc = JSON.parse(readFileSync(path, 'utf8')) as {
    mode: string;
    date: string;
    commit: string;
    runs: number;
    machine: Machine;
    systems: Record<string, string>;
    figures: Partial<Record<SystemName, SystemFigures>>;
    targets: TargetResult[];
    charts: string[];
    notes: string[];
  };
  if (doc.mode !== 'full') throw new Error(`${file} is a ${doc.mode} run; README quotes full runs only`);
  updateReadme(performanceSection({ ...doc, systems: Object.keys(doc.systems) as SystemName[], jsonFile: path, charts: doc.charts.map((c) => join(repoRoot, c)) }));
  console.log(`README.md: Performance section rewritten from ${file}`);
}

if (!isWorker()) {
  let options: BenchOptions | undefined;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 2;
  }
  if (options?.help) console.log(USAGE);
  else if (options?.readmeFrom) readmeFrom(options.readmeFrom);
  else if (options) await main(options);
}
