/**
 * A Runtime is one driver session: the orchestrator that holds the task DAG, the table of
 * objects, and the backend (invoker + store) of its target.
 *
 * A task is dispatched when every ref among its arguments is ready; ready tasks run up to
 * `maxConcurrency` at once; a failed task fails its dependents without running them. Workers
 * receive refs as refs (inline bytes or store keys) and read values themselves: the driver
 * only reads a value when `get` asks for it.
 *
 * Its parts live beside it: the object table (object-table.ts), envelopes and their fitting
 * (envelope.ts), what a result means for its ref (results.ts), argument checks (checks.ts).
 */
import { isNotChained, type AwaitReply, type AwaitRequest, type Backend, type InvokeOptions, type NestedSubmit, type TaskHost } from './backend.js';
import { checkCancelOptions, checkGetOptions, checkRefArray, checkWaitArgs, checkWaitKeys, type GetOptions, type Values, type WaitOptions, type WaitResult } from './checks.js';
import { DEFAULT_PAYLOAD_LIMIT_BYTES, buildEnvelope, fitEnvelope, inlineBudget, inlineBytes, type Place } from './envelope.js';
import {
  DependencyError,
  GetTimeoutError,
  ObjectLostError,
  ObjectStoreError,
  ProtocolError,
  TaskCancelledError,
  TaskDepthError,
  TaskError,
  UsageError,
  VolleyError,
  toRemoteErrorInfo,
  type AttemptFailure,
  type RemoteErrorInfo,
} from './errors.js';
import { EventHub, driverTime, errorInfo, observedStore, outcomeOfError, resultInfo, storedInputs, type EventListener, type TaskOutcome, type VolleyEvent } from './events.js';
import type { CostReport } from './observe/cost.js';
import type { Observers } from './observe/index.js';
import type { ChromeTrace } from './observe/timeline.js';
import {
  checkTaskTimeoutForTarget,
  optionTable,
  randomRunId,
  resolveInitOptions,
  resolveTaskOptionsInput,
  type InitOptions,
  type ResolvedInitOptions,
  type ResolvedTaskOptions,
  type TaskOptions,
} from './options.js';
import { FAILED, ObjectTable, PENDING, READY, type ObjectEntry } from './object-table.js';
import { ACTOR_OP_TASK, NO_DEPS, type ContainedRefs, type Payload, type ResultEnvelope, type TaskEnvelope } from './protocol.js';
import { ObjectRef } from './ref.js';
import type { TaskDefinition } from './registry.js';
import { addTiming, invokeFailure, outcomeOf, payloadOf, type TaskStats } from './results.js';
import { attemptFailure, retryDelay, shouldRetry, withAttempts } from './retry.js';
import { decode, encode, encodeArgs } from './serialize.js';
import type { AnyFunction, RemoteArgs, RemoteFunction, Resolved } from './task-types.js';
import { createBackend } from './targets.js';
import { setLongTimeout } from './timers.js';
import { decodeResolved } from './worker/nested.js';
import type { ActorClass, ActorHandle } from './actor.js';
import type { AnyClass } from './worker/actor.js';

export type { GetOptions, Values, WaitOptions, WaitResult } from './checks.js';
export type { TaskStats } from './results.js';

/** Options of `cancel`. @public */
export interface CancelOptions {
  /** Stop a running task at once: its worker thread is terminated; on Lambda its answer is abandoned. Default: false (its signal is aborted). */
  force?: boolean;
  /** Cancel the tasks it started too (nested tasks). Default: true. */
  recursive?: boolean;
}

/** Counts of the failure machinery at work, for tests and the soak run. @internal */
export interface FaultCounts {
  /** Runs started again after a failed run. */
  retries: number;
  /** Runs started to rebuild a lost object. */
  rebuilds: number;
}

interface Task {
  readonly id: string;
  readonly fn: string;
  readonly module?: string;
  readonly options: Readonly<ResolvedTaskOptions>;
  /** The options it was submitted with; retry settings are read from them when a run fails. */
  readonly taskOptions: Readonly<TaskOptions>;
  readonly deps: readonly Entry[];
  args?: Payload;
  /** Ref arguments not ready yet, plus a pending upload of large arguments. */
  missing: number;
  done: boolean;
  /** Nesting depth: 0 for a task the program started, its parent's + 1 for a task a task started. */
  readonly depth: number;
  /** The running task that started this one (nested tasks the driver orchestrates, on the embedded runtime). */
  readonly parent?: Task;
  /**
   * Ids of the tasks and objects this task made while it ran (nested tasks, put objects): held
   * until it finishes, then freed unless its result holds them; cancel({ recursive }) follows them.
   */
  children?: string[];
  /** 0 queued, 1 running, 2 running but blocked in get/wait (not counted against maxConcurrency), 3 finished. */
  phase: 0 | 1 | 2 | 3;
  /** get/wait calls of this task's run `blockedRun` that are blocked. */
  blocked: number;
  /** The run `blocked` counts for: a run that ended with a get/wait still waiting leaves no count to the next. */
  blockedRun?: number;
  /** Runs dispatched so far; only the latest run's answer counts. */
  runs: number;
  /** Dispatched and not answered yet. */
  inFlight: boolean;
  /** Why each run that was retried failed. */
  failures?: AttemptFailure[];
  /** Times its result was rebuilt after its stored object was lost. */
  rebuilds?: number;
  /** Set while a retry waits out its backoff. */
  retryTimer?: NodeJS.Timeout;
  /** The last run's error result, kept only while events are listened to (its worker and timing). */
  lastResult?: ResultEnvelope;
  /** When it was submitted and dispatched (performance.now()); set only while events are listened to. */
  submittedAt?: number;
  dispatchedAt?: number;
  hooks?: TaskHooks;
  /**
   * The orchestrator's turn in which it was last handed to the invoker (chaining: see
   * `chainFrom`); -1 before that. A number from the start, not undefined: the field keeps one
   * representation, and the first chain does not throw away addTask's optimised code.
   */
  turn: number;
  /**
   * A follower's dispatched event, held until its invoker answers (only while events are
   * listened to): a follower handed back NOT_CHAINED was not a run and shows no event.
   */
  heldDispatch?: VolleyEvent & { type: 'dispatched' };
}

/**
 * What an actor's calls add to a task (sdk/actor.ts). @internal
 */
export interface TaskHooks {
  /** The task is not dispatched before this resolves; if it rejects, the task fails with its error. */
  after?: Promise<unknown>;
  /** Passed to the invoker: tasks with one affinity run on one dedicated worker, where the invoker has them. */
  affinity?: string;
  /** Told how the task ended (undefined: it succeeded) before its ref settles; may replace the error. */
  onEnd?: (err: Error | undefined) => Error | undefined;
}

type Entry = ObjectEntry<Task>;

/** No entries (a list no one adds to). */
const NO_ENTRIES: Entry[] = [];

/**
 * The invoke options of one run. `place` (where an envelope's inline values go when it has no
 * room for them) is made only when an invoker asks for it, which few runs need: not a closure
 * per run. A ref's value goes under its object's key, written once and freed with the object;
 * the argument list under the task's key, freed when the task is done.
 */
class RunOptions implements InvokeOptions {
  readonly timeoutMs: number;
  readonly memoryMB: number;
  readonly affinity: string | undefined;
  readonly after: readonly string[] | undefined;

  constructor(
    private readonly task: Task,
    private readonly backend: Backend,
    /** The job's key prefix in the backend's store. */
    private readonly prefix: string,
    private readonly objects: ObjectTable<Task>,
    after: readonly string[] | undefined,
  ) {
    this.timeoutMs = task.options.timeoutMs;
    this.memoryMB = task.options.memoryMB;
    this.affinity = task.hooks?.affinity;
    this.after = after;
  }

  get place(): Place {
    const { task, backend, prefix, objects } = this;
    return (dep, bytes) => {
      if (dep === undefined) {
        const key = `${prefix}${task.id}.args`;
        return backend.store.put(key, bytes).then((): Payload => (task.args = { kind: 'stored', key, size: bytes.length }));
      }
      const entry = objects.get(dep)!;
      const key = `${prefix}${dep}`;
      entry.spilledKey = key;
      return (entry.spilled ??= backend.store.put(key, bytes).then((): Payload => ({ kind: 'stored', key, size: bytes.length })));
    };
  }
}

/** Where a running task's actor operations go (sdk/actor.ts sets it when it loads). */
let actorOps: ((rt: Runtime, parentId: string, sub: NestedSubmit) => void) | undefined;
/** @internal */
export function serveActorOps(f: (rt: Runtime, parentId: string, sub: NestedSubmit) => void): void {
  actorOps = f;
}

