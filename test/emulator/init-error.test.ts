/**
 * A task module of the Lambda bundle that throws at INIT (driver code without the isWorker()
 * guard): the sandbox still starts, and answers every task with the module's error as the
 * task's own failure, naming the module, from the handler's thread and from its task thread
 * alike; the driver on the emulator tier (serverless-offline + s3rver) gets the error the
 * embedded runtime gives (test/init-error.ts), run once. Before, INIT failed: Lambda answered
 * a FunctionError, which the driver took for a crashed worker and retried.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleWorker } from '../../infra/bundle.js';
import { type Emulators, projectRoot, startEmulators } from '../../infra/emulators.js';
import { PROTOCOL_VERSION, toWire } from '../../sdk/protocol.js';
import { encode } from '../../sdk/serialize.js';
import { assertModuleFailure, runUnguardedProgram } from '../init-error.js';

const MODULE = 'test/fixtures/unguarded-init.ts';
const JOB = 'initerr/run1run1run1run1';

function task(taskId: string, fn: string, args: unknown[]) {
  return {
    task: toWire({ v: PROTOCOL_VERSION, kind: 'task', job: JOB, taskId, fn, args: { kind: 'inline', bytes: encode(args) }, deps: {}, resultKey: `volley/jobs/${JOB}/${taskId}`, inlineLimit: 100_000 }),
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

/** An error answer for `taskId` carrying the module's UsageError, as the task's own failure. */
function assertAnswer(r: Record<string, unknown> | undefined, taskId: string): void {
  assert.equal(r?.kind, 'error', JSON.stringify(r).slice(0, 600));
  assert.equal(r.taskId, taskId);
  assert.equal(r.fault, 'user');
  const error = r.error as { name: string; message: string };
  assert.equal(error.name, 'UsageError');
  assert.match(error.message, /^\.remote\(\)\/put\(\) was called inside a worker/);
  assert.match(error.message, /thrown while the worker loaded task module test\/fixtures\/unguarded-init\.ts: the worker bundle loads its task modules together/);
}

describe('a Lambda sandbox whose task module throws at INIT', () => {
  let dir: string;
  let bundle: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'volley-init-error-'));
    // tasks.ts loads first and registers its tasks: they fail too (the modules load as one bundle).
    bundle = (await bundleWorker({ projectRoot: projectRoot(), outdir: dir, extraTasks: ['test/fixtures/tasks.ts', MODULE] })).file;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const thread of ['on', 'off']) {
    it(`answers every task, alone or in a batch, with the module's error (task thread ${thread})`, async () => {
      const [single, batch] = await sandbox(
        dir,
        bundle,
        [
          { v: PROTOCOL_VERSION, kind: 'invoke', ...task('s1', 'tripledAtInit', [1]) },
          { v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 31_000, tasks: [task('b1', 'tripledAtInit', [2]), task('b2', 'inc', [3])] },
        ],
        { VOLLEY_BUCKET: 'volley-init-error', AWS_REGION: 'us-east-1', VOLLEY_TASK_THREAD: thread },
      );
      assertAnswer(single, 's1');
      const results = (batch as { results: Array<Record<string, unknown>> }).results;
      assertAnswer(results[0], 'b1');
      // The batch's second task is answered too, or not started (a loaded machine: the batch overran): never run.
      if (results[1]!.kind !== 'notStarted') assertAnswer(results[1], 'b2');
    });
  }
});

describe('the driver on the emulator tier, for a task module that throws at INIT', () => {
  let emu: Emulators | undefined;
  before(async () => {
    emu = await startEmulators({ extraTasks: [MODULE], bucket: 'volley-init-error' });
  });
  after(async () => {
    await emu?.stop();
  });

  it('gets the error the embedded runtime gives: the module error (a UsageError), naming the module, not retried', async () => {
    const out = await runUnguardedProgram({
      VOLLEY_TARGET: 'emulator',
      VOLLEY_LAMBDA_ENDPOINT: emu!.aws.lambdaEndpoint,
      VOLLEY_S3_ENDPOINT: emu!.aws.s3Endpoint,
      VOLLEY_FUNCTION_NAME: emu!.aws.functionName,
      VOLLEY_BUCKET: emu!.aws.bucket,
    });
    assertModuleFailure(out, /task module test\/fixtures\/unguarded-init\.ts: the worker bundle loads its task modules together/);
  });
});
