/**
 * The Lambda worker's request handling (`handlers/worker.ts` is its thin entry point): read the
 * environment through one helper, validate the event, run the task with the same worker-side
 * code as the embedded runtime, answer the result.
 *
 * A task's own exception is a result value (re-thrown by `get` with the remote stack), never a
 * Lambda FunctionError. A task runs in a worker thread of the sandbox (the "task thread", kept
 * warm between invocations like the sandbox itself): at the task's deadline the handler
 * terminates that thread and answers a timeout, even when the task's code never yields, so
 * Lambda's function timeout is a last resort, not the plan. A thread that dies (process.exit,
 * out of memory) is answered as a crashed worker and replaced on the next invocation.
 *
 * Every answer fits Lambda's 6 MB response: results larger than `LAMBDA_MAX_INLINE_BYTES` are
 * written to the store whatever the envelope's inline limit, and an error's text is clipped.
 */
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Backend, ObjectStore } from '../backend.js';
import { ConfigError, TaskTimeoutError, WorkerCrashedError } from '../errors.js';
import { LAMBDA_MAX_INLINE_BYTES, optionTable } from '../options.js';
import { PROTOCOL_VERSION, errorResult, fromWire, toWire, type ResultEnvelope, type TaskEnvelope, type Timing } from '../protocol.js';
import { Runtime } from '../runtime.js';
import { executeTask } from '../worker/execute.js';
import { childIdPrefix, useAsyncTaskScope, type SessionFactory, type TaskSession } from '../worker/nested.js';
import type { S3Store } from './s3-store.js';
import { AnswerLogReader, AnswerLogWriter, answerLogBytes } from './answer-log.js';
import { BATCH_OVERRUN_MS } from './batch-policy.js';
import {
  LAMBDA_PAYLOAD_LIMIT,
  MAX_BATCH_REQUEST_TASKS,
  expandBatchItem,
  expandTask,
  validateBatchRequest,
  fromWireParsed,
  validateLambdaRequest,
  type BatchShared,
  type LambdaBatchRequest,
  type LambdaResponse,
  type NestLimits,
  type NotStarted,
} from './wire.js';
import { readWorkerEnv, type WorkerEnv } from './worker-env.js';
import type { RunningTask } from '../worker/task-context.js';

/** The part of Lambda's context object the handler uses. */
export interface LambdaContextLike {
  logGroupName?: string;
  logStreamName?: string;
  awsRequestId?: string;
  getRemainingTimeInMillis?: () => number;
}

export type Handler = (event: unknown, context?: LambdaContextLike) => Promise<LambdaResponse>;

export interface HandlerOptions {
  /** The store to use instead of S3 (tests); only for tasks run on the handler's own thread. */
  storeFor?: (cfg: WorkerEnv) => ObjectStore;
  /**
   * The module a task thread loads: the Lambda bundle itself (`import.meta.url` of
   * handlers/worker.ts once bundled), which registers every task and then serves the thread
   * (`serveTaskThread`). Without it (or with VOLLEY_TASK_THREAD=off), tasks run on the
   * handler's own thread and their timeout is soft.
   */
  taskThread?: URL;
  /**
   * The sandbox's INIT phase in ms, reported with its first answer (cost counts it: Lambda
   * bills INIT as duration). handlers/worker.ts passes `performance.now()` once its module is
   * loaded: the time since the runtime's process (or serverless-offline's worker thread)
   * started, which is Lambda's runtime and function init; extensions' init is not in it.
   */
  initMs?: number;
}

/** Answered a little before Lambda's own timeout would kill the sandbox without an answer. */
const LAMBDA_TIMEOUT_MARGIN_MS = 500;

/**
 * The Date.now() time by which an invocation must answer: Lambda's remaining time (read at
 * `now`) less the margin; no end without a context that tells it.
 */
export function invocationEnd(remainingMs: number | undefined, now: number): number {
  return remainingMs === undefined ? Number.POSITIVE_INFINITY : now + remainingMs - LAMBDA_TIMEOUT_MARGIN_MS;
}

/**
 * The Date.now() time at which a task that started at `startedAt` is stopped: its own timeout
 * from its start, or the invocation's end, whichever comes first. A cold task thread may start
 * the task late; its timeout then counts from its start, but the invocation's end does not move
 * (past it, Lambda would kill the invocation instead of the task timing out).
 */
export function taskDeadline(startedAt: number, timeoutMs: number, endAt: number): number {
  return Math.min(startedAt + timeoutMs, endAt);
}

/**
 * The answer for a task stopped at its deadline (`taskDeadline`): a timeout that says which end
 * came first, its own timeout or the invocation's (then with `invocationMs`, the time the
 * invocation had in all, so that the message names the function's timeout and the fix).
 */
