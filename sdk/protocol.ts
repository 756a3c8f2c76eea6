/**
 * Wire formats between the driver and a worker: unions tagged by `kind`, with a protocol
 * version `v`. The same envelopes travel to a worker thread (structured clone) and to Lambda
 * (JSON, bytes as base64: see `toWire`/`fromWire`).
 */
import { ProtocolError, toRemoteErrorInfo, type RemoteErrorInfo } from './errors.js';

export const PROTOCOL_VERSION = 2 as const;

/** Where a serialized value is: inline bytes, or a key in the object store. */
export type Payload = { kind: 'inline'; bytes: Uint8Array } | { kind: 'stored'; key: string; size: number };

/**
 * The dependencies of an envelope without any: one frozen, prototype-less object shared by all
 * of them (envelopes are not written to; a follower, whose worker fills its deps, gets its own).
 */
export const NO_DEPS: Readonly<Record<string, Payload>> = Object.freeze(Object.create(null) as Record<string, Payload>);

export interface TaskEnvelope {
  v: typeof PROTOCOL_VERSION;
  kind: 'task';
  /**
   * The run's scope in the store, `<jobId>/<runId>`: every key the envelope names is under
   * `<keyPrefix>jobs/<job>/`, and a worker touches no other key (see `checkKeysConfined`).
   */
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
  /** How deep the task is nested: 1 for a task started by a task that the driver started; absent for the driver's own. */
  depth?: number;
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
  /** When the worker began fetching (after loading the task's module), ms since the epoch on the worker's clock. */
  startedAt?: number;
}

/** Who ran a task: set by the pool for a worker thread, by the handler for a Lambda sandbox. @public */
export interface ResultWorker {
  /** `thread-<n>`, or the sandbox's log stream name. */
  id: string;
  /** The Lambda function's configured memory. */
  memoryMB?: number;
  arch?: 'arm64' | 'x86_64';
  /**
   * On the first answer of a Lambda sandbox (a cold start): its INIT phase in ms, as the
   * handler measured it (from the runtime process's start to the handler's module being
   * loaded). Lambda bills it as duration.
   */
  initMs?: number;
}

/** Fields every result carries besides its kind's own. @public */
export interface ResultCommon {
  v: typeof PROTOCOL_VERSION;
  taskId: string;
  timing: Timing;
  worker?: ResultWorker;
}

/**
 * Where the objects of the refs a result contains are (by ref id; with the refs those objects
 * contain in turn), all ready when the result is sent. Absent when the result holds no refs.
 */
export type ContainedRefs = Record<string, Payload>;

export type ResultEnvelope =
  | (ResultCommon & { kind: 'value'; bytes: Uint8Array; refs?: ContainedRefs })
  | (ResultCommon & { kind: 'stored'; key: string; size: number; refs?: ContainedRefs })
  | (ResultCommon & {
      kind: 'error';
      error: RemoteErrorInfo;
      fault: 'user' | 'infrastructure';
      /** Where the worker's logs for this run are, when the transport knows (e.g. CloudWatch). */
      logs?: string;
    });

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

/** A plain object (own data, Object.prototype or none): what JSON.parse, fromWire and structured clone make. */
function isObj(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Own field, never one inherited from a prototype. */
function own(x: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(x, k) ? x[k] : undefined;
}

/** Rejects any field outside the contract (and so `__proto__`, `constructor`, ...). */
function onlyFields(x: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(x)) {
    if (!allowed.includes(k)) throw new ProtocolError(`${what} has a field ${JSON.stringify(k.slice(0, 64))} outside the protocol (allowed: ${allowed.join(', ')})`);
  }
}

/**
 * `onlyFields` for the fields of an envelope every task carries: a `for...in` over the object
 * (no array of its keys made per call) against a Set. A key not in the set goes to the full
 * check, whose verdict and error stand: `for...in` also lists enumerable keys inherited from
 * Object.prototype (none unless a program added one), which the full check, over own keys,
 * lets pass as before.
 */
