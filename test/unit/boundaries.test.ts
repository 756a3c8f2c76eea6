/**
 * What a worker accepts from whoever invokes it, and what the driver accepts from its caller:
 * strict envelopes (ProtocolError for anything outside the protocol), keys confined to the
 * task's own run, ranges that Lambda can honour, answers that fit Lambda's 6 MB response.
 * The Lambda handler runs in this process with an in-memory store that records every key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError, remote, UsageError } from 'volley';
import type { ObjectStore } from '../../sdk/backend.js';
import { createHandler } from '../../sdk/aws/handler.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope, validateTaskEnvelope, type TaskEnvelope } from '../../sdk/protocol.js';
import { encode, encodeArgs } from '../../sdk/serialize.js';
import { executeTask } from '../../sdk/worker/execute.js';

const echoBoundary = remote(function echoBoundary(x: unknown): unknown {
  return x;
});
const bigBoundary = remote(function bigBoundary(n: number): Uint8Array {
  return new Uint8Array(n).fill(1);
});
const throwBigBoundary = remote(function throwBigBoundary(n: number): never {
  throw new Error('x'.repeat(n));
});

const RUN = 'job1/AAAAAAAAAAAAAAAAAAAAAA';
const PREFIX = `volley/jobs/${RUN}/`;

/** A store that records the keys a worker reads and writes. */
class RecordingStore extends MemoryStore implements ObjectStore {
  readonly touched: string[] = [];
  override async get(key: string): Promise<Uint8Array> {
    this.touched.push(`get ${key}`);
    return super.get(key);
  }
  override async put(key: string, bytes: Uint8Array): Promise<void> {
    this.touched.push(`put ${key}`);
    return super.put(key, bytes);
  }
}

function envelope(over: Partial<TaskEnvelope> = {}): TaskEnvelope {
  return {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: RUN,
    taskId: 'echoBoundary-1',
    fn: 'echoBoundary',
    args: { kind: 'inline', bytes: encodeArgs([41], () => assert.fail()) },
    deps: {},
    resultKey: `${PREFIX}echoBoundary-1`,
    inlineLimit: 100 * 1024,
    ...over,
  };
}

function request(env: unknown, over: Record<string, unknown> = {}): unknown {
  return JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, kind: 'invoke', task: toWire(env), timeoutMs: 5000, memoryMB: 1024, ...over }));
}

function handlerWith(store: ObjectStore) {
  return createHandler({ VOLLEY_BUCKET: 'b' }, () => store);
}

const errorName = (answer: Record<string, unknown>) => (answer.error as { name?: string } | undefined)?.name;

describe('the envelope validator', () => {
  const rejects = (x: unknown, re: RegExp) =>
    assert.throws(
      () => validateTaskEnvelope(x),
      (e: unknown) => e instanceof ProtocolError && re.test(e.message),
    );

  it('accepts what the driver builds', () => {
    assert.equal(validateTaskEnvelope(envelope()).fn, 'echoBoundary');
  });

  it('takes no field from a prototype: __proto__ in the JSON stays a field, and is refused', () => {
    const json = JSON.stringify(toWire(envelope())).replace('{', '{"__proto__":{"polluted":true},');
    const parsed = fromWire(JSON.parse(json)) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype, 'fromWire never sets a prototype');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    rejects(parsed, /field "__proto__" outside the protocol/);
    // Fields of the envelope supplied through a prototype are not fields.
    const { fn: _fn, ...rest } = envelope();
    rejects(Object.assign(Object.create({ fn: 'echoBoundary' }), rest), /plain object|fn/);
  });

  it('refuses unknown fields, bad kinds and sizes, and payloads with extra fields', () => {
    rejects({ ...envelope(), extra: 1 }, /field "extra" outside the protocol/);
    rejects({ ...envelope(), inlineLimit: 0.5 }, /inlineLimit must be an integer/);
    rejects({ ...envelope(), args: { kind: 'stored', key: `${PREFIX}a`, size: -1 } }, /size must be an integer >= 0/);
    rejects({ ...envelope(), args: { kind: 'inline', bytes: new Uint8Array(1), key: 'x' } }, /field "key" outside/);
    rejects({ ...envelope(), job: 'a/b/c' }, /job must be/);
    rejects({ ...envelope(), deps: [] }, /deps must be an object/);
  });

  it('refuses malformed base64 instead of decoding what it can', () => {
    const wire = JSON.parse(JSON.stringify(toWire(envelope()))) as { args: { bytes: { $b64: string } } };
    wire.args.bytes.$b64 = 'SGVsbG8*'; // Node's decoder would skip the '*'
    assert.throws(
      () => fromWire(wire),
      (e: unknown) => e instanceof ProtocolError && /malformed base64/.test(e.message),
    );
    wire.args.bytes.$b64 = 'SGVsbG8'; // not whole groups
    assert.throws(() => fromWire(wire), ProtocolError);
  });

  it('result envelopes: unknown fields and bad faults are refused too', () => {
    const ok = { v: PROTOCOL_VERSION, kind: 'value', taskId: 't', bytes: new Uint8Array(1), timing: { fetchMs: 0, runMs: 0, storeMs: 0 } };
    assert.equal(validateResultEnvelope(ok).kind, 'value');
    assert.throws(() => validateResultEnvelope({ ...ok, extra: true }), ProtocolError);
    assert.throws(() => validateResultEnvelope({ v: PROTOCOL_VERSION, kind: 'error', taskId: 't', error: { name: 'E', message: 'm' }, fault: 'nobody', timing: ok.timing }), /fault must be/);
  });
});

