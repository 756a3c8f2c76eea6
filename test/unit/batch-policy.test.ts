/**
 * The Lambda invoker's batching policy (pure logic) and the batch request and answer formats:
 * which queued tasks share one invocation, and what a worker or driver accepts as a batch.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProtocolError } from 'volley';
import { BatchPolicy, batchStats, LATENCY_BUDGET_MS, MAX_BATCH_TASKS, SHORT_TASK_MS, SPREAD_MS, type BatchCandidate } from '../../sdk/aws/batch-policy.js';
import fc from 'fast-check';
import { expandBatchItem, expandTask, fromWireParsed, validateBatchRequest, validateBatchResponse } from '../../sdk/aws/wire.js';
import { PROTOCOL_VERSION, fromWire, toWire } from '../../sdk/protocol.js';

const task = (fn: string, o: Partial<BatchCandidate> = {}): BatchCandidate => ({ fn, timeoutMs: 60_000, bytes: 200, batchable: true, ...o });
const many = (n: number, fn = 'noop', o: Partial<BatchCandidate> = {}) => Array.from({ length: n }, () => task(fn, o));
const BIG = 6 * 1024 * 1024;

/** Records batches of `fn` as the invoker would, each twice the last, until the policy stops growing. */
function warm(policy: BatchPolicy, fn: string, ms: number, rounds = 10): void {
  for (let i = 0; i < rounds; i++) policy.record(Array.from({ length: policy.sizeOf(fn) }, () => ({ fn, ms })));
}

