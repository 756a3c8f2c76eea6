/**
 * The code that runs a task inside a worker. The Lambda handler and the embedded runtime's
 * worker threads both call `executeTask`; only the ObjectStore they pass differs.
 */
import { ProtocolError, SerializationError, TaskNotFoundError } from '../errors.js';
import type { ObjectStore } from '../backend.js';
import { NO_DEPS, PROTOCOL_VERSION, checkKeysConfined, errorResult, validateTaskEnvelope, type ContainedRefs, type Payload, type ResultEnvelope, type TaskEnvelope, type Timing } from '../protocol.js';
import type { ObjectRef } from '../ref.js';
import { lookupTask } from '../registry.js';
import { decode, encode } from '../serialize.js';
import { InTaskPending, callInTask, type SessionFactory, type TaskSession } from './nested.js';
import { RunningTask, setRunningTask } from './task-context.js';
import { moduleFailureResult } from './load-failure.js';

export interface WorkerContext {
  store: ObjectStore;
  /** Loads a task's module on demand (embedded runtime); Lambda bundles have every task loaded. */
  loadModule?: (url: string) => Promise<unknown>;
  /**
   * The store's key prefix on this worker: every key an envelope names must be under
   * `<keyPrefix>jobs/<job>/` (its own run), or the task is refused with a ProtocolError.
   */
  keyPrefix: string;
  /** Largest result this worker may answer inline (Lambda: what fits its 6 MB response); larger ones are stored whatever the envelope's inlineLimit. */
  maxInlineBytes?: number;
  /** Makes the session a task's `.remote()`, `put`, `get` and `wait` go to (nested tasks); made on first use. */
  session?: SessionFactory;
  /** Receives the task's context before it runs, so the caller can abort its signal (cancel, timeout). */
  onStart?: (task: RunningTask) => void;
}

/**
 * This thread's time origin, read once: `performance.timeOrigin` is a getter that asks the
 * runtime each time (a few µs, twice per task), and it does not change while the thread lives.
 */
const TIME_ORIGIN = performance.timeOrigin;
/** The global `performance`, read once: on Node it is a lazy global, whose getter runs on every read (several times per task). */
const clock = performance;

/** A ref among a task's arguments whose object the envelope's deps do not hold. */
function missingDep(id: string): never {
  throw new ProtocolError(`ref ${id} is used by the arguments but missing from the envelope's deps`);
}

async function payloadBytes(p: Payload, store: ObjectStore): Promise<Uint8Array> {
  return p.kind === 'inline' ? p.bytes : store.get(p.key);
}

/**
 * The task is not registered here. On the embedded runtime the worker imported the module the
 * driver defined it in, so remote() did not run at that module's top level (it ran inside
 * main() or another function only the driver calls, as a Ray user writes a closure); in a
 * Lambda bundle its module is not one of the bundled task modules.
 */
function taskNotFound(env: TaskEnvelope, loadsModules: boolean): TaskNotFoundError {
  const name = JSON.stringify(env.fn);
  if (env.module && loadsModules) {
    return new TaskNotFoundError(
      `task ${name} is not registered in this worker: its module ${env.module} was loaded but did not call remote() with that name at its top level. ` +
        'A worker registers a task by importing the module that defines it, so remote() inside main() or another function the driver calls never runs there. ' +
        'Fix: define the task at the top level of a module (const t = remote(function name(...) {...}) outside any function), and pass what it used from the enclosing function as arguments',
    );
  }
  return new TaskNotFoundError(
    `task ${name} is not registered in this worker: ${env.module ? `its module (${env.module} on the driver)` : 'its module'} is not in the worker bundle. ` +
      'Fix: list its source file in volley.config.json "tasks", then bundle and deploy again (npx volley deploy --target aws|localstack, or restart npx volley emulators; in the volley repository, npm run build)',
  );
}

async function resolveFunction(env: TaskEnvelope, ctx: WorkerContext): Promise<(...args: unknown[]) => unknown> {
  let def = lookupTask(env.fn);
  if (!def && env.module && ctx.loadModule) {
    await ctx.loadModule(env.module);
    def = lookupTask(env.fn);
  }
  if (!def) throw taskNotFound(env, ctx.loadModule !== undefined);
  return def.fn as (...args: unknown[]) => unknown;
}

