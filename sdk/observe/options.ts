/**
 * The observability options of `init()` and their environment variables, validated and
 * resolved in one place. Pure: the only module of sdk/observe/ that a runtime loads when
 * every observer is off.
 */
import { UsageError } from '../errors.js';
import type { Progress } from './counts.js';
import { PRICE_KEYS, lookupPrices, type PriceOverrides } from './prices.js';

/** Default bound of the timeline's buffer (tasks); see docs/OBSERVE.md. */
export const TIMELINE_MAX_TASKS = 50_000;

/** Options of the timeline. @public */
export interface TimelineOptions {
  /** Write the trace here at shutdown(). Default: nowhere (call `rt.timeline(path)`). */
  path?: string;
  /** Keep at most this many finished tasks (the most recent). Default: 50000. */
  maxTasks?: number;
}

/** Options of the live dashboard. @public */
export interface DashboardOptions {
  /** Interface to listen on. Default: '127.0.0.1'. Anything else exposes the job's data to that network. */
  host?: string;
  /** Port. Default: 0 (a free port; the URL is printed). */
  port?: number;
}

/** Options of the cost count. @public */
export interface CostOptions {
  /** Architecture to price the embedded runtime's estimate at (Lambda workers report their own). Default: 'arm64', as serverless.yml deploys. */
  architecture?: 'arm64' | 'x86_64';
  /**
   * Region whose prices to use. Default: the job's region (`aws.region`), us-east-1 on the
   * embedded runtime. volley has tables for the common regions; for another, give every price.
   */
  region?: string;
  /** Prices that replace the table's (USD); see `PriceTable`. For a region without a table, all of them. */
  prices?: PriceOverrides;
}

/** The observability options of `init()`. @public */
export interface ObserveOptions {
  /**
   * A progress display on stderr: `'auto'` draws it on a TTY for a job still running after a
   * second and never on a non-TTY; `true` always (a line every 2 s on a non-TTY); `false`
   * never. A function receives the counts instead (about 4 times a second while they change).
   * Default: `VOLLEY_PROGRESS` (auto, 1, 0), else `'auto'`.
   */
  progress?: 'auto' | boolean | ((progress: Progress) => void);
  /** Record the timeline (Chrome trace format): `true`, a path to write at shutdown(), or options. Default: `VOLLEY_TIMELINE` (1, or a path), else off. */
  timeline?: boolean | string | TimelineOptions;
  /** Serve the live dashboard on 127.0.0.1 and print its URL. Default: `VOLLEY_DASHBOARD` (1), else off. */
  dashboard?: boolean | DashboardOptions;
  /** Count what the job costs on Lambda and S3 (`rt.cost()`). Default: on for the AWS-like targets, and whenever the dashboard or summary is; else off. */
  cost?: boolean | CostOptions;
  /** Print a one-screen summary at shutdown() on stderr. `'auto'`: when stderr is a TTY or the target is `aws`. Default: `VOLLEY_SUMMARY` (auto, 1, 0), else `'auto'`. */
  summary?: 'auto' | boolean;
}

export const OBSERVE_KEYS = ['progress', 'timeline', 'dashboard', 'cost', 'summary'] as const;

/** The environment variable of each option (the options table names them too). */
export const OBSERVE_ENV = {
  progress: 'VOLLEY_PROGRESS',
  timeline: 'VOLLEY_TIMELINE',
  dashboard: 'VOLLEY_DASHBOARD',
  summary: 'VOLLEY_SUMMARY',
} as const;

/** The options table's check of one observability option: resolves it alone, which throws on a bad value. */
export function checkObserveOption(key: (typeof OBSERVE_KEYS)[number]): (where: string, v: unknown) => void {
  return (_where, v) => {
    if (v !== undefined) resolveObserveOptions({ [key]: v } as ObserveOptions, 'local', {}, false);
  };
}

export interface ResolvedObserveOptions {
  /** Terminal display; off when 'auto' resolved to a non-TTY. */
  progress: 'off' | 'auto' | 'on';
  onProgress?: (progress: Progress) => void;
  timeline?: { path?: string; maxTasks: number };
  dashboard?: { host: string; port: number };
  /** `asked`: the program turned it on (rather than the target, dashboard or summary by default). */
  cost?: { architecture: 'arm64' | 'x86_64'; region?: string; prices?: PriceOverrides; asked: boolean };
  summary: boolean;
  /** Any observer at all: the runtime loads sdk/observe/ only then. */
  any: boolean;
}