describe('batching policy', () => {
  it('sends the tasks of a function not measured yet alone', () => {
    const p = new BatchPolicy();
    assert.equal(p.take(many(100), 0, 1, BIG), 1);
    assert.equal(p.tasksPerSlot(), 1);
  });

  it('starts with batches of 1 and doubles them while the tasks are short, up to the most tasks per invocation', () => {
    const p = new BatchPolicy();
    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const n = p.take(many(2000), 0, 1, BIG);
      sizes.push(n);
      p.record(Array.from({ length: n }, () => ({ fn: 'noop', ms: 0.01 })));
    }
    assert.deepEqual(sizes, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1024]);
    assert.equal(MAX_BATCH_TASKS, 1024);
    assert.equal(p.tasksPerSlot(), 1024);
  });

  it('sends a function alone again once its runs are no longer short', () => {
    const p = new BatchPolicy();
    warm(p, 'f', 1);
    assert.equal(p.take(many(100, 'f'), 0, 1, BIG), LATENCY_BUDGET_MS, '1 ms each, within the latency budget');
    p.record(Array.from({ length: 20 }, () => ({ fn: 'f', ms: 200 })));
    assert.equal(p.isShort('f'), false);
    assert.equal(p.take(many(100, 'f'), 0, 1, BIG), 1);
    assert.equal(p.tasksPerSlot(), 1);
  });

  it('never batches a function whose tasks are long', () => {
    const p = new BatchPolicy();
    warm(p, 'slow', SHORT_TASK_MS * 3);
    assert.equal(p.take(many(50, 'slow'), 0, 1, BIG), 1);
  });

  it('spreads tasks over free invocation slots rather than queueing them behind each other', () => {
    const p = new BatchPolicy();
    warm(p, 'f', 5);
    // 5 ms each: a batch of four is worth an invocation of its own (SPREAD_MS = 20).
    assert.equal(SPREAD_MS, 20);
    assert.equal(p.take(many(10, 'f'), 0, 5, BIG), 4);
    assert.equal(p.take(many(10, 'f'), 0, 16, BIG), 4);
    assert.equal(p.take(many(40, 'f'), 0, 4, BIG), 10);
    assert.equal(p.take(many(10, 'f'), 4, 1, BIG), 6, 'from the queue head on');
  });

  it('does not split tasks that take together less than an invocation costs', () => {
    const p = new BatchPolicy();
    warm(p, 'noop', 0.01);
    assert.equal(p.take(many(1000), 0, 16, BIG), 1000);
    assert.equal(p.take(many(10), 0, 16, BIG), 10);
  });

  it('does not split a batch of short tasks over free slots after one slow run', () => {
    const p = new BatchPolicy();
    warm(p, 'noop', 0.01);
    // One run of 2 ms (a collection, a descheduled thread), then 40 short ones: the peak still
    // remembers it (about 2 * 0.9^40 = 0.03 ms), the average does not.
    p.record([{ fn: 'noop', ms: 2 }]);
    p.record(Array.from({ length: 40 }, () => ({ fn: 'noop', ms: 0.01 })));
    assert.equal(p.take(many(1000), 0, 16, BIG), 1000, 'one invocation for 1,000 no-ops, not two');
  });

  it('takes the median and the 90th percentile (nearest rank) of a batch', () => {
    assert.deepEqual(batchStats([7]), { median: 7, p90: 7 });
    assert.deepEqual(batchStats([5, 1]), { median: 3, p90: 5 }, 'under ten runs the 90th percentile is the slowest');
    assert.deepEqual(batchStats([3, 1, 2]), { median: 2, p90: 3 });
    assert.deepEqual(batchStats([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]), { median: 5.5, p90: 9 }, 'of ten, the slowest is left out');
    const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
    assert.deepEqual(batchStats(xs.reverse()), { median: 500.5, p90: 900 });
  });

  it('does not split the next batch of no-ops after one held-up run in a batch', () => {
    const p = new BatchPolicy();
    warm(p, 'noop', 0.01);
    // The last run of a batch of 1,000 held up for 30 ms (a descheduled thread): taken run by
    // run it set the peak to 30 ms, and 1,000 no-ops went one per invocation.
    p.record(Array.from({ length: 1000 }, (_, i) => ({ fn: 'noop', ms: i === 999 ? 30 : 0.01 })));
    assert.equal(p.take(many(1000), 0, 16, BIG), 1000);
    // Nor ten held-up runs spread over the batch (1 %).
    p.record(Array.from({ length: 1000 }, (_, i) => ({ fn: 'noop', ms: i % 100 === 0 ? 30 : 0.01 })));
    assert.equal(p.take(many(1000), 0, 16, BIG), 1000);
  });

  it('predicts a batch by its slower runs when more than a tenth of them are slow, or when it is small', () => {
    const p = new BatchPolicy();
    warm(p, 'f', 0.01);
    // 11 of 100 runs took 8 ms: the 90th percentile is 8 ms, and six such fit in the latency budget.
    p.record(Array.from({ length: 100 }, (_, i) => ({ fn: 'f', ms: i < 11 ? 8 : 0.01 })));
    assert.equal(p.isShort('f'), true, 'the median run is still short');
    assert.equal(p.take(many(100, 'f'), 0, 1, BIG), Math.floor(LATENCY_BUDGET_MS / 8));
    const q = new BatchPolicy();
    warm(q, 'g', 0.01);
    // A batch of two, one of them slow: its slowest run counts.
    q.record([
      { fn: 'g', ms: 0.01 },
      { fn: 'g', ms: 8 },
    ]);
    assert.equal(q.take(many(100, 'g'), 0, 1, BIG), Math.floor(LATENCY_BUDGET_MS / 8));
  });

  it("moves a function's average by its batch's median, as much as that many runs would", () => {
    const p = new BatchPolicy();
    warm(p, 'f', 0.01);
    // 400 of 1,000 runs took 20 ms: the median run is short, so the function still is.
    p.record(Array.from({ length: 1000 }, (_, i) => ({ fn: 'f', ms: i < 400 ? 20 : 0.01 })));
    assert.equal(p.isShort('f'), true);
    // 600 of 1,000: the median run is not, and 1,000 runs leave nothing of the short average.
    p.record(Array.from({ length: 1000 }, (_, i) => ({ fn: 'f', ms: i < 600 ? 20 : 0.01 })));
    assert.equal(p.isShort('f'), false);
    assert.equal(p.take(many(100, 'f'), 0, 1, BIG), 1);
    // One batch of one short run moves it a fifth of the way only: still not short.
    p.record([{ fn: 'f', ms: 0.01 }]);
    assert.equal(p.isShort('f'), false);
  });

  it('keeps the predicted time of a batch within the latency budget', () => {
    const p = new BatchPolicy();
    warm(p, 'mid', 8);
    // 8 ms each: six fit in 50 ms.
    assert.equal(p.take(many(100, 'mid'), 0, 1, BIG), Math.floor(LATENCY_BUDGET_MS / 8));
  });

  it('does not put a task behind predecessors that could delay it past its timeout', () => {
    const p = new BatchPolicy();
    warm(p, 'mid', 8);
    warm(p, 'noop', 0.1);
    // 8 ms ahead of a task with a 20 ms timeout: 8 + 8 > 10 (half its timeout).
    const q = [task('mid'), task('mid', { timeoutMs: 20 }), task('mid')];
    assert.equal(p.take(q, 0, 1, BIG), 1);
    // A task with a long timeout after short ones joins them.
    const q2 = [task('noop'), task('noop'), task('mid', { timeoutMs: 60_000 })];
    assert.equal(p.take(q2, 0, 1, BIG), 3);
  });

  it('keeps the request under its byte budget', () => {
    const p = new BatchPolicy();
    warm(p, 'noop', 0.1);
    assert.equal(p.take(many(100, 'noop', { bytes: 1000 }), 0, 1, 10_500), 10);
  });

  it("sends an actor's call alone, and stops a batch before one", () => {
    const p = new BatchPolicy();
    warm(p, 'noop', 0.1);
    assert.equal(p.take([task('noop', { batchable: false }), task('noop')], 0, 1, BIG), 1);
    assert.equal(p.take([task('noop'), task('noop'), task('noop', { batchable: false }), task('noop')], 0, 1, BIG), 2);
  });
});

