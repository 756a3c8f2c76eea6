/**
 * The Lambda payloads, both ways. The task envelope travels in its JSON-safe form
 * (`toWire`, bytes as base64) inside a small request that adds what Lambda does not carry per
 * invocation: the task's timeout and memory. The response is the worker's result envelope in
 * the same form, plus where its logs are.
 */
import { DEFAULT_PAYLOAD_LIMIT_BYTES } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import { LAMBDA_MAX_MEMORY_MB, LAMBDA_MAX_TIMEOUT_MS, LAMBDA_MIN_MEMORY_MB } from '../options.js';
import { PROTOCOL_VERSION, fromWire } from '../protocol.js';

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

/**
 * Several tasks in one invocation (short ones: see batch-policy.ts). The worker runs them one
 * after another, each with its own timeout and memory check, and answers a `LambdaBatchResponse`
 * with one entry per task, in the same order.
 */
export interface LambdaBatchRequest {
  v: typeof PROTOCOL_VERSION;
  kind: 'batch';
  tasks: LambdaBatchItem[];
  /**
   * The invocation's time budget: the worker starts a task only if it can run to its own
   * timeout within it, and answers the others "not started" (the driver sends them again).
   */
  budgetMs: number;
  nest?: NestLimits;
  /** What every task of the batch has in common, sent once rather than in each item (see BatchShared). */
  shared?: BatchShared;
}

/**
 * The part of a batch's items that is the same for all of them (the job, the module, the
 * inline limit, the timeout and memory; the result keys' common prefix), sent once: for a
 * batch of no-ops it was three quarters of each item's bytes, which every side of the
 * invocation parses, copies and encodes. A field is given here or in every item, never in
 * both; `expandBatchItem` rebuilds an item as it would be sent alone.
 */
export interface BatchShared {
  /** Task-envelope fields every task of the batch has, with these values (only `SHARED_TASK_FIELDS`). */
  task?: Record<string, unknown>;
  timeoutMs?: number;
  memoryMB?: number;
  /** Each task's `resultKey` is this followed by its task id (its envelope has none of its own). */
  resultKeyPrefix?: string;
}

/** Task-envelope fields a batch may send once for all its tasks (`BatchShared.task`). */
export const SHARED_TASK_FIELDS: readonly string[] = ['v', 'kind', 'job', 'module', 'inlineLimit', 'depth'];

/**
 * One task of a batch: its envelope (as `toWire` makes it), timeout and memory, as in a single
 * request; in a batch with `shared`, without the fields given there.
 */
export interface LambdaBatchItem {
  task: unknown;
  timeoutMs: number;
  memoryMB: number;
  /**
   * A follower: ids of its ref arguments that EARLIER tasks of this batch produce (their task
   * ids), absent from its envelope's deps. The worker fills them from those tasks' results
   * before it runs it, or answers it NotStarted when one of them did not succeed with a value
   * holding no refs.
   */
  after?: string[];
}

/** A task of a batch the worker did not start (the invocation's budget or answer size ran out): the driver sends it again; it is not a run. */
export interface NotStarted {
  v: typeof PROTOCOL_VERSION;
  kind: 'notStarted';
  taskId: string;
}

/**
 * The answer to a batch: per task, its result envelope in wire form or NotStarted; where the
 * logs are; and the worker that ran the batch, which a result without a `worker` of its own
 * takes (it is the same for all but the sandbox's first answer, which reports its INIT time).
 */
export interface LambdaBatchResponse {
  v: typeof PROTOCOL_VERSION;
  kind: 'batch';
  results: unknown[];
  logs?: string;
  worker?: unknown;
}

/**
 * `fromWire` for a value JSON.parse has just made, which nothing else holds: each `{"$b64"}`
 * object is replaced by its bytes where it is (decoded and checked by `fromWire`), and the rest
 * is kept rather than copied. JSON.parse makes every field an own data property (a
 * `"__proto__"` key too), so the value is what fromWire's copy would be. The driver decodes
 * each task's answer with it: fromWire's copy of 1,000 answers (each with its timing and the
 * batch's worker) was most of what the driver allocated to read a batch of no-ops.
 */
