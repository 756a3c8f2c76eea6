/**
 * Wire formats between the driver and a worker: unions tagged by `kind`, with a protocol
 * version `v`. The same envelopes travel to a worker thread (structured clone) and to Lambda
 * (JSON, bytes as base64: see `toWire`/`fromWire`).
 */
import { ProtocolError, toRemoteErrorInfo, type RemoteErrorInfo } from './errors.js';

export const PROTOCOL_VERSION = 1 as const;

/** Where a serialized value is: inline bytes, or a key in the object store. */
export type Payload = { kind: 'inline'; bytes: Uint8Array } | { kind: 'stored'; key: string; size: number };

export interface TaskEnvelope {
  v: typeof PROTOCOL_VERSION;
  kind: 'task';
  /** Job (driver session) id; the store keeps a job's objects under one prefix. */
  job: string;
  taskId: string;
  /** Registered task name. */
  fn: string;
  /** URL of the module that defines the task, for workers that load modules on demand. */
  module?: string;
  /** The encoded argument list. */
  args: Payload;
  /** Where each ref argument's value is, by ref id. */
  deps: Record<string, Payload>;
  /** Store key for the result when it is larger than `inlineLimit`. */
  resultKey: string;
  inlineLimit: number;
  /** Which run of the task this is, from 1; absent on the first run. Read inside a task with `taskContext().attempt`. */
  attempt?: number;
}

export interface Timing {
  /** Time spent reading ref arguments from the store and decoding them (not loading the task's module). */
  fetchMs: number;
  /** Time spent in the task's own function. */
  runMs: number;
  /** Time spent encoding and storing the result. */
  storeMs: number;
}

export type ResultEnvelope =
  | { v: typeof PROTOCOL_VERSION; kind: 'value'; taskId: string; bytes: Uint8Array; timing: Timing }
  | { v: typeof PROTOCOL_VERSION; kind: 'stored'; taskId: string; key: string; size: number; timing: Timing }
  | {
      v: typeof PROTOCOL_VERSION;
      kind: 'error';
      taskId: string;
      error: RemoteErrorInfo;
      fault: 'user' | 'infrastructure';
      timing: Timing;
      /** Where the worker's logs for this run are, when the transport knows (e.g. CloudWatch). */
      logs?: string;
    };

/** Timing of a task that failed before it ran. */
const NO_TIMING: Timing = Object.freeze({ fetchMs: 0, runMs: 0, storeMs: 0 });

/**
 * The one constructor of error results: `err` (anything thrown) becomes the remote error
 * info, with its name, message, stack, `code` and `retryable`.
 */
export function errorResult(taskId: string, err: unknown, fault: 'user' | 'infrastructure', timing: Timing = NO_TIMING, logs?: string): ResultEnvelope {
  const res: ResultEnvelope = { v: PROTOCOL_VERSION, kind: 'error', taskId, error: toRemoteErrorInfo(err), fault, timing: { ...timing } };
  if (logs !== undefined) res.logs = logs;
  return res;
}

function isObj(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkPayload(p: unknown, where: string): Payload {
  if (!isObj(p)) throw new ProtocolError(`${where} must be a payload object`);
  if (p.kind === 'inline') {
    if (!(p.bytes instanceof Uint8Array)) throw new ProtocolError(`${where}.bytes must be bytes`);
    return p as Payload;
  }
  if (p.kind === 'stored') {
    if (typeof p.key !== 'string' || p.key === '') throw new ProtocolError(`${where}.key must be a non-empty string`);
    if (typeof p.size !== 'number') throw new ProtocolError(`${where}.size must be a number`);
    return p as Payload;
  }
  throw new ProtocolError(`${where}.kind must be 'inline' or 'stored', got ${JSON.stringify(p.kind)}`);
}

/** Validates an incoming task envelope; throws ProtocolError saying what is wrong. */
export function validateTaskEnvelope(x: unknown): TaskEnvelope {
  if (!isObj(x)) throw new ProtocolError('task envelope must be an object');
  if (x.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(`task envelope has protocol version ${JSON.stringify(x.v)}, this worker speaks ${PROTOCOL_VERSION}: deploy the worker from the same volley version as the driver`);
  }
  if (x.kind !== 'task') throw new ProtocolError(`envelope kind must be 'task', got ${JSON.stringify(x.kind)}`);
  for (const f of ['job', 'taskId', 'fn', 'resultKey'] as const) {
    if (typeof x[f] !== 'string' || x[f] === '') throw new ProtocolError(`task envelope field ${f} must be a non-empty string`);
  }
  if (x.module !== undefined && typeof x.module !== 'string') throw new ProtocolError('task envelope field module must be a string');
  if (typeof x.inlineLimit !== 'number' || !(x.inlineLimit >= 0)) throw new ProtocolError('task envelope field inlineLimit must be a number >= 0');
  if (x.attempt !== undefined && !(Number.isInteger(x.attempt) && (x.attempt as number) >= 1)) throw new ProtocolError('task envelope field attempt must be an integer >= 1');
  checkPayload(x.args, 'args');
  if (!isObj(x.deps)) throw new ProtocolError('task envelope field deps must be an object');
  for (const [id, p] of Object.entries(x.deps)) checkPayload(p, `deps.${id}`);
  return x as unknown as TaskEnvelope;
}

function checkTiming(t: unknown): void {
  if (!isObj(t)) throw new ProtocolError('result envelope field timing must be an object');
  for (const f of ['fetchMs', 'runMs', 'storeMs'] as const) {
    const v = t[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ProtocolError(`result envelope field timing.${f} must be a number >= 0, got ${JSON.stringify(v)}`);
  }
}

/** Validates a result envelope coming back from a worker. */
export function validateResultEnvelope(x: unknown): ResultEnvelope {
  if (!isObj(x)) throw new ProtocolError('result envelope must be an object');
  if (x.v !== PROTOCOL_VERSION) {
    throw new ProtocolError(`result envelope has protocol version ${JSON.stringify(x.v)}, expected ${PROTOCOL_VERSION}: redeploy the worker`);
  }
  if (typeof x.taskId !== 'string') throw new ProtocolError('result envelope field taskId must be a string');
  checkTiming(x.timing);
  switch (x.kind) {
    case 'value':
      if (!(x.bytes instanceof Uint8Array)) throw new ProtocolError('result envelope field bytes must be bytes');
      break;
    case 'stored':
      if (typeof x.key !== 'string' || typeof x.size !== 'number') throw new ProtocolError('stored result needs key and size');
      break;
    case 'error':
      if (!isObj(x.error) || typeof x.error.message !== 'string') throw new ProtocolError('error result needs error.message');
      break;
    default:
      throw new ProtocolError(`result envelope kind must be value, stored or error, got ${JSON.stringify(x.kind)}`);
  }
  return x as unknown as ResultEnvelope;
}

const B64 = '$b64';

/** Envelope to JSON-safe form: every Uint8Array becomes `{ "$b64": "..." }`. */
export function toWire(x: unknown): unknown {
  if (x instanceof Uint8Array) return { [B64]: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64') };
  if (Array.isArray(x)) return x.map(toWire);
  if (isObj(x)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = toWire(v);
    return out;
  }
  return x;
}

/** Inverse of `toWire`. */
export function fromWire(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(fromWire);
  if (isObj(x)) {
    const b = x[B64];
    if (typeof b === 'string' && Object.keys(x).length === 1) {
      const buf = Buffer.from(b, 'base64');
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = fromWire(v);
    return out;
  }
  return x;
}
