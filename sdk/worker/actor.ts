/**
 * The worker side of an actor call: every target runs an actor's constructor and methods here,
 * as the function of a task named `actor:<Class>` (registered by `remote(class ...)`).
 *
 * Two ways to hold the instance, chosen by the driver per actor:
 * - `memory` (the embedded runtime): the instance lives in the one worker thread that runs
 *   the actor's calls and nothing else; a call runs the method on it.
 * - `store` (Lambda, the emulator, LocalStack): no process lives between calls, so the state
 *   is in the object store as versions written once. Call `seq` loads version `from` (or keeps
 *   the instance of a warm sandbox whose own last commit was exactly that version), runs the
 *   method, and commits one record holding the new fields and the result under version `seq`
 *   with a write that succeeds only if the key is absent (S3's `If-None-Match: *`). A
 *   duplicated or retried invocation of the same call finds the version written and answers
 *   the committed result instead of committing again: state can neither fork nor change twice.
 *
 * On both, the fields must be values that can travel (`encode` of the instance's own
 * enumerable properties), checked after the constructor and after every call; a call that
 * breaks the rule fails with ActorStateError and leaves the state of before the call.
 */
import { ActorStateError, ConfigError, ProtocolError, SerializationError, UsageError, toRemoteErrorInfo, type RemoteErrorInfo } from '../errors.js';
import { decode, encode } from '../serialize.js';
import { currentTask } from './execute.js';

/** What the driver tells the worker about one actor call (the first argument of the task). */
export interface ActorCallSpec {
  /** The actor's id. */
  id: string;
  /** Where the instance lives: a worker's memory, or versions in the object store. */
  mode: 'memory' | 'store';
  /** The number of this call; its state version in `store` mode (the constructor is 0). */
  seq: number;
  /** The version this call starts from (`store` mode); -1 for a constructor. */
  from: number;
  /** The method to call; absent for the constructor. */
  method?: string;
}

/** A stored state version: the fields and the call's result, or a pointer to an earlier version (a call that did not run). */
interface StateRecord {
  f?: Uint8Array;
  r?: unknown;
  e?: RemoteErrorInfo;
  link?: number;
}

// biome-ignore lint/suspicious/noExplicitAny: any class's constructor parameters must fit
export type AnyClass = new (...args: any[]) => object;

interface Held {
  inst: Record<string, unknown>;
  /** The encoded fields after the last call that kept the rule. */
  fields: Uint8Array;
  /** `store` mode: the version these fields are. */
  version: number;
}

const HELD = Symbol.for('volley.actors');
/** Instances this worker holds, by actor id (on globalThis: one table for every copy of the library). */
function held(): Map<string, Held> {
  const g = globalThis as unknown as Record<symbol, Map<string, Held> | undefined>;
  return (g[HELD] ??= new Map());
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

function rethrow(info: RemoteErrorInfo): never {
  const e = new Error(info.message) as Error & { code?: string };
  e.name = info.name;
  e.stack = info.stack;
  if (info.code !== undefined) e.code = info.code;
  throw e;
}

/** Runs one actor call (the body of the `actor:<Class>` task). */
export async function runActorCall(cls: AnyClass, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  if (spec.mode === 'memory') return runInMemory(cls, spec, args);
  return runOnStore(cls, spec, args);
}

async function runInMemory(cls: AnyClass, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  const table = held();
  if (spec.method === undefined) {
    const inst = new cls(...args) as Record<string, unknown>;
    table.set(spec.id, { inst, fields: encodeFields(cls.name, inst), version: spec.seq });
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

async function runOnStore(cls: AnyClass, spec: ActorCallSpec, args: unknown[]): Promise<unknown> {
  const task = currentTask();
  if (!task) throw new ProtocolError('an actor call ran outside a worker task');
  const store = task.store;
  if (!store.create) throw new ConfigError('this target keeps actors in its object store, which needs writes that only succeed if the key is absent (ObjectStore.create)');
  // The envelope's result key is the job's prefix followed by the task id.
  const jobPrefix = task.resultKey.endsWith(task.taskId) ? task.resultKey.slice(0, -task.taskId.length) : '';
  const key = (n: number) => actorStateKey(jobPrefix, spec.id, n);
  const table = held();

  let inst: Record<string, unknown>;
  let before: Uint8Array | undefined;
  let value: unknown;
  let thrown: { err: unknown } | undefined;
  if (spec.method === undefined) {
    inst = new cls(...args) as Record<string, unknown>;
  } else {
    const warm = table.get(spec.id);
    // A warm sandbox keeps its instance only if its last commit is the version this call starts from.
    let version = spec.from;
    let rec: StateRecord | undefined;
    if (!(warm && warm.version === version)) {
      for (;;) {
        rec = decode(await store.get(key(version))) as StateRecord;
        if (rec.link === undefined) break;
        version = rec.link;
        if (warm && warm.version === version) {
          rec = undefined;
          break;
        }
      }
    }
    if (rec) {
      if (!(rec.f instanceof Uint8Array)) throw new ProtocolError(`actor ${cls.name} (${spec.id}): state version ${version} is malformed`);
      before = rec.f;
      inst = rebuild(cls, rec.f);
    } else {
      before = warm!.fields;
      inst = warm!.inst;
    }
    table.delete(spec.id); // the instance is about to change: only a commit makes it a version again
    try {
      value = await callMethod(cls, inst, spec.method, args);
    } catch (err) {
      thrown = { err };
    }
  }

  let fields: Uint8Array;
  try {
    fields = encodeFields(cls.name, inst);
  } catch (stateErr) {
    if (before === undefined) throw stateErr; // a constructor that breaks the rule: nothing to commit
    fields = before;
    inst = rebuild(cls, before);
    if (!thrown) thrown = { err: stateErr };
  }
  let record: Uint8Array;
  try {
    record = encode(thrown ? { f: fields, e: toRemoteErrorInfo(thrown.err) } : { f: fields, r: value }, 'result');
  } catch (err) {
    thrown = { err };
    record = encode({ f: fields, e: toRemoteErrorInfo(err) });
  }
  if (!(await store.create(key(spec.seq), record))) {
    // Another invocation of this very call committed first: answer what it committed.
    const rec = decode(await store.get(key(spec.seq))) as StateRecord;
    if (!(rec.f instanceof Uint8Array)) throw new ProtocolError(`actor ${cls.name} (${spec.id}): state version ${spec.seq} is malformed`);
    table.set(spec.id, { inst: rebuild(cls, rec.f), fields: rec.f, version: spec.seq });
    if (rec.e) rethrow(rec.e);
    return rec.r;
  }
  table.set(spec.id, { inst, fields, version: spec.seq });
  if (thrown) throw thrown.err;
  return value;
}

/** A record saying that version `seq` is version `from` (a call that did not run). */
export function linkRecord(from: number): Uint8Array {
  return encode({ link: from } satisfies StateRecord);
}
