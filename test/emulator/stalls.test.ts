/**
 * Liveness and truthful errors at the network boundary, over the real wire protocols:
 * - S3 stalls: a TCP proxy in front of s3rver that stops moving bytes (as a frozen or
 *   unreachable S3 would). get() with a timeout and shutdown() must end within their bounds,
 *   and say what they could not do; every S3 call has its own deadline.
 * - Lost and slow Lambda answers: a small HTTP server speaking Lambda's Invoke API answers
 *   502 after receiving the task, or answers only after the driver's deadline. The error must
 *   say what is known: the outcome is unknown and the task may have run.
 * Each test has its own deadline (node:test `timeout`), far above what the bounds need, so a
 * hang fails the test instead of stalling the suite.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GetTimeoutError, ObjectStoreError, Runtime, TaskError, TaskTimeoutError } from 'volley';
import { makeLambdaClient, makeS3Client } from '../../sdk/aws/clients.js';
import { LambdaInvoker } from '../../sdk/aws/lambda-invoker.js';
import { S3Store } from '../../sdk/aws/s3-store.js';
import { startS3rver } from '../../infra/emulators.js';
import { PROTOCOL_VERSION, type TaskEnvelope } from '../../sdk/protocol.js';

const BUCKET = 'volley-stalls';
let s3rver: Awaited<ReturnType<typeof startS3rver>>;

/** A TCP proxy to `port` that, once stalled, accepts and holds connections but moves no byte. */
async function stallingProxy(port: number): Promise<{ endpoint: string; stall(): void; close(): Promise<void> }> {
  let stalled = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (stalled) {
      client.pause();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('data', (d) => {
      if (!stalled) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!stalled) client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stall: () => {
      stalled = true;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

before(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET] });
});
after(async () => {
  await s3rver?.stop();
});

describe('a stalled S3', () => {
  it('get(ref, { timeoutMs }) ends at its timeout while reading a stored value, and shutdown() within shutdownTimeoutMs, naming what it left', { timeout: 30_000 }, async () => {
    const proxy = await stallingProxy(Number(new URL(s3rver.endpoint).port));
    const rt = await new Runtime({
      target: 'emulator',
      shutdownTimeoutMs: 2000,
      aws: {
        s3Endpoint: proxy.endpoint,
        lambdaEndpoint: 'http://127.0.0.1:9', // no task is run
        bucket: BUCKET,
        connectTimeoutMs: 1000,
        s3RequestTimeoutMs: 1500,
        s3IdleTimeoutMs: 1000,
      },
    }).ready();
    try {
      const ref = rt.put(new Float64Array(50_000).fill(4)); // 400 kB: stored in S3, not inline
      assert.equal((await rt.get(ref)).length, 50_000);
      proxy.stall();
      await assert.rejects(rt.get(ref, { timeoutMs: 1000 }), (e: unknown) => e instanceof GetTimeoutError && /reading it from the store/.test(e.message));
      await assert.rejects(
        rt.shutdown(),
        (e: unknown) => e instanceof ObjectStoreError && e.key === `volley/jobs/${rt.jobId}/${rt.runId}/` && /could not remove/.test(e.message) && /cleanup --job/.test(e.message),
      );
      assert.equal(rt.isShutdown, true);
    } finally {
      await rt.shutdown();
      await proxy.close();
    }
  });

  it('every S3 call has a deadline: a read through a stalled connection fails with an ObjectStoreError', { timeout: 30_000 }, async () => {
    const proxy = await stallingProxy(Number(new URL(s3rver.endpoint).port));
    const client = makeS3Client({
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      maxSockets: 2,
      forcePathStyle: true,
      deadlines: { connectMs: 500, requestMs: 800, idleMs: 500 },
    });
    const store = new S3Store(client, BUCKET, { multipartThresholdBytes: 16 * 1024 * 1024 });
    try {
      await store.put('volley/jobs/stall/x', new Uint8Array(1000));
      proxy.stall();
      await assert.rejects(store.get('volley/jobs/stall/x'), (e: unknown) => e instanceof ObjectStoreError && /could not read/.test(e.message));
      await assert.rejects(store.put('volley/jobs/stall/y', new Uint8Array(1000)), ObjectStoreError);
      await assert.rejects(store.deletePrefix('volley/jobs/stall/'), ObjectStoreError);
    } finally {
      client.destroy();
      await proxy.close();
    }
  });
});