/**
 * One driver session on one target. The top-level `init()/get()/put()/wait()/shutdown()` use a
 * default Runtime; create your own to run several side by side or to pass one explicitly.
 *
 * @public
 */
export class Runtime {
  readonly jobId: string;
  /** This run's own id (random); its objects live under `<keyPrefix>jobs/<jobId>/<runId>/`. */
  readonly runId: string;
  /** @internal the resolved options (defaults filled in). */
  readonly options: ResolvedInitOptions;
  /** The run's scope in the store, `<jobId>/<runId>`; envelopes carry it as their `job`. */
  private readonly storeScope: string;
  /** The run options of a task submitted without any (most are): one object for all of them. */
  private readonly defaultRun: Readonly<ResolvedTaskOptions>;
  private backend?: Backend;
  private readonly starting: Promise<Backend>;
  private closed = false;
  /** Why the backend could not start: every task submitted since fails with it at once. */
  private startFailure?: Error;
  private seq = 0;
  private readonly objects = new ObjectTable<Task>((keys) => {
    const store = this.backend?.store;
    // A delete that fails leaves bytes that shutdown() (or the bucket's expiry) removes later.
    if (store?.delete)
      void Promise.all(keys)
        .then((k) => store.delete!(k))
        .catch(() => undefined);
  });
  private readonly queue: Task[] = [];
  private queueHead = 0;
  /**
   * Tasks whose last argument just became ready: dispatched before the queue's tasks that have
   * not waited for anything (a DAG goes on depth first, as Dask orders it: arguments are consumed
   * and freed sooner, and a dependent goes out in the same turn as its siblings' dependents, so
   * the invoker can chain the next level behind it). Drained first-in, first-out.
   */
  private readonly readyFirst: Task[] = [];
  private readyHead = 0;
  /** A pump of the queue's other tasks is due on a microtask (see `pump`). */
  private pumping = false;
  /** The pump that `pumping` says is due (one function for the runtime, not a closure per pump). */
  private readonly pumpLater = (): void => {
    this.pumping = false;
    this.pump();
  };
  private running = 0;
  /** Counts the event loop's turns while tasks are chained: a follower's producers must have been handed over in this one. */
  private turn = 0;
  private turnTicking = false;
  /** Ends a turn of `turn` (one function for the runtime, not a closure per chain). */
  private readonly nextTurn = (): void => {
    this.turn++;
    this.turnTicking = false;
  };
  /** Tasks handed over this turn whose dependents may follow them (see `chainFrom`); set while chaining. */
  private chainWork?: Task[];
  private readonly statsByFn = new Map<string, TaskStats>();
  /** Set when this runtime is the session of a running task on Lambda: its ids and nesting depth. */
  private readonly nest?: { readonly idPrefix: string; readonly depth: number; readonly runId: string };
  /** The task this runtime served has finished: its objects now belong to the driver, none is freed from here. */
  private sessionEnded = false;
  /** Tasks waiting out a retry's backoff (their timers are cleared at shutdown). */
  private readonly backingOff = new Set<Task>();
  /** @internal */
  readonly faultCounts: FaultCounts = { retries: 0, rebuilds: 0 };
  /** Task events go to these listeners; with none, each hook is one check of `hub.emit`. */
  private readonly hub = new EventHub();
  /** The observers the options ask for (sdk/observe/, imported only then). */
  private readonly observing?: Promise<Observers>;

  /** @param options - see InitOptions. */
  constructor(options?: InitOptions);
  /**
   * @internal With a ready-made backend, or one on its way (tests, custom targets, the Lambda
   * worker's nested sessions); `nest` when the runtime is a running task's session (Lambda): ids
   * under the parent's id, its depth. An overload of its own: stripInternal removes a whole
   * declaration whose comment says internal, and the public one must stay in the .d.ts.
   */
  constructor(options: InitOptions | undefined, internals: { backend?: Backend | Promise<Backend>; nest?: { idPrefix: string; depth: number; runId: string } });
  constructor(options?: InitOptions, internals?: { backend?: Backend | Promise<Backend>; nest?: { idPrefix: string; depth: number; runId: string } }) {
    this.options = resolveInitOptions(options);
    this.defaultRun = { timeoutMs: this.options.taskTimeoutMs, memoryMB: this.options.taskMemoryMB };
    this.jobId = this.options.jobId;
    this.nest = internals?.nest;
    // A task's session on Lambda works in the run of the task that made it.
    this.runId = internals?.nest?.runId ?? randomRunId();
    this.storeScope = `${this.jobId}/${this.runId}`;
    if (this.options.observe.any) this.observing = this.startObservers();
    const made = internals?.backend ? Promise.resolve(internals.backend) : createBackend(this.options);
    this.starting = made.then((b) => {
      if (this.closed) {
        void b.invoker.close().then(() => b.close?.());
        throw new UsageError('the runtime was shut down while starting', undefined, 'SHUT_DOWN');
      }
      // The driver's own store traffic is reported to listeners (cost, dashboard).
      const backend = Object.create(b, { store: { value: observedStore(b.store, this.hub), enumerable: true } }) as Backend;
      this.backend = backend;
      b.invoker.serve?.(this.host);
      this.pump();
      return backend;
    });
    // Failures surface through ready() and through every task; never as an unhandled rejection.
    this.starting.catch((err: unknown) => this.failAllPending((this.startFailure = err instanceof Error ? err : new VolleyError(String(err)))));
  }

  /** Resolves once the backend is up (workers can be started, the store reached) and the observers asked for are running. */
  async ready(): Promise<this> {
    await Promise.all([this.starting, this.observing]);
    return this;
  }

  get isShutdown(): boolean {
    return this.closed;
  }

  /** Target name of the backend ('local', ...). */
  get target(): string {
    return this.options.target;
  }

  /** Submits a task (what `rf.remote(...args)` does on the default runtime). */
  remote<F extends AnyFunction>(rf: RemoteFunction<F>, ...args: RemoteArgs<Parameters<F>>): ObjectRef<Resolved<Awaited<ReturnType<F>>>> {
    return this.submit(rf.definition, rf.taskOptions, args as unknown[]) as ObjectRef<Resolved<Awaited<ReturnType<F>>>>;
  }

  /** Starts an actor on this runtime (what `X.remote(...args)` does on the default runtime). */
  actor<C extends AnyClass>(actorClass: ActorClass<C>, ...args: RemoteArgs<ConstructorParameters<C>>): ActorHandle<InstanceType<C>> {
    this.checkOpen(`${actorClass.className}.remote()`);
    return actorClass.startOn(this, args as unknown[]);
  }

  /**
   * Submits a run of the task `def` with its options and arguments.
   * @internal
   */
  submit(def: TaskDefinition, taskOptions: Readonly<TaskOptions>, args: unknown[], hooks?: TaskHooks, at?: { id: string; parentId: string }): ObjectRef<unknown> {
    // The program's own task without a timeout of its own (most are): depth 0, nothing more to
    // check. The rest takes `submitChecked`, so this path stays small (it runs once per task).
    if (this.closed || at !== undefined || this.nest !== undefined || taskOptions.timeoutMs !== undefined) return this.submitChecked(def, taskOptions, args, hooks, at);
    const bytes = this.encodeTaskArgs(args);
    const id = this.newId(def.name);
    this.addTask(id, def.name, def.module, taskOptions, this.encodedDeps, bytes, 0, undefined, hooks);
    return this.newRef(id);
  }

  /** `submit` of a task that is not the program's own plain one: a running task's call, a nested session's, a timeout to check; or after shutdown. */
  private submitChecked(def: TaskDefinition, taskOptions: Readonly<TaskOptions>, args: unknown[], hooks: TaskHooks | undefined, at: { id: string; parentId: string } | undefined): ObjectRef<unknown> {
    if (this.closed) this.checkOpen(`${def.name}.remote()`);
    if (taskOptions.timeoutMs !== undefined) checkTaskTimeoutForTarget(this.options.target, `${def.name}: timeoutMs`, taskOptions.timeoutMs);
    // `at`: a running task's call (an actor call sent over its thread's channel), under the id the task made.
    const parent = at && this.runningTask(at.parentId);
    if (at && (!parent || this.objects.has(at.id))) throw new UsageError(`${def.name}.remote(): the task ${at.parentId} that made this call is not running`);
    const depth = parent ? parent.depth + 1 : this.nest ? this.nest.depth + 1 : 0;
    if (depth > this.options.maxTaskDepth) throw new TaskDepthError(def.name, this.options.maxTaskDepth);
    const bytes = this.encodeTaskArgs(args);
    const id = at ? at.id : this.newId(def.name);
    if (parent) (parent.children ??= []).push(id);
    this.addTask(id, def.name, def.module, taskOptions, this.encodedDeps, bytes, depth, parent, hooks);
    return this.newRef(id);
  }

