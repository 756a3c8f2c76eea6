/**
 * The invoker on Lambda: one synchronous `InvokeCommand` (RequestResponse) per task.
 *
 * - A user's exception comes back as a result value; `FunctionError`, a Lambda timeout or an
 *   out-of-memory kill are infrastructure faults, rejected as TaskError subclasses naming the
 *   function and its log group (with the request id to search for).
 * - A throttled call is retried with backoff (it never ran, so nothing is lost or duplicated).
 * - The request never exceeds Lambda's 6 MB limit: the orchestrator fits envelopes to the
 *   limit this backend declares (envelope.ts); if the exact request is still too large, the
 *   same fitting moves more inline values to the store, through the orchestrator's `place`.
 */
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { isServerError, isTransientError } from '@smithy/core/retry';
import type { InvokeOptions, Invoker, ObjectStore } from '../backend.js';
import { TaskCancelledError, TaskError, TaskTimeoutError, ThrottledError, WorkerCrashedError } from '../errors.js';
import { fitEnvelope, inlineBytes, type Place } from '../envelope.js';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope, type ResultEnvelope, type TaskEnvelope } from '../protocol.js';
import { retryThrottled, type Clock, type ThrottlePolicy } from './throttle.js';
import { LAMBDA_PAYLOAD_LIMIT, type LambdaRequest, type LambdaResponse, type NestLimits } from './wire.js';

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
  clock?: Clock;
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

function requestBytes(env: TaskEnvelope, options: InvokeOptions, nest: NestLimits | undefined): Uint8Array {
  // Whole milliseconds, as the worker validates them.
  const req: LambdaRequest = { v: PROTOCOL_VERSION, kind: 'invoke', task: toWire(env), timeoutMs: Math.ceil(options.timeoutMs), memoryMB: options.memoryMB };
  if (nest) req.nest = nest;
  return Buffer.from(JSON.stringify(req));
}

/** A fault a new attempt may not meet: 5xx, connection reset or refused, socket or request timeout (smithy's classification). */
export function isTransient(err: unknown): boolean {
  const e = err as Parameters<typeof isTransientError>[0];
  return typeof err === 'object' && err !== null && (isTransientError(e) || isServerError(e));
}

export class LambdaInvoker implements Invoker {
  /** The request payload limit this invoker keeps to (the backend declares it). */
  readonly payloadLimitBytes: number;
  private readonly limit: number;
  private closed = false;
  private readonly inflight = new Map<AbortController, Promise<unknown>>();
  /** The deadline of each task in flight, by task id, for cancel(). */
  private readonly byTask = new Map<string, AbortController>();

  constructor(
    readonly client: LambdaClient,
    private readonly store: ObjectStore,
    private readonly options: LambdaInvokerOptions,
  ) {
    // Headroom for the JSON around the envelope and for the service's own accounting.
    this.payloadLimitBytes = options.payloadLimitBytes ?? LAMBDA_PAYLOAD_LIMIT;
    this.limit = this.payloadLimitBytes - 16 * 1024;
  }

