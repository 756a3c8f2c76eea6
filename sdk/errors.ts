/**
 * volley's error hierarchy. Every error thrown by the library is a {@link VolleyError};
 * each message says what went wrong and how to fix it, and each carries a stable `code` and a
 * `retryable` flag (like smithy's `$fault`/`$retryable`) for programs and retry policies to key
 * on. Both travel across the wire in a task's error result ({@link RemoteErrorInfo}).
 *
 * @public
 */

const BRAND = Symbol.for('volley.error');

/**
 * The stable codes of volley's errors, one per kind of failure.
 *
 * @public
 */
export type VolleyErrorCode =
  | 'VOLLEY_ERROR'
  | 'USAGE'
  | 'CONFIG'
  | 'SERIALIZATION'
  | 'DUPLICATE_TASK'
  | 'TASK_NOT_FOUND'
  | 'PROTOCOL'
  | 'TASK_FAILED'
  | 'WORKER_FAILED'
  | 'INVOKE_FAILED'
  | 'THROTTLED'
  | 'SHUT_DOWN'
  | 'DEPENDENCY_FAILED'
  | 'TASK_TIMEOUT'
  | 'WORKER_CRASHED'
  | 'GET_TIMEOUT'
  | 'OBJECT_STORE'
  | 'TASK_DEPTH'
  | 'OBJECT_MISSING'
  | 'OBJECT_LOST'
  | 'TASK_CANCELLED'
  | 'ACTOR_DIED'
  | 'ACTOR_STATE';

/** Options every volley error takes. @public */
export interface VolleyErrorOptions {
  cause?: unknown;
  /** Overrides the class's `retryable` for this error. */
  retryable?: boolean;
}

/** Base class of every error volley throws. `cause` follows ES2022. */
export class VolleyError extends Error {
  override name = 'VolleyError';
  /** What kind of failure this is; stable across versions, unlike messages. */
  readonly code: VolleyErrorCode;
  /** Whether running the same operation again may succeed (a transient fault), as opposed to a fault that repeats until something is fixed. */
  readonly retryable: boolean;
  constructor(message: string, options?: VolleyErrorOptions, code: VolleyErrorCode = 'VOLLEY_ERROR', retryable = false) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options?.retryable ?? retryable;
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
      if (Object.hasOwn(p, BRAND)) branded = true;
    }
    return named && branded;
  }
}
Object.defineProperty(VolleyError.prototype, BRAND, { value: true });

/** A call to the API was malformed (bad arguments, bad options, misuse). Fix the call. */
export class UsageError extends VolleyError {
  override name = 'UsageError';
  constructor(message: string, options?: VolleyErrorOptions, code: VolleyErrorCode = 'USAGE') {
    super(message, options, code);
  }
}

/** Configuration (environment variables, init options, deployed stack outputs) is missing or wrong. */
export class ConfigError extends VolleyError {
  override name = 'ConfigError';
  constructor(message: string, options?: VolleyErrorOptions, code: VolleyErrorCode = 'CONFIG') {
    super(message, options, code);
  }
}

/** A value cannot travel between driver and workers (functions, symbols, class instances, ...). */
export class SerializationError extends VolleyError {
  override name = 'SerializationError';
  /** Where in the value the problem is, e.g. `args[1].weights`. */
  readonly path: string;
  constructor(message: string, path: string, options?: VolleyErrorOptions, code: VolleyErrorCode = 'SERIALIZATION') {
    super(message, options, code);
    this.path = path;
  }
}

/** Two different functions were registered under one task name. */
export class DuplicateTaskError extends UsageError {
  override name = 'DuplicateTaskError';
  constructor(message: string, options?: VolleyErrorOptions) {
    super(message, options, 'DUPLICATE_TASK');
  }
}

/** A worker was asked to run a task no module it has registered: the task's module is not in the worker bundle. */
export class TaskNotFoundError extends ConfigError {
  override name = 'TaskNotFoundError';
  constructor(message: string, options?: VolleyErrorOptions) {
    super(message, options, 'TASK_NOT_FOUND');
  }
}

/** An envelope was malformed or of another protocol version: driver and worker come from different volley versions. */
export class ProtocolError extends VolleyError {
  override name = 'ProtocolError';
  constructor(message: string, options?: VolleyErrorOptions) {
    super(message, options, 'PROTOCOL');
  }
}