  /** Encodes a task's argument list; the entries of the refs among them are left in `encodedDeps`. */
  private encodeTaskArgs(args: unknown[]): Uint8Array {
    // Kept as a stack: a getter among the arguments may submit a task of its own.
    const outer = this.argDeps;
    const outerSet = this.argDepSet;
    this.argDeps = NO_ENTRIES;
    this.argDepSet = undefined;
    try {
      return encodeArgs(args, this.collectRef, this.allocator);
    } finally {
      this.encodedDeps = this.argDeps;
      this.argDeps = outer;
      this.argDepSet = outerSet;
    }
  }

  /** The entries of the refs among the arguments `encodeTaskArgs` encoded last, each once, in order (NO_ENTRIES when none: the task's own list from then on). */
  private encodedDeps: readonly Entry[] = NO_ENTRIES;

  /** The entries of the refs among the arguments `encodeTaskArgs` is encoding, each once, in order; NO_ENTRIES until the first. */
  private argDeps: Entry[] = NO_ENTRIES;

  /** Where `encodeArgs` reports the refs of `submit`'s arguments (one function for every call: this runs once per task). */
  private readonly collectRef = (ref: ObjectRef<unknown>, path: string): void => {
    const e = ref.owner === (this as unknown) ? this.objects.get(ref.id) : undefined;
    if (!e) throw new UsageError(`${path} is a ref from another runtime (${ref.id}); refs can only be used on the runtime that made them`);
    let deps = this.argDeps;
    if (deps === NO_ENTRIES) deps = this.argDeps = [];
    // Two ref objects with one id are one dependency. Lists are short; a long one is searched
    // through a Set (made once it is long).
    if (deps.length < 16 ? !deps.includes(e) : !(this.argDepSet ??= new Set(deps)).has(e)) {
      deps.push(e);
      this.argDepSet?.add(e);
    }
  };
  private argDepSet?: Set<Entry>;

  /**
   * Enters an encoded task into the DAG: it runs once its ref arguments are ready. `deps`
   * becomes the task's own list. This runs once per task: what most tasks do not need (hooks,
   * events, large arguments, a failed argument) is done out of line, in functions that create
   * the closures it needs, so that this one creates none.
   */
  private addTask(
    id: string,
    fn: string,
    module: string | undefined,
    taskOptions: Readonly<TaskOptions>,
    deps: readonly Entry[],
    bytes: Uint8Array,
    depth: number,
    parent: Task | undefined,
    hooks?: TaskHooks,
  ): void {
    const task: Task = {
      id,
      fn,
      module,
      options: taskOptions.timeoutMs === undefined && taskOptions.memoryMB === undefined ? this.defaultRun : this.runOptions(taskOptions),
      taskOptions,
      deps,
      args: undefined,
      missing: 0,
      done: false,
      depth,
      parent,
      phase: 0,
      blocked: 0,
      runs: 0,
      inFlight: false,
      hooks,
      turn: -1,
    };
    this.objects.add(id).producer = task;
    if (this.hub.emit) this.emitSubmitted(task);
    if (hooks?.after) this.awaitHook(task, hooks.after);
    let failed = false;
    for (let i = 0; i < deps.length; i++) {
      const dep = deps[i]!;
      dep.uses++;
      if (dep.state === PENDING) {
        // Made with its first element: `[].push` would give it room for 16.
        if (dep.dependents) dep.dependents.push(task);
        else dep.dependents = [task];
        task.missing++;
      } else if (dep.state === FAILED) failed = true;
    }
    if (failed || this.startFailure || bytes.length > this.options.inlineThresholdBytes) {
      this.addTaskAside(task, bytes);
      return;
    }
    task.args = { kind: 'inline', bytes };
    if (task.missing === 0) this.enqueue(task);
    else this.followNow(task);
  }

  /** The run options of a task submitted with a memory size or timeout of its own. */
  private runOptions(taskOptions: Readonly<TaskOptions>): Readonly<ResolvedTaskOptions> {
    return { timeoutMs: taskOptions.timeoutMs ?? this.options.taskTimeoutMs, memoryMB: taskOptions.memoryMB ?? this.options.taskMemoryMB };
  }

  private emitSubmitted(task: Task): void {
    this.hub.emit?.({ type: 'submitted', time: (task.submittedAt = performance.now()), taskId: task.id, fn: task.fn });
  }

  /** An actor's call waits for `after` (see TaskHooks) as for an argument. */
  private awaitHook(task: Task, after: Promise<unknown>): void {
    task.missing++;
    after.then(
      () => this.depReady(task),
      (err: unknown) => this.failTask(task, err as Error),
    );
  }

  /** `addTask` of a task with a failed argument, of any task once the backend failed to start, or of large arguments. */
  private addTaskAside(task: Task, bytes: Uint8Array): void {
    const failedDep = task.deps.find((dep) => dep.state === FAILED);
    if (failedDep) {
      this.failTask(task, new DependencyError(task.fn, task.id, failedDep.error!));
    } else if (this.startFailure) {
      this.failUnrun(task, this.startFailure);
    } else {
      // Large arguments are uploaded once by the driver and reach the worker as a store key.
      task.missing++;
      let key = '';
      this.starting
        .then((b) => this.storeCall(() => b.store.put((key = `${this.jobPrefix(b)}${task.id}.args`), bytes)))
        .then(
          () => {
            task.args = { kind: 'stored', key, size: bytes.length };
            this.depReady(task);
          },
          (err: unknown) => this.failTask(task, err as Error),
        );
    }
  }

  /** Stores a value once and returns a ref to pass to many tasks (Ray's `put`). */
  put<T>(value: T): ObjectRef<T> {
    this.checkOpen('put()');
    const bytes = encode(value, 'put(value)', this.allocator);
    const id = this.newId('put');
    this.putBytes(this.objects.add(id), bytes);
    return this.newRef<T>(id);
  }

  private putBytes(entry: Entry, bytes: Uint8Array): void {
    const id = entry.id;
    if (bytes.length <= this.options.inlineThresholdBytes) {
      this.settle(entry, { kind: 'inline', bytes });
    } else {
      let key = '';
      this.starting
        .then((b) => this.storeCall(() => b.store.put((key = `${this.jobPrefix(b)}${id}`), bytes)))
        .then(
          () => this.settle(entry, { kind: 'stored', key, size: bytes.length }),
          (err: unknown) => this.settleFailed(entry, err as Error),
        );
    }
  }