function timeoutError(fn: string, taskId: string, timeoutMs: number, startedAt: number, endAt: number, invocationMs: number | undefined): TaskTimeoutError {
  return new TaskTimeoutError(fn, taskId, timeoutMs, undefined, false, endAt < startedAt + timeoutMs ? invocationMs : undefined);
}

/** An error's message and stack are clipped to this many characters each in an answer. */
const MAX_ERROR_TEXT = 64 * 1024;

function taskField(event: unknown, field: 'taskId' | 'fn'): string {
  const task = (event as { task?: unknown } | null)?.task;
  if (typeof task !== 'object' || task === null || !Object.hasOwn(task, field)) return '?';
  const v = (task as Record<string, unknown>)[field];
  return typeof v === 'string' ? v.slice(0, 256) : '?';
}

/**
 * The worker's S3 store, built on its first use. The AWS SDK is most of what loading the bundle
 * costs (its clients, its HTTP stack), in the sandbox and again in its task thread, and that is
 * INIT time, which Lambda bills; a task whose values travel inline never touches the store. So
 * the SDK's modules are imported here, not at the top: esbuild keeps them in the one bundle
 * file and evaluates them at the first import(). The first read or write of a sandbox (or a
 * task that starts tasks) pays that evaluation instead.
 */
function storeOf(cfg: WorkerEnv): ObjectStore {
  let made: Promise<S3Store> | undefined;
  const s3 = () =>
    (made ??= Promise.all([import('./clients.js'), import('./s3-store.js')]).then(
      ([c, s]) =>
        new s.S3Store(c.makeS3Client({ region: cfg.region, endpoint: cfg.s3Endpoint, maxSockets: 64, forcePathStyle: cfg.s3Endpoint !== undefined }), cfg.bucket, {
          multipartThresholdBytes: cfg.multipartThresholdBytes,
        }),
    ));
  return {
    put: async (key, bytes) => (await s3()).put(key, bytes),
    get: async (key) => (await s3()).get(key),
    create: async (key, bytes) => (await s3()).create(key, bytes),
    delete: async (keys) => (await s3()).delete(keys),
    deletePrefix: async (prefix) => (await s3()).deletePrefix(prefix),
  };
}

/** The Lambda client for tasks that start tasks: built on first use in this thread (see storeOf), kept for warm invocations. */
let lambdaClient: Promise<LambdaClient> | undefined;
function lambdaOf(cfg: WorkerEnv): Promise<LambdaClient> {
  lambdaClient ??= import('./clients.js').then((c) => c.makeLambdaClient({ region: cfg.region, endpoint: cfg.lambdaEndpoint, maxSockets: 64 }));
  return lambdaClient;
}

function context(cfg: WorkerEnv, store: ObjectStore, nest: NestLimits | undefined, maxInlineBytes = LAMBDA_MAX_INLINE_BYTES) {
  const session: SessionFactory | undefined = nest && ((env) => nestedSession(env, nest, cfg, store));
  return { store, keyPrefix: cfg.keyPrefix, maxInlineBytes, session };
}

// --- the task thread -------------------------------------------------------------------------

interface RunMessage {
  kind: 'run';
  task: unknown;
  /** The job's limits for the tasks this task starts. */
  nest?: NestLimits;
  /** Largest result answered inline (what is left of the answer's room, in a batch). */
  maxInline?: number;
}
interface DoneMessage {
  kind: 'done';
  result: ResultEnvelope;
}
/**
 * A batch's tasks, sent to the task thread in one message: it runs them one after another and
 * writes which task runs since when, and each finished task's answer, into the thread's answer
 * log (answer-log.ts; one per thread, made with it, passed in its workerData), so the handler
 * can stop a task at its deadline and still has every finished task's answer when the thread
 * is stopped or crashes; it posts one message when the batch is done.
 */
interface BatchRunMessage {
  kind: 'batch';
  /** The tasks as the batch request has them: without the fields `shared` gives (the thread expands each as it starts it). */
  tasks: Array<{ task: unknown; timeoutMs: number; after?: string[] }>;
  shared?: Pick<BatchShared, 'task' | 'resultKeyPrefix'>;
  nest?: NestLimits;
  /** Date.now() after which no task but the first starts (the batch overran), and by which every started task could reach its timeout. */
  startBy: number;
  endBy: number;
  /** Bytes the answer may still take. */
  room: number;
}
/** An answer the log had no room for (text beyond ASCII can take more bytes than counted): sent as a message. */
interface TaskDoneMessage {
  kind: 'taskDone';
  pos: number;
  /** The result envelope in wire form. */
  result: Record<string, unknown>;
}
interface BatchDoneMessage {
  kind: 'batchDone';
}

const THREAD_MARK = 'volley-task-thread';

interface ThreadData {
  mark: typeof THREAD_MARK;
  /** The thread's answer log (answer-log.ts), sized for the largest batch and answer: a batch writes from its start, so the pages a small batch does not reach are never touched. */
  log: SharedArrayBuffer;
}