/** What the running task may need from its worker besides its arguments (actors reach the store). */
export interface CurrentTask {
  store: ObjectStore;
  taskId: string;
  resultKey: string;
}
const CURRENT = Symbol.for('volley.currentTask');
function setCurrentTask(t: CurrentTask): void {
  (globalThis as Record<symbol, unknown>)[CURRENT] = t;
}
/** The task this worker runs now (a worker runs one at a time); on globalThis so that every copy of the library sees it. */
export function currentTask(): CurrentTask | undefined {
  return (globalThis as Record<symbol, unknown>)[CURRENT] as CurrentTask | undefined;
}

/**
 * Validates and runs one task envelope. Never throws for a task's own failure: a user's
 * exception, an unserializable result or an unreadable argument all become an `error` result.
 */
export async function executeTask(raw: unknown, ctx: WorkerContext): Promise<ResultEnvelope> {
  return runTask(raw, ctx);
}

/**
 * `executeTask` without a promise where there is nothing to wait for: a task whose function is
 * registered, whose arguments are all inline, that returns a value (not a promise) without using
 * its session, and whose result is answered inline is answered here at once. Throws what
 * `executeTask` rejects with (a malformed envelope).
 *
 * A worker thread runs this for every task, and each isolate compiles it for itself: the common
 * case is kept to small synchronous functions, with whatever waits (a module loaded on first use,
 * stored arguments, a promise returned, nested tasks, a stored result) in separate async
 * functions that only such tasks make hot.
 */
export function runTask(raw: unknown, ctx: WorkerContext): ResultEnvelope | Promise<ResultEnvelope> {
  const env = validateTaskEnvelope(raw);
  checkKeysConfined(env, ctx.keyPrefix);
  const inlineLimit = Math.min(env.inlineLimit, ctx.maxInlineBytes ?? Infinity);
  const t0 = clock.now();
  const timing: Timing = { fetchMs: 0, runMs: 0, storeMs: 0, startedAt: TIME_ORIGIN + t0 };
  // Its module threw while this worker loaded it: the task fails with that error, even where remote() ran before the throw.
  const failed = moduleFailureResult(env, timing);
  if (failed) return failed;
  // Most tasks have their function registered and every input inline: nothing to wait for then.
  const registered = lookupTask(env.fn);
  if (!registered || env.args.kind !== 'inline' || !inlineDeps(env.deps)) return fetchAndRun(env, ctx, inlineLimit, timing, t0);
  let args: unknown[];
  try {
    args = argumentList(decodeArgs((env.args as { bytes: Uint8Array }).bytes, env.deps));
  } catch (err) {
    return fetchFailed(env, timing, t0, err);
  }
  return run(env, ctx, registered.fn as (...args: unknown[]) => unknown, args, inlineLimit, timing, t0);
}

/** Whether every dependency came inline (none to read from the store). */
function inlineDeps(deps: TaskEnvelope['deps']): boolean {
  for (const id in deps) if (deps[id]!.kind !== 'inline') return false;
  return true;
}

/** A task's arguments, their refs resolved from `deps`, whose every payload is inline. */
function decodeArgs(argBytes: Uint8Array, deps: TaskEnvelope['deps']): unknown {
  // No dependencies (a DAG's leaves, most fan-outs): nothing to resolve.
  if (deps === NO_DEPS || !anyDep(deps)) return decode(argBytes, missingDep);
  refDeps = deps;
  try {
    return decode(argBytes, argRef);
  } finally {
    refDeps = NO_DEPS;
    refValues = undefined;
  }
}

function anyDep(deps: TaskEnvelope['deps']): boolean {
  for (const _ in deps) return true;
  return false;
}

/**
 * The inline deps whose objects the refs of the arguments being decoded resolve to, and the
 * values decoded from them so far (each object is decoded once, its own refs through the same
 * deps). Module state rather than closures made per task: a task's arguments are decoded
 * synchronously, one task at a time.
 */
let refDeps: TaskEnvelope['deps'] = NO_DEPS;
let refValues: Map<string, unknown> | undefined;

/** A ref of the arguments themselves. */
function argRef(id: string): unknown {
  if (!Object.hasOwn(refDeps, id)) missingDep(id);
  return depValue(id);
}

/** A ref inside a dependency's value (a task that returned refs: their objects came in deps too). */
function innerRef(id: string): unknown {
  if (!Object.hasOwn(refDeps, id)) throw new ProtocolError(`ref ${id} is inside a value but its object was not sent with it`);
  return depValue(id);
}

