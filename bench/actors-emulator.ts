/**
 * Actor calls on the emulator tier (serverless-offline + s3rver), run by
 * `npm run bench -- --emulator`, in a fresh process:
 * - the S3 traffic each call causes, counted on the wire: a counting proxy
 *   (bench/lib/s3-counter.ts) sits in front of s3rver twice, once as the S3 endpoint of the
 *   Lambda worker (serverless-offline's) and once as the driver's, and tallies requests and
 *   body bytes by operation (method, status, and what the key is: an actor's state version,
 *   its index entry, anything else);
 * - sequential call latency (one call, await its result, the next), against a plain task
 *   doing the same work on the same tier.
 * The proxy is one more loopback hop for each S3 request of the actors (the plain task makes
 * none), a fraction of a millisecond each; the latency is measured with it in place.
 * Two actors: a counter (a state of a few bytes) and one holding a Float64Array of 100,000
 * elements (800 kB). The constructor and a first call run before anything is counted.
 * Prints one JSON line: `node dist/bench/actors-emulator.js [--quick]`.
 */
import { Runtime, isWorker, type InitOptions, type ObjectRef } from 'volley';
import { packageRoot, readConfig } from '../infra/bundle.js';
import { startS3rver, startServerlessOffline } from '../infra/emulators.js';
import { findFramework, prepareService } from '../infra/service.js';
import { actorKeyKind, startS3Counter, tallyDiff, type OpTally, type S3Counter, type Tally } from './lib/s3-counter.js';
import { BenchCounter, BenchVector, benchAdd } from './tasks/actor-tasks.js';

const BUCKET = 'volley-bench-actors';
const VECTOR_LENGTH = 100_000;

export interface EmulatorCase {
  /** 'Counter', 'Vector' (100k Float64Array) or 'task' (the plain task). */
  name: string;
  /** Milliseconds per call, one after another: median of the rounds' means. */
  seqMs: number;
  /** The rounds' means, ms. */
  seqMsRounds: number[];
  /** Calls counted (all rounds). */
  calls: number;
  /** Per call, by operation ("GET 404 state"): the Lambda worker's S3 traffic, and the driver's. */
  worker: Tally;
  driver: Tally;
  /** TCP connections the worker opened to S3, per call. */
  workerConnections: number;
  /** Calls whose worker read a state version (200, or 206 for a ranged read): a sandbox that did not hold the newest version (cold). */
  stateReads: number;
}