function onlyFieldsOf(x: Record<string, unknown>, allowed: ReadonlySet<string>, list: readonly string[], what: string): void {
  for (const k in x) if (!allowed.has(k)) onlyFields(x, list, what);
}

/** Longest INIT phase a worker may report: Lambda's function timeout at most. */
const MAX_INIT_MS = 900_000;

/** Longest id, name or key a worker accepts (S3's own key limit is 1,024 bytes). */
export const MAX_NAME_LENGTH = 1024;

function checkName(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '' || v.length > MAX_NAME_LENGTH) throw new ProtocolError(`${what} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  return v;
}

/** `<jobId>/<runId>`: the job id's characters (as init() checks them), a slash, a run id (base64url). */
const JOB_SCOPE = /^[A-Za-z0-9._-]{1,64}\/[A-Za-z0-9_-]{16,64}$/;
/** A key: no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it rejects
const OBJECT_PART = /^[^\u0000-\u001f\u007f]+$/;

function checkKey(v: unknown, what: string): string {
  const key = checkName(v, what);
  if (!OBJECT_PART.test(key)) throw new ProtocolError(`${what} must not contain control characters`);
  return key;
}

function checkSize(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`${what} must be an integer >= 0, got ${JSON.stringify(v)}`);
  return v;
}

const INLINE_FIELDS = ['kind', 'bytes'] as const;
const INLINE_FIELD_SET: ReadonlySet<string> = new Set(INLINE_FIELDS);
const STORED_FIELDS = ['kind', 'key', 'size'] as const;
const STORED_FIELD_SET: ReadonlySet<string> = new Set(STORED_FIELDS);

function checkPayload(p: unknown, where: string): Payload {
  if (!isObj(p)) throw new ProtocolError(`${where} must be a payload object`);
  const kind = own(p, 'kind');
  if (kind === 'inline') {
    onlyFieldsOf(p, INLINE_FIELD_SET, INLINE_FIELDS, where);
    if (!(p.bytes instanceof Uint8Array)) throw new ProtocolError(`${where}.bytes must be bytes`);
    return p as Payload;
  }
  if (kind === 'stored') {
    onlyFieldsOf(p, STORED_FIELD_SET, STORED_FIELDS, where);
    checkKey(p.key, `${where}.key`);
    checkSize(p.size, `${where}.size`);
    return p as Payload;
  }
  throw new ProtocolError(`${where}.kind must be 'inline' or 'stored', got ${JSON.stringify(kind)}`);
}

const TASK_FIELDS = ['v', 'kind', 'job', 'taskId', 'fn', 'module', 'args', 'deps', 'resultKey', 'inlineLimit', 'depth', 'attempt'] as const;
const TASK_FIELD_SET: ReadonlySet<string> = new Set(TASK_FIELDS);

/**
 * The last job scope that passed `JOB_SCOPE`: the tasks a worker gets in a row are mostly of one
 * run, and a string equal to one checked passes the same check.
 */
let lastJob = '';

/** Validates an incoming task envelope; throws ProtocolError saying what is wrong. */
export function validateTaskEnvelope(x: unknown): TaskEnvelope {
  if (!isObj(x)) throw new ProtocolError('task envelope must be a plain object');
  if (own(x, 'v') !== PROTOCOL_VERSION) {
    throw new ProtocolError(`task envelope has protocol version ${JSON.stringify(own(x, 'v'))}, this worker speaks ${PROTOCOL_VERSION}: deploy the worker from the same volley version as the driver`);
  }
  if (own(x, 'kind') !== 'task') throw new ProtocolError(`envelope kind must be 'task', got ${JSON.stringify(own(x, 'kind'))}`);
  onlyFieldsOf(x, TASK_FIELD_SET, TASK_FIELDS, 'task envelope');
  checkName(x.taskId, 'task envelope field taskId');
  checkName(x.fn, 'task envelope field fn');
  const job = x.job;
  if (typeof job !== 'string' || (job !== lastJob && !JOB_SCOPE.test(job))) throw new ProtocolError("task envelope field job must be '<jobId>/<runId>' (letters, digits, '.', '_', '-')");
  lastJob = job;
  checkKey(x.resultKey, 'task envelope field resultKey');
  if (x.module !== undefined && (typeof x.module !== 'string' || x.module.length > 4096)) throw new ProtocolError('task envelope field module must be a string (a module URL)');
  checkSize(x.inlineLimit, 'task envelope field inlineLimit');
  if (x.depth !== undefined && !(Number.isInteger(x.depth) && (x.depth as number) >= 1 && (x.depth as number) <= 1000))
    throw new ProtocolError('task envelope field depth must be an integer from 1 to 1000');
  if (x.attempt !== undefined && !(Number.isInteger(x.attempt) && (x.attempt as number) >= 1)) throw new ProtocolError('task envelope field attempt must be an integer >= 1');
  checkPayload(x.args, 'args');
  const deps = x.deps;
  if (!isObj(deps)) throw new ProtocolError('task envelope field deps must be an object');
  for (const id of Object.keys(deps)) {
    checkName(id, 'a dependency id');
    checkPayload(deps[id], `deps.${id}`);
  }
  return x as unknown as TaskEnvelope;
}

/**
 * Throws ProtocolError unless every key the envelope names (its result key, stored arguments
 * and dependencies) is under its own run's prefix, `<keyPrefix>jobs/<job>/`. A worker checks
 * this before touching the store, so whoever can invoke it cannot read or write other keys.
 */
export function checkKeysConfined(env: TaskEnvelope, keyPrefix: string): void {
  const prefix = `${keyPrefix}jobs/${env.job}/`;
  checkConfined(prefix, keyPrefix, env.resultKey, 'the result key');
  if (env.args.kind === 'stored') checkConfined(prefix, keyPrefix, env.args.key, 'the arguments key');
  for (const id of Object.keys(env.deps)) {
    const p = env.deps[id]!;
    if (p.kind === 'stored') checkConfined(prefix, keyPrefix, p.key, `the key of dependency ${id}`);
  }
}

/**
 * One key of `checkKeysConfined`. A function of the module, not a closure made per envelope: the
 * library's build (esbuild keepNames) names such a closure each time it is made, at more cost
 * than the check.
 */
function checkConfined(prefix: string, keyPrefix: string, key: string, what: string): void {
  if (!key.startsWith(prefix) || key.length === prefix.length) {
    throw new ProtocolError(
      `${what} ${JSON.stringify(key.slice(0, 200))} is outside this task's run (${prefix}); a worker reads and writes only its own run's objects` +
        (keyPrefix ? ` (this worker's key prefix is ${JSON.stringify(keyPrefix)}: deploy it with the keyPrefix the driver uses)` : ''),
    );
  }
}

