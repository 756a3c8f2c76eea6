/**
 * Retrying with backoff: throttled Lambda invocations, and S3's conflicting conditional writes. A throttled call (HTTP 429,
 * TooManyRequestsException) never reached the function, so sending it again can neither lose
 * nor duplicate the task. Pure logic with the clock and randomness injected, for unit tests.
 */
import { ThrottledError } from '../errors.js';

export interface ThrottlePolicy {
  /** First backoff ceiling, in ms; it doubles per attempt. */
  baseDelayMs: number;
  /** Largest backoff ceiling, in ms. */
  maxDelayMs: number;
  /** Stop retrying once this much time has passed since the first attempt. */
  giveUpMs: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  random: () => Math.random(),
};

/** Backoff before retry number `attempt` (0-based): "full jitter", uniform in [0, min(max, base * 2^attempt)]. */
export function backoffDelay(attempt: number, policy: Pick<ThrottlePolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** True for the errors Lambda (or the SDK) raises when an invocation was throttled. */
export function isThrottle(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'TooManyRequestsException' || e?.name === 'ThrottlingException' || e?.name === 'EC2ThrottledException' || e?.$metadata?.httpStatusCode === 429;
}

/**
 * Calls `attempt` until it succeeds or fails with an error `retryable` does not accept:
 * retries with full-jitter backoff and, once the next wait would pass `giveUpMs`, rejects with
 * `giveUp(lastError, attempts, elapsedMs)`. `signal` aborts the backoff sleeps.
 */
export async function retryWithBackoff<T>(
  attempt: () => Promise<T>,
  policy: ThrottlePolicy,
  options: {
    retryable: (err: unknown) => boolean;
    giveUp: (err: unknown, attempts: number, elapsedMs: number) => unknown;
    clock?: Clock;
    signal?: AbortSignal;
    onRetry?: (attempt: number, delayMs: number) => void;
  },
): Promise<T> {
  const clock = options.clock ?? systemClock;
  const start = clock.now();
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!options.retryable(err)) throw err;
      const elapsed = clock.now() - start;
      const delay = backoffDelay(n, policy, clock.random);
      if (elapsed + delay > policy.giveUpMs) throw options.giveUp(err, n + 1, elapsed);
      options.onRetry?.(n + 1, delay);
      await clock.sleep(delay, options.signal);
    }
  }
}

/**
 * Calls `attempt` until it does not fail with a throttle: retries throttles with backoff, passes
 * any other failure through at once, and rejects with ThrottledError after `giveUpMs`.
 * `signal` aborts the backoff sleeps (the task's deadline).
 */
export function retryThrottled<T>(
  attempt: () => Promise<T>,
  policy: ThrottlePolicy,
  options: { clock?: Clock; signal?: AbortSignal; onThrottle?: (attempt: number, delayMs: number) => void } = {},
): Promise<T> {
  return retryWithBackoff(attempt, policy, {
    retryable: isThrottle,
    giveUp: (err, attempts, elapsed) => new ThrottledError(attempts, elapsed, { cause: err }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onThrottle ? { onRetry: options.onThrottle } : {}),
  });
}