/**
 * Serves tasks when this module runs as a task thread; does nothing elsewhere. The bundle's
 * entry calls it after every task module has registered its tasks.
 */
function inTaskThread(): boolean {
  return !isMainThread && (workerData as ThreadData | null)?.mark === THREAD_MARK;
}

export function serveTaskThread(): void {
  if (!inTaskThread()) return;
  const cfg = readWorkerEnv(process.env);
  const store = storeOf(cfg);
  const port = parentPort!;
  // A task sent alone marks its start in the log too: its timeout counts from then (TaskThreads.run).
  const log = new AnswerLogWriter((workerData as ThreadData).log);
  port.on('message', (m: RunMessage | BatchRunMessage) => {
    if (m.kind === 'batch') {
      void runBatchHere(m, (workerData as ThreadData).log, cfg, store, port);
      return;
    }
    const taskId = taskField(m, 'taskId');
    let result: Promise<ResultEnvelope>;
    log.start(0, Date.now());
    try {
      result = executeTask(fromWire(m.task), context(cfg, store, m.nest, m.maxInline));
    } catch (err) {
      result = Promise.resolve(errorResult(taskId, err, 'infrastructure'));
    }
    result
      .catch((err: unknown) => errorResult(taskId, err, 'infrastructure'))
      .then((r) => {
        log.idle();
        port.postMessage({ kind: 'done', result: r } satisfies DoneMessage);
      });
  });
}

/**
 * The task thread's side of a batch (see BatchRunMessage). A task not started (past the batch's
 * time or room, or a follower whose producers did not succeed) has no answer in the log: the
 * handler answers it NotStarted.
 */
async function runBatchHere(m: BatchRunMessage, buffer: SharedArrayBuffer, cfg: WorkerEnv, store: ObjectStore, port: NonNullable<typeof parentPort>): Promise<void> {
  const log = new AnswerLogWriter(buffer);
  let ctx = context(cfg, store, m.nest);
  let used = 0;
  // Earlier tasks' answers, for followers (kept only when the batch has any).
  const answers = m.tasks.some((t) => t.after !== undefined) ? new Map<string, Record<string, unknown>>() : undefined;
  for (let k = 0; k < m.tasks.length; k++) {
    const t = m.tasks[k]!;
    const taskId = taskField(t, 'taskId');
    const now = Date.now();
    const room = m.room - used;
    const task = answers ? follow(expandTask(t.task, m.shared), t.after, answers) : expandTask(t.task, m.shared);
    if (task === undefined || (k > 0 && (now > m.startBy || now + t.timeoutMs > m.endBy || room < MIN_ANSWER_ROOM))) continue;
    log.start(k, now);
    let r: ResultEnvelope;
    try {
      const maxInline = Math.max(0, Math.min(LAMBDA_MAX_INLINE_BYTES, Math.floor(((room - MIN_ANSWER_ROOM) * 3) / 4)));
      // The same context while the room for answers allows the most inline (nearly always): not a copy per task.
      if (ctx.maxInlineBytes !== maxInline) ctx = { ...ctx, maxInlineBytes: maxInline };
      // The envelope is this thread's own (the message's, or expandTask's or follow's copy): its bytes are decoded in place.
      r = await executeTask(fromWireParsed(task), ctx);
    } catch (err) {
      r = errorResult(taskId, err, 'infrastructure');
    }
    r.timing = microseconds(r.timing);
    const wire = toWire(fitAnswer(r)) as Record<string, unknown>;
    answers?.set(taskId, wire);
    const json = JSON.stringify(wire);
    const size = log.append(k, json);
    if (size >= 0) used += size;
    else {
      used += Buffer.byteLength(json);
      port.postMessage({ kind: 'taskDone', pos: k, result: wire } satisfies TaskDoneMessage);
    }
    log.idle();
  }
  port.postMessage({ kind: 'batchDone' } satisfies BatchDoneMessage);
}

/**
 * A task's times to the microsecond: what they mean, in a quarter of the characters
 * (0.023391000000628992 is 0.023), which the answer and the driver then carry and parse.
 */
function microseconds(t: Timing): Timing {
  const us = (ms: number) => Math.round(ms * 1000) / 1000;
  const out: Timing = { fetchMs: us(t.fetchMs), runMs: us(t.runMs), storeMs: us(t.storeMs) };
  if (t.startedAt !== undefined) out.startedAt = us(t.startedAt);
  return out;
}

/**
 * A task of a batch with the arguments it takes from earlier tasks of the batch (`after`, a
 * follower) filled from their answers (`answers`, by task id, in wire form): exactly what those
 * tasks answer the driver, an inline value or a stored object's key. Undefined when one of them
 * did not succeed with a value holding no refs (failed, timed out, not started): the follower
 * is not started, and the driver dispatches it once its arguments are ready.
 */
