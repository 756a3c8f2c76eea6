const BRAND = Symbol.for('volley.ObjectRef');

/** What an ObjectRef knows about the runtime that made it. @internal */
export interface RefOwner {
  readonly jobId: string;
}

/**
 * A reference to a value that a task will produce (or that `put` stored). Returned at once by
 * `rf.remote(...)` and `put(...)`; pass it to other tasks as an argument, or read it with `get`.
 *
 * @public
 */
export class ObjectRef<T = unknown> {
  /** Unique id of the object (for a task's result, the task id). */
  readonly id: string;
  /** @internal */
  declare readonly owner: RefOwner;
  /** @internal brand that survives two copies of the library being loaded (ESM and CJS). */
  readonly [BRAND] = true;
  /** Type-level only: the type of the referenced value. */
  declare readonly __value?: T;

  /** @internal refs are made by the runtime, not by users. */
  constructor(id: string, owner: RefOwner) {
    this.id = id;
    Object.defineProperty(this, 'owner', { value: owner, enumerable: false });
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  toString(): string {
    return `ObjectRef(${this.id})`;
  }

  /** Refs are handles, not data: JSON.stringify gives their id only. */
  toJSON(): { ref: string } {
    return { ref: this.id };
  }
}
