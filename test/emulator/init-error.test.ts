/**
 * Task modules of the Lambda bundle that throw at INIT (driver code without the isWorker()
 * guard; a module that lacks a setting): the sandbox still starts, the modules after them still
 * load, and only a failed module's tasks are answered with its error, as the task's own failure,
 * naming the module, from the handler's thread and from its task thread alike; the other
 * modules' tasks run. The driver on the emulator tier (serverless-offline + s3rver) gets what the
 * embedded runtime gives (test/init-error.ts), run once. Before, INIT failed (Lambda answered a
 * FunctionError, which the driver took for a crashed worker and retried); then one module that
 * threw failed every task of the sandbox.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleWorker } from '../../infra/bundle.js';
import { type Emulators, projectRoot, startEmulators } from '../../infra/emulators.js';
import { fromWire, PROTOCOL_VERSION, type ResultEnvelope, toWire } from '../../sdk/protocol.js';
import { decode, encode } from '../../sdk/serialize.js';
import { assertModuleFailure, runUnguardedProgram } from '../init-error.js';

const MODULE = 'test/fixtures/unguarded-init.ts';
/** A second module that throws at INIT, after registering its task. */
const SECOND = 'test/fixtures/throws-at-init.ts';
/** A module bundled after both, which loads fine. */
const FINE = 'test/fixtures/loads-fine.ts';
const JOB = 'initerr/run1run1run1run1';

function task(taskId: string, fn: string, args: unknown[], module?: string) {
  return {
    task: toWire({
      v: PROTOCOL_VERSION,
      kind: 'task',
      job: JOB,
      taskId,
      fn,
      ...(module ? { module } : {}),
      args: { kind: 'inline', bytes: encode(args) },
      deps: {},
      resultKey: `volley/jobs/${JOB}/${taskId}`,
      inlineLimit: 100_000,
    }),
    timeoutMs: 30_000,
    memoryMB: 128,
  };
}

/** Loads the bundle in a fresh Node process, as Lambda does, and answers its handler's responses to these events. */
function sandbox(dir: string, bundle: string, events: unknown[], env: Record<string, string>): Promise<Array<Record<string, unknown>>> {
  const script = join(dir, 'sandbox.mjs');
  writeFileSync(
    script,
    `const { handler } = await import(${JSON.stringify(new URL(`file://${bundle}`).href)});
const out = [];
for (const event of JSON.parse(process.argv[2])) out.push(await handler(event, { getRemainingTimeInMillis: () => 60000 }));
(await import('node:fs')).writeFileSync(process.argv[3], JSON.stringify(out));
process.exit(0);
`,
  );
  const answers = join(dir, 'answers.json');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, JSON.stringify(events), answers], { env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env }, timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`the sandbox failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(readFileSync(answers, 'utf8')));
    });
  });
}

