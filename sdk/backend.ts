/**
 * The two interfaces a target implements. Everything else (API, orchestrator, worker-side
 * execution, serialization) is shared by every target.
 */
import type { RemoteErrorInfo } from './errors.js';
import type { TaskOptions } from './options.js';
import type { ContainedRefs, Payload, ResultEnvelope, TaskEnvelope } from './protocol.js';

/** Where serialized objects live: memory for the embedded runtime, S3 on AWS. */
export interface ObjectStore {
  /** Stores bytes under key. Writing the same key twice with the same bytes must be harmless. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Reads the bytes under key; rejects with ObjectStoreError when absent. */
  get(key: string): Promise<Uint8Array>;
  /** Removes every object whose key starts with prefix; resolves to how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
  /** Optional: removes these objects (a missing key is not an error). Without it, objects stay until the job's prefix is removed. */
  delete?(keys: string[]): Promise<void>;
  /**
   * Optional: writes bytes under key only if no object is there yet (S3's `If-None-Match: *`);
   * resolves to false, writing nothing, when the key exists. Actors on store-backed targets
   * commit their state versions with it.
   */
  create?(key: string, bytes: Uint8Array): Promise<boolean>;
  /**
   * Optional: allocates bytes that `put` can keep without copying (shared memory for the
   * embedded runtime). Encoders write large values straight into it.
   */
  allocate?(size: number): Uint8Array;
}

export interface InvokeOptions {
  timeoutMs: number;
  memoryMB: number;
  /**
   * Where to put an inline value of the envelope if the invoker finds it still too large to
   * send (see envelope.ts); the orchestrator passes its own, which frees what it writes.
   */
  place?: (dep: string | undefined, bytes: Uint8Array) => Promise<Payload>;
  /**
   * Tasks with the same affinity (an actor's id) must run on one worker that holds their state
   * and runs nothing else, when the invoker has such workers (`releaseAffinity` is defined).
   */
  affinity?: string;
  /**
   * Only for an invoker with `chains`: the task is a follower. These ref arguments are the
   * results of tasks handed to this invoker before it (its producers), and their payloads are
   * not in the envelope. The invoker runs the task in the same invocation as its producers,
   * after them, with their results; when it cannot (a producer already sent or in another
   * invocation, failed, not started, or its result holds refs), it answers `NOT_CHAINED`
   * instead of running it, and the orchestrator dispatches it again once its arguments are ready.
   * @internal
   */
  after?: readonly string[];
}

/**
 * What an invoker with `chains` rejects a follower with when it did not run it with its
 * producers (see `InvokeOptions.after`): not a run, not a failure. @internal
 */
export const NOT_CHAINED: Error = Object.freeze(Object.assign(new Error('the invoker did not run this task with its producers'), { [Symbol.for('volley.notChained')]: true }));

/** Whether an invoker answered NOT_CHAINED: by a registered symbol, since the invoker may come from another copy of the library (a bundle). @internal */
export function isNotChained(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[Symbol.for('volley.notChained')] === true;
}

/** Receives a task's result envelope, or why it could not be run (see `Invoker.invokeThen`). */
export type InvokeCallback = (res: ResultEnvelope | undefined, err?: unknown) => void;