  async invoke(env: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope> {
    const fn = this.options.functionName;
    if (this.closed)
      throw new TaskError(`Task ${env.fn} (${env.taskId}) was not run: the runtime was shut down`, { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', code: 'SHUT_DOWN' });
    const payload = await this.fitPayload(env, options);
    // No per-call AbortSignal: the SDK caches its middleware chain only for calls without
    // options (cacheMiddleware), worth ~20 % of the invoke rate. The deadline is a race instead;
    // close() destroys the client, which ends every call still in flight.
    const deadlineMs = options.timeoutMs + this.options.invokeGraceMs;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error('deadline')), deadlineMs);
    let out: InvokeCommandOutput;
    const call = retryThrottled(() => this.client.send(new InvokeCommand({ FunctionName: fn, InvocationType: 'RequestResponse', Payload: payload })), this.options, {
      signal: deadline.signal,
      clock: this.options.clock,
    });
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.set(deadline, settled);
    this.byTask.set(env.taskId, deadline);
    try {
      out = await Promise.race([call, new Promise<never>((_, reject) => deadline.signal.addEventListener('abort', () => reject(deadline.signal.reason as Error), { once: true }))]);
    } catch (err) {
      if (this.closed) {
        throw new TaskError(`Task ${env.fn} (${env.taskId}) was abandoned: the runtime was shut down while it ran on Lambda function ${fn}`, {
          functionName: env.fn,
          taskId: env.taskId,
          fault: 'infrastructure',
          cause: err,
          code: 'SHUT_DOWN',
        });
      }
      if (deadline.signal.reason instanceof TaskCancelledError) throw deadline.signal.reason;
      if (deadline.signal.aborted) {
        // The call may have reached the function: it may have run, or still be running.
        throw new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, `${logLocation(fn)} (no answer from Lambda function ${fn} within ${deadlineMs} ms)`, true);
      }
      if (err instanceof ThrottledError) {
        throw new TaskError(
          `Task ${env.fn} (${env.taskId}) was not run: Lambda function ${fn} throttled it ${err.attempts} times over ${Math.round(err.elapsedMs / 1000)} s; ` +
            "lower init({ maxConcurrency }), or raise the function's reserved concurrency or the account's concurrency quota",
          { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'THROTTLED', retryable: true },
        );
      }
      const e = err as { name?: string; message?: string };
      const what = `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
      if (notSent(err)) {
        throw new TaskError(
          `Task ${env.fn} (${env.taskId}) was not run: Lambda function ${fn} could not be invoked: ${what}` +
            (e?.name === 'ResourceNotFoundException' ? '; deploy the worker (npx volley deploy) or check init({ aws: { functionName } })' : ''),
          { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'INVOKE_FAILED', retryable: isTransient(err) },
        );
      }
      throw new TaskError(
        `Task ${env.fn} (${env.taskId}): the outcome of its invocation on Lambda function ${fn} is unknown (${what}); ` +
          'the request may have reached the function, so the task may have run. If the task has retries left it runs again (the first committed result wins, so a second run cannot change it)',
        { functionName: env.fn, taskId: env.taskId, fault: 'infrastructure', cause: err, code: 'INVOKE_FAILED', retryable: isTransient(err), logs: logLocation(fn) },
      );
    } finally {
      clearTimeout(timer);
      this.inflight.delete(deadline);
      if (this.byTask.get(env.taskId) === deadline) this.byTask.delete(env.taskId);
    }
    return this.readResponse(env, options, out);
  }

  /**
   * With `force`, abandons the task's call: its invoke() rejects with TaskCancelledError at once
   * and the connection is left to finish on its own. Lambda has no way to stop a running
   * invocation: the function runs on, and is billed, until it returns or reaches its timeout
   * (the handler aborts the task's signal at its timeoutMs, so a task that watches it stops
   * there). Without `force` there is nothing to send: the orchestrator ignores the answer.
   */
  cancel(taskId: string, force: boolean): void {
    const c = this.byTask.get(taskId);
    if (force && c) c.abort(new TaskCancelledError('?', taskId, 'and its worker stopped'));
  }

  /**
   * Abandons calls in flight (their tasks fail) and closes the client when volley built it
   * (destroying its agent ends the connections still waiting on Lambda).
   */
  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.inflight.values()];
    for (const c of this.inflight.keys()) c.abort(new Error('closed'));
    if (this.options.ownsClient) this.client.destroy();
    else await Promise.all(pending);
    // Let the invoke() continuations (which fail their tasks) run before the caller moves on.
    await new Promise((r) => setImmediate(r));
  }

  // --- internals ---------------------------------------------------------------------------

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
        throw new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, `${logs}; Lambda function ${fn} reported: ${message}`);
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
    let res: ResultEnvelope;
    let logs: string | undefined;
    try {
      const wire = JSON.parse(text) as LambdaResponse;
      if (typeof wire !== 'object' || wire === null) throw new Error('the answer is not a JSON object');
      logs = typeof wire.logs === 'string' ? wire.logs : undefined;
      // `logs` is the transport's addition to the result envelope, not part of it.
      const { logs: _logs, ...envelope } = wire;
      res = validateResultEnvelope(fromWire(envelope));
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
      throw new TaskTimeoutError(env.fn, env.taskId, options.timeoutMs, logs ?? logLocation(fn, requestId));
    }
    return res;
  }

  /**
   * The request bytes. If they exceed the limit (the orchestrator's fitting estimates; this is
   * exact), the envelope is fitted again to a smaller inline budget, until it fits.
   */
  private async fitPayload(env: TaskEnvelope, options: InvokeOptions): Promise<Uint8Array> {
    let bytes = requestBytes(env, options, this.options.nest);
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
      bytes = requestBytes(env, options, this.options.nest);
    }
    return bytes;
  }
}
