/**
 * The cost arithmetic against examples worked by hand from the published prices
 * (us-east-1: $0.20 per million Lambda requests; $0.0000133334 per GB-s on arm64,
 * $0.0000166667 on x86_64; S3 $0.005 per 1,000 PUT/LIST, $0.0004 per 1,000 GET; $0.09 per GB
 * out).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskFinishedEvent, VolleyEvent } from '../../sdk/events.js';
import { CostMeter, priceTableFor, priceUsage, putRequestsFor } from '../../sdk/observe/cost.js';
import { US_EAST_1 } from '../../sdk/observe/prices.js';

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
      lambda: [{ memoryMB: 1769, architecture: 'x86_64' as const, requests: 2_000_000, billedMs: 3_600_000 }],
      s3: { putRequests: 1000, getRequests: 10_000, listRequests: 0, deleteRequests: 0, bytesWritten: 0, bytesRead: 0, bytesToDriver: 2 * 1024 ** 3 },
    };
    // 1769/1024 GB x 3600 s = 6219.140625 GB-s; x 0.0000166667 = $0.10365255; requests $0.40.
    const r = priceUsage(usage, US_EAST_1, { target: 'aws', estimate: false });
    near(r.lambda.gbSeconds, 6219.140625, 'GB-s');
    near(r.lambda.usd, 0.4 + 6219.140625 * 0.0000166667, 'lambda');
    // 1000 PUT = $0.005; 10,000 GET = $0.004; 2 GB out = $0.18.
    near(r.s3.usd, 0.005 + 0.004 + 0.18, 's3');
    near(r.totalUsd, 0.4 + 6219.140625 * 0.0000166667 + 0.189, 'total');

    const { table, note } = priceTableFor('eu-west-1', { s3TransferOutPerGB: 0, lambdaGbSecond: { arm64: 0.00001 } });
    assert.match(note!, /no price table for eu-west-1: priced at us-east-1 rates/);
    assert.equal(table.s3TransferOutPerGB, 0);
    assert.equal(table.lambdaGbSecond.arm64, 0.00001);
    assert.equal(table.lambdaGbSecond.x86_64, US_EAST_1.lambdaGbSecond.x86_64);
    assert.equal(priceTableFor('eu-west-1', { region: 'eu-west-1' }).note, undefined);
    const m = meter({ region: 'eu-west-1' });
    assert.ok(m.report().notes.some((n) => /no price table for eu-west-1/.test(n)));
  });
});
