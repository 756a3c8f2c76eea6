/**
 * The emulator tier: the shared scenarios through the real Lambda Invoke and S3 wire
 * protocols. The harness bundles the worker (default task modules + the test fixtures) with
 * the real bundler, starts s3rver and serverless-offline (osls) from the real serverless.yml
 * on free loopback ports, and stops both afterwards.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Runtime } from 'volley';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { startEmulators, type Emulators } from '../../infra/emulators.js';
import { add, filled, nap } from '../fixtures/tasks.js';
import { defineScenarios } from '../scenarios.js';

export const FIXTURES = ['test/fixtures/tasks.ts', 'test/fixtures/more-tasks.ts'];

let emu: Emulators | undefined;
before(async () => {
  emu = await startEmulators({ extraTasks: FIXTURES, bucket: 'volley-scenarios' });
});
after(async () => {
  await emu?.stop();
});

/**
 * serverless-offline starts a worker thread per concurrent invocation, each loading the bundle;
 * on a two-core machine sixteen cold starts take seconds. Warm sixteen first, as Lambda's
 * provisioned concurrency would, so the scenarios measure fan-out rather than cold starts.
 */
async function warmRuntime(): Promise<Runtime> {
  const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 16 }).ready();
  await rt.get(Array.from({ length: 16 }, (_, i) => rt.remote(nap, 300, `warm${i}`)));
  return rt;
}

defineScenarios({
  tier: 'the emulators (serverless-offline + s3rver)',
  start: warmRuntime,
  matrixSize: 120,
  sleepScale: 0.5,
  // serverless-offline runs the handler on this machine.
  sharedDir: tmpdir(),
});

describe('a job on the emulators', () => {
  it('keeps large values in the bucket under the job prefix and removes them at shutdown', async () => {
    const rt = await new Runtime({ target: 'emulator', aws: emu!.aws, maxConcurrency: 4 }).ready();
    const s3 = makeS3Client({ region: 'us-east-1', endpoint: emu!.aws.s3Endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 2, forcePathStyle: true });
    const list = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: emu!.aws.bucket, Prefix: `volley/jobs/${rt.jobId}/` }))).Contents ?? []).map((o) => o.Key!);
    try {
      const big = rt.put(new Float64Array(100_000).fill(2));
      const out = rt.remote(filled, 50_000, 3);
      assert.equal(await rt.get(rt.remote(add, 1, 2)), 3);
      assert.equal((await rt.get(out)).length, 50_000);
      assert.equal((await rt.get(big)).length, 100_000);
      const keys = await list();
      assert.ok(
        keys.some((k) => k.endsWith(big.id)),
        `the put value is in the bucket: ${keys.join(', ')}`,
      );
      assert.ok(
        keys.some((k) => k.endsWith(out.id)),
        'the worker wrote the large result itself',
      );
      await rt.shutdown();
      assert.deepEqual(await list(), []);
    } finally {
      await rt.shutdown();
      s3.destroy();
    }
  });
});
