/**
 * Nested tasks: inside a running task, `.remote()`, `put`, `get` and `wait` go to a session of
 * that task instead of the driver's default runtime.
 *
 * - On the embedded runtime the session is a ThreadSession (sdk/local/thread-session.ts): the
 *   calls travel to the driver's orchestrator over the thread's message channel, and the driver
 *   owns every ref.
 * - On Lambda the session is a Runtime inside the invocation (sdk/aws/handler.ts) that invokes
 *   the same function and uses the same bucket, under the job's prefix, so nothing needs a way
 *   back into the driver.
 *
 * A worker runs one task at a time (a thread of the embedded runtime, a Lambda invocation), so
 * the running task's scope is module state, set around the task's own function only: module
 * code that runs while a task module is imported sees no task, and the driver guard
 * (`if (!isWorker())`) keeps its meaning. Where invocations may overlap in one thread, the
 * Lambda handler keeps the scope per async context instead (useAsyncTaskScope).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ObjectStore } from '../backend.js';
import type { GetOptions, WaitOptions, WaitResult } from '../checks.js';
import { ProtocolError } from '../errors.js';
import type { TaskOptions } from '../options.js';
import type { ContainedRefs, Payload, TaskEnvelope } from '../protocol.js';
import type { ObjectRef } from '../ref.js';
import type { TaskDefinition } from '../registry.js';
import { decode } from '../serialize.js';

/** What `rf.remote()`, `put`, `get` and `wait` call: the driver's Runtime, or a running task's session. */
export interface Session {
  readonly jobId: string;
  submit(def: TaskDefinition, taskOptions: Readonly<TaskOptions>, args: unknown[]): ObjectRef<unknown>;
  put<T>(value: T): ObjectRef<T>;
  get(refOrRefs: ObjectRef<unknown> | readonly ObjectRef<unknown>[], options?: GetOptions): Promise<unknown>;
  wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<WaitResult<T>>;
  cancel(ref: ObjectRef<unknown>, options?: { force?: boolean; recursive?: boolean }): void;
}

/**
 * The prefix of the ids a running task makes: `<taskId>.` on its first run, `<taskId>.r<attempt>.`
 * on a later one (a retry or a rebuild), so a re-run's children never collide with the ones the
 * earlier run made (a letter, so they cannot be mistaken for a child's own children).
 */
export function childIdPrefix(env: Pick<TaskEnvelope, 'taskId' | 'attempt'>): string {
  return env.attempt && env.attempt > 1 ? `${env.taskId}.r${env.attempt}.` : `${env.taskId}.`;
}

/** The session of one running task. */
export interface TaskSession extends Session {
  /**
   * Where the objects of these refs (made by this session) are, with the refs inside them, once
   * all are ready: what a result that contains them carries. Throws the failure of one that failed.
   */
  contained(ids: string[]): Promise<ContainedRefs>;
  /** The task has finished: the session takes no more calls. */
  end(): void;
}

export type SessionFactory = (env: TaskEnvelope) => TaskSession;

interface Scope {
  env: TaskEnvelope;
  make: SessionFactory;
  session?: TaskSession;
}

/** Kept on globalThis, like the worker flag, so that two copies of the library in one worker (ESM and CJS) see the same task. */
const SCOPE = Symbol.for('volley.taskScope');
const ASYNC_SCOPE = Symbol.for('volley.asyncTaskScope');
const holder = globalThis as { [SCOPE]?: Scope; [ASYNC_SCOPE]?: AsyncLocalStorage<Scope> };

/**
 * Tracks the running task per async context instead of per worker: for a process where
 * invocations may overlap (serverless-offline may hand two at once to one thread; Lambda itself
 * never does). Costs every promise a little, so the embedded runtime's threads do without.
 */
export function useAsyncTaskScope(): void {
  holder[ASYNC_SCOPE] ??= new AsyncLocalStorage<Scope>();
}

/**
 * Calls a task's function in its scope, where `.remote()`, `put`, `get` and `wait` reach the
 * task's session, without awaiting when there is nothing to wait for: the value itself when the
 * function returned one that is not a thenable and did not use its session (most tasks), else an
 * InTaskPending of its value and the session, if it used one. A worker thread runs this per
 * task, so it is kept small and synchronous for V8 to compile cheaply; the rest is in
 * `finishInTask`, and under an async-context scope (the Lambda handler's) in `inAsyncScope`.
 */
export function callInTask(env: TaskEnvelope, make: SessionFactory, fn: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  const als = holder[ASYNC_SCOPE];
  if (als) return new InTaskPending(inAsyncScope({ env, make }, als, fn, args));
  const scope: Scope = { env, make };
  holder[SCOPE] = scope;
  let value: unknown;
  let pending: PromiseLike<unknown> | undefined;
  try {
    value = fn(...args);
    // Reading a returned object's `then` runs the user's code too (a getter): a throw there is the task's.
    pending = awaitable(value);
  } catch (err) {
    holder[SCOPE] = undefined;
    scope.session?.end();
    throw err;
  }
  if (pending === undefined && scope.session === undefined) {
    holder[SCOPE] = undefined;
    return value;
  }
  return finishInTask(scope, pending === undefined ? value : pending);
}

