/**
 * Actors (Ray's remote classes): `remote(class X {...})` gives an actor class, `X.remote(...)`
 * a handle at once, `h.method.remote(...)` an ObjectRef. Each call is a task of the function
 * `actor:X` (registered here, in the driver and in every worker) whose arguments are a call
 * spec and the call's arguments; sdk/worker/actor.ts runs it.
 *
 * Each caller keeps its calls to an actor in submission order: a call is dispatched once the
 * one before it has ended (a runtime hook, `after`). On the embedded runtime every caller's
 * calls reach the driver's one `ActorCore` of the actor (a task's over its thread's channel, as
 * an `ACTOR_OP_TASK` submit), which runs them one at a time on one worker thread dedicated to
 * the actor (`affinity`), in the order they arrive. Elsewhere the state is a log of write-once
 * versions in the object store (sdk/worker/actor.ts): each caller (the driver, or the Runtime of
 * a Lambda task holding the handle) has its own `ActorCore`, and each call appends one version
 * after the newest, so calls of different callers interleave, each caller's in its own order.
 *
 * A handle travels inside values (task arguments and results, put values) as its wire form
 * (`ActorHandleWire`, validated in protocol.ts); where it is decoded it becomes a handle bound
 * to that runtime or running task.
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
import { currentRuntime, isWorker } from './context.js';
import { ActorDiedError, DependencyError, ProtocolError, TaskError, UsageError } from './errors.js';
import { resolveTaskOptionsInput, type TaskOptions } from './options.js';
import { MAX_HANDLE_METHODS, validateActorHandleWire, validateActorOp, type ActorHandleWire } from './protocol.js';
import { ObjectRef } from './ref.js';
import { lookupTask as lookupDef, registerTask, type TaskDefinition } from './registry.js';
import { Runtime, serveActorOps } from './runtime.js';
import { decode, setHandleCodec } from './serialize.js';
import type { AnyFunction, RemoteArgs } from './task-types.js';
import { actorClasses, actorStateKey, runActorCall, type ActorCallSpec, type AnyClass } from './worker/actor.js';
import { onTaskEnd, type Session } from './worker/nested.js';
import type { ActorOp } from './protocol.js';
import type { NestedSubmit } from './backend.js';

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
const GENERIC_FN = Symbol.for('volley.actorGeneric');

/** True for a class (not a plain function): `remote()` makes it an actor class. */
export function isClass(fn: unknown): fn is AnyClass {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** True for an actor handle. */
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

/**
 * The task of calls through a handle whose class this process does not know (a handle a task
 * on Lambda looked up by name): the worker learns the class from the actor's stored state.
 */
const GENERIC: TaskDefinition = {
  name: 'actor:*',
  fn: ((globalThis as unknown as Record<symbol, unknown>)[GENERIC_FN] ??= (spec: ActorCallSpec, args: unknown[]) => runActorCall(undefined, spec, args)) as never,
};

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
export function remoteClass<C extends AnyClass>(cls: C, options: ActorOptions | undefined, module: string | undefined, runtimeOf: () => Session): ActorClass<C> {
  const name = cls.name;
  if (!name) throw new UsageError('remote() needs a named class, because the name identifies the actor class in every worker: write remote(class Counter {...})');
  const checked = checkActorOptions('remote()', options);
  const def: TaskDefinition = { name: `actor:${name}`, fn: wrapperOf(cls) as never, module };
  registerTask(def);
  // Wherever actor classes are defined (the Lambda bundle among them), calls through a handle found by name can run.
  registerTask(GENERIC);
  actorClasses().set(name, cls);
  const methods = methodNames(cls);
  if (methods.length > MAX_HANDLE_METHODS) throw new UsageError(`remote(): actor class ${name} has ${methods.length} methods, more than the ${MAX_HANDLE_METHODS} a handle can carry`);
  return makeActorClass<C>(cls, def, methods, checked.actor, runtimeOf);
}

function makeActorClass<C extends AnyClass>(cls: C, def: TaskDefinition, methods: string[], opts: ActorOptions, runtimeOf: () => Session): ActorClass<C> {
  const ac: ActorClass<C> = {
    className: cls.name,
    actorOptions: Object.freeze({ ...opts }),
    remote: (...args: unknown[]) => startActor(runtimeOf(), cls.name, def, methods, opts, args) as ActorHandle<InstanceType<C>>,
    startOn: (rt: Runtime, args: unknown[]) => createOn(rt, cls.name, def, methods, opts, args) as ActorHandle<InstanceType<C>>,
    options: (overrides: ActorOptions) => {
      const o = checkActorOptions(`${cls.name}.options()`, overrides);
      return makeActorClass<C>(cls, def, methods, { ...opts, ...o.actor }, runtimeOf);
    },
  };
  return Object.freeze(ac);
}

// --- where calls go ------------------------------------------------------------------------------

/** What a running task's session on the embedded runtime offers actors: operations sent to the driver's actors. */
export type { ActorOp } from './protocol.js';

/** A session that sends actor operations to the driver (sdk/local/thread-session.ts). @internal */
export interface ActorOpSession {
  actorOp(op: ActorOp, args: unknown[]): ObjectRef<unknown>;
}

function isOpSession(s: unknown): s is ActorOpSession {
  return typeof (s as Partial<ActorOpSession> | undefined)?.actorOp === 'function';
}

/** The embedded runtime keeps instances in worker threads (`memory`); every other target, and a Lambda task's own Runtime, in its store. */
function modeOf(rt: Runtime): 'memory' | 'store' {
  return rt.target === 'local' && !isWorker() ? 'memory' : 'store';
}

function randomId(cls: string): string {
  return `${cls}-a${(++actorSeq).toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * On the store-backed targets a named actor's id comes from its name, so a task that looks it
 * up by name (on Lambda, with no way to ask the driver) finds the same state.
 */
function namedId(name: string): string {
  return `n-${Buffer.from(name).toString('base64url').slice(0, 200)}`;
}

interface Death {
  why: string;
  cause?: unknown;
}

/** One caller's side of one actor: its order of calls, and (embedded runtime) whether the actor lives. */
class ActorCore {
  /** Ends when every call submitted so far has ended. */
  private tail: Promise<void> = Promise.resolve();
  dead?: Death;
  private restartsLeft: number;
  readonly mode: 'memory' | 'store';
  private readonly taskOptions: TaskOptions;
  /** store: this caller's latest calls (task ids), newest first: its next call starts where the newest that committed did. */
  private recent: string[] = [];
  /** store: this caller's calls known to have committed, newest first: where a handle passed on starts. */
  private committed: string[];
  /** The handle was passed on: others may hold it, so it is not freed when this runtime's handles are. */
  shared = false;
  private handleRef?: WeakRef<object>;
  /** Kill operations in flight (store). */
  private pendingKill?: Promise<unknown>;

  constructor(
    readonly rt: Runtime,
    readonly id: string,
    readonly clsName: string,
    readonly def: TaskDefinition,
    readonly methods: string[] | undefined,
    readonly opts: ActorOptions,
    private readonly ctorArgs: unknown[] | undefined,
    readonly g: string | undefined,
    after: string[] = [],
  ) {
    this.restartsLeft = opts.maxRestarts ?? 0;
    this.mode = modeOf(rt);
    // A call is never run again by the runtime (retries or lineage): it would apply twice. A lost instance restarts instead.
    this.taskOptions = { timeoutMs: opts.timeoutMs, memoryMB: opts.memoryMB, maxRetries: 0 };
    this.committed = [...after];
    this.recent = [...after];
  }

  /** Queues a call (the constructor when `method` is undefined) after every earlier one of this caller. */
  call(method: string | undefined, args: unknown[], at?: { id: string; parentId: string }): ObjectRef<unknown> {
    if (method !== undefined && this.methods && !this.methods.includes(method)) throw new UsageError(`actor ${this.clsName} has no method ${JSON.stringify(method)}`);
    const prev = this.tail;
    const spec = this.spec(method === undefined ? {} : { method });
    const { ref, ended } = this.launch(spec, args, prev, at);
    this.tail = ended;
    if (this.mode === 'store') this.recent = [ref.id, ...this.recent].slice(0, 4);
    return ref;
  }

  private spec(extra: Partial<ActorCallSpec>): ActorCallSpec {
    const spec: ActorCallSpec = { id: this.id, mode: this.mode, from: -1, ...extra };
    if (this.mode === 'store') {
      if (this.g !== undefined) spec.g = this.g;
      if (this.recent.length) spec.after = [...this.recent];
    }
    return spec;
  }

  private launch(spec: ActorCallSpec, args: unknown[], prev: Promise<void>, at?: { id: string; parentId: string }): { ref: ObjectRef<unknown>; ended: Promise<void> } {
    let endedResolve!: () => void;
    const ended = new Promise<void>((r) => (endedResolve = r));
    let taskId = '';
    const gate = prev.then(() => {
      if (this.dead) throw this.died(taskId, spec, this.dead);
    });
    gate.catch(() => undefined);
    const ref = this.rt.submit(
      this.def,
      this.taskOptions,
      [spec, args],
      {
        after: gate,
        affinity: this.mode === 'memory' ? this.id : undefined,
        onEnd: (err) => {
          const { error, before } = this.onEnd(spec, taskId, err);
          const done = () => endedResolve();
          void Promise.all([prev, before]).then(done, done);
          return error;
        },
      },
      at,
    );
    taskId = ref.id;
    return { ref, ended };
  }

  private what(spec: ActorCallSpec): string {
    return spec.method === undefined ? 'its constructor' : `${this.clsName}.${spec.method}`;
  }

  private died(taskId: string, spec: ActorCallSpec, d: Death): ActorDiedError {
    return new ActorDiedError(`${this.what(spec)} was not run: actor ${this.clsName} (${this.id}) is dead: ${d.why}`, {
      functionName: this.def.name,
      taskId,
      actorId: this.id,
      cause: d.cause,
    });
  }

  /** How a call ended decides what the actor does next; `before` must end before the next call starts. */
  private onEnd(spec: ActorCallSpec, taskId: string, err: Error | undefined): { error?: Error; before?: Promise<unknown> } {
    if (!err) {
      if (this.mode === 'store') this.committed = [taskId, ...this.committed].slice(0, 4);
      return {};
    }
    if (err instanceof ActorDiedError) return { error: err };
    if (this.dead) return { error: this.died(taskId, spec, { why: this.dead.why, cause: err }) };
    if (err instanceof TaskError && err.fault === 'user' && err.remote?.code === 'ACTOR_DIED') {
      // Another caller killed the actor, or its constructor failed (store): this caller sees it in the state.
      const why = err.remote.message;
      this.dead = { why, cause: err.cause };
      return { error: new ActorDiedError(why, { functionName: this.def.name, taskId, actorId: this.id, cause: err.cause }) };
    }
    if (err instanceof DependencyError) return { error: err }; // it did not run
    if (err instanceof TaskError && err.fault === 'user') {
      if (spec.method === undefined) this.die({ why: 'its constructor failed', cause: err });
      else if (this.mode === 'store') this.committed = [taskId, ...this.committed].slice(0, 4);
      return { error: err };
    }
    // An infrastructure fault: the instance (or the invocation that held it) is gone.
    const restart = this.restartsLeft > 0 && this.ctorArgs !== undefined;
    const error = new ActorDiedError(
      `actor ${this.clsName} (${this.id}) died while running ${this.what(spec)}: ${err.message}` +
        (restart ? '; it restarts from its constructor (maxRestarts)' : '; later calls fail too (set maxRestarts to restart it from its constructor)'),
      { functionName: this.def.name, taskId, actorId: this.id, cause: err },
    );
    if (!restart) {
      this.die({ why: `its worker failed (${err.message})`, cause: err });
      return { error };
    }
    this.restartsLeft--;
    // The constructor runs again before the next call (on the store: a new version after the newest).
    const before = new Promise<void>((resolve) => {
      queueMicrotask(() => {
        try {
          const { ref, ended } = this.launch(this.spec({ restart: true }), this.ctorArgs!, Promise.resolve());
          if (this.mode === 'store') this.recent = [ref.id, ...this.recent].slice(0, 4);
          void ended.then(resolve);
        } catch (e) {
          this.die({ why: 'its restart failed', cause: e });
          resolve();
        }
      });
    });
    return { error, before };
  }

  /** Kills the actor: queued calls fail with ActorDiedError; its worker (or, on the store, its state) goes. */
  kill(): void {
    if (this.dead?.why === 'it was killed') return;
    if (this.mode === 'store' && !this.rt.isShutdown) {
      // Every caller must see it: a record after the newest version says so.
      const ref = this.rt.submit(this.def, this.taskOptions, [this.spec({ kill: true }), []]);
      this.pendingKill = this.rt.get(ref).catch(() => undefined);
    }
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

  /** Frees the actor's worker (embedded runtime) and stored state (elsewhere, when no one else may hold a handle). */
  free(now: boolean): void {
    const tail = this.tail;
    const registry = actorsOf(this.rt);
    // A task on Lambda still waits for what this caller has in flight (a kill among it).
    const leaving = this.settled();
    registry.leaving.add(leaving);
    void leaving.finally(() => registry.leaving.delete(leaving));
    if (registry.byId.get(this.id) === this) registry.byId.delete(this.id);
    if (this.opts.name !== undefined && registry.named.get(this.opts.name) === this) registry.named.delete(this.opts.name);
    void this.rt.backendReady().then(
      (b) => {
        if (now) b.invoker.releaseAffinity?.(this.id);
        void Promise.all([tail, this.pendingKill])
          .then(() => {
            if (!now) b.invoker.releaseAffinity?.(this.id);
            if (this.mode === 'store' && !this.shared) return b.store.deletePrefix(actorStateKey(this.rt.jobPrefixOf(b), this.id, 0).replace(/v0$/, ''));
          })
          .catch(() => undefined);
      },
      () => undefined,
    );
  }

  /** Ends when every call and kill of this caller has ended. */
  settled(): Promise<unknown> {
    return Promise.all([this.tail, this.pendingKill]);
  }

  /** The wire form of a handle to this actor: passing it on means others may hold it. */
  wire(): ActorHandleWire {
    this.shared = true;
    const w: ActorHandleWire = { id: this.id, mode: this.mode };
    if (this.clsName !== '') w.cls = this.clsName;
    if (this.methods) w.methods = this.methods;
    if (this.def.module !== undefined) w.module = this.def.module;
    if (this.opts.name !== undefined) w.name = this.opts.name;
    if (this.mode === 'store') {
      if (this.g !== undefined) w.g = this.g;
      if (this.committed.length) w.after = [...this.committed];
    }
    return w;
  }

  /** This runtime's handle to the actor. */
  handle(): object {
    const h = this.handleRef?.deref();
    if (h) return h;
    const made = makeHandle(this.methods, (m, a) => this.call(m, a), this.id);
    cores.set(made, this);
    if (!this.shared) unreachable.register(made, this);
    this.handleRef = new WeakRef(made);
    return made;
  }
}

/** A handle object: its methods, each with `.remote(...)`; any method name when the class is not known here. */
function makeHandle(methods: string[] | undefined, call: (method: string, args: unknown[]) => ObjectRef<unknown>, tag: unknown): object {
  const handle: Record<string | symbol, unknown> = Object.create(null);
  for (const m of methods ?? []) handle[m] = Object.freeze({ remote: (...a: unknown[]) => call(m, a) });
  Object.defineProperty(handle, HANDLE, { value: tag });
  Object.freeze(handle);
  if (methods) return handle;
  return new Proxy(handle, {
    get: (t, k) => (typeof k === 'symbol' || k === 'then' || k === 'toJSON' || k in t ? Reflect.get(t, k) : Object.freeze({ remote: (...a: unknown[]) => call(k, a) })),
  });
}

interface RuntimeActors {
  byId: Map<string, ActorCore>;
  named: Map<string, ActorCore>;
  /** What freed actors of this runtime still have in flight. */
  leaving: Set<Promise<unknown>>;
}
const registries = new WeakMap<object, RuntimeActors>();
function actorsOf(rt: Runtime): RuntimeActors {
  let r = registries.get(rt);
  if (!r) registries.set(rt, (r = { byId: new Map(), named: new Map(), leaving: new Set() }));
  return r;
}

const cores = new WeakMap<object, ActorCore>();
/** An actor whose every handle is gone can receive no more calls: it is freed once its calls end (as in Ray); not one whose handle was passed on. */
const unreachable = new FinalizationRegistry<ActorCore>((core) => {
  if (!core.dead && !core.shared && !core.rt.isShutdown) core.free(false);
});
let actorSeq = 0;

/** Starts an actor on a runtime: the driver's, or a Lambda task's own. */
function createOn(rt: Runtime, cls: string, def: TaskDefinition, methods: string[], opts: ActorOptions, args: unknown[], given?: { id: string; at: { id: string; parentId: string } }): object {
  const reg = actorsOf(rt);
  if (opts.name !== undefined) {
    const prev = reg.named.get(opts.name);
    if (prev && !prev.dead) {
      throw new UsageError(`an actor named ${JSON.stringify(opts.name)} is already alive in this job; find it with getActor(${JSON.stringify(opts.name)}), or kill(it) first`);
    }
  }
  const mode = modeOf(rt);
  const id = given?.id ?? (mode === 'store' && opts.name !== undefined ? namedId(opts.name) : randomId(cls));
  if (reg.byId.has(id)) throw new UsageError(`an actor with id ${id} already exists in this job`);
  const g = mode === 'store' ? Math.random().toString(36).slice(2, 12) : undefined;
  const core = new ActorCore(rt, id, cls, def, methods, opts, args, g);
  core.call(undefined, args, given?.at);
  reg.byId.set(id, core);
  if (opts.name !== undefined) reg.named.set(opts.name, core);
  return core.handle();
}

/** `X.remote(...)` where it was called: the driver's runtime, a Lambda task's, or (embedded runtime) a task's session. */
function startActor(s: Session, cls: string, def: TaskDefinition, methods: string[], opts: ActorOptions, args: unknown[]): object {
  if (s instanceof Runtime) return createOn(s, cls, def, methods, opts, args);
  if (!isOpSession(s)) throw new UsageError(`${cls}.remote() needs a runtime: call it in the driver or inside a task`);
  const id = randomId(cls);
  s.actorOp({ op: 'start', id, cls, methods, ...(def.module !== undefined ? { module: def.module } : {}), ...(Object.keys(opts).length ? { options: opts } : {}) }, args);
  const wire: ActorHandleWire = { id, cls, methods, mode: 'memory' };
  if (def.module !== undefined) wire.module = def.module;
  return proxyHandle(wire, s);
}

/** The core of an actor on a runtime, from a handle's wire form: this runtime's own, or (store) one attached to the same state. */
function coreOn(rt: Runtime, w: ActorHandleWire): ActorCore {
  const reg = actorsOf(rt);
  const core = (w.id !== undefined ? reg.byId.get(w.id) : undefined) ?? (w.id === undefined && w.name !== undefined ? reg.named.get(w.name) : undefined);
  if (core) return core;
  if (w.mode === 'memory' || w.id === undefined) {
    throw new UsageError(`actor ${w.cls ?? ''} ${w.id ?? JSON.stringify(w.name)} is not alive in this job (it was killed, or freed when no handle to it was left)`);
  }
  const def = (w.cls !== undefined ? lookupDef(`actor:${w.cls}`) : undefined) ?? (w.cls !== undefined ? { name: `actor:${w.cls}`, fn: GENERIC.fn, module: w.module } : GENERIC);
  const attached = new ActorCore(rt, w.id, w.cls ?? '', def, w.methods, {}, undefined, w.g, w.after);
  attached.shared = true;
  reg.byId.set(w.id, attached);
  return attached;
}

/** A handle whose calls go to a task's session (embedded runtime), or to where it is called from (`owner` undefined). */
function proxyHandle(w: ActorHandleWire, owner: ActorOpSession | undefined): object {
  const h = makeHandle(
    w.methods,
    (m, a) =>
      through(
        w,
        owner,
        (s) => s.actorOp({ op: 'call', ...ref(w), method: m }, a),
        (core) => core.call(m, a),
      ),
    w,
  );
  return h;
}

function ref(w: ActorHandleWire): { id?: string; name?: string } {
  return w.id !== undefined ? { id: w.id } : { name: w.name! };
}

function through<T>(w: ActorHandleWire, owner: ActorOpSession | undefined, viaSession: (s: ActorOpSession) => T, viaCore: (core: ActorCore) => T): T {
  const s: unknown = owner ?? currentRuntime();
  if (s instanceof Runtime) return viaCore(coreOn(s, w));
  if (isOpSession(s)) return viaSession(s);
  throw new UsageError('an actor handle is used outside the driver and outside a running task');
}

setHandleCodec({
  wire(handle: object): unknown {
    const core = cores.get(handle);
    if (core) return core.wire();
    const w = (handle as Record<symbol, unknown>)[HANDLE];
    if (typeof w !== 'object' || w === null) throw new UsageError('this actor handle cannot be passed on');
    return w;
  },
  revive(raw: unknown, owner: unknown): object {
    const w = validateActorHandleWire(raw);
    if (owner instanceof Runtime) {
      const reg = actorsOf(owner);
      const core = (w.id !== undefined ? reg.byId.get(w.id) : undefined) ?? (w.id === undefined && w.name !== undefined ? reg.named.get(w.name) : undefined);
      if (core) return core.handle();
      if (w.mode === 'store' && w.id !== undefined) return coreOn(owner, w).handle();
      return proxyHandle(w, undefined);
    }
    return proxyHandle(w, isOpSession(owner) ? owner : undefined);
  },
});

/** A running task's actor operations, arrived at the driver's runtime (embedded runtime). */
serveActorOps((rt: Runtime, parentId: string, sub: NestedSubmit) => {
  const decoded = decode(sub.args, (id) => new ObjectRef(id, rt), rt);
  if (!Array.isArray(decoded) || decoded.length !== 2 || !Array.isArray(decoded[1])) throw new ProtocolError('an actor operation is [op, args]');
  const op = validateActorOp(decoded[0]);
  const args = decoded[1] as unknown[];
  const at = { id: sub.id, parentId };
  if (op.op === 'start') {
    const checked = checkActorOptions(`${op.cls}.remote()`, op.options);
    const def = lookupDef(`actor:${op.cls}`) ?? { name: `actor:${op.cls}`, fn: GENERIC.fn, module: op.module };
    const handle = createOn(rt, op.cls, def, op.methods, checked.actor, args, { id: op.id, at });
    // Its handle is in a task, which may pass it on: the driver cannot tell when no one holds it.
    cores.get(handle)!.shared = true;
    return;
  }
  const core = coreOn(rt, { mode: 'memory', ...(op.id !== undefined ? { id: op.id } : { name: op.name! }) });
  if (op.op === 'kill') killCore(core);
  else core.call(op.method, args, at);
});

// Inside a task on Lambda, what the task's calls to actors started must end before it returns.
onTaskEnd(async (session) => {
  if (!(session instanceof Runtime)) return;
  const reg = registries.get(session);
  if (reg) await Promise.all([...reg.byId.values()].map((c) => c.settled()).concat([...reg.leaving]));
});

function killCore(core: ActorCore): void {
  core.kill();
}

function coreOf(where: string, handle: unknown): ActorCore | ActorHandleWire {
  if (typeof handle === 'object' && handle !== null) {
    const core = cores.get(handle);
    if (core) return core;
    const w = (handle as Record<symbol, unknown>)[HANDLE];
    if (typeof w === 'object' && w !== null) return w as ActorHandleWire;
  }
  throw new UsageError(`${where} takes an actor handle (what ActorClass.remote() returns), got ${handle === null ? 'null' : typeof handle}`);
}

/**
 * Kills an actor (Ray's `ray.kill`): calls not yet run fail with ActorDiedError, its worker
 * stops (embedded runtime) or a record in its stored state says it is dead (Lambda); it does
 * not restart. Inside a task too.
 *
 * @public
 */
export function kill(handle: ActorHandle<unknown>): void {
  const c = coreOf('kill()', handle);
  if (c instanceof ActorCore) {
    killCore(c);
    return;
  }
  through<unknown>(
    c,
    undefined,
    (s) => s.actorOp({ op: 'kill', ...ref(c) }, []),
    (core) => killCore(core),
  );
}

/** The actor created with `options({ name })` in the runtime's job (Ray's `ray.get_actor`). */
export function actorByName<T = unknown>(s: Session, name: string): ActorHandle<T> {
  if (typeof name !== 'string' || name === '') throw new UsageError(`getActor() takes a name (a non-empty string), got ${typeof name}`);
  if (s instanceof Runtime) {
    const core = actorsOf(s).named.get(name);
    if (core && !core.dead) return core.handle() as ActorHandle<T>;
    // A task on Lambda cannot ask the driver: a named actor's state is found by its name.
    if (isWorker() && modeOf(s) === 'store') return coreOn(s, { id: namedId(name), name, mode: 'store' }).handle() as ActorHandle<T>;
    throw new UsageError(`no actor named ${JSON.stringify(name)} in this job: create it with ActorClass.options({ name: ${JSON.stringify(name)} }).remote(...)`);
  }
  // A task on the embedded runtime: the driver finds the actor when the handle is first used.
  if (isOpSession(s)) return proxyHandle({ name, mode: 'memory' }, s) as ActorHandle<T>;
  throw new UsageError('getActor() needs a runtime: call it in the driver or inside a task');
}

/** The id of an actor (for logs). @public */
export function actorId(handle: ActorHandle<unknown>): string {
  const c = coreOf('actorId()', handle);
  return c instanceof ActorCore ? c.id : (c.id ?? `name:${c.name}`);
}

/**
 * The actor created with `X.options({ name }).remote(...)` in this job (Ray's
 * `ray.get_actor`), in the driver or inside a task; a UsageError names the way to create it
 * when there is none (inside a task, when the handle is first used).
 *
 * @public
 */
export function getActor<T = unknown>(name: string): ActorHandle<T> {
  return actorByName<T>(actorRuntime(), name);
}

/**
 * Where actors are started and looked up: the driver's runtime, or inside a running task its
 * session (the embedded runtime's goes to the driver; on Lambda it is the task's own Runtime).
 * @internal
 */
export function actorRuntime(): Session {
  return currentRuntime();
}
