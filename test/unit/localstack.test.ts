/** LocalStack settings and the one-line diagnosis of an image that wants an account (infra/localstack.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LOCALSTACK_IMAGE, authTokenProblem, localStackSettings } from '../../infra/localstack.js';

/** What a LocalStack image published after March 2026 prints before it exits with code 55. */
const NO_ACCOUNT = `LocalStack version: 2026.3.1.dev3
Localstack returning with exit code 55. Reason:
===============================================
The license activation failed for the following reason:

No credentials were found in the environment. Please make sure to either set the LOCALSTACK_AUTH_TOKEN variable to a valid auth token.

LocalStack requires an account to run.`;

describe('LocalStack settings', () => {
  it('uses a pinned image that needs no token unless LOCALSTACK_IMAGE and LOCALSTACK_AUTH_TOKEN say otherwise', () => {
    assert.deepEqual(localStackSettings({}), { image: DEFAULT_LOCALSTACK_IMAGE });
    assert.match(DEFAULT_LOCALSTACK_IMAGE, /^localstack\/localstack:\d+\.\d+\.\d+$/, 'a fixed tag, never latest');
    assert.deepEqual(localStackSettings({ LOCALSTACK_IMAGE: 'localstack/localstack:2026.3', LOCALSTACK_AUTH_TOKEN: 'ls-abc' }), { image: 'localstack/localstack:2026.3', authToken: 'ls-abc' });
    assert.deepEqual(localStackSettings({ LOCALSTACK_IMAGE: ' ', LOCALSTACK_AUTH_TOKEN: '' }), { image: DEFAULT_LOCALSTACK_IMAGE });
  });

  it('says in one line that an image needs LOCALSTACK_AUTH_TOKEN, and how to do without', () => {
    const line = authTokenProblem(NO_ACCOUNT, { image: 'localstack/localstack:latest' });
    assert.ok(line && !line.includes('\n'));
    assert.match(line, /localstack\/localstack:latest needs an account: set LOCALSTACK_AUTH_TOKEN/);
    assert.ok(line.includes(`LOCALSTACK_IMAGE=${DEFAULT_LOCALSTACK_IMAGE}`));
    assert.match(authTokenProblem(NO_ACCOUNT, { image: 'localstack/localstack:latest', authToken: 'ls-bad' })!, /rejected LOCALSTACK_AUTH_TOKEN/);
    assert.equal(authTokenProblem('LocalStack version: 4.14.0\nReady.', { image: DEFAULT_LOCALSTACK_IMAGE }), undefined);
  });
});