function follow(task: unknown, after: readonly string[] | undefined, answers: ReadonlyMap<string, Record<string, unknown>>): unknown {
  if (after === undefined) return task;
  const t = task as Record<string, unknown>;
  const deps: Record<string, unknown> = { ...(t.deps as Record<string, unknown>) };
  for (const id of after) {
    const r = answers.get(id);
    let payload: Record<string, unknown>;
    if (r?.kind === 'value' && r.refs === undefined) payload = { kind: 'inline', bytes: r.bytes };
    else if (r?.kind === 'stored' && r.refs === undefined) payload = { kind: 'stored', key: r.key, size: r.size };
    else return undefined;
    // An own data property whatever the id (validated by the wire format; never a prototype).
    Object.defineProperty(deps, id, { value: payload, enumerable: true, writable: true, configurable: true });
  }
  return { ...t, deps };
}

/** Idle task threads; one runs one task at a time, so concurrent invocations each get one. */
class TaskThreads {
  private readonly idle: Worker[] = [];
  private readonly logs = new WeakMap<Worker, SharedArrayBuffer>();
  constructor(private readonly entry: URL) {}

  /** Starts a thread ahead of the first task (module loading is the cold start). */
  warm(): void {
    if (this.idle.length === 0) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    const log = new SharedArrayBuffer(answerLogBytes(BATCH_ANSWER_LIMIT, MAX_BATCH_REQUEST_TASKS));
    const w = new Worker(this.entry, { workerData: { mark: THREAD_MARK, log } satisfies ThreadData });
    this.logs.set(w, log);
    w.unref();
    return w;
  }

  /**
   * Listens to a task thread: its messages, and its failure or exit, which `onCrash` gets as
   * the crash error to answer the running task with. Returns `release(reuse)`: stops listening,
   * then keeps the thread for the next task or terminates it.
   */
  private watch<M>(w: Worker, onMessage: (m: M) => void, onCrash: (crash: (fn: string, taskId: string) => WorkerCrashedError) => void): (reuse: boolean) => void {
    const onError = (err: Error) => onCrash((fn, taskId) => new WorkerCrashedError(fn, taskId, `the task thread failed: ${err.message}`, { cause: err }));
    const onExit = (code: number) => onCrash((fn, taskId) => new WorkerCrashedError(fn, taskId, `the task thread exited with code ${code} (process.exit in the task?)`));
    w.on('message', onMessage);
    w.on('error', onError);
    w.on('exit', onExit);
    return (reuse) => {
      w.off('message', onMessage);
      w.off('error', onError);
      w.off('exit', onExit);
      if (reuse) this.idle.push(w);
      else void w.terminate();
    };
  }

  /**
   * Runs the task (in wire form) on a thread; `timeoutMs` after the task started there (as a
   * batch's task: a cold thread's start is not the task's time), or at the invocation's end
   * (`endAt`, Date.now() time) if that comes first, even before it started, the thread is
   * terminated and the answer is a timeout. A thread that exits or fails is answered as a crash.
   */
  run(task: unknown, endAt: number, fn: string, taskId: string, timeoutMs: number, nest: NestLimits | undefined, maxInline?: number, invocationMs?: number): Promise<ResultEnvelope> {
    const w = this.idle.pop() ?? this.spawn();
    // The thread is idle: the log says when the task starts.
    const log = new AnswerLogReader(this.logs.get(w)!);
    return new Promise<ResultEnvelope>((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (r: ResultEnvelope, reuse: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        release(reuse);
        resolve(r);
      };
      // Looks when the deadline would be were the task started now, then from its start: it is
      // never stopped before its timeout from its start, nor after the invocation's end.
      const check = () => {
        const now = Date.now();
        const since = log.running()?.since ?? now;
        const left = taskDeadline(since, timeoutMs, endAt) - now;
        if (left <= 0) finish(errorResult(taskId, timeoutError(fn, taskId, timeoutMs, since, endAt, invocationMs), 'infrastructure'), false);
        else timer = setTimeout(check, Math.max(1, left));
      };
      const release = this.watch<DoneMessage>(
        w,
        (m) => finish(m.result, true),
        (crash) => finish(errorResult(taskId, crash(fn, taskId), 'infrastructure'), false),
      );
      w.postMessage({ kind: 'run', task, ...(nest ? { nest } : {}), ...(maxInline !== undefined ? { maxInline } : {}) } satisfies RunMessage);
      check();
    });
  }

