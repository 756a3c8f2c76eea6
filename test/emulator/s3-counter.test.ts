/**
 * The counting S3 proxy the actor benchmark measures with (bench/lib/s3-counter.ts), between
 * the AWS SDK and s3rver: it passes every request and answer through whole, and counts each
 * request once, under its method, status and kind of key, with its body bytes each way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { actorKeyKind, startS3Counter, tallyDiff, type S3Counter } from '../../bench/lib/s3-counter.js';
import { startS3rver } from '../../infra/emulators.js';
import { makeS3Client } from '../../sdk/aws/clients.js';

const Bucket = 'counted';

describe('the counting S3 proxy of the benchmarks', () => {
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  let counter: S3Counter;
  let client: S3Client;
  before(async () => {
    s3 = await startS3rver({ buckets: [Bucket] });
    counter = await startS3Counter({ upstream: s3.endpoint, kindOf: actorKeyKind });
    client = makeS3Client({ region: 'us-east-1', endpoint: counter.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 4, forcePathStyle: true });
  });
  after(async () => {
    client?.destroy();
    await counter?.stop();
    await s3?.stop();
  });

  it('counts what passes, by operation and kind of key, with the body bytes each way', async () => {
    const state = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    const start = counter.snapshot();
    await client.send(new PutObjectCommand({ Bucket, Key: 'jobs/j1/actors/a1/v0', Body: state, IfNoneMatch: '*' }));
    // A second conditional write of the version: S3 (and the emulator) refuse it.
    await assert.rejects(
      client.send(new PutObjectCommand({ Bucket, Key: 'jobs/j1/actors/a1/v0', Body: state, IfNoneMatch: '*' })),
      (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 412,
    );
    await client.send(new PutObjectCommand({ Bucket, Key: 'jobs/j1/actors/a1/c/t1', Body: new Uint8Array([1, 2]) }));
    await client.send(new PutObjectCommand({ Bucket, Key: 'jobs/j1/t2', Body: new Uint8Array(1000) }));
    const got = await (await client.send(new GetObjectCommand({ Bucket, Key: 'jobs/j1/actors/a1/v0' }))).Body!.transformToByteArray();
    assert.deepEqual(got, state, 'the object comes back whole through the proxy');
    await assert.rejects(client.send(new GetObjectCommand({ Bucket, Key: 'jobs/j1/actors/a1/v1' })), { name: 'NoSuchKey' });
    const part = await (await client.send(new GetObjectCommand({ Bucket, Key: 'jobs/j1/t2', Range: 'bytes=0-99' }))).Body!.transformToByteArray();
    assert.equal(part.byteLength, 100);

    const d = tallyDiff(counter.snapshot(), start);
    assert.deepEqual(Object.keys(d).sort(), ['GET 200 state', 'GET 206 other', 'GET 404 state', 'PUT 200 index', 'PUT 200 other', 'PUT 200 state', 'PUT 412 state']);
    const exact = (op: string) => ({ requests: d[op]!.requests, bytesUp: d[op]!.bytesUp, bytesDown: d[op]!.bytesDown });
    assert.deepEqual(exact('PUT 200 state'), { requests: 1, bytesUp: 300_000, bytesDown: 0 });
    assert.deepEqual(exact('PUT 200 index'), { requests: 1, bytesUp: 2, bytesDown: 0 });
    assert.deepEqual(exact('PUT 200 other'), { requests: 1, bytesUp: 1000, bytesDown: 0 });
    assert.deepEqual(exact('GET 200 state'), { requests: 1, bytesUp: 0, bytesDown: 300_000 });
    assert.deepEqual(exact('GET 206 other'), { requests: 1, bytesUp: 0, bytesDown: 100 });
    // Refusals carry an XML error body.
    for (const op of ['PUT 412 state', 'GET 404 state']) {
      assert.equal(d[op]!.requests, 1, op);
      assert.ok(d[op]!.bytesDown > 0, op);
    }
    for (const [op, t] of Object.entries(d)) assert.ok(t.ms > 0, `${op}: time taken`);
  });
});
