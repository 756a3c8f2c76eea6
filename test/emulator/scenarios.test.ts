/**
 * The emulator tier: the shared scenarios through the real Lambda Invoke and S3 wire
 * protocols. The harness bundles the worker (default task modules + the test fixtures) with
 * the real bundler, starts s3rver and serverless-offline (osls) from the real serverless.yml
 * on free loopback ports, and stops both afterwards.
 */
import { after, before } from 'node:test';
import { Runtime } from 'volley';
import { startEmulators, type Emulators } from '../../infra/emulators.js';
import { nap } from '../fixtures/tasks.js';
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
});
