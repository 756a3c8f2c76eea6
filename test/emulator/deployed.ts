/**
 * The scenarios against a deployed stack (LocalStack or AWS), for `npm run test:localstack`
 * and `npm run test:aws`. Skipped, with the commands that enable them, when the endpoint or
 * the credentials are missing. The stack must have been deployed with the test fixtures:
 * the skip message gives the exact command.
 *
 * LocalStack: with AWS_ENDPOINT_URL set, the LocalStack there is used as it is. Without it,
 * the tier starts LocalStack itself through Testcontainers (infra/localstack.ts), deploys the
 * stack with the fixtures as `npx volley deploy --target localstack` does, runs the scenarios,
 * removes the stack and stops LocalStack; without Docker or the image, it skips saying which.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Runtime } from 'volley';
import { main as cli } from '../../infra/cli.js';
import { localStackProblem, localStackSettings, startLocalStack, type RunningLocalStack } from '../../infra/localstack.js';
import { defineScenarios } from '../scenarios.js';

const FIXTURES = 'test/fixtures/tasks.ts,test/fixtures/more-tasks.ts';

async function reachable(url: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/_localstack/health', url), { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

function hasAwsCredentials(): boolean {
  const e = process.env;
  return Boolean(
    e.AWS_ACCESS_KEY_ID ||
      e.AWS_PROFILE ||
      e.AWS_WEB_IDENTITY_TOKEN_FILE ||
      e.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
      e.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
      existsSync(join(homedir(), '.aws/credentials')) ||
      existsSync(join(homedir(), '.aws/config')),
  );
}

/** Defines the deployed-stack tier for `target`, or one skipped test saying how to enable it. */
export async function defineDeployedTier(target: 'localstack' | 'aws'): Promise<void> {
  let skip: string | undefined;
  let provision = false;
  if (target === 'localstack' && process.env.AWS_ENDPOINT_URL === undefined) {
    const problem = await localStackProblem();
    if (problem) skip = `cannot start LocalStack: ${problem}`;
    else provision = true;
  } else if (target === 'localstack') {
    const endpoint = process.env.AWS_ENDPOINT_URL!;
    if (!(await reachable(endpoint))) {
      skip =
        `LocalStack is not reachable at ${endpoint} (AWS_ENDPOINT_URL). Either unset AWS_ENDPOINT_URL and this tier starts LocalStack in Docker itself, ` +
        `or start it there (npx volley localstack up), deploy with npx volley deploy --target localstack --tasks ${FIXTURES}, then npm run test:localstack`;
    }
  } else if (!hasAwsCredentials()) {
    skip =
      'no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws). To run this tier: configure credentials and a region (export AWS_PROFILE=... AWS_REGION=...), ' +
      `then npx volley deploy --target aws --stage test --tasks ${FIXTURES}, then VOLLEY_STACK=volley-test npm run test:aws; npx volley remove --target aws --stage test afterwards`;
  }
  if (skip) {
    describe(`scenarios on ${target}`, () => {
      it('runs the shared scenarios against the deployed stack', { skip }, () => {});
    });
    console.log(`# ${target} tier skipped: ${skip}`);
    return;
  }
  let started: RunningLocalStack | undefined;
  if (provision) {
    after(async () => {
      try {
        if (started) await cli(['remove', '--target', 'localstack']);
      } finally {
        await started?.stop();
      }
    });
  }
  defineScenarios({
    tier: `${target} (stack ${process.env.VOLLEY_STACK ?? (target === 'aws' ? 'volley-dev' : 'volley-local')}${provision ? `, LocalStack ${localStackSettings().image} started by the tier` : ''})`,
    start: async () => {
      if (provision) {
        started = await startLocalStack();
        process.env.AWS_ENDPOINT_URL = started.endpoint; // for the CLI, serverless-localstack and the runtime alike
        await cli(['deploy', '--target', 'localstack', '--tasks', FIXTURES]);
      }
      return new Runtime({ target, maxConcurrency: 16 }).ready();
    },
    matrixSize: 200,
    sleepScale: 1,
  });
}
