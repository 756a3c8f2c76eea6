/**
 * The process s3rver runs in (started by `startS3rver` in emulators.ts). Its own process, as a
 * server would be: in the caller's it would share the event loop with the client it serves, and
 * it runs with `--openssl-legacy-provider`, because s3rver makes its listings' continuation
 * tokens with DES, which OpenSSL 3 (Node ≥ 17) refuses without it: a listing of more than 1,000
 * keys (cleanup of a large job) would fail with an InternalError.
 *
 * argv[2]: JSON `{ s3rver: path of its main module, directory, buckets, keyPairs? }` (key pairs
 * accepted besides S3RVER/S3RVER, e.g. LocalStack's test/test). Prints one line
 * `{"port":N}` once it listens; stops when its stdin ends (the parent stopped or died).
 */
import { createRequire } from 'node:module';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
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
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  server.httpServer?.closeAllConnections();
  void server.close().finally(() => process.exit(0));
});
