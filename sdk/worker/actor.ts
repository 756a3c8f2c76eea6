/**
 * The worker side of an actor call: every target runs an actor's constructor and methods here,
 * as the function of a task named `actor:<Class>` (registered by `remote(class ...)`).
 *
 * Two ways to hold the instance, chosen by the driver per actor:
 * - `memory` (the embedded runtime): the instance lives in the one worker thread that runs
 *   the actor's calls and nothing else; a call runs the method on it.
 * - `store` (Lambda, the emulator, LocalStack): no process lives between calls, so the state
 *   is a log in the object store, versions 0, 1, 2, ... each written once with a write that
 *   succeeds only if the key is absent (S3's `If-None-Match: *`). A call starts at a version
 *   its caller knows exists (`from`), reads forward to the newest (a warm sandbox skips what it
 *   has already seen), runs the method on it and appends one record holding the call's id, the
 *   new fields and the result. If another caller appended first, the call reads that version
 *   and tries the next one. Every record names its call, so a duplicated or retried invocation
 *   finds its call's record on the way and answers it instead of running again: the state can
 *   neither fork nor change twice, whoever calls (the driver, or tasks holding the handle).
 *
 * On both, the fields must be values that can travel (`encode` of the instance's own
 * enumerable properties), checked after the constructor and after every call; a call that
 * breaks the rule fails with ActorStateError and leaves the state of before the call.
 */
import { ActorDiedError, ActorStateError, ConfigError, ObjectStoreError, ProtocolError, SerializationError, UsageError, toRemoteErrorInfo, type RemoteErrorInfo } from '../errors.js';
import type { ObjectStore } from '../backend.js';
import { decode, encode } from '../serialize.js';
import { currentTask } from './execute.js';

/** What the driver tells the worker about one actor call (the first argument of the task). */
export interface ActorCallSpec {
  /** The actor's id. */
  id: string;
  /** Where the instance lives: a worker's memory, or a log of versions in the object store. */
  mode: 'memory' | 'store';
  /** `store` mode: a version of the state known to exist (or being written by the caller's constructor); -1 for none. */
  from: number;
  /** The method to call; absent for the constructor (and for `kill`). */
  method?: string;
  /** `store` mode: the actor's generation (one per creation, kept by restarts); absent for a handle looked up by name. */
  g?: string;
  /** `store` mode: the constructor runs again after the instance was lost (maxRestarts). */
  restart?: true;
  /** `store` mode: append a record saying the actor was killed. */
  kill?: true;
  /**
   * `store` mode: calls (task ids) of the same caller, newest first, that ended before this call
   * runs: the call starts from the newest of them that committed (found in the sandbox's memory
   * or in the small index `actors/<id>/c/<call>`), instead of from `from`.
   */
  after?: string[];
}

/** A stored state version: who wrote it, the fields and the call's result; or that the actor is dead. */
interface StateRecord {
  /** The call (task id) that wrote it. */
  c: string;
  /** The actor's class name. */
  k: string;
  /** The actor's generation. */
  g: string;
  f?: Uint8Array;
  r?: unknown;
  e?: RemoteErrorInfo;
  /** The actor is dead from this version on: killed, or its constructor failed (`e`). */
  dead?: 'killed' | 'constructor';
}

// biome-ignore lint/suspicious/noExplicitAny: any class's constructor parameters must fit
export type AnyClass = new (...args: any[]) => object;

interface Held {
  inst: Record<string, unknown>;
  /** The encoded fields after the last call that kept the rule. */
  fields: Uint8Array;
  /** `store` mode: the version these fields are, and the calls that wrote the versions this sandbox has seen up to it. */
  version: number;
  calls?: Map<number, string>;
  /** `store` mode: the record of that version. */
  rec?: StateRecord;
}

const HELD = Symbol.for('volley.actors');
const CLASSES = Symbol.for('volley.actorClasses');
/** Instances this worker holds, by actor id (on globalThis: one table for every copy of the library). */
function held(): Map<string, Held> {
  const g = globalThis as unknown as Record<symbol, Map<string, Held> | undefined>;
  return (g[HELD] ??= new Map());
}

/** Actor classes defined in this process, by name (a call through a handle looked up by name learns its class from the state). */
export function actorClasses(): Map<string, AnyClass> {
  const g = globalThis as unknown as Record<symbol, Map<string, AnyClass> | undefined>;
  return (g[CLASSES] ??= new Map());
}

