/**
 * The Lambda payloads, both ways. The task envelope travels in its JSON-safe form
 * (`toWire`, bytes as base64) inside a small request that adds what Lambda does not carry per
 * invocation: the task's timeout and memory. The response is the worker's result envelope in
 * the same form, plus where its logs are.
 */
import { DEFAULT_PAYLOAD_LIMIT_BYTES } from '../envelope.js';
import { ProtocolError } from '../errors.js';
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
}

/** A result envelope in wire form, with the worker's log location. */
export type LambdaResponse = Record<string, unknown> & { logs?: string };

/** Validates the request a worker receives; throws ProtocolError saying what is wrong. */
export function validateLambdaRequest(x: unknown): LambdaRequest {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new ProtocolError('the Lambda event must be a volley invoke request object');
  const r = x as Record<string, unknown>;
  if (r.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `the Lambda event has protocol version ${JSON.stringify(r.v)}, this worker speaks ${PROTOCOL_VERSION}: deploy the worker from the same volley version as the driver (npx volley deploy)`,
    );
  }
  if (r.kind !== 'invoke') throw new ProtocolError(`the Lambda event kind must be 'invoke', got ${JSON.stringify(r.kind)}`);
  if (typeof r.timeoutMs !== 'number' || !(r.timeoutMs > 0)) throw new ProtocolError('the Lambda event field timeoutMs must be a number > 0');
  if (typeof r.memoryMB !== 'number' || !(r.memoryMB > 0)) throw new ProtocolError('the Lambda event field memoryMB must be a number > 0');
  if (typeof r.task !== 'object' || r.task === null) throw new ProtocolError('the Lambda event field task must be a task envelope');
  return r as unknown as LambdaRequest;
}
