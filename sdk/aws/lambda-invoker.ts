/**
 * The invoker on Lambda: synchronous `InvokeCommand`s (RequestResponse), at most
 * `maxInvocations` at once, each carrying one task or a batch of short ones (batch-policy.ts
 * decides which share an invocation; the worker answers each task of a batch on its own, or
 * says it did not start it, and then it is sent again).
 *
 * - A user's exception comes back as a result value; `FunctionError`, a Lambda timeout or an
 *   out-of-memory kill are infrastructure faults, rejected as TaskError subclasses naming the
 *   function and its log group (with the request id to search for).
 * - A throttled call is retried with backoff (it never ran, so nothing is lost or duplicated).
 * - A follower (`InvokeOptions.after`, a task that takes the results of tasks handed over
 *   before it) goes in the invocation of its producers, after them; the worker fills its
 *   arguments from their results. One that cannot (its producers went in another invocation),
 *   or that the worker did not start, is handed back NOT_CHAINED to the orchestrator.
 * - The request never exceeds Lambda's 6 MB limit: the orchestrator fits envelopes to the
 *   limit this backend declares (envelope.ts); if the exact request is still too large, the
 *   same fitting moves more inline values to the store, through the orchestrator's `place`.
 */
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { isServerError, isTransientError } from '@smithy/core/retry';
import { NOT_CHAINED, type InvokeOptions, type Invoker, type ObjectStore } from '../backend.js';
import { TaskCancelledError, TaskError, TaskTimeoutError, ThrottledError, WorkerCrashedError, shutDownBeforeRun } from '../errors.js';
import { fitEnvelope, inlineBytes, type Place } from '../envelope.js';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope, type ResultEnvelope, type TaskEnvelope } from '../protocol.js';
import { retryThrottled, type Clock, type ThrottlePolicy } from './throttle.js';
import { BATCH_OVERRUN_MS, BatchPolicy, type BatchCandidate } from './batch-policy.js';
import { LAMBDA_MAX_TIMEOUT_MS } from '../options.js';
import { LAMBDA_PAYLOAD_LIMIT, SHARED_TASK_FIELDS, fromWireParsed, validateBatchResponse, type LambdaResponse, type NestLimits } from './wire.js';

export interface LambdaInvokerOptions extends ThrottlePolicy {
  functionName: string;
  /** Extra wait past a task's timeoutMs before the driver gives up on the call. */
  invokeGraceMs: number;
  /** Close the client on close() (true when volley built it). */
  ownsClient: boolean;
  /** Request payload limit; Lambda's is 6 MB. */
  payloadLimitBytes?: number;
  /** The job's prefix and limits, sent with each task for the tasks it starts. */
  nest?: NestLimits;
  /**
   * Most invocations in flight at once; tasks beyond them wait here, and short ones share
   * invocations (batch-policy.ts). Without it, every task is sent at once, alone.
   */
  maxInvocations?: number;
  clock?: Clock;
  /**
   * The batch policy's limits in place of its defaults (batch-policy.ts): for tests that assert
   * what batching guarantees, apart from the timings the policy learns from.
   * @internal
   */
  batchLimits?: ConstructorParameters<typeof BatchPolicy>[0];
}

/** Where a function's logs are: its CloudWatch log group, and the request id to search for. */
export function logLocation(functionName: string, requestId?: string): string {
  const name = functionName.includes(':function:') ? functionName.split(':function:')[1]!.split(':')[0]! : functionName;
  return `CloudWatch log group /aws/lambda/${name}${requestId ? `, request id ${requestId}` : ''}`;
}

/**
 * True when an invocation provably never reached the function: the connection was never made,
 * there were no credentials, or Lambda refused the request itself (a 4xx answer). A 5xx answer,
 * a reset connection or a timeout after sending leave the outcome unknown.
 */
export function notSent(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 400 && status < 500;
  if (e?.code && ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(e.code)) return true;
  return e?.name === 'CredentialsProviderError' || /without establishing a connection/i.test(e?.message ?? '');
}

/** A task's part of a request (single or batch): its envelope in wire form, timeout (whole ms, as the worker validates them), memory, and a follower's producers' results it takes. */
function itemJson(env: TaskEnvelope, options: InvokeOptions): string {
  return JSON.stringify({ task: toWire(env), timeoutMs: Math.ceil(options.timeoutMs), memoryMB: options.memoryMB, ...(options.after ? { after: options.after } : {}) });
}

