/**
 * Actor calls against plain tasks on the embedded runtime, in a fresh process:
 * - sequential latency: one call, await its result, the next (a driver that needs each answer);
 * - throughput: many calls submitted at once, then all results read. An actor's calls run one
 *   at a time on one thread, each after the one before it has come back (so that a failure or a
 *   restart is seen before the next call); plain tasks run on every core, several per message.
 * Prints one JSON line: `node dist/bench/actors.js [--quick]`.
 */
import { Runtime, isWorker } from 'volley';
import { BenchCounter, benchAdd } from './tasks/actor-tasks.js';

export interface ActorFigures {
  calls: number;
  /** Microseconds per call, one after another: median of three rounds. */
  actorSeqUs: number;
  taskSeqUs: number;
  /** Calls (or tasks) per second, all submitted at once: median of three rounds. */
  actorPerSec: number;
  taskPerSec: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(quick: boolean): Promise<ActorFigures> {
  const calls = quick ? 300 : 2000;
  const rt = await new Runtime({ local: { maxWorkers: 8 } }).ready();
  try {
    const c = rt.actor(BenchCounter);
    // Warm both: threads started, modules loaded, the task's run time known to the pool.
    await rt.get(Array.from({ length: 50 }, () => c.add.remote(1)));
    await rt.get(Array.from({ length: 200 }, (_, i) => rt.remote(benchAdd, i, 1)));
    const seq = async (one: (i: number) => Promise<unknown>) => {
      const n = Math.max(100, calls / 4);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await one(i);
      return ((performance.now() - t0) * 1000) / n;
    };
    const burst = async (submit: (i: number) => unknown) => {
      const t0 = performance.now();
      await rt.get(Array.from({ length: calls }, (_, i) => submit(i)) as never);
      return calls / ((performance.now() - t0) / 1000);
    };
    const rounds = { actorSeq: [] as number[], taskSeq: [] as number[], actorRate: [] as number[], taskRate: [] as number[] };
    for (let r = 0; r < 3; r++) {
      rounds.actorSeq.push(await seq(() => rt.get(c.add.remote(1))));
      rounds.taskSeq.push(await seq((i) => rt.get(rt.remote(benchAdd, i, 1))));
      rounds.actorRate.push(await burst(() => c.add.remote(1)));
      rounds.taskRate.push(await burst((i) => rt.remote(benchAdd, i, 1)));
    }
    return {
      calls,
      actorSeqUs: Math.round(median(rounds.actorSeq)),
      taskSeqUs: Math.round(median(rounds.taskSeq)),
      actorPerSec: Math.round(median(rounds.actorRate)),
      taskPerSec: Math.round(median(rounds.taskRate)),
    };
  } finally {
    await rt.shutdown();
  }
}

/** The lines run.ts prints. */
export function actorLines(f: ActorFigures): string {
  return [
    `Actors (embedded runtime, ${f.calls} calls; ratio = actor / plain task):`,
    `  sequential call latency  actor ${f.actorSeqUs} us   task ${f.taskSeqUs} us   ratio ${(f.actorSeqUs / f.taskSeqUs).toFixed(2)}`,
    `  throughput               actor ${f.actorPerSec}/s   task ${f.taskPerSec}/s   ratio ${(f.taskPerSec / f.actorPerSec).toFixed(2)} (task rate / actor rate)`,
  ].join('\n');
}

if (!isWorker() && process.argv[1]?.endsWith('actors.js')) {
  console.log(JSON.stringify(await measure(process.argv.includes('--quick'))));
}