/** The error a task's function (or its worker) threw, as it travelled back from the worker. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  stack?: string;
  /** `code` of the remote error, when it had one (e.g. `ERR_INVALID_ARG_TYPE`, or a {@link VolleyErrorCode}). */
  code?: string;
  /** `retryable` of the remote error, when it was a volley error. */
  retryable?: boolean;
  /** When the remote error was a TaskError (a nested task's failure re-thrown by its parent): which task, and its own remote error. */
  task?: { functionName: string; taskId: string; fault: 'user' | 'infrastructure'; remote?: RemoteErrorInfo };
  /** The remote error's `cause`, when it was an Error (a few levels at most). */
  cause?: RemoteErrorInfo;
  /** The store key of an ObjectStoreError (e.g. the missing object a worker could not read). */
  key?: string;
  /** The lost ref's id, of an ObjectLostError. */
  objectId?: string;
  /** A TaskTimeoutError's `invocationMs`: its Lambda invocation's time ran out first. */
  invocationMs?: number;
}

/** One failed run of a task that was then retried (or was the last): what failed, and how. @public */
export interface AttemptFailure {
  /** 1 for the first run. */
  attempt: number;
  /** Class name of the error (e.g. `WorkerCrashedError`, or the user's error class). */
  name: string;
  /** The error's `code` (`WORKER_CRASHED`, `TASK_TIMEOUT`, `TASK_FAILED`, ...). */
  code: VolleyErrorCode | string;
  /** `user`: the task's code threw; `infrastructure`: the worker, invocation or store failed. */
  fault: 'user' | 'infrastructure';
  /** The error's message, without the task's name (it is the same for every attempt). */
  message: string;
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
  /** Default: `TASK_FAILED` for a user's exception, `WORKER_FAILED` for an infrastructure fault. */
  code?: VolleyErrorCode;
  /** Default: false. */
  retryable?: boolean;
}

/**
 * A task failed. Re-thrown by `get` for the task's ref and for every ref that depends on it.
 * For a user's exception, `remote` holds the remote error's name, message and stack.
 */
export class TaskError extends VolleyError {
  override name = 'TaskError';
  readonly functionName: string;
  readonly taskId: string;
  declare readonly remote?: RemoteErrorInfo;
  readonly fault: 'user' | 'infrastructure';
  declare readonly logs?: string;
  /**
   * Every run of the task, in order, and why each failed (the last is this error); set by the
   * orchestrator on a task's final error. More than one when the task was retried; the message
   * then ends with a summary of them.
   */
  declare attempts?: readonly AttemptFailure[];
  constructor(message: string, ctx: TaskErrorContext) {
    super(message, { cause: ctx.cause }, ctx.code ?? (ctx.fault === 'user' ? 'TASK_FAILED' : 'WORKER_FAILED'), ctx.retryable ?? false);
    this.functionName = ctx.functionName;
    this.taskId = ctx.taskId;
    // Not enumerable: printing the error (util.inspect) would repeat the remote stack that
    // `stack` already shows, once per hop of a dependency chain.
    Object.defineProperty(this, 'remote', { value: ctx.remote, enumerable: false, writable: false, configurable: true });
    this.fault = ctx.fault;
    if (ctx.logs !== undefined) (this as { logs?: string }).logs = ctx.logs;
    if (ctx.remote?.stack) {
      this.stack = `${this.name}: ${message}\n    --- remote stack (${ctx.functionName}, task ${ctx.taskId}) ---\n${ctx.remote.stack}`;
    }
  }

  /**
   * Builds the error for a task whose worker answered an error result: the function threw
   * `remote` (fault `user`, not retryable), or the worker failed around it (fault
   * `infrastructure`, retryable as the remote error said).
   */
  static fromRemote(functionName: string, taskId: string, remote: RemoteErrorInfo, fault: 'user' | 'infrastructure' = 'user', logs?: string): TaskError {
    // A nested task's failure re-thrown by its parents: the message names the task where it began, once.
    let first = remote;
    let origin: NonNullable<RemoteErrorInfo['task']> | undefined;
    for (let i = 0; i < 100 && first.task?.remote; i++) {
      origin = first.task;
      first = first.task.remote!;
    }
    const what = origin ? `its nested task ${origin.functionName} (${origin.taskId}) failed: ${first.name}: ${first.message}` : `${remote.name}: ${remote.message}`;
    return new TaskError(`Task ${functionName} (${taskId}) failed: ${what}`, {
      functionName,
      taskId,
      remote,
      fault,
      logs,
      // A nested task's failure that the task re-threw is the cause, as a TaskError again.
      cause: remote.task ? reviveError(remote) : remote.cause ? reviveError(remote.cause) : undefined,
      retryable: fault === 'infrastructure' && remote.retryable === true,
    });
  }
}