const TIMING_FIELDS = ['fetchMs', 'runMs', 'storeMs'] as const;

function checkTiming(t: unknown): void {
  if (!isObj(t)) throw new ProtocolError('result envelope field timing must be an object');
  onlyFields(t, [...TIMING_FIELDS, 'startedAt'], 'result envelope field timing');
  for (const f of TIMING_FIELDS) {
    const v = t[f];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ProtocolError(`result envelope field timing.${f} must be a number >= 0, got ${JSON.stringify(v)}`);
  }
  if (t.startedAt !== undefined && (typeof t.startedAt !== 'number' || !Number.isFinite(t.startedAt))) {
    throw new ProtocolError(`result envelope field timing.startedAt must be a time in ms, got ${JSON.stringify(t.startedAt)}`);
  }
}

function checkWorker(w: unknown): void {
  if (w === undefined) return;
  if (!isObj(w) || typeof w.id !== 'string' || w.id === '' || w.id.length > 512) throw new ProtocolError('result envelope field worker.id must be a string of 1-512 characters');
  onlyFields(w, ['id', 'memoryMB', 'arch', 'initMs'], 'result envelope field worker');
  // Lambda's INIT phase is at most 10 s, retried within the function's timeout (at most 900 s) when it runs out.
  if (w.initMs !== undefined && (typeof w.initMs !== 'number' || !(w.initMs >= 0) || w.initMs > MAX_INIT_MS)) {
    throw new ProtocolError(`result envelope field worker.initMs must be a number of ms from 0 to ${MAX_INIT_MS}, got ${String(w.initMs).slice(0, 40)}`);
  }
  if (w.memoryMB !== undefined && (typeof w.memoryMB !== 'number' || !(w.memoryMB > 0))) throw new ProtocolError('result envelope field worker.memoryMB must be a number > 0');
  if (w.arch !== undefined && w.arch !== 'arm64' && w.arch !== 'x86_64') throw new ProtocolError(`result envelope field worker.arch must be arm64 or x86_64, got ${JSON.stringify(w.arch)}`);
}