describe('runs that share a job id, on s3rver', () => {
  it('each reads its own stored values, and one shutdown() leaves the other run alone', { timeout: 30_000 }, async () => {
    const start = () => new Runtime({ target: 'emulator', jobId: 'shared-job', aws: { s3Endpoint: s3rver.endpoint, lambdaEndpoint: 'http://127.0.0.1:9', bucket: BUCKET } }).ready();
    const [a, b] = await Promise.all([start(), start()]);
    try {
      const ra = a.put(new Float64Array(50_000).fill(1));
      const rb = b.put(new Float64Array(50_000).fill(2));
      assert.ok((await b.get(rb)).every((x) => x === 2));
      assert.ok(
        (await a.get(ra)).every((x) => x === 1),
        "run a reads its own value, not run b's",
      );
      await b.shutdown();
      assert.ok(
        (await a.get(ra)).every((x) => x === 1),
        "run b's shutdown did not remove run a's objects",
      );
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  });
});

describe('lost and slow Lambda answers', () => {
  const envelope = (id: string): TaskEnvelope => ({
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'j/AAAAAAAAAAAAAAAAAAAAAA',
    taskId: id,
    fn: 'work',
    args: { kind: 'inline', bytes: new Uint8Array([0x4a, 0x5b, 0x5d]) },
    deps: {},
    resultKey: `volley/jobs/j/AAAAAAAAAAAAAAAAAAAAAA/${id}`,
    inlineLimit: 100,
  });
  const done = (taskId: string) => JSON.stringify({ v: PROTOCOL_VERSION, kind: 'value', taskId, bytes: { $b64: 'SltdXQ==' }, timing: { fetchMs: 0, runMs: 0, storeMs: 0 } });

  /** A Lambda endpoint that receives the whole task, then answers with `answer` after `delayMs`. */
  async function lambda(answer: { status: number; body: string; delayMs?: number }) {
    let received = 0;
    const server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        setTimeout(() => {
          res.writeHead(answer.status, { 'content-type': answer.status === 200 ? 'application/json' : 'text/html', 'x-amzn-requestid': `req-${received}` });
          res.end(answer.body);
        }, answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, received: () => received };
  }

  function invoker(endpoint: string, invokeGraceMs: number) {
    const client = makeLambdaClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxSockets: 2 });
    const store = new S3Store(
      makeS3Client({ region: 'us-east-1', endpoint: s3rver.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 2, forcePathStyle: true }),
      BUCKET,
      { multipartThresholdBytes: 16 * 1024 * 1024 },
    );
    return new LambdaInvoker(client, store, { functionName: 'volley-test-worker', invokeGraceMs, baseDelayMs: 5, maxDelayMs: 20, giveUpMs: 1000, ownsClient: true });
  }

  it('a 502 after the task was sent: the outcome is unknown and the task may have run (not "could not be invoked")', { timeout: 20_000 }, async () => {
    const fake = await lambda({ status: 502, body: '<html><body>502 Bad Gateway</body></html>' });
    const inv = invoker(fake.endpoint, 1000);
    try {
      const err = await inv.invoke(envelope('lost'), { timeoutMs: 5000, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(err instanceof TaskError, String(err));
      assert.equal(fake.received(), 1, 'the task reached the endpoint once, and was not sent again');
      assert.match(err.message, /outcome of its invocation .* is unknown/);
      assert.match(err.message, /may have run/);
      assert.doesNotMatch(err.message, /could not be invoked/);
      assert.equal(err.fault, 'infrastructure');
    } finally {
      await inv.close();
      fake.server.closeAllConnections();
      fake.server.close();
    }
  });

  it('an answer slower than timeoutMs + grace: a timeout whose outcome is unknown, not "was stopped"', { timeout: 20_000 }, async () => {
    const fake = await lambda({ status: 200, body: done('slow'), delayMs: 1500 });
    const inv = invoker(fake.endpoint, 200);
    try {
      const err = await inv.invoke(envelope('slow'), { timeoutMs: 300, memoryMB: 1024 }).catch((e: unknown) => e);
      assert.ok(err instanceof TaskTimeoutError, String(err));
      assert.equal(err.outcomeUnknown, true);
      assert.match(err.message, /outcome is unknown, the task may have run to completion/);
      assert.doesNotMatch(err.message, /was stopped/);
    } finally {
      await inv.close();
      fake.server.closeAllConnections();
      fake.server.close();
    }
  });
});