const SHAREABLE = new Set(SHARED_TASK_FIELDS);

/** The last `shared` piece made (itemParts) and what it was made of: the tasks of one runtime usually have the same, and then share the string. */
interface SharedPiece {
  fields: unknown[];
  timeoutMs: number;
  memoryMB: number;
  prefix: string | undefined;
  json: string;
}

/**
 * A task's part of a batch request in two pieces (wire.ts, BatchShared): `shared`, the fields
 * every task of a runtime's batch usually has alike (job, module, inline limit, timeout,
 * memory, the result key's prefix), and `own`, the rest. A batch whose tasks all have the same
 * `shared` sends it once. `bound` is at least the length of the task's whole item
 * (`itemJson`), for the byte budget. Each piece is the JSON of its fields as toWire gives them;
 * `last` is the previous task's shared piece, whose string is kept when nothing in it changed.
 */
function itemParts(env: TaskEnvelope, options: InvokeOptions, last: SharedPiece | undefined): { own: string; shared: SharedPiece; bound: number } {
  const rec = env as unknown as Record<string, unknown>;
  const key = env.resultKey;
  const prefix = key.endsWith(env.taskId) && key.length > env.taskId.length ? key.slice(0, key.length - env.taskId.length) : undefined;
  // The task's own fields (the envelope's values, not copies), encoded by toWire and JSON.stringify in one flat string: a
  // string built field by field is a tree of pieces until it is joined into the request, and that tree outlived
  // collections of the young generation (more CPU on the collector's threads than the encoding saved).
  const task: Record<string, unknown> = {};
  for (const k of Object.keys(rec)) if (!SHAREABLE.has(k) && !(k === 'resultKey' && prefix !== undefined)) task[k] = rec[k];
  const own = JSON.stringify(options.after ? { task: toWire(task), after: options.after } : { task: toWire(task) });
  const timeoutMs = Math.ceil(options.timeoutMs);
  const fields = SHARED_TASK_FIELDS.map((f) => (Object.hasOwn(rec, f) ? rec[f] : undefined));
  let shared = last;
  if (!shared || shared.timeoutMs !== timeoutMs || shared.memoryMB !== options.memoryMB || shared.prefix !== prefix || fields.some((v, i) => v !== shared!.fields[i])) {
    const common: Record<string, unknown> = {};
    for (const k of Object.keys(rec)) if (SHAREABLE.has(k)) common[k] = rec[k];
    const json = JSON.stringify({ task: toWire(common), timeoutMs, memoryMB: options.memoryMB, ...(prefix ? { resultKeyPrefix: prefix } : {}) });
    shared = { fields, timeoutMs, memoryMB: options.memoryMB, prefix, json };
  }
  return { own, shared, bound: own.length + shared.json.length + env.taskId.length + 16 };
}

/** A task's measured time in its worker (fetch + run + store), for the batching policy. */
function spent(res: ResultEnvelope): number {
  return res.timing.fetchMs + res.timing.runMs + res.timing.storeMs;
}

/** Answers a task once: later answers (a cancelled task's, an abandoned call's) are ignored. */
function settle(p: Pending, err: Error | undefined, res?: ResultEnvelope): void {
  if (p.settled) return;
  p.settled = true;
  if (err) p.reject(err);
  else p.resolve(res!);
}

/** A fault a new attempt may not meet: 5xx, connection reset or refused, socket or request timeout (smithy's classification). */
export function isTransient(err: unknown): boolean {
  const e = err as Parameters<typeof isTransientError>[0];
  return typeof err === 'object' && err !== null && (isTransientError(e) || isServerError(e));
}

/** A task handed to the invoker: waiting for an invocation slot, or in an invocation. */
interface Pending extends BatchCandidate {
  env: TaskEnvelope;
  options: InvokeOptions;
  /** The task's part of a single request: `{"task":...,"timeoutMs":...,"memoryMB":...}` (made when first needed). */
  item?: string;
  /** Its part of a batch request, in two pieces (itemParts); absent where the invoker does not batch. */
  parts?: { own: string; shared: string };
  resolve: (r: ResultEnvelope) => void;
  reject: (e: Error) => void;
  /** Answered (or failed, or cancelled): a late answer is ignored. */
  settled: boolean;
  /** The invocation's deadline once it is sent. */
  deadline?: AbortController;
  /** A follower: the ids of its producers, which must go before it in its invocation (`InvokeOptions.after`). */
  after?: readonly string[];
}

