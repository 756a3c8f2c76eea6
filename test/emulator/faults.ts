/**
 * Fault injection on the emulator tier (called from scenarios.test.ts, which starts the
 * emulators once): random graphs through the real Lambda Invoke and S3 wire protocols, with
 * FaultyInvoker around the Lambda invoker (429, 5xx, reset after the task ran) and FaultyStore
 * around the driver's S3 store (503, NoSuchKey: the object is really deleted from the bucket,
 * slow calls), and tasks that throw or time out in the worker. Fewer runs than the embedded
 * tier: every task is an HTTP invocation of serverless-offline.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { Runtime } from 'volley';
import type { Backend } from '../../sdk/backend.js';
import { createAwsBackend } from '../../sdk/aws/backend.js';
import { makeS3Client } from '../../sdk/aws/clients.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { dagArbitrary, runFaultyDag } from '../dag.js';
import { FaultyInvoker, FaultyStore, noFaults, seeded } from '../faults.js';
import type { Emulators } from '../../infra/emulators.js';

export function defineFaultScenarios(emulators: () => Emulators): void {
  describe('fault injection on the emulators', () => {
    it('random graphs with random faults: all correct, nothing left in the bucket, no hang (8 runs)', async () => {
      const emu = emulators();
      const s3 = makeS3Client({ region: 'us-east-1', endpoint: emu.aws.s3Endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, maxSockets: 2, forcePathStyle: true });
      const totals = noFaults();
      let retries = 0;
      try {
        await fc.assert(
          fc.asyncProperty(dagArbitrary({ maxNodes: 6, nodeFaults: ['throw', 'throw', 'hang'], faultRate: 0.1 }), async (c) => {
            const counts = noFaults();
            const init = { target: 'emulator', aws: emu.aws, maxConcurrency: 8, retryBaseDelayMs: 5, retryMaxDelayMs: 50 } as const;
            const real = await createAwsBackend(resolveInitOptions(init));
            const random = seeded(c.seed);
            const invoker = new FaultyInvoker(real.invoker, { throttle: 0.05, lambda5xx: 0.05, reset: 0.1, upToAttempt: 3 }, random, counts);
            const store = new FaultyStore(real.store, { store503: 0.1, noSuchKey: 0.3, slow: 0.1, slowMs: 20 }, random, (k) => /\/dagNode-[0-9a-z]+$/.test(k), counts);
            const backend: Backend = { ...real, invoker, store };
            const rt = new Runtime(init, { backend });
            const outcome = await runFaultyDag(rt, c, { invoker, counts, totals }, 60_000, 1500);
            retries += outcome.retries;
            assert.equal(outcome.hung, false, 'the run finished');
            assert.deepEqual(outcome.wrong, []);
            const left = (await s3.send(new ListObjectsV2Command({ Bucket: emu.aws.bucket, Prefix: `volley/jobs/${rt.jobId}/` }))).Contents ?? [];
            assert.deepEqual(
              left.map((o) => o.Key),
              [],
              'nothing left in the bucket after shutdown()',
            );
          }),
          { numRuns: 8, seed: 20261126, endOnFailure: true, includeErrorInReport: true },
        );
      } finally {
        s3.destroy();
      }
      console.log(`fault injection (emulators): 8 runs, faults ${JSON.stringify(totals)}, ${retries} retries`);
      assert.ok(totals.reset > 0 && totals.throw > 0, JSON.stringify(totals));
    });
  });
}
