/**
 * Driver memory of a no-op job with the timeline on and off: `node dist/bench/observe-memory.js [tasks]`
 * (default 100,000). Each configuration runs in a fresh child process (with --expose-gc) that
 * submits every task at once, waits for all, and reports its peak RSS (sampled every 20 ms)
 * and its heap after the job and a full GC, with the timeline's buffer still held.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Runtime } from 'volley';
import { noop } from './tasks/volley-tasks.js';

interface Figures {
  timeline: string;
  tasks: number;
  seconds: number;
  peakRssMB: number;
  heapAfterGcMB: number;
  recorded?: number;
  dropped?: number;
}

const MB = 1024 * 1024;

async function child(mode: 'off' | 'on' | 'unbounded', tasks: number): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const rt = await new Runtime({ timeline: mode === 'off' ? false : mode === 'on' ? true : { maxTasks: tasks }, summary: false, progress: false }).ready();
  const t0 = performance.now();
  const refs = Array.from({ length: tasks }, () => rt.remote(noop));
  await rt.get(refs);
  const seconds = (performance.now() - t0) / 1000;
  refs.length = 0;
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(sampler);
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const heap = process.memoryUsage().heapUsed;
  const trace = mode === 'off' ? undefined : (await rt.timeline()).otherData;
  await rt.shutdown();
  return { timeline: mode, tasks, seconds, peakRssMB: peak / MB, heapAfterGcMB: heap / MB, recorded: trace?.tasksRecorded, dropped: trace?.tasksDropped };
}

async function main(): Promise<void> {
  const [, , role, mode, n] = process.argv;
  if (role === 'child') {
    console.log(JSON.stringify(await child(mode as 'off' | 'on' | 'unbounded', Number(n))));
    return;
  }
  const tasks = Number(process.argv[2] ?? 100_000);
  const rows: Figures[] = [];
  for (const m of ['off', 'on', 'unbounded']) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'child', m, String(tasks)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`child ${m} failed: ${r.stderr}`);
    rows.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Figures);
  }
  console.log(`driver memory, ${tasks.toLocaleString('en-US')} no-op tasks submitted at once (embedded runtime)`);
  console.log('timeline                         peak RSS   heap after GC   tasks kept / dropped   time');
  for (const r of rows) {
    const label = r.timeline === 'off' ? 'off' : r.timeline === 'on' ? 'on (default bound, 50,000 tasks)' : `on, unbounded (maxTasks ${tasks})`;
    console.log(
      `${label.padEnd(32)} ${r.peakRssMB.toFixed(0).padStart(5)} MB   ${r.heapAfterGcMB.toFixed(1).padStart(8)} MB   ${r.recorded === undefined ? '-'.padStart(20) : `${r.recorded} / ${r.dropped}`.padStart(20)}   ${r.seconds.toFixed(1)} s`,
    );
  }
}

await main();
