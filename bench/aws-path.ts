/**
 * The AWS path's own figures (issue 3), run in a child process by `npm run bench -- --emulator`:
 *   - one client's invoke rate: volley's LambdaInvoker against an instant local Lambda
 *     endpoint (an HTTP server answering at once, in a worker thread), 64 calls in flight;
 *   - an 8 MB and a 100 MB object's round trip (put, then get) through volley's S3Store versus
 *     one raw AWS SDK PutObject and one GetObject against the same s3rver, alternating (the
 *     order flips every round), as a share of the SDK's speed; put and get are also timed apart,
 *     and each round trip's CPU time is taken in this process (the client) and in s3rver's.
 *     Both sides use the same S3Client (same agent, deadlines and checksum settings), the same
 *     bytes, and the same s3rver process behind the same front end (infra/s3rver-process.ts).
 *     What each side sends:
 *       raw:   PutObject with the payload's SHA-256 in the signature (the SDK's default), then
 *              one GetObject, collected by the SDK's transformToByteArray;
 *       store: PutObject with `If-None-Match: *` (write once; the front end checks it with a
 *              synchronous stat of the object's file, about 0.15 ms: on libuv's thread pool it
 *              waited behind the previous object's file writes, median 3 ms, up to 27 ms) and
 *              `x-amz-content-sha256: UNSIGNED-PAYLOAD` (the body is not hashed for the
 *              signature: allowed over HTTPS and to loopback, s3-store.ts says why), as one
 *              request up to the multipart threshold (256 MiB on the emulator), then GETs in
 *              byte ranges (transfer.ts): one range for an object up to rangeBytes (32 MiB),
 *              so one GET at 8 MB, and 4 ranges in flight at 100 MB, each streamed into one
 *              buffer. So at 8 MB both sides make one PUT and one GET; the store saves the
 *              client's SHA-256 of the body (about 6 ms of CPU at 8 MB on this machine).
 * Arguments: runs, invocations (0 skips the invoke rate), sizes in MB (default 8,100).
 * BENCH_S3_* variables set the store's transfer sizes (see storeOptions), for tuning.
 * Prints one JSON line: { invokePerSec, s3Ratio, s3OursMs, s3RawMs (the first size), s3: S3Series[] }.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { makeLambdaClient, makeS3Client } from '../sdk/aws/clients.js';
import { LambdaInvoker } from '../sdk/aws/lambda-invoker.js';
import { S3Store } from '../sdk/aws/s3-store.js';
import { optionTable } from '../sdk/options.js';
import type { ObjectStore } from '../sdk/backend.js';
import { PROTOCOL_VERSION, type TaskEnvelope } from '../sdk/protocol.js';
import { startInstantLambda } from './lib/instant-lambda.js';
import { startS3rver } from '../infra/emulators.js';

const runs = Number(process.argv[2] ?? 3);
const invocations = Number(process.argv[3] ?? 5000);
const CONCURRENCY = 64;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

async function invokeRates(): Promise<number[]> {
  const srv = await startInstantLambda();
  const client = makeLambdaClient({ region: 'us-east-1', endpoint: srv.endpoint, credentials, maxSockets: CONCURRENCY });
  const noStore = {} as ObjectStore; // every payload here is inline
  const inv = new LambdaInvoker(client, noStore, { functionName: 'bench', invokeGraceMs: 30_000, baseDelayMs: 100, maxDelayMs: 5_000, giveUpMs: 600_000, ownsClient: true });
  const env = (i: number): TaskEnvelope => ({
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'bench',
    taskId: `t${i}`,
    fn: 'noop',
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: {},
    resultKey: `volley/jobs/bench/t${i}`,
    inlineLimit: 102_400,
  });
  const rates: number[] = [];
  try {
    for (let r = 0; r <= runs; r++) {
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < invocations) await inv.invoke(env(next++), { timeoutMs: 10_000, memoryMB: 1024 });
        }),
      );
      if (r > 0) rates.push(invocations / ((performance.now() - t0) / 1000)); // the first run warms up
    }
  } finally {
    await inv.close();
    await srv.stop();
  }
  return rates;
}

export interface S3Series {
  sizeMB: number;
  /** Round trips (put, then get), ms, alternating with the raw SDK's. */
  ours: number[];
  raw: number[];
  /** The two halves of each round trip, ms. */
  oursPut: number[];
  oursGet: number[];
  rawPut: number[];
  rawGet: number[];
  /** CPU time of each round trip, ms: this process's (the client), and s3rver's (empty where /proc cannot tell). */
  oursCpu: number[];
  rawCpu: number[];
  oursServerCpu: number[];
  rawServerCpu: number[];
}