function flag(where: string, v: string | undefined, allowAuto: boolean): boolean | 'auto' | undefined {
  if (v === undefined || v === '') return undefined;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'on', 'yes'].includes(s)) return true;
  if (['0', 'false', 'off', 'no'].includes(s)) return false;
  if (allowAuto && s === 'auto') return 'auto';
  throw new UsageError(`${where} must be ${allowAuto ? 'auto, ' : ''}1 or 0 (true/false), got ${JSON.stringify(v)}`);
}

function checkKeysOf(where: string, o: object, valid: readonly string[]): void {
  const unknown = Object.keys(o).filter((k) => !valid.includes(k));
  if (unknown.length) throw new UsageError(`${where} got unknown option(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; valid options are: ${valid.join(', ')}`);
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkPrices(p: unknown): PriceOverrides {
  if (!isPlain(p)) throw new UsageError('init({ cost: { prices } }) must be an object of prices in USD (see PriceTable)');
  checkKeysOf('init({ cost: { prices } })', p, PRICE_KEYS);
  for (const [k, v] of Object.entries(p)) {
    if (k === 'lambdaGbSecond') {
      if (!isPlain(v)) throw new UsageError('init({ cost: { prices: { lambdaGbSecond } } }) must be { x86_64?, arm64? } in USD per GB-second');
      checkKeysOf('init({ cost: { prices: { lambdaGbSecond } } })', v, ['x86_64', 'arm64']);
      for (const [a, x] of Object.entries(v)) {
        if (typeof x !== 'number' || !(x >= 0) || !Number.isFinite(x)) throw new UsageError(`init({ cost: { prices: { lambdaGbSecond: { ${a} } } } }) must be a price >= 0, got ${String(x)}`);
      }
    } else if (k === 'region' || k === 'source' || k === 'asOf') {
      if (typeof v !== 'string' || v === '') throw new UsageError(`init({ cost: { prices: { ${k} } } }) must be a non-empty string`);
    } else if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
      throw new UsageError(`init({ cost: { prices: { ${k} } } }) must be a price >= 0 in USD, got ${String(v)}`);
    }
  }
  return p as PriceOverrides;
}

/**
 * Resolves the observability options: option, else environment variable, else default.
 * `isTTY` is whether stderr is a terminal (passed in so tests can say).
 */
