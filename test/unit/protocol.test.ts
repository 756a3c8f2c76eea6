/**
 * The wire formats at the boundary: every malformed envelope is refused with a ProtocolError
 * that names the field, valid ones pass unchanged, and the JSON wire form (bytes as base64)
 * round-trips exactly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from 'volley';
import { errorResult, fromWire, PROTOCOL_VERSION, toWire, validateResultEnvelope, validateTaskEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';

const timing = { fetchMs: 1, runMs: 2, storeMs: 0 };
/** A run's scope, `<jobId>/<runId>`, with a run id of 16 base64url characters. */
const job = 'j/AAAAAAAAAAAAAAAA';
const NAME = 'must be a non-empty string of at most 1024 characters';

function task(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job,
    taskId: 't-1',
    fn: 'work',
    args: { kind: 'inline', bytes: new Uint8Array([1]) },
    deps: { 'd-1': { kind: 'stored', key: `jobs/${job}/d-1`, size: 3 } },
    resultKey: `jobs/${job}/t-1`,
    inlineLimit: 0,
    ...over,
  };
}

const refused = (f: () => unknown, message: RegExp) => assert.throws(f, (e: unknown) => e instanceof ProtocolError && message.test(e.message), String(message));

describe('task envelope validation', () => {
  it('accepts a well-formed envelope as it is', () => {
    const env = task({ module: 'file:///tasks.js', attempt: 2 });
    assert.equal(validateTaskEnvelope(env), env);
    assert.equal(validateTaskEnvelope(task({ deps: {} })).taskId, 't-1');
    assert.equal(validateTaskEnvelope(task({ job: `a.b_c-d/${'x'.repeat(64)}` })).taskId, 't-1');
  });

  it('refuses each malformed field, naming it', () => {
    refused(() => validateTaskEnvelope(null), /^task envelope must be a plain object$/);
    refused(() => validateTaskEnvelope([task()]), /^task envelope must be a plain object$/);
    refused(() => validateTaskEnvelope(new (class Env {})()), /^task envelope must be a plain object$/);
    refused(() => validateTaskEnvelope(task({ v: 1 })), /^task envelope has protocol version 1, this worker speaks 2: deploy the worker from the same volley version as the driver$/);
    refused(() => validateTaskEnvelope(task({ v: undefined })), /protocol version undefined/);
    refused(() => validateTaskEnvelope(task({ kind: 'invoke' })), /^envelope kind must be 'task', got "invoke"$/);
    refused(() => validateTaskEnvelope(task({ extra: 1 })), /^task envelope has a field "extra" outside the protocol \(allowed: v, kind, job, /);
    for (const f of ['taskId', 'fn', 'resultKey']) {
      refused(() => validateTaskEnvelope(task({ [f]: '' })), new RegExp(`^task envelope field ${f} ${NAME}$`));
      refused(() => validateTaskEnvelope(task({ [f]: 7 })), new RegExp(`^task envelope field ${f} ${NAME}$`));
      refused(() => validateTaskEnvelope(task({ [f]: 'x'.repeat(1025) })), new RegExp(`^task envelope field ${f} ${NAME}$`));
    }
    refused(() => validateTaskEnvelope(task({ resultKey: `jobs/${job}/t\n1` })), /^task envelope field resultKey must not contain control characters$/);
    for (const bad of ['', 7, 'j', 'j/short', `j/${'A'.repeat(65)}`, `j/AAAAAAAAAAAAAAA=`, `a b/AAAAAAAAAAAAAAAA`, `/AAAAAAAAAAAAAAAA`, `j/AAAAAAAAAAAAAAAA/x`]) {
      refused(() => validateTaskEnvelope(task({ job: bad })), /^task envelope field job must be '<jobId>\/<runId>' \(letters, digits, '\.', '_', '-'\)$/);
    }
    refused(() => validateTaskEnvelope(task({ module: 5 })), /^task envelope field module must be a string \(a module URL\)$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: -1 })), /^task envelope field inlineLimit must be an integer >= 0, got -1$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: Number.NaN })), /^task envelope field inlineLimit must be an integer >= 0, got null$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: 1.5 })), /^task envelope field inlineLimit must be an integer >= 0, got 1\.5$/);
    refused(() => validateTaskEnvelope(task({ inlineLimit: '5' })), /^task envelope field inlineLimit must be an integer >= 0, got "5"$/);
    for (const bad of [0, 1.5, '2']) {
      refused(() => validateTaskEnvelope(task({ attempt: bad })), /^task envelope field attempt must be an integer >= 1$/);
    }
    refused(() => validateTaskEnvelope(task({ deps: null })), /^task envelope field deps must be an object$/);
    refused(() => validateTaskEnvelope(task({ deps: [] })), /^task envelope field deps must be an object$/);
  });

  it('refuses malformed payloads in args and deps, naming where', () => {
    refused(() => validateTaskEnvelope(task({ args: 'x' })), /^args must be a payload object$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'inline', bytes: [1] } })), /^args\.bytes must be bytes$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'inline' } })), /^args\.bytes must be bytes$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'inline', bytes: new Uint8Array(), extra: 1 } })), /^args has a field "extra" outside the protocol \(allowed: kind, bytes\)$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: '', size: 1 } })), new RegExp(`^args\\.key ${NAME}$`));
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: 3, size: 1 } })), new RegExp(`^args\\.key ${NAME}$`));
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: 'k\u0000', size: 1 } })), /^args\.key must not contain control characters$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'stored', key: 'k', size: '1' } })), /^args\.size must be an integer >= 0, got "1"$/);
    refused(() => validateTaskEnvelope(task({ args: { kind: 'url' } })), /^args\.kind must be 'inline' or 'stored', got "url"$/);
    refused(() => validateTaskEnvelope(task({ deps: { 'd-9': { kind: 'stored', key: 'k' } } })), /^deps\.d-9\.size must be an integer >= 0, got undefined$/);
    refused(() => validateTaskEnvelope(task({ deps: { ok: { kind: 'inline', bytes: new Uint8Array() }, bad: null } })), /^deps\.bad must be a payload object$/);
  });
});

