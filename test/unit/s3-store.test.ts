/**
 * S3Store's write-once semantics, against a fake S3 endpoint that honours conditional writes
 * as S3 documents them (test/fakes/s3-conditional.ts), including what the emulator's own
 * conditional writes in front of s3rver do not produce (409 ConditionalRequestConflict).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ObjectStoreError } from 'volley';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { mayLeavePayloadUnsigned, S3Store } from '../../sdk/aws/s3-store.js';
import { startFakeS3, type FakeS3 } from '../fakes/s3-conditional.js';

const MiB = 1024 * 1024;

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('S3 store: write once (If-None-Match: *)', () => {
  let s3: FakeS3;
  let store: S3Store;
  before(async () => {
    s3 = await startFakeS3('volley-unit');
    const client = makeS3Client({ region: 'us-east-1', endpoint: s3.endpoint, credentials: { accessKeyId: 'k', secretAccessKey: 's' }, maxSockets: 4, forcePathStyle: true });
    store = new S3Store(client, s3.bucket, { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB });
  });
  after(async () => {
    store?.client.destroy();
    await s3?.close();
  });

  it('a second write of a key with different bytes keeps the first, and is not an error', async () => {
    const first = bytes(3000, 1);
    await store.put('volley/jobs/j/result', first);
    await store.put('volley/jobs/j/result', bytes(3000, 2));
    assert.deepEqual(await store.get('volley/jobs/j/result'), first);
    const puts = s3.requests.filter((r) => r.op === 'PutObject' && r.key === 'volley/jobs/j/result');
    assert.deepEqual(
      puts.map((r) => [r.ifNoneMatch, r.status]),
      [
        ['*', 200],
        ['*', 412],
      ],
    );
  });

  it('the same holds for a multipart upload: the condition is checked when it completes', async () => {
    const key = 'volley/jobs/j/large';
    const first = bytes(11 * MiB + 3, 3);
    await store.put(key, first);
    await store.put(key, bytes(11 * MiB + 3, 4));
    const back = await store.get(key);
    assert.ok(Buffer.from(back).equals(Buffer.from(first)), 'the first upload is the object');
    const ops = s3.requests.filter((r) => r.key === key).map((r) => `${r.op}${r.ifNoneMatch ? ` if-none-match=${r.ifNoneMatch}` : ''} ${r.status}`);
    const oneUpload = ['CreateMultipartUpload 200', 'UploadPart 200', 'UploadPart 200', 'UploadPart 200'];
    assert.deepEqual(
      ops.filter((o) => !o.startsWith('GetObject')),
      [...oneUpload, 'CompleteMultipartUpload if-none-match=* 200', ...oneUpload, 'CompleteMultipartUpload if-none-match=* 412', 'AbortMultipartUpload 204'],
    );
  });

  it('a write that races another conditional write (409) is retried until the condition settles it', async () => {
    s3.conflictsBeforeSuccess = 2;
    await store.put('volley/jobs/j/raced', bytes(10, 5));
    assert.deepEqual(await store.get('volley/jobs/j/raced'), bytes(10, 5));
    const puts = s3.requests.filter((r) => r.key === 'volley/jobs/j/raced' && r.op === 'PutObject');
    assert.deepEqual(
      puts.map((r) => r.status),
      [409, 409, 200],
    );
  });

  it('gives up on endless conflicts with an ObjectStoreError naming the key', async () => {
    s3.conflictsBeforeSuccess = 100;
    try {
      await assert.rejects(
        store.put('volley/jobs/j/stuck', bytes(10, 6)),
        (e: unknown) => e instanceof ObjectStoreError && e.key === 'volley/jobs/j/stuck' && /could not write object volley\/jobs\/j\/stuck \(10 bytes\) to bucket volley-unit/.test(e.message),
      );
      const tries = s3.requests.filter((r) => r.key === 'volley/jobs/j/stuck');
      assert.ok(tries.length > 1, 'retried');
      assert.ok(tries.every((r) => r.op === 'PutObject' && r.ifNoneMatch === '*' && r.status === 409));
    } finally {
      s3.conflictsBeforeSuccess = 0;
    }
  });

  it('removes a prefix of more than 1,000 objects page by page (S3 lists and deletes at most 1,000 at a time)', async () => {
    for (let i = 0; i < 2345; i++) s3.objects.set(`volley/jobs/many/o${i}`, Buffer.from([i & 0xff]));
    s3.objects.set('volley/jobs/other/keep', Buffer.from([1]));
    const before = s3.requests.length;
    assert.equal(await store.deletePrefix('volley/jobs/many/'), 2345);
    assert.deepEqual(
      [...s3.objects.keys()].filter((k) => k.startsWith('volley/jobs/many/')),
      [],
    );
    assert.ok(s3.objects.has('volley/jobs/other/keep'));
    assert.deepEqual(
      s3.requests.slice(before).map((r) => `${r.op} ${r.status}`),
      ['ListObjectsV2 200', 'DeleteObjects 200', 'ListObjectsV2 200', 'DeleteObjects 200', 'ListObjectsV2 200', 'DeleteObjects 200'],
    );
  });

  it('deletes more than 1,000 freed keys in batches S3 accepts', async () => {
    const keys = Array.from({ length: 1500 }, (_, i) => `volley/jobs/freed/o${i}`);
    for (const k of keys) s3.objects.set(k, Buffer.from([0]));
    const before = s3.requests.length;
    await store.delete(keys);
    assert.equal([...s3.objects.keys()].filter((k) => k.startsWith('volley/jobs/freed/')).length, 0);
    assert.deepEqual(
      s3.requests.slice(before).map((r) => `${r.op} ${r.status}`),
      ['DeleteObjects 200', 'DeleteObjects 200'],
    );
  });
});

describe('S3 store: where a write may leave its body out of the signature', () => {
  it('over HTTPS and to a loopback address only; any other plain-HTTP endpoint gets the signed SHA-256', () => {
    const at = (url: string) => {
      const u = new URL(url);
      return mayLeavePayloadUnsigned({ protocol: u.protocol, hostname: u.hostname });
    };
    assert.equal(at('https://s3.us-east-1.amazonaws.com/'), true);
    assert.equal(at('https://minio.internal:9000/'), true);
    for (const local of ['http://127.0.0.1:4569/', 'http://127.8.9.10/', 'http://localhost:4566/', 'http://LOCALHOST/', 'http://[::1]:4569/']) assert.equal(at(local), true, local);
    for (const remote of ['http://10.0.0.5:9000/', 'http://s3.example.com/', 'http://127.0.0.1.example.com/', 'http://localhost.example.com/', 'http://[::2]/', 'http://0.0.0.0/']) {
      assert.equal(at(remote), false, remote);
    }
  });
});