/** What went wrong in `err`, without the "Task name (id)" its message starts with. */
function reasonOf(err: Error): string {
  if (err instanceof TaskError) {
    if (err.remote && !(err instanceof DependencyError)) return `${err.remote.name}: ${err.remote.message}`;
    const head = `Task ${err.functionName} (${err.taskId}) `;
    if (err.message.startsWith(head)) return err.message.slice(head.length);
  }
  return err.message;
}

/**
 * A task did not run because a task it depends on failed; `cause` is that failure (the direct
 * upstream's error, itself a DependencyError when the failure is further up).
 * The message names the direct upstream task and, when it is further up, the task that failed.
 * Its stack is the message alone: the driver's frames that settled it say nothing useful, and
 * the failed task's remote stack is printed once, on the root of the `cause` chain.
 */
export class DependencyError extends TaskError {
  override name = 'DependencyError';
  constructor(functionName: string, taskId: string, upstream: Error) {
    const root = rootTaskError(upstream);
    const direct = upstream instanceof TaskError ? `${upstream.functionName} (${upstream.taskId})` : 'an upstream ref';
    const why =
      upstream instanceof DependencyError && root
        ? `its argument from ${direct} was not computed, because ${root.functionName} (${root.taskId}) failed: ${reasonOf(root)}`
        : `its argument from ${direct} failed: ${reasonOf(upstream)}`;
    super(`Task ${functionName} (${taskId}) did not run: ${why}`, {
      functionName,
      taskId,
      fault: root?.fault ?? 'infrastructure',
      remote: root?.remote,
      cause: upstream,
      code: 'DEPENDENCY_FAILED',
    });
    this.stack = `${this.name}: ${this.message}`;
  }
}

/**
 * `get` on a cancelled task's ref (see `cancel`): the task was cancelled before it finished.
 * Its dependents fail with a DependencyError whose `cause` is this error.
 */
export class TaskCancelledError extends TaskError {
  override name = 'TaskCancelledError';
  constructor(functionName: string, taskId: string, how: 'before it started' | 'while it ran' | 'and its worker stopped') {
    super(`Task ${functionName} (${taskId}) was cancelled ${how}`, { functionName, taskId, fault: 'user', code: 'TASK_CANCELLED' });
    this.stack = `${this.name}: ${this.message}`;
  }
}

/**
 * A task ran longer than its `timeoutMs` and was stopped; or (`invocationMs`) its Lambda
 * invocation's time ran out first; or (`outcomeUnknown`) no answer came in time and the task
 * may have run, or still be running. Raise the task's `timeoutMs` option if it needs longer (and
 * the function's timeout, past the invocation's).
 */
export class TaskTimeoutError extends TaskError {
  override name = 'TaskTimeoutError';
  readonly timeoutMs: number;
  /** True when nothing is known of the run: the task was not seen to stop, and may have completed. */
  readonly outcomeUnknown: boolean;
  /**
   * Set when the task was stopped because its Lambda invocation's time ran out before its own
   * timeout did: the time the invocation had in all, in ms (the function's timeout, as the
   * worker saw it).
   */
  readonly invocationMs?: number;
  constructor(functionName: string, taskId: string, timeoutMs: number, logs?: string, outcomeUnknown = false, invocationMs?: number) {
    super(
      outcomeUnknown
        ? `Task ${functionName} (${taskId}) gave no answer in time (its timeout is ${timeoutMs} ms): the outcome is unknown, the task may have run to completion or still be running, and its result is lost; raise its timeout with ${functionName}.options({ timeoutMs }) if it needs longer`
        : invocationMs !== undefined
          ? `Task ${functionName} (${taskId}) was stopped when its Lambda invocation ran out of time, before its own timeout of ${timeoutMs} ms: ` +
            `the invocation had ${Math.round(invocationMs / 100) / 10} s in all, the function's timeout (timeout in serverless.yml). ` +
            `Fix: deploy the function with a longer timeout than the task's (npx volley deploy --timeout S, at most 900 s), or make the task shorter and give it a timeoutMs within the function's`
          : `Task ${functionName} (${taskId}) timed out after ${timeoutMs} ms and was stopped; raise its timeout with ${functionName}.options({ timeoutMs }) if it needs longer`,
      { functionName, taskId, fault: 'infrastructure', logs, code: 'TASK_TIMEOUT', retryable: true },
    );
    this.timeoutMs = timeoutMs;
    this.outcomeUnknown = outcomeUnknown;
    if (invocationMs !== undefined && !outcomeUnknown) this.invocationMs = invocationMs;
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
      code: 'WORKER_CRASHED',
      retryable: true,
    });
  }
}

