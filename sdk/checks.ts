/**
 * The options of the public get/wait API and the checks of their arguments, shared by the
 * top-level functions (api.ts) and Runtime's methods.
 */
import { UsageError } from './errors.js';
import { checkKeys, optionTable } from './options.js';
import type { ObjectRef } from './ref.js';

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

/** The value types of a tuple of refs. @public */
export type Values<R extends readonly ObjectRef<unknown>[]> = { [K in keyof R]: R[K] extends ObjectRef<infer T> ? T : never };

/** Throws a UsageError unless `refs` is an array (of refs, checked item by item later). */
export function checkRefArray(where: string, refs: unknown): void {
  if (!Array.isArray(refs)) {
    throw new UsageError(`${where} takes an array of refs, got ${refs === null ? 'null' : typeof refs}; wrap a single ref: ${where.replace('()', '')}([ref])`);
  }
}

/** A timeout in ms, or undefined for none (omitted or Infinity). */
export function checkTimeout(where: string, t: unknown): number | undefined {
  if (t === undefined || t === Infinity) return undefined;
  if (typeof t !== 'number' || Number.isNaN(t) || t < 0) {
    throw new UsageError(`${where}: timeoutMs must be a number >= 0 (or omitted to wait forever), got ${String(t)}`);
  }
  return t;
}

/** Checks get()'s options; returns its timeout. */
export function checkGetOptions(options: GetOptions | undefined): number | undefined {
  const timeoutMs = checkTimeout('get()', options?.timeoutMs);
  if (options !== undefined) checkKeys('get()', options, Object.keys(optionTable.get));
  return timeoutMs;
}

/** Checks wait()'s option keys. */
export function checkWaitKeys(options: WaitOptions | undefined): void {
  checkKeys('wait()', options, Object.keys(optionTable.wait));
}

/** Checks wait()'s refs (no ref twice) and options; returns how many to wait for and the timeout. */
export function checkWaitArgs(refs: readonly ObjectRef<unknown>[], options: WaitOptions | undefined): { numReturns: number; timeoutMs: number | undefined } {
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
  return { numReturns, timeoutMs: checkTimeout('wait()', options?.timeoutMs) };
}

/** The flags of `cancel(ref, { force, recursive })`, checked (defaults: not forced, recursive). */
export function checkCancelOptions(options: { force?: boolean; recursive?: boolean } | undefined): { force: boolean; recursive: boolean } {
  checkKeys('cancel()', options, ['force', 'recursive']);
  const force = options?.force ?? false;
  const recursive = options?.recursive ?? true;
  for (const [k, v] of [
    ['force', force],
    ['recursive', recursive],
  ] as const) {
    if (typeof v !== 'boolean') throw new UsageError(`cancel(): ${k} must be true or false, got ${String(v)}`);
  }
  return { force, recursive };
}
