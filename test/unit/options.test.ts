/**
 * The options table is the one source of option keys, defaults and environment variables:
 * what init() resolves, what it accepts and what its errors list all come from it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from 'volley';
import { optionTable, resolveInitOptions, resolveTaskOptionsInput } from '../../sdk/options.js';
import { readWorkerEnv } from '../../sdk/aws/worker-env.js';

const emulatorEnv = { VOLLEY_LAMBDA_ENDPOINT: 'http://127.0.0.1:1', VOLLEY_S3_ENDPOINT: 'http://127.0.0.1:2' };

function validList(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    const m = /valid options are: (.*)$/.exec(e.message);
    assert.ok(m, e.message);
    return m[1]!.split(', ');
  }
  return assert.fail('expected a UsageError');
}

describe('the options table', () => {
  it('lists the valid keys in every "unknown option" error', () => {
    assert.deepEqual(
      validList(() => resolveInitOptions({ nope: 1 } as never, {})),
      Object.keys(optionTable.init),
    );
    assert.deepEqual(
      validList(() => resolveInitOptions({ local: { nope: 1 } } as never, {})),
      Object.keys(optionTable.local),
    );
    assert.deepEqual(
      validList(() => resolveInitOptions({ target: 'aws', aws: { nope: 1 } } as never, {})),
      Object.keys(optionTable.aws),
    );
    assert.deepEqual(
      validList(() => resolveTaskOptionsInput('remote()', { nope: 1 } as never)),
      Object.keys(optionTable.task),
    );
  });

  it("gives init() the table's defaults when nothing is set", () => {
    const r = resolveInitOptions(undefined, {});
    assert.equal(r.target, optionTable.init.target.default);
    assert.equal(r.inlineThresholdBytes, optionTable.init.inlineThresholdBytes.default);
    assert.equal(r.taskTimeoutMs, optionTable.init.taskTimeoutMs.default);
    assert.equal(r.taskMemoryMB, optionTable.init.taskMemoryMB.default);
    assert.deepEqual(r.local, { maxWorkers: 32, minWorkers: 0, idleTimeoutMs: 30_000 });
    assert.equal(r.maxConcurrency, 32 * 32);
    for (const target of ['aws', 'localstack', 'emulator'] as const) {
      const a = resolveInitOptions({ target }, target === 'emulator' ? emulatorEnv : {});
      assert.equal(a.maxConcurrency, optionTable.init.maxConcurrency.byTarget[target]);
      assert.equal(a.aws!.stackName, optionTable.aws.stackName.byTarget[target]);
      for (const k of ['keyPrefix', 'throttleBaseDelayMs', 'throttleMaxDelayMs', 'throttleGiveUpMs', 'invokeGraceMs'] as const) {
        assert.equal(a.aws![k], optionTable.aws[k].default, k);
      }
      assert.equal(a.aws!.multipartThresholdBytes, optionTable.aws.multipartThresholdBytes.byTarget![target]);
    }
  });

  it('reads the environment variable each row names, and an option given beats it', () => {
    assert.equal(resolveInitOptions(undefined, { [optionTable.init.target.env]: 'emulator', ...emulatorEnv }).target, 'emulator');
    const env = { [optionTable.aws.functionName.env]: 'fn-env', [optionTable.aws.bucket.env]: 'bucket-env', [optionTable.aws.stackName.env]: 'stack-env', [optionTable.aws.region.env]: 'eu-west-1' };
    const a = resolveInitOptions({ target: 'aws' }, env).aws!;
    assert.deepEqual([a.functionName, a.bucket, a.stackName, a.region], ['fn-env', 'bucket-env', 'stack-env', 'eu-west-1']);
    assert.equal(resolveInitOptions({ target: 'aws', aws: { bucket: 'given' } }, env).aws!.bucket, 'given');
    const w = readWorkerEnv({ VOLLEY_BUCKET: 'b' });
    assert.equal(w.multipartThresholdBytes, optionTable.aws.multipartThresholdBytes.default);
    assert.equal(readWorkerEnv({ VOLLEY_BUCKET: 'b', [optionTable.aws.multipartThresholdBytes.env]: String(8 * 1024 * 1024) }).multipartThresholdBytes, 8 * 1024 * 1024);
  });

  it("checks each value with its row's check, naming the option", () => {
    assert.throws(() => resolveInitOptions({ taskTimeoutMs: 0 }, {}), /init\(\{ taskTimeoutMs \}\) must be a number >= 1/);
    assert.throws(() => resolveInitOptions({ local: { maxWorkers: 1.5 } }, {}), /init\(\{ local: \{ maxWorkers \} \}\) must be an integer >= 1/);
    assert.throws(() => resolveInitOptions({ target: 'aws', aws: { multipartThresholdBytes: 1024 } }, {}), /multipartThresholdBytes \} \}\) must be an integer >= 5242880/);
    assert.throws(() => resolveInitOptions({ target: 'mars' as never }, {}), /valid targets are: local, aws, localstack, emulator/);
    assert.throws(() => resolveTaskOptionsInput('remote()', { memoryMB: 64 }), /remote\(\): memoryMB must be an integer from 128 to 10240/);
  });

  it('documents every row', () => {
    for (const [group, rows] of Object.entries(optionTable)) {
      for (const [key, row] of Object.entries(rows)) assert.ok(row.doc.length > 10, `${group}.${key} has no doc`);
    }
  });
});
