/**
 * The driver's table of objects: every ref is `pending`, `ready` (with its payload: inline
 * bytes or a store key) or `failed` (with its error). It tells waiters when entries settle,
 * and frees an entry like Ray frees an object: once the program dropped every ObjectRef to it
 * (the ref was garbage-collected) and no unfinished task takes it as an argument, the entry
 * goes and its stored bytes are deleted.
 *
 * `D` is what waits on an entry to become ready (the orchestrator's tasks).
 */
import type { Payload } from './protocol.js';
import { setLongTimeout, type LongTimer } from './timers.js';

export const PENDING = 0;
export const READY = 1;
export const FAILED = 2;

export interface ObjectEntry<D> {
  readonly id: string;
  state: typeof PENDING | typeof READY | typeof FAILED;
  payload?: Payload;
  /** The inline payload written to the store, once an envelope had no room for it. */
  spilled?: Promise<Payload>;
  /** The key `spilled` writes to. */
  spilledKey?: string;
  error?: Error;
  listeners?: Set<{ settled(): void }>;
  dependents?: D[];
  /** The task that produces this object (absent for put() objects): run again to rebuild it if it is lost. */
  producer?: D;
  /** Unfinished tasks that take this object as an argument, and objects whose value holds a ref to it. */
  uses: number;
  /** Refs inside this object's value (a task that returned refs), with the refs inside theirs: held while this entry lives. */
  contains?: string[];
  /** The program no longer holds its ObjectRef (it was garbage-collected). */
  dropped: boolean;
}

export class ObjectTable<D> {
  private readonly entries = new Map<string, ObjectEntry<D>>();
  private readonly collected = new FinalizationRegistry<string>((id) => {
    const e = this.entries.get(id);
    if (!e) return;
    e.dropped = true;
    this.maybeFree(e);
  });

  /** @param deleteKeys - removes stored bytes of freed entries (failures are the caller's to ignore). */
  constructor(private readonly deleteKeys: (keys: Promise<string>[]) => void) {}

  add(id: string): ObjectEntry<D> {
    // Every field from the start: one layout for all entries, none added later.
    const e: ObjectEntry<D> = {
      id,
      state: PENDING,
      payload: undefined,
      spilled: undefined,
      spilledKey: undefined,
      error: undefined,
      listeners: undefined,
      dependents: undefined,
      producer: undefined,
      uses: 0,
      contains: undefined,
      dropped: false,
    };
    this.entries.set(id, e);
    return e;
  }

  get(id: string): ObjectEntry<D> | undefined {
    return this.entries.get(id);
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  values(): IterableIterator<ObjectEntry<D>> {
    return this.entries.values();
  }

  /** Puts a freed entry back (its object is being rebuilt for a task that needs it). */
  readd(e: ObjectEntry<D>): void {
    this.entries.set(e.id, e);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Frees the entry `id` once `ref` (its ObjectRef) is garbage-collected and nothing uses it. */
  track(ref: object, id: string): void {
    this.collected.register(ref, id);
  }

  /** A task that took the entry as an argument is done with it. */
  release(e: ObjectEntry<D>): void {
    e.uses--;
    this.maybeFree(e);
  }

  maybeFree(e: ObjectEntry<D>): void {
    if (!e.dropped || e.uses > 0 || e.state === PENDING || !this.entries.has(e.id)) return;
    this.entries.delete(e.id);
    if (e.contains) {
      for (const id of e.contains) {
        const c = this.entries.get(id);
        if (c) this.release(c);
      }
    }
    const keys: Promise<string>[] = [];
    if (e.payload?.kind === 'stored') keys.push(Promise.resolve(e.payload.key));
    if (e.spilled) keys.push(e.spilled.then((p) => (p as { key: string }).key));
    if (keys.length) this.deleteKeys(keys);
  }

  /** Settles a pending entry as ready; returns what waited on it. */
  markReady(e: ObjectEntry<D>, payload: Payload): D[] | undefined {
    if (e.state !== PENDING) return undefined;
    e.state = READY;
    e.payload = payload;
    return this.settle(e);
  }

  /** Settles a pending entry as failed; returns what waited on it (undefined if it was settled already). */
  markFailed(e: ObjectEntry<D>, err: Error): D[] | undefined {
    if (e.state !== PENDING) return undefined;
    e.state = FAILED;
    e.error = err;
    return this.settle(e) ?? [];
  }

  private settle(e: ObjectEntry<D>): D[] | undefined {
    const deps = e.dependents;
    e.dependents = undefined;
    const ls = e.listeners;
    if (ls) {
      e.listeners = undefined;
      for (const l of ls) l.settled();
    }
    return deps;
  }

  /** Resolves true once n of the entries are settled, false on timeout. */
  settled(entries: ObjectEntry<D>[], n: number, timeoutMs: number | undefined): Promise<boolean> {
    let done = 0;
    for (const e of entries) if (e.state !== PENDING) done++;
    if (done >= n) return Promise.resolve(true);
    if (timeoutMs === 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w = new Waiter<D>(done, n, resolve);
      for (const e of entries) {
        if (e.state === PENDING) {
          (e.listeners ??= new Set()).add(w);
          w.listening.push(e);
        }
      }
      if (timeoutMs !== undefined) w.timer = setLongTimeout(() => w.finish(false), timeoutMs);
    });
  }
}

/**
 * A `settled` call waiting for its entries. An object with methods rather than closures: it is
 * made for every get/wait that waits, and the library's build names each closure bound to a
 * name when it is made (esbuild keepNames), which costs more than the rest of the call.
 */
class Waiter<D> {
  timer?: LongTimer;
  readonly listening: ObjectEntry<D>[] = [];

  constructor(
    private done: number,
    private readonly n: number,
    private readonly resolve: (ok: boolean) => void,
  ) {}

  /** One of its entries settled. */
  settled(): void {
    if (++this.done >= this.n) this.finish(true);
  }

  finish(ok: boolean): void {
    this.timer?.clear();
    for (const e of this.listening) e.listeners?.delete(this);
    this.resolve(ok);
  }
}
