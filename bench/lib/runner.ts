/**
 * Runs each job in a fresh child process (node dist/bench/child.js), one at a time so that
 * systems do not disturb each other, with a progress line on stderr while it goes.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { benchDist } from './paths.js';
import type { Job } from './plan.js';
import type { Figures } from './workloads.js';

export interface JobResult {
  job: Job;
  ok: boolean;
  figures: Figures;
  info?: Record<string, unknown>;
  error?: string;
  wallMs: number;
}

type Reply = { ok: true; figures: Figures; info?: Record<string, unknown> } | { ok: false; error: string };

export function runChild(job: Job, timeoutMs: number): Promise<JobResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = fork(join(benchDist, 'child.js'), [JSON.stringify({ system: job.system, workload: job.workload, params: job.params })], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let reply: Reply | undefined;
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.on('message', (m) => (reply = m as Reply));
    const timer = setTimeout(() => {
      output += `\n(timed out after ${Math.round(timeoutMs / 1000)} s; killed)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t0;
      if (reply?.ok) resolve({ job, ok: true, figures: reply.figures, info: reply.info, wallMs });
      else {
        const why = reply && !reply.ok ? reply.error : `child exited (${signal ?? code}) without a result`;
        resolve({ job, ok: false, figures: {}, error: `${why}\n${output.trim()}`.trim(), wallMs });
      }
    });
  });
}

/** A one-line progress display on stderr (rewritten in place on a terminal). */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly t0 = performance.now();

  constructor(private readonly total: number) {}

  show(done: number, what: string): void {
    const s = Math.round((performance.now() - this.t0) / 1000);
    const clock = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    const width = 20;
    const filled = Math.round((done / this.total) * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${clock} ${what}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    else process.stderr.write(`${line}\n`);
  }

  log(line: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${line}\n`);
  }

  end(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}
