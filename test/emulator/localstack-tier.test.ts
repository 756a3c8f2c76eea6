/**
 * `npm run test:localstack` and `volley localstack up` where no Docker daemon answers (DOCKER_HOST
 * points at a socket that does not exist, so the outcome is the same on every machine): the
 * tier skips with one line naming what is missing and exits 0; the command fails saying so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { projectRoot } from '../../infra/emulators.js';

const noDocker = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  delete env.AWS_ENDPOINT_URL;
  delete env.NODE_TEST_CONTEXT; // set by the test runner for this file; the nested run must start its own
  return env;
};

describe('LocalStack without Docker', () => {
  it('the localstack tier skips with one line saying Docker is missing and how to get it, and exits 0', () => {
    const r = spawnSync(process.execPath, ['infra/run-tests.mjs', 'localstack'], { cwd: projectRoot(), env: noDocker(), encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('# localstack tier skipped:'));
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0]!, /no Docker daemon answers .*DOCKER_HOST=unix:\/\/\/nonexistent\/docker\.sock.*install and start Docker.*or start LocalStack yourself and set AWS_ENDPOINT_URL/);
    assert.match(r.stdout, /skipped 1/);
  });

  it('volley localstack up fails with that line instead of a stack trace', () => {
    const r = spawnSync(process.execPath, ['dist/infra/bin.js', 'localstack', 'up'], { cwd: projectRoot(), env: noDocker(), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '', 'no export line when nothing started');
    assert.match(r.stderr.trim(), /^volley: no Docker daemon answers \(.*\): install and start Docker/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});
