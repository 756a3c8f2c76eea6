/**
 * What a job costs on Lambda and S3: usage counted from task events, priced from a table.
 *
 * - Lambda: one request per run of a task (a run that failed and was retried is an
 *   invocation too, billed like any); duration billed per run, rounded up to the ms, at the
 *   function's memory and architecture (what the worker reports, else the configured task
 *   memory and `cost.architecture`). The duration is the worker's own time for the task
 *   (fetch + run + store); a run that reported nothing (a crash, a timeout) counts from
 *   dispatch to its end as the driver saw it. A run that was a sandbox's cold start adds the
 *   INIT phase the worker measured (`worker.initMs`): Lambda bills INIT as duration since 1
 *   August 2025 (https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/;
 *   the phase itself: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
 * - S3: the workers' reads of stored arguments and writes of stored results, and the driver's
 *   own puts, gets, deletes and listings; an object above the multipart threshold is written
 *   in parts (create + one PUT per part + complete). Bytes the driver reads are priced as
 *   transfer out of AWS.
 *
 * On the embedded runtime the same counts are an estimate of the job on Lambda: it makes the
 * same inline/stored decisions, with the same threshold.
 */
import { UsageError } from '../errors.js';
import type { RunEndEvent, VolleyEvent } from '../events.js';
import { lookupPrices, type PriceOverrides, type PriceTable } from './prices.js';

/** A Lambda processor architecture. @public */
export type Architecture = 'arm64' | 'x86_64';

/** Usage of one memory size and architecture. */
export interface LambdaUsageLine {
  memoryMB: number;
  architecture: Architecture;
  requests: number;
  /** Sum of billed durations, each run's (with its INIT phase on a cold start) rounded up to a whole ms. */
  billedMs: number;
  /** Runs that were a sandbox's first (a cold start whose INIT the worker measured), and the INIT ms among billedMs. */
  coldStarts: number;
  initMs: number;
}

/** Object-store traffic of a job: the workers' and the driver's. @public */
export interface S3Usage {
  /** PUT-class requests: single writes, and each multipart upload's create, parts and complete. */
  putRequests: number;
  getRequests: number;
  /** Listings (removing a job's objects at shutdown). */
  listRequests: number;
  /** Batch deletes (free). */
  deleteRequests: number;
  bytesWritten: number;
  bytesRead: number;
  /** Of bytesRead, what the driver read (transfer out when the driver is outside AWS). */
  bytesToDriver: number;
}

/** Counted usage, before prices. */
export interface Usage {
  lambda: LambdaUsageLine[];
  s3: S3Usage;
}

/** Lambda usage and cost at one memory size and architecture. @public */
export interface CostLine {
  memoryMB: number;
  architecture: Architecture;
  /** Invocations (one per run of a task). */
  requests: number;
  /** Memory in GB times billed duration in s (each run, with its INIT phase on a cold start, rounded up to a whole ms). */
  gbSeconds: number;
  /** Cold starts among the runs, and the GB-seconds of their INIT phases (part of gbSeconds). */
  coldStarts: number;
  initGbSeconds: number;
  usd: number;
}

/** What `rt.cost()` returns. Amounts in USD. @public */
export interface CostReport {
  /** True on the embedded runtime and the emulators: what the job would cost on Lambda. */
  estimate: boolean;
  /** The target the job ran on. */
  target: string;
  currency: 'USD';
  /** The price table used: its region, source and date. */
  prices: { region: string; source: string; asOf: string };
  /** Invocations, GB-seconds (cold starts' INIT included) and their cost, in total and by memory size and architecture. */
  lambda: { requests: number; gbSeconds: number; coldStarts: number; initGbSeconds: number; requestsUsd: number; durationUsd: number; usd: number; byMemory: CostLine[] };
  /** Object-store requests and bytes, and their cost (requests, and transfer out to the driver). */
  s3: S3Usage & { requestsUsd: number; transferUsd: number; usd: number };
  /** Lambda plus S3. */
  totalUsd: number;
  /** What the figures leave out or assume. */
  notes: string[];
}

export interface CostSettings {
  target: string;
  estimate: boolean;
  /** Region the job runs in (prices are looked up by it). */
  region: string;
  architecture: Architecture;
  prices?: PriceOverrides;
  multipartThresholdBytes: number;
  partSizeBytes: number;
}

/** The table for a region with overrides applied; a region without a table needs all its prices given (UsageError otherwise). */
export function priceTableFor(region: string, overrides?: PriceOverrides): PriceTable {
  const r = lookupPrices(region, overrides);
  if ('error' in r) throw new UsageError(r.error);
  return r.table;
}

/** S3 requests to write one object of this size: one PUT, or a multipart upload. */
export function putRequestsFor(bytes: number, multipartThresholdBytes: number, partSizeBytes: number): number {
  return bytes > multipartThresholdBytes ? 2 + Math.ceil(bytes / partSizeBytes) : 1;
}

const GB = 1024;
const GiB = 1024 ** 3;

