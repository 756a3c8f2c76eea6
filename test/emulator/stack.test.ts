/**
 * serverless.yml packages offline (osls `serverless package`, through `volley package`), and
 * the template it produces has what the stack promises: a private, encrypted, TLS-only bucket
 * with lifecycle expiry, least-privilege IAM, and the outputs the driver reads.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../infra/emulators.js';
import { parseCli } from '../../infra/cli.js';
import { UsageError } from 'volley';

const AdmZip = createRequire(import.meta.url)('adm-zip') as new (file: string) => { getEntries(): { entryName: string; isDirectory: boolean; getData(): Buffer }[] };

// biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are free-form; the assertions read them
type Template = { Resources: Record<string, { Type: string; Properties: Record<string, any> }>; Outputs: Record<string, { Value: unknown }> };

describe('the worker stack', () => {
  it('packages offline with the bundle and nothing else, into a least-privilege template', async () => {
    const root = projectRoot();
    const r = spawnSync(process.execPath, [join(root, 'dist/infra/bin.js'), 'package', '--target', 'aws', '--stage', 'ci', '--memory', '2048'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `volley package failed:\n${r.stdout}\n${r.stderr}`);
    const dir = join(root, '.volley/deploy/.serverless');
    const t = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;

    // The deployment package: the worker bundle and its source map, nothing else (no
    // node_modules, no sources), and the bundle is the handler the template names.
    const zip = new AdmZip(join(dir, 'volley.zip'));
    const files = zip
      .getEntries()
      .filter((e) => !e.isDirectory)
      .map((e) => e.entryName)
      .sort();
    assert.deepEqual(files, ['dist/lambda/worker.mjs', 'dist/lambda/worker.mjs.map']);
    const worker = zip
      .getEntries()
      .find((e) => e.entryName === 'dist/lambda/worker.mjs')!
      .getData()
      .toString('utf8');
    assert.match(worker, /export\s*\{[^}]*\bhandler\b[^}]*\}/, 'the bundle exports handler');
    assert.match(worker, /"sleepTask"/, 'with the task modules of volley.config.json');
    const imported = [...worker.matchAll(/^import\b[^;]*?\bfrom\s*["']([^"']+)["']/gm)].map((m) => m[1]!);
    assert.ok(imported.length > 0);
    assert.deepEqual(
      imported.filter((m) => !builtinModules.includes(m.replace(/^node:/, ''))),
      [],
      'imports nothing but Node builtins: everything else is in the bundle',
    );
    const artifact = t.Resources.WorkerLambdaFunction!.Properties.Code;
    assert.match(JSON.stringify(artifact), /volley\.zip/);
    const fn = t.Resources.WorkerLambdaFunction!.Properties;
    assert.match(fn.Runtime, /^nodejs2[02]\.x$/);
    assert.equal(fn.MemorySize, 2048);
    assert.equal(fn.Handler, 'dist/lambda/worker.handler');
    assert.deepEqual(fn.Environment.Variables.VOLLEY_BUCKET, { Ref: 'VolleyBucket' });

    const bucket = t.Resources.VolleyBucket!.Properties;
    assert.ok(Object.values(bucket.PublicAccessBlockConfiguration).every((v) => v === true));
    assert.equal(bucket.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256');
    assert.equal(bucket.LifecycleConfiguration.Rules[0].Prefix, 'volley/');
    const policy = JSON.stringify(t.Resources.VolleyBucketPolicy!.Properties.PolicyDocument);
    assert.match(policy, /"aws:SecureTransport":"false"/);

    const statements = JSON.stringify(t.Resources.IamRoleLambdaExecution!.Properties.Policies);
    assert.match(statements, /s3:GetObject/);
    assert.ok(!/"s3:\*"|"lambda:\*"|"Resource":"\*"/.test(statements), `no wildcard grants: ${statements}`);
    assert.match(statements, /function:volley-ci-worker/);
    // Objects only under volley's prefix, which the lifecycle rule expires; a reserved concurrency caps a runaway job.
    assert.match(statements, /VolleyBucket\.Arn\}\/volley\/\*/);
    assert.ok(!/VolleyBucket\.Arn\}\/\*/.test(statements), `no grant on the whole bucket: ${statements}`);
    assert.equal(fn.Environment.Variables.VOLLEY_KEY_PREFIX, 'volley/');
    assert.equal(fn.ReservedConcurrentExecutions, 100);

    assert.deepEqual(t.Outputs.WorkerFunctionName!.Value, { Ref: 'WorkerLambdaFunction' });
    assert.deepEqual(t.Outputs.BucketName!.Value, { Ref: 'VolleyBucket' });
  });

  it('the CLI checks its arguments and names the valid choices', () => {
    assert.throws(
      () => parseCli(['deploy']),
      (e: unknown) => e instanceof UsageError && /--target aws\|localstack/.test(e.message),
    );
    assert.throws(
      () => parseCli(['launch', '--target', 'aws']),
      (e: unknown) => e instanceof UsageError && /valid commands are: init, emulators, package, deploy, info, remove, cleanup/.test(e.message),
    );
    assert.throws(() => parseCli(['cleanup', '--target', 'aws']), /--job ID.*--all/);
    assert.equal(parseCli(['deploy', '--target', 'localstack']).stage, 'local');
    assert.deepEqual(parseCli(['deploy', '--target', 'aws', '--tasks', 'a.ts,b.ts']).tasks, ['a.ts', 'b.ts']);
  });
});