describe('batch request and answer formats', () => {
  const item = { task: { v: PROTOCOL_VERSION, kind: 'task' }, timeoutMs: 1000, memoryMB: 1024 };
  const req = { v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 1050, tasks: [item, item] };

  it('decodes parsed JSON in place as fromWire decodes it, and refuses what fromWire refuses', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.constant(null), fc.uint8Array({ maxLength: 20 }), tie('object'), tie('array')),
      object: fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__proto__')), tie('node'), { maxKeys: 5 }),
      array: fc.array(tie('node'), { maxLength: 4 }),
    }));
    fc.assert(
      fc.property(value.node, (x) => {
        const text = JSON.stringify(toWire(x));
        const got = fromWireParsed(JSON.parse(text));
        assert.deepEqual(got, fromWire(JSON.parse(text)));
        if (typeof got === 'object' && got !== null && !(got instanceof Uint8Array)) assert.ok([Object.prototype, Array.prototype].includes(Object.getPrototypeOf(got)));
      }),
    );
    // A "__proto__" field stays a field, decoded, and sets no prototype.
    const p = fromWireParsed(JSON.parse('{"__proto__":{"$b64":"AAE="},"a":1}')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, new Uint8Array([0, 1]));
    for (const bad of ['{"b":{"$b64":"AA"}}', '{"b":{"$b64":"AAE=","x":1}}', '{"b":[{"$b64":7}]}']) {
      assert.throws(() => fromWireParsed(JSON.parse(bad)), ProtocolError, bad);
      assert.throws(() => fromWire(JSON.parse(bad)), ProtocolError, bad);
    }
  });

  it('accepts a well-formed batch request', () => {
    assert.equal(validateBatchRequest(req).tasks.length, 2);
    assert.deepEqual(validateBatchRequest({ ...req, nest: { maxTaskDepth: 1, taskTimeoutMs: 10, taskMemoryMB: 128, maxConcurrency: 2 } }).nest?.maxTaskDepth, 1);
  });

  it('refuses a batch request outside the protocol, naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ ...req, v: 0 }, /protocol version/],
      [{ ...req, extra: 1 }, /field "extra" outside the protocol/],
      [{ ...req, budgetMs: 0 }, /budgetMs/],
      [{ ...req, budgetMs: 1e9 }, /budgetMs/],
      [{ ...req, tasks: [] }, /list of 1 to/],
      [{ ...req, tasks: 'x' }, /list of 1 to/],
      [{ ...req, tasks: [item, { ...item, timeoutMs: 0 }] }, /task 1 field timeoutMs/],
      [{ ...req, tasks: [item, { ...item, memoryMB: 1 }] }, /task 1 field memoryMB/],
      [{ ...req, tasks: [{ ...item, extra: true }] }, /task 0 has a field "extra"/],
      [{ ...req, tasks: [{ ...item, task: null }] }, /task 0 field task/],
      [{ ...req, tasks: [null] }, /task 0 must be an object/],
      [{ ...req, nest: { maxTaskDepth: -1 } }, /nest/],
      [[req], /batch request object/],
    ];
    for (const [x, re] of bad)
      assert.throws(
        () => validateBatchRequest(x),
        (e: unknown) => e instanceof ProtocolError && re.test((e as Error).message),
        JSON.stringify(x).slice(0, 120),
      );
  });

  describe('a batch whose tasks share fields (sent once, in shared)', () => {
    const JOB = 'job1/run1run1run1run1run1';
    const whole = (id: string) => ({
      task: { v: PROTOCOL_VERSION, kind: 'task', job: JOB, taskId: id, fn: 'f', args: { kind: 'inline', bytes: { $b64: 'Sltd' } }, deps: {}, resultKey: `volley/jobs/${JOB}/${id}`, inlineLimit: 100 },
      timeoutMs: 1000,
      memoryMB: 1024,
    });
    const shared = { task: { v: PROTOCOL_VERSION, kind: 'task', job: JOB, inlineLimit: 100 }, timeoutMs: 1000, memoryMB: 1024, resultKeyPrefix: `volley/jobs/${JOB}/` };
    const own = (id: string) => ({ task: { taskId: id, fn: 'f', args: { kind: 'inline', bytes: { $b64: 'Sltd' } }, deps: {} } });
    const compact = { v: PROTOCOL_VERSION, kind: 'batch', budgetMs: 2000, shared, tasks: [own('a'), own('b')] };

    it('expands each task to what it would be sent alone', () => {
      const req = validateBatchRequest(structuredClone(compact));
      assert.deepEqual(
        req.tasks.map((t) => expandBatchItem(t, req.shared)),
        [whole('a'), whole('b')],
      );
      // A follower keeps its producers; a batch without shared is left as it is.
      assert.deepEqual(expandBatchItem({ ...own('c'), after: ['a'] } as never, shared), { ...whole('c'), after: ['a'] });
      const plain = whole('a');
      assert.equal(expandBatchItem(plain as never, undefined), plain);
    });

    it('refuses a shared part outside the protocol, or a field given twice or not at all', () => {
      const bad: Array<[unknown, RegExp]> = [
        [{ ...compact, shared: 'x' }, /field shared must be an object/],
        [{ ...compact, shared: { ...shared, extra: 1 } }, /shared has a field "extra"/],
        [{ ...compact, shared: { ...shared, task: { ...shared.task, taskId: 'a' } } }, /shared.task has a field "taskId"/],
        [{ ...compact, shared: { ...shared, task: { ...shared.task, args: {} } } }, /shared.task has a field "args"/],
        [{ ...compact, shared: { ...shared, resultKeyPrefix: 7 } }, /resultKeyPrefix must be a string/],
        [{ ...compact, tasks: [own('a'), { ...own('b'), timeoutMs: 5 }] }, /task 1 field timeoutMs must be given either in the task or in shared, once/],
        [{ ...compact, shared: { ...shared, memoryMB: undefined } }, /task 0 field memoryMB must be given either/],
        [{ ...compact, shared: { ...shared, timeoutMs: 0 } }, /task 0 field timeoutMs must be an integer/],
        [{ ...compact, tasks: [{ task: { ...own('a').task, job: JOB } }] }, /task 0 has field task.job, which shared gives too/],
        [{ ...compact, tasks: [{ task: { ...own('a').task, resultKey: 'volley/x' } }] }, /task 0 has a resultKey, which shared.resultKeyPrefix gives/],
      ];
      for (const [x, re] of bad)
        assert.throws(
          () => validateBatchRequest(x),
          (e: unknown) => e instanceof ProtocolError && re.test((e as Error).message),
          JSON.stringify(x).slice(0, 160),
        );
    });

    it('takes a field named __proto__ as data, never as a prototype', () => {
      const t = expandTask(JSON.parse('{"taskId":"a","__proto__":{"polluted":1}}'), { task: { v: PROTOCOL_VERSION } }) as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(t), Object.prototype);
      assert.equal(Object.hasOwn(t, '__proto__'), true);
      assert.equal((t as { polluted?: number }).polluted, undefined);
    });
  });

  it('accepts an answer with one entry per task, in order, some not started', () => {
    const answer = {
      v: PROTOCOL_VERSION,
      kind: 'batch',
      results: [
        { v: PROTOCOL_VERSION, kind: 'value', taskId: 'a' },
        { v: PROTOCOL_VERSION, kind: 'notStarted', taskId: 'b' },
      ],
      logs: 'here',
    };
    assert.equal(validateBatchResponse(answer, ['a', 'b']).results.length, 2);
  });

  it('refuses an answer that is not for exactly the tasks sent', () => {
    const r = (taskId: string, kind = 'value') => ({ v: PROTOCOL_VERSION, kind, taskId });
    const answer = (results: unknown) => ({ v: PROTOCOL_VERSION, kind: 'batch', results });
    assert.throws(() => validateBatchResponse(answer([r('a')]), ['a', 'b']), /must hold 2 results, got 1/);
    assert.throws(() => validateBatchResponse(answer([r('b'), r('a')]), ['a', 'b']), /result 0 .* for task a/);
    assert.throws(() => validateBatchResponse(answer([r('a'), { ...r('b', 'notStarted'), extra: 1 }]), ['a', 'b']), /outside the protocol/);
    assert.throws(() => validateBatchResponse({ ...answer([r('a')]), kind: 'value' }, ['a']), /kind 'batch'/);
    assert.throws(() => validateBatchResponse({ ...answer([r('a')]), logs: 3 }, ['a']), /logs/);
    assert.throws(() => validateBatchResponse({ ...answer([r('a')]), worker: 'w' }, ['a']), /worker must be an object/);
    assert.equal(validateBatchResponse({ ...answer([r('a')]), worker: { id: 'w' } }, ['a']).worker !== undefined, true);
  });
});

