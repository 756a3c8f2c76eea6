/**
 * The AWS path's own figures (issue 3), run in a child process by `npm run bench -- --emulator`:
 *   - one client's invoke rate: volley's LambdaInvoker against an instant local Lambda
 *     endpoint (an HTTP server answering at once, in a worker thread), 64 calls in flight;
 *   - an 8 MB object's round trip (put, then get) through volley's S3Store versus the raw
 *     AWS SDK calls against the same s3rver, alternating, as a percentage of the SDK's speed.
 * Prints one JSON line: { invokePerSec: number[], s3Ratio: number[], s3OursMs: number[], s3RawMs: number[] }.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { makeLambdaClient, makeS3Client } from '../sdk/aws/clients.js';
import { LambdaInvoker } from '../sdk/aws/lambda-invoker.js';
import { S3Store } from '../sdk/aws/s3-store.js';
import type { ObjectStore } from '../sdk/backend.js';
import type { TaskEnvelope } from '../sdk/protocol.js';
import { startS3rver } from '../infra/emulators.js';
import { startInstantLambda } from './lib/instant-lambda.js';

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
    v: 1,
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

async function s3RoundTrips(): Promise<{ ours: number[]; raw: number[] }> {
  const s3 = await startS3rver({ buckets: ['bench'] });
  const client = makeS3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials, maxSockets: 16, forcePathStyle: true });
  const store = new S3Store(client, 'bench', { multipartThresholdBytes: 16 * 1024 * 1024 });
  const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
  const ours: number[] = [];
  const raw: number[] = [];
  let k = 0;
  try {
    for (let r = 0; r <= runs * 3; r++) {
      for (const mode of r % 2 ? (['raw', 'ours'] as const) : (['ours', 'raw'] as const)) {
        const key = `volley/jobs/bench/${k++}`;
        const t0 = performance.now();
        let got: Uint8Array;
        if (mode === 'ours') {
          await store.put(key, data);
          got = await store.get(key);
        } else {
          await client.send(new PutObjectCommand({ Bucket: 'bench', Key: key, Body: data }));
          const res = await client.send(new GetObjectCommand({ Bucket: 'bench', Key: key }));
          got = await res.Body!.transformToByteArray();
        }
        if (got.byteLength !== data.byteLength) throw new Error(`${mode}: read ${got.byteLength} of ${data.byteLength} bytes`);
        if (r > 0) (mode === 'ours' ? ours : raw).push(performance.now() - t0);
      }
    }
  } finally {
    client.destroy();
    await s3.stop();
  }
  return { ours, raw };
}

const invokePerSec = await invokeRates();
const { ours, raw } = await s3RoundTrips();
// Pair the alternating runs: each ratio is the raw SDK's time over the store's in the same round.
const s3Ratio = ours.map((o, i) => raw[i]! / o);
console.log(JSON.stringify({ invokePerSec, s3Ratio, s3OursMs: ours, s3RawMs: raw }));
