/**
 * What a Lambda sandbox loads: the worker bundle (built by infra/bundle.ts, as `volley package`
 * builds it) runs in a child process as Lambda runs it, its handler on the main thread and its
 * tasks on its task thread, against s3rver for the store. A batch of tasks whose values travel
 * inline must not load the AWS SDK (its HTTP stack is the mark: Node's http, https, tls, zlib,
 * crypto): that is INIT time a cold start would pay, and Lambda bills it. A task that writes its
 * result to the store loads it then, and the write reaches S3.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleWorker } from '../../infra/bundle.js';
import { startS3rver, projectRoot } from '../../infra/emulators.js';
import { PROTOCOL_VERSION, fromWire, toWire } from '../../sdk/protocol.js';
import { decode, encode } from '../../sdk/serialize.js';

/**
 * Built-ins the AWS SDK loads (its HTTP stack, checksums, signing), none of them in Node's
 * start-up snapshot. Not node:net: Node's Worker loads it, and the handler starts its task thread.
 */
const SDK_BUILTINS = ['http', 'https', 'http2', 'tls', 'zlib', 'crypto'];
const BUCKET = 'volley-init';
const JOB = 'initjob/run1run1run1run1';

let dir: string;
let bundle: string;
let s3: Awaited<ReturnType<typeof startS3rver>> | undefined;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volley-lambda-init-'));
  bundle = (await bundleWorker({ projectRoot: projectRoot(), outdir: dir, extraTasks: ['test/fixtures/tasks.ts', 'test/fixtures/startup-tasks.ts'] })).file;
  s3 = await startS3rver({ buckets: [BUCKET] });
});
after(async () => {
  await s3?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function task(taskId: string, fn: string, args: unknown[], inlineLimit = 100_000) {
  return {
    task: toWire({ v: PROTOCOL_VERSION, kind: 'task', job: JOB, taskId, fn, args: { kind: 'inline', bytes: encode(args) }, deps: {}, resultKey: `volley/jobs/${JOB}/${taskId}`, inlineLimit }),
    timeoutMs: 30_000,
    memoryMB: 128,
  };
}
const batch = (tasks: unknown[]) => ({ v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 31_000, tasks });

/**
 * Loads the bundle in a fresh Node process with the worker's environment, sends it these
 * invocations in turn, and answers their responses and the built-ins the handler's thread had
 * loaded after each.
 */
function sandbox(events: unknown[], file = bundle): Promise<Array<{ response: { results: Array<Record<string, unknown>> }; builtins: string[] }>> {
  const script = join(dir, 'sandbox.mjs');
  writeFileSync(
    script,
    `const builtins = () => process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
const { handler } = await import(${JSON.stringify(new URL(`file://${file}`).href)});
const out = [];
for (const event of JSON.parse(process.argv[2])) out.push({ response: await handler(event, { getRemainingTimeInMillis: () => 60000 }), builtins: builtins() });
(await import('node:fs')).writeFileSync(process.argv[3], JSON.stringify(out));
process.exit(0);
`,
  );
  const env = {
    PATH: process.env.PATH,
    VOLLEY_BUCKET: BUCKET,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_S3: s3!.endpoint,
    NODE_NO_WARNINGS: '1',
  };
  return new Promise((resolve, reject) => {
    // Answers go through a file: a pipe on stdout would load node:net in the sandbox itself.
    const answers = join(dir, 'answers.json');
    execFile(process.execPath, [script, JSON.stringify(events), answers], { env, timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`the sandbox failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(readFileSync(answers, 'utf8')));
    });
  });
}

/** The SDK's built-ins among those a `loadedBuiltins` task's answer lists (the task thread's). */
const loadedIn = (r: Record<string, unknown>): string[] => {
  assert.equal(r.kind, 'value', JSON.stringify(r).slice(0, 400));
  const all = decode((fromWire(r) as { bytes: Uint8Array }).bytes) as string[];
  assert.ok(all.includes('worker_threads'), "the answer lists the thread's built-ins");
  return all.filter((m) => SDK_BUILTINS.includes(m));
};

describe('a Lambda sandbox loads the AWS SDK only when a task needs it', () => {
  it('runs a batch of inline tasks without loading the SDK on either thread, then loads it for a stored result', async () => {
    // Each task whose answer is checked comes first in its invocation: a batch's first task always
    // starts, the ones behind it are answered notStarted once the batch has run 1 s (a loaded
    // machine, the task thread's own cold start), as they would be on Lambda.
    const [inline, listed, stored, listedAfter] = await sandbox([
      batch([task('t1', 'inc', [1]), task('t2', 'inc', [2])]),
      batch([task('t3', 'loadedBuiltins', [])]),
      batch([task('t4', 'filled', [20_000, 0.5], 1024)]),
      batch([task('t5', 'loadedBuiltins', [])]),
    ]);
    // Inline values only: both threads ran their tasks without the SDK's built-ins.
    const [r1, r2] = inline!.response.results;
    assert.equal(r1!.kind, 'value', JSON.stringify(r1).slice(0, 600));
    assert.ok(r2!.kind === 'value' || r2!.kind === 'notStarted', JSON.stringify(r2).slice(0, 600));
    assert.equal(typeof (r1!.worker as { initMs?: unknown }).initMs, 'number', 'the first answer reports INIT');
    assert.deepEqual(loadedIn(listed!.response.results[0]!), [], 'the task thread loaded none of the SDK');
    assert.deepEqual(
      listed!.builtins.filter((m) => SDK_BUILTINS.includes(m)),
      [],
      'the handler thread loaded none of the SDK',
    );

    // A result above its inline limit goes to S3: the task thread loads the SDK then.
    const r4 = stored!.response.results[0]!;
    assert.equal(r4.kind, 'stored', JSON.stringify(r4).slice(0, 400));
    assert.equal(r4.key, `volley/jobs/${JOB}/t4`);
    assert.ok(loadedIn(listedAfter!.response.results[0]!).includes('http'), 'the task thread loaded the SDK for the write');
    const res = await fetch(`${s3!.endpoint}/${BUCKET}/volley/jobs/${JOB}/t4`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, r4.size);
  });
});

describe('a task module may import volley/aws', () => {
  it('bundles it (npx volley package) and runs its task on the Lambda worker', async () => {
    const out = join(dir, 'aws-import');
    const built = await bundleWorker({ projectRoot: projectRoot(), outdir: out, extraTasks: ['test/fixtures/aws-import-tasks.ts'] });
    assert.ok(built.tasks.includes('test/fixtures/aws-import-tasks.ts'), built.tasks.join(', '));
    const [answer] = await sandbox([batch([task('a1', 'awsExports', [])])], built.file);
    const r = answer!.response.results[0]!;
    assert.equal(r.kind, 'value', JSON.stringify(r).slice(0, 600));
    assert.deepEqual(decode((fromWire(r) as { bytes: Uint8Array }).bytes), ['function', 'function']);
  });
});
