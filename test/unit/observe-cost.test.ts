/**
 * The cost arithmetic against examples worked by hand from the published prices
 * (us-east-1: $0.20 per million Lambda requests; $0.0000133334 per GB-s on arm64,
 * $0.0000166667 on x86_64; S3 $0.005 per 1,000 PUT/LIST, $0.0004 per 1,000 GET; $0.09 per GB
 * out).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createHandler } from '../../sdk/aws/handler.js';
import type { ObjectStore } from '../../sdk/backend.js';
import { ProtocolError, UsageError } from '../../sdk/errors.js';
import type { TaskFinishedEvent, TaskRetryingEvent, VolleyEvent } from '../../sdk/events.js';
import { CostMeter, priceTableFor, priceUsage, putRequestsFor } from '../../sdk/observe/cost.js';
import { checkCostRegion, resolveObserveOptions } from '../../sdk/observe/options.js';
import { PRICE_TABLES, US_EAST_1 } from '../../sdk/observe/prices.js';
import { resolveInitOptions } from '../../sdk/options.js';
import { PROTOCOL_VERSION, fromWire, validateResultEnvelope } from '../../sdk/protocol.js';

const MiB = 1024 * 1024;

function finished(over: Partial<TaskFinishedEvent>): TaskFinishedEvent {
  return {
    type: 'finished',
    time: 1000,
    taskId: 't',
    fn: 'f',
    attempt: 1,
    outcome: 'ok',
    memoryMB: 1024,
    submittedAt: 0,
    dispatchedAt: 10,
    deps: [],
    timing: { fetchMs: 0.3, runMs: 99.2, storeMs: 0.2 },
    ...over,
  };
}

function meter(over: Partial<ConstructorParameters<typeof CostMeter>[0]> = {}) {
  return new CostMeter({ target: 'local', estimate: true, region: 'us-east-1', architecture: 'arm64', multipartThresholdBytes: 16 * MiB, partSizeBytes: 8 * MiB, ...over });
}

/** Within a millionth of a cent. */
function near(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) < 1e-8, `${what}: ${actual} != ${expected}`);
}

