/**
 * The observers of one runtime: loaded with a dynamic import only when an observability
 * option is on (or a program asks for progress), never by worker threads or the Lambda
 * bundle. Each observer listens to the runtime's task events and keeps bounded state.
 */
import type { EventHub, EventListener, VolleyEvent } from '../events.js';
import { CostMeter, type CostReport } from './cost.js';
import { JobCounts } from './counts.js';
import type { Dashboard } from './dashboard.js';
import type { ResolvedObserveOptions } from './options.js';
import { type TerminalProgress, watchProgress } from './progress.js';
import { RecentTasks } from './recent.js';
import { SummaryCollector, formatSummary } from './summary.js';
import { type ChromeTrace, TimelineRecorder, writeTrace } from './timeline.js';

export interface ObserverContext {
  job: string;
  target: string;
  /** The region the job runs in (for prices); us-east-1 on the embedded runtime. */
  region: string;
  multipartThresholdBytes: number;
  partSizeBytes: number;
  /** Where the URL, the summary and the progress display go. Default: process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** How often `onProgress` listeners are called while counts change. */
export const PROGRESS_INTERVAL_MS = 250;

export class Observers {
  readonly counts?: JobCounts;
  readonly timeline?: TimelineRecorder;
  readonly cost?: CostMeter;
  private readonly recent?: RecentTasks;
  private readonly summary?: SummaryCollector;
  private dashboard?: Dashboard;
  private terminal?: TerminalProgress;
  private readonly unwatch: Array<() => void> = [];
  private readonly listeners: EventListener[] = [];
  private readonly detach: Array<() => void> = [];
  private readonly startedAt = performance.now();
  private closed = false;

  private constructor(
    private readonly options: ResolvedObserveOptions,
    private readonly ctx: ObserverContext,
  ) {
    const wantCounts = options.progress !== 'off' || options.onProgress || options.dashboard || options.summary;
    if (wantCounts) this.counts = new JobCounts();
    if (options.timeline) this.timeline = new TimelineRecorder({ job: ctx.job, target: ctx.target }, options.timeline.maxTasks);
    if (options.cost) {
      this.cost = new CostMeter({
        target: ctx.target,
        estimate: ctx.target !== 'aws',
        region: options.cost.region ?? ctx.region,
        architecture: options.cost.architecture,
        prices: options.cost.prices,
        multipartThresholdBytes: ctx.multipartThresholdBytes,
        partSizeBytes: ctx.partSizeBytes,
      });
    }
    if (options.dashboard) this.recent = new RecentTasks();
    if (options.summary) this.summary = new SummaryCollector();
    for (const o of [this.counts, this.timeline, this.cost, this.recent, this.summary]) if (o) this.listeners.push(o.onEvent);
    if (options.onProgress && this.counts) this.unwatch.push(watchProgress(this.counts, options.onProgress, PROGRESS_INTERVAL_MS));
  }

  /** Makes the observers the options ask for; starts the dashboard and the progress display. */
  static async start(options: ResolvedObserveOptions, ctx: ObserverContext): Promise<Observers> {
    const o = new Observers(options, ctx);
    const stream = ctx.stream ?? process.stderr;
    if (options.progress !== 'off' && o.counts) {
      const [{ TerminalProgress }, lib] = await Promise.all([import('./progress.js'), import('cli-progress')]);
      o.terminal = new TerminalProgress(o.counts, lib.default, options.progress, stream);
    }
    if (options.dashboard && o.counts && o.recent) {
      const { Dashboard } = await import('./dashboard.js');
      const cost = o.cost;
      o.dashboard = await Dashboard.start(
        {
          job: ctx.job,
          target: ctx.target,
          counts: o.counts,
          recent: o.recent,
          objects: cost ? () => cost.usage().s3 : undefined,
          cost: cost ? () => cost.report() : undefined,
          timeline: o.timeline ? () => o.timeline!.toTrace() : undefined,
          ended: false,
        },
        options.dashboard,
      );
      const loopback = ['127.0.0.1', '::1', 'localhost'].includes(options.dashboard.host);
      stream.write(
        `volley dashboard: ${o.dashboard.url}${loopback ? '' : ` (listening on ${options.dashboard.host}: anyone who can reach it can read this job's function names, errors and stacks)`}\n`,
      );
    }
    return o;
  }

  /** Hands one event to every observer (events that happened before `attach`). */
  deliver(e: VolleyEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** Listens to a runtime's events until `close()`. */
  attach(hub: EventHub): void {
    for (const l of this.listeners) this.detach.push(hub.add(l));
  }

  get dashboardUrl(): string | undefined {
    return this.dashboard?.url;
  }

  costReport(): CostReport | undefined {
    return this.cost?.report();
  }

  trace(): ChromeTrace | undefined {
    return this.timeline?.toTrace();
  }

  /**
   * At shutdown: last progress calls, the summary, the timeline file, the dashboard's final
   * state; then detaches from the runtime.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.unwatch) stop();
    this.terminal?.close();
    const stream = this.ctx.stream ?? process.stderr;
    if (this.summary && this.counts && this.counts.all.total > 0) {
      let cost: CostReport | undefined;
      let costError: string | undefined;
      try {
        cost = this.cost?.report();
      } catch (err) {
        costError = (err as Error).message;
      }
      stream.write(formatSummary({ job: this.ctx.job, target: this.ctx.target, elapsedMs: performance.now() - this.startedAt, counts: this.counts, collector: this.summary, cost, costError }));
    }
    try {
      if (this.timeline && this.options.timeline?.path) {
        await writeTrace(this.timeline.toTrace(), this.options.timeline.path);
        stream.write(`volley timeline: ${this.options.timeline.path} (open it in https://ui.perfetto.dev or chrome://tracing, or show it with volley dashboard)\n`);
      }
    } finally {
      await this.dashboard?.close();
      for (const d of this.detach) d();
    }
  }
}

export { writeTrace };