  /** The value of one ref, or the values of several in order; re-throws a task's failure. */
  get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
  get<R extends readonly ObjectRef<unknown>[]>(refs: readonly [...R], options?: GetOptions): Promise<Values<R>>;
  get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
  async get(refOrRefs: ObjectRef<unknown> | readonly ObjectRef<unknown>[], options?: GetOptions): Promise<unknown> {
    const single = !Array.isArray(refOrRefs);
    const refs = (single ? [refOrRefs] : refOrRefs) as readonly ObjectRef<unknown>[];
    const entries = this.entriesOf('get()', refs);
    const timeoutMs = checkGetOptions(options);
    const started = Date.now();
    if (!(await this.objects.settled(entries, entries.length, timeoutMs))) {
      throw new GetTimeoutError(
        timeoutMs!,
        entries.filter((e) => e.state === PENDING).map((e) => `${e.id}`),
      );
    }
    for (const e of entries) if (e.state === FAILED) throw e.error;
    // The refs stay reachable until their values are read: a ref collected mid-read would free
    // (delete) the very object being read.
    const values = (single ? this.valueOf(entries[0]!) : Promise.all(entries.map((e) => this.valueOf(e)))).finally(() => refs.length);
    if (timeoutMs === undefined) return values;
    // The timeout covers reading stored values too: a stalled store cannot hold get() past it.
    let timer: { clear(): void } | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setLongTimeout(
        () => {
          values.catch(() => undefined);
          reject(
            new GetTimeoutError(
              timeoutMs,
              entries.filter((e) => e.payload?.kind === 'stored').map((e) => `${e.id} (reading it from the store)`),
            ),
          );
        },
        Math.max(0, timeoutMs - (Date.now() - started)),
      );
    });
    try {
      return await Promise.race([values, late]);
    } finally {
      timer!.clear();
    }
  }

  /** Waits until `numReturns` of the refs are ready (done or failed), or the timeout passes. */
  async wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<WaitResult<T>> {
    checkRefArray('wait()', refs);
    checkWaitKeys(options);
    const entries = this.entriesOf('wait()', refs);
    const { numReturns, timeoutMs } = checkWaitArgs(refs, options);
    await this.objects.settled(entries, numReturns, timeoutMs);
    const ready: ObjectRef<T>[] = [];
    const pending: ObjectRef<T>[] = [];
    entries.forEach((e, i) => (e.state !== PENDING && ready.length < numReturns ? ready : pending).push(refs[i]!));
    return { ready, pending };
  }

  /**
   * Cancels the task behind `ref` (Ray's `cancel`). Not started yet: it never starts. Running:
   * its signal is aborted (read it inside the task with `taskContext().signal`); with `force`
   * it is stopped: its worker thread is terminated, or on Lambda its answer is abandoned (the
   * function runs on, and is billed, until it returns or reaches its timeout: a task that
   * watches its signal stops at its timeout at the latest). Either way `get(ref)` raises
   * TaskCancelledError at once, and its dependents fail with it as `cause`. With `recursive`
   * (the default) the tasks it started are cancelled too. A finished task is left alone.
   */
  cancel(ref: ObjectRef<unknown>, options?: CancelOptions): void {
    const [entry] = this.entriesOf('cancel()', [ref]);
    const { force, recursive } = checkCancelOptions(options);
    if (entry!.state === PENDING && !entry!.producer) {
      throw new UsageError(`cancel(): ${entry!.id} was made by put(), not by a task; only a task's ref can be cancelled`);
    }
    this.cancelTask(entry!, force, recursive);
  }

  /**
   * Records that the task `parentTaskId` started the task behind `child` (a nested task), so
   * `cancel(parent, { recursive: true })` reaches it. @internal
   */
  addChild(parentTaskId: string, child: ObjectRef<unknown>): void {
    const parent = this.objects.get(parentTaskId)?.producer;
    if (parent) (parent.children ??= []).push(child.id);
  }

  /** Ids of the tasks a task started (nested tasks); for cancelling a task's children. @internal */
  childrenOf(taskId: string): readonly string[] {
    return this.objects.get(taskId)?.producer?.children ?? [];
  }

  /** What workers reported, by task function: counts and total fetch/run/store times. */
  stats(): Map<string, TaskStats> {
    return new Map([...this.statsByFn].map(([k, v]) => [k, { ...v }]));
  }

  /**
   * Where the objects of refs a task's result holds are, once all are ready (the task session's
   * part, when this runtime serves a task on Lambda).
   * @internal
   */
  async contained(ids: string[]): Promise<ContainedRefs> {
    const entries = ids.map((id) => {
      const e = this.objects.get(id);
      if (!e) throw new UsageError(`the result holds ref ${id}, whose object is gone`);
      return e;
    });
    await this.objects.settled(entries, entries.length, undefined);
    const out: ContainedRefs = {};
    for (const e of entries) {
      if (e.state === FAILED) throw e.error;
      this.addPayloads(out, e);
    }
    return out;
  }

  /**
   * The task this runtime served (on Lambda) has finished: calls still running are abandoned,
   * and nothing is freed from here any more (what its result holds belongs to the driver now;
   * the rest goes with the job's prefix).
   * @internal
   */
  end(): void {
    if (this.sessionEnded) return;
    this.sessionEnded = true;
    this.closed = true;
    for (const t of this.backingOff) clearTimeout(t.retryTimer);
    this.backingOff.clear();
    this.failAllPending(new UsageError('the task that started this task has finished', undefined, 'SHUT_DOWN'));
    this.objects.clear();
    void this.starting.then((b) => b.invoker.close()).catch(() => undefined);
  }

  /**
   * Calls `listener` with every task event from now on (submitted, dispatched, finished, and
   * the driver's store traffic); returns a function that stops it. Listeners run synchronously
   * inside the runtime: keep them quick. One that throws is reported as an uncaught exception.
   */
  onEvent(listener: EventListener): () => void {
    if (typeof listener !== 'function') throw new UsageError(`onEvent() takes a function (event) => void, got ${typeof listener}`);
    return this.hub.add(listener);
  }

  /**
   * What the job has cost so far on Lambda and S3, in USD; on the embedded runtime and the
   * emulators, an estimate of what it would cost on Lambda. Counted from the start when
   * `init({ cost })` is on (the default off the embedded runtime, and with the dashboard or summary).
   */
  async cost(): Promise<CostReport> {
    const report = (await this.observing)?.costReport();
    if (!report) throw new UsageError("cost() needs the cost to be counted from the start: pass init({ cost: true }) (it is on by default for the 'aws', 'localstack' and 'emulator' targets)");
    return report;
  }

  /**
   * The job's timeline in the Chrome trace event format (for Perfetto or chrome://tracing): the
   * trace, or, given a path, written there (resolves to the path). Needs `init({ timeline: true })`
   * or VOLLEY_TIMELINE=1; keeps the most recent `maxTasks` tasks (default 50,000).
   */
  timeline(): Promise<ChromeTrace>;
  timeline(path: string): Promise<string>;
  async timeline(path?: string): Promise<ChromeTrace | string> {
    if (path !== undefined && (typeof path !== 'string' || path === '')) throw new UsageError(`timeline(path) takes a file path, got ${JSON.stringify(path)}`);
    const obs = await this.observing;
    const trace = obs?.trace();
    if (!trace) throw new UsageError('timeline() needs the timeline to be recorded from the start: pass init({ timeline: true }) or set VOLLEY_TIMELINE=1');
    if (path === undefined) return trace;
    const { writeTrace } = await import('./observe/timeline.js');
    return writeTrace(trace, path);
  }

  /** The live dashboard's URL (`init({ dashboard: true })` or VOLLEY_DASHBOARD=1). */
  async dashboardUrl(): Promise<string> {
    const url = (await this.observing)?.dashboardUrl;
    if (!url) throw new UsageError('dashboardUrl(): the dashboard is off; pass init({ dashboard: true }) or set VOLLEY_DASHBOARD=1');
    return url;
  }

  /** The backend, once started. @internal */
  backendReady(): Promise<Backend> {
    return this.starting;
  }

  /** Key prefix of this job's objects in the backend's store. @internal */
  jobPrefixOf(b: Backend): string {
    return this.jobPrefix(b);
  }

  /** Stops every worker or connection and removes the job's stored objects. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.backingOff) clearTimeout(t.retryTimer);
    this.backingOff.clear();
    this.failAllPending(new UsageError('the runtime was shut down before this task finished', undefined, 'SHUT_DOWN'));
    let backend: Backend | undefined;
    try {
      backend = await this.starting;
    } catch {
      await this.observing?.then(
        (o) => o.close(),
        () => undefined,
      );
      return;
    }
    const prefix = this.jobPrefix(backend);
    const bound = this.options.shutdownTimeoutMs;
    let timer: { clear(): void } | undefined;
    // Workers first, so that no task still running (or retried) writes after the job's prefix
    // is removed; then the store (bounded); then whatever the store needs (its client).
    try {
      await backend.invoker.close();
      // Bounded: a store that stalls or is gone cannot hold shutdown() past shutdownTimeoutMs.
      const removing = backend.store.deletePrefix(prefix);
      removing.catch(() => undefined);
      await Promise.race([
        removing,
        new Promise<never>((_, reject) => {
          timer = setLongTimeout(
            () =>
              reject(
                new ObjectStoreError(
                  `shutdown() could not remove the job's objects under ${prefix} within ${bound} ms (init({ shutdownTimeoutMs })): the store did not answer; they stay until the bucket's lifecycle rule expires them, or run npx volley cleanup --job ${this.jobId}`,
                  prefix,
                  { retryable: true },
                ),
              ),
            bound,
          );
        }),
      ]);
    } finally {
      timer?.clear();
      this.objects.clear();
      // Last: the summary and the dashboard's final state include the clean-up.
      await this.observing?.then(
        (o) => o.close(),
        () => undefined,
      );
      await backend.close?.();
    }
  }

  // --- internals ---------------------------------------------------------------------------

  /**
   * What the running tasks of this runtime's workers ask of it (the embedded runtime's threads):
   * the driver owns every ref, so a nested task's objects live in this table too.
   */
  private readonly host: TaskHost = {
    submit: (parentId, sub) => this.nestedSubmit(parentId, sub),
    put: (parentId, id, bytes) => {
      const parent = this.runningTask(parentId);
      if (!parent || this.closed || this.objects.has(id)) return;
      (parent.children ??= []).push(id);
      this.putBytes(this.objects.add(id), bytes);
    },
    await: (parentId, req) => this.nestedAwait(parentId, req),
    cancel: (parentId, id, force, recursive) => {
      // A task may cancel only what it started (the session checked the ref is its own).
      const parent = this.runningTask(parentId);
      const entry = this.objects.get(id);
      if (parent && entry && parent.children?.includes(id)) this.cancelTask(entry, force, recursive);
    },
  };

  private runningTask(id: string): Task | undefined {
    const t = this.objects.get(id)?.producer;
    return t && !t.done ? t : undefined;
  }

  private nestedSubmit(parentId: string, sub: NestedSubmit): void {
    const parent = this.runningTask(parentId);
    // A task that already finished (or a repeated id) has nothing left to start.
    if (!parent || this.closed || this.objects.has(sub.id)) return;
    if (sub.fn === ACTOR_OP_TASK) {
      // An actor operation (start, call, kill): the driver's actors take it (sdk/actor.ts).
      try {
        if (!actorOps) throw new ProtocolError('actor operations arrived, but no actor module is loaded in the driver');
        actorOps(this, parentId, sub);
      } catch (err) {
        if (!this.objects.has(sub.id)) {
          (parent.children ??= []).push(sub.id);
          this.settleFailed(this.objects.add(sub.id), err as Error);
        }
      }
      return;
    }
    (parent.children ??= []).push(sub.id);
    const depth = parent.depth + 1;
    let problem: Error | undefined;
    let options: TaskOptions = {};
    try {
      options = resolveTaskOptionsInput(`${sub.fn}.remote()`, sub.options);
    } catch (err) {
      problem = err as Error;
    }
    if (depth > this.options.maxTaskDepth) problem = new TaskDepthError(sub.fn, this.options.maxTaskDepth);
    const unknown = sub.deps.find((d) => !this.objects.has(d));
    if (unknown !== undefined)
      problem ??= new UsageError(`${sub.fn}.remote() was given ref ${unknown}, whose object is gone: a ref made inside a task lives until that task returns, unless the task returns it`);
    if (problem) {
      this.objects.add(sub.id);
      this.settleFailed(this.objects.get(sub.id)!, problem);
      return;
    }
    this.addTask(
      sub.id,
      sub.fn,
      sub.module,
      options,
      sub.deps.map((d) => this.objects.get(d)!),
      sub.args,
      depth,
      parent,
    );
  }

  private async nestedAwait(parentId: string, req: AwaitRequest): Promise<AwaitReply> {
    const parent = this.runningTask(parentId);
    if (!parent) throw new ProtocolError(`task ${parentId} asked to wait for refs but is not running`);
    const entries = req.refs.map((id) => this.objects.get(id));
    const gone = req.refs.findIndex((_, i) => !entries[i]);
    if (gone >= 0) throw new UsageError(`ref ${req.refs[gone]} is gone: a ref made inside a task lives until that task returns, unless the task returns it`);
    const live = entries as Entry[];
    const run = parent.runs;
    if (parent.blockedRun !== run) {
      parent.blockedRun = run;
      parent.blocked = 0;
    }
    // While it waits, the task does not count against maxConcurrency (its children may need the room).
    if (parent.blocked++ === 0 && parent.phase === 1) {
      parent.phase = 2;
      this.running--;
      this.pump();
    }
    try {
      await this.objects.settled(live, req.numReturns, req.timeoutMs);
    } finally {
      // Only while the same run goes on: a later run counts its own.
      if (parent.blockedRun === run && --parent.blocked === 0 && parent.phase === 2) {
        parent.phase = 1;
        this.running++;
      }
    }
    const reply: AwaitReply = { states: live.map((e) => e.state as 0 | 1 | 2) };
    if (req.payloads) {
      reply.payloads = live.map((e) => (e.state === READY ? e.payload : undefined));
      reply.contained = live.map((e) => (e.state === READY && e.contains ? this.addPayloads({}, e, false) : undefined));
      reply.errors = live.map((e): RemoteErrorInfo | undefined => (e.state === FAILED ? toRemoteErrorInfo(e.error) : undefined));
    }
    return reply;
  }

  /** Adds where `e`'s object is (unless `self` is false) and where the objects of refs inside it are. */
  private addPayloads(out: ContainedRefs, e: Entry, self = true): ContainedRefs {
    if (self) out[e.id] = e.payload!;
    if (e.contains) for (const id of e.contains) out[id] = this.objects.get(id)!.payload!;
    return out;
  }

  /** The result of a task holds refs: they live while it does (a Lambda worker's objects join the table here). */
  private adopt(entry: Entry, refs: ContainedRefs): void {
    const ids = Object.keys(refs);
    const prefix = this.backend ? this.jobPrefix(this.backend) : '';
    for (const id of ids) {
      const p = refs[id]!;
      if (p.kind === 'stored' && !p.key.startsWith(prefix)) throw new ProtocolError(`the result of task ${entry.id} holds ref ${id} stored at ${p.key.slice(0, 200)}, outside this run (${prefix})`);
    }
    for (const id of ids) {
      let e = this.objects.get(id);
      if (!e) {
        e = this.objects.add(id);
        e.dropped = true;
        this.objects.markReady(e, refs[id]!);
      }
      e.uses++;
    }
    entry.contains = ids;
  }

  /**
   * Loads and starts the observers. Events of tasks submitted before they are attached (the
   * import is asynchronous) are held and handed to them first, so their counts start at zero.
   */
  private async startObservers(): Promise<Observers> {
    const early: VolleyEvent[] = [];
    const stopHolding = this.hub.add((e) => early.push(e));
    try {
      const { Observers } = await import('./observe/index.js');
      const observers = await Observers.start(this.options.observe, {
        job: this.jobId,
        target: this.options.target,
        region: this.options.aws?.region ?? 'us-east-1',
        multipartThresholdBytes: this.options.aws?.multipartThresholdBytes ?? optionTable.aws.multipartThresholdBytes.default,
        // S3Store's part size
        partSizeBytes: 8 * 1024 * 1024,
      });
      // What happened meanwhile first, then the runtime's own events (no await in between).
      for (const e of early) observers.deliver(e);
      early.length = 0;
      observers.attach(this.hub);
      return observers;
    } finally {
      stopHolding();
    }
  }

  /** Emits a task's finished event (only called while someone listens). */
  private emitFinished(emit: (e: VolleyEvent) => void, task: Task, outcome: TaskOutcome, res?: ResultEnvelope, err?: Error): void {
    emit({ type: 'finished', ...this.runFields(task, res), outcome, result: res && resultInfo(res), error: err && errorInfo(err, outcome) });
  }

  /** What a task's finished and retrying events both say of its run: who ran it, when, for how long. */
  private runFields(task: Task, res: ResultEnvelope | undefined) {
    return {
      time: performance.now(),
      taskId: task.id,
      fn: task.fn,
      attempt: Math.max(1, task.runs),
      memoryMB: task.options.memoryMB,
      submittedAt: task.submittedAt ?? performance.now(),
      dispatchedAt: task.dispatchedAt,
      deps: task.deps.map((e) => e.id),
      worker: res?.worker,
      startedAt: driverTime(res?.timing.startedAt),
      timing: res?.timing,
    };
  }

  /**
   * A run ended without a value and the task will run again (a retry after `delayMs`, or once
   * a lost argument is rebuilt): the run's own event (only called while someone listens). The
   * run's worker and dispatch time go with it, so the task's finished event says only what a
   * later run did.
   */
  private emitRetrying(emit: (e: VolleyEvent) => void, task: Task, err: TaskError, reason: 'retry' | 'argument-lost', delayMs?: number): void {
    const res = task.lastResult;
    const outcome = outcomeOfError(err);
    emit({ type: 'retrying', ...this.runFields(task, res), outcome, reason, delayMs, error: errorInfo(err, outcome) });
  }

  private newRef<T>(id: string): ObjectRef<T> {
    const ref = new ObjectRef<T>(id, this as never);
    this.objects.track(ref, id);
    return ref;
  }

  /** A task ran (or failed): its arguments are no longer needed for it. */
  private taskDone(task: Task): void {
    task.done = true;
    if (task.retryTimer || task.children) this.endRunState(task);
    const deps = task.deps;
    for (let i = 0; i < deps.length; i++) this.objects.release(deps[i]!);
    if (task.args?.kind === 'stored') void this.backend?.store.delete?.([task.args.key]).catch(() => undefined);
  }

  /** `taskDone` of a task waiting out a retry's backoff, or that made tasks or objects while it ran. */
  private endRunState(task: Task): void {
    if (task.retryTimer) {
      clearTimeout(task.retryTimer);
      task.retryTimer = undefined;
      this.backingOff.delete(task);
    }
    // What a finished task made and did not return is no longer anyone's. Its own producer
    // stays (lineage: its result may be rebuilt).
    if (task.children) {
      for (const id of task.children) {
        const e = this.objects.get(id);
        // Tasks recorded with addChild are the program's own (it holds their refs): not this task's to drop.
        if (e && (!e.producer || e.producer.parent === task)) {
          e.dropped = true;
          this.objects.maybeFree(e);
        }
      }
    }
  }

  /** Large encodings go straight into the store's own memory when it offers any. */
  private readonly allocator = (n: number): Uint8Array => {
    const store = this.backend?.store;
    return n > this.options.inlineThresholdBytes && store?.allocate ? store.allocate(n) : new Uint8Array(n);
  };

  private jobPrefix(b: Backend): string {
    // Made once: every dispatch names its result key under it.
    const cached = this.prefixOf;
    if (cached?.[0] === b.keyPrefix) return cached[1];
    const prefix = `${b.keyPrefix}jobs/${this.storeScope}/`;
    this.prefixOf = [b.keyPrefix, prefix];
    return prefix;
  }
  private prefixOf?: [string, string];

  private newId(label: string): string {
    if (this.nest) return `${this.nest.idPrefix}${(++this.seq).toString(36)}`;
    return `${label}-${(++this.seq).toString(36)}`;
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new UsageError(`${what} was called after shutdown(); call init() (or create a new Runtime) first`);
  }

  private entriesOf(where: string, refs: readonly unknown[]): Entry[] {
    return refs.map((r, i) => {
      if (!(r instanceof ObjectRef)) {
        throw new UsageError(`${where}: item ${i} is not an ObjectRef (got ${r === null ? 'null' : typeof r}); pass refs returned by .remote() or put()`);
      }
      const e = this.objects.get(r.id);
      if (!e || r.owner !== (this as unknown)) {
        throw new UsageError(
          this.closed ? `${where}: ref ${r.id} belongs to a runtime that was shut down; its value is gone` : `${where}: ref ${r.id} belongs to another runtime; use that runtime's get()`,
        );
      }
      return e;
    });
  }

  /**
   * A store call of the driver's own (get, put, uploads), made again after a transient fault
   * (a retryable error: S3 5xx or SlowDown past the SDK's own retries), up to 3 more times with
   * the retry backoff.
   */
  private async storeCall<T>(op: () => Promise<T>): Promise<T> {
    for (let retry = 1; ; retry++) {
      try {
        return await op();
      } catch (err) {
        if (retry > 3 || this.closed || !(err instanceof VolleyError && err.retryable)) throw err;
        await new Promise((r) => setTimeout(r, retryDelay(retry, this.options.retryBaseDelayMs, this.options.retryMaxDelayMs)));
      }
    }
  }

  /** The value of a ready entry; a stored object found missing is rebuilt first (lineage). */
  private async valueOf(e: Entry): Promise<unknown> {
    for (;;) {
      const p = e.payload!;
      if (p.kind === 'inline' && !e.contains) return decode(p.bytes, undefined, this);
      const backend = await this.starting;
      try {
        return await decodeResolved(p, e.contains && this.addPayloads({}, e, false), (key) => this.storeCall(() => backend.store.get(key)), this);
      } catch (err) {
        // Only this entry's own stored object is rebuilt here (a contained ref's is its producer's).
        if (!(err instanceof ObjectStoreError) || err.code !== 'OBJECT_MISSING' || this.closed || p.kind !== 'stored' || err.key !== p.key) throw err;
        if (e.payload === p) this.rebuild(e);
        await this.objects.settled([e], 1, undefined);
        if (e.state === FAILED) throw e.error;
      }
    }
  }

  private enqueue(task: Task): void {
    this.queue.push(task);
    this.pump();
  }

  private depReady(task: Task): void {
    if (task.done) return;
    // A follower in flight waits for its invoker's answer, not for its arguments.
    if (--task.missing === 0 && !task.inFlight) {
      this.readyFirst.push(task);
      this.pump(false);
    }
  }

  /** Tasks that may be in flight at once: an invoker that runs several short tasks per invocation takes more of them than maxConcurrency. */
  private inFlightLimit(backend: Backend): number {
    return this.options.maxConcurrency * (backend.invoker.tasksPerSlot?.() ?? 1);
  }

  /**
   * Dispatches queued tasks while there is room in flight: the ready dependents first. After a
   * run (`fresh` false, while an invoker hands its results over one by one) the tasks that waited
   * for nothing go out on a later microtask, once every result of the handover is in: the room
   * the results freed goes to the dependents they made ready first, with room to chain their own
   * dependents behind them (see `chainFrom`).
   */
  private pump(fresh = true): void {
    const backend = this.backend;
    if (!backend || this.closed) return;
    const limit = this.inFlightLimit(backend);
    const first = this.readyFirst;
    while (this.running < limit && this.readyHead < first.length) {
      const task = first[this.readyHead]!;
      first[this.readyHead++] = undefined as never;
      if (!task.done) this.dispatch(task, backend);
    }
    if (this.readyHead === first.length) {
      first.length = 0;
      this.readyHead = 0;
    }
    const queue = this.queue;
    if (!fresh) {
      if (this.running < limit && this.queueHead < queue.length && !this.pumping) {
        this.pumping = true;
        queueMicrotask(this.pumpLater);
      }
    } else {
      while (this.running < limit && this.queueHead < queue.length) {
        const task = queue[this.queueHead]!;
        queue[this.queueHead++] = undefined as never;
        if (!task.done) this.dispatch(task, backend);
      }
      // Emptied: it starts again from the front (most pumps of a large DAG end here).
      if (this.queueHead !== 0 && this.queueHead === queue.length) {
        queue.length = 0;
        this.queueHead = 0;
      }
    }
    if (this.readyHead > 1024 || this.queueHead > 1024) this.trimQueues();
  }

  /** Drops the dispatched heads of the queues once they are most of them (a long DAG's queue stays as long as what waits in it). */
  private trimQueues(): void {
    if (this.readyHead > 1024 && this.readyHead * 2 > this.readyFirst.length) {
      this.readyFirst.splice(0, this.readyHead);
      this.readyHead = 0;
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /**
   * Hands a task to the invoker. `after`: the task is a follower (see `chainFrom`), these
   * arguments are its producers' results, still pending, which the invoker fills in. This runs
   * once per task: the rare cases (an argument not ready or failed, an envelope too large,
   * events listened to) are out of line, and it creates no closure but the invoker's callback.
   */
  private dispatch(task: Task, backend: Backend, after?: string[]): void {
    // A task without ref arguments shares one empty record (envelopes are not written to).
    const deps = task.deps.length === 0 ? (NO_DEPS as Record<string, Payload>) : this.depPayloads(task, after);
    if (deps === undefined || (!after && task.missing > 0)) return;
    const run = ++task.runs;
    task.inFlight = true;
    const prefix = this.jobPrefix(backend);
    const envelope = buildEnvelope({
      job: this.storeScope,
      taskId: task.id,
      fn: task.fn,
      module: task.module,
      args: task.args!,
      deps,
      resultKey: `${prefix}${task.id}`,
      inlineLimit: this.options.inlineThresholdBytes,
      depth: task.depth,
      attempt: run,
    });
    this.running++;
    task.phase = 1;
    const options = new RunOptions(task, backend, prefix, this.objects, after);
    // Most envelopes fit as they are: invoked now, without waiting a turn for fitEnvelope.
    if (inlineBytes(envelope) <= inlineBudget(backend.payloadLimitBytes ?? DEFAULT_PAYLOAD_LIMIT_BYTES)) {
      this.invoke(task, run, envelope, options, backend, after);
      if (backend.invoker.chains) this.chainFrom(task, backend);
    } else this.fitAndInvoke(task, run, envelope, options, backend, after);
  }

  /**
   * The payloads of a task's ready arguments, by object id: a dictionary from the start, not a
   * hidden class per key (ids are unique in the run). A follower's producers' results are left
   * out (its invoker fills them in). Undefined when an argument is not ready: one being rebuilt
   * (its object was lost) is waited for again; a failed one fails the task.
   */
  private depPayloads(task: Task, after: string[] | undefined): Record<string, Payload> | undefined {
    const out = Object.create(null) as Record<string, Payload>;
    const deps = task.deps;
    for (let i = 0; i < deps.length; i++) {
      const e = deps[i]!;
      if (e.state === READY) this.addPayloads(out, e);
      else if (!after) {
        this.awaitArgsAgain(task);
        return undefined;
      }
    }
    return out;
  }

  /** A task to dispatch has arguments that are not ready: it waits for them again, or fails with the first that failed. */
  private awaitArgsAgain(task: Task): void {
    for (const e of task.deps) {
      if (e.state === READY) continue;
      if (e.state === FAILED) {
        this.failTask(task, new DependencyError(task.fn, task.id, e.error!));
        return;
      }
      task.missing++;
      (e.dependents ??= []).push(task);
    }
  }

  /** `dispatch` of an envelope with more inline bytes than the invoker takes: they are placed in the store first. */
  private fitAndInvoke(task: Task, run: number, envelope: TaskEnvelope, options: InvokeOptions, backend: Backend, after: string[] | undefined): void {
    fitEnvelope(envelope, inlineBudget(backend.payloadLimitBytes ?? DEFAULT_PAYLOAD_LIMIT_BYTES), options.place!).then(
      (env) => this.invoke(task, run, env, options, backend, after),
      (err: unknown) => this.finished(task, run, err),
    );
  }

  /** Hands run `run` of a task, as `env`, to the invoker (see `dispatch`). */
  private invoke(task: Task, run: number, env: TaskEnvelope, options: InvokeOptions, backend: Backend, after: string[] | undefined): void {
    if (this.hub.emit) this.emitDispatched(task, run, env, after);
    const invoker = backend.invoker;
    if (invoker.invokeThen) invoker.invokeThen(env, options, (res, err) => this.finished(task, run, err, res));
    else
      invoker.invoke(env, options).then(
        (res) => this.finished(task, run, undefined, res),
        (err: unknown) => this.finished(task, run, err),
      );
  }

  /** A run's dispatched event (only called while someone listens); a follower's is held until its invoker answers. */
  private emitDispatched(task: Task, run: number, env: TaskEnvelope, after: string[] | undefined): void {
    const emit = this.hub.emit;
    if (!emit) return;
    const time = performance.now();
    const e = { type: 'dispatched', time, taskId: task.id, fn: task.fn, attempt: run, memoryMB: task.options.memoryMB, deps: task.deps.map((e) => e.id), ...storedInputs(env) } as const;
    if (after) task.heldDispatch = e;
    else {
      emit(e);
      task.dispatchedAt = time;
    }
  }

  /**
   * A short task was just handed to an invoker that chains: its waiting dependents whose other
   * arguments are all ready, or results of tasks handed over in this same turn, are handed over
   * now too, as followers (`InvokeOptions.after`), and so on down the DAG. The invoker runs a
   * follower in the invocation of its producers, after them, with their results: one round
   * trip instead of one per level of the DAG. A follower it cannot place so, or whose producer
   * did not succeed, comes back NOT_CHAINED and waits for its arguments as any task (`unchained`).
   */
  private chainFrom(first: Task, backend: Backend): void {
    const invoker = backend.invoker;
    if (!invoker.chains!(first.fn)) return;
    first.turn = this.turn;
    if (!this.turnTicking) {
      this.turnTicking = true;
      setImmediate(this.nextTurn);
    }
    if (this.chainWork) {
      this.chainWork.push(first);
      return;
    }
    const work = (this.chainWork = [first]);
    const limit = this.inFlightLimit(backend);
    try {
      while (work.length > 0 && this.running < limit) {
        const dependents = this.objects.get(work.pop()!.id)?.dependents;
        if (!dependents) continue;
        for (let i = 0; i < dependents.length && this.running < limit; i++) {
          const d = dependents[i]!;
          const after = this.followerArgs(d, backend);
          // Dispatching it pushes it onto `work` (this.chainWork), for its own dependents.
          if (after) this.dispatch(d, backend, after);
        }
      }
    } finally {
      this.chainWork = undefined;
    }
  }

  /** A task just submitted whose arguments are the results of tasks handed over this turn follows them (see `chainFrom`). */
  private followNow(task: Task): void {
    const backend = this.backend;
    if (!backend?.invoker.chains || this.closed || this.running >= this.inFlightLimit(backend)) return;
    const after = this.followerArgs(task, backend);
    if (after) this.dispatch(task, backend, after);
  }

  /** A waiting task that may follow the tasks handed over this turn: the ids of the arguments it takes from them; otherwise undefined. */
  private followerArgs(d: Task, backend: Backend): string[] | undefined {
    if (d.done || d.inFlight || d.missing === 0 || d.hooks || d.args === undefined || d.retryTimer || !backend.invoker.chains!(d.fn)) return undefined;
    let after: string[] | undefined;
    const deps = d.deps;
    for (let i = 0; i < deps.length; i++) {
      const e = deps[i]!;
      if (e.state === READY) continue;
      const p = e.producer;
      if (e.state !== PENDING || !p || !p.inFlight || p.phase !== 1 || p.turn !== this.turn) return undefined;
      // Named once (the wire format refuses an id twice), should an argument list repeat a ref.
      if (!after) after = [e.id];
      else if (!after.includes(e.id)) after.push(e.id);
    }
    return after;
  }

  /**
   * The invoker did not run follower run `run` with its producers: not a run. The task waits
   * for its arguments as before it was handed over (it never left their dependents) and is
   * dispatched once they are ready; a producer that fails for good fails it with
   * DependencyError, as any dependent.
   */
  private unchained(task: Task, run: number): void {
    if (run !== task.runs || task.phase === 1) this.running--;
    if (task.done || run !== task.runs) {
      this.pump(false);
      return;
    }
    task.runs--;
    task.inFlight = false;
    task.phase = 0;
    task.heldDispatch = undefined;
    if (task.missing === 0) this.readyFirst.push(task);
    this.pump(false);
  }

  /**
   * Run number `run` of a task came back with a result envelope, or could not be run at all.
   * Only the latest run of an unfinished task counts: a late answer of an earlier run (the task
   * was retried, rebuilt or cancelled meanwhile) is ignored.
   */
  private finished(task: Task, run: number, err: unknown, res?: ResultEnvelope): void {
    // Most answers: the latest run of an unfinished task returned a value, nothing held for it.
    if (err !== undefined || res === undefined || res.kind === 'error' || run !== task.runs || task.done || task.heldDispatch) {
      this.finishedAside(task, run, err, res);
      return;
    }
    // A run blocked in get/wait (phase 2) already left the running count.
    if (task.phase === 1) this.running--;
    task.inFlight = false;
    task.phase = 3;
    this.complete(task, res);
    this.pump(false);
  }

  /** `finished` of any other answer: a failure, a follower not chained, a late answer, a held event. */
  private finishedAside(task: Task, run: number, err: unknown, res: ResultEnvelope | undefined): void {
    if (isNotChained(err)) {
      this.unchained(task, run);
      return;
    }
    const held = task.heldDispatch;
    if (held && run === task.runs) {
      // A follower's run did happen: its dispatched event now, with the time it was handed over.
      task.heldDispatch = undefined;
      task.dispatchedAt = held.time;
      this.hub.emit?.(held);
    }
    // A run blocked in get/wait (phase 2) already left the running count.
    if (run !== task.runs || task.phase === 1) this.running--;
    if (run === task.runs) {
      task.inFlight = false;
      task.phase = 3;
    }
    if (task.done || run !== task.runs) {
      this.pump(false);
      return;
    }
    if (res && res.kind !== 'error') this.complete(task, res);
    else if (res) {
      addTiming(this.statsByFn, task.fn, res.timing);
      // Kept for the finished event: which worker ran the last run, and its timing.
      if (this.hub.emit) task.lastResult = res;
      this.runFailed(task, (outcomeOf(task.fn, task.id, res) as { error: TaskError }).error);
    } else {
      const failure = invokeFailure(task.fn, task.id, err);
      // A ConfigError (no worker can load the task's module) repeats on every run: never retried.
      if (failure instanceof TaskError) this.runFailed(task, failure);
      else this.failTask(task, failure);
    }
    this.pump(false);
  }

  /** A task's run returned a value (`res` is not an error): its ref settles, its dependents may run. */
  private complete(task: Task, res: ResultEnvelope & { kind: 'value' | 'stored' }): void {
    const entry = this.objects.get(task.id);
    // After shutdown() the table is gone; a late result has nowhere to go.
    if (task.done || !entry) return;
    addTiming(this.statsByFn, task.fn, res.timing);
    if (res.refs && !this.adoptRefs(task, entry, res.refs)) return;
    this.taskDone(task);
    const emit = this.hub.emit;
    if (emit) this.emitFinished(emit, task, 'ok', res);
    task.hooks?.onEnd?.(undefined);
    this.settle(entry, payloadOf(res));
    // Only a stored object can be lost; an inline one needs no lineage to rebuild it. (Not
    // before it is settled: a pending entry without a producer is a put() still uploading.)
    if (res.kind === 'value') entry.producer = undefined;
  }

  /** A result holds refs: they join the table (see `adopt`); false when they cannot, and the task failed. */
  private adoptRefs(task: Task, entry: Entry, refs: ContainedRefs): boolean {
    try {
      this.adopt(entry, refs);
      return true;
    } catch (err) {
      this.failTask(task, invokeFailure(task.fn, task.id, err));
      return false;
    }
  }

  /**
   * A run failed. A lost argument is rebuilt and the task runs again once it is back; a system
   * failure (or an exception `retryExceptions` accepts) is retried after a backoff, within
   * `maxRetries`; anything else fails the task, its error listing every run's failure.
   */
  private runFailed(task: Task, err: TaskError): void {
    if (err.remote?.code === 'OBJECT_MISSING' && err.fault === 'infrastructure') {
      const key = err.remote.key;
      // Stored results and spilled values live under the job's prefix and their object's id.
      const prefix = this.backend ? this.jobPrefix(this.backend) : '';
      const lost = key === undefined ? undefined : task.deps.find((e) => key === `${prefix}${e.id}` || (e.payload?.kind === 'stored' && e.payload.key === key));
      if (lost) {
        // An inline value is still in memory: what went is its copy spilled to the store, which
        // the next dispatch writes again (also when another task's report cleared it first).
        // Already being rebuilt (pending): the task waits for it like any argument.
        if (lost.payload?.kind === 'inline') lost.spilled = lost.spilledKey = undefined;
        else this.rebuild(lost);
        this.runEnded(task, err, 'argument-lost');
        // Runs again once the argument is back (dispatch waits for arguments not ready).
        this.enqueue(task);
        return;
      }
    }
    const o = task.taskOptions;
    const retries = task.failures?.length ?? 0;
    if (!this.closed && shouldRetry(err, retries, o.maxRetries ?? 3, o.retryExceptions)) {
      (task.failures ??= []).push(attemptFailure(task.runs, err));
      this.faultCounts.retries++;
      this.backingOff.add(task);
      const delay = retryDelay(retries + 1, this.options.retryBaseDelayMs, this.options.retryMaxDelayMs);
      // The timer first: a listener of the retrying event may cancel the task, which clears it.
      task.retryTimer = setTimeout(() => {
        task.retryTimer = undefined;
        this.backingOff.delete(task);
        if (!task.done) this.enqueue(task);
      }, delay);
      this.runEnded(task, err, 'retry', delay);
      return;
    }
    this.failTask(task, withAttempts(err, [...(task.failures ?? []), attemptFailure(task.runs, err)]));
  }

  /** A run ended and the task runs again: observers see the run; the task's next events are the next run's. */
  private runEnded(task: Task, err: TaskError, reason: 'retry' | 'argument-lost', delayMs?: number): void {
    const emit = this.hub.emit;
    if (emit) this.emitRetrying(emit, task, err, reason, delayMs);
    task.lastResult = task.dispatchedAt = undefined;
  }

  /**
   * Makes a ready entry whose stored object is gone pending again and runs its task again
   * (Ray's lineage reconstruction), within the task's `maxRetries`; arguments that were freed
   * meanwhile are rebuilt the same way. An object no task can rebuild fails with
   * ObjectLostError, and so do the tasks that need it.
   */
  private rebuild(lost: Entry): void {
    if (lost.state !== READY) return;
    const p = lost.producer;
    const key = lost.payload?.kind === 'stored' ? lost.payload.key : lost.id;
    const max = p?.taskOptions.maxRetries ?? 3;
    const why = !p
      ? "it was stored by put(), so no task can rebuild it; keep inputs that must outlive the bucket's expiry elsewhere and put() them again"
      : p.args?.kind === 'stored'
        ? `its task ${p.fn} (${p.id}) cannot run again: its arguments were larger than inlineThresholdBytes and were freed when it finished`
        : max !== -1 && (p.rebuilds ?? 0) >= max
          ? `its task ${p.fn} (${p.id}) was already rebuilt ${p.rebuilds} time(s), its maxRetries`
          : undefined;
    if (why !== undefined || !p) {
      lost.state = FAILED;
      lost.error = new ObjectLostError(lost.id, key, why!);
      return;
    }
    p.rebuilds = (p.rebuilds ?? 0) + 1;
    this.faultCounts.rebuilds++;
    const emit = this.hub.emit;
    if (emit) emit({ type: 'rebuilding', time: performance.now(), taskId: p.id, fn: p.fn, rebuild: p.rebuilds });
    p.lastResult = p.dispatchedAt = undefined;
    lost.state = PENDING;
    lost.payload = undefined;
    lost.spilled = lost.spilledKey = undefined;
    if (!this.objects.has(lost.id)) this.objects.readd(lost);
    p.done = false;
    p.failures = undefined;
    p.missing = 0;
    for (const d of p.deps) {
      d.uses++;
      if (!this.objects.has(d.id)) {
        // Freed after p first ran: its stored bytes were deleted with it.
        this.objects.readd(d);
        d.spilled = d.spilledKey = undefined;
        if (d.payload?.kind === 'stored') this.rebuild(d);
      }
    }
    this.enqueue(p);
  }

  private failTask(task: Task, err: Error): void {
    const entry = this.objects.get(task.id);
    if (task.done || !entry) return;
    this.taskDone(task);
    const failed = this.ended(task, err);
    const emit = this.hub.emit;
    if (emit) this.emitFinished(emit, task, outcomeOfError(failed), task.lastResult, failed);
    this.settleFailed(entry, failed);
  }

  /** A task failed: its hooks may replace the error. */
  private ended(task: Task, err: Error): Error {
    return task.hooks?.onEnd?.(err) ?? err;
  }

  private settle(entry: Entry, payload: Payload): void {
    if (entry.state !== PENDING) return;
    const deps = this.objects.markReady(entry, payload);
    if (deps) for (let i = 0; i < deps.length; i++) this.depReady(deps[i]!);
    this.objects.maybeFree(entry);
  }

  /** Fails an entry and, transitively, every task waiting on it (iteratively: chains may be long). */
  private settleFailed(first: Entry, firstErr: Error): void {
    const work: Array<[Entry, Error]> = [[first, firstErr]];
    while (work.length) {
      const [entry, err] = work.pop()!;
      const deps = this.objects.markFailed(entry, err);
      if (!deps) continue;
      for (const t of deps) {
        if (t.done) continue;
        this.taskDone(t);
        const dep = this.objects.get(t.id);
        if (!dep) continue;
        const depErr = this.ended(t, new DependencyError(t.fn, t.id, err));
        const emit = this.hub.emit;
        if (emit) this.emitFinished(emit, t, 'dependency', undefined, depErr);
        work.push([dep, depErr]);
      }
      this.objects.maybeFree(entry);
    }
  }

  private cancelTask(entry: Entry, force: boolean, recursive: boolean): void {
    const task = entry.producer;
    if (!task) return;
    if (recursive) {
      for (const id of task.children ?? []) {
        const child = this.objects.get(id);
        if (child) this.cancelTask(child, force, true);
      }
    }
    if (entry.state !== PENDING || task.done) return;
    const how = task.inFlight ? (force ? 'and its worker stopped' : 'while it ran') : 'before it started';
    if (task.inFlight) this.backend?.invoker.cancel?.(task.id, force);
    this.failTask(task, new TaskCancelledError(task.fn, task.id, how));
  }

  /**
   * Fails every pending entry with `err` (the backend could not start, or shutdown): a task that
   * has not ended ends with it, with its finished event, as any other failure; not through its
   * end hooks (an actor's call would take it for its worker's death and restart the actor).
   */
  private failAllPending(err: Error): void {
    // A snapshot: a task that ends lets go of the entries of children it did not return.
    for (const e of [...this.objects.values()]) {
      if (e.state !== PENDING) continue;
      const task = e.producer;
      if (task && !task.done && this.objects.get(e.id) === e) this.failUnrun(task, err);
      else this.settleFailed(e, err);
    }
  }

  /** Ends a task that will not run again with `err` and its finished event, not through its end hooks (see failAllPending). */
  private failUnrun(task: Task, err: Error): void {
    this.taskDone(task);
    const emit = this.hub.emit;
    if (emit) this.emitFinished(emit, task, outcomeOfError(err), task.lastResult, err);
    this.settleFailed(this.objects.get(task.id)!, err);
  }
}
