/**
 * The job's timeline in the Chrome trace event format (what `ray timeline` writes; opens in
 * Perfetto and chrome://tracing).
 *
 * - one track per worker: a worker thread of the embedded runtime, or a Lambda sandbox (its
 *   log stream); tasks that never ran (a failed dependency) sit on a track of their own;
 * - each run of a task is a slice named after its function, with fetch / run / store slices
 *   inside, and its id, attempt, outcome, queue time and result size as arguments, on the
 *   track of the worker that ran it: a run that failed and was retried has a slice of its own
 *   (args `retried: true`, why, and the backoff before the next run), so a task retried twice
 *   has three slices;
 * - a task that used another task's result gets a flow arrow from the producer's end to its
 *   start, when both are still in the buffer.
 *
 * Memory is bounded: ended runs go into a ring of `maxTasks` records kept as typed arrays
 * (about 110 bytes each plus the task id); when it is full the oldest are dropped, and the
 * trace says how many.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { RemoteErrorInfo } from '../errors.js';
import type { RunEndEvent, TaskOutcome, VolleyEvent, WorkerInfo } from '../events.js';

/** Default bound of the buffer: the most recent 50,000 tasks (about 6 MB). */
export const DEFAULT_MAX_TASKS = 50_000;

const OUTCOMES: readonly TaskOutcome[] = ['ok', 'failed', 'timeout', 'crashed', 'dependency', 'cancelled'];
const NO_TIME = Number.NaN;
/** Numbers kept per record: submitted, dispatched, started, fetchMs, runMs, storeMs, ended, resultBytes, retry delay. */
const STRIDE = 9;
/** A record's kind: the task's end, or a run that was retried (after a backoff, or once a lost argument was back). */
const TASK_END = 0;
const RETRIED = 1;
const RETRIED_LOST_ARG = 2;

/** One event of the Chrome trace event format (the fields volley writes). @public */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M' | 'i' | 's' | 'f';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  id?: number;
  bp?: 'e';
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

/** A trace file's content. @public */
export interface ChromeTrace {
  /** Slices (ph X), instants (i), flows (s, f) and track names (M); times in microseconds. */
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  /** The job, its target, how many tasks the buffer kept and dropped, and when recording began. */
  otherData: { job: string; target: string; tasksRecorded: number; tasksDropped: number; maxTasks: number; startedAt: string };
}

/** Track of tasks that never ran on a worker. */
const NOT_RUN_TID = 0;
const PID = 1;

/** A ring of finished tasks, struct-of-arrays so that 100,000 of them stay a few MB. */
export class TimelineRecorder {
  readonly maxTasks: number;
  private readonly taskIds: (string | undefined)[];
  private readonly deps: (readonly string[] | undefined)[];
  private readonly fnIndex: Uint16Array;
  private readonly workerIndex: Uint32Array;
  private readonly outcome: Uint8Array;
  private readonly attempt: Uint8Array;
  private readonly kind: Uint8Array;
  /** STRIDE numbers per record. */
  private readonly times: Float64Array;
  private readonly errors = new Map<number, RemoteErrorInfo>();
  private readonly fns: string[] = [];
  private readonly fnIds = new Map<string, number>();
  private readonly workers: WorkerInfo[] = [];
  private readonly workerIds = new Map<string, number>();
  private next = 0;
  private count = 0;
  private dropped = 0;
  /** performance.now() and wall-clock time when recording began: trace timestamps count from here. */
  private readonly t0 = performance.now();
  private readonly wall0 = new Date();

  constructor(
    private readonly meta: { job: string; target: string },
    maxTasks = DEFAULT_MAX_TASKS,
  ) {
    this.maxTasks = maxTasks;
    this.taskIds = new Array(maxTasks);
    this.deps = new Array(maxTasks);
    this.fnIndex = new Uint16Array(maxTasks);
    this.workerIndex = new Uint32Array(maxTasks);
    this.outcome = new Uint8Array(maxTasks);
    this.attempt = new Uint8Array(maxTasks);
    this.kind = new Uint8Array(maxTasks);
    this.times = new Float64Array(maxTasks * STRIDE);
  }

