/**
 * Task lifecycle events: what the runtime tells observers (progress, timeline, dashboard,
 * cost) and programs that listen with `rt.onEvent(listener)`.
 *
 * The runtime builds an event only while a listener is attached: with none, each hook is one
 * check of an undefined field. Times are the driver's `performance.now()` in ms; a worker's
 * own start time is converted to that clock.
 */
import type { ObjectStore } from './backend.js';
import type { RemoteErrorInfo } from './errors.js';
import type { ResultEnvelope, ResultWorker, TaskEnvelope, Timing } from './protocol.js';

/** How a task ended. @public */
export type TaskOutcome =
  /** It returned a value. */
  | 'ok'
  /** Its function threw, or its result could not travel, or the configuration kept it from running (a `ConfigError`: the backend could not start, no worker can load its module). */
  | 'failed'
  /** It ran past its timeoutMs. */
  | 'timeout'
  /** Its worker died, or it could not be run (infrastructure fault). */
  | 'crashed'
  /** It did not run: an argument's task failed. */
  | 'dependency'
  /** It did not finish: `cancel()` stopped it, or the runtime was shut down first. */
  | 'cancelled';

/** The worker that ran a task: `thread-<n>` on the embedded runtime, the sandbox's log stream on Lambda (with its memory and architecture). @public */
export type WorkerInfo = ResultWorker;

/** `rf.remote(...)` was called. @public */
export interface TaskSubmittedEvent {
  type: 'submitted';
  time: number;
  taskId: string;
  fn: string;
}

/** The task's arguments were ready and it was handed to the invoker (a thread pool or Lambda). @public */
export interface TaskDispatchedEvent {
  type: 'dispatched';
  time: number;
  taskId: string;
  fn: string;
  /** 1 for the first run; higher when the runtime runs a task again. */
  attempt: number;
  memoryMB: number;
  /** Ids of the objects (results of other tasks, or put() values) among its arguments. */
  deps: readonly string[];
  /** Arguments the worker reads from the object store (S3 GETs on Lambda), and their bytes. */
  storedInputs: number;
  storedInputBytes: number;
}

/**
 * A run of a task ended without a value, and the task will run again: after a backoff (a
 * retry, within its `maxRetries`), or once an argument whose object was lost is rebuilt. Each
 * such run has one of these; the task's end is still its one `finished` event (whose `attempt`
 * is the number of its last run). On Lambda every run is an invocation, billed. @public
 */
export interface TaskRetryingEvent {
  type: 'retrying';
  time: number;
  taskId: string;
  fn: string;
  /** The run that ended: 1 for the first. The next run is `attempt + 1`. */
  attempt: number;
  /** How this run ended ('failed' for an exception `retryExceptions` accepts). */
  outcome: TaskOutcome;
  /** 'retry': it failed and is retried; 'argument-lost': an argument's stored object was gone, and is being rebuilt first. */
  reason: 'retry' | 'argument-lost';
  /** The backoff before the next run, in ms (absent for 'argument-lost': it runs when the argument is back). */
  delayMs?: number;
  memoryMB: number;
  submittedAt: number;
  /** When this run was dispatched. */
  dispatchedAt?: number;
  deps: readonly string[];
  /** Who ran it, when a worker answered (a crashed worker or a failed invocation did not). */
  worker?: WorkerInfo;
  /** When the worker began this run, on the driver's clock. */
  startedAt?: number;
  /** This run's fetch / run / store times, when the worker answered. */
  timing?: Timing;
  /** Why it failed; for a task's own exception, the remote name, message and stack. */
  error: RemoteErrorInfo;
}

/**
 * A task that had finished runs again to rebuild its result, whose stored object was lost
 * (Ray's lineage reconstruction). Its next run is dispatched and ends with another `finished`
 * event. @public
 */
export interface TaskRebuildingEvent {
  type: 'rebuilding';
  time: number;
  taskId: string;
  fn: string;
  /** How many times its result has been rebuilt, this time included. */
  rebuild: number;
}

/** The task ended, however it ended. @public */
export interface TaskFinishedEvent {
  type: 'finished';
  time: number;
  taskId: string;
  fn: string;
  /** Its runs so far: 1 unless it was retried or rebuilt (each run that was retried had its own `retrying` event). */
  attempt: number;
  outcome: TaskOutcome;
  memoryMB: number;
  submittedAt: number;
  /** Absent when the task never ran (a failed dependency, or shutdown before dispatch). */
  dispatchedAt?: number;
  deps: readonly string[];
  /** Who ran it, when a worker answered. */
  worker?: WorkerInfo;
  /** When the worker began the task, on the driver's clock (absent if the worker did not say). */
  startedAt?: number;
  /** The worker's fetch / run / store times. */
  timing?: Timing;
  /** The result's encoded size, and whether it went to the object store (an S3 PUT on Lambda). */
  result?: { bytes: number; stored: boolean };
  /** Why it did not succeed; for a user's exception, the remote name, message and stack. */
  error?: RemoteErrorInfo;
}

