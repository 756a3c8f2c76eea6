/**
 * Fault injection for tests (never shipped): wrappers around the two target interfaces that
 * fail on purpose, the way the real services fail, and count what they did.
 *
 * - FaultyInvoker (around any Invoker): Lambda 429 throttling past the invoker's give-up time
 *   and Lambda 5xx answers, both before the task ran; and a connection reset after the task ran
 *   (its result is committed, its answer lost), so the retry runs the task a second time.
 *   The errors are those LambdaInvoker raises for such SDK errors (classified by the same
 *   `isTransient`).
 * - FaultyStore (around any ObjectStore): S3 503 SlowDown on reads and writes (as S3Store raises
 *   it once the SDK's own retries gave up), NoSuchKey (the object is really removed first:
 *   expiry), and slow calls. It counts commits per key: a write that finds the key already
 *   there is ignored, as S3 does with If-None-Match: * (which the wrapped store implements).
 *
 * Worker crashes and timeouts are real: the DAG tasks of test/fixtures/failure-tasks.ts exit
 * their worker thread or never return on the attempts their spec names.
 */
import type { InvokeOptions, Invoker, ObjectStore } from '../sdk/backend.js';
import { isTransient } from '../sdk/aws/lambda-invoker.js';
import { ObjectStoreError, TaskError } from '../sdk/errors.js';
import type { ResultEnvelope, TaskEnvelope } from '../sdk/protocol.js';

export type FaultKind = 'crash' | 'hang' | 'throw' | 'throttle' | 'lambda5xx' | 'reset' | 'store503' | 'noSuchKey' | 'slow';

/** Counts of faults injected, by kind. */
export type FaultCounts = Record<FaultKind, number>;

export function noFaults(): FaultCounts {
  return { crash: 0, hang: 0, throw: 0, throttle: 0, lambda5xx: 0, reset: 0, store503: 0, noSuchKey: 0, slow: 0 };
}

/** A small seeded generator (mulberry32), so a failing run replays from its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface InvokerFaults {
  /** Probability per invocation of each fault. */
  throttle: number;
  lambda5xx: number;
  reset: number;
  /** Faults are injected only on runs up to this attempt number, so retries can succeed. */
  upToAttempt: number;
}

/** An SDK-shaped error, as the Lambda client raises it. */
function sdkError(name: string, status: number | undefined, code?: string): Error {
  return Object.assign(new Error(`${name} (injected)`), { name, code, $metadata: status ? { httpStatusCode: status } : {} });
}

export class FaultyInvoker implements Invoker {
  readonly counts: FaultCounts;
  /** How many times each task's function was actually run, by task id. */
  readonly runs = new Map<string, number>();
  /** The attempt numbers that reached a worker, by task id. */
  readonly delivered = new Map<string, number[]>();

  constructor(
    private readonly inner: Invoker,
    private readonly faults: InvokerFaults,
    private readonly random: () => number,
    counts?: FaultCounts,
  ) {
    this.counts = counts ?? noFaults();
  }

  async invoke(env: TaskEnvelope, options: InvokeOptions): Promise<ResultEnvelope> {
    const attempt = env.attempt ?? 1;
    const f = this.faults;
    const inject = attempt <= f.upToAttempt;
    const fail = (kind: 'throttle' | 'lambda5xx' | 'reset', cause: Error): TaskError => {
      this.counts[kind]++;
      const throttled = kind === 'throttle';
      return new TaskError(`Task ${env.fn} (${env.taskId}) could not be invoked: ${cause.message}`, {
        functionName: env.fn,
        taskId: env.taskId,
        fault: 'infrastructure',
        cause,
        code: throttled ? 'THROTTLED' : 'INVOKE_FAILED',
        retryable: throttled || isTransient(cause),
      });
    };
    if (inject && this.random() < f.throttle) throw fail('throttle', sdkError('TooManyRequestsException', 429));
    if (inject && this.random() < f.lambda5xx) throw fail('lambda5xx', sdkError('ServiceException', 503));
    const reset = inject && this.random() < f.reset;
    this.runs.set(env.taskId, (this.runs.get(env.taskId) ?? 0) + 1);
    const d = this.delivered.get(env.taskId);
    if (d) d.push(attempt);
    else this.delivered.set(env.taskId, [attempt]);
    const res = await this.inner.invoke(env, options);
    // The task ran and its result is committed; the answer is lost on the way back.
    if (reset) throw fail('reset', sdkError('Error', undefined, 'ECONNRESET'));
    return res;
  }

