/**
 * The wire formats at the boundary: every malformed envelope is refused with a ProtocolError
 * that names the field, valid ones pass unchanged, and the JSON wire form (bytes as base64)
 * round-trips exactly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from 'volley';
import { errorResult, fromWire, PROTOCOL_VERSION, toWire, validateResultEnvelope, validateTaskEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';

const timing = { fetchMs: 1, runMs: 2, storeMs: 0 };

function task(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: 'j',
    taskId: 't-1',
    fn: 'work',
    args: { kind: 'inline', bytes: new Uint8Array([1]) },
    deps: { 'd-1': { kind: 'stored', key: 'k', size: 3 } },
    resultKey: 'jobs/j/t-1',
    inlineLimit: 0,
    ...over,
  };
}

const refused = (f: () => unknown, message: RegExp) => assert.throws(f, (e: unknown) => e instanceof ProtocolError && message.test(e.message), String(message));

describe('task envelope validation', () => {
  it('accepts a well-formed envelope as it is', () => {
    const env = task({ module: 'file:///tasks.js' });
    assert.equal(validateTaskEnvelope(env), env);
    assert.equal(validateTaskEnvelope(task({ deps: {} })).taskId, 't-1');
  });

  it('refuses each malformed field, naming it', () => {
    refused(() => validateTaskEnvelope(null), /^task envelope must be an object$/);
    refused(() => validateTaskEnvelope([task()]), /^task envelope must be an object$/);
    refused(() => validateTaskEnvelope(task({ v: 2 })), /^task envelope has protocol version 2, this worker speaks 1: deploy the worker from the same volley version as the driver$/);
    refused(() => validateTaskEnvelope(task({ v: undefined })), /protocol version undefined/);
    refused(() => validateTaskEnvelope(task({ kind: 'invoke' })), /^envelope kind must be 'task', got "invoke"$/);
    for (const f of ['job', 'taskId', 'fn', 'resultKey']) {
      refused(() => validateTaskEnvelope(task({ [f]: '' })), new RegExp(`^task envelope field ${f} must be a non-empty string$`));
      refused(() => validateTaskEnvelope(task({ [f]: 7 })), new RegExp(`^task envelope field ${f} must be a non-empty string$`));
    }
    refused(() => validateTaskEnvelope(task({ module: 5 })), /^task envelope field module must be a string$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: -1 })), /^task envelope field inlineLimit must be a number >= 0$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: Number.NaN })), /inlineLimit must be a number >= 0/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: '5' })), /inlineLimit must be a number >= 0/);
    refused(() => validateTaskEnvelope(task({ deps: null })), /^task envelope field deps must be an object$/);
    refused(() => validateTaskEnvelope(task({ deps: [] })), /^task envelope field deps must be an object$/);
  });

  it('refuses malformed payloads in args and deps, naming where', () => {
    refused(() => validateTaskEnvelope(task({ args: 'x' })), /^args must be a payload object$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'inline', bytes: [1] } })), /^args\.bytes must be bytes$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'inline' } })), /^args\.bytes must be bytes$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: '', size: 1 } })), /^args\.key must be a non-empty string$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: 3, size: 1 } })), /^args\.key must be a non-empty string$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: 'k', size: '1' } })), /^args\.size must be a number$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'url' } })), /^args\.kind must be 'inline' or 'stored', got "url"$/);
    refused(() => validateTaskEnvelope(task({ deps: { 'd-9': { kind: 'stored', key: 'k' } } })), /^deps\.d-9\.size must be a number$/);
    refused(() => validateTaskEnvelope(task({ deps: { ok: { kind: 'inline', bytes: new Uint8Array() }, bad: null } })), /^deps\.bad must be a payload object$/);
  });
});

describe('result envelope validation', () => {
  const base = { v: PROTOCOL_VERSION, taskId: 't-1', timing };

  it('accepts each kind', () => {
    for (const r of [
      { ...base, kind: 'value', bytes: new Uint8Array([1]) },
      { ...base, kind: 'stored', key: 'k', size: 10 },
      { ...base, kind: 'error', error: { name: 'E', message: 'm' }, fault: 'user' },
    ]) {
      assert.equal(validateResultEnvelope(r), r);
    }
  });

  it('refuses each malformed field, naming it', () => {
    refused(() => validateResultEnvelope(null), /^result envelope must be an object$/);
    refused(() => validateResultEnvelope({ ...base, v: 0, kind: 'value', bytes: new Uint8Array() }), /^result envelope has protocol version 0, expected 1: redeploy the worker$/);
    refused(() => validateResultEnvelope({ ...base, taskId: 1, kind: 'value', bytes: new Uint8Array() }), /^result envelope field taskId must be a string$/);
    refused(() => validateResultEnvelope({ ...base, timing: undefined, kind: 'value', bytes: new Uint8Array() }), /^result envelope field timing must be an object$/);
    for (const f of ['fetchMs', 'runMs', 'storeMs']) {
      for (const bad of [-1, Number.POSITIVE_INFINITY, Number.NaN, '1']) {
        refused(
          () => validateResultEnvelope({ ...base, timing: { ...timing, [f]: bad }, kind: 'value', bytes: new Uint8Array() }),
          new RegExp(`^result envelope field timing\\.${f} must be a number >= 0, got `),
        );
      }
    }
    refused(() => validateResultEnvelope({ ...base, kind: 'value', bytes: 'AAE=' }), /^result envelope field bytes must be bytes$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'stored', key: 'k' }), /^stored result needs key and size$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'stored', size: 1 }), /^stored result needs key and size$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: { name: 'E' } }), /^error result needs error\.message$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: 'boom' }), /^error result needs error\.message$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'done' }), /^result envelope kind must be value, stored or error, got "done"$/);
  });

  it('errorResult copies the timing and carries logs only when given', () => {
    const t = { fetchMs: 1, runMs: 1, storeMs: 1 };
    const r = errorResult('t-1', new Error('x'), 'user', t);
    assert.notEqual(r.timing, t);
    assert.deepEqual(r.timing, t);
    assert.equal('logs' in r, false);
    const withLogs = errorResult('t-1', 'thrown', 'infrastructure', t, 'log group');
    assert.equal(withLogs.kind === 'error' && withLogs.logs, 'log group');
    assert.equal(withLogs.kind === 'error' && withLogs.fault, 'infrastructure');
    assert.deepEqual(validateResultEnvelope(errorResult('t-2', new Error('y'), 'user')).timing, { fetchMs: 0, runMs: 0, storeMs: 0 });
  });
});

describe('JSON wire form', () => {
  it('round-trips bytes (also views into a larger buffer) as base64, and nested structures', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const env = task({ args: { kind: 'inline', bytes: backing.subarray(2, 5) }, deps: { a: { kind: 'inline', bytes: new Uint8Array() } } }) as unknown as TaskEnvelope;
    const wire = JSON.parse(JSON.stringify(toWire(env))) as { args: { bytes: unknown } };
    assert.deepEqual(wire.args.bytes, { $b64: 'AQID' });
    const back = validateTaskEnvelope(fromWire(wire));
    assert.deepEqual(back.args.kind === 'inline' && [...back.args.bytes], [1, 2, 3]);
    assert.ok(back.deps.a!.kind === 'inline' && back.deps.a!.bytes instanceof Uint8Array && back.deps.a!.bytes.length === 0);
    assert.deepEqual(fromWire(toWire([1, [new Uint8Array([255])], { x: null, s: 'a' }])), [1, [new Uint8Array([255])], { x: null, s: 'a' }]);
  });

  it('drops undefined fields, and leaves objects that only look like bytes alone', () => {
    assert.deepEqual(toWire({ a: undefined, b: 1 }), { b: 1 });
    assert.deepEqual(fromWire({ $b64: 'AQ==', other: 1 }), { $b64: 'AQ==', other: 1 });
    assert.deepEqual(fromWire({ $b64: 5 }), { $b64: 5 });
    assert.equal(toWire('s'), 's');
    assert.equal(fromWire(null), null);
  });
});
