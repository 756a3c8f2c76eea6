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
import type { AwaitReply, AwaitRequest, Backend, NestedSubmit, TaskHost } from './backend.js';
import { checkGetOptions, checkRefArray, checkWaitArgs, checkWaitKeys, type GetOptions, type Values, type WaitOptions, type WaitResult } from './checks.js';
import { DEFAULT_PAYLOAD_LIMIT_BYTES, buildEnvelope, fitEnvelope, inlineBudget, inlineBytes, type Place } from './envelope.js';
import { DependencyError, GetTimeoutError, ObjectStoreError, ProtocolError, TaskDepthError, UsageError, VolleyError, toRemoteErrorInfo, type RemoteErrorInfo } from './errors.js';
import {
  checkTaskTimeoutForTarget,
  randomRunId,
  resolveInitOptions,
  resolveTaskOptionsInput,
  type InitOptions,
  type ResolvedInitOptions,
  type ResolvedTaskOptions,
  type TaskOptions,
} from './options.js';
import { FAILED, ObjectTable, PENDING, READY, type ObjectEntry } from './object-table.js';
import type { ContainedRefs, Payload, ResultEnvelope, TaskEnvelope } from './protocol.js';
import { ObjectRef } from './ref.js';
import type { TaskDefinition } from './registry.js';
import { addTiming, invokeFailure, outcomeOf, type TaskStats } from './results.js';
import { decode, encode, encodeArgs } from './serialize.js';
import type { AnyFunction, RemoteArgs, RemoteFunction, Resolved } from './task-types.js';
import { createBackend } from './targets.js';
import { setLongTimeout } from './timers.js';
import { decodeResolved } from './worker/nested.js';

export type { GetOptions, Values, WaitOptions, WaitResult } from './checks.js';
export type { TaskStats } from './results.js';

interface Task {
  readonly id: string;
  readonly fn: string;
  readonly module?: string;
  readonly options: ResolvedTaskOptions;
  readonly deps: string[];
  args?: Payload;
  /** Ref arguments not ready yet, plus a pending upload of large arguments. */
  missing: number;
  done: boolean;
  /** Nesting depth: 0 for a task the program started, its parent's + 1 for a task a task started. */
  readonly depth: number;
  /** The running task that started this one (nested tasks the driver orchestrates, on the embedded runtime). */
  readonly parent?: Task;
  /** Ids of the tasks and objects this task made while it ran: held until it finishes, then freed unless its result holds them. */
  children?: string[];
  /** 0 queued, 1 running, 2 running but blocked in get/wait (not counted against maxConcurrency), 3 finished. */
  run: 0 | 1 | 2 | 3;
  /** get/wait calls of this task that are blocked. */
  blocked: number;
}

