/**
 * What a running task can learn about its own run: `taskContext()` inside a task's function.
 *
 * ```ts
 * const crawl = remote(async function crawl(urls: string[]) {
 *   const { signal } = taskContext();
 *   for (const u of urls) {
 *     signal.throwIfAborted();          // stop between steps once cancelled
 *     await fetch(u, { signal });       // or hand the signal to what you await
 *   }
 * });
 * ```
 *
 * A worker runs one task at a time (a worker thread, or a Lambda invocation), so the context is
 * the one of the task that is running. The signal is aborted when the task is cancelled
 * (`cancel(ref)`) or reaches its `timeoutMs`; `signal.reason` says which.
 */
import { UsageError } from '../errors.js';

/** What a running task knows about its run; see taskContext(). @public */
export interface TaskContext {
  /** Id of the running task (also the id of its result ref). */
  readonly taskId: string;
  /** Registered name of the task's function. */
  readonly functionName: string;
  /** Which run of the task this is: 1, then 2, 3, ... when it is retried or rebuilt. */
  readonly attempt: number;
  /** Aborted when the task is cancelled or times out; pass it to what the task awaits. */
  readonly signal: AbortSignal;
}

/** The context of a running task; its AbortController is made only when someone asks for the signal. */
export class RunningTask implements TaskContext {
  private controller?: AbortController;
  private abortedWith?: Error;
  constructor(
    readonly taskId: string,
    readonly functionName: string,
    readonly attempt: number,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith);
    }
    return this.controller.signal;
  }

  /** Aborts the task's signal (cancel or timeout); a later `signal` read sees it aborted. */
  abort(reason: Error): void {
    if (this.abortedWith) return;
    this.abortedWith = reason;
    this.controller?.abort(reason);
  }

  get aborted(): boolean {
    return this.abortedWith !== undefined;
  }
}

let current: RunningTask | undefined;

/** @internal Sets (or clears) the running task of this worker. */
export function setRunningTask(t: RunningTask | undefined): void {
  current = t;
}

/** @internal The running task of this worker, if any. */
export function runningTask(): RunningTask | undefined {
  return current;
}

/**
 * The running task's context: its id, attempt number and cancellation signal. Call it inside
 * a task's function (on any target); elsewhere it throws a UsageError.
 *
 * @public
 */
export function taskContext(): TaskContext {
  if (!current) {
    throw new UsageError('taskContext() was called outside a running task: call it inside a remote function while it runs (not in the driver, nor after the task returned)');
  }
  return current;
}
