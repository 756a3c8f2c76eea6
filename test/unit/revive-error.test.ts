/**
 * A store error that crosses from a worker keeps which key it was about: an error result (or a
 * worker thread's answer to a wait) carries the key, and `reviveError` puts it back on the
 * ObjectStoreError or ObjectLostError it rebuilds (and a lost ref's id on the ObjectLostError),
 * as the wire carries it (JSON, validated).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObjectLostError, ObjectStoreError, TaskError } from 'volley';
import { reviveError, toRemoteErrorInfo } from '../../sdk/errors.js';
import { errorResult, fromWire, toWire, validateResultEnvelope } from '../../sdk/protocol.js';

/** An error as a worker's error result carries it to the driver: encoded, parsed, validated. */
function overTheWire(err: Error) {
  const res = validateResultEnvelope(fromWire(JSON.parse(JSON.stringify(toWire(errorResult('t1', err, 'infrastructure'))))));
  assert.equal(res.kind, 'error');
  return res.kind === 'error' ? res.error : assert.fail('not an error result');
}

describe("reviveError keeps a store error's key", () => {
  it('an ObjectStoreError and an ObjectLostError come back with their class, code and key', () => {
    const missing = reviveError(overTheWire(new ObjectStoreError('object volley/jobs/j/r/o1 is not there', 'volley/jobs/j/r/o1', undefined, 'OBJECT_MISSING')));
    assert.ok(missing instanceof ObjectStoreError);
    assert.equal(missing.code, 'OBJECT_MISSING');
    assert.equal(missing.key, 'volley/jobs/j/r/o1');

    const lost = reviveError(overTheWire(new ObjectLostError('o2', 'volley/jobs/j/r/o2', 'it was stored by put()')));
    assert.ok(lost instanceof ObjectLostError && lost instanceof ObjectStoreError);
    assert.equal(lost.code, 'OBJECT_LOST');
    assert.equal(lost.key, 'volley/jobs/j/r/o2');
    assert.equal(lost.objectId, 'o2');
    assert.match(lost.message, /object o2 is lost/);

    const transient = reviveError(toRemoteErrorInfo(new ObjectStoreError('store is down', 'volley/jobs/j/r/o3', { retryable: true })));
    assert.ok(transient instanceof ObjectStoreError);
    assert.deepEqual([transient.key, transient.retryable], ['volley/jobs/j/r/o3', true]);
  });

  it("as the cause of a task's failure, the store error names its key", () => {
    const thrown = new Error('could not load the model', { cause: new ObjectStoreError('object k is not there', 'volley/jobs/j/r/model', undefined, 'OBJECT_MISSING') });
    const err = TaskError.fromRemote('train', 't1', overTheWire(thrown), 'user');
    const cause = err.cause;
    assert.ok(cause instanceof ObjectStoreError, String(cause));
    assert.equal(cause.key, 'volley/jobs/j/r/model');
  });

  it('other errors get no key', () => {
    const other = reviveError(overTheWire(new TypeError('bad')));
    assert.equal(Object.hasOwn(other, 'key'), false);
  });
});
