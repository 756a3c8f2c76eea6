/**
 * The process s3rver runs in (started by `startS3rver` in emulators.ts), with S3's conditional
 * writes added in front of it (`conditionalWrites`). Its own process, as a
 * server would be: in the caller's it would share the event loop with the client it serves, and
 * it runs with `--openssl-legacy-provider`, because s3rver makes its listings' continuation
 * tokens with DES, which OpenSSL 3 (Node ≥ 17) refuses without it: a listing of more than 1,000
 * keys (cleanup of a large job) would fail with an InternalError.
 *
 * argv[2]: JSON `{ s3rver: path of its main module, directory, buckets, keyPairs? }` (key pairs
 * accepted besides S3RVER/S3RVER, e.g. LocalStack's test/test). Prints one line
 * `{"port":N}` once it listens; stops when its stdin ends (the parent stopped or died).
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
  /** Koa's middleware list (s3rver is a Koa app; its router is the last entry). */
  middleware: KoaMiddleware[];
  /** s3rver's FilesystemStore: where an object's file is. */
  store: { getResourcePath(bucket: string, key: string, resource: 'object'): string };
}

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, unknown>;
  status: number;
  type: string;
  body: unknown;
  get(header: string): string;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/**
 * S3's conditional write, which s3rver lacks (it ignores `If-None-Match` on writes): a
 * PutObject or CompleteMultipartUpload with `If-None-Match: *` succeeds only if no object has
 * the key, otherwise it answers 412 PreconditionFailed and the stored object is unchanged
 * (docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). Writes of one key
 * are taken one at a time, so of two racing conditional writes exactly one succeeds, as on S3,
 * and a read of a key waits for its write in progress (S3 never shows part of an object).
 * Actors keep their state versions with it, so two callers can never fork an actor's state.
 */
function conditionalWrites(server: S3rverInstance): KoaMiddleware {
  const busy = new Map<string, Promise<void>>();
  return async (ctx, next) => {
    const write = (ctx.method === 'PUT' && ctx.query.uploadId === undefined) || (ctx.method === 'POST' && ctx.query.uploadId !== undefined);
    const read = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (!read && (!write || ctx.get('if-none-match') !== '*')) return next();
    const [, bucket = '', ...rest] = ctx.path.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const id = `${bucket}/${key}`;
    if (read) {
      // s3rver writes a file in place: a read during the write would see part of it. On S3 a
      // read sees the whole object or none, so a read of a key being written waits for it.
      await busy.get(id);
      return next();
    }
    const before = busy.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = before.then(() => new Promise<void>((r) => (release = r)));
    busy.set(id, mine);
    await before;
    try {
      if (objectExists(server, decodeURIComponent(bucket), key)) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
        return;
      }
      await next();
    } finally {
      release();
      if (busy.get(id) === mine) busy.delete(id);
    }
  };
}

/**
 * Whether the object is stored: what s3rver's own `existsObject` tells (a stat of the object's
 * file), but synchronously. Its asynchronous stat runs on libuv's thread pool, behind the file
 * writes still queued there from the objects s3rver just answered for (it answers a PUT before
 * its file is flushed): with an 8 MB object before, the check waited a median of about 3 ms,
 * and up to 27 ms, on a loaded machine, a cost the same PUT without the header does not pay.
 * A stat of one local file takes microseconds on this process's own thread.
 */
function objectExists(server: S3rverInstance, bucket: string, key: string): boolean {
  try {
    statSync(server.store.getResourcePath(bucket, key, 'object'));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

const o = JSON.parse(process.argv[2] ?? '{}') as { s3rver: string; directory: string; buckets: string[]; keyPairs?: Array<[string, string]> };
const load = createRequire(o.s3rver);
const S3rver = load(o.s3rver) as new (opts: object) => S3rverInstance;
if (o.keyPairs?.length) {
  const { DUMMY_ACCOUNT } = load('./models/account.js') as { DUMMY_ACCOUNT: { createKeyPair(id: string, secret: string): void } };
  for (const [id, secret] of o.keyPairs) DUMMY_ACCOUNT.createKeyPair(id, secret);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: o.directory,
  configureBuckets: o.buckets.map((name) => ({ name })),
});
server.middleware.splice(server.middleware.length - 1, 0, conditionalWrites(server));
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  server.httpServer?.closeAllConnections();
  void server.close().finally(() => process.exit(0));
});