export class LambdaInvoker implements Invoker {
  /** The request payload limit this invoker keeps to (the backend declares it). */
  readonly payloadLimitBytes: number;
  private readonly limit: number;
  private closed = false;
  private readonly inflight = new Map<AbortController, Promise<unknown>>();
  /** Tasks in invocations, by task id, for cancel(). */
  private readonly byTask = new Map<string, Pending>();
  /** Tasks waiting for an invocation slot (from `head` on). */
  private queue: Pending[] = [];
  private head = 0;
  private flushing = false;
  /** Invocations in flight (at most `maxInvocations`). */
  private active = 0;
  private readonly maxInvocations: number;
  private readonly policy: BatchPolicy;
  /** The shared piece of the last task encoded for a batch (itemParts). */
  private lastShared?: SharedPiece;
  /** Invocations sent, and how many of them carried more than one task. */
  private readonly counts = { invocations: 0, batches: 0, tasks: 0 };

  constructor(
    readonly client: LambdaClient,
    private readonly store: ObjectStore,
    private readonly options: LambdaInvokerOptions,
  ) {
    // Headroom for the JSON around the envelope and for the service's own accounting.
    this.payloadLimitBytes = options.payloadLimitBytes ?? LAMBDA_PAYLOAD_LIMIT;
    this.limit = this.payloadLimitBytes - 16 * 1024;
    this.maxInvocations = options.maxInvocations ?? Number.POSITIVE_INFINITY;
    this.policy = new BatchPolicy(options.batchLimits);
  }

  /** How many tasks the orchestrator may keep in flight per invocation slot: the largest batch the policy allows now. */
  tasksPerSlot(): number {
    return Number.isFinite(this.maxInvocations) ? this.policy.tasksPerSlot() : 1;
  }

  /**
   * Tasks of `fn` may share an invocation with the tasks they depend on: this invoker batches
   * (it has a limit of invocations) and has measured `fn` short. The worker runs a batch in
   * order and fills a follower's arguments from its producers' results (handler.ts).
   */
  chains(fn: string): boolean {
    return Number.isFinite(this.maxInvocations) && this.policy.isShort(fn);
  }

  /** Invocations sent so far, how many of them were batches, and the tasks they carried. */
  invocationCounts(): { invocations: number; batches: number; tasks: number } {
    return { ...this.counts };
  }