/** `callInTask` under an async-context scope, which carries the task's scope; out of line, so that the closure it makes costs `callInTask` nothing. */
async function inAsyncScope(scope: Scope, als: AsyncLocalStorage<Scope>, fn: (...args: unknown[]) => unknown, args: unknown[]): Promise<{ value: unknown; session?: TaskSession }> {
  try {
    return await settled(scope, await als.run(scope, () => fn(...args)));
  } catch (err) {
    scope.session?.end();
    throw err;
  }
}

/** What `callInTask` answers when there is something to wait for (a class of this module: never a task's own value). */
export class InTaskPending {
  constructor(readonly result: Promise<{ value: unknown; session?: TaskSession }>) {}
}

/**
 * A thenable `value` as `await` would take it, its `then` read once (a native promise as it is);
 * undefined for a value that `await` would answer as it is.
 */
function awaitable(value: unknown): PromiseLike<unknown> | undefined {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined;
  if (value instanceof Promise) return value;
  const then = (value as { then?: unknown }).then;
  if (typeof then !== 'function') return undefined;
  return new Promise((ok, fail) => then.call(value, ok, fail));
}

/** The rest of `callInTask` when the task returned a thenable or used its session: its value once settled (see `settled`), its scope cleared. */
function finishInTask(scope: Scope, value: unknown): InTaskPending {
  return new InTaskPending(settleInTask(scope, value));
}

async function settleInTask(scope: Scope, value: unknown): Promise<{ value: unknown; session?: TaskSession }> {
  try {
    return await settled(scope, await value);
  } catch (err) {
    scope.session?.end();
    throw err;
  } finally {
    holder[SCOPE] = undefined;
  }
}

/**
 * What a task that waited answers (`callInTask`): its value, once what its session still has in flight that
 * must not be abandoned (actor calls on Lambda) has ended. A function of the module, not a
 * closure made per task (the library's build names each named closure as it is made).
 */
async function settled<T>(scope: Scope, value: T): Promise<{ value: T; session?: TaskSession }> {
  if (scope.session && endHook) await endHook(scope.session);
  return { value, session: scope.session };
}

let endHook: ((session: TaskSession) => Promise<void>) | undefined;
/** What must end before a task that used its session returns (sdk/actor.ts: the actor calls it made on Lambda). @internal */
export function onTaskEnd(f: (session: TaskSession) => Promise<void>): void {
  endHook = f;
}

/** The session of the task running here, made on first use; undefined outside a task. */
export function taskSession(): TaskSession | undefined {
  const scope = holder[ASYNC_SCOPE]?.getStore() ?? holder[SCOPE];
  if (!scope) return undefined;
  scope.session ??= scope.make(scope.env);
  return scope.session;
}

/** The store prefix of a task's job (`<keyPrefix>jobs/<job>/`), from the result key the driver gave it. */
export function jobPrefixOf(env: TaskEnvelope): string {
  if (!env.resultKey.endsWith(env.taskId)) throw new ProtocolError(`task envelope's resultKey ${env.resultKey} does not end with its task id ${env.taskId}`);
  return env.resultKey.slice(0, env.resultKey.length - env.taskId.length);
}

/**
 * Decodes an object whose value may hold refs (a task's result that returned refs): each ref is
 * replaced by its object's value, read once even where it appears twice.
 */
export async function decodeResolved(root: Payload, refs: ContainedRefs | undefined, read: ObjectStore['get'], owner?: unknown): Promise<unknown> {
  const bytesOf = (p: Payload) => (p.kind === 'inline' ? p.bytes : read(p.key));
  if (!refs) return decode(await bytesOf(root), undefined, owner);
  const ids = Object.keys(refs);
  const all = await Promise.all([bytesOf(root), ...ids.map((id) => bytesOf(refs[id]!))]);
  return decode(all[0]!, resolverOf(new Map(ids.map((id, i) => [id, all[i + 1]!])), owner), owner);
}

/** Resolves ref ids to values, decoding each object once (its own refs through the same resolver); actor handles inside are bound to `owner`. */
export function resolverOf(bytes: Map<string, Uint8Array>, owner?: unknown): (id: string) => unknown {
  const values = new Map<string, unknown>();
  // A method, not a closure bound to a name: the library's build (esbuild keepNames) names such
  // a closure each time it is made, at more cost than decoding a small task's arguments.
  const r = {
    resolve(id: string): unknown {
      if (values.has(id)) return values.get(id);
      const b = bytes.get(id);
      if (!b) throw new ProtocolError(`ref ${id} is inside a value but its object was not sent with it`);
      const v = decode(b, (x) => r.resolve(x), owner);
      values.set(id, v);
      return v;
    },
  };
  return (id) => r.resolve(id);
}
