/**
 * A Runtime is one driver session: the orchestrator that holds the task DAG, the table of
 * objects, and the backend (invoker + store) of its target.
 *
 * A task is dispatched when every ref among its arguments is ready; ready tasks run up to
 * `maxConcurrency` at once; a failed task fails its dependents without running them. Workers
 * receive refs as refs (inline bytes or store keys) and read values themselves: the driver
 * only reads a value when `get` asks for it.
 */
import type { Backend } from './backend.js';
import {
  DependencyError,
  GetTimeoutError,
  TaskError,
  UsageError,
  VolleyError,
} from './errors.js';
import { checkKeys, resolveInitOptions, type InitOptions, type ResolvedInitOptions, type ResolvedTaskOptions } from './options.js';
import { PROTOCOL_VERSION, type Payload, type ResultEnvelope, type TaskEnvelope } from './protocol.js';
import { ObjectRef } from './ref.js';
import type { AnyFunction, RemoteArgs, RemoteFunction } from './remote.js';
import { decode, encode, encodeArgs } from './serialize.js';
import { createBackend } from './targets.js';

/**
 * Most inline bytes (arguments plus ref values) one envelope carries. Beyond it the largest
 * inline values are written to the store once and passed by key, so a task with many small
 * ref arguments still fits in a Lambda request (6 MB of JSON, bytes as base64).
 */
const ENVELOPE_INLINE_BUDGET = 3 * 1024 * 1024;

const PENDING = 0;
const READY = 1;
const FAILED = 2;

interface ObjectEntry {
  readonly id: string;
  state: typeof PENDING | typeof READY | typeof FAILED;
  payload?: Payload;
  /** The inline payload written to the store, once an envelope had no room for it. */
  spilled?: Promise<Payload>;
  error?: Error;
  listeners?: Set<() => void>;
  dependents?: Task[];
  /** Unfinished tasks that take this object as an argument. */
  uses: number;
  /** The program no longer holds its ObjectRef (it was garbage-collected). */
  dropped: boolean;
}

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
}

/** Options of `get`. @public */
export interface GetOptions {
  /** Give up after this many ms with a GetTimeoutError. Default: wait forever. */
  timeoutMs?: number;
}

/** Options of `wait`. @public */
export interface WaitOptions {
  /** How many refs must be ready. Default: 1. */
  numReturns?: number;
  /** Return after this many ms even if fewer are ready. Default: wait forever. */
  timeoutMs?: number;
}

/** Result of `wait`: both lists in input order. @public */
export interface WaitResult<T> {
  ready: ObjectRef<T>[];
  pending: ObjectRef<T>[];
}

/** Per-function totals of what workers reported, for profiling. @public */
export interface TaskStats {
  tasks: number;
  fetchMs: number;
  runMs: number;
  storeMs: number;
}

/** The value types of a tuple of refs. @public */
export type Values<R extends readonly ObjectRef<unknown>[]> = { [K in keyof R]: R[K] extends ObjectRef<infer T> ? T : never };

/** Throws a UsageError unless `refs` is an array (of refs, checked item by item later). */
export function checkRefArray(where: string, refs: unknown): void {
  if (!Array.isArray(refs)) {
    throw new UsageError(`${where} takes an array of refs, got ${refs === null ? 'null' : typeof refs}; wrap a single ref: ${where.replace('()', '')}([ref])`);
  }
}

function checkTimeout(where: string, t: unknown): number | undefined {
  if (t === undefined || t === Infinity) return undefined;
  if (typeof t !== 'number' || Number.isNaN(t) || t < 0) {
    throw new UsageError(`${where}: timeoutMs must be a number >= 0 (or omitted to wait forever), got ${String(t)}`);
  }
  return t;
}

/**
 * One driver session on one target. The top-level `init()/get()/put()/wait()/shutdown()` use a
 * default Runtime; create your own to run several side by side or to pass one explicitly.
 *
 * @public
 */
export class Runtime {
  readonly jobId: string;
  readonly options: ResolvedInitOptions;
  private backend?: Backend;
  private readonly starting: Promise<Backend>;
  private closed = false;
  private seq = 0;
  private readonly objects = new Map<string, ObjectEntry>();
  private readonly queue: Task[] = [];
  private queueHead = 0;
  private running = 0;
  private readonly statsByFn = new Map<string, TaskStats>();

