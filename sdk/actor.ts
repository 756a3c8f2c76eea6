/**
 * Actors (Ray's remote classes): `remote(class X {...})` gives an actor class, `X.remote(...)`
 * a handle at once, `h.method.remote(...)` an ObjectRef. Each call is a task of the function
 * `actor:X` (registered here, in the driver and in every worker) whose arguments are a call
 * spec and the call's arguments; sdk/worker/actor.ts runs it.
 *
 * The driver keeps an actor's calls in submission order: a call is dispatched once the one
 * before it has ended (a runtime hook, `after`), so one call runs at a time. On the embedded
 * runtime the calls go to one worker thread dedicated to the actor (`affinity`), which holds
 * the instance; elsewhere the state lives in the object store as write-once versions, and call
 * n starts from the version of the call before it.
 *
 * A call that ends:
 * - with a value, or with the method's own exception: the actor goes on (the exception's
 *   TaskError is the call's result); a constructor's exception kills the actor, and every later
 *   call fails with an ActorDiedError whose `cause` is it;
 * - without running (a ref argument failed): the actor goes on; on the store, the call's
 *   version is written as a link to the version before it;
 * - with an infrastructure fault (the worker crashed, timed out, the invocation failed): the
 *   instance is gone; the call fails with ActorDiedError, and the actor restarts from its
 *   constructor while `maxRestarts` allows, else it is dead and later calls fail too.
 */
import { currentRuntime } from './context.js';
import { ActorDiedError, DependencyError, TaskError, UsageError } from './errors.js';
import { resolveTaskOptionsInput, type TaskOptions } from './options.js';
import type { ObjectRef } from './ref.js';
import { registerTask, type TaskDefinition } from './registry.js';
import type { Runtime } from './runtime.js';
import type { AnyFunction, RemoteArgs } from './task-types.js';
import { actorStateKey, linkRecord, runActorCall, type ActorCallSpec, type AnyClass } from './worker/actor.js';

/** Options of an actor class: `remote(class X {...}, options)` or `X.options(...)`. @public */
export interface ActorOptions {
  /** A name to find the actor by within the job with `getActor(name)`; unique among live actors. */
  name?: string;
  /** How many times the actor restarts from its constructor after its worker crashed. Default 0. */
  maxRestarts?: number;
  /** Each call's timeout (as a task's); a call past it stops the actor's worker. */
  timeoutMs?: number;
  /** Memory of each call's worker on Lambda. */
  memoryMB?: number;
}

/** A method of an actor handle: `h.method.remote(...args)`. @public */
export interface ActorMethod<F extends AnyFunction> {
  /** Queues a call of the method after the handle's earlier calls; returns a ref to its (awaited) result at once. */
  remote(...args: RemoteArgs<Parameters<F>>): ObjectRef<Awaited<ReturnType<F>>>;
}

/** The names of a type's methods. @public */
export type MethodNames<T> = { [K in keyof T]: T[K] extends AnyFunction ? K : never }[keyof T];

/** A handle to a live actor: its methods, each with `.remote(...)`. @public */
export type ActorHandle<T> = { readonly [K in MethodNames<T>]: T[K] extends AnyFunction ? ActorMethod<T[K]> : never };

/**
 * A class registered as an actor class. `X.remote(...ctorArgs)` starts an actor and returns its
 * handle; calling or constructing `X` directly is an error.
 *
 * @public
 */
export interface ActorClass<C extends AnyClass> {
  /** Starts an actor (its constructor runs as its first call) and returns a handle at once. */
  remote(...args: RemoteArgs<ConstructorParameters<C>>): ActorHandle<InstanceType<C>>;
  /** A copy of this actor class with some options overridden (e.g. `{ name }`). */
  options(overrides: ActorOptions): ActorClass<C>;
  /** The class's registered name. */
  readonly className: string;
  /** Options given to remote() and options(). */
  readonly actorOptions: Readonly<ActorOptions>;
  /** @internal starts an actor on a given runtime (`rt.actor(X, ...args)`). */
  readonly startOn: (rt: Runtime, args: unknown[]) => ActorHandle<InstanceType<C>>;
}

const HANDLE = Symbol.for('volley.actorHandle');
const WRAPPERS = Symbol.for('volley.actorWrappers');