/** CPU time of a process so far, ms, from the kernel's per-thread run times (Linux); undefined elsewhere. */
function processCpuMs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e6;
  } catch {
    return undefined;
  }
}

function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The emulator target's store settings; BENCH_S3_* variables override them, for tuning the transfer sizes by measurement. */
function storeOptions(): ConstructorParameters<typeof S3Store>[2] {
  const n = (name: string): number | undefined => (process.env[name] === undefined ? undefined : Number(process.env[name]));
  const o: ConstructorParameters<typeof S3Store>[2] = { multipartThresholdBytes: n('BENCH_S3_MULTIPART_THRESHOLD') ?? (optionTable.aws.multipartThresholdBytes.byTarget!.emulator as number) };
  for (const [k, env] of [
    ['partSizeBytes', 'BENCH_S3_PART_BYTES'],
    ['partConcurrency', 'BENCH_S3_PART_CONCURRENCY'],
    ['rangeBytes', 'BENCH_S3_RANGE_BYTES'],
    ['rangeConcurrency', 'BENCH_S3_RANGE_CONCURRENCY'],
  ] as const) {
    const v = n(env);
    if (v !== undefined) (o as unknown as Record<string, number>)[k] = v;
  }
  return o;
}

async function s3RoundTrips(sizesMB: number[]): Promise<S3Series[]> {
  // startS3rver runs s3rver in its own process, as a server would be: in this one it would share
  // the event loop (and so the core) with the client it serves.
  const s3 = await startS3rver({ buckets: ['bench'] });
  const client = makeS3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials, maxSockets: 16, forcePathStyle: true });
  const store = new S3Store(client, 'bench', storeOptions());
  const out: S3Series[] = [];
  let k = 0;
  try {
    for (const sizeMB of sizesMB) {
      const data = new Uint8Array(sizeMB * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
      const s: S3Series = { sizeMB, ours: [], raw: [], oursPut: [], oursGet: [], rawPut: [], rawGet: [], oursCpu: [], rawCpu: [], oursServerCpu: [], rawServerCpu: [] };
      // Many rounds at the small size: a round trip there is ~50-100 ms and swings by tens of ms with the machine.
      const rounds = sizeMB > 32 ? Math.max(3, runs) : runs * 6;
      for (let r = 0; r <= rounds; r++) {
        for (const mode of r % 2 ? (['raw', 'ours'] as const) : (['ours', 'raw'] as const)) {
          const key = `volley/jobs/bench/${k++}`;
          const [c0, sc0] = [ownCpuMs(), processCpuMs(s3.pid)];
          const t0 = performance.now();
          let got: Uint8Array;
          if (mode === 'ours') await store.put(key, data);
          else await client.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: data }));
          const t1 = performance.now();
          if (mode === 'ours') got = await store.get(key);
          else got = await (await client.send(new GetObjectCommand({ Bucket: 'bench', Key: key }))).Body!.transformToByteArray();
          const t2 = performance.now();
          const [c2, sc2] = [ownCpuMs(), processCpuMs(s3.pid)];
          if (got.byteLength !== data.byteLength) throw new Error(`${mode}: read ${got.byteLength} of ${data.byteLength} bytes`);
          if (r > 0) {
            // the first round warms up
            s[mode].push(t2 - t0);
            s[mode === 'ours' ? 'oursPut' : 'rawPut'].push(t1 - t0);
            s[mode === 'ours' ? 'oursGet' : 'rawGet'].push(t2 - t1);
            s[mode === 'ours' ? 'oursCpu' : 'rawCpu'].push(c2 - c0);
            if (sc0 !== undefined && sc2 !== undefined) s[mode === 'ours' ? 'oursServerCpu' : 'rawServerCpu'].push(sc2 - sc0);
          }
          await store.delete([key]);
        }
      }
      out.push(s);
    }
  } finally {
    client.destroy();
    await s3.stop();
  }
  return out;
}

const sizesMB = (process.argv[4] ?? '8,100').split(',').map(Number);
const invokePerSec = invocations > 0 ? await invokeRates() : [];
const s3 = await s3RoundTrips(sizesMB);
const { ours, raw } = s3[0]!;
// Pair the alternating runs: each ratio is the raw SDK's time over the store's in the same round.
const s3Ratio = ours.map((o, i) => raw[i]! / o);
console.log(JSON.stringify({ invokePerSec, s3Ratio, s3OursMs: ours, s3RawMs: raw, s3 }));
