/**
 * W1 of the seed: 16 tasks sleep for the tutorial's durations and return a short string.
 * Run one after another they take 9.9 s; fanned out, about as long as the longest (1.5 s).
 *
 *   npm run build && node dist/examples/sleep-fanout.js
 */
import { get, init, isWorker, remote, shutdown } from 'volley';

export const DURATIONS = [0.1, 0.2, 0.1, 0.5, 0.7, 0.9, 0.5, 0.4, 1.5, 1.3, 1.0, 0.3, 0.7, 0.6, 0.3, 0.8];

export const sleepTask = remote(async function sleepTask(seconds: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return `slept ${seconds} s`;
});

async function main(): Promise<void> {
  const total = DURATIONS.reduce((a, b) => a + b, 0);
  console.log(`W1 sleep fan-out: ${DURATIONS.length} tasks, total sleep time ${total.toFixed(1)} s`);

  const t0 = performance.now();
  await init();
  const refs = DURATIONS.map((d) => sleepTask.remote(d));
  const results = await get(refs);
  const fanout = (performance.now() - t0) / 1000;
  console.log(`  ${results.length} results, e.g. "${results[0]}"`);
  console.log(`  volley (embedded runtime, including start-up): finished in ${fanout.toFixed(2)} s`);

  const t1 = performance.now();
  await get(DURATIONS.map((d) => sleepTask.remote(d)));
  console.log(`  volley again, workers warm: ${((performance.now() - t1) / 1000).toFixed(2)} s`);
  await shutdown();

  const t2 = performance.now();
  for (const d of DURATIONS) await new Promise((r) => setTimeout(r, d * 1000));
  console.log(`  sequential baseline (no tasks): ${((performance.now() - t2) / 1000).toFixed(2)} s`);
}

if (!isWorker()) await main();