export function fromWireParsed(x: unknown): unknown {
  if (typeof x !== 'object' || x === null) return x;
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) x[i] = fromWireParsed(x[i]);
    return x;
  }
  const rec = x as Record<string, unknown>;
  if (Object.hasOwn(rec, '$b64')) return fromWire(rec);
  for (const k of Object.keys(rec)) {
    const v = rec[k];
    if (typeof v !== 'object' || v === null) continue;
    const d = fromWireParsed(v);
    if (d === v) continue;
    // Assigned: the field is an own data property, so even "__proto__" sets the field, never the prototype.
    rec[k] = d;
  }
  return rec;
}

/** Most tasks one batch request may carry. */
export const MAX_BATCH_REQUEST_TASKS = 1024;

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkVersion(r: Record<string, unknown>): void {
  const v = Object.hasOwn(r, 'v') ? r.v : undefined;
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `the Lambda event has protocol version ${JSON.stringify(v)}, this worker speaks ${PROTOCOL_VERSION}: deploy the worker from the same volley version as the driver (npx volley deploy)`,
    );
  }
}

function checkFields(r: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(r)) {
    if (!allowed.includes(k)) throw new ProtocolError(`${what} has a field ${JSON.stringify(k.slice(0, 64))} outside the protocol (allowed: ${allowed.join(', ')})`);
  }
}

/** timeoutMs, memoryMB and task of a single request or of one task of a batch. */
function checkTaskFields(r: Record<string, unknown>, what: string): void {
  checkLimits(r.timeoutMs, r.memoryMB, what);
  if (!isRecord(r.task)) throw new ProtocolError(`${what} field task must be a task envelope`);
}

function checkLimits(t: unknown, m: unknown, what: string): void {
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > LAMBDA_MAX_TIMEOUT_MS) {
    throw new ProtocolError(`${what} field timeoutMs must be an integer from 1 to ${LAMBDA_MAX_TIMEOUT_MS} (Lambda's limit), got ${JSON.stringify(t)}`);
  }
  if (typeof m !== 'number' || !Number.isInteger(m) || m < LAMBDA_MIN_MEMORY_MB || m > LAMBDA_MAX_MEMORY_MB) {
    throw new ProtocolError(`${what} field memoryMB must be an integer from ${LAMBDA_MIN_MEMORY_MB} to ${LAMBDA_MAX_MEMORY_MB} (Lambda's memory sizes), got ${JSON.stringify(m)}`);
  }
}

/** A batch's `shared`: only its own fields, each of the right kind (the values themselves are checked in each expanded item). */
function checkShared(x: unknown): BatchShared {
  const what = 'the Lambda batch event field shared';
  if (!isRecord(x)) throw new ProtocolError(`${what} must be an object`);
  checkFields(x, SHARED_FIELDS, what);
  if (x.task !== undefined) {
    if (!isRecord(x.task)) throw new ProtocolError(`${what}.task must be an object`);
    checkFields(x.task, SHARED_TASK_FIELDS, `${what}.task`);
  }
  const prefix = x.resultKeyPrefix;
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length < 1 || prefix.length > 1024)) {
    throw new ProtocolError(`${what}.resultKeyPrefix must be a string of 1 to 1024 characters`);
  }
  return x as BatchShared;
}

/**
 * One task of a batch as it would be sent alone: its own fields and the batch's shared ones (a
 * copy when there are any; own data properties whatever their names).
 */
export function expandBatchItem(item: LambdaBatchItem, shared: BatchShared | undefined): LambdaBatchItem {
  if (shared === undefined) return item;
  return {
    task: expandTask(item.task, shared),
    // Validated: each is in the item or in shared.
    timeoutMs: (item.timeoutMs ?? shared.timeoutMs) as number,
    memoryMB: (item.memoryMB ?? shared.memoryMB) as number,
    ...(item.after !== undefined ? { after: item.after } : {}),
  };
}

/** A task envelope's fields in the order `toWire` gives them (the order a whole envelope arrives in). */
const ENVELOPE_ORDER = ['v', 'kind', 'job', 'taskId', 'fn', 'module', 'args', 'deps', 'resultKey', 'inlineLimit', 'depth', 'attempt'] as const;

/**
 * A task envelope of a batch (wire form) with the batch's shared fields and its result key.
 * Built field by field in the envelope's own order, not by spreading the two objects: a
 * spread of objects received from another thread cost more per task (in a profile of batches
 * of no-ops, more than the copying the shared fields spared), and left objects of a different
 * shape for every step after it. Fields outside the envelope are kept as data (the envelope's
 * validation refuses them), whatever their names.
 */