/** How a task is run: a worker thread for the embedded runtime, a Lambda invocation on AWS. */
export interface Invoker {
  /**
   * Runs one task. Resolves with the worker's result envelope (which may carry a user error);
   * rejects with a TaskError subclass for infrastructure faults (crash, timeout, throttling
   * given up), naming the function and, where known, the log location.
   */
  invoke(envelope: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope>;
  /**
   * Optional: `invoke` with a callback, which the orchestrator prefers. A result is handed over
   * synchronously as it arrives, and results that arrive together are all handed over before
   * the invoker hands out more work, so the tasks they make ready leave together (the embedded
   * runtime's pool: one message to a worker instead of one per task, no turn of the event loop
   * per hop of a DAG). A failure (`err`) is handed over on a later microtask, as a rejected
   * `invoke` would be.
   */
  invokeThen?(envelope: TaskEnvelope, options: InvokeOptions, done: InvokeCallback): void;
  /**
   * Optional: an invoker whose workers reach back into this process (the embedded runtime's
   * threads) forwards what their running tasks ask of the orchestrator (nested `.remote()`,
   * `put`, `get`, `wait`) to `host`. The orchestrator calls it once its backend is up.
   * @internal
   */
  serve?(host: TaskHost): void;
  /**
   * Optional: cancels a task this invoker was given. Not started: it must never start. Running:
   * its signal is aborted; with `force`, it is stopped (a worker thread is terminated) or its
   * answer abandoned (Lambda). The invocation may still settle; the orchestrator has already
   * failed the task's ref and ignores it.
   */
  cancel?(taskId: string, force: boolean): void;
  /** Stops every worker or connection; nothing keeps the process alive afterwards. */
  close(): Promise<void>;
  /**
   * Optional: how many tasks per unit of `maxConcurrency` the invoker takes now (Lambda: short
   * tasks share an invocation, so the orchestrator keeps more of them in flight than there are
   * invocations). Default 1.
   */
  tasksPerSlot?(): number;
  /**
   * Optional: stops the worker that holds this affinity's state (an actor killed). Invokers
   * with it keep actors in a worker's memory; those without keep them in the store.
   */
  releaseAffinity?(affinity: string): void;
  /**
   * Optional: whether a task of `fn` may now run in one invocation with tasks it depends on
   * (as a producer or as a follower, see `InvokeOptions.after`): the invoker runs the tasks of
   * an invocation in order on one worker and has measured `fn`'s tasks short. Without it, every
   * task is dispatched once its arguments are ready.
   * @internal
   */
  chains?(fn: string): boolean;
}

/** A target: an invoker, a store, and how many tasks it runs at once. */
export interface Backend {
  readonly name: string;
  readonly invoker: Invoker;
  readonly store: ObjectStore;
  /** How many tasks the orchestrator keeps in flight. */
  readonly maxConcurrency: number;
  /** Key prefix under which the store keeps all of volley's objects. */
  readonly keyPrefix: string;
  /**
   * Most bytes one task envelope may take on the way to a worker; the orchestrator moves inline
   * values to the store to stay under it. Default: Lambda's 6 MiB (DEFAULT_PAYLOAD_LIMIT_BYTES).
   */
  readonly payloadLimitBytes?: number;
  /** Optional: releases what the store needs (its client), after the invoker closed and the job's objects were removed. */
  close?(): Promise<void>;
}

/** A task submitted by a running task, already encoded (refs in `args` are markers for `deps`). @internal */
export interface NestedSubmit {
  /** The new task's id, made by the worker (unique under its parent's id). */
  id: string;
  fn: string;
  module?: string;
  options: TaskOptions;
  args: Uint8Array;
  /** Ids of refs in `args`: objects the parent made, or the parent's own arguments' refs. */
  deps: string[];
}

/** A running task waits for refs it made: all of them (`get`) or `numReturns` (`wait`). @internal */
export interface AwaitRequest {
  refs: string[];
  numReturns: number;
  timeoutMs?: number;
  /** Whether the reply carries where the ready objects are (get), or only which are ready (wait). */
  payloads: boolean;
}

/** The answer to an AwaitRequest, in the order of its refs. @internal */
export interface AwaitReply {
  /** 0 pending, 1 ready, 2 failed. */
  states: Array<0 | 1 | 2>;
  payloads?: Array<Payload | undefined>;
  /** Where the objects of refs inside a ready object are. */
  contained?: Array<ContainedRefs | undefined>;
  errors?: Array<RemoteErrorInfo | undefined>;
}

/**
 * The orchestrator as its workers' running tasks see it (the embedded runtime): each call names
 * the running task it comes from (`parent`). @internal
 */
export interface TaskHost {
  submit(parent: string, task: NestedSubmit): void;
  put(parent: string, id: string, bytes: Uint8Array): void;
  await(parent: string, req: AwaitRequest): Promise<AwaitReply>;
  /** The running task `parent` cancels a task it started (`cancel(ref)` inside a task). */
  cancel(parent: string, id: string, force: boolean, recursive: boolean): void;
}