  /**
   * Runs a batch's tasks on one thread, one after another; resolves with each task's answer in
   * wire form, by position. A task past its timeout (`timeoutMs`, from when it started) is
   * stopped with the thread and answered as a timeout; a thread that exits or fails answers its
   * running task as a crash. Either way the tasks that finished before keep their answers (the
   * thread wrote them to the shared log as it went), and the tasks after it are answered
   * NotStarted (the driver sends them again), since the thread that would run them is gone.
   * At the invocation's end (`endAt`, Date.now() time) the running task is stopped likewise,
   * and a thread that has not started the first task by then (a cold start) is stopped with
   * every task answered NotStarted.
   */
  runBatch(
    tasks: Array<{ task: unknown; timeoutMs: number; after?: string[] }>,
    o: Omit<BatchRunMessage, 'kind' | 'tasks'>,
    endAt = Number.POSITIVE_INFINITY,
    invocationMs?: number,
  ): Promise<Array<Record<string, unknown>>> {
    const w = this.idle.pop() ?? this.spawn();
    // The thread is idle: its log is emptied for this batch.
    const log = new AnswerLogReader(this.logs.get(w)!);
    const out: Array<Record<string, unknown> | undefined> = new Array(tasks.length).fill(undefined);
    const shortest = Math.min(...tasks.map((t) => t.timeoutMs));
    return new Promise((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      /** Ends the batch: `stopped` says which task was running when the thread was stopped or died, and what to answer it. */
      const finish = (reuse: boolean, stopped?: { pos: number | undefined; error: (fn: string, taskId: string, timeoutMs: number) => Error }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        release(reuse);
        let lost: unknown;
        try {
          for (const [pos, answer] of log.answers(tasks.length)) out[pos] = answer;
        } catch (err) {
          lost = err;
        }
        for (let k = 0; k < tasks.length; k++) {
          if (out[k]) continue;
          const taskId = taskField(tasks[k], 'taskId');
          // fn, as taskId, is never among a batch's shared fields (wire.ts SHARED_TASK_FIELDS): the item has it.
          const fail = lost !== undefined ? () => lost : stopped && k === stopped.pos ? () => stopped.error(taskField(tasks[k], 'fn'), taskId, tasks[k]!.timeoutMs) : undefined;
          out[k] = fail ? (toWire(errorResult(taskId, fail(), 'infrastructure')) as Record<string, unknown>) : ({ v: PROTOCOL_VERSION, kind: 'notStarted', taskId } satisfies NotStarted);
        }
        resolve(out as Array<Record<string, unknown>>);
      };
      // The running task's deadline, from when it started. Look again by then, and within the
      // shortest limit whatever runs: a task that starts after this look (the running one may
      // end at once) is seen before its own deadline, and given its whole limit from its start
      // (never early). Waiting for the running task's deadline alone would let a task with a
      // short limit that follows one with a long limit run on past its own.
      const check = () => {
        const now = Date.now();
        const running = log.running();
        if (!running) {
          if (now >= endAt) finish(false);
          else timer = setTimeout(check, Math.max(1, Math.min(shortest, endAt - now)));
          return;
        }
        const left = taskDeadline(running.since, tasks[running.pos]!.timeoutMs, endAt) - now;
        if (left <= 0) {
          finish(false, { pos: running.pos, error: (fn, taskId, timeoutMs) => timeoutError(fn, taskId, timeoutMs, running.since, endAt, invocationMs) });
          return;
        }
        timer = setTimeout(check, Math.max(1, Math.min(left, shortest)));
      };
      const release = this.watch<TaskDoneMessage | BatchDoneMessage>(
        w,
        (m) => {
          if (m.kind === 'batchDone') finish(true);
          else if (Number.isInteger(m.pos) && m.pos >= 0 && m.pos < tasks.length) out[m.pos] = m.result;
        },
        (crash) => finish(false, { pos: log.running()?.pos, error: crash }),
      );
      w.postMessage({ kind: 'batch', tasks: tasks.map((t) => ({ task: t.task, timeoutMs: t.timeoutMs, ...(t.after ? { after: t.after } : {}) })), ...o } satisfies BatchRunMessage);
      check();
    });
  }
}

// --- the handler -----------------------------------------------------------------------------

/** Keeps an answer under Lambda's response limit: an error's text is clipped. */
function fitAnswer(result: ResultEnvelope): ResultEnvelope {
  if (result.kind !== 'error') return result;
  const e = result.error;
  const clip = (t: string | undefined) => (t !== undefined && t.length > MAX_ERROR_TEXT ? `${t.slice(0, MAX_ERROR_TEXT)} ... (${t.length - MAX_ERROR_TEXT} more characters clipped)` : t);
  if ((e.message?.length ?? 0) <= MAX_ERROR_TEXT && (e.stack?.length ?? 0) <= MAX_ERROR_TEXT && (e.name?.length ?? 0) <= 256) return result;
  return { ...result, error: { ...e, name: e.name.slice(0, 256), message: clip(e.message)!, ...(e.stack !== undefined ? { stack: clip(e.stack) } : {}) } };
}

/**
 * The session of a running task on Lambda: a Runtime inside the invocation that invokes this
 * same function and uses the same bucket, under the job's prefix and limits, so the tasks a
 * task starts need no way back into the driver. Its ids are made under the task's id; when the
 * task finishes it stops (calls still running are abandoned, nothing is deleted: what the
 * result holds belongs to the driver now, the rest goes with the job's prefix at shutdown).
 */
