/**
 * The Lambda payloads, both ways. The task envelope travels in its JSON-safe form
 * (`toWire`, bytes as base64) inside a small request that adds what Lambda does not carry per
 * invocation: the task's timeout and memory. The response is the worker's result envelope in
 * the same form, plus where its logs are.
 */
import { DEFAULT_PAYLOAD_LIMIT_BYTES } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import { LAMBDA_MAX_MEMORY_MB, LAMBDA_MAX_TIMEOUT_MS, LAMBDA_MIN_MEMORY_MB } from '../options.js';
import { PROTOCOL_VERSION } from '../protocol.js';

/** Lambda's limit for a synchronous invocation's request and response payloads. */
export const LAMBDA_PAYLOAD_LIMIT = DEFAULT_PAYLOAD_LIMIT_BYTES;

export interface LambdaRequest {
  v: typeof PROTOCOL_VERSION;
  kind: 'invoke';
  /** The task envelope, as `toWire` makes it. */
  task: unknown;
  /** The task's timeout; the worker stops waiting for the task after it and reports a timeout. */
  timeoutMs: number;
  /** Memory the task asked for; the worker refuses a task that wants more than its function has. */
  memoryMB: number;
  /** The job's limits, for the tasks this task starts (nested tasks run from the worker itself). */
  nest?: NestLimits;
}

/** What a worker needs to start tasks of the same job as the driver would: the job's prefix and limits. */
export interface NestLimits {
  maxTaskDepth: number;
  /** Defaults of the tasks it starts, as the driver's. */
  taskTimeoutMs: number;
  taskMemoryMB: number;
  /** Most tasks one running task keeps in flight. */
  maxConcurrency: number;
}

/** A result envelope in wire form, with the worker's log location. */
export type LambdaResponse = Record<string, unknown> & { logs?: string };

/** Validates the request a worker receives; throws ProtocolError saying what is wrong. */
export function validateLambdaRequest(x: unknown): LambdaRequest {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ProtocolError('the Lambda event must be a volley invoke request object');
  const r = x as Record<string, unknown>;
  const field = (k: string) => (Object.hasOwn(r, k) ? r[k] : undefined);
  if (field('v') !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `the Lambda event has protocol version ${JSON.stringify(field('v'))}, this worker speaks ${PROTOCOL_VERSION}: deploy the worker from the same volley version as the driver (npx volley deploy)`,
    );
  }
  if (field('kind') !== 'invoke') throw new ProtocolError(`the Lambda event kind must be 'invoke', got ${JSON.stringify(field('kind'))}`);
  for (const k of Object.keys(r)) {
    if (!REQUEST_FIELDS.includes(k)) throw new ProtocolError(`the Lambda event has a field ${JSON.stringify(k.slice(0, 64))} outside the protocol (allowed: ${REQUEST_FIELDS.join(', ')})`);
  }
  const t = r.timeoutMs;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > LAMBDA_MAX_TIMEOUT_MS) {
    throw new ProtocolError(`the Lambda event field timeoutMs must be an integer from 1 to ${LAMBDA_MAX_TIMEOUT_MS} (Lambda's limit), got ${JSON.stringify(t)}`);
  }
  const m = r.memoryMB;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < LAMBDA_MIN_MEMORY_MB || m > LAMBDA_MAX_MEMORY_MB) {
    throw new ProtocolError(`the Lambda event field memoryMB must be an integer from ${LAMBDA_MIN_MEMORY_MB} to ${LAMBDA_MAX_MEMORY_MB} (Lambda's memory sizes), got ${JSON.stringify(m)}`);
  }
  if (typeof r.task !== 'object' || r.task === null || Array.isArray(r.task)) throw new ProtocolError('the Lambda event field task must be a task envelope');
  if (r.nest !== undefined) {
    const n = r.nest as Record<string, unknown> | null;
    if (typeof n !== 'object' || n === null || Array.isArray(n)) throw new ProtocolError('the Lambda event field nest must be an object');
    for (const k of Object.keys(n)) {
      if (!(NEST_FIELDS as readonly string[]).includes(k))
        throw new ProtocolError(`the Lambda event field nest has a field ${JSON.stringify(k.slice(0, 64))} outside the protocol (allowed: ${NEST_FIELDS.join(', ')})`);
    }
    for (const f of NEST_FIELDS) {
      const v = n[f];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ProtocolError(`the Lambda event field nest.${f} must be an integer >= 0, got ${JSON.stringify(v)}`);
    }
  }
  return r as unknown as LambdaRequest;
}

const REQUEST_FIELDS: readonly string[] = ['v', 'kind', 'task', 'timeoutMs', 'memoryMB', 'nest'];
const NEST_FIELDS = ['maxTaskDepth', 'taskTimeoutMs', 'taskMemoryMB', 'maxConcurrency'] as const;
