/**
 * One system running one workload in a fresh process, so that start-up and memory figures
 * belong to that system alone. Started by bench/run.ts with an IPC channel:
 *   node dist/bench/child.js '{"system":"volley","workload":"w1","params":{}}'
 * and answers with one message: { ok: true, figures } or { ok: false, error }.
 */
import { isWorker } from 'volley';
import { createSystem } from './systems/index.js';
import { runWorkload, type WorkloadName, type WorkloadParams } from './lib/workloads.js';
import type { SystemName } from './systems/types.js';

interface Job {
  system: SystemName;
  workload: WorkloadName;
  params: WorkloadParams;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const sys = await createSystem(job.system);
  let reply: unknown;
  try {
    await sys.setup?.();
    const figures = await runWorkload(sys, job.workload, job.params);
    reply = { ok: true, figures, info: sys.info?.() };
  } catch (err) {
    reply = { ok: false, error: (err as Error)?.stack ?? String(err) };
  } finally {
    await sys.stop().catch(() => undefined);
  }
  await new Promise<void>((resolve) => {
    if (process.send) process.send(reply, () => resolve());
    else {
      console.log(JSON.stringify(reply));
      resolve();
    }
  });
  // The system is stopped; exit now rather than wait for handles a peer leaves open
  // (faast.js's local mode keeps the process alive for many seconds after cleanup()).
  process.exit(0);
}

if (!isWorker()) await main();