/** True for a class (not a plain function): `remote()` makes it an actor class. */
export function isClass(fn: unknown): fn is AnyClass {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** True for an actor handle (which cannot be passed to a task yet). */
export function isActorHandle(x: object): boolean {
  return HANDLE in x;
}

/** The task function of a class, one per class in a process (every copy of the library shares it). */
function wrapperOf(cls: AnyClass): (spec: ActorCallSpec, args: unknown[]) => Promise<unknown> {
  const g = globalThis as unknown as Record<symbol, WeakMap<AnyClass, (spec: ActorCallSpec, args: unknown[]) => Promise<unknown>> | undefined>;
  const table = (g[WRAPPERS] ??= new WeakMap());
  let w = table.get(cls);
  if (!w) {
    w = (spec: ActorCallSpec, args: unknown[]) => runActorCall(cls, spec, args);
    table.set(cls, w);
  }
  return w;
}

function methodNames(cls: AnyClass): string[] {
  const names = new Set<string>();
  for (let p = cls.prototype as object | null; p && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    for (const k of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, k)!;
      if (k !== 'constructor' && typeof d.value === 'function') names.add(k);
    }
  }
  return [...names];
}

function checkActorOptions(where: string, o: ActorOptions | undefined): { actor: ActorOptions; task: TaskOptions } {
  if (o === undefined) return { actor: {}, task: {} };
  if (typeof o !== 'object' || o === null) throw new UsageError(`${where}: options must be an object`);
  const { name, maxRestarts, ...rest } = o;
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw new UsageError(`${where}: name must be a non-empty string, got ${JSON.stringify(name)}`);
  if (maxRestarts !== undefined && !(Number.isInteger(maxRestarts) && maxRestarts >= 0)) {
    throw new UsageError(`${where}: maxRestarts must be a whole number >= 0, got ${JSON.stringify(maxRestarts)}`);
  }
  // timeoutMs and memoryMB are a task's options, checked by the options table.
  const task = resolveTaskOptionsInput(where, rest as TaskOptions);
  return { actor: { ...o }, task };
}

/** Makes an actor class of `cls` (what `remote(class ...)` does). */
export function remoteClass<C extends AnyClass>(cls: C, options: ActorOptions | undefined, module: string | undefined, runtimeOf: () => Runtime): ActorClass<C> {
  const name = cls.name;
  if (!name) throw new UsageError('remote() needs a named class, because the name identifies the actor class in every worker: write remote(class Counter {...})');
  const checked = checkActorOptions('remote()', options);
  const def: TaskDefinition = { name: `actor:${name}`, fn: wrapperOf(cls) as never, module };
  registerTask(def);
  return makeActorClass<C>(cls, def, methodNames(cls), checked.actor, runtimeOf);
}

function makeActorClass<C extends AnyClass>(cls: C, def: TaskDefinition, methods: string[], opts: ActorOptions, runtimeOf: () => Runtime): ActorClass<C> {
  const ac: ActorClass<C> = {
    className: cls.name,
    actorOptions: Object.freeze({ ...opts }),
    remote: (...args: unknown[]) => createActor(runtimeOf(), cls, def, methods, opts, args) as ActorHandle<InstanceType<C>>,
    startOn: (rt: Runtime, args: unknown[]) => createActor(rt, cls, def, methods, opts, args) as ActorHandle<InstanceType<C>>,
    options: (overrides: ActorOptions) => {
      const o = checkActorOptions(`${cls.name}.options()`, overrides);
      return makeActorClass<C>(cls, def, methods, { ...opts, ...o.actor }, runtimeOf);
    },
  };
  return Object.freeze(ac);
}

interface Death {
  why: string;
  cause?: unknown;
}

/** The driver's side of one actor: its order of calls, its versions, whether it lives. */
class ActorCore {
  /** Ends when every call submitted so far has ended. */
  private tail: Promise<void> = Promise.resolve();
  private nextSeq = 0;
  /** The call (and state version) the next call starts from. */
  private last = -1;
  dead?: Death;
  private restartsLeft: number;
  readonly mode: 'memory' | 'store';
  private readonly taskOptions: TaskOptions;

  constructor(
    readonly rt: Runtime,
    readonly id: string,
    readonly cls: AnyClass,
    readonly def: TaskDefinition,
    readonly opts: ActorOptions,
    private readonly ctorArgs: unknown[],
  ) {
    this.restartsLeft = opts.maxRestarts ?? 0;
    // The embedded runtime holds instances in worker threads; every other target in its store.
    this.mode = rt.target === 'local' ? 'memory' : 'store';
    // A call is never run again by the runtime (retries or lineage): it would apply twice. A lost instance restarts instead.
    this.taskOptions = { timeoutMs: opts.timeoutMs, memoryMB: opts.memoryMB, maxRetries: 0 };
  }

