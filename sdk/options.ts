/**
 * Public option types (all optional, each with its default documented) and their resolved
 * forms, built in one place from one defaults table.
 */
import { UsageError } from './errors.js';

/** Per-task options, given to `remote(fn, options)` or `rf.options(overrides)`. @public */
export interface TaskOptions {
  /** Task name, its identity across driver and workers. Default: the function's name. */
  name?: string;
  /** Wall-clock limit for one run of the task, in ms. Default: the runtime's `taskTimeoutMs` (300000). */
  timeoutMs?: number;
  /** Memory for the task's worker in MB (Lambda memory size). Default: the runtime's `taskMemoryMB` (1024). */
  memoryMB?: number;
}

/** Options of the embedded runtime's worker pool. @public */
export interface LocalOptions {
  /** Most worker threads alive at once. Default: 32. */
  maxWorkers?: number;
  /** Workers started at init, before any task arrives. Default: 0. */
  minWorkers?: number;
  /** An idle worker is stopped after this many ms. Default: 30000. */
  idleTimeoutMs?: number;
}

/** Options of `init()`. @public */
export interface InitOptions {
  /** Where tasks run. Default: `'local'` (the embedded runtime), or the `VOLLEY_TARGET` environment variable. */
  target?: 'local';
  /** Values up to this many bytes travel inside the task envelope; larger ones go through the object store. Default: 102400. */
  inlineThresholdBytes?: number;
  /** Most tasks in flight at once. Default: the local pool's `maxWorkers`. */
  maxConcurrency?: number;
  /** Default per-task timeout in ms. Default: 300000. */
  taskTimeoutMs?: number;
  /** Default per-task memory in MB. Default: 1024. */
  taskMemoryMB?: number;
  /** Id of this job; the store keeps the job's objects under it. Default: a random id. */
  jobId?: string;
  /** Embedded runtime options. */
  local?: LocalOptions;
}

export interface ResolvedLocalOptions {
  maxWorkers: number;
  minWorkers: number;
  idleTimeoutMs: number;
}

export interface ResolvedInitOptions {
  target: 'local';
  inlineThresholdBytes: number;
  maxConcurrency: number;
  taskTimeoutMs: number;
  taskMemoryMB: number;
  jobId: string;
  local: ResolvedLocalOptions;
}

export interface ResolvedTaskOptions {
  timeoutMs: number;
  memoryMB: number;
}

const TARGETS = ['local'] as const;

export const localDefaults: ResolvedLocalOptions = { maxWorkers: 32, minWorkers: 0, idleTimeoutMs: 30_000 };

const initDefaults = {
  inlineThresholdBytes: 100 * 1024,
  taskTimeoutMs: 300_000,
  taskMemoryMB: 1024,
};

/** Throws a UsageError naming unknown keys and listing the valid ones. */
export function checkKeys(where: string, given: object | undefined, valid: readonly string[]): void {
  if (given === undefined) return;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new UsageError(`${where} must be an object of options (${valid.join(', ')})`);
  }
  const unknown = Object.keys(given).filter((k) => !valid.includes(k));
  if (unknown.length > 0) {
    throw new UsageError(`${where} got unknown option(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')}; valid options are: ${valid.join(', ')}`);
  }
}

export function checkNumber(where: string, v: unknown, opts: { min: number; integer?: boolean; allowInfinity?: boolean }): void {
  if (v === undefined) return;
  const ok =
    typeof v === 'number' &&
    !Number.isNaN(v) &&
    v >= opts.min &&
    (opts.allowInfinity || Number.isFinite(v)) &&
    (!opts.integer || Number.isInteger(v) || v === Infinity);
  if (!ok) {
    throw new UsageError(`${where} must be ${opts.integer ? 'an integer' : 'a number'} >= ${opts.min}, got ${String(v)}`);
  }
}

export function resolveTaskOptionsInput(where: string, o: TaskOptions | undefined): TaskOptions {
  checkKeys(where, o, ['name', 'timeoutMs', 'memoryMB']);
  if (!o) return {};
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.trim() === '')) {
    throw new UsageError(`${where}: name must be a non-empty string`);
  }
  checkNumber(`${where}: timeoutMs`, o.timeoutMs, { min: 1 });
  checkNumber(`${where}: memoryMB`, o.memoryMB, { min: 128, integer: true });
  return { ...o };
}

function randomJobId(): string {
  const d = new Date();
  const stamp = d.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}

export function resolveInitOptions(o: InitOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedInitOptions {
  checkKeys('init()', o, ['target', 'inlineThresholdBytes', 'maxConcurrency', 'taskTimeoutMs', 'taskMemoryMB', 'jobId', 'local']);
  const opts = o ?? {};
  const target = (opts.target ?? env.VOLLEY_TARGET ?? 'local') as ResolvedInitOptions['target'];
  if (!TARGETS.includes(target)) {
    throw new UsageError(`unknown target ${JSON.stringify(target)} (from ${opts.target ? 'init({ target })' : 'VOLLEY_TARGET'}); valid targets are: ${TARGETS.join(', ')}`);
  }
  checkKeys('init({ local })', opts.local, ['maxWorkers', 'minWorkers', 'idleTimeoutMs']);
  const local: ResolvedLocalOptions = { ...localDefaults, ...opts.local };
  checkNumber('init({ local: { maxWorkers } })', local.maxWorkers, { min: 1, integer: true });
  checkNumber('init({ local: { minWorkers } })', local.minWorkers, { min: 0, integer: true });
  checkNumber('init({ local: { idleTimeoutMs } })', local.idleTimeoutMs, { min: 0 });
  if (local.minWorkers > local.maxWorkers) {
    throw new UsageError(`init({ local }): minWorkers (${local.minWorkers}) cannot exceed maxWorkers (${local.maxWorkers})`);
  }
  checkNumber('init({ inlineThresholdBytes })', opts.inlineThresholdBytes, { min: 0, integer: true });
  checkNumber('init({ maxConcurrency })', opts.maxConcurrency, { min: 1, integer: true, allowInfinity: true });
  checkNumber('init({ taskTimeoutMs })', opts.taskTimeoutMs, { min: 1 });
  checkNumber('init({ taskMemoryMB })', opts.taskMemoryMB, { min: 128, integer: true });
  if (opts.jobId !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(opts.jobId)) {
    throw new UsageError(`init({ jobId }) must be 1-64 characters of letters, digits, '.', '_' or '-', got ${JSON.stringify(opts.jobId)}`);
  }
  return {
    target,
    inlineThresholdBytes: opts.inlineThresholdBytes ?? initDefaults.inlineThresholdBytes,
    maxConcurrency: opts.maxConcurrency ?? local.maxWorkers,
    taskTimeoutMs: opts.taskTimeoutMs ?? initDefaults.taskTimeoutMs,
    taskMemoryMB: opts.taskMemoryMB ?? initDefaults.taskMemoryMB,
    jobId: opts.jobId ?? randomJobId(),
    local,
  };
}
