/** Runs bench/aws-path.ts in a child process and reports its figures against issue 3's targets. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { benchDist } from './paths.js';
import { median, summarize, type Summary } from './stats.js';

export interface AwsPathFigures {
  /** Invocations per second, one client, 64 in flight, against an instant local Lambda endpoint. */
  invokePerSec: Summary;
  /** An 8 MB round trip through S3Store, as a share of the raw SDK's speed (1 = as fast): medians' ratio, and best-of-each ratio. */
  s3Ratio: Summary;
  s3OursMs: Summary;
  s3RawMs: Summary;
  /**
   * Each object size's round trip (8 MB, 100 MB): ours and the raw SDK's, and the halves.
   * `ratio` is the medians' ratio; `pairedRatio` the median of each round's ratio (raw over ours
   * in the same round), less moved by a swing that hits a few rounds. CPU: each round trip's, ms,
   * in the client process and in s3rver's.
   */
  s3Sizes?: Array<{
    sizeMB: number;
    ratio: number;
    pairedRatio: number;
    ours: Summary;
    raw: Summary;
    oursPut: Summary;
    rawPut: Summary;
    oursGet: Summary;
    rawGet: Summary;
    oursCpu?: Summary;
    rawCpu?: Summary;
    oursServerCpu?: Summary;
    rawServerCpu?: Summary;
  }>;
}

export const INVOKE_TARGET = 2000;
/** The store's round trip at least as fast as one raw PutObject plus one GetObject. */
export const S3_TARGET = 1.0;

export function runAwsPath(runs: number, invocations: number, log: (s: string) => void, sizesMB = '8,100'): Promise<AwsPathFigures | undefined> {
  log(`AWS path: invoke rate (${runs} x ${invocations} invocations) and 8 MB and 100 MB S3 round trips...`);
  return new Promise((resolve) => {
    execFile(process.execPath, [join(benchDist, 'aws-path.js'), String(runs), String(invocations), sizesMB], { timeout: 10 * 60_000 }, (err, stdout, stderr) => {
      if (err) {
        log(`AWS path benchmark failed: ${(stderr || err.message).slice(-600)}`);
        return resolve(undefined);
      }
      const raw = JSON.parse(stdout.trim().split('\n').pop()!) as Record<'invokePerSec' | 's3Ratio' | 's3OursMs' | 's3RawMs', number[]> & {
        s3?: Array<{
          sizeMB: number;
          ours: number[];
          raw: number[];
          oursPut: number[];
          rawPut: number[];
          oursGet: number[];
          rawGet: number[];
          oursCpu?: number[];
          rawCpu?: number[];
          oursServerCpu?: number[];
          rawServerCpu?: number[];
        }>;
      };
      const ours = summarize(raw.s3OursMs);
      const sdk = summarize(raw.s3RawMs);
      resolve({
        invokePerSec: summarize(raw.invokePerSec, true),
        // Single rounds swing with the machine (GC, page faults); compare the two series instead.
        s3Ratio: { values: raw.s3Ratio, min: sdk.min / ours.min, median: sdk.median / ours.median },
        s3OursMs: ours,
        s3RawMs: sdk,
        s3Sizes: (raw.s3 ?? []).map((z) => {
          const [o, r] = [summarize(z.ours), summarize(z.raw)];
          const [oursPut, rawPut, oursGet, rawGet] = [summarize(z.oursPut), summarize(z.rawPut), summarize(z.oursGet), summarize(z.rawGet)];
          const cpu = (xs: number[] | undefined) => (xs?.length ? summarize(xs) : undefined);
          const [oursCpu, rawCpu, oursServerCpu, rawServerCpu] = [cpu(z.oursCpu), cpu(z.rawCpu), cpu(z.oursServerCpu), cpu(z.rawServerCpu)];
          return {
            sizeMB: z.sizeMB,
            ratio: r.median / o.median,
            pairedRatio: median(z.ours.map((ms, i) => z.raw[i]! / ms)),
            ours: o,
            raw: r,
            oursPut,
            rawPut,
            oursGet,
            rawGet,
            ...(oursCpu && rawCpu ? { oursCpu, rawCpu } : {}),
            ...(oursServerCpu && rawServerCpu ? { oursServerCpu, rawServerCpu } : {}),
          };
        }),
      });
    });
  });
}

export function awsPathLines(f: AwsPathFigures): string {
  const pass = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  return [
    'AWS path (volley on the AWS wire protocols, local endpoints):',
    `  invoke rate, one client, 64 in flight     best ${Math.round(f.invokePerSec.min)}/s  median ${Math.round(f.invokePerSec.median)}/s  target >= ${INVOKE_TARGET}/s: ${pass(f.invokePerSec.median >= INVOKE_TARGET)}`,
    ...(f.s3Sizes ?? []).flatMap((z) => [
      `  ${`${z.sizeMB} MB round trip, S3Store vs raw SDK`.padEnd(41)} best ${((z.raw.min / z.ours.min) * 100).toFixed(0)} %  median ${(z.ratio * 100).toFixed(0)} %  (${z.ours.median.toFixed(0)} vs ${z.raw.median.toFixed(0)} ms; put ${z.oursPut.median.toFixed(0)} vs ${z.rawPut.median.toFixed(0)}, get ${z.oursGet.median.toFixed(0)} vs ${z.rawGet.median.toFixed(0)})  target >= ${S3_TARGET * 100} %: ${pass(z.ratio >= S3_TARGET)}`,
      `  ${''.padEnd(41)} paired ${(z.pairedRatio * 100).toFixed(0)} %${z.oursCpu && z.rawCpu ? `  CPU per round trip, median ms: client ${z.oursCpu.median.toFixed(1)} vs ${z.rawCpu.median.toFixed(1)}` : ''}${z.oursServerCpu && z.rawServerCpu ? `, s3rver ${z.oursServerCpu.median.toFixed(1)} vs ${z.rawServerCpu.median.toFixed(1)}` : ''}`,
    ]),
  ].join('\n');
}
