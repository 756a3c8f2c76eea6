/** Runs bench/aws-path.ts in a child process and reports its figures against issue 3's targets. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { benchDist } from './paths.js';
import { summarize, type Summary } from './stats.js';

export interface AwsPathFigures {
  /** Invocations per second, one client, 64 in flight, against an instant local Lambda endpoint. */
  invokePerSec: Summary;
  /** An 8 MB round trip through S3Store, as a share of the raw SDK's speed (1 = as fast): medians' ratio, and best-of-each ratio. */
  s3Ratio: Summary;
  s3OursMs: Summary;
  s3RawMs: Summary;
}

export const INVOKE_TARGET = 2000;
export const S3_TARGET = 0.9;

export function runAwsPath(runs: number, invocations: number, log: (s: string) => void): Promise<AwsPathFigures | undefined> {
  log(`AWS path: invoke rate (${runs} x ${invocations} invocations) and 8 MB S3 round trips...`);
  return new Promise((resolve) => {
    execFile(process.execPath, [join(benchDist, 'aws-path.js'), String(runs), String(invocations)], { timeout: 10 * 60_000 }, (err, stdout, stderr) => {
      if (err) {
        log(`AWS path benchmark failed: ${(stderr || err.message).slice(-600)}`);
        return resolve(undefined);
      }
      const raw = JSON.parse(stdout.trim().split('\n').pop()!) as Record<keyof AwsPathFigures, number[]>;
      const ours = summarize(raw.s3OursMs);
      const sdk = summarize(raw.s3RawMs);
      resolve({
        invokePerSec: summarize(raw.invokePerSec, true),
        // Single rounds swing with the machine (GC, page faults); compare the two series instead.
        s3Ratio: { values: raw.s3Ratio, min: sdk.min / ours.min, median: sdk.median / ours.median },
        s3OursMs: ours,
        s3RawMs: sdk,
      });
    });
  });
}

export function awsPathLines(f: AwsPathFigures): string {
  const pass = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  return [
    'AWS path (volley on the AWS wire protocols, local endpoints):',
    `  invoke rate, one client, 64 in flight     best ${Math.round(f.invokePerSec.min)}/s  median ${Math.round(f.invokePerSec.median)}/s  target >= ${INVOKE_TARGET}/s: ${pass(f.invokePerSec.median >= INVOKE_TARGET)}`,
    `  8 MB round trip, S3Store vs raw SDK       best ${(f.s3Ratio.min * 100).toFixed(0)} %  median ${(f.s3Ratio.median * 100).toFixed(0)} %  (${f.s3OursMs.median.toFixed(0)} vs ${f.s3RawMs.median.toFixed(0)} ms)  target >= ${S3_TARGET * 100} %: ${pass(f.s3Ratio.median >= S3_TARGET)}`,
  ].join('\n');
}