  async invoke(env: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope> {
    if (this.closed) throw shutDownBeforeRun(env);
    // A task that may share an invocation is encoded in the two pieces of a batch (the single request is made from the
    // envelope if it goes alone); one that never does, as a single request.
    const batching = Number.isFinite(this.maxInvocations);
    let item: string | undefined;
    let parts: Pending['parts'];
    let bytes: number;
    if (batching) {
      ({ parts, bound: bytes } = this.batchParts(env, options));
    } else {
      item = itemJson(env, options);
      bytes = item.length;
    }
    if (bytes > this.limit) {
      ({ env, item } = await this.fitPayload(env, options));
      bytes = item.length;
      if (batching) parts = this.batchParts(env, options).parts;
    }
    if (this.closed) throw shutDownBeforeRun(env);
    return new Promise<ResultEnvelope>((resolve, reject) => {
      const p: Pending = {
        env,
        options,
        ...(item !== undefined ? { item } : {}),
        ...(parts !== undefined ? { parts } : {}),
        fn: env.fn,
        timeoutMs: options.timeoutMs,
        bytes: bytes + 1,
        batchable: options.affinity === undefined,
        resolve,
        reject,
        settled: false,
        after: options.after,
        id: env.taskId,
      };
      // Without a limit of invocations there is no batching: send at once (a follower cannot go with its producers).
      if (!Number.isFinite(this.maxInvocations)) {
        if (p.after) settle(p, NOT_CHAINED);
        else void this.send([p]);
      } else {
        this.queue.push(p);
        this.scheduleFlush();
      }
    });
  }

  /**
   * A task still waiting for an invocation slot never starts: it is failed at once. With
   * `force`, a task already sent is abandoned: its invoke() rejects with TaskCancelledError at
   * once and the invocation is left to finish on its own (the other tasks of its batch are not
   * affected). Lambda has no way to stop a running invocation, nor to reach one: a task sent in
   * a batch may still run (its answer is ignored), the same as a task sent alone. The function
   * runs on, and is billed, until it returns or reaches its timeout (at the task's timeoutMs the
   * handler terminates its task thread; a task run on the handler's own thread has its signal
   * aborted instead). Without `force`
   * there is nothing to send: the orchestrator ignores the answer.
   */
  cancel(taskId: string, force: boolean): void {
    for (let i = this.head; i < this.queue.length; i++) {
      const p = this.queue[i]!;
      if (p.env.taskId !== taskId) continue;
      this.queue.splice(i, 1);
      settle(p, new TaskCancelledError(p.env.fn, taskId, 'before it started'));
      return;
    }
    const p = this.byTask.get(taskId);
    if (force && p) settle(p, new TaskCancelledError(p.env.fn, taskId, 'and its worker stopped'));
  }

  /**
   * Abandons calls in flight (their tasks fail), fails the tasks still waiting for a slot, and
   * closes the client when volley built it (destroying its agent ends the connections still
   * waiting on Lambda).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(this.head)) settle(p, shutDownBeforeRun(p.env));
    this.queue = [];
    this.head = 0;
    const pending = [...this.inflight.values()];
    for (const c of this.inflight.keys()) c.abort(new Error('closed'));
    if (this.options.ownsClient) this.client.destroy();
    else await Promise.all(pending);
    // Let the invoke() continuations (which fail their tasks) run before the caller moves on.
    await new Promise((r) => setImmediate(r));
  }

  // --- internals ---------------------------------------------------------------------------

  /** Sends what is queued once the tasks handed over in this turn are all in (they may share invocations). */
  private scheduleFlush(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => {
      this.flushing = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.closed && this.active < this.maxInvocations && this.head < this.queue.length) {
      const n = this.policy.take(this.queue, this.head, this.maxInvocations - this.active, this.limit - 256);
      const batch = this.chained(this.queue.slice(this.head, this.head + n));
      this.head += n;
      if (batch.length > 0) void this.send(batch);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /**
   * Keeps the followers of a batch whose producers all go before them in it; the others are
   * handed back NOT_CHAINED at once (the orchestrator dispatches them once their arguments
   * are ready).
   */
  private chained(batch: Pending[]): Pending[] {
    if (!batch.some((p) => p.after)) return batch;
    const ids = new Set<string>();
    const kept: Pending[] = [];
    for (const p of batch) {
      if (p.after && !p.after.every((id) => ids.has(id))) {
        settle(p, NOT_CHAINED);
        continue;
      }
      ids.add(p.env.taskId);
      kept.push(p);
    }
    return kept;
  }

  /** Tasks a worker did not start go back to the front of the queue (they were not run). */
  private requeue(tasks: Pending[]): void {
    if (tasks.length === 0) return;
    this.queue.splice(this.head, 0, ...tasks);
    this.scheduleFlush();
  }

  /** One invocation carrying one task (the single request format) or several (a batch). */
  private async send(batch: Pending[]): Promise<void> {
    const fn = this.options.functionName;
    this.active++;
    this.counts.invocations++;
    this.counts.tasks += batch.length;
    if (batch.length > 1) this.counts.batches++;
    const nest = this.options.nest ? `"nest":${JSON.stringify(this.options.nest)},` : '';
    // The invocation's budget: every task may run to its own timeout; the worker starts none that could not.
    const budgetMs = Math.min(LAMBDA_MAX_TIMEOUT_MS, Math.ceil(Math.max(...batch.map((p) => p.options.timeoutMs))) + (batch.length > 1 ? BATCH_OVERRUN_MS : 0));
    const single = (p: Pending) => (p.item ??= itemJson(p.env, p.options));
    let text: string;
    if (batch.length === 1) text = `{"v":${PROTOCOL_VERSION},"kind":"invoke",${nest}${single(batch[0]!).slice(1)}`;
    else {
      // Tasks with the same shared piece (the usual case) send it once; otherwise each goes whole.
      const shared = batch[0]!.parts?.shared;
      const alike = shared !== undefined && batch.every((p) => p.parts?.shared === shared);
      text = alike
        ? `{"v":${PROTOCOL_VERSION},"kind":"batch",${nest}"budgetMs":${budgetMs},"shared":${shared},"tasks":[${batch.map((p) => p.parts!.own).join(',')}]}`
        : `{"v":${PROTOCOL_VERSION},"kind":"batch",${nest}"budgetMs":${budgetMs},"tasks":[${batch.map(single).join(',')}]}`;
    }
    const payload = Buffer.from(text);
    // No per-call AbortSignal: the SDK caches its middleware chain only for calls without
    // options (cacheMiddleware), worth ~20 % of the invoke rate. The deadline is a race instead;
    // close() destroys the client, which ends every call still in flight.
    const deadlineMs = budgetMs + this.options.invokeGraceMs;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('deadline')), deadlineMs);
    const call = retryThrottled(() => this.client.send(new InvokeCommand({ FunctionName: fn, InvocationType: 'RequestResponse', Payload: payload })), this.options, {
      signal: deadline.signal,
      clock: this.options.clock,
    });
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.set(deadline, settled);
    for (const p of batch) {
      p.deadline = deadline;
      this.byTask.set(p.env.taskId, p);
    }
    let out: InvokeCommandOutput | undefined;
    let failure: unknown;
    try {
      out = await Promise.race([call, new Promise<never>((_, reject) => deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason as Error), { once: true }))]);
    } catch (err) {
      failure = err;
    } finally {
      clearTimeout(timer);
      this.inflight.delete(deadline);
      for (const p of batch) if (this.byTask.get(p.env.taskId) === p) this.byTask.delete(p.env.taskId);
      this.active--;
    }
    if (out === undefined) {
      for (const p of batch) settle(p, p.after ? NOT_CHAINED : this.invokeFailure(p, failure, deadlineMs, deadline));
    } else if (batch.length === 1) {
      const p = batch[0]!;
      try {
        const res = this.readResponse(p.env, p.options, out);
        this.policy.record([{ fn: p.fn, ms: spent(res) }]);
        settle(p, undefined, res);
      } catch (err) {
        settle(p, err as Error);
      }
    } else {
      this.readBatch(batch, out);
    }
    if (!this.closed) this.flush();
  }

  /** The error of a task whose invocation brought no answer. */
  private invokeFailure(p: Pending, err: unknown, deadlineMs: number, deadline: AbortController): Error {
    const fn = this.options.functionName;
    const { env, options } = p;
    if (this.closed) {
      return new TaskError(`Task ${env.fn} (${env.taskId}) was abandoned: the runtime was shut down while it ran on Lambda function ${fn}`, {
        functionName: env.fn,
        taskId: env.taskId,
        fault: 'infrastructure',
        cause: err,
        code: 'SHUT_DOWN',
      });
    }
    if (deadline.signal.aborted) {
      // The call may have reached the function: it may have run, or still be running.
      return new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, `${logLocation(fn)} (no answer from Lambda function ${fn} within ${deadlineMs} ms)`, true);
    }
    if (err instanceof ThrottledError) {
      return new TaskError(
        `Task ${env.fn} (${env.taskId}) was not run: Lambda function ${fn} throttled it ${err.attempts} times over ${Math.round(err.elapsedMs / 1000)} s; ` +
          "lower init({ maxConcurrency }), or raise the function's reserved concurrency or the account's concurrency quota",
        { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'THROTTLED', retryable: true },
      );
    }
    const e = err as { name?: string; message?: string };
    const what = `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
    if (notSent(err)) {
      return new TaskError(
        `Task ${env.fn} (${env.taskId}) was not run: Lambda function ${fn} could not be invoked: ${what}` +
          (e?.name === 'ResourceNotFoundException' ? '; deploy the worker (npx volley deploy) or check init({ aws: { functionName } })' : ''),
        { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'INVOKE_FAILED', retryable: isTransient(err) },
      );
    }
    return new TaskError(
      `Task ${env.fn} (${env.taskId}): the outcome of its invocation on Lambda function ${fn} is unknown (${what}); ` +
        'the request may have reached the function, so the task may have run. If the task has retries left it runs again (the first committed result wins, so a second run cannot change it)',
      { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'INVOKE_FAILED', retryable: isTransient(err), logs: logLocation(fn) },
    );
  }

  /**
   * The answer to a batch. A FunctionError (the sandbox crashed, ran out of memory or hit
   * Lambda's timeout) fails every task of it as it would fail a task sent alone: none of their
   * results reached the driver. Otherwise each task gets its own result; the ones the worker
   * did not start go back to the queue, except followers, which go back to the orchestrator
   * (NOT_CHAINED), as they do whenever their batch fails as a whole.
   */
  private readBatch(batch: Pending[], out: InvokeCommandOutput): void {
    // A follower of a batch that failed as a whole was not run with its producers' results (or its outcome is unknown): it waits for its arguments in the orchestrator.
    const unchain = () => {
      for (const p of batch) if (p.after) settle(p, NOT_CHAINED);
    };
    if (out.FunctionError) {
      unchain();
      for (const p of batch) {
        try {
          this.readResponse(p.env, p.options, out);
        } catch (err) {
          settle(p, err as Error);
        }
      }
      return;
    }
    const fn = this.options.functionName;
    const requestId = out.$metadata.requestId;
    let results: unknown[];
    let logs: string | undefined;
    let worker: unknown;
    try {
      const parsed = JSON.parse(out.Payload ? Buffer.from(out.Payload).toString('utf8') : '') as unknown;
      if ((parsed as { kind?: unknown } | null)?.kind === 'error') {
        // The worker refused the batch as a whole (a malformed request, a misconfigured worker): every task fails with its error.
        const { logs: where, ...envelope } = parsed as LambdaResponse;
        const res = validateResultEnvelope(fromWire(envelope));
        unchain();
        for (const p of batch) settle(p, undefined, { ...res, taskId: p.env.taskId, ...(typeof where === 'string' ? { logs: where } : {}) } as ResultEnvelope);
        return;
      }
      const answer = validateBatchResponse(
        parsed,
        batch.map((p) => p.env.taskId),
      );
      results = answer.results;
      logs = answer.logs;
      worker = answer.worker;
    } catch (err) {
      unchain();
      for (const p of batch) {
        settle(
          p,
          new WorkerCrashedError(
            p.env.fn,
            p.env.taskId,
            `Lambda function ${fn} answered a batch with something that is not a volley batch result (${(err as Error).message}); deploy the worker from the same volley version as the driver`,
            { logs: logLocation(fn, requestId), cause: err },
          ),
        );
      }
      return;
    }
    const again: Pending[] = [];
    const runs: Array<{ fn: string; ms: number }> = [];
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const wire = results[i] as Record<string, unknown>;
      if (wire.kind === 'notStarted') {
        // A follower not started (its producer failed, was not started, or its result holds refs) waits for its arguments in the orchestrator.
        if (p.after) settle(p, NOT_CHAINED);
        else if (!p.settled) again.push(p);
        continue;
      }
      // A result without a worker of its own ran on the batch's (wire.ts, LambdaBatchResponse).
      if (worker !== undefined && wire.worker === undefined) wire.worker = worker;
      try {
        const res = this.interpret(p.env, p.options, wire, logs, requestId);
        runs.push({ fn: p.fn, ms: spent(res) });
        settle(p, undefined, res);
      } catch (err) {
        settle(p, err as Error);
      }
    }
    this.policy.record(runs);
    this.requeue(again);
  }

  private readResponse(env: TaskEnvelope, options: InvokeOptions, out: InvokeCommandOutput): ResultEnvelope {
    const fn = this.options.functionName;
    const requestId = out.$metadata.requestId;
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      let info: { errorType?: string; errorMessage?: string } = {};
      try {
        info = JSON.parse(text) as typeof info;
      } catch {
        info = { errorMessage: text };
      }
      const logs = logLocation(fn, requestId);
      const message = `${info.errorType ?? out.FunctionError}: ${info.errorMessage ?? '(no message)'}`;
      if (/Task timed out|Lambda timeout|Sandbox\.Timedout/i.test(`${info.errorType} ${info.errorMessage}`)) {
        // Lambda ended the invocation at the function's timeout ("Task timed out after 3.00 seconds"), whatever the task's own.
        const secs = /timed out after (\d+(?:\.\d+)?) seconds/i.exec(info.errorMessage ?? '')?.[1];
        const invocationMs = secs !== undefined && Number(secs) <= 900 ? Number(secs) * 1000 : undefined;
        throw new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, `${logs}; Lambda function ${fn} reported: ${message}`, false, invocationMs);
      }
      const oom = /OutOfMemory|out of memory|heap limit|signal: killed/i.test(`${info.errorType} ${info.errorMessage}`);
      throw new WorkerCrashedError(
        env.fn,
        env.taskId,
        oom
          ? `Lambda function ${fn} ran out of memory (${message}); give the task more with .options({ memoryMB }) and deploy the function with that much (npx volley deploy --memory <MB>)`
          : `Lambda function ${fn} returned FunctionError ${out.FunctionError}: ${message}`,
        { logs },
      );
    }
    let wire: LambdaResponse;
    try {
      wire = JSON.parse(text) as LambdaResponse;
      if (typeof wire !== 'object' || wire === null) throw new Error('the answer is not a JSON object');
    } catch (err) {
      throw new WorkerCrashedError(
        env.fn,
        env.taskId,
        `Lambda function ${fn} answered something that is not a volley result (${(err as Error).message}); deploy the worker from the same volley version as the driver`,
        { logs: logLocation(fn, requestId), cause: err },
      );
    }
    // `logs` is the transport's addition to the result envelope, not part of it.
    const { logs, ...envelope } = wire;
    return this.interpret(env, options, envelope, typeof logs === 'string' ? logs : undefined, requestId);
  }

  /** A batching task's two pieces (itemParts), reusing the last task's shared string when it is the same. */
  private batchParts(env: TaskEnvelope, options: InvokeOptions): { parts: NonNullable<Pending['parts']>; bound: number } {
    const made = itemParts(env, options, this.lastShared);
    this.lastShared = made.shared;
    return { parts: { own: made.own, shared: made.shared.json }, bound: made.bound };
  }

  /** One task's result envelope in wire form (as JSON.parse made it: it is decoded in place), validated; a timeout the worker reported becomes a TaskTimeoutError. */
  private interpret(env: TaskEnvelope, options: InvokeOptions, wire: unknown, logs: string | undefined, requestId: string | undefined): ResultEnvelope {
    const fn = this.options.functionName;
    let res: ResultEnvelope;
    try {
      // `wire` is JSON.parse's (readResponse, readBatch): decoded where it is.
      res = validateResultEnvelope(fromWireParsed(wire));
    } catch (err) {
      throw new WorkerCrashedError(
        env.fn,
        env.taskId,
        `Lambda function ${fn} answered something that is not a volley result (${(err as Error).message}); deploy the worker from the same volley version as the driver`,
        {
          logs: logLocation(fn, requestId),
          cause: err,
        },
      );
    }
    if (res.kind === 'error' && logs) res.logs ??= logs;
    if (res.kind === 'error' && res.fault === 'infrastructure' && res.error.code === 'TASK_TIMEOUT') {
      // invocationMs: the worker stopped it at its invocation's end, which came before the task's own timeout.
      throw new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, logs ?? logLocation(fn, requestId), false, res.error.invocationMs);
    }
    return res;
  }

  /**
   * The request bytes. If they exceed the limit (the orchestrator's fitting estimates; this is
   * exact), the envelope is fitted again to a smaller inline budget, until it fits.
   */
  private async fitPayload(env: TaskEnvelope, options: InvokeOptions): Promise<{ env: TaskEnvelope; item: string }> {
    let item = itemJson(env, options);
    let bytes = { byteLength: Buffer.byteLength(item) };
    const place: Place =
      options.place ??
      (async (dep, b) => {
        const key = `${env.resultKey}.in.${dep ?? 'args'}`;
        await this.store.put(key, b);
        return { kind: 'stored', key, size: b.byteLength };
      });
    while (bytes.byteLength > this.limit) {
      const inline = inlineBytes(env);
      if (inline === 0) {
        throw new TaskError(
          `Task ${env.fn} (${env.taskId}) was not run: its request is ${bytes.byteLength} bytes with every value in the store, over Lambda's limit of ${this.limit}; pass fewer refs to one task`,
          { functionName: env.fn, taskId: env.taskId, fault: 'user' },
        );
      }
      // Base64 makes 3 bytes 4 characters: drop at least the excess, in raw bytes.
      env = await fitEnvelope(env, Math.max(0, inline - Math.ceil(((bytes.byteLength - this.limit) * 3) / 4) - 1), place);
      item = itemJson(env, options);
      bytes = { byteLength: Buffer.byteLength(item) };
    }
    return { env, item };
  }
}