describe('batching policy: batches answered side by side', () => {
  it('lets a function grow by the runs measured short so far, whichever invocations they came in', () => {
    const p = new BatchPolicy();
    // 16 invocation slots each answer one task of a new function: 16 runs measured short.
    for (let i = 0; i < 16; i++) p.record([{ fn: 'leaf', ms: 0.1 }]);
    assert.equal(p.sizeOf('leaf'), 17, 'one more than the runs measured short (doubling per batch alone would allow 2)');
    for (let i = 0; i < 16; i++) p.record(Array.from({ length: 17 }, () => ({ fn: 'leaf', ms: 0.1 })));
    assert.equal(p.sizeOf('leaf'), Math.min(MAX_BATCH_TASKS, 16 + 16 * 17 + 1));
    // Once the runs are no longer short, the evidence is gone: alone again, then growing from 1.
    p.record(Array.from({ length: 40 }, () => ({ fn: 'leaf', ms: 100 })));
    assert.equal(p.sizeOf('leaf'), 1);
  });
});

describe('batching policy: followers', () => {
  it('keeps a follower with the producers just before it, past the fair share; not one whose producer is elsewhere', () => {
    const p = new BatchPolicy();
    warm(p, 'f', 8);
    const q = [task('f', { id: 'a' }), task('f', { id: 'b' }), task('f', { id: 'c', after: ['a', 'b'] }), task('f', { id: 'd' }), task('f', { id: 'e' }), task('f', { id: 'g', after: ['d', 'e'] })];
    // 8 ms each over 3 free slots: a fair share of two tasks per invocation, and the follower c with its producers.
    assert.equal(p.take(q, 0, 3, BIG), 3);
    const q2 = [task('f', { id: 'a' }), task('f', { id: 'b' }), task('f', { id: 'x', after: ['z'] }), ...many(3, 'f')];
    assert.equal(p.take(q2, 0, 3, BIG), 2);
    // Still within half of its timeout after the tasks ahead of it.
    const q3 = [task('f', { id: 'a' }), task('f', { id: 'b' }), task('f', { id: 'c', after: ['a', 'b'], timeoutMs: 10 }), ...many(3, 'f')];
    assert.equal(p.take(q3, 0, 3, BIG), 2);
  });
});