const UNGUARDED_MODULE =
  /^UsageError: \.remote\(\)\/put\(\) was called inside a worker.* \(thrown while the worker loaded task module test\/fixtures\/unguarded-init\.ts: no task of that module can run in this sandbox \(the bundle's other modules load and run\); fix it and deploy again/s;
const SECOND_MODULE =
  /^RangeError: VOLLEY_FIXTURE_SETTING is not set: this module needs it at load time \(thrown while the worker loaded task module test\/fixtures\/throws-at-init\.ts: no task of that module can run in this sandbox/;

/** An error answer for `taskId`, as the task's own failure (fault user), whose `name: message` matches. */
function assertFailed(r: Record<string, unknown> | undefined, taskId: string, error: RegExp): void {
  assert.equal(r?.kind, 'error', JSON.stringify(r).slice(0, 600));
  assert.equal(r.taskId, taskId);
  assert.equal(r.fault, 'user');
  const e = r.error as { name: string; message: string };
  assert.match(`${e.name}: ${e.message}`, error);
}

/** A value answer for `taskId` holding `value`. */
function assertValue(r: Record<string, unknown> | undefined, taskId: string, value: unknown): void {
  assert.equal(r?.kind, 'value', JSON.stringify(r).slice(0, 600));
  assert.equal(r.taskId, taskId);
  assert.deepEqual(decode((fromWire(r) as Extract<ResultEnvelope, { kind: 'value' }>).bytes), value);
}

describe('a Lambda sandbox whose task modules throw at INIT', () => {
  let dir: string;
  let bundle: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volley-init-error-'));
    // tasks.ts loads before the two that throw, loads-fine.ts after them.
    bundle = (await bundleWorker({ projectRoot: projectRoot(), outdir: dir, extraTasks: ['test/fixtures/tasks.ts', MODULE, SECOND, FINE] })).file;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const thread of ['on', 'off']) {
    it(`answers each failed module's tasks with its own error and runs the other modules' tasks (task thread ${thread})`, async () => {
      const invoke = (t: ReturnType<typeof task>) => ({ v: PROTOCOL_VERSION, kind: 'invoke', ...t });
      const answers = await sandbox(
        dir,
        bundle,
        [
          invoke(task('s1', 'tripledAtInit', [1])),
          invoke(task('s2', 'halvedAtInit', [8])),
          invoke(task('s3', 'doubledBesideInitError', [21])),
          invoke(task('s4', 'inc', [3])),
          // Registered by no module: the module the driver names decides which failure answers it ...
          invoke(task('s5', 'definedAfterTheThrow', [1], 'file:///home/me/app/dist/test/fixtures/throws-at-init.js')),
          // ... and where it names none of them, every failure is named.
          invoke(task('s6', 'definedAfterTheThrow', [1], 'file:///home/me/app/dist/elsewhere.js')),
          { v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 31_000, tasks: [task('b1', 'tripledAtInit', [2]), task('b2', 'doubledBesideInitError', [5])] },
        ],
        { VOLLEY_BUCKET: 'volley-init-error', AWS_REGION: 'us-east-1', VOLLEY_TASK_THREAD: thread },
      );
      assertFailed(answers[0], 's1', UNGUARDED_MODULE);
      assertFailed(answers[1], 's2', SECOND_MODULE);
      assertValue(answers[2], 's3', 42);
      assertValue(answers[3], 's4', 4);
      assertFailed(answers[4], 's5', SECOND_MODULE);
      assertFailed(
        answers[5],
        's6',
        /^TaskNotFoundError: task "definedAfterTheThrow" is not registered in this worker, and 2 task modules threw while it loaded them, before it could register: test\/fixtures\/unguarded-init\.ts \(UsageError: .*\); test\/fixtures\/throws-at-init\.ts \(RangeError: VOLLEY_FIXTURE_SETTING is not set.*\) \(thrown while the worker loaded task modules test\/fixtures\/unguarded-init\.ts, test\/fixtures\/throws-at-init\.ts: the task is most likely defined in one of them; no task of those modules can run in this sandbox/s,
      );
      const results = (answers[6] as { results: Array<Record<string, unknown>> }).results;
      assertFailed(results[0], 'b1', UNGUARDED_MODULE);
      // The batch's second task runs, or is not started (a loaded machine: the batch overran, and the driver sends it again).
      if (results[1]!.kind !== 'notStarted') assertValue(results[1], 'b2', 10);
    });
  }
});

describe('the driver on the emulator tier, for a task module that throws at INIT', () => {
  let emu: Emulators | undefined;
  before(async () => {
    emu = await startEmulators({ extraTasks: [MODULE, FINE], bucket: 'volley-init-error' });
  });
  after(async () => {
    await emu?.stop();
  });

  it("gets the error the embedded runtime gives: the module error (a UsageError), naming the module, not retried; the other module's task runs", async () => {
    const out = await runUnguardedProgram({
      VOLLEY_TARGET: 'emulator',
      VOLLEY_LAMBDA_ENDPOINT: emu!.aws.lambdaEndpoint,
      VOLLEY_S3_ENDPOINT: emu!.aws.s3Endpoint,
      VOLLEY_FUNCTION_NAME: emu!.aws.functionName,
      VOLLEY_BUCKET: emu!.aws.bucket,
    });
    assertModuleFailure(out, /task module test\/fixtures\/unguarded-init\.ts: no task of that module can run in this sandbox/);
  });
});