export function resolveObserveOptions(o: ObserveOptions, target: string, env: NodeJS.ProcessEnv = process.env, isTTY: boolean = process.stderr.isTTY === true): ResolvedObserveOptions {
  // progress
  let onProgress: ResolvedObserveOptions['onProgress'];
  let progressSetting: boolean | 'auto';
  if (typeof o.progress === 'function') {
    onProgress = o.progress;
    progressSetting = false;
  } else if (o.progress === undefined) {
    progressSetting = flag('VOLLEY_PROGRESS', env[OBSERVE_ENV.progress], true) ?? 'auto';
  } else if (o.progress === 'auto' || typeof o.progress === 'boolean') {
    progressSetting = o.progress;
  } else {
    throw new UsageError(`init({ progress }) must be 'auto', true, false or a function receiving the counts, got ${JSON.stringify(o.progress)}`);
  }
  const progress = progressSetting === true ? 'on' : progressSetting === 'auto' && isTTY ? 'auto' : 'off';

  // timeline
  let timeline: ResolvedObserveOptions['timeline'];
  const tl =
    o.timeline ??
    (() => {
      const v = env[OBSERVE_ENV.timeline];
      if (v === undefined || v === '') return undefined;
      const f = ['1', 'true', 'on', 'yes', '0', 'false', 'off', 'no'].includes(v.trim().toLowerCase()) ? flag('VOLLEY_TIMELINE', v, false) : v;
      return f;
    })();
  if (tl === true) timeline = { maxTasks: TIMELINE_MAX_TASKS };
  else if (typeof tl === 'string') {
    if (tl.trim() === '') throw new UsageError('init({ timeline }) as a string is the path to write the trace to; got an empty string');
    timeline = { path: tl, maxTasks: TIMELINE_MAX_TASKS };
  } else if (isPlain(tl)) {
    checkKeysOf('init({ timeline })', tl, ['path', 'maxTasks']);
    const t = tl as TimelineOptions;
    if (t.path !== undefined && (typeof t.path !== 'string' || t.path === '')) throw new UsageError('init({ timeline: { path } }) must be a non-empty string');
    const maxTasks = t.maxTasks ?? TIMELINE_MAX_TASKS;
    if (!Number.isInteger(maxTasks) || maxTasks < 1 || maxTasks > 10_000_000) {
      throw new UsageError(`init({ timeline: { maxTasks } }) must be an integer from 1 to 10000000, got ${String(t.maxTasks)}`);
    }
    timeline = { path: t.path, maxTasks };
  } else if (tl !== undefined && tl !== false) {
    throw new UsageError(`init({ timeline }) must be true, false, a path, or { path?, maxTasks? }, got ${JSON.stringify(tl)}`);
  }

  // dashboard
  let dashboard: ResolvedObserveOptions['dashboard'];
  const db = o.dashboard ?? flag('VOLLEY_DASHBOARD', env[OBSERVE_ENV.dashboard], false);
  if (db === true) dashboard = { host: '127.0.0.1', port: 0 };
  else if (isPlain(db)) {
    checkKeysOf('init({ dashboard })', db, ['host', 'port']);
    const d = db as DashboardOptions;
    if (d.host !== undefined && (typeof d.host !== 'string' || d.host === '')) throw new UsageError('init({ dashboard: { host } }) must be a non-empty string such as 127.0.0.1');
    if (d.port !== undefined && (!Number.isInteger(d.port) || d.port < 0 || d.port > 65535))
      throw new UsageError(`init({ dashboard: { port } }) must be an integer from 0 to 65535, got ${String(d.port)}`);
    dashboard = { host: d.host ?? '127.0.0.1', port: d.port ?? 0 };
  } else if (db !== undefined && db !== false) {
    throw new UsageError(`init({ dashboard }) must be true, false or { host?, port? }, got ${JSON.stringify(db)}`);
  }

  // summary
  let summarySetting: boolean | 'auto';
  if (o.summary === undefined) summarySetting = flag('VOLLEY_SUMMARY', env[OBSERVE_ENV.summary], true) ?? 'auto';
  else if (o.summary === 'auto' || typeof o.summary === 'boolean') summarySetting = o.summary;
  else throw new UsageError(`init({ summary }) must be 'auto', true or false, got ${JSON.stringify(o.summary)}`);
  const summary = summarySetting === 'auto' ? isTTY || target === 'aws' : summarySetting;

  // cost
  let cost: ResolvedObserveOptions['cost'];
  const c = o.cost ?? (target !== 'local' || dashboard !== undefined || summary);
  if (c === true) cost = { architecture: 'arm64', asked: o.cost === true };
  else if (isPlain(c)) {
    checkKeysOf('init({ cost })', c, ['architecture', 'region', 'prices']);
    const co = c as CostOptions;
    if (co.architecture !== undefined && co.architecture !== 'arm64' && co.architecture !== 'x86_64') {
      throw new UsageError(`init({ cost: { architecture } }) must be 'arm64' or 'x86_64', got ${JSON.stringify(co.architecture)}`);
    }
    if (co.region !== undefined && (typeof co.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(co.region))) {
      throw new UsageError(`init({ cost: { region } }) must be an AWS region such as eu-west-1, got ${JSON.stringify(co.region)}`);
    }
    cost = { architecture: co.architecture ?? 'arm64', ...(co.region !== undefined ? { region: co.region } : {}), prices: co.prices === undefined ? undefined : checkPrices(co.prices), asked: true };
  } else if (c !== false) {
    throw new UsageError(`init({ cost }) must be true, false or { architecture?, prices? }, got ${JSON.stringify(c)}`);
  }

  const any = progress !== 'off' || onProgress !== undefined || timeline !== undefined || dashboard !== undefined || cost !== undefined || summary;
  return { progress, onProgress, timeline, dashboard, cost, summary, any };
}

/**
 * The region a job's cost is priced at, checked when `init({ cost })` asked for the count: a
 * region without a price table needs every price given, or init() fails here (UsageError). A
 * count that is on only by default fails later, where its figures are asked for (rt.cost();
 * the summary and the dashboard say why they show no amounts).
 */
export function checkCostRegion(cost: ResolvedObserveOptions['cost'], jobRegion: string): void {
  if (!cost?.asked) return;
  const r = lookupPrices(cost.region ?? jobRegion, cost.prices);
  if ('error' in r) throw new UsageError(`init({ cost }): ${r.error}`);
}