  /** Runs in the buffer (a task's end, or a retried run), and runs dropped from it because it was full. */
  get size(): { recorded: number; dropped: number } {
    return { recorded: this.count, dropped: this.dropped };
  }

  readonly onEvent = (e: VolleyEvent): void => {
    if (e.type === 'finished' || e.type === 'retrying') this.record(e);
  };

  record(e: RunEndEvent): void {
    const i = this.next;
    this.next = (i + 1) % this.maxTasks;
    if (this.count < this.maxTasks) this.count++;
    else {
      this.dropped++;
      this.errors.delete(i);
    }
    this.taskIds[i] = e.taskId;
    this.deps[i] = e.deps.length ? e.deps : undefined;
    this.fnIndex[i] = this.intern(e.fn);
    this.workerIndex[i] = e.worker ? this.workerOf(e.worker) : NOT_RUN_TID;
    this.outcome[i] = OUTCOMES.indexOf(e.outcome);
    this.attempt[i] = Math.min(255, e.attempt);
    this.kind[i] = e.type === 'finished' ? TASK_END : e.reason === 'retry' ? RETRIED : RETRIED_LOST_ARG;
    const t = this.times;
    const o = i * STRIDE;
    t[o] = e.submittedAt;
    t[o + 1] = e.dispatchedAt ?? NO_TIME;
    t[o + 2] = e.startedAt ?? NO_TIME;
    t[o + 3] = e.timing?.fetchMs ?? NO_TIME;
    t[o + 4] = e.timing?.runMs ?? NO_TIME;
    t[o + 5] = e.timing?.storeMs ?? NO_TIME;
    t[o + 6] = e.time;
    t[o + 7] = e.type === 'finished' && e.result ? e.result.bytes : NO_TIME;
    t[o + 8] = e.type === 'retrying' && e.delayMs !== undefined ? e.delayMs : NO_TIME;
    if (e.error) this.errors.set(i, e.error);
  }

