/**
 * One rule for a task module that throws while a worker loads it, held on every target: the
 * program test/fixtures/unguarded-init.ts (driver code without the isWorker() guard) runs in a
 * child process, on the target its environment names, and what its get() threw must be the
 * task's own failure carrying the module's UsageError, naming the module, run once; the task of
 * another module (test/fixtures/loads-fine.ts) runs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The UsageError a worker throws for .remote() called while it loads a module (sdk/context.ts). */
const UNGUARDED = /^\.remote\(\)\/put\(\) was called inside a worker\. .*guard it with `if \(!isWorker\(\)\) await main\(\);`/;

export interface ProgramOutcome {
  name: string;
  message: string;
  isTaskError: boolean;
  fault: string;
  retryable: boolean;
  code: string;
  remote?: { name: string; message: string };
  attempts?: number;
  /** The result of the task of test/fixtures/loads-fine.ts (or what get() threw for it, as a string). */
  fine: unknown;
}

/** Runs the program with these environment variables (besides PATH); its one line of output. */
export function runUnguardedProgram(env: Record<string, string> = {}): Promise<ProgramOutcome> {
  const path = fileURLToPath(new URL('./fixtures/unguarded-init.js', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path], { env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`the program failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as ProgramOutcome);
    });
  });
}

/** What the driver must see, whichever target ran the task; `module` matches how the worker names the module. */
export function assertModuleFailure(out: ProgramOutcome, module: RegExp): void {
  assert.equal(out.fine, 42, "the other module's task runs: only the module that threw fails its tasks");
  assert.equal(out.isTaskError, true, JSON.stringify(out));
  assert.equal(out.name, 'TaskError');
  assert.equal(out.fault, 'user', "the module's error is the user's code failing, not the worker's");
  assert.equal(out.code, 'TASK_FAILED');
  assert.equal(out.retryable, false);
  assert.equal(out.attempts, 1, `run once, not retried: ${out.message}`);
  assert.equal(out.remote?.name, 'UsageError');
  assert.match(out.remote!.message, UNGUARDED);
  assert.match(out.message, /^Task tripledAtInit \(.+\) failed: UsageError: \.remote\(\)\/put\(\) was called inside a worker/);
  assert.match(out.remote!.message, /thrown while the worker loaded task module /);
  assert.match(out.remote!.message, module);
}
