/**
 * A saved timeline read back as task events, so that `volley dashboard trace.json` shows a
 * finished job with the same page as a live one.
 */
import { ConfigError } from '../errors.js';
import type { TaskOutcome, VolleyEvent } from '../events.js';
import type { ChromeTrace, TraceEvent } from './timeline.js';

const OUTCOMES: readonly TaskOutcome[] = ['ok', 'failed', 'timeout', 'crashed', 'dependency', 'cancelled'];

/** Checks that parsed JSON is a volley trace (as `rt.timeline()` writes it). */
export function checkTrace(x: unknown, where: string): ChromeTrace {
  const t = x as Partial<ChromeTrace> | null;
  if (typeof t !== 'object' || t === null || !Array.isArray(t.traceEvents) || typeof t.otherData !== 'object' || t.otherData === null || typeof t.otherData.job !== 'string') {
    throw new ConfigError(`${where} is not a volley timeline (a Chrome trace with otherData.job, as rt.timeline() writes)`);
  }
  return t as ChromeTrace;
}

/**
 * The events of a trace's tasks, in time order: submitted (once per task), and for each run
 * dispatched (when it ran) and its end: retrying for a run that was retried, else finished (a
 * task that ends again was rebuilt: a rebuilding event first).
 */
export function eventsFromTrace(trace: ChromeTrace): VolleyEvent[] {
  const tracks = new Map<number, string>();
  for (const e of trace.traceEvents) if (e.ph === 'M' && e.name === 'thread_name') tracks.set(e.tid, String(e.args?.name));
  const tasks = trace.traceEvents.filter((e): e is TraceEvent & { ts: number } => e.cat === 'task' && (e.ph === 'X' || e.ph === 'i') && typeof e.ts === 'number');
  const out: VolleyEvent[] = [];
  /** Tasks seen so far: true once finished. */
  const seen = new Map<string, boolean>();
  for (const e of tasks) {
    const a = e.args ?? {};
    const taskId = String(a.taskId);
    const outcome = OUTCOMES.includes(a.outcome as TaskOutcome) ? (a.outcome as TaskOutcome) : 'ok';
    const ran = e.ph === 'X';
    const start = e.ts / 1000;
    const end = start + (e.dur ?? 0) / 1000;
    const queued = typeof a.queuedMs === 'number' ? a.queuedMs : 0;
    const submittedAt = start - queued;
    const attempt = typeof a.attempt === 'number' ? a.attempt : 1;
    const [name, ...rest] = typeof a.error === 'string' ? a.error.split(': ') : [];
    const before = seen.get(taskId);
    if (before === undefined) out.push({ type: 'submitted', time: submittedAt, taskId, fn: e.name });
    // Just before its next run: the order the runtime emits them in.
    else if (before) out.push({ type: 'rebuilding', time: start - 1e-6, taskId, fn: e.name, rebuild: 1 });
    if (ran) out.push({ type: 'dispatched', time: start, taskId, fn: e.name, attempt, memoryMB: 0, deps: [], storedInputs: 0, storedInputBytes: 0 });
    const error = name ? { name, message: rest.join(': '), stack: typeof a.stack === 'string' ? a.stack : undefined } : undefined;
    // What the slice says of its run, for a retrying or a finished event alike.
    const run = {
      time: end,
      taskId,
      fn: e.name,
      attempt,
      outcome,
      memoryMB: 0,
      submittedAt,
      dispatchedAt: ran ? start : undefined,
      deps: [],
      worker: ran ? { id: tracks.get(e.tid) ?? `track-${e.tid}` } : undefined,
      startedAt: ran ? start : undefined,
    };
    if (a.retried === true) {
      seen.set(taskId, false);
      out.push({
        type: 'retrying',
        ...run,
        reason: a.reason === 'argument-lost' ? 'argument-lost' : 'retry',
        delayMs: typeof a.retryInMs === 'number' ? a.retryInMs : undefined,
        error: error ?? { name: 'Error', message: outcome },
      });
      continue;
    }
    seen.set(taskId, true);
    out.push({ type: 'finished', ...run, error });
  }
  return out.sort((x, y) => x.time - y.time);
}
