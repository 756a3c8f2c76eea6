/** Top-level get/put/wait: on the runtime that owns the refs, or on the default runtime. */
import { UsageError } from './errors.js';
import { currentRuntime } from './context.js';
import { ObjectRef } from './ref.js';
import { checkRefArray, type GetOptions, type Values, type WaitOptions, type WaitResult } from './checks.js';
import type { CancelOptions } from './runtime.js';
import type { Session } from './worker/nested.js';

function ownerOf(where: string, refs: readonly unknown[]): Session {
  const first = refs.find((r): r is ObjectRef<unknown> => r instanceof ObjectRef);
  if (!first) {
    if (refs.length === 0) return currentRuntime();
    throw new UsageError(`${where} takes refs returned by .remote() or put(), got ${typeof refs[0]}`);
  }
  return first.owner as unknown as Session;
}

/**
 * Waits for and returns the value of a ref, or the values of an array of refs in order.
 * A failed task's error is re-thrown (a TaskError with the remote stack).
 *
 * @public
 */
export function get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
export function get<R extends readonly ObjectRef<unknown>[]>(refs: readonly [...R], options?: GetOptions): Promise<Values<R>>;
export function get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
export function get(refs: ObjectRef<unknown> | readonly ObjectRef<unknown>[], options?: GetOptions): Promise<unknown> {
  try {
    const rt = ownerOf('get()', Array.isArray(refs) ? refs : [refs]);
    return rt.get(refs as ObjectRef<unknown>[], options);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Stores a value once on the default runtime and returns a ref to it. @public */
export function put<T>(value: T): ObjectRef<T> {
  return currentRuntime().put(value);
}

/**
 * Waits until `numReturns` refs (default 1) are ready or `timeoutMs` passes.
 * Returns `{ ready, pending }`, each in input order.
 *
 * @public
 */
export function wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<WaitResult<T>> {
  try {
    checkRefArray('wait()', refs);
    return ownerOf('wait()', refs).wait(refs, options);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Cancels the task behind a ref (Ray's `cancel`): see Runtime.cancel. `get(ref)` then raises
 * TaskCancelledError. Options: `force` (default false), `recursive` (default true).
 *
 * @public
 */
export function cancel(ref: ObjectRef<unknown>, options?: CancelOptions): void {
  ownerOf('cancel()', [ref]).cancel(ref, options);
}
