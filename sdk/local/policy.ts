/**
 * The worker pool's scheduling policy, apart from its thread bookkeeping: which tasks count as
 * short (and may be batched), how large a batch is, and how long a task waits for a busy
 * worker before a new thread is started.
 */

/** Below this average run time, a function's tasks may be sent to a worker in batches. */
export const SHORT_TASK_MS = 1;
/** Most tasks sent to one worker in one message. */
export const MAX_BATCH = 32;
/**
 * With a worker per core already running, a task of unknown length waits this long for one
 * of them before a new thread is started: a thread costs tens of ms of CPU, more than a burst
 * of quick tasks takes to drain.
 */
export const SPAWN_AFTER_MS = 5;

/** Moving averages of each function's run time, from the workers' reports. */
export class RunTimes {
  private readonly ms = new Map<string, number>();

  /** Records one run (fetch + run + store time) of `fn`. */
  record(fn: string, ms: number): void {
    const prev = this.ms.get(fn);
    this.ms.set(fn, prev === undefined ? ms : 0.8 * prev + 0.2 * ms);
  }

  /** True when `fn`'s runs so far averaged under SHORT_TASK_MS (unknown functions are not short). */
  isShort(fn: string): boolean {
    const ms = this.ms.get(fn);
    return ms !== undefined && ms < SHORT_TASK_MS;
  }
}

/** How many short tasks one batch takes: a fair share of the queue per core, plus one, up to MAX_BATCH. */
export function batchLimit(queued: number, cores: number): number {
  return Math.min(MAX_BATCH, Math.ceil(queued / cores) + 1);
}