  /** Queues a call (the constructor when `method` is undefined) after every earlier one. */
  call(method: string | undefined, args: unknown[]): ObjectRef<unknown> {
    const prev = this.tail;
    const from = this.last;
    const spec: ActorCallSpec = { id: this.id, mode: this.mode, seq: this.nextSeq++, from: method === undefined ? -1 : from, method };
    try {
      const { ref, ended } = this.launch(spec, args, prev);
      this.tail = ended;
      this.last = spec.seq;
      return ref;
    } catch (err) {
      // Its arguments could not be encoded: the call was never queued.
      this.nextSeq--;
      throw err;
    }
  }

  private launch(spec: ActorCallSpec, args: unknown[], prev: Promise<void>): { ref: ObjectRef<unknown>; ended: Promise<void> } {
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => (endedResolve = r));
    let taskId = '';
    const gate = prev.then(() => {
      if (this.dead) throw this.died(taskId, spec, this.dead);
    });
    gate.catch(() => undefined);
    const ref = this.rt.submit(this.def, this.taskOptions, [spec, args], {
      after: gate,
      affinity: this.mode === 'memory' ? this.id : undefined,
      onEnd: (err) => {
        const { error, before } = this.onEnd(spec, taskId, err);
        const done = () => endedResolve();
        void Promise.all([prev, before]).then(done, done);
        return error;
      },
    });
    taskId = ref.id;
    return { ref, ended };
  }

  private what(spec: ActorCallSpec): string {
    return spec.method === undefined ? 'its constructor' : `${this.cls.name}.${spec.method}`;
  }

  private died(taskId: string, spec: ActorCallSpec, d: Death): ActorDiedError {
    return new ActorDiedError(`${this.what(spec)} was not run: actor ${this.cls.name} (${this.id}) is dead: ${d.why}`, {
      functionName: this.def.name,
      taskId,
      actorId: this.id,
      cause: d.cause,
    });
  }

  /** How a call ended decides what the actor does next; `before` must end before the next call starts. */
  private onEnd(spec: ActorCallSpec, taskId: string, err: Error | undefined): { error?: Error; before?: Promise<unknown> } {
    if (!err) return {};
    if (err instanceof ActorDiedError) return { error: err };
    if (this.dead) return { error: this.died(taskId, spec, { why: this.dead.why, cause: err }) };
    if (err instanceof DependencyError) {
      // It did not run; on the store its version is the one before it.
      if (this.mode === 'memory') return { error: err };
      return { error: err, before: this.writeLink(spec.seq, spec.from) };
    }
    if (err instanceof TaskError && err.fault === 'user') {
      if (spec.method === undefined) this.die({ why: 'its constructor failed', cause: err });
      return { error: err };
    }
    // An infrastructure fault: the instance (or the invocation that held it) is gone.
    const restart = this.restartsLeft > 0;
    const error = new ActorDiedError(
      `actor ${this.cls.name} (${this.id}) died while running ${this.what(spec)}: ${err.message}` +
        (restart ? '; it restarts from its constructor (maxRestarts)' : '; later calls fail too (set maxRestarts to restart it from its constructor)'),
      { functionName: this.def.name, taskId, actorId: this.id, cause: err },
    );
    if (!restart) {
      this.die({ why: `its worker failed (${err.message})`, cause: err });
      return { error };
    }
    this.restartsLeft--;
    // The constructor runs again as version `seq` of the state, which the next call starts from.
    const before = new Promise<void>((resolve) => {
      queueMicrotask(() => {
        try {
          const { ended } = this.launch({ id: this.id, mode: this.mode, seq: spec.seq, from: -1 }, this.ctorArgs, Promise.resolve());
          void ended.then(resolve);
        } catch (e) {
          this.die({ why: 'its restart failed', cause: e });
          resolve();
        }
      });
    });
    return { error, before };
  }

  private async writeLink(seq: number, from: number): Promise<void> {
    const b = await this.rt.backendReady();
    const bytes = linkRecord(from);
    const key = actorStateKey(this.rt.jobPrefixOf(b), this.id, seq);
    if (b.store.create) await b.store.create(key, bytes);
    else await b.store.put(key, bytes);
  }

  /** Kills the actor: queued calls fail with ActorDiedError; its worker (or its stored state) goes. */
  kill(): void {
    if (this.dead?.why === 'it was killed') return;
    this.die({ why: 'it was killed' }, true);
  }

  /**
   * The actor is dead: later calls fail; its worker and its stored state are freed, at once
   * (`now`, killing a running call) or once the calls already queued have ended.
   */
  die(d: Death, now = false): void {
    this.dead = d;
    this.free(now);
  }

  /** Frees the actor's worker (embedded runtime) and stored state (elsewhere). */
  free(now: boolean): void {
    const tail = this.tail;
    void this.rt.backendReady().then(
      (b) => {
        if (now) b.invoker.releaseAffinity?.(this.id);
        void tail
          .then(() => {
            if (!now) b.invoker.releaseAffinity?.(this.id);
            if (this.mode === 'store') return b.store.deletePrefix(actorStateKey(this.rt.jobPrefixOf(b), this.id, 0).replace(/v0$/, ''));
          })
          .catch(() => undefined);
      },
      () => undefined,
    );
  }
}