const RESULT_FIELDS = {
  value: ['v', 'kind', 'taskId', 'bytes', 'timing', 'refs', 'worker'],
  stored: ['v', 'kind', 'taskId', 'key', 'size', 'timing', 'refs', 'worker'],
  error: ['v', 'kind', 'taskId', 'error', 'fault', 'timing', 'logs', 'worker'],
} as const;
const ERROR_FIELDS = ['name', 'message', 'stack', 'code', 'retryable', 'task', 'cause', 'key', 'objectId', 'invocationMs'] as const;
const ERROR_TASK_FIELDS = ['functionName', 'taskId', 'fault', 'remote'] as const;

/** A remote error's info (and the task and cause it carries, a few levels deep). */
function checkErrorInfo(e: unknown, what: string, depth = 0): void {
  if (!isObj(e) || typeof e.message !== 'string' || typeof e.name !== 'string') {
    throw new ProtocolError(depth === 0 ? 'error result needs error.name and error.message' : `${what} needs name and message`);
  }
  onlyFields(e, ERROR_FIELDS, what);
  optionalString(e, 'stack', what);
  optionalString(e, 'code', what);
  if (e.key !== undefined) checkKey(e.key, `${what}.key`);
  if (e.objectId !== undefined) checkName(e.objectId, `${what}.objectId`);
  if (e.retryable !== undefined && typeof e.retryable !== 'boolean') throw new ProtocolError(`${what}.retryable must be a boolean`);
  // A Lambda invocation has at most 900 s.
  if (e.invocationMs !== undefined && (typeof e.invocationMs !== 'number' || !(e.invocationMs >= 0) || e.invocationMs > 900_000)) {
    throw new ProtocolError(`${what}.invocationMs must be a number of ms from 0 to 900000, got ${String(e.invocationMs).slice(0, 40)}`);
  }
  if (depth > 16 && (e.task !== undefined || e.cause !== undefined)) throw new ProtocolError(`${what} nests causes too deep`);
  if (e.cause !== undefined) checkErrorInfo(e.cause, `${what}.cause`, depth + 1);
  if (e.task !== undefined) {
    const t = e.task;
    if (!isObj(t)) throw new ProtocolError(`${what}.task must be an object`);
    onlyFields(t, ERROR_TASK_FIELDS, `${what}.task`);
    checkName(t.functionName, `${what}.task.functionName`);
    checkName(t.taskId, `${what}.task.taskId`);
    if (t.fault !== 'user' && t.fault !== 'infrastructure') throw new ProtocolError(`${what}.task.fault must be 'user' or 'infrastructure'`);
    if (t.remote !== undefined) checkErrorInfo(t.remote, `${what}.task.remote`, depth + 1);
  }
}

function optionalString(x: Record<string, unknown>, k: string, what: string): void {
  if (x[k] !== undefined && typeof x[k] !== 'string') throw new ProtocolError(`${what}.${k} must be a string`);
}