/** The key of version `n` of an actor's state, under the job's prefix. */
export function actorStateKey(jobPrefix: string, actorId: string, n: number): string {
  return `${jobPrefix}actors/${actorId}/v${n}`;
}

/** The encoded own enumerable fields of an instance; ActorStateError when one cannot travel. */
function encodeFields(cls: string, inst: object): Uint8Array {
  try {
    return encode({ ...inst }, 'this');
  } catch (err) {
    if (!(err instanceof SerializationError)) throw err;
    throw new ActorStateError(
      `actor ${cls}: ${err.message}. An actor's fields must be values that can travel (as task arguments), on every target, because on Lambda they are stored between calls; keep such a value out of the fields (e.g. build it in a method from plain data)`,
      err.path,
      { cause: err },
    );
  }
}

function rebuild(cls: AnyClass, fields: Uint8Array): Record<string, unknown> {
  return Object.assign(Object.create(cls.prototype) as object, decode(fields) as object) as Record<string, unknown>;
}

async function callMethod(cls: AnyClass, inst: Record<string, unknown>, method: string, args: unknown[]): Promise<unknown> {
  const m = inst[method];
  if (typeof m !== 'function') throw new UsageError(`actor ${cls.name} has no method ${JSON.stringify(method)}`);
  return await (m as (...a: unknown[]) => unknown).apply(inst, args);
}

function errorOf(info: RemoteErrorInfo): Error {
  const e = new Error(info.message) as Error & { code?: string };
  e.name = info.name;
  e.stack = info.stack;
  if (info.code !== undefined) e.code = info.code;
  return e;
}

/** Runs one actor call (the body of the `actor:<Class>` task; `cls` undefined: learnt from the stored state). */
export async function runActorCall(cls: AnyClass | undefined, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  if (spec.mode === 'memory') {
    if (!cls) throw new ProtocolError('an actor call on the embedded runtime names its class');
    return runInMemory(cls, spec, args);
  }
  return runOnStore(cls, spec, args);
}

async function runInMemory(cls: AnyClass, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  const table = held();
  if (spec.method === undefined) {
    const inst = new cls(...args) as Record<string, unknown>;
    table.set(spec.id, { inst, fields: encodeFields(cls.name, inst), version: 0 });
    return undefined;
  }
  const h = table.get(spec.id);
  if (!h) throw new ProtocolError(`actor ${cls.name} (${spec.id}) is not held by this worker: its calls must all go to the worker that ran its constructor`);
  let value: unknown;
  let thrown: { err: unknown } | undefined;
  try {
    value = await callMethod(cls, h.inst, spec.method, args);
  } catch (err) {
    thrown = { err };
  }
  try {
    h.fields = encodeFields(cls.name, h.inst);
  } catch (stateErr) {
    h.inst = rebuild(cls, h.fields);
    throw thrown ? thrown.err : stateErr;
  }
  if (thrown) throw thrown.err;
  return value;
}

/** How long a call waits for a version its caller knows is being written (a constructor still running elsewhere). */
const WAIT_FOR_STATE_MS = 60_000;
/** How long a call through a handle looked up by name waits for the actor's first version (it may be starting). */
const WAIT_FOR_NAMED_MS = 3_000;
/** How many of the calls behind the versions it has seen a warm sandbox remembers. */
const REMEMBERED_CALLS = 1024;

function checkRecord(x: unknown, what: string): StateRecord {
  const r = x as StateRecord;
  if (typeof r !== 'object' || r === null || typeof r.c !== 'string' || typeof r.k !== 'string' || typeof r.g !== 'string') throw new ProtocolError(`${what} is not an actor state record`);
  if (r.dead === undefined && !(r.f instanceof Uint8Array)) throw new ProtocolError(`${what} has no fields`);
  return r;
}

/** The state at one version: its record and, when it is this sandbox's own, the live instance. */
interface Base {
  version: number;
  rec: StateRecord;
  inst?: Record<string, unknown>;
}

