/**
 * Task counts by state, overall and per function: what the progress bar, `rt.onProgress`, the
 * dashboard and the summary show. Counters only: constant memory per function.
 */
import type { VolleyEvent } from '../events.js';

/** Counts of one function's tasks (or of all). @public */
export interface TaskCounts {
  /** Submitted so far. */
  total: number;
  /** Finished with a value. */
  done: number;
  /** Finished without one (failed, timed out, crashed, a failed dependency, cancelled). */
  failed: number;
  /** Handed to a worker (or Lambda) and not finished. */
  running: number;
  /** Submitted, waiting for their arguments or for a free slot. */
  pending: number;
}

/** What `rt.onProgress(listener)` receives. @public */
export interface Progress extends TaskCounts {
  /** Runs that failed and were run again (after a backoff, or once a lost argument was rebuilt): one per `retrying` event. */
  retries: number;
  /** Finished tasks run again to rebuild a lost result (lineage). */
  rebuilds: number;
  /** Since the first task was submitted. */
  elapsedMs: number;
  /** Tasks finished per second over the last few seconds. */
  ratePerSecond: number;
  /** Time left at that rate; undefined before any task has finished, or with nothing left. */
  etaMs?: number;
  /** The same counts per remote function, by name. */
  byFunction: Record<string, TaskCounts>;
}

function zero(): TaskCounts {
  return { total: 0, done: 0, failed: 0, running: 0, pending: 0 };
}

/** How far back the rate looks. */
const RATE_WINDOW_MS = 5_000;

export class JobCounts {
  readonly all = zero();
  readonly byFn = new Map<string, TaskCounts>();
  retries = 0;
  rebuilds = 0;
  startedAt?: number;
  /** Bumped on every change: observers redraw only when it moved. */
  version = 0;
  private readonly samples: Array<[number, number]> = [];

  readonly onEvent = (e: VolleyEvent): void => {
    if (e.type === 'store') return;
    let f = this.byFn.get(e.fn);
    if (!f) this.byFn.set(e.fn, (f = zero()));
    const a = this.all;
    this.version++;
    switch (e.type) {
      case 'submitted':
        this.startedAt ??= e.time;
        a.total++;
        f.total++;
        a.pending++;
        f.pending++;
        return;
      case 'dispatched':
        a.pending--;
        f.pending--;
        a.running++;
        f.running++;
        return;
      case 'retrying':
        // The run ended; the task waits (a backoff, or a lost argument) for its next run.
        this.retries++;
        a.running--;
        f.running--;
        a.pending++;
        f.pending++;
        return;
      case 'rebuilding':
        // A finished task is pending again until its result is rebuilt.
        this.rebuilds++;
        a.done--;
        f.done--;
        a.pending++;
        f.pending++;
        return;
      case 'finished':
        if (e.dispatchedAt === undefined) {
          a.pending--;
          f.pending--;
        } else {
          a.running--;
          f.running--;
        }
        if (e.outcome === 'ok') {
          a.done++;
          f.done++;
        } else {
          a.failed++;
          f.failed++;
        }
        return;
    }
  };

  /** Everything is finished (and at least one task was submitted). */
  get idle(): boolean {
    return this.all.total > 0 && this.all.done + this.all.failed === this.all.total;
  }

  snapshot(now = performance.now()): Progress {
    const a = this.all;
    const finished = a.done + a.failed;
    const s = this.samples;
    s.push([now, finished]);
    while (s.length > 2 && now - s[1]![0] >= RATE_WINDOW_MS) s.shift();
    const [t0, f0] = s.length > 1 ? s[0]! : [this.startedAt ?? now, 0];
    const span = now - t0;
    const ratePerSecond = span > 0 ? ((finished - f0) * 1000) / span : 0;
    const left = a.total - finished;
    const byFunction: Record<string, TaskCounts> = {};
    for (const [fn, c] of this.byFn) byFunction[fn] = { ...c };
    return {
      ...a,
      retries: this.retries,
      rebuilds: this.rebuilds,
      elapsedMs: this.startedAt === undefined ? 0 : now - this.startedAt,
      ratePerSecond,
      etaMs: left > 0 && ratePerSecond > 0 ? (left * 1000) / ratePerSecond : undefined,
      byFunction,
    };
  }
}