export interface EmulatorActorFigures {
  callsPerRound: number;
  rounds: number;
  vectorLength: number;
  cases: EmulatorCase[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function perCall(t: Tally, calls: number): Tally {
  const out: Tally = {};
  for (const [op, x] of Object.entries(t)) out[op] = { requests: x.requests / calls, bytesUp: x.bytesUp / calls, bytesDown: x.bytesDown / calls, ms: x.ms / calls };
  return out;
}

function sum(into: Tally, t: Tally): void {
  for (const [op, x] of Object.entries(t)) {
    const s = (into[op] ??= { requests: 0, bytesUp: 0, bytesDown: 0, ms: 0 });
    s.requests += x.requests;
    s.bytesUp += x.bytesUp;
    s.bytesDown += x.bytesDown;
    s.ms += x.ms;
  }
}

/** s3rver, a counting proxy for the worker and one for the driver, serverless-offline with the bench's actors bundled. */
async function startTier(): Promise<{ aws: NonNullable<InitOptions['aws']>; worker: S3Counter; driver: S3Counter; stop(): Promise<void> }> {
  const config = readConfig(packageRoot());
  const bin = findFramework(config.dir, 'emulator');
  const svc = await prepareService({ config, name: 'emulator', target: 'emulator', extraTasks: ['bench/tasks/actor-tasks.ts'], service: 'volley' });
  const s3 = await startS3rver({ buckets: [BUCKET], projectDir: config.dir });
  const stops: Array<() => Promise<void>> = [() => s3.stop()];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
  };
  try {
    const worker = await startS3Counter({ upstream: s3.endpoint, kindOf: actorKeyKind });
    stops.push(() => worker.stop());
    const driver = await startS3Counter({ upstream: s3.endpoint, kindOf: actorKeyKind });
    stops.push(() => driver.stop());
    const offline = await startServerlessOffline({ s3Endpoint: worker.endpoint, bucket: BUCKET, serviceDir: svc.dir, bin, env: svc.env });
    stops.push(() => offline.stop());
    return { aws: { lambdaEndpoint: offline.endpoint, s3Endpoint: driver.endpoint, functionName: offline.functionName, bucket: BUCKET }, worker, driver, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function measure(quick: boolean): Promise<EmulatorActorFigures> {
  const callsPerRound = quick ? 10 : 40;
  const rounds = 3;
  const tier = await startTier();
  try {
    const rt = await new Runtime({ target: 'emulator', aws: tier.aws }).ready();
    try {
      const counter = rt.actor(BenchCounter);
      const vector = rt.actor(BenchVector, VECTOR_LENGTH);
      // Constructors and first calls done, one after another (one sandbox, warm), before anything is counted.
      await rt.get(counter.add.remote(1));
      await rt.get(vector.bump.remote(0));
      await rt.get(rt.remote(benchAdd, 0, 1));
      const cases: Array<{ name: string; call: (i: number) => ObjectRef<number> }> = [
        { name: 'Counter', call: () => counter.add.remote(1) },
        { name: 'Vector', call: (i) => vector.bump.remote(i) },
        { name: 'task', call: (i) => rt.remote(benchAdd, i, 1) },
      ];
      const acc = cases.map(() => ({ ms: [] as number[], worker: {} as Tally, driver: {} as Tally, stateReads: 0, connections: 0 }));
      for (let r = 0; r < rounds; r++) {
        for (const [k, c] of cases.entries()) {
          const a = acc[k]!;
          let ms = 0;
          for (let i = 0; i < callsPerRound; i++) {
            const [w0, d0, c0] = [tier.worker.snapshot(), tier.driver.snapshot(), tier.worker.connections()];
            const t0 = performance.now();
            await rt.get(c.call(i));
            ms += performance.now() - t0;
            const w = tallyDiff(tier.worker.snapshot(), w0);
            if (Object.keys(w).some((op) => /^GET 2\d\d state$/.test(op))) a.stateReads++;
            sum(a.worker, w);
            sum(a.driver, tallyDiff(tier.driver.snapshot(), d0));
            a.connections += tier.worker.connections() - c0;
          }
          a.ms.push(ms / callsPerRound);
        }
      }
      const calls = callsPerRound * rounds;
      return {
        callsPerRound,
        rounds,
        vectorLength: VECTOR_LENGTH,
        cases: cases.map((c, k) => {
          const a = acc[k]!;
          return {
            name: c.name,
            seqMs: median(a.ms),
            seqMsRounds: a.ms,
            calls,
            worker: perCall(a.worker, calls),
            driver: perCall(a.driver, calls),
            workerConnections: a.connections / calls,
            stateReads: a.stateReads,
          };
        }),
      };
    } finally {
      await rt.shutdown();
    }
  } finally {
    await tier.stop();
  }
}

const bytes = (n: number) => (n >= 10_000 ? `${(n / 1024).toFixed(0)} kB` : `${Math.round(n)} B`);
const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** One side's traffic per call: totals, then each operation. */
function trafficLine(t: Tally): string {
  const ops = Object.entries(t).sort(([a], [b]) => a.localeCompare(b));
  if (!ops.length) return 'none';
  const total = ops.reduce((s, [, x]) => ({ requests: s.requests + x.requests, bytesUp: s.bytesUp + x.bytesUp, bytesDown: s.bytesDown + x.bytesDown, ms: s.ms + x.ms }), {
    requests: 0,
    bytesUp: 0,
    bytesDown: 0,
    ms: 0,
  } as OpTally);
  const one = ([op, x]: [string, OpTally]) => `${op} ${num(x.requests)}${x.bytesUp ? ` (${bytes(x.bytesUp)} up)` : ''}${x.bytesDown ? ` (${bytes(x.bytesDown)} down)` : ''}`;
  return `${num(total.requests)} requests, ${bytes(total.bytesUp)} up, ${bytes(total.bytesDown)} down, ${total.ms.toFixed(1)} ms: ${ops.map(one).join(', ')}`;
}

/** The lines run.ts prints in the Actors block. */
export function emulatorActorLines(f: EmulatorActorFigures): string {
  const task = f.cases.find((c) => c.name === 'task');
  const label = (c: EmulatorCase) => (c.name === 'Vector' ? `Vector (Float64Array of ${f.vectorLength})` : c.name === 'task' ? 'plain task' : c.name);
  const lines = [`Actors on the emulator tier (serverless-offline + s3rver; ${f.rounds} rounds of ${f.callsPerRound} sequential calls; S3 counted on the wire, per call):`];
  for (const c of f.cases) {
    const ratio = task && c !== task ? `   ratio ${(c.seqMs / task.seqMs).toFixed(2)} (to the plain task)` : '';
    lines.push(`  ${label(c).padEnd(34)} latency ${c.seqMs.toFixed(1)} ms${ratio}`);
    lines.push(`    worker S3: ${trafficLine(c.worker)}; ${num(c.workerConnections)} new connections${c.name === 'task' ? '' : `; state read by ${c.stateReads} of ${c.calls} calls`}`);
    lines.push(`    driver S3: ${trafficLine(c.driver)}`);
  }
  return lines.join('\n');
}

if (!isWorker() && process.argv[1]?.endsWith('actors-emulator.js')) {
  console.log(JSON.stringify(await measure(process.argv.includes('--quick'))));
}