function nestedSession(env: TaskEnvelope, nest: NestLimits, cfg: WorkerEnv, store: ObjectStore): TaskSession {
  const functionName = cfg.functionName;
  if (!functionName) {
    throw new ConfigError('this worker does not know its own function name (AWS_LAMBDA_FUNCTION_NAME), which a task that starts tasks invokes; run it on Lambda or set the variable');
  }
  const a = optionTable.aws;
  // The worker role may read and write objects, not delete them (serverless.yml): nothing is freed from here; the driver's shutdown removes the job's prefix.
  const objects: ObjectStore = {
    put: (key, bytes) => store.put(key, bytes),
    get: (key) => store.get(key),
    deletePrefix: () => Promise.reject(new ConfigError("a task cannot remove the job's objects: the driver does at shutdown")),
  };
  // The Lambda invoker and its client are loaded when the task first starts a task (see storeOf); the runtime waits for them.
  const backend: Promise<Backend> = Promise.all([lambdaOf(cfg), import('./lambda-invoker.js')]).then(([client, { LambdaInvoker }]) => {
    const invoker = new LambdaInvoker(client, objects, {
      functionName,
      invokeGraceMs: a.invokeGraceMs.default,
      baseDelayMs: a.throttleBaseDelayMs.default,
      maxDelayMs: a.throttleMaxDelayMs.default,
      giveUpMs: a.throttleGiveUpMs.default,
      ownsClient: false,
      nest,
    });
    return { name: 'lambda-task', invoker, store: objects, maxConcurrency: nest.maxConcurrency, keyPrefix: cfg.keyPrefix, payloadLimitBytes: invoker.payloadLimitBytes };
  });
  const rt = new Runtime(
    {
      target: 'local',
      jobId: env.job.slice(0, env.job.indexOf('/')),
      inlineThresholdBytes: env.inlineLimit,
      maxConcurrency: nest.maxConcurrency,
      taskTimeoutMs: nest.taskTimeoutMs,
      taskMemoryMB: nest.taskMemoryMB,
      maxTaskDepth: nest.maxTaskDepth,
    },
    { backend, nest: { idPrefix: childIdPrefix(env), depth: env.depth ?? 0, runId: env.job.slice(env.job.indexOf('/') + 1) } },
  );
  return rt as unknown as TaskSession;
}

/**
 * Makes the handler. The environment is read on the first invocation, the S3 client built at
 * the store's first use (see storeOf), and both kept for warm ones; they live in this closure,
 * not in module state.
 *
 * @param options - or, as before, the store factory alone.
 */