  /** The trace of the tasks in the buffer, oldest first. */
  toTrace(): ChromeTrace {
    const events: TraceEvent[] = [];
    events.push({ name: 'process_name', ph: 'M', pid: PID, tid: 0, args: { name: `volley job ${this.meta.job} (${this.meta.target})` } });
    events.push({ name: 'thread_name', ph: 'M', pid: PID, tid: NOT_RUN_TID, args: { name: 'not run (dependency failed or cancelled)' } });
    this.workers.forEach((w, k) => {
      events.push({ name: 'thread_name', ph: 'M', pid: PID, tid: k + 1, args: { name: w.id } });
      events.push({ name: 'thread_sort_index', ph: 'M', pid: PID, tid: k + 1, args: { sort_index: k + 1 } });
    });
    if (this.dropped > 0) {
      events.push({ name: `${this.dropped} earlier tasks dropped (buffer of ${this.maxTasks})`, ph: 'i', s: 'g', pid: PID, tid: NOT_RUN_TID, ts: 0 });
    }
    const us = (ms: number) => Math.round((ms - this.t0) * 1000);
    /** Where each recorded task's slice ends and starts, for flow arrows. */
    const slices = new Map<string, { tid: number; start: number; end: number }>();
    const first = this.count < this.maxTasks ? 0 : this.next;
    let flowId = 0;
    for (let n = 0; n < this.count; n++) {
      const i = (first + n) % this.maxTasks;
      const o = i * STRIDE;
      const t = this.times;
      const [submitted, dispatched, started, fetchMs, runMs, storeMs, finished, resultBytes, delay] = [t[o]!, t[o + 1]!, t[o + 2]!, t[o + 3]!, t[o + 4]!, t[o + 5]!, t[o + 6]!, t[o + 7]!, t[o + 8]!];
      const kind = this.kind[i]!;
      const taskId = this.taskIds[i]!;
      const tid = this.workerIndex[i]!;
      const err = this.errors.get(i);
      const args: Record<string, unknown> = {
        taskId,
        attempt: this.attempt[i],
        outcome: OUTCOMES[this.outcome[i]!],
        queuedMs: Number.isNaN(dispatched) ? undefined : round3(dispatched - submitted),
        resultBytes: Number.isNaN(resultBytes) ? undefined : resultBytes,
        error: err ? `${err.name}: ${err.message}` : undefined,
        stack: err?.stack,
      };
      if (kind !== TASK_END) {
        args.retried = true;
        args.reason = kind === RETRIED ? 'retry' : 'argument-lost';
        if (!Number.isNaN(delay)) args.retryInMs = round3(delay);
      }
      const name = this.fns[this.fnIndex[i]!]!;
      if (Number.isNaN(dispatched)) {
        events.push({ name, ph: 'i', s: 't', cat: 'task', pid: PID, tid: NOT_RUN_TID, ts: us(finished), args });
        continue;
      }
      const worked = Number.isNaN(fetchMs) ? NO_TIME : fetchMs + runMs + storeMs;
      let start: number;
      let dur: number;
      if (Number.isNaN(worked)) {
        start = dispatched;
        dur = finished - dispatched;
      } else {
        // The worker's clock (a Lambda sandbox's) may differ a little from the driver's: keep
        // the slice between dispatch and the result's arrival.
        const latest = finished - worked;
        start = Number.isNaN(started) ? latest : Math.min(Math.max(started, dispatched), latest);
        dur = worked;
      }
      const ts = us(start);
      const durUs = Math.max(1, Math.round(dur * 1000));
      events.push({ name, ph: 'X', cat: 'task', pid: PID, tid, ts, dur: durUs, args });
      if (!Number.isNaN(worked)) {
        let at = ts;
        for (const [phase, ms] of [
          ['fetch', fetchMs],
          ['run', runMs],
          ['store', storeMs],
        ] as const) {
          // Rounded phases stay inside their task's slice, so the slices nest.
          const d = Math.min(Math.round(ms * 1000), ts + durUs - at);
          if (d > 0) events.push({ name: phase, ph: 'X', cat: 'phase', pid: PID, tid, ts: at, dur: d, args: { taskId } });
          at += d;
        }
      }
      for (const dep of this.deps[i] ?? []) {
        const from = slices.get(dep);
        if (!from) continue;
        const id = ++flowId;
        events.push({ name: 'object', ph: 's', cat: 'object', id, pid: PID, tid: from.tid, ts: Math.max(from.start, from.end - 1) });
        events.push({ name: 'object', ph: 'f', bp: 'e', cat: 'object', id, pid: PID, tid, ts });
      }
      slices.set(taskId, { tid, start: ts, end: ts + durUs });
    }
    return {
      traceEvents: events,
      displayTimeUnit: 'ms',
      otherData: { job: this.meta.job, target: this.meta.target, tasksRecorded: this.count, tasksDropped: this.dropped, maxTasks: this.maxTasks, startedAt: this.wall0.toISOString() },
    };
  }

  private intern(fn: string): number {
    let k = this.fnIds.get(fn);
    if (k === undefined) {
      k = this.fns.length;
      this.fns.push(fn);
      this.fnIds.set(fn, k);
    }
    return k;
  }

  private workerOf(w: WorkerInfo): number {
    let k = this.workerIds.get(w.id);
    if (k === undefined) {
      this.workers.push({ id: w.id });
      k = this.workers.length;
      this.workerIds.set(w.id, k);
    }
    return k;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Writes a trace as JSON, event by event in chunks: a large trace is never one string. */
export async function writeTrace(trace: ChromeTrace, path: string): Promise<string> {
  const out = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  const write = async (s: string) => {
    if (!out.write(s)) await Promise.race([once(out, 'drain'), done]);
  };
  await write('{"displayTimeUnit":"ms","otherData":');
  await write(JSON.stringify(trace.otherData));
  await write(',"traceEvents":[\n');
  const ev = trace.traceEvents;
  for (let i = 0; i < ev.length; i += 1000) {
    await write(
      ev
        .slice(i, i + 1000)
        .map((e) => JSON.stringify(e))
        .join(',\n') + (i + 1000 < ev.length ? ',\n' : '\n'),
    );
  }
  await write(']}\n');
  out.end();
  await done;
  return path;
}