/** Validates a result envelope coming back from a worker. */
export function validateResultEnvelope(x: unknown): ResultEnvelope {
  if (!isObj(x)) throw new ProtocolError('result envelope must be a plain object');
  if (own(x, 'v') !== PROTOCOL_VERSION) {
    throw new ProtocolError(`result envelope has protocol version ${JSON.stringify(own(x, 'v'))}, expected ${PROTOCOL_VERSION}: redeploy the worker`);
  }
  const kind = own(x, 'kind');
  if (kind !== 'value' && kind !== 'stored' && kind !== 'error') {
    throw new ProtocolError(`result envelope kind must be value, stored or error, got ${JSON.stringify(kind)}`);
  }
  onlyFields(x, RESULT_FIELDS[kind], `${kind} result envelope`);
  checkName(x.taskId, 'result envelope field taskId');
  checkTiming(x.timing);
  checkWorker(x.worker);
  switch (kind) {
    case 'value':
      if (!(x.bytes instanceof Uint8Array)) throw new ProtocolError('result envelope field bytes must be bytes');
      break;
    case 'stored':
      checkKey(x.key, 'stored result field key');
      checkSize(x.size, 'stored result field size');
      break;
    case 'error': {
      checkErrorInfo(x.error, 'error result field error');
      if (x.fault !== 'user' && x.fault !== 'infrastructure') throw new ProtocolError(`error result field fault must be 'user' or 'infrastructure', got ${JSON.stringify(x.fault)}`);
      optionalString(x, 'logs', 'error result');
      break;
    }
  }
  if (x.refs !== undefined) {
    if (x.kind === 'error' || !isObj(x.refs)) throw new ProtocolError('result envelope field refs must be an object of payloads, on a value or stored result');
    for (const id of Object.keys(x.refs)) {
      checkName(id, 'a contained ref id');
      checkPayload(x.refs[id], `refs.${id}`);
    }
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

/**
 * Base64 from the standard alphabet, '=' only as final padding; with the length a multiple of
 * four that is whole groups. (A pattern of groups would be exact too, but V8's backtracking
 * stack overflows on it for inputs of megabytes; this one runs in linear time.)
 */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Inverse of `toWire`. Strict: a `$b64` object must hold only canonical base64 (Node's own
 * decoder skips what it does not understand); every field is copied as an own data property,
 * so a `__proto__` key stays a field (which the validators reject) and never sets a prototype.
 */
export function fromWire(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(fromWire);
  if (typeof x === 'object' && x !== null) {
    const rec = x as Record<string, unknown>;
    if (Object.hasOwn(rec, B64)) {
      const b = rec[B64];
      if (typeof b !== 'string' || Object.keys(rec).length !== 1) throw new ProtocolError(`a ${B64} field must be the only field of its object and hold a string`);
      if (b.length % 4 !== 0 || !BASE64.test(b)) throw new ProtocolError(`a ${B64} field holds malformed base64 (${b.length} characters)`);
      const buf = Buffer.from(b, 'base64');
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(rec)) {
      // Assigned (4x faster than defining) unless the key is inherited: an inherited setter (`__proto__`'s) would run.
      if (k in out) Object.defineProperty(out, k, { value: fromWire(rec[k]), enumerable: true, writable: true, configurable: true });
      else out[k] = fromWire(rec[k]);
    }
    return out;
  }
  return x;
}

// --- actor handles -----------------------------------------------------------------------------

/**
 * The name of the task through which a running task's actor operations reach the driver on the
 * embedded runtime (start, call, kill), sent as an ordinary nested submit whose arguments are
 * `[ActorOp, args]`; the driver's orchestrator hands it to its actors instead of running it.
 */
export const ACTOR_OP_TASK = 'volley:actor-op';

/**
 * An actor handle as it travels inside a value (a task's argument or result, a put value): what
 * a worker or the driver needs to call the same actor. `id` names the actor (absent only for a
 * handle a task looked up by `name` on the embedded runtime, which the driver resolves); `mode`
 * is where its instance lives; `after` (store mode) names calls known to have committed, where
 * a call through this handle starts looking for the newest version; `g` is the actor's
 * generation (store mode: which creation of a named actor the handle is to).
 */
export interface ActorHandleWire {
  id?: string;
  name?: string;
  cls?: string;
  methods?: string[];
  module?: string;
  mode: 'memory' | 'store';
  after?: string[];
  g?: string;
}

const HANDLE_FIELDS = ['id', 'name', 'cls', 'methods', 'module', 'mode', 'after', 'g'] as const;
/** Most methods a handle may list (a class with more is refused where the handle is made). */
export const MAX_HANDLE_METHODS = 512;

/** Validates the wire form of an actor handle found in a decoded value; ProtocolError saying what is wrong. */
export function validateActorHandleWire(x: unknown): ActorHandleWire {
  if (!isObj(x)) throw new ProtocolError('an actor handle must be a plain object');
  onlyFields(x, HANDLE_FIELDS, 'actor handle');
  const mode = own(x, 'mode');
  if (mode !== 'memory' && mode !== 'store') throw new ProtocolError(`actor handle field mode must be 'memory' or 'store', got ${JSON.stringify(mode)}`);
  for (const f of ['id', 'name', 'cls', 'g'] as const) if (x[f] !== undefined) checkKey(x[f], `actor handle field ${f}`);
  if (x.id === undefined && x.name === undefined) throw new ProtocolError('an actor handle needs an id or a name');
  if (x.id !== undefined && /[/\\]|^\.\.?$/.test(x.id as string)) throw new ProtocolError('actor handle field id must not contain a slash or backslash, or be . or ..');
  if (x.module !== undefined && (typeof x.module !== 'string' || x.module.length > 4096)) throw new ProtocolError('actor handle field module must be a string (a module URL)');
  if (x.after !== undefined) {
    if (!Array.isArray(x.after) || x.after.length > 8) throw new ProtocolError('actor handle field after must be an array of at most 8 call ids');
    for (const c of x.after) checkKey(c, 'an actor handle call id');
  }
  if (x.methods !== undefined) {
    if (!Array.isArray(x.methods) || x.methods.length > MAX_HANDLE_METHODS) throw new ProtocolError(`actor handle field methods must be an array of at most ${MAX_HANDLE_METHODS} names`);
    for (const m of x.methods) checkName(m, 'an actor handle method name');
  }
  return x as unknown as ActorHandleWire;
}

/** An actor operation a running task sends to the driver on the embedded runtime (the first argument of an ACTOR_OP_TASK submit). */
export type ActorOp =
  | { op: 'start'; id: string; cls: string; methods: string[]; module?: string; options?: { name?: string; maxRestarts?: number; timeoutMs?: number; memoryMB?: number } }
  | { op: 'call'; id?: string; name?: string; method: string }
  | { op: 'kill'; id?: string; name?: string };

const OP_FIELDS = {
  start: ['op', 'id', 'cls', 'methods', 'module', 'options'],
  call: ['op', 'id', 'name', 'method'],
  kill: ['op', 'id', 'name'],
} as const;

/** Validates an actor operation from a worker thread; ProtocolError saying what is wrong (the options themselves are checked as the API checks them). */
export function validateActorOp(x: unknown): ActorOp {
  if (!isObj(x)) throw new ProtocolError('an actor operation must be a plain object');
  const op = own(x, 'op');
  if (op !== 'start' && op !== 'call' && op !== 'kill') throw new ProtocolError(`actor operation op must be start, call or kill, got ${JSON.stringify(op)}`);
  onlyFields(x, OP_FIELDS[op], `actor ${op} operation`);
  if (op === 'start') {
    checkKey(x.id, 'actor start operation field id');
    checkName(x.cls, 'actor start operation field cls');
    if (!Array.isArray(x.methods) || x.methods.length > MAX_HANDLE_METHODS) throw new ProtocolError('actor start operation field methods must be an array of names');
    for (const m of x.methods) checkName(m, 'an actor method name');
    if (x.module !== undefined && (typeof x.module !== 'string' || x.module.length > 4096)) throw new ProtocolError('actor start operation field module must be a string');
    if (x.options !== undefined && !isObj(x.options)) throw new ProtocolError('actor start operation field options must be an object');
  } else {
    if ((x.id === undefined) === (x.name === undefined)) throw new ProtocolError(`actor ${op} operation needs an id or a name`);
    if (x.id !== undefined) checkKey(x.id, `actor ${op} operation field id`);
    if (x.name !== undefined) checkName(x.name, `actor ${op} operation field name`);
    if (op === 'call') checkName(x.method, 'actor call operation field method');
  }
  return x as unknown as ActorOp;
}