async function runOnStore(known: AnyClass | undefined, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  const task = currentTask();
  if (!task) throw new ProtocolError('an actor call ran outside a worker task');
  const store = task.store;
  if (!store.create) throw new ConfigError('this target keeps actors in its object store, which needs writes that only succeed if the key is absent (ObjectStore.create)');
  const create = store.create.bind(store);
  // The envelope's result key is the job's prefix followed by the task id.
  const jobPrefix = task.resultKey.endsWith(task.taskId) ? task.resultKey.slice(0, -task.taskId.length) : '';
  const key = (n: number) => actorStateKey(jobPrefix, spec.id, n);
  const callId = task.taskId;
  const table = held();
  const what = spec.kill ? 'kill()' : spec.method === undefined ? 'its constructor' : spec.method;
  let clsName = known?.name;
  const classOf = (k: string): AnyClass => {
    const c = known ?? actorClasses().get(k);
    if (!c) throw new ConfigError(`actor class ${k} is not defined in this worker: list the module that defines it in volley.config.json "tasks"`);
    return c;
  };
  const died = (why: string, cause?: unknown) =>
    new ActorDiedError(`${clsName ?? 'actor'}.${what} was not run: actor ${clsName ?? ''} (${spec.id}) ${why}`, { functionName: `actor:${clsName ?? '?'}`, taskId: callId, actorId: spec.id, cause });

  // Where to start: the newest version one of the caller's earlier calls committed, else `from`.
  const warm = table.get(spec.id);
  let from = spec.from;
  for (const c of spec.after ?? []) {
    const u = versionOf(warm, c) ?? (await readIndex(store, indexKey(jobPrefix, spec.id, c)));
    if (u !== undefined) {
      from = Math.max(from, u);
      break;
    }
  }
  // This sandbox's own instance, when it knows every call since that version.
  let base: Base | undefined;
  let calls: Map<number, string> = new Map();
  if (warm?.calls && warm.rec && warm.version >= from && (warm.version === from || warm.calls.has(from + 1))) {
    for (let u = from + 1; u <= warm.version; u++) {
      if (warm.calls.get(u) === callId) return answer(checkRecord(decode(await store.get(key(u))), `state version ${u}`), u);
    }
    calls = warm.calls;
    base = { version: warm.version, rec: warm.rec, inst: warm.inst };
  } else if (from >= 0) {
    const rec = await tryRead(store, key(from), `state version ${from}`);
    if (!rec) throw died('was killed: its state is gone');
    if (rec.c === callId) return answer(rec, from);
    base = { version: from, rec };
    calls.set(from, rec.c);
  }
  table.delete(spec.id); // the instance may change: only a commit makes it a version again

  const started = Date.now();
  let pause = 10;
  for (;;) {
    const v = base ? base.version : -1;
    const next = await tryRead(store, key(v + 1), `state version ${v + 1}`);
    if (next) {
      calls.set(v + 1, next.c);
      if (next.c === callId) return answer(next, v + 1);
      base = { version: v + 1, rec: next };
      continue;
    }
    // v is the newest version.
    if (base) clsName ??= base.rec.k;
    let record: StateRecord | undefined;
    let outcome: { value?: unknown; thrown?: { err: unknown }; inst?: Record<string, unknown>; fields?: Uint8Array } = {};
    if (spec.kill) {
      if (base?.rec.dead) return undefined;
      record = { c: callId, k: base?.rec.k ?? clsName ?? '', g: base?.rec.g ?? spec.g ?? '', dead: 'killed' };
    } else if (spec.method === undefined) {
      const g = spec.g ?? callId;
      if (base && base.rec.g === g && base.rec.dead === 'killed') throw died('was killed before its constructor ran');
      if (base && base.rec.g !== g && !base.rec.dead) {
        throw new UsageError(`actor ${clsName} (${spec.id}) is already alive: a named actor is unique among live actors; find it with getActor(), or kill() it first`);
      }
      const cls = classOf(clsName!);
      try {
        const inst = new cls(...args) as Record<string, unknown>;
        outcome = { inst, fields: encodeFields(cls.name, inst) };
        record = { c: callId, k: cls.name, g, f: outcome.fields };
      } catch (err) {
        outcome = { thrown: { err } };
        record = { c: callId, k: cls.name, g, dead: 'constructor', e: toRemoteErrorInfo(err) };
      }
    } else {
      if (!base) {
        // The caller's constructor has not committed yet (a handle passed on at once): wait for it.
        // A handle passed on right after the actor started: its constructor may still be running. A name looked up: it may not exist.
        const patience = spec.g === undefined ? WAIT_FOR_NAMED_MS : WAIT_FOR_STATE_MS;
        if (Date.now() - started > patience) {
          throw died(spec.g === undefined ? `has no state after ${patience} ms: no actor of this name was started in this job` : `has no state after ${patience} ms: its constructor never ran`);
        }
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 500);
        continue;
      }
      const rec = base.rec;
      if (rec.dead === 'killed') throw died('was killed');
      if (rec.dead === 'constructor') throw died('is dead: its constructor failed', rec.e && errorOf(rec.e));
      if (spec.g !== undefined && rec.g !== spec.g) throw died('was killed, and a new actor of that name has been started since: get a handle to it with getActor()');
      const cls = classOf(rec.k);
      let inst = base.inst ?? rebuild(cls, rec.f!);
      base.inst = undefined; // a retry after a lost race starts from the stored fields again
      let value: unknown;
      let thrown: { err: unknown } | undefined;
      try {
        value = await callMethod(cls, inst, spec.method, args);
      } catch (err) {
        thrown = { err };
      }
      let fields: Uint8Array;
      try {
        fields = encodeFields(cls.name, inst);
      } catch (stateErr) {
        fields = rec.f!;
        inst = rebuild(cls, fields);
        thrown ??= { err: stateErr };
      }
      try {
        record = { c: callId, k: rec.k, g: rec.g, f: fields, ...(thrown ? { e: toRemoteErrorInfo(thrown.err) } : { r: value }) };
        encode(record, 'result');
      } catch (err) {
        thrown = { err };
        record = { c: callId, k: rec.k, g: rec.g, f: fields, e: toRemoteErrorInfo(err) };
      }
      outcome = { value, thrown, inst, fields };
    }
    if (!(await create(key(v + 1), encode(record, 'result')))) continue; // another caller appended first: read it, go on from there
    calls.set(v + 1, callId);
    await store.put(indexKey(jobPrefix, spec.id, callId), encode(v + 1));
    if (outcome.inst && outcome.fields) remember(table, spec.id, { inst: outcome.inst, fields: outcome.fields, version: v + 1, calls, rec: record });
    if (outcome.thrown) throw outcome.thrown.err;
    return outcome.value;
  }

  /** A record of this very call (a duplicated or retried invocation): its answer, without running again. */
  async function answer(rec: StateRecord, version: number): Promise<unknown> {
    await store.put(indexKey(jobPrefix, spec.id, callId), encode(version));
    if (rec.f) {
      const cls = known ?? actorClasses().get(rec.k);
      if (cls) remember(table, spec.id, { inst: rebuild(cls, rec.f), fields: rec.f, version, calls, rec });
    }
    if (rec.e) throw errorOf(rec.e);
    return rec.r;
  }
}