describe('cost', () => {
  it('prices a job worked by hand: 1,000 arm64 tasks of 99.7 ms at 1 GB, stored results and inputs, a multipart put, a driver get', () => {
    const m = meter();
    const events: VolleyEvent[] = [];
    for (let i = 0; i < 1000; i++) {
      // 10 of them read two stored inputs of 1 MiB and store a 1 MiB result.
      const big = i < 10;
      events.push({ type: 'dispatched', time: 5, taskId: `t${i}`, fn: 'f', attempt: 1, memoryMB: 1024, deps: [], storedInputs: big ? 2 : 0, storedInputBytes: big ? 2 * MiB : 0 });
      events.push(finished({ taskId: `t${i}`, result: { bytes: big ? MiB : 9, stored: big } }));
    }
    events.push({ type: 'store', time: 1, op: 'put', count: 1, bytes: 40 * MiB }); // multipart: create + 5 parts + complete
    events.push({ type: 'store', time: 1, op: 'get', count: 1, bytes: MiB });
    events.push({ type: 'store', time: 1, op: 'deletePrefix', count: 2500, bytes: 0 }); // 3 listings
    for (const e of events) m.onEvent(e);
    const r = m.report();

    // Lambda: each run bills ceil(99.7) = 100 ms; 1,000 x 100 ms x 1 GB = 100 GB-s.
    assert.equal(r.lambda.requests, 1000);
    near(r.lambda.gbSeconds, 100, 'GB-s');
    near(r.lambda.requestsUsd, 0.0002, 'requests');
    near(r.lambda.durationUsd, 0.00133334, 'duration'); // 100 x 0.0000133334
    near(r.lambda.usd, 0.00153334, 'lambda');
    // S3: PUT-class = 10 results + 7 for the 40 MiB upload + 3 LIST = 20 -> $0.0001;
    // GET = 20 inputs + 1 driver get = 21 -> $0.0000084; 1 MiB out = 0.09 / 1024 = $0.00008789.
    assert.equal(r.s3.putRequests, 17);
    assert.equal(r.s3.listRequests, 3);
    assert.equal(r.s3.getRequests, 21);
    assert.equal(r.s3.bytesWritten, 10 * MiB + 40 * MiB);
    assert.equal(r.s3.bytesRead, 21 * MiB);
    assert.equal(r.s3.bytesToDriver, MiB);
    near(r.s3.requestsUsd, 0.0001084, 's3 requests');
    near(r.s3.transferUsd, 0.09 / 1024, 'transfer');
    near(r.totalUsd, 0.00153334 + 0.0001084 + 0.09 / 1024, 'total');
    assert.equal(r.estimate, true);
    assert.equal(r.prices.region, 'us-east-1');
    assert.match(r.prices.source, /aws\.amazon\.com\/lambda\/pricing/);
    assert.match(r.prices.asOf, /^\d{4}-\d{2}-\d{2}$/);
  });

  it('bills at least 1 ms, rounds each run up, and keeps memory sizes and architectures apart', () => {
    const m = meter({ architecture: 'x86_64' });
    // 0.4 ms at 512 MB x86: billed 1 ms -> 0.5 GB x 0.001 s = 0.0005 GB-s.
    m.onEvent(finished({ memoryMB: 512, timing: { fetchMs: 0, runMs: 0.4, storeMs: 0 } }));
    // A Lambda worker reports its function's own memory and architecture: 2048 MB arm64, 250.01 ms -> 251 ms.
    m.onEvent(finished({ memoryMB: 512, worker: { id: 'stream-1', memoryMB: 2048, arch: 'arm64' }, timing: { fetchMs: 0, runMs: 250.01, storeMs: 0 } }));
    // A timeout reports no timing: dispatch (10) to the driver's end (1510.2) = 1500.2 -> 1501 ms.
    m.onEvent(finished({ memoryMB: 512, outcome: 'timeout', timing: undefined, time: 1510.2 }));
    // A task that never ran is not billed.
    m.onEvent(finished({ outcome: 'dependency', dispatchedAt: undefined, timing: undefined }));
    const r = m.report();
    const line = (mb: number, arch: string) => r.lambda.byMemory.find((b) => b.memoryMB === mb && b.architecture === arch)!;
    const x86 = line(512, 'x86_64');
    assert.equal(x86.requests, 2);
    near(x86.gbSeconds, (0.5 * (1 + 1501)) / 1000, 'x86 GB-s'); // 0.751
    near(x86.usd, 2 * 0.0000002 + 0.751 * 0.0000166667, 'x86 usd');
    const arm = line(2048, 'arm64');
    assert.equal(arm.requests, 1);
    near(arm.gbSeconds, 2 * 0.251, 'arm GB-s'); // 0.502
    near(arm.usd, 0.0000002 + 0.502 * 0.0000133334, 'arm usd');
    assert.equal(r.lambda.requests, 3);
  });

  it('multipart writes count create + one PUT per part + complete', () => {
    assert.equal(putRequestsFor(16 * MiB, 16 * MiB, 8 * MiB), 1);
    assert.equal(putRequestsFor(16 * MiB + 1, 16 * MiB, 8 * MiB), 2 + 3);
    assert.equal(putRequestsFor(100 * MiB, 16 * MiB, 8 * MiB), 2 + 13);
  });

  it('prices usage directly and applies overrides; a region without a table says so', () => {
    const usage = {
      lambda: [{ memoryMB: 1769, architecture: 'x86_64' as const, requests: 2_000_000, billedMs: 3_600_000, coldStarts: 0, initMs: 0 }],
      s3: { putRequests: 1000, getRequests: 10_000, listRequests: 0, deleteRequests: 0, bytesWritten: 0, bytesRead: 0, bytesToDriver: 2 * 1024 ** 3 },
    };
    // 1769/1024 GB x 3600 s = 6219.140625 GB-s; x 0.0000166667 = $0.10365255; requests $0.40.
    const r = priceUsage(usage, US_EAST_1, { target: 'aws', estimate: false });
    near(r.lambda.gbSeconds, 6219.140625, 'GB-s');
    near(r.lambda.usd, 0.4 + 6219.140625 * 0.0000166667, 'lambda');
    // 1000 PUT = $0.005; 10,000 GET = $0.004; 2 GB out = $0.18.
    near(r.s3.usd, 0.005 + 0.004 + 0.18, 's3');
    near(r.totalUsd, 0.4 + 6219.140625 * 0.0000166667 + 0.189, 'total');

    const table = priceTableFor('eu-west-1', { s3TransferOutPerGB: 0, lambdaGbSecond: { arm64: 0.00001 } });
    assert.equal(table.region, 'eu-west-1');
    assert.equal(table.s3TransferOutPerGB, 0);
    assert.equal(table.lambdaGbSecond.arm64, 0.00001);
    assert.equal(table.lambdaGbSecond.x86_64, US_EAST_1.lambdaGbSecond.x86_64);
  });

  it('bills every run: a task that failed twice and then succeeded is three invocations', () => {
    const m = meter();
    const retrying = (attempt: number, over: Partial<TaskRetryingEvent> = {}): TaskRetryingEvent => ({
      type: 'retrying',
      time: 1000,
      taskId: 't',
      fn: 'f',
      attempt,
      outcome: 'failed',
      reason: 'retry',
      delayMs: 150,
      memoryMB: 1024,
      submittedAt: 0,
      dispatchedAt: 10,
      deps: [],
      timing: { fetchMs: 0, runMs: 40.2, storeMs: 0 },
      error: { name: 'TransientError', message: 'failed' },
      ...over,
    });
    m.onEvent(retrying(1)); // 41 ms
    m.onEvent(retrying(2, { timing: undefined, outcome: 'crashed', time: 70.5 })); // no report: dispatch (10) to 70.5 -> 61 ms
    m.onEvent(finished({ attempt: 3 })); // 100 ms
    const r = m.report();
    assert.equal(r.lambda.requests, 3);
    near(r.lambda.gbSeconds, (41 + 61 + 100) / 1000, 'GB-s');
    near(r.lambda.usd, 3 * 0.0000002 + 0.202 * 0.0000133334, 'lambda');
  });

  it("adds each cold start's INIT to its run's billed duration, rounded up once (worked by hand)", () => {
    const m = meter({ target: 'aws', estimate: false });
    const lambda = (initMs?: number) => ({ id: `2026/11/26/[$LATEST]${initMs ?? 'warm'}`, memoryMB: 1024, arch: 'arm64' as const, ...(initMs === undefined ? {} : { initMs }) });
    // Cold: INIT 412.3 ms + 99.7 ms of task = 512.0 -> 512 ms.
    m.onEvent(finished({ worker: lambda(412.3) }));
    // Warm: 99.7 -> 100 ms.
    m.onEvent(finished({ worker: lambda() }));
    // Cold, and retried: INIT 250.5 + 10.0 = 260.5 -> 261 ms.
    m.onEvent({
      ...finished({ worker: lambda(250.5), timing: { fetchMs: 0, runMs: 10, storeMs: 0 } }),
      type: 'retrying',
      reason: 'retry',
      delayMs: 100,
      error: { name: 'E', message: 'x' },
    } as TaskRetryingEvent);
    const r = m.report();
    // 512 + 100 + 261 = 873 ms at 1 GB = 0.873 GB-s; $0.0000006 requests + 0.873 x $0.0000133334.
    assert.equal(r.lambda.requests, 3);
    assert.equal(r.lambda.coldStarts, 2);
    near(r.lambda.gbSeconds, 0.873, 'GB-s');
    near(r.lambda.initGbSeconds, 0.6628, 'INIT GB-s'); // (412.3 + 250.5) ms at 1 GB
    near(r.lambda.usd, 0.0000006 + 0.873 * 0.0000133334, 'lambda');
    near(r.lambda.byMemory[0]!.initGbSeconds, 0.6628, 'INIT GB-s of the line');
    assert.ok(!r.notes.some((n) => /not counted/.test(n)));
  });

  it('has price tables for the common regions, each with its source and date', () => {
    for (const region of ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-northeast-1', 'ap-southeast-1', 'ap-southeast-2', 'sa-east-1']) {
      const t = PRICE_TABLES[region]!;
      assert.equal(t.region, region);
      assert.match(t.source, /pricing/);
      assert.match(t.asOf, /^\d{4}-\d{2}-\d{2}$/);
    }
    // Frankfurt: $0.0054 per 1,000 PUT, $0.0043 per 10,000 GET, $0.09 per GB out; Lambda as in N. Virginia.
    const fra = priceTableFor('eu-central-1');
    near(fra.s3PutRequest * 1000, 0.0054, 'PUT');
    near(fra.s3GetRequest * 10_000, 0.0043, 'GET');
    assert.equal(fra.s3TransferOutPerGB, 0.09);
    assert.deepEqual(fra.lambdaGbSecond, US_EAST_1.lambdaGbSecond);
    // Tokyo and São Paulo differ: $0.114 and $0.15 per GB out; São Paulo's PUT $0.007 per 1,000.
    assert.equal(priceTableFor('ap-northeast-1').s3TransferOutPerGB, 0.114);
    near(priceTableFor('sa-east-1').s3PutRequest * 1000, 0.007, 'PUT');
    // The same usage costs more in São Paulo than in N. Virginia (its S3 requests and transfer).
    const usage = { lambda: [], s3: { putRequests: 1000, getRequests: 1000, listRequests: 0, deleteRequests: 0, bytesWritten: 0, bytesRead: 0, bytesToDriver: 1024 ** 3 } };
    near(priceUsage(usage, priceTableFor('sa-east-1'), { target: 'aws', estimate: false }).totalUsd, 0.007 + 0.00056 + 0.15, 'sa-east-1');
    near(priceUsage(usage, US_EAST_1, { target: 'aws', estimate: false }).totalUsd, 0.005 + 0.0004 + 0.09, 'us-east-1');
  });

  it('a region without a table is an error naming what to give, unless every price is given', () => {
    assert.throws(
      () => priceTableFor('eu-south-2'),
      (e: Error) => e instanceof UsageError && /no price table for region eu-south-2/.test(e.message) && /cost: \{ prices \}/.test(e.message),
    );
    // Some prices are not enough: the message lists the missing ones.
    assert.throws(() => priceTableFor('eu-south-2', { lambdaRequest: 2e-7 }), /missing: s3PutRequest, s3GetRequest, s3TransferOutPerGB, lambdaGbSecond\.x86_64, lambdaGbSecond\.arm64/);
    const all = { lambdaRequest: 2e-7, lambdaGbSecond: { x86_64: 0.00002, arm64: 0.000016 }, s3PutRequest: 6e-6, s3GetRequest: 5e-7, s3TransferOutPerGB: 0.1 };
    const t = priceTableFor('eu-south-2', all);
    assert.equal(t.region, 'eu-south-2');
    assert.equal(t.lambdaGbSecond.arm64, 0.000016);
    // The meter prices with them; without them, its report is the same error.
    assert.throws(() => meter({ region: 'eu-south-2' }).report(), /no price table for region eu-south-2/);
    assert.equal(meter({ region: 'eu-south-2', prices: all }).report().prices.region, 'eu-south-2');
  });

  it('init() refuses a cost count it cannot price; a count on only by default does not stop init()', () => {
    const env = { AWS_REGION: 'eu-south-2' } as NodeJS.ProcessEnv;
    assert.throws(
      () => resolveInitOptions({ target: 'aws', cost: true }, env),
      (e: Error) => e instanceof UsageError && /init\(\{ cost \}\): volley has no price table for region eu-south-2/.test(e.message),
    );
    assert.throws(() => resolveInitOptions({ cost: { region: 'me-central-1' } }, {}), /no price table for region me-central-1/);
    assert.throws(() => resolveInitOptions({ cost: { region: 'Frankfurt' } }, {}), /must be an AWS region such as eu-west-1/);
    // On by default on aws: init() works; rt.cost() says why it has no amounts.
    assert.equal(resolveInitOptions({ target: 'aws' }, env).observe.cost?.asked, false);
    // A listed region, asked for on the embedded runtime: priced at its rates.
    const o = resolveObserveOptions({ cost: { region: 'ap-northeast-1' } }, 'local', {}, false);
    assert.doesNotThrow(() => checkCostRegion(o.cost, 'us-east-1'));
    assert.equal(o.cost?.region, 'ap-northeast-1');
  });

  it("the Lambda handler reports its sandbox's INIT with its first answer only, and the driver checks the figure", async () => {
    const noStore = {} as ObjectStore;
    const h = createHandler({ VOLLEY_BUCKET: 'b', AWS_LAMBDA_LOG_STREAM_NAME: 'stream-7' }, { storeFor: () => noStore, initMs: 321.5 });
    const event = { v: PROTOCOL_VERSION, kind: 'invoke', timeoutMs: 10, memoryMB: 128, task: { taskId: 't1' } };
    const first = validateResultEnvelope(fromWire(await h(event)));
    const second = validateResultEnvelope(fromWire(await h(event)));
    assert.equal(first.worker?.id, 'stream-7');
    assert.equal(first.worker?.initMs, 321.5, 'the cold start');
    assert.equal(second.worker?.initMs, undefined, 'a warm invocation has no INIT');
    // What a worker says is checked at the boundary.
    const answer = (initMs: unknown) => ({
      v: PROTOCOL_VERSION,
      kind: 'stored',
      taskId: 't1',
      key: 'volley/jobs/j/r/t1',
      size: 1,
      timing: { fetchMs: 0, runMs: 1, storeMs: 0 },
      worker: { id: 's', initMs },
    });
    assert.equal(validateResultEnvelope(answer(12.5)).worker?.initMs, 12.5);
    for (const bad of [-1, 'fast', Number.NaN, 10_000_000]) {
      assert.throws(
        () => validateResultEnvelope(answer(bad)),
        (e: Error) => e instanceof ProtocolError && /worker\.initMs must be a number of ms from 0 to 900000/.test(e.message),
        String(bad),
      );
    }
  });
});