function depValue(id: string): unknown {
  if (refValues?.has(id)) return refValues.get(id);
  const v = decode((refDeps[id] as { bytes: Uint8Array }).bytes, innerRef);
  (refValues ??= new Map()).set(id, v);
  return v;
}

/** `deps` with the objects in the store read: every payload inline (keyed by ids from the wire, so no prototype). */
async function readDeps(deps: TaskEnvelope['deps'], store: ObjectStore): Promise<TaskEnvelope['deps']> {
  const ids = Object.keys(deps);
  const read = await Promise.all(ids.map((id) => payloadBytes(deps[id]!, store)));
  const out = Object.create(null) as TaskEnvelope['deps'];
  for (let i = 0; i < ids.length; i++) out[ids[i]!] = { kind: 'inline', bytes: read[i]! };
  return out;
}

/** The driver always sends a list; anything else is a malformed envelope, not the task's fault. */
function argumentList(decoded: unknown): unknown[] {
  if (!Array.isArray(decoded)) throw new ProtocolError(`the task's arguments decode to ${decoded === null ? 'null' : typeof decoded}, not an argument list`);
  return decoded;
}

/** Reading or decoding the arguments failed (or loading the task's module). */
function fetchFailed(env: TaskEnvelope, timing: Timing, t0: number, err: unknown): ResultEnvelope {
  timing.fetchMs = clock.now() - t0;
  // Loading its module (on first use) threw, or no module registered it while a bundle module threw: answered as above.
  return moduleFailureResult(env, timing, err) ?? errorResult(env.taskId, err, 'infrastructure', timing);
}

/** The rare start: the task's module is loaded on first use, or an input is in the store. */
async function fetchAndRun(env: TaskEnvelope, ctx: WorkerContext, inlineLimit: number, timing: Timing, t0: number): Promise<ResultEnvelope> {
  let fn: (...args: unknown[]) => unknown;
  let args: unknown[];
  try {
    const registered = lookupTask(env.fn);
    fn = registered ? (registered.fn as (...args: unknown[]) => unknown) : await resolveFunction(env, ctx);
    // A module loaded on first use is a cold start, not part of this task's fetch time.
    t0 = clock.now();
    timing.startedAt = TIME_ORIGIN + t0;
    const deps = inlineDeps(env.deps) ? env.deps : await readDeps(env.deps, ctx.store);
    const argBytes = env.args.kind === 'inline' ? env.args.bytes : await ctx.store.get(env.args.key);
    args = argumentList(decodeArgs(argBytes, deps));
  } catch (err) {
    return fetchFailed(env, timing, t0, err);
  }
  return run(env, ctx, fn, args, inlineLimit, timing, t0);
}

/** Runs the task's function; answers at once when it returned a value without using its session. */
function run(env: TaskEnvelope, ctx: WorkerContext, fn: (...args: unknown[]) => unknown, args: unknown[], inlineLimit: number, timing: Timing, t0: number): ResultEnvelope | Promise<ResultEnvelope> {
  const t1 = clock.now();
  timing.fetchMs = t1 - t0;
  const running = new RunningTask(env.taskId, env.fn, env.attempt ?? 1);
  ctx.onStart?.(running);
  setRunningTask(running);
  let out: unknown;
  try {
    setCurrentTask({ store: ctx.store, taskId: env.taskId, resultKey: env.resultKey });
    out = ctx.session ? callInTask(env, ctx.session, fn, args) : fn(...args);
  } catch (err) {
    setRunningTask(undefined);
    timing.runMs = clock.now() - t1;
    return errorResult(env.taskId, err, 'user', timing);
  }
  if (out instanceof InTaskPending) return runLonger(env, ctx, out.result, inlineLimit, timing, t1);
  if (!ctx.session && out !== null && (typeof out === 'object' || typeof out === 'function')) return runLonger(env, ctx, plainAwait(out), inlineLimit, timing, t1);
  setRunningTask(undefined);
  const t2 = clock.now();
  timing.runMs = t2 - t1;
  return answer(env, ctx, out, undefined, inlineLimit, timing, t2);
}

/** A value as `await` answers it (without a session, every object goes this way: it may be a thenable). */
async function plainAwait(v: unknown): Promise<{ value: unknown; session?: TaskSession }> {
  return { value: await v };
}