export function createHandler(env: NodeJS.ProcessEnv = process.env, options: HandlerOptions | ((cfg: WorkerEnv) => ObjectStore) = {}): Handler {
  const o: HandlerOptions = typeof options === 'function' ? { storeFor: options } : options;
  let setup: { cfg: WorkerEnv; store?: ObjectStore; threads?: TaskThreads } | undefined;
  // Reported once: only the sandbox's first invocation follows its INIT phase.
  let initMs = o.initMs !== undefined && Number.isFinite(o.initMs) && o.initMs >= 0 ? o.initMs : undefined;
  // The task thread loads the bundle (a cold start of its own): start it now, during the
  // sandbox's init phase, rather than at the first invocation. Never from a task thread itself.
  const early = o.taskThread && !o.storeFor && env.VOLLEY_TASK_THREAD !== 'off' && !inTaskThread() ? new TaskThreads(o.taskThread) : undefined;
  early?.warm();
  const init = () => {
    if (!setup) {
      const cfg = readWorkerEnv(env);
      if (o.taskThread && cfg.taskThread && !o.storeFor) {
        const threads = early ?? new TaskThreads(o.taskThread);
        threads.warm();
        setup = { cfg, threads };
      } else {
        // Tasks run on this thread, and serverless-offline may run two invocations in one thread
        // at once: each task's calls must reach its own session. (A task thread runs one task at
        // a time, like the embedded runtime's threads, and does without: it costs every promise.)
        useAsyncTaskScope();
        setup = { cfg, store: o.storeFor?.(cfg) ?? storeOf(cfg) };
      }
    }
    return setup;
  };

  const logsOf = (cfg: WorkerEnv, ctx: LambdaContextLike | undefined): string | undefined =>
    ctx?.logGroupName ? `CloudWatch log group ${ctx.logGroupName}${ctx.logStreamName ? `, stream ${ctx.logStreamName}` : ''}${ctx.awsRequestId ? `, request id ${ctx.awsRequestId}` : ''}` : cfg.logs;
  const checkMemory = (cfg: WorkerEnv, memoryMB: number) => {
    if (cfg.memoryMB !== undefined && memoryMB > cfg.memoryMB) {
      throw new ConfigError(
        `the task asked for ${memoryMB} MB but Lambda function ${cfg.functionName ?? '(worker)'} has ${cfg.memoryMB} MB; ` +
          `deploy it with more (npx volley deploy --memory ${memoryMB}) or lower the task's memoryMB`,
      );
    }
  };
  // Who ran it: the sandbox (one log stream per sandbox), its memory and architecture, for
  // the driver's timeline and cost; the sandbox's INIT time with its first answer only.
  const workerOf = (ctx: LambdaContextLike | undefined) => {
    const w = {
      id: ctx?.logStreamName ?? env.AWS_LAMBDA_LOG_STREAM_NAME ?? `process-${process.pid}`,
      memoryMB: setup?.cfg.memoryMB,
      arch: process.arch === 'arm64' ? ('arm64' as const) : ('x86_64' as const),
      ...(initMs !== undefined ? { initMs } : {}),
    };
    initMs = undefined;
    return w;
  };

  /**
   * Runs one task (in wire form) to its deadline (see `taskDeadline`; `endAt` is the invocation's
   * end, `invocationMs` the time it had in all), on the task thread or this one.
   */
  const runTask = async (
    s: NonNullable<typeof setup>,
    item: { task: unknown; timeoutMs: number; memoryMB: number },
    nest: NestLimits | undefined,
    endAt: number,
    maxInline: number,
    invocationMs: number | undefined,
  ) => {
    const fn = taskField(item, 'fn');
    const taskId = taskField(item, 'taskId');
    checkMemory(s.cfg, item.memoryMB);
    if (s.threads) return s.threads.run(item.task, endAt, fn, taskId, item.timeoutMs, nest, maxInline, invocationMs);
    // On this thread the task starts now.
    const now = Date.now();
    const deadlineMs = Math.max(0, taskDeadline(now, item.timeoutMs, endAt) - now);
    let timer: NodeJS.Timeout | undefined;
    let running: RunningTask | undefined;
    const timedOut = new Promise<ResultEnvelope>((resolve) => {
      timer = setTimeout(() => {
        const err = timeoutError(fn, taskId, item.timeoutMs, now, endAt, invocationMs);
        // The task's signal tells it to stop: the invocation is billed until it returns.
        running?.abort(err);
        resolve(errorResult(taskId, err, 'infrastructure'));
      }, deadlineMs);
    });
    try {
      return await Promise.race([executeTask(fromWire(item.task), { ...context(s.cfg, s.store!, nest, maxInline), onStart: (t) => (running = t) }), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };

  /**
   * Several tasks in one invocation: run one after another, each to its own deadline, each
   * answered on its own (a failing task fails alone; a task thread that dies is replaced for
   * the next). A task that could not run to its timeout within the invocation's budget (or the
   * sandbox's remaining time), whose answer might not fit the response any more, or that comes
   * after the batch overran (batch-policy.ts, BATCH_OVERRUN_MS), is not started and answered so: the driver
   * sends it again. A follower (`after`) takes the answers of earlier tasks of the batch as its
   * arguments (`follow`); when one of them did not succeed, it is not started either.
   */
  const runBatch = async (event: unknown, ctx: LambdaContextLike | undefined): Promise<LambdaResponse> => {
    const t0 = performance.now();
    // The invocation's time in all, as it began (the function's timeout): a timeout's message names it.
    const invocationMs = ctx?.getRemainingTimeInMillis?.();
    let s: NonNullable<typeof setup>;
    let req: LambdaBatchRequest;
    try {
      s = init();
      req = validateBatchRequest(event);
    } catch (err) {
      // A bad batch or a misconfigured worker: one error answer, which the driver gives every task of the batch.
      const out = toWire(fitAnswer(errorResult('?', err, 'infrastructure'))) as LambdaResponse;
      out.worker = workerOf(ctx);
      return out;
    }
    const logs = logsOf(s.cfg, ctx);
    const results: unknown[] = [];
    let answerBytes = 1024;
    if (s.threads) {
      // One message to the task thread for the whole batch; a task the worker refuses (memory) is answered here.
      const remaining = ctx?.getRemainingTimeInMillis?.();
      const now = Date.now();
      const lambdaEnd = invocationEnd(remaining, now);
      const run: Array<{ task: unknown; timeoutMs: number; after?: string[] }> = [];
      const at: number[] = [];
      const shared = req.shared;
      req.tasks.forEach((item, i) => {
        // Validated: each is in the item or in shared.
        const timeoutMs = (item.timeoutMs ?? shared?.timeoutMs) as number;
        try {
          checkMemory(s.cfg, (item.memoryMB ?? shared?.memoryMB) as number);
          at.push(i);
          // Each task's deadline is its timeout from its start or the invocation's end, whichever comes first (runBatch).
          run.push({ task: item.task, timeoutMs, ...(item.after ? { after: item.after } : {}) });
        } catch (err) {
          const wire = toWire(fitAnswer(errorResult(taskField(item, 'taskId'), err, 'infrastructure'))) as Record<string, unknown>;
          answerBytes += wireSize(wire);
          results[i] = wire;
        }
      });
      if (run.length > 0) {
        const answers = await s.threads.runBatch(
          run,
          {
            nest: req.nest,
            ...(shared && (shared.task || shared.resultKeyPrefix) ? { shared: { task: shared.task, resultKeyPrefix: shared.resultKeyPrefix } } : {}),
            startBy: now + BATCH_OVERRUN_MS,
            endBy: Math.min(now + req.budgetMs, lambdaEnd),
            room: BATCH_ANSWER_LIMIT - answerBytes,
          },
          lambdaEnd,
          invocationMs,
        );
        answers.forEach((a, k) => {
          results[at[k]!] = a;
        });
      }
      const out: LambdaResponse = { v: PROTOCOL_VERSION, kind: 'batch', results };
      // The batch names its worker once (each answer without its own takes it); the sandbox's INIT time goes with the
      // first answer only (cost bills it once).
      const first = (results as Array<Record<string, unknown>>).find((r) => r.kind !== 'notStarted');
      if (first) {
        const { initMs, ...worker } = workerOf(ctx);
        if (initMs !== undefined) first.worker = { ...worker, initMs };
        out.worker = worker;
      }
      if (logs) out.logs = logs;
      return out;
    }
    const answers = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < req.tasks.length; i++) {
      const item = expandBatchItem(req.tasks[i]!, req.shared);
      const taskId = taskField(item, 'taskId');
      const remaining = ctx?.getRemainingTimeInMillis?.();
      const room = BATCH_ANSWER_LIMIT - answerBytes;
      const elapsed = performance.now() - t0;
      const task = follow(item.task, item.after, answers);
      const fits =
        i === 0 ||
        (elapsed <= BATCH_OVERRUN_MS && elapsed + item.timeoutMs <= req.budgetMs && (remaining === undefined || remaining - LAMBDA_TIMEOUT_MARGIN_MS >= item.timeoutMs) && room >= MIN_ANSWER_ROOM);
      if (!fits || task === undefined) {
        results.push({ v: PROTOCOL_VERSION, kind: 'notStarted', taskId } satisfies NotStarted);
        continue;
      }
      let result: ResultEnvelope;
      try {
        const maxInline = Math.max(0, Math.min(LAMBDA_MAX_INLINE_BYTES, Math.floor(((room - MIN_ANSWER_ROOM) * 3) / 4)));
        result = await runTask(s, { ...item, task }, req.nest, invocationEnd(remaining, Date.now()), maxInline, invocationMs);
      } catch (err) {
        result = errorResult(taskId, err, 'infrastructure');
      }
      result.worker = workerOf(ctx);
      const wire = toWire(fitAnswer(result)) as Record<string, unknown>;
      answerBytes += wireSize(wire);
      answers.set(taskId, wire);
      results.push(wire);
    }
    const out: LambdaResponse = { v: PROTOCOL_VERSION, kind: 'batch', results };
    if (logs) out.logs = logs;
    return out;
  };

  return async (event, ctx) => {
    if (typeof event === 'object' && event !== null && (event as { kind?: unknown }).kind === 'batch') return runBatch(event, ctx);
    const taskId = taskField(event, 'taskId');
    let result: ResultEnvelope;
    let logs: string | undefined;
    try {
      const s = init();
      logs = logsOf(s.cfg, ctx);
      const req = validateLambdaRequest(event);
      // The task's timeout from its start, or the sandbox's remaining time when that ends first.
      const remaining = ctx?.getRemainingTimeInMillis?.();
      result = await runTask(s, req, req.nest, invocationEnd(remaining, Date.now()), LAMBDA_MAX_INLINE_BYTES, remaining);
    } catch (err) {
      // A bad event or a misconfigured worker: the task's failure, not a Lambda FunctionError.
      result = errorResult(taskId, err, 'infrastructure');
    }
    result.worker = workerOf(ctx);
    const out = toWire(fitAnswer(result)) as LambdaResponse;
    if (logs) out.logs = logs;
    return out;
  };
}

/** Most bytes of a batch's answer: Lambda's response limit, less room for the JSON around the results. */
const BATCH_ANSWER_LIMIT = LAMBDA_PAYLOAD_LIMIT - 64 * 1024;
/** A task of a batch starts only with this much room left in the answer (an error's clipped text fits in it). */
const MIN_ANSWER_ROOM = 256 * 1024;

/** About how many bytes a value in wire form takes as JSON (strings by length: ids, keys and base64 are ASCII). */
function wireSize(x: unknown): number {
  if (typeof x === 'string') return x.length + 2;
  if (Array.isArray(x)) return x.reduce((n: number, v) => n + wireSize(v) + 1, 2);
  if (typeof x === 'object' && x !== null) {
    let n = 2;
    for (const [k, v] of Object.entries(x)) n += k.length + 4 + wireSize(v);
    return n;
  }
  return 24;
}
