/**
 * What starting a worker thread costs, layer by layer, and where W1's start-up time goes.
 *
 *   node dist/bench/startup.js [rounds]
 *
 * 1. Threads started one at a time (nothing else running in this process), each layer in turn
 *    so that load on the machine falls on all alike; the median CPU time (process.cpuUsage,
 *    the whole process: the driver is idle meanwhile) and wall time until the thread answers:
 *    - node:   a bare worker thread (CommonJS, eval'd), Node's own bootstrap;
 *    - esm:    the same importing an empty ES module file: Node's ESM loader (with its file reading:
 *              node:fs/promises and what it loads), which any ESM task module needs;
 *    - library: the same importing volley's ES module entry (dist/esm/index.js and its chunks) alone;
 *    - tasks:  the same importing the bench's task module, which imports 'volley';
 *    - volley: volley's thread entry, loading that task module before it reports ready (what the pool starts).
 *    Then what W1 would take if thread starts were all it cost (w1Model): the least for bare
 *    Node threads, for threads with the ESM loader, and for volley's.
 * 2. W1's cold run in a fresh process, from before the Runtime exists: when the pool started
 *    each thread and each reported ready, and when each task began, on the same clock.
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Runtime, isWorker, type TaskFinishedEvent } from 'volley';
import { W1_DURATIONS, w1Model } from './lib/workloads.js';
import * as t from './tasks/volley-tasks.js';

const taskModule = new URL('./tasks/volley-tasks.js', import.meta.url).href;
const emptyModule = new URL('./tasks/empty-module.js', import.meta.url).href;
const libraryModule = new URL('../esm/index.js', import.meta.url).href;
const threadEntry = new URL('../esm/worker-thread.js', import.meta.url);

const answer = (body: string) => `require('node:worker_threads').parentPort.postMessage({ kind: 'ready' }); ${body}`;
const layers: Record<string, () => Worker> = {
  node: () => new Worker(answer(''), { eval: true }),
  esm: () => new Worker(`import(${JSON.stringify(emptyModule)}).then(() => { ${answer('')} })`, { eval: true }),
  library: () => new Worker(`import(${JSON.stringify(libraryModule)}).then(() => { ${answer('')} })`, { eval: true }),
  tasks: () => new Worker(`import(${JSON.stringify(taskModule)}).then(() => { ${answer('')} })`, { eval: true }),
  volley: () => new Worker(threadEntry, { workerData: { progress: new Int32Array(new SharedArrayBuffer(8)), preload: taskModule, maxTaskDepth: 16 } }),
};

async function startOne(make: () => Worker): Promise<{ cpuMs: number; wallMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const w = make();
  await new Promise<void>((resolve, reject) => {
    w.on('message', (m: { kind?: string }) => m.kind === 'ready' && resolve());
    w.once('error', reject);
  });
  const c = process.cpuUsage(c0);
  const out = { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
  await w.terminate();
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function measureLayers(rounds: number): Promise<Record<string, number>> {
  const runs: Record<string, Array<{ cpuMs: number; wallMs: number }>> = {};
  for (const name of Object.keys(layers)) runs[name] = [];
  await startOne(layers.volley!); // the driver's own first use of worker_threads, not a layer
  for (let r = 0; r < rounds; r++) for (const [name, make] of Object.entries(layers)) runs[name]!.push(await startOne(make));
  console.log(`one thread at a time, median of ${rounds} (CPU of the whole process; wall until the thread answers):`);
  let prev = 0;
  const cpuMs: Record<string, number> = {};
  for (const [name, r] of Object.entries(runs)) {
    const cpu = median(r.map((x) => x.cpuMs));
    cpuMs[name] = cpu;
    console.log(
      `  ${name.padEnd(8)} CPU ${cpu.toFixed(1).padStart(5)} ms (+${(cpu - prev).toFixed(1).padStart(4)})   wall ${median(r.map((x) => x.wallMs))
        .toFixed(1)
        .padStart(5)} ms`,
    );
    prev = cpu;
  }
  return cpuMs;
}

/** W1's cold run, in this (fresh) process. */
async function w1Timeline(): Promise<void> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  // Each thread the pool starts: when it was created and when it reported ready (Node's 'worker' event).
  const threads: Array<{ created: number; ready?: number }> = [];
  process.on('worker', (w) => {
    const th: { created: number; ready?: number } = { created: performance.now() - t0 };
    threads.push(th);
    w.on('message', (m: { kind?: string }) => {
      if (m.kind === 'ready') th.ready = performance.now() - t0;
    });
  });
  const rt = await new Runtime().ready();
  const readyMs = performance.now() - t0;
  const finished: TaskFinishedEvent[] = [];
  rt.onEvent((e) => {
    if (e.type === 'finished') finished.push(e);
  });
  await rt.get(W1_DURATIONS.map((s) => rt.remote(t.sleepTask, s)));
  const coldMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  await rt.shutdown();
  const starts = finished.map((e) => ({ at: (e.startedAt ?? Number.NaN) - t0, runMs: e.timing?.runMs ?? 0, worker: e.worker?.id })).sort((a, b) => a.at - b.at);
  const longest = starts.reduce((a, b) => (b.runMs > a.runMs ? b : a));
  console.log(`W1 cold: ${coldMs.toFixed(0)} ms; CPU ${((c.user + c.system) / 1000).toFixed(0)} ms (driver and all threads)`);
  console.log(
    `  runtime ready at ${readyMs.toFixed(1)} ms; first task began at ${starts[0]!.at.toFixed(0)} ms; the ${(longest.runMs / 1000).toFixed(1)} s task at ${longest.at.toFixed(0)} ms (so the run ends at ${(longest.at + longest.runMs).toFixed(0)} ms)`,
  );
  console.log(`  tasks began at (ms: run s): ${starts.map((s) => `${s.at.toFixed(0)}: ${(s.runMs / 1000).toFixed(1)}`).join(', ')}`);
  console.log(`  threads created -> ready (ms): ${threads.map((th) => `${th.created.toFixed(0)}->${th.ready?.toFixed(0) ?? '?'}`).join(', ')}`);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'w1') return w1Timeline();
  const cpuMs = await measureLayers(Number(process.argv[2] ?? 9));
  const cores = availableParallelism();
  console.log(`W1 if thread starts were all it took (${cores} cores, each start its CPU time above; from the first thread's start):`);
  for (const [name, what] of [
    ['node', "Node's bootstrap alone"],
    ['esm', 'with the ESM loader (the least for an ESM task module)'],
    ['volley', "volley's threads"],
  ] as const) {
    const m = w1Model(cpuMs[name]!, cores);
    console.log(`  ${what.padEnd(56)} the longest task starts at ${m.longestStartMs.toFixed(0).padStart(4)} ms, W1 ends at ${m.endMs.toFixed(0)} ms`);
  }
  for (let i = 0; i < 3; i++) {
    const child = fork(new URL(import.meta.url), ['w1']);
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

if (!isWorker()) await main();
