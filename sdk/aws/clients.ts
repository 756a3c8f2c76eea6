/**
 * AWS SDK clients as volley builds them: HTTP keep-alive agents sized to the configured
 * concurrency (the SDK's default agent allows 50 sockets, which would silently cap a wider
 * fan-out), our own throttling retry for Lambda, and endpoint settings per target.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { optionTable } from '../options.js';

/**
 * Deadlines of one HTTP request: the connection must be made within `connectMs`; the answer
 * must start within `requestMs` (an error, not the SDK's default warning); and a transfer in
 * either direction fails when no byte moves for `idleMs`, however large the body.
 */
export interface Deadlines {
  connectMs: number;
  requestMs: number;
  idleMs?: number;
}

/** Defaults from the options table, for clients built without init() (the Lambda worker's). */
export const DEFAULT_S3_DEADLINES: Deadlines = {
  connectMs: optionTable.aws.connectTimeoutMs.default,
  requestMs: optionTable.aws.s3RequestTimeoutMs.default,
  idleMs: optionTable.aws.s3IdleTimeoutMs.default,
};

/** A request handler whose agents keep up to `maxSockets` connections open per host. */
export function keepAliveHandler(maxSockets: number, deadlines: Deadlines): NodeHttpHandler {
  const sockets = Number.isFinite(maxSockets) ? Math.max(1, maxSockets) : Infinity;
  return new NodeHttpHandler({
    connectionTimeout: deadlines.connectMs,
    requestTimeout: deadlines.requestMs,
    throwOnRequestTimeout: true,
    ...(deadlines.idleMs ? { socketTimeout: deadlines.idleMs } : {}),
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets }),
    httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: sockets }),
  });
}

export interface ClientSettings {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  maxSockets: number;
  /** Connection deadline, ms. Default: the options table's connectTimeoutMs. */
  connectTimeoutMs?: number;
}

function common(s: ClientSettings): { region?: string; endpoint?: string; credentials?: ClientSettings['credentials'] } {
  const c: { region?: string; endpoint?: string; credentials?: ClientSettings['credentials'] } = {};
  if (s.region) c.region = s.region;
  if (s.endpoint) c.endpoint = s.endpoint;
  if (s.credentials) c.credentials = s.credentials;
  return c;
}

/**
 * The Lambda client. `maxAttempts: 1`: the SDK would otherwise retry 5xx answers and dropped
 * connections, running a task twice; volley retries only throttles (see throttle.ts), which
 * provably did not run. `cacheMiddleware`: the middleware chain is built once per command
 * type, not per call. Deadlines: the connection within connectTimeoutMs; the answer within
 * 16 minutes, past Lambda's 15-minute maximum (the invoker's own deadline per task is shorter).
 */
export function makeLambdaClient(s: ClientSettings, extra: LambdaClientConfig = {}): LambdaClient {
  const deadlines = { connectMs: s.connectTimeoutMs ?? DEFAULT_S3_DEADLINES.connectMs, requestMs: 16 * 60_000 };
  return new LambdaClient({ ...common(s), maxAttempts: 1, cacheMiddleware: true, requestHandler: keepAliveHandler(s.maxSockets, deadlines), ...extra });
}

/**
 * The S3 client. For a custom endpoint (LocalStack, s3rver): path-style URLs, and checksums
 * only where an operation requires them, because s3rver does not understand the aws-chunked
 * framing the SDK uses for checksummed streams and would store the framing as data.
 */
export function makeS3Client(s: ClientSettings & { forcePathStyle: boolean; deadlines?: Deadlines }, extra: S3ClientConfig = {}): S3Client {
  return new S3Client({
    ...common(s),
    forcePathStyle: s.forcePathStyle,
    ...(s.endpoint ? { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
    requestHandler: keepAliveHandler(s.maxSockets, s.deadlines ?? DEFAULT_S3_DEADLINES),
    ...extra,
  });
}