export function expandTask(task: unknown, shared: Pick<BatchShared, 'task' | 'resultKeyPrefix'> | undefined): unknown {
  if (shared === undefined || (shared.task === undefined && shared.resultKeyPrefix === undefined)) return task;
  const t = task as Record<string, unknown>;
  const common = shared.task ?? {};
  const prefix = shared.resultKeyPrefix;
  const out: Record<string, unknown> = {};
  for (const f of ENVELOPE_ORDER) {
    const v = f === 'resultKey' && prefix !== undefined ? prefix + String(t.taskId) : Object.hasOwn(t, f) ? t[f] : Object.hasOwn(common, f) ? common[f] : undefined;
    if (v !== undefined) out[f] = v;
  }
  for (const k of Object.keys(t)) {
    if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: t[k], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function checkNest(n: unknown): void {
  if (n === undefined) return;
  if (!isRecord(n)) throw new ProtocolError('the Lambda event field nest must be an object');
  checkFields(n, NEST_FIELDS, 'the Lambda event field nest');
  for (const f of NEST_FIELDS) {
    const v = n[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ProtocolError(`the Lambda event field nest.${f} must be an integer >= 0, got ${JSON.stringify(v)}`);
  }
}

/** Validates the request a worker receives; throws ProtocolError saying what is wrong. */
export function validateLambdaRequest(x: unknown): LambdaRequest {
  if (!isRecord(x)) throw new ProtocolError('the Lambda event must be a volley invoke request object');
  checkVersion(x);
  if (x.kind !== 'invoke') throw new ProtocolError(`the Lambda event kind must be 'invoke', got ${JSON.stringify(x.kind)}`);
  checkFields(x, REQUEST_FIELDS, 'the Lambda event');
  checkTaskFields(x, 'the Lambda event');
  checkNest(x.nest);
  return x as unknown as LambdaRequest;
}

/** Validates a batch request (kind 'batch'); throws ProtocolError saying what is wrong. */
export function validateBatchRequest(x: unknown): LambdaBatchRequest {
  if (!isRecord(x)) throw new ProtocolError('the Lambda event must be a volley batch request object');
  checkVersion(x);
  if (x.kind !== 'batch') throw new ProtocolError(`the Lambda event kind must be 'batch', got ${JSON.stringify(x.kind)}`);
  checkFields(x, BATCH_FIELDS, 'the Lambda batch event');
  const shared = x.shared === undefined ? undefined : checkShared(x.shared);
  const b = x.budgetMs;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < 1 || b > LAMBDA_MAX_TIMEOUT_MS) {
    throw new ProtocolError(`the Lambda batch event field budgetMs must be an integer from 1 to ${LAMBDA_MAX_TIMEOUT_MS}, got ${JSON.stringify(b)}`);
  }
  const tasks = x.tasks;
  if (!Array.isArray(tasks) || tasks.length < 1 || tasks.length > MAX_BATCH_REQUEST_TASKS) {
    throw new ProtocolError(`the Lambda batch event field tasks must be a list of 1 to ${MAX_BATCH_REQUEST_TASKS} tasks`);
  }
  const earlier = new Set<string>();
  tasks.forEach((item, i) => {
    if (!isRecord(item)) throw new ProtocolError(`the Lambda batch event's task ${i} must be an object`);
    const what = `the Lambda batch event's task ${i}`;
    checkFields(item, ITEM_FIELDS, what);
    if (shared === undefined) checkTaskFields(item, what);
    else {
      // Each field in the item or in shared, never both: the item's envelope is then the same whichever side a field was sent on.
      for (const f of ['timeoutMs', 'memoryMB'] as const) {
        if ((item[f] === undefined) === (shared[f] === undefined)) throw new ProtocolError(`${what} field ${f} must be given either in the task or in shared, once`);
      }
      checkLimits(item.timeoutMs ?? shared.timeoutMs, item.memoryMB ?? shared.memoryMB, what);
      if (!isRecord(item.task)) throw new ProtocolError(`${what} field task must be a task envelope`);
      for (const f of Object.keys(shared.task ?? {})) {
        if (Object.hasOwn(item.task, f)) throw new ProtocolError(`${what} has field task.${f}, which shared gives too`);
      }
      if (shared.resultKeyPrefix !== undefined && Object.hasOwn(item.task, 'resultKey')) throw new ProtocolError(`${what} has a resultKey, which shared.resultKeyPrefix gives`);
    }
    const task = item.task as Record<string, unknown>;
    if (item.after !== undefined) checkAfter(item.after, task, earlier, i);
    if (typeof task.taskId === 'string') earlier.add(task.taskId);
  });
  checkNest(x.nest);
  return x as unknown as LambdaBatchRequest;
}

/** A follower's `after`: 1 to `MAX_BATCH_REQUEST_TASKS` distinct ids, each the task id of an earlier task of the batch, none among the task's own deps. */
function checkAfter(after: unknown, task: Record<string, unknown>, earlier: ReadonlySet<string>, i: number): void {
  const what = `the Lambda batch event's task ${i} field after`;
  if (!Array.isArray(after) || after.length < 1 || after.length > MAX_BATCH_REQUEST_TASKS) throw new ProtocolError(`${what} must be a list of 1 to ${MAX_BATCH_REQUEST_TASKS} task ids`);
  const deps = isRecord(task.deps) ? task.deps : {};
  const seen = new Set<string>();
  for (const id of after) {
    if (typeof id !== 'string' || !earlier.has(id)) {
      throw new ProtocolError(`${what} names ${JSON.stringify(typeof id === 'string' ? id.slice(0, 256) : id)}, which is not the id of an earlier task of the batch`);
    }
    if (seen.has(id)) throw new ProtocolError(`${what} names ${JSON.stringify(id.slice(0, 256))} twice`);
    if (Object.hasOwn(deps, id)) throw new ProtocolError(`${what} names ${JSON.stringify(id.slice(0, 256))}, which the task's deps already give`);
    seen.add(id);
  }
}

/**
 * Validates the answer to a batch of `taskIds` (in that order): per task, NotStarted or a
 * result envelope in wire form (left to `validateResultEnvelope` after `fromWire`). Throws
 * ProtocolError when the answer is not a batch of exactly these tasks.
 */
export function validateBatchResponse(x: unknown, taskIds: readonly string[]): LambdaBatchResponse {
  if (!isRecord(x)) throw new ProtocolError('the answer to a batch must be an object');
  if (x.v !== PROTOCOL_VERSION) throw new ProtocolError(`the answer to a batch has protocol version ${JSON.stringify(x.v)}, expected ${PROTOCOL_VERSION}: redeploy the worker`);
  if (x.kind !== 'batch') throw new ProtocolError(`the answer to a batch must be of kind 'batch', got ${JSON.stringify(x.kind)}`);
  checkFields(x, ['v', 'kind', 'results', 'logs', 'worker'], 'the answer to a batch');
  if (x.worker !== undefined && !isRecord(x.worker)) throw new ProtocolError('the answer to a batch: worker must be an object');
  if (x.logs !== undefined && typeof x.logs !== 'string') throw new ProtocolError('the answer to a batch: logs must be a string');
  const results = x.results;
  if (!Array.isArray(results) || results.length !== taskIds.length) {
    throw new ProtocolError(`the answer to a batch of ${taskIds.length} tasks must hold ${taskIds.length} results, got ${Array.isArray(results) ? results.length : typeof results}`);
  }
  results.forEach((r, i) => {
    if (!isRecord(r) || r.taskId !== taskIds[i]) throw new ProtocolError(`result ${i} of the answer to a batch must be for task ${taskIds[i]}`);
    if (r.kind === 'notStarted') checkFields(r, ['v', 'kind', 'taskId'], `result ${i} of the answer to a batch`);
  });
  return x as unknown as LambdaBatchResponse;
}

const REQUEST_FIELDS: readonly string[] = ['v', 'kind', 'task', 'timeoutMs', 'memoryMB', 'nest'];
const BATCH_FIELDS: readonly string[] = ['v', 'kind', 'tasks', 'budgetMs', 'nest', 'shared'];
const SHARED_FIELDS: readonly string[] = ['task', 'timeoutMs', 'memoryMB', 'resultKeyPrefix'];
const ITEM_FIELDS: readonly string[] = ['task', 'timeoutMs', 'memoryMB', 'after'];
const NEST_FIELDS = ['maxTaskDepth', 'taskTimeoutMs', 'taskMemoryMB', 'maxConcurrency'] as const;