describe('task envelope validation, envelope after envelope', () => {
  /** What the full check says of one envelope: the ProtocolError's message, or undefined when it passes. */
  const verdict = (env: unknown): string | undefined => {
    try {
      validateTaskEnvelope(env);
      return undefined;
    } catch (err) {
      assert.ok(err instanceof ProtocolError, String(err));
      return err.message;
    }
  };
  const JOB = /^[A-Za-z0-9._-]{1,64}\/[A-Za-z0-9_-]{16,64}$/;
  const jobs = fc.oneof(
    fc.constantFrom(job, `a.b_c-d/${'x'.repeat(64)}`, 'j/short', `j/${'A'.repeat(65)}`, 'a b/AAAAAAAAAAAAAAAA', `${job}/x`, `${job}\n`, ''),
    fc.stringMatching(/^[A-Za-z0-9._ -]{0,3}\/[A-Za-z0-9_=-]{14,18}$/),
    fc.string({ maxLength: 24 }),
  );

  it('judges each job scope by itself, whatever was accepted before it (the last accepted one is remembered)', () => {
    fc.assert(
      fc.property(fc.array(jobs, { minLength: 1, maxLength: 12 }), (seq) => {
        for (const j of seq) {
          const v = verdict(task({ job: j }));
          if (JOB.test(j)) assert.equal(v, undefined, j);
          else assert.match(v ?? '', /^task envelope field job must be '<jobId>\/<runId>'/, j);
        }
      }),
    );
  });

  it('refuses a field outside the protocol as the full check does, and ignores inherited enumerable keys as it does', () => {
    const allowed = ['v', 'kind', 'job', 'taskId', 'fn', 'module', 'args', 'deps', 'resultKey', 'inlineLimit', 'depth', 'attempt'];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'bytes', 'key', 'extra'), fc.string({ minLength: 1, maxLength: 8 })), { maxLength: 3 }), (extra) => {
        const env = task();
        for (const k of extra) if (!Object.hasOwn(env, k)) Object.defineProperty(env, k, { value: 1, enumerable: true, writable: true, configurable: true });
        const first = Object.keys(env).find((k) => !allowed.includes(k));
        const v = verdict(env);
        if (first === undefined) assert.equal(v, undefined);
        else assert.equal(v, `task envelope has a field ${JSON.stringify(first)} outside the protocol (allowed: ${allowed.join(', ')})`);
        // The same for a payload's fields.
        const args = { kind: 'inline', bytes: new Uint8Array(1) } as Record<string, unknown>;
        for (const k of extra) if (!Object.hasOwn(args, k)) Object.defineProperty(args, k, { value: 1, enumerable: true, writable: true, configurable: true });
        const bad = Object.keys(args).find((k) => k !== 'kind' && k !== 'bytes');
        const w = verdict(task({ args }));
        if (bad === undefined) assert.equal(w, undefined);
        else assert.equal(w, `args has a field ${JSON.stringify(bad)} outside the protocol (allowed: kind, bytes)`);
      }),
    );
    // A non-enumerable own field is not listed by either check; an enumerable one on Object.prototype is inherited, not the envelope's.
    const hidden = task();
    Object.defineProperty(hidden, 'extra', { value: 1, enumerable: false });
    assert.equal(verdict(hidden), undefined);
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = 1;
    try {
      assert.equal(verdict(task()), undefined);
      assert.equal(verdict(task({ args: { kind: 'stored', key: `jobs/${job}/a`, size: 1 } })), undefined);
    } finally {
      delete proto.polluted;
    }
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
    refused(() => validateResultEnvelope(null), /^result envelope must be a plain object$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'value', bytes: new Uint8Array(), extra: 1 }), /^value result envelope has a field "extra" outside the protocol \(allowed: /);
    refused(() => validateResultEnvelope({ ...base, v: 0, kind: 'value', bytes: new Uint8Array() }), /^result envelope has protocol version 0, expected 2: redeploy the worker$/);
    refused(() => validateResultEnvelope({ ...base, taskId: 1, kind: 'value', bytes: new Uint8Array() }), new RegExp(`^result envelope field taskId ${NAME}$`));
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
    refused(() => validateResultEnvelope({ ...base, kind: 'stored', key: 'k' }), /^stored result field size must be an integer >= 0, got undefined$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'stored', size: 1 }), new RegExp(`^stored result field key ${NAME}$`));
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: { name: 'E' }, fault: 'user' }), /^error result needs error\.name and error\.message$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: { message: 'm' }, fault: 'user' }), /^error result needs error\.name and error\.message$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: 'boom', fault: 'user' }), /^error result needs error\.name and error\.message$/);
    refused(() => validateResultEnvelope({ ...base, kind: 'error', error: { name: 'E', message: 'm' }, fault: 'me' }), /^error result field fault must be 'user' or 'infrastructure', got "me"$/);
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

  it('drops undefined fields, and refuses objects that only look like bytes (a $b64 object must be exactly one canonical base64 string)', () => {
    assert.deepEqual(toWire({ a: undefined, b: 1 }), { b: 1 });
    refused(() => fromWire({ $b64: 'AQ==', other: 1 }), /^a \$b64 field must be the only field of its object and hold a string$/);
    refused(() => fromWire({ $b64: 5 }), /^a \$b64 field must be the only field of its object and hold a string$/);
    for (const bad of ['AQ=', 'AQ', 'A Q=', 'AQ-_', '=AQA', 'A=Q=']) {
      refused(() => fromWire({ $b64: bad }), new RegExp(`^a \\$b64 field holds malformed base64 \\(${bad.length} characters\\)$`));
    }
    assert.deepEqual(fromWire({ $b64: '' }), new Uint8Array());
    assert.deepEqual(fromWire({ b64: 'AQ==', s: '$b64' }), { b64: 'AQ==', s: '$b64' });
    assert.equal(toWire('s'), 's');
    assert.equal(fromWire(null), null);
  });
});