  /**
   * @param options - see InitOptions.
   * @param internals - @internal a ready-made backend (tests, custom targets).
   */
  constructor(options?: InitOptions, internals?: { backend?: Backend }) {
    this.options = resolveInitOptions(options);
    this.jobId = this.options.jobId;
    const made = internals?.backend ? Promise.resolve(internals.backend) : createBackend(this.options);
    this.starting = made.then((b) => {
      if (this.closed) {
        void b.invoker.close();
        throw new UsageError('the runtime was shut down while starting', undefined, 'SHUT_DOWN');
      }
      this.backend = b;
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
  remote<F extends AnyFunction>(rf: RemoteFunction<F>, ...args: RemoteArgs<Parameters<F>>): ObjectRef<Awaited<ReturnType<F>>> {
    return this.submit(rf, args as unknown[]) as ObjectRef<Awaited<ReturnType<F>>>;
  }

  /** @internal */
  submit(rf: RemoteFunction<AnyFunction>, args: unknown[]): ObjectRef<unknown> {
    this.checkOpen(`${rf.taskName}.remote()`);
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
    const id = this.newId(rf.taskName);
    const task: Task = {
      id,
      fn: rf.taskName,
      module: rf.definition.module,
      options: {
        timeoutMs: rf.taskOptions.timeoutMs ?? this.options.taskTimeoutMs,
        memoryMB: rf.taskOptions.memoryMB ?? this.options.taskMemoryMB,
      },
      deps: [...depSet],
      missing: 0,
      done: false,
    };
    const entry: ObjectEntry = { id, state: PENDING, uses: 0, dropped: false };
    this.objects.set(id, entry);

    let failedDep: ObjectEntry | undefined;
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
    return this.newRef(id);
  }

  /** Stores a value once and returns a ref to pass to many tasks (Ray's `put`). */
  put<T>(value: T): ObjectRef<T> {
    this.checkOpen('put()');
    const bytes = encode(value, 'put(value)', this.allocator);
    const id = this.newId('put');
    const entry: ObjectEntry = { id, state: PENDING, uses: 0, dropped: false };
    this.objects.set(id, entry);
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
    return this.newRef<T>(id);
  }

  /** The value of one ref, or the values of several in order; re-throws a task's failure. */
  get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
  get<R extends readonly ObjectRef<unknown>[]>(refs: readonly [...R], options?: GetOptions): Promise<Values<R>>;
  get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
  async get(refOrRefs: ObjectRef<unknown> | readonly ObjectRef<unknown>[], options?: GetOptions): Promise<unknown> {
    const single = !Array.isArray(refOrRefs);
    const refs = (single ? [refOrRefs] : refOrRefs) as readonly ObjectRef<unknown>[];
    const entries = this.entriesOf('get()', refs);
    const timeoutMs = checkTimeout('get()', options?.timeoutMs);
    if (options !== undefined) checkKeys('get()', options, ['timeoutMs']);
    if (!(await this.settled(entries, entries.length, timeoutMs))) {
      throw new GetTimeoutError(timeoutMs!, entries.filter((e) => e.state === PENDING).map((e) => `${e.id}`));
    }
    for (const e of entries) if (e.state === FAILED) throw e.error;
    if (single) return this.valueOf(entries[0]!);
    return Promise.all(entries.map((e) => this.valueOf(e)));
  }

  /** Waits until `numReturns` of the refs are ready (done or failed), or the timeout passes. */
  async wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<WaitResult<T>> {
    checkRefArray('wait()', refs);
    checkKeys('wait()', options, ['numReturns', 'timeoutMs']);
    const entries = this.entriesOf('wait()', refs);
    const seen = new Map<string, number>();
    refs.forEach((r, i) => {
      const j = seen.get(r.id);
      if (j !== undefined) throw new UsageError(`wait() got the same ref ${r.id} twice (positions ${j} and ${i}); pass each ref once`);
      seen.set(r.id, i);
    });
    const numReturns = options?.numReturns ?? Math.min(1, refs.length);
    if (!Number.isInteger(numReturns) || numReturns < (refs.length === 0 ? 0 : 1) || numReturns > refs.length) {
      throw new UsageError(`wait(): numReturns must be an integer from 1 to the number of refs (${refs.length}), got ${String(numReturns)}`);
    }
    const timeoutMs = checkTimeout('wait()', options?.timeoutMs);
    await this.settled(entries, numReturns, timeoutMs);
    const ready: ObjectRef<T>[] = [];
    const pending: ObjectRef<T>[] = [];
    entries.forEach((e, i) => (e.state !== PENDING && ready.length < numReturns ? ready : pending).push(refs[i]!));
    return { ready, pending };
  }

  /** What workers reported, by task function: counts and total fetch/run/store times. */
  stats(): Map<string, TaskStats> {
    return new Map([...this.statsByFn].map(([k, v]) => [k, { ...v }]));
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
    try {
      await backend.store.deletePrefix(this.jobPrefix(backend));
    } finally {
      await backend.invoker.close();
      this.objects.clear();
    }
  }

  // --- internals ---------------------------------------------------------------------------

  /**
   * Objects are freed like Ray's: once the program drops every ObjectRef to one (the ref is
   * garbage-collected) and no unfinished task takes it as an argument, its entry goes and its
   * stored bytes are deleted. Everything left goes at shutdown().
   */
  private readonly collected = new FinalizationRegistry<string>((id) => {
    const e = this.objects.get(id);
    if (!e) return;
    e.dropped = true;
    this.maybeFree(e);
  });

  private newRef<T>(id: string): ObjectRef<T> {
    const ref = new ObjectRef<T>(id, this as never);
    this.collected.register(ref, id);
    return ref;
  }

  private maybeFree(e: ObjectEntry): void {
    if (!e.dropped || e.uses > 0 || e.state === PENDING || !this.objects.has(e.id)) return;
    this.objects.delete(e.id);
    const store = this.backend?.store;
    if (!store?.delete) return;
    const keys: Promise<string>[] = [];
    if (e.payload?.kind === 'stored') keys.push(Promise.resolve(e.payload.key));
    if (e.spilled) keys.push(e.spilled.then((p) => (p as { key: string }).key));
    // A delete that fails leaves bytes that shutdown() (or the bucket's expiry) removes later.
    if (keys.length) void Promise.all(keys).then((k) => store.delete!(k)).catch(() => undefined);
  }

  /** A task ran (or failed): its arguments are no longer needed for it. */
  private taskDone(task: Task): void {
    task.done = true;
    for (const id of task.deps) {
      const e = this.objects.get(id);
      if (e) {
        e.uses--;
        this.maybeFree(e);
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
    return `${b.keyPrefix}jobs/${this.jobId}/`;
  }

  private newId(label: string): string {
    return `${label}-${(++this.seq).toString(36)}`;
  }

  private checkOpen(what: string): void {
    if (this.closed) throw new UsageError(`${what} was called after shutdown(); call init() (or create a new Runtime) first`);
  }

  private entriesOf(where: string, refs: readonly unknown[]): ObjectEntry[] {
    return refs.map((r, i) => {
      if (!(r instanceof ObjectRef)) {
        throw new UsageError(`${where}: item ${i} is not an ObjectRef (got ${r === null ? 'null' : typeof r}); pass refs returned by .remote() or put()`);
      }
      const e = this.objects.get(r.id);
      if (!e || r.owner !== (this as unknown)) {
        throw new UsageError(
          this.closed
            ? `${where}: ref ${r.id} belongs to a runtime that was shut down; its value is gone`
            : `${where}: ref ${r.id} belongs to another runtime; use that runtime's get()`,
        );
      }
      return e;
    });
  }

  /** Resolves true once n of the entries are settled, false on timeout. */
  private settled(entries: ObjectEntry[], n: number, timeoutMs: number | undefined): Promise<boolean> {
    let done = 0;
    for (const e of entries) if (e.state !== PENDING) done++;
    if (done >= n) return Promise.resolve(true);
    if (timeoutMs === 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const listening: ObjectEntry[] = [];
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean) => {
        if (timer) clearTimeout(timer);
        for (const e of listening) e.listeners?.delete(onSettle);
        resolve(ok);
      };
      const onSettle = () => {
        if (++done >= n) finish(true);
      };
      for (const e of entries) {
        if (e.state === PENDING) {
          (e.listeners ??= new Set()).add(onSettle);
          listening.push(e);
        }
      }
      if (timeoutMs !== undefined) timer = setTimeout(() => finish(false), timeoutMs);
    });
  }

  private async valueOf(e: ObjectEntry): Promise<unknown> {
    const p = e.payload!;
    if (p.kind === 'inline') return decode(p.bytes);
    const backend = await this.starting;
    return decode(await backend.store.get(p.key));
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
    let inline = task.args!.kind === 'inline' ? task.args!.bytes.length : 0;
    for (const id of task.deps) {
      const p = this.objects.get(id)!.payload!;
      deps[id] = p;
      if (p.kind === 'inline') inline += p.bytes.length;
    }
    this.running++;
    if (inline <= ENVELOPE_INLINE_BUDGET) this.invoke(task, backend, deps);
    else {
      this.spill(task, deps, inline, backend).then(
        () => this.invoke(task, backend, deps),
        (err: unknown) => this.finished(task, err),
      );
    }
  }

  /** Moves the largest inline ref values of an envelope to the store until it fits the budget. */
  private async spill(task: Task, deps: Record<string, Payload>, inline: number, backend: Backend): Promise<void> {
    const bySize = task.deps
      .filter((id) => deps[id]!.kind === 'inline')
      .sort((a, b) => (deps[b] as { bytes: Uint8Array }).bytes.length - (deps[a] as { bytes: Uint8Array }).bytes.length);
    const waits: Promise<void>[] = [];
    for (const id of bySize) {
      if (inline <= ENVELOPE_INLINE_BUDGET) break;
      const entry = this.objects.get(id)!;
      const bytes = (entry.payload as { bytes: Uint8Array }).bytes;
      inline -= bytes.length;
      const key = `${this.jobPrefix(backend)}${id}`;
      entry.spilled ??= backend.store.put(key, bytes).then((): Payload => ({ kind: 'stored', key, size: bytes.length }));
      waits.push(entry.spilled.then((p) => void (deps[id] = p)));
    }
    await Promise.all(waits);
  }

  private invoke(task: Task, backend: Backend, deps: Record<string, Payload>): void {
    const envelope: TaskEnvelope = {
      v: PROTOCOL_VERSION,
      kind: 'task',
      job: this.jobId,
      taskId: task.id,
      fn: task.fn,
      module: task.module,
      args: task.args!,
      deps,
      resultKey: `${this.jobPrefix(backend)}${task.id}`,
      inlineLimit: this.options.inlineThresholdBytes,
    };
    backend.invoker.invoke(envelope, task.options).then(
      (res) => this.finished(task, undefined, res),
      (err: unknown) => this.finished(task, err),
    );
  }

  /** A dispatched task came back with a result envelope, or could not be run at all. */
  private finished(task: Task, err: unknown, res?: ResultEnvelope): void {
    this.running--;
    if (res) this.complete(task, res);
    else {
      this.failTask(
        task,
        err instanceof TaskError
          ? err
          : new TaskError(`Task ${task.fn} (${task.id}) could not be run: ${(err as Error)?.message ?? String(err)}`, {
              functionName: task.fn,
              taskId: task.id,
              fault: 'infrastructure',
              cause: err,
              retryable: err instanceof VolleyError && err.retryable,
            }),
      );
    }
    this.pump();
  }

  private complete(task: Task, res: ResultEnvelope): void {
    const entry = this.objects.get(task.id);
    // After shutdown() the table is gone; a late result has nowhere to go.
    if (task.done || !entry) return;
    const s = this.statsByFn.get(task.fn) ?? { tasks: 0, fetchMs: 0, runMs: 0, storeMs: 0 };
    s.tasks++;
    s.fetchMs += res.timing.fetchMs;
    s.runMs += res.timing.runMs;
    s.storeMs += res.timing.storeMs;
    this.statsByFn.set(task.fn, s);
    this.taskDone(task);
    switch (res.kind) {
      case 'value':
        this.settle(entry, { kind: 'inline', bytes: res.bytes });
        break;
      case 'stored':
        this.settle(entry, { kind: 'stored', key: res.key, size: res.size });
        break;
      case 'error': {
        this.settleFailed(entry, TaskError.fromRemote(task.fn, task.id, res.error, res.fault, res.logs));
        break;
      }
    }
  }

  private failTask(task: Task, err: Error): void {
    const entry = this.objects.get(task.id);
    if (task.done || !entry) return;
    this.taskDone(task);
    this.settleFailed(entry, err);
  }

  private settle(entry: ObjectEntry, payload: Payload): void {
    if (entry.state !== PENDING) return;
    entry.state = READY;
    entry.payload = payload;
    const deps = entry.dependents;
    entry.dependents = undefined;
    this.notify(entry);
    if (deps) for (const t of deps) this.depReady(t);
    this.maybeFree(entry);
  }

  /** Fails an entry and, transitively, every task waiting on it (iteratively: chains may be long). */
  private settleFailed(first: ObjectEntry, firstErr: Error): void {
    const work: Array<[ObjectEntry, Error]> = [[first, firstErr]];
    while (work.length) {
      const [entry, err] = work.pop()!;
      if (entry.state !== PENDING) continue;
      entry.state = FAILED;
      entry.error = err;
      const deps = entry.dependents;
      entry.dependents = undefined;
      this.notify(entry);
      for (const t of deps ?? []) {
        if (t.done) continue;
        this.taskDone(t);
        const dep = this.objects.get(t.id);
        if (dep) work.push([dep, new DependencyError(t.fn, t.id, err)]);
      }
      this.maybeFree(entry);
    }
  }

  private notify(entry: ObjectEntry): void {
    const ls = entry.listeners;
    if (!ls) return;
    entry.listeners = undefined;
    for (const l of ls) l();
  }

  private failAllPending(err: Error): void {
    for (const e of this.objects.values()) {
      if (e.state === PENDING) this.settleFailed(e, err);
    }
  }
}
