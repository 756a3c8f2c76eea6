/**
 * When a failed run of a task is run again (Ray's `max_retries` / `retry_exceptions`), and how
 * long to wait first. Pure logic; the orchestrator (runtime.ts) applies it.
 *
 * A **system failure** is a fault of the machinery around the task, which a new run may not
 * meet: its worker crashed or ran out of memory, the invocation failed (Lambda 5xx, connection
 * reset, socket timeout, throttled past its give-up time), the store failed transiently while
 * the worker read or wrote (S3 5xx, SlowDown), or the task timed out. Such errors are volley
 * errors with `fault: 'infrastructure'` and `retryable: true` (sdk/errors.ts sets both where
 * each is raised). A timeout counts as a system failure: on Lambda it is as often a stalled
 * connection or a cold start as slow code; a task that is simply too slow fails after
 * `maxRetries + 1` timeouts, each listed in the final error's `attempts`.
 *
 * An **application exception** (the task's own code threw) is retried only when the task's
 * `retryExceptions` says so. A failed dependency, a cancelled task, a shut-down runtime and
 * configuration errors (task not in the bundle, protocol mismatch) are never retried.
 */
import { DependencyError, type TaskError, type AttemptFailure } from './errors.js';
import type { RetryExceptions } from './options.js';

/** Codes of failures that no new run can fix, whatever else they say about themselves. */
const NEVER = new Set(['SHUT_DOWN', 'DEPENDENCY_FAILED', 'TASK_CANCELLED', 'OBJECT_LOST']);

/** True for a failure of the machinery around a task that a new run may not meet. */
export function isSystemFailure(err: TaskError): boolean {
  return err.fault === 'infrastructure' && err.retryable && !NEVER.has(err.code);
}

/** Whether `retryExceptions` accepts this application exception; a predicate that throws says no. */
function acceptsException(err: TaskError, rule: RetryExceptions | undefined): boolean {
  if (rule === undefined || rule === false) return false;
  if (rule === true) return true;
  if (typeof rule === 'function') {
    try {
      return rule(err) === true;
    } catch {
      return false;
    }
  }
  const name = err.remote?.name;
  return name !== undefined && rule.includes(name);
}

/**
 * Whether a task whose run `err` was its `retriesSoFar + 1`-th is run again, under
 * `maxRetries` (-1: no limit) and `retryExceptions`.
 */
export function shouldRetry(err: TaskError, retriesSoFar: number, maxRetries: number, retryExceptions: RetryExceptions | undefined): boolean {
  if (maxRetries !== -1 && retriesSoFar >= maxRetries) return false;
  if (err instanceof DependencyError || NEVER.has(err.code)) return false;
  if (isSystemFailure(err)) return true;
  return err.fault === 'user' && err.code === 'TASK_FAILED' && acceptsException(err, retryExceptions);
}

/**
 * Backoff before retry number `retry` (1 for the first): exponential, capped, with "equal
 * jitter" — uniform in [ceiling/2, ceiling] — so retries of many tasks that failed together
 * spread out, and none is sent again at once.
 */
export function retryDelay(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(retry - 1, 30));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** What one failed run was, for the final error's `attempts`. */
export function attemptFailure(attempt: number, err: TaskError): AttemptFailure {
  const head = `Task ${err.functionName} (${err.taskId}) `;
  const message = err.message.startsWith(head) ? err.message.slice(head.length) : err.message;
  const name = err.fault === 'user' && err.remote ? err.remote.name : err.name;
  return { attempt, name, code: err.code, fault: err.fault, message };
}

/**
 * The final error of a task that ran more than once: the last run's error, with every run's
 * failure in `attempts` and their count and reasons in its message (and stack's first line).
 */
export function withAttempts(err: TaskError, attempts: AttemptFailure[]): TaskError {
  // Not enumerable: printing the error shows the summary in its message instead.
  Object.defineProperty(err, 'attempts', { value: attempts, enumerable: false, writable: true, configurable: true });
  if (attempts.length < 2) return err;
  const first = `${err.name}: ${err.message}`;
  const summary = attempts.map((a) => `${a.attempt}: ${a.name}${a.fault === 'user' ? '' : ` (${a.code})`}`).join('; ');
  err.message = `${err.message} [after ${attempts.length} attempts — ${summary}]`;
  if (err.stack?.startsWith(first)) err.stack = `${err.name}: ${err.message}${err.stack.slice(first.length)}`;
  return err;
}