  cancel(taskId: string, force: boolean): void {
    this.inner.cancel?.(taskId, force);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface StoreFaults {
  /** Probability per get/put of a 503 SlowDown (at most once per key and operation). */
  store503: number;
  /** Probability per get of a task's result that the object is gone (at most once per key). */
  noSuchKey: number;
  /** Probability per call of a delay of up to `slowMs`. */
  slow: number;
  slowMs: number;
}

export class FaultyStore implements ObjectStore {
  readonly counts: FaultCounts;
  /** Accepted (first) writes per key, and removals per key (by the runtime or injected). */
  readonly commits = new Map<string, number>();
  readonly removals = new Map<string, number>();
  private readonly failedOnce = new Set<string>();
  readonly allocate?: (size: number) => Uint8Array;

  constructor(
    /** With `keys` (the MemoryStore), writes are counted as commits; without (S3), they are not. */
    private readonly inner: ObjectStore & { keys?(): string[] },
    private readonly faults: StoreFaults,
    private readonly random: () => number,
    /** Which keys hold a task's result (the only objects a lost copy of can be rebuilt). */
    private readonly isResultKey: (key: string) => boolean,
    counts?: FaultCounts,
  ) {
    this.counts = counts ?? noFaults();
    if (inner.allocate) this.allocate = inner.allocate.bind(inner);
  }

  private async maybeSlow(): Promise<void> {
    if (this.random() < this.faults.slow) {
      this.counts.slow++;
      await new Promise((r) => setTimeout(r, 1 + Math.floor(this.random() * this.faults.slowMs)));
    }
  }

  private maybe503(op: string, key: string): void {
    const id = `${op} ${key}`;
    if (!this.failedOnce.has(id) && this.random() < this.faults.store503) {
      this.failedOnce.add(id);
      this.counts.store503++;
      throw new ObjectStoreError(`could not ${op} object ${key}: SlowDown: Please reduce your request rate (injected 503)`, key, { retryable: true });
    }
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.maybeSlow();
    this.maybe503('write', key);
    const had = this.inner.keys?.().includes(key) ?? true;
    await this.inner.put(key, bytes);
    if (!had) this.commits.set(key, (this.commits.get(key) ?? 0) + 1);
  }

  async get(key: string): Promise<Uint8Array> {
    await this.maybeSlow();
    this.maybe503('read', key);
    const lostId = `lost ${key}`;
    if (this.isResultKey(key) && !this.failedOnce.has(lostId) && this.random() < this.faults.noSuchKey) {
      this.failedOnce.add(lostId);
      this.counts.noSuchKey++;
      this.removed(key);
      await this.inner.delete!([key]);
    }
    return this.inner.get(key);
  }

  private removed(key: string): void {
    this.removals.set(key, (this.removals.get(key) ?? 0) + 1);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.removed(k);
    await this.inner.delete!(keys);
  }

  async deletePrefix(prefix: string): Promise<number> {
    for (const k of this.inner.keys?.() ?? []) if (k.startsWith(prefix)) this.removed(k);
    return this.inner.deletePrefix(prefix);
  }

  /** Keys committed more often than they were removed and rebuilt: a second run's result replaced the first. */
  overCommitted(): string[] {
    return [...this.commits].filter(([k, n]) => n > 1 + (this.removals.get(k) ?? 0)).map(([k, n]) => `${k} x${n}`);
  }
}
