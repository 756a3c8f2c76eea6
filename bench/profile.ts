/**
 * Where the time goes: runs one system's workload in a child under `node --cpu-prof` (the
 * driver and every worker thread write a profile) and prints, per thread, the functions with
 * the most self time and the time by source file.
 *
 *   node dist/bench/profile.js volley w3 ['{"concurrent":1000}']
 *   node dist/bench/profile.js emulator w3     (the driver, and serverless-offline's threads)
 *
 * Profiles are kept under bench/results/profiles/<stamp>/ (not committed) for Chrome DevTools.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isWorker } from 'volley';
import { benchDist, repoRoot, resultsDir } from './lib/paths.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function short(url: string): string {
  if (!url) return '(native)';
  const u = url.replace('file://', '').replace(repoRoot, '');
  return u.replace(/^.*node_modules\//, 'node_modules/');
}

/** Self time by function and by file over one profile, or several added together (the threads of one process). */
export function summarize(profiles: Profile | Profile[], top = 18): string {
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let wall = 0;
  for (const p of Array.isArray(profiles) ? profiles : [profiles]) {
    wall = Math.max(wall, p.endTime - p.startTime);
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
    for (const [id, us] of self) {
      const cf = byId.get(id)!.callFrame;
      total += us;
      if (cf.functionName === '(idle)') {
        idle += us;
        continue;
      }
      const key = `${cf.functionName || '(anonymous)'}  ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
      fns.set(key, (fns.get(key) ?? 0) + us);
      const file = cf.url ? short(cf.url) : cf.functionName;
      files.set(file, (files.get(file) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const ms = (us: number) => `${(us / 1000).toFixed(1).padStart(8)} ms ${((us / busy) * 100).toFixed(1).padStart(5)} %`;
  const lines = [`  wall ${(wall / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms`];
  lines.push('  by function (self time, % of busy):');
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${ms(v)}  ${k}`);
  lines.push('  by file:');
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`  ${ms(v)}  ${k}`);
  return lines.join('\n');
}

function main(): void {
  const [system = 'volley', workload = 'w3', params = '{}'] = process.argv.slice(2);
  const dir = join(
    resultsDir,
    'profiles',
    new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z'),
  );
  mkdirSync(dir, { recursive: true });
  // On the emulator tier serverless-offline (the Lambda side) is profiled too: infra/emulators.ts runs it under
  // --cpu-prof into the same folder, every thread of it (its HTTP server, each function instance's thread, each
  // instance's task thread) writing a profile when it stops.
  const out = execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, join(benchDist, 'child.js'), JSON.stringify({ system, workload, params: JSON.parse(params) })], {
    encoding: 'utf8',
    env: { ...process.env, ...(system === 'emulator' ? { VOLLEY_OFFLINE_CPU_PROF: dir } : {}) },
  });
  console.log(`${system} ${workload} ${params}: ${out.trim()}`);
  // CPU.<date>.<time>.<pid>.<thread id>.<sequence>.cpuprofile
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const part = (f: string, i: number) => f.split('.')[i];
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile;
  const offline = files.find((f) => readFileSync(join(dir, f), 'utf8').includes('serverless-offline'));
  const lambdaPid = offline === undefined ? undefined : part(offline, 3);
  for (const f of files.filter((f) => part(f, 3) !== lambdaPid)) {
    // The driver's profile is the one of the main thread (thread id 0 in the file name).
    console.log(`\n${f}${part(f, 4) === '0' ? ' (driver)' : ''}`);
    console.log(summarize(read(f)));
  }
  if (lambdaPid !== undefined) {
    const lambda = files.filter((f) => part(f, 3) === lambdaPid);
    console.log(`\nserverless-offline's main thread (HTTP, hand-off to the function's threads)`);
    console.log(summarize(lambda.filter((f) => part(f, 4) === '0').map(read)));
    console.log(`\nserverless-offline's ${lambda.length - 1} other threads together (function instances and their task threads)`);
    console.log(summarize(lambda.filter((f) => part(f, 4) !== '0').map(read)));
  }
  console.log(`\nprofiles: ${dir.slice(repoRoot.length)} (open in Chrome DevTools > Performance)`);
}

if (!isWorker()) main();