/**
 * A call on an actor could not run because the actor is gone: it was killed, its constructor
 * failed, or its worker crashed (or timed out) with no restarts left. `cause` says which.
 */
export class ActorDiedError extends TaskError {
  override name = 'ActorDiedError';
  /** The actor's id. */
  readonly actorId: string;
  constructor(message: string, ctx: { functionName: string; taskId: string; actorId: string; cause?: unknown }) {
    super(message, { functionName: ctx.functionName, taskId: ctx.taskId, fault: 'infrastructure', cause: ctx.cause, code: 'ACTOR_DIED' });
    this.actorId = ctx.actorId;
  }
}

/**
 * An actor's fields are not values that can travel (the rule for task arguments): checked after
 * its constructor and after every call on every target. The call fails and the actor's state is
 * the one from before the call.
 */
export class ActorStateError extends SerializationError {
  override name = 'ActorStateError';
  constructor(message: string, path: string, options?: VolleyErrorOptions) {
    super(message, path, options, 'ACTOR_STATE');
  }
}

/** `get` did not see every requested value within `timeoutMs`. The tasks keep running. */
export class GetTimeoutError extends VolleyError {
  override name = 'GetTimeoutError';
  readonly pending: string[];
  constructor(timeoutMs: number, pending: string[]) {
    super(
      `get timed out after ${timeoutMs} ms with ${pending.length} value(s) not ready (${pending.slice(0, 5).join(', ')}${pending.length > 5 ? ', ...' : ''}); the tasks keep running: call get again, raise timeoutMs, or use wait() to poll`,
      undefined,
      'GET_TIMEOUT',
      true,
    );
    this.pending = pending;
  }
}

/**
 * An object could not be read from or written to the object store. Not retryable by default
 * (a missing object stays missing); a transient store fault says `retryable: true`.
 */
export class ObjectStoreError extends VolleyError {
  override name = 'ObjectStoreError';
  readonly key: string;
  /** `OBJECT_MISSING` when the object is not in the store (S3 NoSuchKey): see ObjectLostError. */
  constructor(message: string, key: string, options?: VolleyErrorOptions, code: VolleyErrorCode = 'OBJECT_STORE') {
    super(message, options, code);
    this.key = key;
  }
}

/**
 * An object a ref points to is gone from the store (expired by the bucket's lifecycle rule,
 * removed by a cleanup, a lost shared-memory segment) and cannot be rebuilt: it was stored by
 * `put()` (no task produced it), or its producing task ran out of retries rebuilding it.
 * A task's result is rebuilt by running its task again (lineage reconstruction); see
 * docs/ARCHITECTURE.md for what is reconstructable.
 */
export class ObjectLostError extends ObjectStoreError {
  override name = 'ObjectLostError';
  /** Id of the lost object's ref. */
  readonly objectId: string;
  constructor(objectId: string, key: string, why: string, options?: VolleyErrorOptions) {
    super(`object ${objectId} is lost: it is no longer in the store (key ${key}) and ${why}`, key, options, 'OBJECT_LOST');
    this.objectId = objectId;
  }
}

/** Lambda kept throttling an invocation past the give-up time; the task never ran. Retryable later, with less load. */
export class ThrottledError extends VolleyError {
  override name = 'ThrottledError';
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    options: { cause: unknown },
  ) {
    super(`still throttled after ${attempts} attempts over ${Math.round(elapsedMs)} ms`, options, 'THROTTLED', true);
  }
}

