/**
 * No stale results on an S3 that honours conditional writes (test/fakes/s3-conditional.ts
 * implements S3's documented If-None-Match semantics; s3rver ignores the header, so the
 * emulator tier cannot show this). A run that reuses a job id, after a run that ended without
 * shutdown() left its objects, must get its own values, never the old run's.
 *
 * Tasks run through the real Lambda handler (createHandler) in this process, on the real wire
 * forms (JSON, base64), with S3Store over HTTP against the fake.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { remote, Runtime } from 'volley';
import type { Backend, Invoker, ObjectStore } from '../../sdk/backend.js';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { createHandler } from '../../sdk/aws/handler.js';
import { S3Store } from '../../sdk/aws/s3-store.js';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope } from '../../sdk/protocol.js';
import { startFakeS3, type FakeS3 } from '../fakes/s3-conditional.js';

const filledStale = remote(function filledStale(n: number, v: number): Float64Array {
  return new Float64Array(n).fill(v);
});

let s3: FakeS3;
const stores: S3Store[] = [];

function newStore(): S3Store {
  const client = makeS3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, maxSockets: 4, forcePathStyle: true });
  const store = new S3Store(client, s3.bucket, { multipartThresholdBytes: 16 * 1024 * 1024 });
  stores.push(store);
  return store;
}

/** A Lambda worker in this process: the request and the answer go through JSON, as on the wire. */
function inProcessLambda(store: ObjectStore): Invoker {
  const handler = createHandler({ VOLLEY_BUCKET: s3.bucket }, () => store);
  return {
    async invoke(env, o) {
      const event = JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, kind: 'invoke', task: toWire(env), timeoutMs: Math.ceil(o.timeoutMs), memoryMB: o.memoryMB }));
      const { logs: _logs, ...answer } = JSON.parse(JSON.stringify(await handler(event))) as Record<string, unknown>;
      return validateResultEnvelope(fromWire(answer));
    },
    async close() {},
  };
}

function runtimeOnFakeS3(jobId?: string): Runtime {
  const store = newStore();
  const backend: Backend = { name: 'fake-s3', invoker: inProcessLambda(newStore()), store, maxConcurrency: 4, keyPrefix: 'volley/' };
  return new Runtime(jobId ? { jobId } : {}, { backend });
}

before(async () => {
  s3 = await startFakeS3('volley-stale');
});
after(async () => {
  for (const s of stores) s.client.destroy();
  await s3?.close();
});

describe('results on an S3 that honours If-None-Match', () => {
  it('a run that reuses a job id gets its own results, not those an earlier run left behind', async () => {
    const first = runtimeOnFakeS3('nightly');
    const ones = await first.get(first.remote(filledStale, 200_000, 1));
    assert.equal(ones[0], 1);
    // The first run ends without shutdown(): its objects stay in the bucket.
    const left = [...s3.objects.keys()].filter((k) => k.startsWith('volley/jobs/nightly/'));
    assert.ok(left.length > 0, 'the first run left its stored result');

    const second = runtimeOnFakeS3('nightly');
    const twos = await second.get(second.remote(filledStale, 200_000, 2));
    assert.equal(twos.length, 200_000);
    assert.ok(
      twos.every((x) => x === 2),
      `the second run got its own result (first value ${twos[0]})`,
    );
    await second.shutdown();
    // shutdown() removes only its own run's objects; the first run's stay for cleanup or expiry.
    assert.deepEqual(
      [...s3.objects.keys()].filter((k) => k.startsWith('volley/jobs/nightly/')),
      left,
    );
  });

  it('a large put() of a reused job id is its own value too', async () => {
    const first = runtimeOnFakeS3('reused');
    await first.get(first.put(new Float64Array(50_000).fill(7)));
    const second = runtimeOnFakeS3('reused');
    const back = await second.get(second.put(new Float64Array(50_000).fill(8)));
    assert.ok(back.every((x) => x === 8));
  });

  it('default job ids and run ids never repeat (random from the CSPRNG)', () => {
    const ids = new Set<string>();
    const runs = new Set<string>();
    const backend: Backend = { name: 'none', invoker: { invoke: async () => assert.fail(), close: async () => {} }, store: newStore(), maxConcurrency: 1, keyPrefix: '' };
    for (let i = 0; i < 200; i++) {
      const rt = new Runtime({}, { backend });
      ids.add(rt.jobId);
      runs.add(rt.runId);
      assert.match(rt.jobId, /^\d{8}T\d{6}-[A-Za-z0-9_-]{16}$/);
      assert.match(rt.runId, /^[A-Za-z0-9_-]{22}$/);
    }
    assert.equal(ids.size, 200);
    assert.equal(runs.size, 200);
  });
});