/** The driver itself read, wrote or deleted objects in the store (`put`, large arguments, `get`, freeing). @public */
export interface StoreEvent {
  type: 'store';
  time: number;
  op: 'put' | 'get' | 'delete' | 'deletePrefix';
  /** Objects touched. */
  count: number;
  bytes: number;
}

/** Everything `rt.onEvent(listener)` receives. @public */
export type VolleyEvent = TaskSubmittedEvent | TaskDispatchedEvent | TaskRetryingEvent | TaskRebuildingEvent | TaskFinishedEvent | StoreEvent;

/** The end of one run: a run that will be retried, or the task's last. */
export type RunEndEvent = TaskRetryingEvent | TaskFinishedEvent;

/** A listener of task events. @public */
export type EventListener = (event: VolleyEvent) => void;

/**
 * The listeners of one runtime. `emit` is undefined while there are none, so a hook costs a
 * field check: `hub.emit?.(...)` with the event built only when it is defined.
 */
export class EventHub {
  private readonly listeners: EventListener[] = [];
  emit?: (event: VolleyEvent) => void;

  /** Adds a listener; returns a function that removes it. */
  add(listener: EventListener): () => void {
    this.listeners.push(listener);
    this.emit = (e) => this.dispatch(e);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
      if (this.listeners.length === 0) this.emit = undefined;
    };
  }

  private dispatch(e: VolleyEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        // A listener's bug must not corrupt the runtime's state half-way through an update;
        // it surfaces as an uncaught exception on the next tick instead.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}

/** The outcome of a failed task, from its error's stable code. */
export function outcomeOfError(err: Error): TaskOutcome {
  switch ((err as { code?: string }).code) {
    case 'DEPENDENCY_FAILED':
      return 'dependency';
    case 'TASK_TIMEOUT':
      return 'timeout';
    case 'SHUT_DOWN':
    case 'TASK_CANCELLED':
      return 'cancelled';
    case 'TASK_FAILED':
    case 'SERIALIZATION':
    // A configuration problem (the backend could not start, the module cannot load) is the user's to fix, not a worker's crash.
    case 'CONFIG':
      return 'failed';
    default:
      return 'crashed';
  }
}

/** What a finished event says about a failure: the remote error of a task's own exception, else the driver's error. */
export function errorInfo(err: Error, outcome: TaskOutcome): RemoteErrorInfo {
  const remote = (err as { remote?: RemoteErrorInfo }).remote;
  if (outcome === 'failed' && remote) return { ...remote };
  // A dependency's or a shutdown's stack is the driver's own and says nothing about the task.
  return outcome === 'dependency' || outcome === 'cancelled' ? { name: err.name, message: err.message } : { name: err.name, message: err.message, stack: err.stack };
}

/** The result's size and place, for a result envelope that carries a value. */
export function resultInfo(res: ResultEnvelope): { bytes: number; stored: boolean } | undefined {
  if (res.kind === 'value') return { bytes: res.bytes.length, stored: false };
  if (res.kind === 'stored') return { bytes: res.size, stored: true };
  return undefined;
}

/** Inputs the worker will read from the store (an S3 GET each on Lambda), and their bytes. */
export function storedInputs(env: TaskEnvelope): { storedInputs: number; storedInputBytes: number } {
  let n = 0;
  let bytes = 0;
  if (env.args.kind === 'stored') {
    n++;
    bytes += env.args.size;
  }
  for (const id in env.deps) {
    const p = env.deps[id]!;
    if (p.kind === 'stored') {
      n++;
      bytes += p.size;
    }
  }
  return { storedInputs: n, storedInputBytes: bytes };
}

/** The worker's start time (epoch ms on its clock) on the driver's performance.now() clock. */
export function driverTime(epochMs: number | undefined): number | undefined {
  return epochMs === undefined ? undefined : epochMs - performance.timeOrigin;
}

/**
 * The store as the driver uses it, reporting each of its own reads, writes and deletes to the
 * hub. The store's other members (its size, a MemoryStore's synchronous calls) stay reachable
 * through the prototype; every call is made on the store itself.
 */
export function observedStore(store: ObjectStore, hub: EventHub): ObjectStore {
  const emit = (op: StoreEvent['op'], count: number, bytes: number) => hub.emit?.({ type: 'store', time: performance.now(), op, count, bytes });
  const own: Partial<ObjectStore> = {
    put: (key, bytes) => store.put(key, bytes).then(() => emit('put', 1, bytes.length)),
    get: (key) =>
      store.get(key).then((b) => {
        emit('get', 1, b.length);
        return b;
      }),
    deletePrefix: (prefix) =>
      store.deletePrefix(prefix).then((n) => {
        emit('deletePrefix', n, 0);
        return n;
      }),
  };
  if (store.delete) own.delete = (keys) => store.delete!(keys).then(() => emit('delete', keys.length, 0));
  if (store.allocate) own.allocate = (n) => store.allocate!(n);
  return Object.create(store, Object.fromEntries(Object.entries(own).map(([k, v]) => [k, { value: v }]))) as ObjectStore;
}
