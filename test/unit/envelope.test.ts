/** Fitting an envelope to a payload limit: the largest inline values move to the store first. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildEnvelope, fitEnvelope, inlineBudget, inlineBytes } from '../../sdk/envelope.js';
import type { Payload } from '../../sdk/protocol.js';

const inline = (n: number): Payload => ({ kind: 'inline', bytes: new Uint8Array(n) });

function envelope() {
  return buildEnvelope({
    job: 'j',
    taskId: 't-1',
    fn: 'f',
    module: undefined,
    args: inline(300),
    deps: { a: inline(1000), b: inline(10), c: inline(600) },
    resultKey: 'jobs/j/t-1',
    inlineLimit: 100,
    attempt: 1,
  });
}

describe('fitEnvelope', () => {
  it('returns the envelope itself when it fits', async () => {
    const env = envelope();
    assert.equal(await fitEnvelope(env, inlineBytes(env), async () => assert.fail('nothing should move')), env);
  });

  it('moves the largest inline values until the rest fits, and leaves the original alone', async () => {
    const env = envelope();
    const moved: Array<string | undefined> = [];
    const fitted = await fitEnvelope(env, 400, async (dep, bytes) => {
      moved.push(dep);
      return { kind: 'stored', key: `k/${dep ?? 'args'}`, size: bytes.byteLength };
    });
    assert.deepEqual(moved, ['a', 'c']);
    assert.equal(inlineBytes(fitted), 310);
    assert.deepEqual(fitted.deps.a, { kind: 'stored', key: 'k/a', size: 1000 });
    assert.equal(fitted.args.kind, 'inline');
    assert.equal(inlineBytes(env), 1910, 'the input envelope is unchanged');
  });

  it('moves the argument list too when it is among the largest', async () => {
    const fitted = await fitEnvelope(envelope(), 0, async (dep, bytes) => ({ kind: 'stored', key: `k/${dep ?? 'args'}`, size: bytes.byteLength }));
    assert.equal(inlineBytes(fitted), 0);
    assert.deepEqual(fitted.args, { kind: 'stored', key: 'k/args', size: 300 });
  });

  it('leaves room for base64 and the rest of the envelope: half the payload limit is inline', () => {
    assert.equal(inlineBudget(6 * 1024 * 1024), 3 * 1024 * 1024);
  });
});

describe('buildEnvelope', () => {
  const parts = { job: 'j/r', taskId: 't-1', fn: 'f', module: undefined, args: inline(1), deps: {}, resultKey: 'jobs/j/t-1', inlineLimit: 100, attempt: 1 };
  it('leaves out the module, depth and attempt of a first run of a top-level task', () => {
    assert.deepEqual(Object.keys(buildEnvelope(parts)).sort(), ['args', 'deps', 'fn', 'inlineLimit', 'job', 'kind', 'resultKey', 'taskId', 'v']);
  });
  it('carries the module, a nested depth and a later attempt', () => {
    const env = buildEnvelope({ ...parts, module: 'tasks/a.js', depth: 2, attempt: 2 });
    assert.equal(env.module, 'tasks/a.js');
    assert.equal(env.depth, 2);
    assert.equal(env.attempt, 2);
  });
});

describe('fitEnvelope at the budget', () => {
  it('stops moving values as soon as the rest is exactly the budget', async () => {
    const env = buildEnvelope({ job: 'j', taskId: 't', fn: 'f', module: undefined, args: inline(100), deps: { a: inline(50), b: inline(30) }, resultKey: 'k', inlineLimit: 1, attempt: 1 });
    const moved: Array<string | undefined> = [];
    const out = await fitEnvelope(env, 80, async (dep, bytes) => {
      moved.push(dep);
      return { kind: 'stored', key: `spill/${dep ?? 'args'}`, size: bytes.byteLength };
    });
    assert.deepEqual(moved, [undefined], 'only the 100-byte argument list; 50 + 30 = 80 fits');
    assert.equal(inlineBytes(out), 80);
    assert.equal(await fitEnvelope(out, 80, async () => assert.fail('nothing to move')), out);
  });
});