function remember(table: Map<string, Held>, id: string, h: Held): void {
  const calls = h.calls!;
  if (calls.size > REMEMBERED_CALLS) {
    // Forget the oldest: a caller far behind reads from the store again.
    const keep = [...calls.entries()].filter(([u]) => u > h.version - REMEMBERED_CALLS / 2);
    h.calls = new Map(keep);
  }
  table.set(id, h);
}

/** The object at `key`, or undefined when there is none (any other failure is thrown). */
async function getIfPresent(store: ObjectStore, key: string): Promise<Uint8Array | undefined> {
  try {
    return await store.get(key);
  } catch (err) {
    if (err instanceof ObjectStoreError && err.code === 'OBJECT_MISSING') return undefined;
    throw err;
  }
}

async function tryRead(store: ObjectStore, key: string, what: string): Promise<StateRecord | undefined> {
  const bytes = await getIfPresent(store, key);
  return bytes && checkRecord(decode(bytes), what);
}

/** The key of the index entry saying at which version a call committed. */
export function indexKey(jobPrefix: string, actorId: string, callId: string): string {
  return `${jobPrefix}actors/${actorId}/c/${callId}`;
}

function versionOf(warm: Held | undefined, callId: string): number | undefined {
  if (!warm?.calls) return undefined;
  for (const [u, c] of warm.calls) if (c === callId) return u;
  return undefined;
}

async function readIndex(store: ObjectStore, key: string): Promise<number | undefined> {
  const bytes = await getIfPresent(store, key);
  if (!bytes) return undefined;
  const u = decode(bytes);
  if (!Number.isSafeInteger(u) || (u as number) < 0) throw new ProtocolError(`actor index ${key} is malformed`);
  return u as number;
}