describe('the Lambda handler at its boundary', () => {
  it('an argument list that is not a list is a ProtocolError of the infrastructure, not the user', async () => {
    const res = await executeTask(envelope({ args: { kind: 'inline', bytes: encode(5) } }), { store: new MemoryStore(), keyPrefix: 'volley/' });
    assert.equal(res.kind, 'error');
    if (res.kind !== 'error') return;
    assert.equal(res.fault, 'infrastructure');
    assert.equal(res.error.name, 'ProtocolError');
  });

  it('a task whose module is not in the bundle: the error names the module and the commands that bundle it again', async () => {
    // Before: "...list it in volley.config.json "tasks" and rebuild (npm run build)": a user's
    // project has no such script; it deploys (or restarts the emulators) to bundle again.
    const res = await executeTask(envelope({ fn: 'notBundled', taskId: 'notBundled-1', resultKey: `${PREFIX}notBundled-1`, module: 'file:///app/dist/jobs.js' }), {
      store: new MemoryStore(),
      keyPrefix: 'volley/',
    });
    assert.equal(res.kind, 'error');
    if (res.kind !== 'error') return;
    assert.equal(res.error.name, 'TaskNotFoundError');
    assert.match(res.error.message, /task "notBundled" is not registered in this worker: its module \(file:\/\/\/app\/dist\/jobs\.js on the driver\) is not in the worker bundle/);
    assert.match(res.error.message, /list its source file in volley\.config\.json "tasks", then bundle and deploy again \(npx volley deploy --target aws\|localstack, or restart npx volley emulators/);
  });

  it('validates the request: timeoutMs within Lambda 900 s, memoryMB an integer in Lambda range, no extra fields', async () => {
    const h = handlerWith(new RecordingStore());
    for (const [over, re] of [
      [{ timeoutMs: 2 ** 31 }, /timeoutMs must be an integer from 1 to 900000/],
      [{ timeoutMs: 0 }, /timeoutMs/],
      [{ memoryMB: 0.5 }, /memoryMB must be an integer from 128 to 10240/],
      [{ memoryMB: 20_000 }, /memoryMB/],
      [{ extra: 1 }, /field "extra" outside the protocol/],
    ] as const) {
      const answer = await h(request(envelope(), over));
      assert.equal(answer.kind, 'error');
      assert.equal(errorName(answer), 'ProtocolError', JSON.stringify(over));
      assert.match((answer.error as { message: string }).message, re);
      assert.equal(answer.fault, 'infrastructure');
    }
  });

  it('reads and writes only keys under its own run: other jobs and other prefixes are refused before the store is touched', async () => {
    const store = new RecordingStore();
    await store.put('volley/jobs/other/RUNRUNRUNRUNRUNRUNRUNR/secret', encode('another job'));
    await store.put('elsewhere/data', encode('outside volley'));
    store.touched.length = 0;
    const h = handlerWith(store);
    const cases: Array<Partial<TaskEnvelope>> = [
      { resultKey: 'volley/jobs/other/RUNRUNRUNRUNRUNRUNRUNR/overwrite' },
      { resultKey: 'elsewhere/overwrite' },
      { resultKey: PREFIX }, // the prefix itself is no object
      { args: { kind: 'stored', key: 'volley/jobs/other/RUNRUNRUNRUNRUNRUNRUNR/secret', size: 10 } },
      { args: { kind: 'stored', key: 'elsewhere/data', size: 10 } },
      { deps: { r: { kind: 'stored', key: 'elsewhere/data', size: 10 } } },
    ];
    for (const c of cases) {
      const answer = await h(request(envelope(c)));
      assert.equal(errorName(answer), 'ProtocolError', JSON.stringify(c));
      assert.match((answer.error as { message: string }).message, /outside this task's run/);
    }
    assert.deepEqual(store.touched, []);
    // Its own run's keys work.
    await store.put(
      `${PREFIX}args`,
      encodeArgs([5], () => assert.fail()),
    );
    const ok = await h(request(envelope({ args: { kind: 'stored', key: `${PREFIX}args`, size: 1 } })));
    assert.equal(ok.kind, 'value');
    void echoBoundary;
  });

  it('a result too large for a 6 MB answer goes to the store whatever the inline limit says', async () => {
    const store = new RecordingStore();
    const h = handlerWith(store);
    const env = envelope({
      fn: 'bigBoundary',
      taskId: 'bigBoundary-1',
      resultKey: `${PREFIX}bigBoundary-1`,
      inlineLimit: 8e6,
      args: { kind: 'inline', bytes: encodeArgs([5_000_000], () => assert.fail()) },
    });
    const answer = await h(request(env));
    assert.equal(answer.kind, 'stored');
    assert.ok(Buffer.byteLength(JSON.stringify(answer)) < 6 * 1024 * 1024);
    assert.deepEqual(store.touched, [`put ${PREFIX}bigBoundary-1`]);
    void bigBoundary;
  });

  it('an error too large for a 6 MB answer is clipped, and says so', async () => {
    const h = handlerWith(new RecordingStore());
    const env = envelope({
      fn: 'throwBigBoundary',
      taskId: 'throwBigBoundary-1',
      resultKey: `${PREFIX}throwBigBoundary-1`,
      args: { kind: 'inline', bytes: encodeArgs([7_000_000], () => assert.fail()) },
    });
    const answer = await h(request(env));
    assert.equal(answer.kind, 'error');
    assert.equal(answer.fault, 'user');
    assert.ok(Buffer.byteLength(JSON.stringify(answer)) < 6 * 1024 * 1024);
    assert.match((answer.error as { message: string }).message, /characters clipped/);
    void throwBigBoundary;
  });
});

describe('ranges at init', () => {
  it('timeouts above what the target can honour are UsageErrors; the embedded runtime takes any length', () => {
    const env = { VOLLEY_LAMBDA_ENDPOINT: 'http://127.0.0.1:1', VOLLEY_S3_ENDPOINT: 'http://127.0.0.1:2' };
    assert.throws(
      () => resolveInitOptions({ target: 'emulator', taskTimeoutMs: 1e10 }, env),
      (e: unknown) => e instanceof UsageError && /at most 900000 ms/.test(e.message),
    );
    assert.equal(resolveInitOptions({ taskTimeoutMs: 1e10 }, {}).taskTimeoutMs, 1e10);
  });

  it('an inline threshold no Lambda payload can carry is a UsageError on the AWS targets', () => {
    const env = { VOLLEY_LAMBDA_ENDPOINT: 'http://127.0.0.1:1', VOLLEY_S3_ENDPOINT: 'http://127.0.0.1:2' };
    assert.throws(
      () => resolveInitOptions({ target: 'emulator', inlineThresholdBytes: 8e6 }, env),
      (e: unknown) => e instanceof UsageError && /6 MB/.test(e.message),
    );
    assert.throws(() => resolveInitOptions({ target: 'aws', inlineThresholdBytes: 8e6, aws: { functionName: 'f', bucket: 'b' } }, {}), UsageError);
    assert.equal(resolveInitOptions({ inlineThresholdBytes: 8e6 }, {}).inlineThresholdBytes, 8e6);
  });

  it('memoryMB must be an integer in Lambda range', () => {
    assert.throws(() => resolveInitOptions({ taskMemoryMB: 0.5 }, {}), UsageError);
    assert.throws(() => resolveInitOptions({ taskMemoryMB: 20_480 }, {}), UsageError);
  });
});
