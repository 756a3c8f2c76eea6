/**
 * volley's error hierarchy. Every error thrown by the library is a {@link VolleyError};
 * each message says what went wrong and how to fix it.
 *
 * @public
 */

const BRAND = Symbol.for('volley.error');

/** Base class of every error volley throws. `cause` follows ES2022. */
export class VolleyError extends Error {
  override name = 'VolleyError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }

  /**
   * `instanceof` by class name within volley's hierarchy, so that errors made by one copy of
   * the library (the ESM build) match classes of another (the CJS build) in the same process.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (typeof x !== 'object' || x === null) return false;
    let named = false;
    let branded = false;
    for (let p = Object.getPrototypeOf(x) as object | null; p; p = Object.getPrototypeOf(p) as object | null) {
      if (p === this.prototype) return true;
      if ((p as { constructor?: { name?: string } }).constructor?.name === this.name) named = true;
      if (Object.prototype.hasOwnProperty.call(p, BRAND)) branded = true;
    }
    return named && branded;
  }
}
Object.defineProperty(VolleyError.prototype, BRAND, { value: true });

/** A call to the API was malformed (bad arguments, bad options, misuse). Fix the call. */
export class UsageError extends VolleyError {
  override name = 'UsageError';
}

/** Configuration (environment variables, init options, deployed stack outputs) is missing or wrong. */
export class ConfigError extends VolleyError {
  override name = 'ConfigError';
}

/** A value cannot travel between driver and workers (functions, symbols, class instances, ...). */
export class SerializationError extends VolleyError {
  override name = 'SerializationError';
  /** Where in the value the problem is, e.g. `args[1].weights`. */
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, options);
    this.path = path;
  }
}

/** Two different functions were registered under one task name. */
export class DuplicateTaskError extends UsageError {
  override name = 'DuplicateTaskError';
}

/** The error a task's function threw, as it travelled back from the worker. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string;
  /** `code` of the remote error, when it had one (e.g. `ERR_INVALID_ARG_TYPE`). */
  code?: string;
}

export interface TaskErrorContext {
  /** Registered name of the task's function. */
  functionName: string;
  /** Id of the task (also the id of its result ref). */
  taskId: string;
  /** The remote error, when the task's own code threw. */
  remote?: RemoteErrorInfo;
  /** `user`: the task's code threw. `infrastructure`: the worker, invocation or store failed. */
  fault: 'user' | 'infrastructure';
  /** Where the worker's logs are, when known (e.g. a CloudWatch log group and stream). */
  logs?: string;
  cause?: unknown;
}

/**
 * A task failed. Re-thrown by `get` for the task's ref and for every ref that depends on it.
 * For a user's exception, `remote` holds the remote error's name, message and stack.
 */
export class TaskError extends VolleyError {
  override name = 'TaskError';
  readonly functionName: string;
  readonly taskId: string;
  readonly remote?: RemoteErrorInfo;
  readonly fault: 'user' | 'infrastructure';
  readonly logs?: string;
  constructor(message: string, ctx: TaskErrorContext) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.functionName = ctx.functionName;
    this.taskId = ctx.taskId;
    this.remote = ctx.remote;
    this.fault = ctx.fault;
    this.logs = ctx.logs;
    if (ctx.remote?.stack) {
      this.stack = `${this.name}: ${message}\n    --- remote stack (${ctx.functionName}, task ${ctx.taskId}) ---\n${ctx.remote.stack}`;
    }
  }

  /** Builds the error for a task whose function threw `remote`. */
  static fromRemote(functionName: string, taskId: string, remote: RemoteErrorInfo, logs?: string): TaskError {
    return new TaskError(
      `Task ${functionName} (${taskId}) failed: ${remote.name}: ${remote.message}`,
      { functionName, taskId, remote, fault: 'user', logs },
    );
  }
}

/** A task did not run because a task it depends on failed; `cause` is that failure. */
export class DependencyError extends TaskError {
  override name = 'DependencyError';
  constructor(functionName: string, taskId: string, upstream: Error) {
    const root = rootTaskError(upstream);
    super(
      `Task ${functionName} (${taskId}) did not run: its argument from ${root ? `${root.functionName} (${root.taskId})` : 'an upstream ref'} failed: ${root?.message ?? upstream.message}`,
      { functionName, taskId, fault: root?.fault ?? 'infrastructure', remote: root?.remote, cause: upstream },
    );
  }
}

/** A task ran longer than its `timeoutMs` and was stopped. Raise the task's `timeoutMs` option if it needs longer. */
export class TaskTimeoutError extends TaskError {
  override name = 'TaskTimeoutError';
  readonly timeoutMs: number;
  constructor(functionName: string, taskId: string, timeoutMs: number, logs?: string) {
    super(
      `Task ${functionName} (${taskId}) timed out after ${timeoutMs} ms and was stopped; raise its timeout with ${functionName}.options({ timeoutMs }) if it needs longer`,
      { functionName, taskId, fault: 'infrastructure', logs },
    );
    this.timeoutMs = timeoutMs;
  }
}

/** The worker running a task died (process exit, out of memory, Lambda runtime fault). */
export class WorkerCrashedError extends TaskError {
  override name = 'WorkerCrashedError';
  constructor(functionName: string, taskId: string, detail: string, options: { logs?: string; cause?: unknown } = {}) {
    super(`Task ${functionName} (${taskId}) failed: its worker crashed (${detail})${options.logs ? `; logs: ${options.logs}` : ''}`, {
      functionName,
      taskId,
      fault: 'infrastructure',
      logs: options.logs,
      cause: options.cause,
    });
  }
}

/** `get` did not see every requested value within `timeoutMs`. The tasks keep running. */
export class GetTimeoutError extends VolleyError {
  override name = 'GetTimeoutError';
  readonly pending: string[];
  constructor(timeoutMs: number, pending: string[]) {
    super(
      `get timed out after ${timeoutMs} ms with ${pending.length} value(s) not ready (${pending.slice(0, 5).join(', ')}${pending.length > 5 ? ', ...' : ''}); the tasks keep running: call get again, raise timeoutMs, or use wait() to poll`,
    );
    this.pending = pending;
  }
}

/** An object could not be read from or written to the object store. */
export class ObjectStoreError extends VolleyError {
  override name = 'ObjectStoreError';
  readonly key: string;
  constructor(message: string, key: string, options?: { cause?: unknown }) {
    super(message, options);
    this.key = key;
  }
}

/** The first TaskError in an error's cause chain that is not a DependencyError. */
export function rootTaskError(err: unknown): TaskError | undefined {
  let e: unknown = err;
  for (let i = 0; i < 100 && e; i++) {
    if (e instanceof TaskError && !(e instanceof DependencyError)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Extracts name/message/stack/code from anything thrown. */
export function toRemoteErrorInfo(err: unknown): RemoteErrorInfo {
  if (err instanceof Error) {
    const info: RemoteErrorInfo = { name: err.name, message: err.message, stack: err.stack };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    return info;
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    message = String(err);
  }
  return { name: 'NonErrorThrown', message: `a non-Error value was thrown: ${message}` };
}