/** Prices usage with a table. Pure: the arithmetic the unit tests check by hand. */
export function priceUsage(usage: Usage, table: PriceTable, meta: { target: string; estimate: boolean; notes?: string[] }): CostReport {
  const byMemory: CostLine[] = usage.lambda.map((l) => {
    const gbSeconds = (l.memoryMB / GB) * (l.billedMs / 1000);
    const initGbSeconds = (l.memoryMB / GB) * (l.initMs / 1000);
    const usd = l.requests * table.lambdaRequest + gbSeconds * table.lambdaGbSecond[l.architecture];
    return { memoryMB: l.memoryMB, architecture: l.architecture, requests: l.requests, gbSeconds, coldStarts: l.coldStarts, initGbSeconds, usd };
  });
  const requests = byMemory.reduce((s, l) => s + l.requests, 0);
  const gbSeconds = byMemory.reduce((s, l) => s + l.gbSeconds, 0);
  const coldStarts = byMemory.reduce((s, l) => s + l.coldStarts, 0);
  const initGbSeconds = byMemory.reduce((s, l) => s + l.initGbSeconds, 0);
  const requestsUsd = requests * table.lambdaRequest;
  const lambdaUsd = byMemory.reduce((s, l) => s + l.usd, 0);
  const s3 = usage.s3;
  const s3RequestsUsd = (s3.putRequests + s3.listRequests) * table.s3PutRequest + s3.getRequests * table.s3GetRequest;
  const transferUsd = (s3.bytesToDriver / GiB) * table.s3TransferOutPerGB;
  const s3Usd = s3RequestsUsd + transferUsd;
  return {
    estimate: meta.estimate,
    target: meta.target,
    currency: 'USD',
    prices: { region: table.region, source: table.source, asOf: table.asOf },
    lambda: { requests, gbSeconds, coldStarts, initGbSeconds, requestsUsd, durationUsd: lambdaUsd - requestsUsd, usd: lambdaUsd, byMemory },
    s3: { ...s3, requestsUsd: s3RequestsUsd, transferUsd, usd: s3Usd },
    totalUsd: lambdaUsd + s3Usd,
    notes: ["no free tier deducted; Lambda duration is the handler's time for each run of a task, plus the INIT phase of each cold start the workers reported", ...(meta.notes ?? [])],
  };
}

/** Counts usage from events as they arrive; `report()` prices it. */
export class CostMeter {
  private readonly lines = new Map<string, LambdaUsageLine>();
  private readonly s3: Usage['s3'] = { putRequests: 0, getRequests: 0, listRequests: 0, deleteRequests: 0, bytesWritten: 0, bytesRead: 0, bytesToDriver: 0 };

  constructor(private readonly settings: CostSettings) {}

  readonly onEvent = (e: VolleyEvent): void => {
    const s3 = this.s3;
    switch (e.type) {
      case 'dispatched':
        s3.getRequests += e.storedInputs;
        s3.bytesRead += e.storedInputBytes;
        return;
      case 'retrying':
        this.run(e);
        return;
      case 'finished': {
        this.run(e);
        if (e.result?.stored) {
          s3.putRequests += putRequestsFor(e.result.bytes, this.settings.multipartThresholdBytes, this.settings.partSizeBytes);
          s3.bytesWritten += e.result.bytes;
        }
        return;
      }
      case 'store':
        switch (e.op) {
          case 'put':
            s3.putRequests += e.count === 1 ? putRequestsFor(e.bytes, this.settings.multipartThresholdBytes, this.settings.partSizeBytes) : e.count;
            s3.bytesWritten += e.bytes;
            return;
          case 'get':
            s3.getRequests += e.count;
            s3.bytesRead += e.bytes;
            s3.bytesToDriver += e.bytes;
            return;
          case 'delete':
            s3.deleteRequests += Math.ceil(e.count / 1000);
            return;
          case 'deletePrefix':
            // One listing page and one batch delete per 1,000 keys (at least one listing).
            s3.listRequests += Math.max(1, Math.ceil(e.count / 1000));
            s3.deleteRequests += Math.ceil(e.count / 1000);
            return;
        }
        return;
      default:
        return;
    }
  };

  /** One run that reached Lambda (or a worker): a request and its billed duration. */
  private run(e: RunEndEvent): void {
    if (e.dispatchedAt === undefined) return;
    const memoryMB = e.worker?.memoryMB ?? e.memoryMB;
    const architecture = e.worker?.arch ?? this.settings.architecture;
    const ms = e.timing ? e.timing.fetchMs + e.timing.runMs + e.timing.storeMs : e.time - e.dispatchedAt;
    const init = e.worker?.initMs ?? 0;
    const key = `${memoryMB}/${architecture}`;
    let line = this.lines.get(key);
    if (!line) this.lines.set(key, (line = { memoryMB, architecture, requests: 0, billedMs: 0, coldStarts: 0, initMs: 0 }));
    line.requests++;
    // Lambda's billed duration of a cold start is its INIT and its invocation together, rounded up once.
    line.billedMs += Math.max(1, Math.ceil(ms + init));
    if (e.worker?.initMs !== undefined) {
      line.coldStarts++;
      line.initMs += init;
    }
  }

  usage(): Usage {
    return { lambda: [...this.lines.values()].map((l) => ({ ...l })), s3: { ...this.s3 } };
  }

  /** Prices the usage so far; throws a UsageError for a region without a price table whose prices were not given. */
  report(): CostReport {
    const table = priceTableFor(this.settings.region, this.settings.prices);
    const notes: string[] = [];
    if (this.settings.estimate) {
      notes.push(
        `estimate: what this job would cost on Lambda (${this.settings.architecture}) and S3 in ${table.region}, at each task's memoryMB, from the run times measured here` +
          (this.settings.target === 'local' ? " (worker threads are not Lambda sandboxes: no cold start's INIT is counted)" : ''),
      );
    }
    return priceUsage(this.usage(), table, { target: this.settings.target, estimate: this.settings.estimate, notes });
  }
}
