import { ObjectStoreError } from '../errors.js';
import type { ObjectStore } from '../backend.js';

/** New zeroed bytes in shared memory. */
export function allocateShared(size: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(size));
}

/** Bytes in shared memory: handed to worker threads without a copy. */
export function toShared(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
  const shared = allocateShared(bytes.byteLength);
  shared.set(bytes);
  return shared;
}

/**
 * The embedded runtime's object store: objects live in the driver process as
 * SharedArrayBuffers, so worker threads read them without copying them through messages.
 *
 * Writes behave like S3's `PutObject` with `If-None-Match: *` (which the S3 store sends): the
 * first write of a key wins and a later write of the same key is ignored, so a task that ran
 * twice (a retry after a lost answer) cannot replace the result its first run committed.
 */
export class MemoryStore implements ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();

  allocate(size: number): Uint8Array {
    return allocateShared(size);
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.putSync(key, bytes);
  }

  /** Writes only if the key is absent (as S3's `If-None-Match: *`); false when it was there. */
  async create(key: string, bytes: Uint8Array): Promise<boolean> {
    if (this.objects.has(key)) return false;
    this.putSync(key, bytes);
    return true;
  }

  putSync(key: string, bytes: Uint8Array): void {
    if (this.objects.has(key)) return; // first committed write wins, as with If-None-Match: *
    this.objects.set(key, toShared(bytes));
  }

  async get(key: string): Promise<Uint8Array> {
    return this.getSync(key);
  }

  getSync(key: string): Uint8Array {
    const b = this.objects.get(key);
    if (!b) {
      throw new ObjectStoreError(`object ${key} is not in the embedded runtime's store: it was removed by shutdown() or never written`, key, undefined, 'OBJECT_MISSING');
    }
    return b;
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    for (const k of [...this.objects.keys()]) {
      if (k.startsWith(prefix)) {
        this.objects.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Removes every object (the runtime shut down). */
  clear(): void {
    this.objects.clear();
  }

  /** Keys held, for tests. */
  keys(): string[] {
    return [...this.objects.keys()];
  }

  /** Total bytes held, for tests and benchmarks. */
  get size(): number {
    let n = 0;
    for (const b of this.objects.values()) n += b.byteLength;
    return n;
  }
}