const cores = new WeakMap<object, ActorCore>();
/** An actor whose every handle is gone can receive no more calls: it is freed once its calls end (as in Ray). */
const unreachable = new FinalizationRegistry<ActorCore>((core) => {
  if (!core.dead && !core.rt.isShutdown) core.free(false);
});
const named = new WeakMap<Runtime, Map<string, object>>();
let actorSeq = 0;

function createActor(rt: Runtime, cls: AnyClass, def: TaskDefinition, methods: string[], opts: ActorOptions, args: unknown[]): object {
  const names = named.get(rt) ?? new Map<string, object>();
  if (opts.name !== undefined) {
    const prev = names.get(opts.name);
    if (prev && !cores.get(prev)!.dead) {
      throw new UsageError(`an actor named ${JSON.stringify(opts.name)} is already alive in this job; find it with getActor(${JSON.stringify(opts.name)}), or kill(it) first`);
    }
  }
  const id = `${cls.name}-a${(++actorSeq).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const core = new ActorCore(rt, id, cls, def, opts, args);
  core.call(undefined, args);
  const handle: Record<string | symbol, unknown> = Object.create(null);
  for (const m of methods) {
    handle[m] = Object.freeze({ remote: (...a: unknown[]) => core.call(m, a) });
  }
  Object.defineProperty(handle, HANDLE, { value: id });
  Object.freeze(handle);
  cores.set(handle, core);
  unreachable.register(handle, core);
  if (opts.name !== undefined) {
    names.set(opts.name, handle);
    named.set(rt, names);
  }
  return handle;
}

function coreOf(where: string, handle: unknown): ActorCore {
  const core = typeof handle === 'object' && handle !== null ? cores.get(handle) : undefined;
  if (!core) throw new UsageError(`${where} takes an actor handle (what ActorClass.remote() returns), got ${handle === null ? 'null' : typeof handle}`);
  return core;
}

/**
 * Kills an actor (Ray's `ray.kill`): calls not yet run fail with ActorDiedError, its worker
 * stops (embedded runtime) or its stored state is removed (Lambda); it does not restart.
 *
 * @public
 */
export function kill(handle: ActorHandle<unknown>): void {
  const core = coreOf('kill()', handle);
  core.kill();
  const names = named.get(core.rt);
  if (core.opts.name !== undefined && names?.get(core.opts.name) === handle) names.delete(core.opts.name);
}

/** The actor created with `options({ name })` in the runtime's job (Ray's `ray.get_actor`). */
export function actorByName<T = unknown>(rt: Runtime, name: string): ActorHandle<T> {
  if (typeof name !== 'string') throw new UsageError(`getActor() takes a name (string), got ${typeof name}`);
  const h = named.get(rt)?.get(name);
  if (!h) throw new UsageError(`no actor named ${JSON.stringify(name)} in this job: create it with ActorClass.options({ name: ${JSON.stringify(name)} }).remote(...)`);
  return h as ActorHandle<T>;
}

/** The id of an actor (for logs). @public */
export function actorId(handle: ActorHandle<unknown>): string {
  return coreOf('actorId()', handle).id;
}

/**
 * The actor created with `X.options({ name }).remote(...)` in this job (Ray's
 * `ray.get_actor`); a UsageError names the way to create it when there is none.
 *
 * @public
 */
export function getActor<T = unknown>(name: string): ActorHandle<T> {
  return actorByName<T>(actorRuntime(), name);
}

/**
 * The runtime actors are started on: the driver's. Inside a running task on the embedded
 * runtime, calls go to the task's session, which has no actors: that is a UsageError saying so.
 * @internal
 */
export function actorRuntime(): Runtime {
  const s = currentRuntime() as unknown as Partial<Runtime>;
  if (typeof s.actor !== 'function') {
    throw new UsageError('actors cannot be started or looked up inside a task yet: start the actor in the driver, and call it there');
  }
  return s as Runtime;
}
