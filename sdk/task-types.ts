/**
 * The types of remote functions and their arguments. They live apart from remote() so the
 * runtime can name them without importing the module that reaches the default runtime.
 */
import type { Matrix } from './matrix.js';
import type { TaskOptions } from './options.js';
import type { ObjectRef } from './ref.js';
import type { TaskDefinition } from './registry.js';

/** Any function; `any` so that every function's parameter list fits. */
// biome-ignore lint/suspicious/noExplicitAny: every function's parameter list must fit
export type AnyFunction = (...args: any[]) => any;

/** Values that `RefOr` does not look inside: refs nested in them are refused at the call site. @public */
export type Opaque =
  | string
  | number
  | boolean
  | bigint
  | symbol
  | null
  | undefined
  | AnyFunction
  | Date
  | RegExp
  | ArrayBuffer
  | ArrayBufferView
  | Map<unknown, unknown>
  | Set<unknown>
  | Matrix
  | ObjectRef<unknown>;

/**
 * What may be passed where a task expects a `T`: the value, a ref to it, or (inside arrays and
 * plain objects) the same structure with refs in place of any of its parts. Refs inside a Map,
 * a Set or a class instance are refused at the call site (SerializationError).
 *
 * @public
 */
export type RefOr<T> = T | ObjectRef<T> | (T extends Opaque ? never : T extends readonly unknown[] ? { [K in keyof T]: RefOr<T[K]> } : T extends object ? { [K in keyof T]: RefOr<T[K]> } : never);

/**
 * The value a caller gets for a task's result `T`: refs the task returned (alone, or inside
 * arrays and plain objects) are read as their values.
 *
 * @public
 */
export type Resolved<T> =
  T extends ObjectRef<infer U> ? Resolved<U> : T extends Opaque ? T : T extends readonly unknown[] ? { [K in keyof T]: Resolved<T[K]> } : T extends object ? { [K in keyof T]: Resolved<T[K]> } : T;

/** The parameters of `rf.remote(...)` for a function with parameters P. @public */
export type RemoteArgs<P extends readonly unknown[]> = { [K in keyof P]: RefOr<P[K]> };

/**
 * A function registered as a task. Call `rf.remote(...args)` to run it as a task; calling
 * `rf(...)` directly is an error.
 *
 * @public
 */
export interface RemoteFunction<F extends AnyFunction> {
  (...args: never[]): never;
  /** Submits a task and returns a ref to its (awaited) result at once; refs the result holds are read as values. */
  remote(...args: RemoteArgs<Parameters<F>>): ObjectRef<Resolved<Awaited<ReturnType<F>>>>;
  /** A copy of this remote function with some options overridden (the task name stays). */
  options(overrides: Omit<TaskOptions, 'name'>): RemoteFunction<F>;
  /** The task's registered name. */
  readonly taskName: string;
  /** Options given to remote() and options(). */
  readonly taskOptions: Readonly<TaskOptions>;
  /** @internal */
  readonly definition: TaskDefinition;
}
