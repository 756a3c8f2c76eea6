/**
 * What the Lambda worker costs per cold start and per short task, on this machine, without the
 * emulators' HTTP in the way.
 *
 *   node dist/bench/lambda-init.js [runs]
 *
 * The worker bundle is built as `volley package` builds it (volley's task modules and the
 * bench's), then each run is a fresh Node process, as a Lambda sandbox is, with the flags
 * serverless.yml gives the function (--enable-source-maps):
 * - INIT: from the process's start until the handler's module is loaded (what the handler
 *   reports as `worker.initMs` on its first answer, and Lambda bills), and the process's CPU
 *   time for it (on 2 shared cores, CPU time is the steadier figure);
 * - the first batch of 128 no-ops through the handler and its task thread (which loads the
 *   bundle again: its own cold start), wall time, and how many of its tasks were answered
 *   notStarted (the batch ran past its overrun limit before they could start);
 * - warm batches: CPU time per no-op, both threads together.
 * Reports min / median over the runs, and which built-ins of the AWS SDK's HTTP stack the
 * sandbox had loaded (none: the store is not used by tasks whose values travel inline).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleWorker, packageRoot } from '../infra/bundle.js';
import { PROTOCOL_VERSION, toWire } from '../sdk/protocol.js';
import { encode } from '../sdk/serialize.js';

const TASKS = 128;
const WARM_BATCHES = 20;
const JOB = 'benchinit/benchinitbenchinit';

function noopBatch(b: number): unknown {
  const args = encode([]);
  const tasks = Array.from({ length: TASKS }, (_, i) => {
    const taskId = `benchNoop-${b}-${i}`;
    return {
      task: toWire({
        v: PROTOCOL_VERSION,
        kind: 'task',
        job: JOB,
        taskId,
        fn: 'benchNoop',
        args: { kind: 'inline', bytes: args },
        deps: {},
        resultKey: `volley/jobs/${JOB}/${taskId}`,
        inlineLimit: 102_400,
      }),
      timeoutMs: 30_000,
      memoryMB: 128,
    };
  });
  return { v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 31_000, tasks };
}

/** One sandbox: a fresh process that loads the bundle and runs the batches (see the header). */
const SANDBOX = `
const c0 = process.cpuUsage();
const { handler } = await import(process.argv[2]);
const init = process.cpuUsage(c0);
const cpu = (c) => (c.user + c.system) / 1000;
const batches = JSON.parse((await import('node:fs')).readFileSync(process.argv[3], 'utf8'));
const t0 = performance.now();
const first = await handler(batches[0], {});
const firstMs = performance.now() - t0;
// A task the batch could not start in time (the task thread's cold start ran past the batch's
// overrun limit) is answered notStarted, and a driver would send it again.
const ok = first.results.every((r) => r.kind === 'value' || r.kind === 'notStarted');
const notStarted = first.results.filter((r) => r.kind === 'notStarted').length;
const w0 = process.cpuUsage();
for (const b of batches.slice(1)) await handler(b, {});
const warm = process.cpuUsage(w0);
const sdk = process.moduleLoadList.filter((m) => /^NativeModule (https?|http2|tls|zlib|crypto)$/.test(m)).map((m) => m.slice(13));
(await import('node:fs')).writeFileSync(process.argv[4], JSON.stringify({ ok, notStarted, initMs: first.results[0].worker.initMs, initCpuMs: cpu(init), firstBatchMs: firstMs, warmCpuUsPerTask: (cpu(warm) * 1000) / ((batches.length - 1) * ${TASKS}), sdk }));
process.exit(0);
`;

interface Run {
  ok: boolean;
  notStarted: number;
  initMs: number;
  initCpuMs: number;
  firstBatchMs: number;
  warmCpuUsPerTask: number;
  sdk: string[];
}

function sandbox(dir: string, bundle: string, events: string, k: number): Promise<Run> {
  const out = join(dir, `run-${k}.json`);
  const env = { PATH: process.env.PATH, VOLLEY_BUCKET: 'volley-bench', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', NODE_NO_WARNINGS: '1' };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--enable-source-maps', join(dir, 'sandbox.mjs'), pathToFileURL(bundle).href, events, out], { env, timeout: 120_000 }, (err, _o, stderr) => {
      if (err) reject(new Error(`sandbox failed: ${stderr || err.message}`));
      else resolve(JSON.parse(readFileSync(out, 'utf8')) as Run);
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (xs: number[], digits = 1) => `min ${Math.min(...xs).toFixed(digits)}  median ${median(xs).toFixed(digits)}`;

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 9);
  const dir = mkdtempSync(join(tmpdir(), 'volley-lambda-init-'));
  try {
    const built = await bundleWorker({ projectRoot: packageRoot(), outdir: dir, extraTasks: ['bench/tasks/volley-tasks.ts'] });
    const events = join(dir, 'batches.json');
    writeFileSync(events, JSON.stringify(Array.from({ length: WARM_BATCHES + 1 }, (_, b) => noopBatch(b))));
    writeFileSync(join(dir, 'sandbox.mjs'), SANDBOX);
    const all: Run[] = [];
    for (let k = 0; k < runs; k++) all.push(await sandbox(dir, built.file, events, k));
    if (!all.every((r) => r.ok)) throw new Error('a no-op did not answer a value');
    console.log(
      `Lambda worker bundle: ${(built.bytes / 1e6).toFixed(2)} MB (+ ${(statSync(`${built.file}.map`).size / 1e6).toFixed(2)} MB source map); ${runs} fresh sandboxes, --enable-source-maps:`,
    );
    console.log(`  INIT (handler loaded, worker.initMs)        ${fmt(all.map((r) => r.initMs))} ms`);
    console.log(`  INIT, CPU time of the process               ${fmt(all.map((r) => r.initCpuMs))} ms`);
    console.log(`  first batch of ${TASKS} no-ops (task thread's cold start included)   ${fmt(all.map((r) => r.firstBatchMs))} ms`);
    console.log(`  first batch: tasks answered notStarted (to be sent again), per sandbox: ${all.map((r) => r.notStarted).join(' ')}`);
    console.log(`  warm batches, CPU per no-op (both threads)  ${fmt(all.map((r) => r.warmCpuUsPerTask))} us`);
    console.log(`  AWS SDK built-ins loaded by no-op batches: ${[...new Set(all.flatMap((r) => r.sdk))].join(', ') || 'none'}`);
    console.log(JSON.stringify({ bundleBytes: built.bytes, runs: all }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
