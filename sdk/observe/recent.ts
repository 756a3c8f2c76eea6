/**
 * The dashboard's memory of a job: the most recent runs that ended (for its timeline strip:
 * a task's last run, and each run that failed and was retried) and the most recent failed
 * runs with their remote stacks. Both bounded.
 */
import type { RunEndEvent, TaskOutcome, VolleyEvent } from '../events.js';

export const RECENT_TASKS = 500;
export const RECENT_FAILURES = 50;

/** A finished task as the page draws it; times in ms since the job's first event. */
export interface RecentTask {
  seq: number;
  taskId: string;
  fn: string;
  worker: string;
  start: number;
  end: number;
  outcome: TaskOutcome;
  attempt: number;
  /** This run failed and the task ran again. */
  retried?: boolean;
}

export interface Failure {
  seq: number;
  taskId: string;
  fn: string;
  outcome: TaskOutcome;
  worker?: string;
  attempt: number;
  name: string;
  message: string;
  stack?: string;
  /** ms since the job's first event */
  time: number;
  /** This run failed and the task ran again (after `retryInMs`, or once a lost argument was rebuilt). */
  retried?: boolean;
  retryInMs?: number;
}

export class RecentTasks {
  private readonly tasks: RecentTask[] = [];
  private readonly fails: Failure[] = [];
  private seq = 0;
  /** Origin of the times sent to the page. */
  t0?: number;

  readonly onEvent = (e: VolleyEvent): void => {
    if (e.type === 'finished' || e.type === 'retrying') this.add(e);
  };

  add(e: RunEndEvent): void {
    this.t0 ??= e.submittedAt;
    const seq = ++this.seq;
    const t0 = this.t0;
    const worked = e.timing ? e.timing.fetchMs + e.timing.runMs + e.timing.storeMs : undefined;
    const end = e.time - t0;
    let start = end;
    if (e.dispatchedAt !== undefined) {
      start = worked === undefined ? e.dispatchedAt - t0 : Math.max(e.dispatchedAt - t0, (e.startedAt ?? e.time - worked) - t0);
      start = Math.min(start, end);
    }
    const worker = e.worker?.id ?? (e.dispatchedAt === undefined ? 'not run' : 'no report');
    const retried = e.type === 'retrying' ? true : undefined;
    this.tasks.push({ seq, taskId: e.taskId, fn: e.fn, worker, start, end: worked === undefined ? end : Math.min(end, start + worked), outcome: e.outcome, attempt: e.attempt, retried });
    if (this.tasks.length > RECENT_TASKS) this.tasks.shift();
    if (e.outcome !== 'ok') {
      this.fails.push({
        seq,
        taskId: e.taskId,
        fn: e.fn,
        outcome: e.outcome,
        worker: e.worker?.id,
        attempt: e.attempt,
        name: e.error?.name ?? 'Error',
        message: e.error?.message ?? e.outcome,
        stack: e.error?.stack,
        time: end,
        retried,
        retryInMs: e.type === 'retrying' ? e.delayMs : undefined,
      });
      if (this.fails.length > RECENT_FAILURES) this.fails.shift();
    }
  }

  /** Tasks and failures after `seq` (all that are kept when seq is 0). */
  since(seq: number): { tasks: RecentTask[]; failures: Failure[]; seq: number } {
    return { tasks: this.tasks.filter((t) => t.seq > seq), failures: this.fails.filter((f) => f.seq > seq), seq: this.seq };
  }
}
