/**
 * Progress: a terminal display drawn by cli-progress, and `rt.onProgress(listener)` for
 * programs that draw their own. Both read the counters of `JobCounts` on a timer, never per
 * task, so a fast job pays for a redraw a few times a second, not for every task.
 */
import type { MultiBar, SingleBar } from 'cli-progress';
import type { JobCounts, Progress, TaskCounts } from './counts.js';

/** With 'auto', the display appears only for a job still running after this long. */
export const AUTO_DELAY_MS = 1_000;
const FUNCTION_FORMAT = '{name} |{bar}| {value}/{total} | {done} done, {running} running, {pending} pending, {failed} failed';
/** Functions drawn with bars of their own; the rest are in the total. */
const MAX_FUNCTION_BARS = 8;

function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '--';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function payload(name: string, c: TaskCounts, p?: Progress) {
  return {
    name,
    done: c.done,
    failed: c.failed,
    running: c.running,
    pending: c.pending,
    rate: p ? p.ratePerSecond.toFixed(p.ratePerSecond < 10 ? 1 : 0) : '',
    etaText: p ? formatDuration(p.etaMs) : '',
    // Runs run again, once there are any.
    again: p && (p.retries || p.rebuilds) ? `, ${p.retries} retried${p.rebuilds ? `, ${p.rebuilds} rebuilt` : ''}` : '',
  };
}

/**
 * The terminal display: one bar for the job and one per function when there are several.
 * `mode` 'auto' waits AUTO_DELAY_MS before drawing and stops drawing when the job is idle
 * (a later batch that runs long draws again); 'on' draws at once, also on a non-TTY (a line
 * every 2 s there, as cli-progress does).
 */
export class TerminalProgress {
  private bars?: MultiBar;
  private total?: SingleBar;
  private readonly fnBars = new Map<string, SingleBar>();
  private timer?: NodeJS.Timeout;
  private busySince?: number;
  private drawn = -1;

  constructor(
    private readonly counts: JobCounts,
    private readonly lib: typeof import('cli-progress'),
    private readonly mode: 'auto' | 'on',
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  /** @internal (tests call it with a clock of their own) */
  tick(now = performance.now()): void {
    const c = this.counts;
    if (c.version === this.drawn) return;
    this.drawn = c.version;
    if (c.idle || c.all.total === 0) {
      this.busySince = undefined;
      if (this.bars) this.draw(now);
      this.stopBars();
      return;
    }
    this.busySince ??= now;
    if (!this.bars && (this.mode === 'on' || now - this.busySince >= AUTO_DELAY_MS)) this.startBars();
    if (this.bars) this.draw(now);
  }

  private startBars(): void {
    const { MultiBar, Presets } = this.lib;
    this.bars = new MultiBar(
      {
        stream: this.stream,
        format: '{name} |{bar}| {value}/{total} | {done} done, {running} running, {pending} pending, {failed} failed{again} | {rate}/s, ETA {etaText}',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
        noTTYOutput: this.mode === 'on',
        notTTYSchedule: 2_000,
        fps: 10,
      },
      Presets.shades_classic,
    );
    this.total = this.bars.create(0, 0, payload('all tasks', this.counts.all));
  }

  private draw(now: number): void {
    const p = this.counts.snapshot(now);
    const fns = Object.keys(p.byFunction);
    const several = fns.length > 1;
    const width = several ? Math.max('all tasks'.length, 2 + Math.min(24, Math.max(...fns.map((f) => f.length)))) : 0;
    this.total!.setTotal(p.total);
    this.total!.update(p.done + p.failed, payload('all tasks'.padEnd(width), p, p));
    if (several) {
      for (const fn of fns.slice(0, MAX_FUNCTION_BARS)) {
        const c = p.byFunction[fn]!;
        const name = `  ${fn.slice(0, 24)}`.padEnd(width);
        let bar = this.fnBars.get(fn);
        if (!bar) this.fnBars.set(fn, (bar = this.bars!.create(c.total, 0, payload(name, c), { format: FUNCTION_FORMAT })));
        bar.setTotal(c.total);
        bar.update(c.done + c.failed, payload(name, c));
      }
    }
    // Render now rather than on cli-progress's next frame, so the last counts are on screen at close.
    this.bars!.update();
  }

  private stopBars(): void {
    if (!this.bars) return;
    this.bars.stop();
    this.bars = undefined;
    this.total = undefined;
    this.fnBars.clear();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.tick();
    this.stopBars();
  }
}

/**
 * Calls `listener` with the counts every `intervalMs` while they change, and once more when
 * every submitted task has finished (so the last call shows the whole job).
 */
export function watchProgress(counts: JobCounts, listener: (p: Progress) => void, intervalMs: number): () => void {
  let seen = -1;
  const tick = () => {
    if (counts.version === seen) return;
    seen = counts.version;
    listener(counts.snapshot());
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    tick();
  };
}