/** The task returned a promise or used its session: waits for it as `executeTask` always did. */
async function runLonger(env: TaskEnvelope, ctx: WorkerContext, result: Promise<{ value: unknown; session?: TaskSession }>, inlineLimit: number, timing: Timing, t1: number): Promise<ResultEnvelope> {
  let value: unknown;
  let session: TaskSession | undefined;
  try {
    ({ value, session } = await result);
  } catch (err) {
    timing.runMs = clock.now() - t1;
    return errorResult(env.taskId, err, 'user', timing);
  } finally {
    setRunningTask(undefined);
  }
  const t2 = clock.now();
  timing.runMs = t2 - t1;
  return answer(env, ctx, value, session, inlineLimit, timing, t2);
}

/**
 * Where the result being encoded goes: its bytes (see `resultBytes`) and the refs found in it
 * (see `collectRef`). Module state rather than closures made per task (a closure that captures
 * a local makes every call of its function allocate a context): a result is encoded
 * synchronously, one task at a time.
 */
let resultStore: ObjectStore | undefined;
let resultLimit = 0;
let resultRefs: ObjectRef<unknown>[] | undefined;

/** A result too large to answer inline is encoded where the store keeps it without a copy (shared memory), when it can. */
function resultBytes(n: number): Uint8Array {
  return n > resultLimit && resultStore?.allocate ? resultStore.allocate(n) : new Uint8Array(n);
}

function collectRef(ref: ObjectRef<unknown>): void {
  (resultRefs ??= []).push(ref);
}

/** Encodes the task's value as its result: inline at once, else (stored, or holding refs) in `answerLater`. */
function answer(env: TaskEnvelope, ctx: WorkerContext, value: unknown, session: TaskSession | undefined, inlineLimit: number, timing: Timing, t2: number): ResultEnvelope | Promise<ResultEnvelope> {
  let bytes: Uint8Array;
  let refs: ObjectRef<unknown>[] | undefined;
  try {
    resultStore = ctx.store;
    resultLimit = inlineLimit;
    resultRefs = undefined;
    try {
      bytes = encode(value, `result of ${env.fn}`, resultBytes, ctx.session ? collectRef : undefined);
      refs = resultRefs;
    } finally {
      resultStore = undefined;
      resultRefs = undefined;
    }
    if (refs === undefined && bytes.length <= inlineLimit) {
      session?.end();
      timing.storeMs = clock.now() - t2;
      return { v: PROTOCOL_VERSION, kind: 'value', taskId: env.taskId, bytes, timing };
    }
  } catch (err) {
    session?.end();
    return answerFailed(env, timing, t2, err);
  }
  return answerLater(env, ctx, bytes, refs, session, inlineLimit, timing, t2);
}

function answerFailed(env: TaskEnvelope, timing: Timing, t2: number, err: unknown): ResultEnvelope {
  timing.storeMs = clock.now() - t2;
  // An unserializable result is the task's own doing; a store failure is not.
  const fault = err instanceof SerializationError ? 'user' : 'infrastructure';
  return errorResult(env.taskId, err, fault, timing);
}

/** A result that holds refs (their objects must be ready) or is too large to answer inline (stored). */
async function answerLater(
  env: TaskEnvelope,
  ctx: WorkerContext,
  bytes: Uint8Array,
  refs: ObjectRef<unknown>[] | undefined,
  session: TaskSession | undefined,
  inlineLimit: number,
  timing: Timing,
  t2: number,
): Promise<ResultEnvelope> {
  try {
    let contained: ContainedRefs | undefined;
    if (refs !== undefined) {
      for (const r of refs) {
        if (r.owner !== session) {
          throw new SerializationError(`the result of ${env.fn} holds ref ${r.id}, which this run of the task did not make: a task returns only refs it made while it ran`, `result of ${env.fn}`);
        }
      }
      try {
        // The objects of returned refs must be ready: the caller reads them as values.
        contained = await session!.contained(refs.map((r) => r.id));
      } catch (err) {
        timing.storeMs = clock.now() - t2;
        return errorResult(env.taskId, err, 'user', timing);
      }
    }
    let res: ResultEnvelope;
    if (bytes.length <= inlineLimit) {
      res = { v: PROTOCOL_VERSION, kind: 'value', taskId: env.taskId, bytes, timing };
    } else {
      await ctx.store.put(env.resultKey, bytes);
      res = { v: PROTOCOL_VERSION, kind: 'stored', taskId: env.taskId, key: env.resultKey, size: bytes.length, timing };
    }
    if (contained) res.refs = contained;
    timing.storeMs = clock.now() - t2;
    return res;
  } catch (err) {
    return answerFailed(env, timing, t2, err);
  } finally {
    session?.end();
  }
}
