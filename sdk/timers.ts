/**
 * Timers for waits of any length. Node's setTimeout takes at most 2^31-1 ms (about 24.8 days);
 * a longer delay fires after 1 ms instead (with a TimeoutOverflowWarning). A long wait is
 * chained from shorter ones here, so a timeout of 2^31 ms means what it says.
 */

/** Longest delay one setTimeout honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer made by `setLongTimeout`: clear it like a timeout, unref it like one. */
export interface LongTimer {
  clear(): void;
  /** Lets the process exit while only this timer is pending. */
  unref(): LongTimer;
}

/** Calls `fn` once `ms` have passed (any finite ms >= 0; Infinity never fires). */
export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let handle: NodeJS.Timeout | undefined;
  let unref = false;
  let cleared = false;
  const deadline = Date.now() + ms;
  const arm = (left: number) => {
    if (cleared || !Number.isFinite(left)) return;
    // The common case is one plain timer; only a wait past Node's limit is re-armed.
    handle = left <= MAX_TIMER_MS ? setTimeout(fn, Math.max(0, left)) : setTimeout(() => arm(deadline - Date.now()), MAX_TIMER_MS);
    if (unref) handle.unref();
  };
  arm(ms);
  const timer: LongTimer = {
    clear() {
      cleared = true;
      if (handle) clearTimeout(handle);
    },
    unref() {
      unref = true;
      handle?.unref();
      return timer;
    },
  };
  return timer;
}
