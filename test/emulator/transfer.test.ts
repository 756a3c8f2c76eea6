/**
 * Large objects read in parallel byte ranges (sdk/aws/transfer.ts) against s3rver over HTTP:
 * objects of awkward sizes come back byte for byte, and a range that fails or stalls fails the
 * read with a message naming the bytes. Failures are injected by a real HTTP proxy in front of
 * s3rver that answers one chosen range with an error, or never answers it.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ObjectStoreError } from 'volley';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { S3Store } from '../../sdk/aws/s3-store.js';
import { totalFromContentRange } from '../../sdk/aws/transfer.js';
import { startS3rver } from '../../infra/emulators.js';

const BUCKET = 'volley-transfer';
const RANGE = 64 * 1024;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let s3rver: Awaited<ReturnType<typeof startS3rver>>;
let store: S3Store;

/** What the proxy does to a GET whose Range header starts at `failAt`. */
let sabotage: { failAt: number; how: 'error' | 'stall' | 'truncate' } | undefined;
const ranges: string[] = [];
/** The payload hash header of each PUT through the proxy (single PutObject and UploadPart alike). */
const putHashes: string[] = [];
let proxy: Server;
let proxied: string;
let proxyStore: S3Store;
/** Behind the proxy with a short range deadline, for the stalled range. */
let stallStore: S3Store;

function storeAt(endpoint: string, rangeTimeoutMs = 60_000): S3Store {
  // maxAttempts 1: the SDK would retry a 500 answer; the proxy fails the range every time anyway.
  const client = makeS3Client({ region: 'us-east-1', endpoint, credentials, maxSockets: 8, forcePathStyle: true }, { maxAttempts: 1 });
  return new S3Store(client, BUCKET, { multipartThresholdBytes: 16 * 1024 * 1024, rangeBytes: RANGE, rangeConcurrency: 3, rangeTimeoutMs });
}

before(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET] });
  store = storeAt(s3rver.endpoint);
  const target = new URL(s3rver.endpoint);
  proxy = createServer((req, res) => {
    const range = req.headers.range;
    if (req.method === 'GET' && range) ranges.push(range);
    if (req.method === 'PUT') putHashes.push(String(req.headers['x-amz-content-sha256']));
    const start = range ? Number(/^bytes=(\d+)-/.exec(range)?.[1]) : undefined;
    if (sabotage && start === sabotage.failAt && sabotage.how === 'error') {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>');
      return;
    }
    if (sabotage && start === sabotage.failAt && sabotage.how === 'stall') return; // never answers
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (sabotage && start === sabotage.failAt && sabotage.how === 'truncate') {
        upRes.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, 100));
          res.destroy(); // the connection drops part-way through the body
          upRes.destroy();
        });
        return;
      }
      upRes.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxied = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  proxyStore = storeAt(proxied);
  stallStore = storeAt(proxied, 2_000);
});
after(async () => {
  store?.client.destroy();
  proxyStore?.client.destroy();
  stallStore?.client.destroy();
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await s3rver?.stop();
});

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe('ranged reads from s3rver', () => {
  it('reassembles objects of odd sizes exactly, around and across range boundaries', async () => {
    const sizes = [0, 1, RANGE - 1, RANGE, RANGE + 1, 2 * RANGE, 7 * RANGE + 12_345];
    for (const [i, n] of sizes.entries()) {
      const key = `volley/jobs/t/odd-${n}`;
      const data = bytes(n, i + 1);
      await store.put(key, data);
      const back = await store.get(key);
      assert.equal(back.byteLength, n, `${n} bytes`);
      assert.ok(Buffer.from(back).equals(Buffer.from(data)), `${n} bytes differ`);
      // A plain Uint8Array over its own memory (not a Buffer, nor a view into Node's shared pool): it can be transferred or sliced as a copy.
      assert.equal(Object.getPrototypeOf(back), Uint8Array.prototype);
      assert.equal(back.buffer.byteLength, n);
    }
  });

  it('writes to a loopback endpoint without hashing the body for the signature, whole and in parts, and the bytes arrive exactly', async () => {
    const MiB = 1024 * 1024;
    const client = makeS3Client({ region: 'us-east-1', endpoint: proxied, credentials, maxSockets: 4, forcePathStyle: true });
    const parted = new S3Store(client, BUCKET, { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, rangeBytes: RANGE });
    try {
      for (const [i, n] of [5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 11 * MiB + 7].entries()) {
        putHashes.length = 0;
        const key = `volley/jobs/t/unsigned-${n}`;
        const data = bytes(n, 40 + i);
        await parted.put(key, data);
        // One PUT up to the threshold; above it one per 5 MiB part (the create and complete are POSTs).
        assert.deepEqual(putHashes, Array(n > 5 * MiB ? Math.ceil(n / (5 * MiB)) : 1).fill('UNSIGNED-PAYLOAD'), `${n} bytes`);
        const back = await store.get(key);
        assert.ok(Buffer.from(back).equals(Buffer.from(data)), `${n} bytes differ`);
      }
    } finally {
      client.destroy();
    }
  });

  it('reads a large object as several ranges, each asked once', async () => {
    const n = 5 * RANGE + 3;
    await store.put('volley/jobs/t/counted', bytes(n, 9));
    ranges.length = 0;
    const back = await proxyStore.get('volley/jobs/t/counted');
    assert.ok(Buffer.from(back).equals(Buffer.from(bytes(n, 9))));
    const starts = ranges.map((r) => Number(/^bytes=(\d+)-/.exec(r)![1])).sort((a, b) => a - b);
    assert.deepEqual(starts, [0, RANGE, 2 * RANGE, 3 * RANGE, 4 * RANGE, 5 * RANGE]);
  });

  for (const how of ['error', 'truncate', 'stall'] as const) {
    it(`fails the read clearly when one range ${how === 'error' ? 'is answered with a server error' : how === 'truncate' ? 'is cut off part-way' : 'is never answered (its deadline)'}`, async () => {
      const n = 6 * RANGE + 5;
      await store.put(`volley/jobs/t/broken-${how}`, bytes(n, 4));
      sabotage = { failAt: 3 * RANGE, how };
      try {
        const reader = how === 'stall' ? stallStore : proxyStore;
        await assert.rejects(reader.get(`volley/jobs/t/broken-${how}`), (err: unknown) => {
          assert.ok(err instanceof ObjectStoreError, String(err));
          assert.match(err.message, new RegExp(`could not read object volley/jobs/t/broken-${how} .*bytes ${3 * RANGE}-${4 * RANGE - 1} of ${n}`));
          if (how === 'stall') assert.match(err.message, /deadline of 2000 ms/);
          return true;
        });
      } finally {
        sabotage = undefined;
      }
      // The same store reads the same object once the fault is gone.
      assert.equal((await proxyStore.get(`volley/jobs/t/broken-${how}`)).byteLength, n);
    });
  }

  it('a missing object is reported as missing, not as a range failure', async () => {
    await assert.rejects(store.get('volley/jobs/t/never-written'), /is not in bucket volley-transfer/);
  });

  it('reads the size from Content-Range', () => {
    assert.equal(totalFromContentRange('bytes 0-65535/104857600'), 104857600);
    assert.equal(totalFromContentRange('bytes 0-0/1'), 1);
    assert.equal(totalFromContentRange('bytes */100'), undefined);
    assert.equal(totalFromContentRange(undefined), undefined);
  });
});