/** The failure of a task its invoker was closed before it could run (the embedded pool, the Lambda invoker). */
export function shutDownBeforeRun(env: { fn: string; taskId: string }): TaskError {
  return new TaskError(`Task ${env.fn} (${env.taskId}) was not run: the runtime was shut down before this task ran`, {
    functionName: env.fn,
    taskId: env.taskId,
    fault: 'infrastructure',
    code: 'SHUT_DOWN',
  });
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

/** How many levels of `cause` travel with a remote error. */
const MAX_REMOTE_CAUSES = 8;

/**
 * Extracts name/message/stack/code (and `retryable` of a volley error) from anything thrown;
 * a TaskError keeps its task and remote error, and an Error's `cause` travels too.
 */
export function toRemoteErrorInfo(err: unknown, depth = 0): RemoteErrorInfo {
  if (err instanceof Error) {
    const info: RemoteErrorInfo = { name: err.name, message: err.message, stack: err.stack };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    if (err instanceof VolleyError) info.retryable = err.retryable;
    if (err instanceof TaskError) info.task = { functionName: err.functionName, taskId: err.taskId, fault: err.fault, remote: err.remote };
    if (err.cause instanceof Error && depth < MAX_REMOTE_CAUSES) info.cause = toRemoteErrorInfo(err.cause, depth + 1);
    if (err instanceof ObjectStoreError) info.key = err.key;
    if (err instanceof ObjectLostError) info.objectId = err.objectId;
    if (err instanceof TaskTimeoutError && err.invocationMs !== undefined) info.invocationMs = err.invocationMs;
    return info;
  }
  let message: string;
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    message = String(err);
  }
  return { name: 'NonErrorThrown', message: `a non-Error value was thrown: ${message}` };
}

/** A task nested deeper than the runtime's `maxTaskDepth`: most likely a recursion without a base case. */
export class TaskDepthError extends UsageError {
  override name = 'TaskDepthError';
  readonly maxTaskDepth: number;
  constructor(functionName: string, maxTaskDepth: number) {
    super(
      `${functionName}.remote() would start a task at nesting depth ${maxTaskDepth + 1}, deeper than maxTaskDepth (${maxTaskDepth}): ` +
        'a task that starts tasks needs a base case that stops the recursion; if the depth is meant, raise it with init({ maxTaskDepth })',
      undefined,
      'TASK_DEPTH',
    );
    this.maxTaskDepth = maxTaskDepth;
  }
}

const REVIVED: Record<string, { prototype: object }> = {
  VolleyError,
  UsageError,
  ConfigError,
  SerializationError,
  DuplicateTaskError,
  TaskNotFoundError,
  ProtocolError,
  TaskError,
  DependencyError,
  TaskCancelledError,
  TaskTimeoutError,
  WorkerCrashedError,
  ActorDiedError,
  ActorStateError,
  GetTimeoutError,
  ObjectStoreError,
  ObjectLostError,
  ThrottledError,
  TaskDepthError,
};

/**
 * The error an error info describes, in this process: a TaskError (of the same class) for a
 * task's failure, a volley error of the same class and code, or a plain Error with the remote
 * name. Class-specific fields other than a TaskError's, an ObjectStoreError's `key` and an
 * ObjectLostError's `objectId` are not carried.
 */
export function reviveError(info: RemoteErrorInfo, depth = 0): Error {
  const cause = info.cause && depth < MAX_REMOTE_CAUSES ? reviveError(info.cause, depth + 1) : undefined;
  let err: Error;
  if (info.task) {
    err = new TaskError(info.message, { ...info.task, cause, code: info.code as VolleyErrorCode, retryable: info.retryable });
  } else if (info.code !== undefined && REVIVED[info.name]) {
    err = new VolleyError(info.message, { cause, retryable: info.retryable }, info.code as VolleyErrorCode);
  } else {
    err = new Error(info.message, cause ? { cause } : undefined);
  }
  const cls = REVIVED[info.name];
  if (cls && err instanceof VolleyError) Object.setPrototypeOf(err, cls.prototype);
  // The key a store error was about (a missing object's, a lost ref's), as the class declares it.
  if (err instanceof ObjectStoreError && info.key !== undefined) (err as { key: string }).key = info.key;
  if (err instanceof ObjectLostError && info.objectId !== undefined) (err as { objectId: string }).objectId = info.objectId;
  Object.defineProperty(err, 'name', { value: info.name, enumerable: false, configurable: true, writable: true });
  if (info.stack !== undefined) err.stack = info.stack;
  return err;
}