type Entry = ObjectEntry<Task>;

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
  private backend?: Backend;
  private readonly starting: Promise<Backend>;
  private closed = false;
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
  private running = 0;
  private readonly statsByFn = new Map<string, TaskStats>();
  /** Set when this runtime is the session of a running task on Lambda: its ids and nesting depth. */
  private readonly nest?: { readonly idPrefix: string; readonly depth: number; readonly runId: string };
  /** The task this runtime served has finished: its objects now belong to the driver, none is freed from here. */
  private ended = false;

  /**
   * @param options - see InitOptions.
   * @param internals - @internal a ready-made backend (tests, custom targets); `nest` when the
   * runtime is a running task's session (Lambda): ids under the parent's id, its depth.
   */
  constructor(options?: InitOptions, internals?: { backend?: Backend; nest?: { idPrefix: string; depth: number; runId: string } }) {
    this.options = resolveInitOptions(options);
    this.jobId = this.options.jobId;
    this.nest = internals?.nest;
    // A task's session on Lambda works in the run of the task that made it.
    this.runId = internals?.nest?.runId ?? randomRunId();
    const made = internals?.backend ? Promise.resolve(internals.backend) : createBackend(this.options);
    this.starting = made.then((b) => {
      if (this.closed) {
        void b.invoker.close();
        throw new UsageError('the runtime was shut down while starting', undefined, 'SHUT_DOWN');
      }
      this.backend = b;
      b.invoker.serve?.(this.host);
      this.pump();
      return b;
    });
    // Failures surface through ready() and through every task; never as an unhandled rejection.
    this.starting.catch((err: unknown) => this.failAllPending(err instanceof Error ? err : new VolleyError(String(err))));
  }

  /** Resolves once the backend is up (workers can be started, the store reached). */
  async ready(): Promise<this> {
    await this.starting;
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

  /**
   * Submits a run of the task `def` with its options and arguments.
   * @internal
   */
  submit(def: TaskDefinition, taskOptions: Readonly<TaskOptions>, args: unknown[]): ObjectRef<unknown> {
    this.checkOpen(`${def.name}.remote()`);
    if (taskOptions.timeoutMs !== undefined) checkTaskTimeoutForTarget(this.options.target, `${def.name}: timeoutMs`, taskOptions.timeoutMs);
    const depth = this.nest ? this.nest.depth + 1 : 0;
    if (depth > this.options.maxTaskDepth) throw new TaskDepthError(def.name, this.options.maxTaskDepth);
    const depSet = new Set<string>();
    const bytes = encodeArgs(
      args,
      (ref, path) => {
        if (ref.owner !== (this as unknown) || !this.objects.has(ref.id)) {
          throw new UsageError(`${path} is a ref from another runtime (${ref.id}); refs can only be used on the runtime that made them`);
        }
        depSet.add(ref.id);
      },
      this.allocator,
    );
    const id = this.newId(def.name);
    this.addTask(id, def.name, def.module, taskOptions, [...depSet], bytes, depth, undefined);
    return this.newRef(id);
  }

  /** Enters an encoded task into the DAG: it runs once its ref arguments are ready. */
  private addTask(id: string, fn: string, module: string | undefined, taskOptions: Readonly<TaskOptions>, deps: string[], bytes: Uint8Array, depth: number, parent: Task | undefined): Task {
    const task: Task = {
      id,
      fn,
      module,
      options: {
        timeoutMs: taskOptions.timeoutMs ?? this.options.taskTimeoutMs,
        memoryMB: taskOptions.memoryMB ?? this.options.taskMemoryMB,
      },
      deps,
      missing: 0,
      done: false,
      depth,
      parent,
      run: 0,
      blocked: 0,
    };
    this.objects.add(id).producer = task;

    let failedDep: Entry | undefined;
    for (const depId of task.deps) {
      const dep = this.objects.get(depId)!;
      dep.uses++;
      if (dep.state === FAILED) failedDep ??= dep;
      else if (dep.state === PENDING) {
        (dep.dependents ??= []).push(task);
        task.missing++;
      }
    }
    if (failedDep) {
      this.failTask(task, new DependencyError(task.fn, task.id, failedDep.error!));
    } else if (bytes.length > this.options.inlineThresholdBytes) {
      // Large arguments are uploaded once by the driver and reach the worker as a store key.
      task.missing++;
      let key = '';
      this.starting
        .then((b) => b.store.put((key = `${this.jobPrefix(b)}${id}.args`), bytes))
        .then(
          () => {
            task.args = { kind: 'stored', key, size: bytes.length };
            this.depReady(task);
          },
          (err: unknown) => this.failTask(task, err as Error),
        );
    } else {
      task.args = { kind: 'inline', bytes };
      if (task.missing === 0) this.enqueue(task);
    }
    return task;
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
        .then((b) => b.store.put((key = `${this.jobPrefix(b)}${id}`), bytes))
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
    const values = single ? this.valueOf(entries[0]!) : Promise.all(entries.map((e) => this.valueOf(e)));
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
    if (this.ended) return;
    this.ended = true;
    this.closed = true;
    this.failAllPending(new UsageError('the task that started this task has finished', undefined, 'SHUT_DOWN'));
    this.objects.clear();
    void this.starting.then((b) => b.invoker.close()).catch(() => undefined);
  }

  /** Ids of the tasks and objects a running task made (nested tasks); for cancelling a task's children. @internal */
  childrenOf(taskId: string): readonly string[] {
    return this.objects.get(taskId)?.producer?.children ?? [];
  }

  /** Stops every worker or connection and removes the job's stored objects. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAllPending(new UsageError('the runtime was shut down before this task finished', undefined, 'SHUT_DOWN'));
    let backend: Backend | undefined;
    try {
      backend = await this.starting;
    } catch {
      return;
    }
    const prefix = this.jobPrefix(backend);
    const bound = this.options.shutdownTimeoutMs;
    let timer: { clear(): void } | undefined;
    try {
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
      await backend.invoker.close();
      this.objects.clear();
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
  };

  private runningTask(id: string): Task | undefined {
    const t = this.objects.get(id)?.producer;
    return t && !t.done ? t : undefined;
  }

  private nestedSubmit(parentId: string, sub: NestedSubmit): void {
    const parent = this.runningTask(parentId);
    // A task that already finished (or a repeated id) has nothing left to start.
    if (!parent || this.closed || this.objects.has(sub.id)) return;
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
    this.addTask(sub.id, sub.fn, sub.module, options, sub.deps, sub.args, depth, parent);
  }

  private async nestedAwait(parentId: string, req: AwaitRequest): Promise<AwaitReply> {
    const parent = this.runningTask(parentId);
    if (!parent) throw new ProtocolError(`task ${parentId} asked to wait for refs but is not running`);
    const entries = req.refs.map((id) => this.objects.get(id));
    const gone = req.refs.findIndex((_, i) => !entries[i]);
    if (gone >= 0) throw new UsageError(`ref ${req.refs[gone]} is gone: a ref made inside a task lives until that task returns, unless the task returns it`);
    const live = entries as Entry[];
    // While it waits, the task does not count against maxConcurrency (its children may need the room).
    if (parent.blocked++ === 0 && parent.run === 1) {
      parent.run = 2;
      this.running--;
      this.pump();
    }
    try {
      await this.objects.settled(live, req.numReturns, req.timeoutMs);
    } finally {
      if (--parent.blocked === 0 && parent.run === 2) {
        parent.run = 1;
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

  private newRef<T>(id: string): ObjectRef<T> {
    const ref = new ObjectRef<T>(id, this as never);
    this.objects.track(ref, id);
    return ref;
  }

  /** A task ran (or failed): its arguments are no longer needed for it. */
  private taskDone(task: Task): void {
    task.done = true;
    for (const id of task.deps) {
      const e = this.objects.get(id);
      if (e) this.objects.release(e);
    }
    const entry = this.objects.get(task.id);
    if (entry) entry.producer = undefined;
    // What a finished task made and did not return is no longer anyone's.
    if (task.children) {
      for (const id of task.children) {
        const e = this.objects.get(id);
        if (e) {
          e.dropped = true;
          this.objects.maybeFree(e);
        }
      }
    }
    if (task.args?.kind === 'stored') void this.backend?.store.delete?.([task.args.key]).catch(() => undefined);
  }

  /** Large encodings go straight into the store's own memory when it offers any. */
  private readonly allocator = (n: number): Uint8Array => {
    const store = this.backend?.store;
    return n > this.options.inlineThresholdBytes && store?.allocate ? store.allocate(n) : new Uint8Array(n);
  };

  private jobPrefix(b: Backend): string {
    return `${b.keyPrefix}jobs/${this.storeScope}/`;
  }

  /** The run's scope in the store, `<jobId>/<runId>`; envelopes carry it as their `job`. */
  private get storeScope(): string {
    return `${this.jobId}/${this.runId}`;
  }

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

  private async valueOf(e: Entry): Promise<unknown> {
    const p = e.payload!;
    if (p.kind === 'inline' && !e.contains) return decode(p.bytes);
    const backend = await this.starting;
    return decodeResolved(p, e.contains && this.addPayloads({}, e, false), (key) => backend.store.get(key));
  }

  private enqueue(task: Task): void {
    this.queue.push(task);
    this.pump();
  }

  private depReady(task: Task): void {
    if (task.done) return;
    if (--task.missing === 0) this.enqueue(task);
  }

  private pump(): void {
    const backend = this.backend;
    if (!backend || this.closed) return;
    while (this.running < this.options.maxConcurrency && this.queueHead < this.queue.length) {
      const task = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      if (task.done) continue;
      this.dispatch(task, backend);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private dispatch(task: Task, backend: Backend): void {
    const deps: Record<string, Payload> = {};
    for (const id of task.deps) this.addPayloads(deps, this.objects.get(id)!);
    const envelope = buildEnvelope({
      job: this.storeScope,
      taskId: task.id,
      fn: task.fn,
      module: task.module,
      args: task.args!,
      deps,
      resultKey: `${this.jobPrefix(backend)}${task.id}`,
      inlineLimit: this.options.inlineThresholdBytes,
      depth: task.depth,
    });
    this.running++;
    task.run = 1;
    const place = this.placer(task, backend);
    const options = { ...task.options, place };
    const failed = (err: unknown) => this.finished(task, err);
    const invoke = (env: TaskEnvelope) => backend.invoker.invoke(env, options).then((res) => this.finished(task, undefined, res), failed);
    const budget = inlineBudget(backend.payloadLimitBytes ?? DEFAULT_PAYLOAD_LIMIT_BYTES);
    // Most envelopes fit as they are: invoke them now, without waiting a turn for fitEnvelope.
    if (inlineBytes(envelope) <= budget) invoke(envelope);
    else fitEnvelope(envelope, budget, place).then(invoke, failed);
  }

  /**
   * Where an envelope's inline values go when it has no room for them: a ref's value under its
   * object's key, written once and freed with the object; the argument list under the task's
   * key, freed when the task is done.
   */
  private placer(task: Task, backend: Backend): Place {
    return (dep, bytes) => {
      if (dep === undefined) {
        const key = `${this.jobPrefix(backend)}${task.id}.args`;
        return backend.store.put(key, bytes).then((): Payload => (task.args = { kind: 'stored', key, size: bytes.length }));
      }
      const entry = this.objects.get(dep)!;
      const key = `${this.jobPrefix(backend)}${dep}`;
      return (entry.spilled ??= backend.store.put(key, bytes).then((): Payload => ({ kind: 'stored', key, size: bytes.length })));
    };
  }

  /** A dispatched task came back with a result envelope, or could not be run at all. */
  private finished(task: Task, err: unknown, res?: ResultEnvelope): void {
    if (task.run === 1) this.running--;
    task.run = 3;
    if (res) this.complete(task, res);
    else this.failTask(task, invokeFailure(task.fn, task.id, err));
    this.pump();
  }

  private complete(task: Task, res: ResultEnvelope): void {
    const entry = this.objects.get(task.id);
    // After shutdown() the table is gone; a late result has nowhere to go.
    if (task.done || !entry) return;
    addTiming(this.statsByFn, task.fn, res.timing);
    const outcome = outcomeOf(task.fn, task.id, res);
    if ('payload' in outcome && res.kind !== 'error' && res.refs) {
      try {
        this.adopt(entry, res.refs);
      } catch (err) {
        this.taskDone(task);
        this.settleFailed(entry, invokeFailure(task.fn, task.id, err));
        return;
      }
    }
    this.taskDone(task);
    if ('payload' in outcome) this.settle(entry, outcome.payload);
    else this.settleFailed(entry, outcome.error);
  }

  private failTask(task: Task, err: Error): void {
    const entry = this.objects.get(task.id);
    if (task.done || !entry) return;
    this.taskDone(task);
    this.settleFailed(entry, err);
  }

  private settle(entry: Entry, payload: Payload): void {
    if (entry.state !== PENDING) return;
    const deps = this.objects.markReady(entry, payload);
    if (deps) for (const t of deps) this.depReady(t);
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
        if (dep) work.push([dep, new DependencyError(t.fn, t.id, err)]);
      }
      this.objects.maybeFree(entry);
    }
  }

  private failAllPending(err: Error): void {
    for (const e of this.objects.values()) {
      if (e.state === PENDING) this.settleFailed(e, err);
    }
  }
}
