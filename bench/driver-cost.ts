/**
 * The driver's own CPU time per task on the fan-in sum tree, for volley's embedded runtime
 * and the bare pool: on a shared machine the makespan moves with the load, while the CPU time
 * the driver thread spends per task is steadier and is what separates the two.
 *
 *   node dist/bench/driver-cost.js [system=volley] [n=1000] [repeats=15]
 *
 * One process: the system is started, warmed (16 no-ops and two trees), then the tree over n
 * inputs runs `repeats` times; each run's makespan, the driver thread's CPU time (Linux:
 * /proc/thread-self/schedstat, nanoseconds on the CPU; elsewhere the process's CPU time, which
 * includes the workers) and the whole process's CPU time (every thread: driver, workers, and
 * V8's garbage-collector and compiler threads) are printed as min/median, per task (2n - 1 tasks).
 * The first of the warm-up trees is the bench's scale-tree (cold code, functions not measured
 * yet): its figures are printed apart (`first`), with the share of its sums that ran chained
 * behind their inputs and the threads started, where the system reports them (`info()`).
 */
import { readFileSync } from 'node:fs';
import { isWorker } from 'volley';
import { median } from './lib/stats.js';
import { createSystem } from './systems/index.js';
import type { SystemName } from './systems/types.js';

/** CPU time of this thread in µs (Linux), or of the process elsewhere. */
function threadCpuUs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1000;
  } catch {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
}

async function main(): Promise<void> {
  const [system = 'volley', nArg = '1000', rArg = '15'] = process.argv.slice(2);
  const n = Number(nArg);
  const repeats = Number(rArg);
  const sys = await createSystem(system as SystemName);
  await sys.start();
  try {
    await sys.noops(16);
    const counts = () => sys.info?.() as { threadsStarted?: number; chainedTasks?: number } | undefined;
    const before = counts();
    const c0 = threadCpuUs();
    const p0 = process.cpuUsage();
    const t0 = performance.now();
    await sys.sumTree(n);
    const firstMs = performance.now() - t0;
    const firstCpu = threadCpuUs() - c0;
    const firstAll = process.cpuUsage(p0);
    const after = counts();
    await sys.sumTree(n);
    const wall: number[] = [];
    const cpu: number[] = [];
    const all: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const c0 = threadCpuUs();
      const p0 = process.cpuUsage();
      const t0 = performance.now();
      const sum = await sys.sumTree(n);
      wall.push(performance.now() - t0);
      cpu.push(threadCpuUs() - c0);
      const p = process.cpuUsage(p0);
      all.push(p.user + p.system);
      if (sum !== (n * (n - 1)) / 2) throw new Error(`wrong sum ${sum}`);
    }
    const tasks = 2 * n - 1;
    const f = (x: number) => x.toFixed(1);
    const first: Record<string, number> = {
      makespanMs: +f(firstMs),
      driverCpuUsPerTask: +f(firstCpu / tasks),
      processCpuUsPerTask: +f((firstAll.user + firstAll.system) / tasks),
    };
    if (before?.chainedTasks !== undefined && after?.chainedTasks !== undefined) first.chainedSumsShare = +((after.chainedTasks - before.chainedTasks) / (n - 1)).toFixed(3);
    if (before?.threadsStarted !== undefined && after?.threadsStarted !== undefined) first.threadsStartedDuring = after.threadsStarted - before.threadsStarted;
    console.log(
      JSON.stringify({
        system,
        n,
        repeats,
        first,
        makespanMs: { min: +f(Math.min(...wall)), median: +f(median(wall)) },
        driverCpuUsPerTask: { min: +f(Math.min(...cpu) / tasks), median: +f(median(cpu) / tasks) },
        processCpuUsPerTask: { min: +f(Math.min(...all) / tasks), median: +f(median(all) / tasks) },
      }),
    );
  } finally {
    await sys.stop();
  }
}

if (!isWorker()) await main();
