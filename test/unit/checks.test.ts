/** The argument checks of get(), wait() and cancel(): what is refused, with what message, and the defaults. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from 'volley';
import { checkCancelOptions, checkGetOptions, checkRefArray, checkTimeout, checkWaitArgs, checkWaitKeys } from '../../sdk/checks.js';
import type { ObjectRef } from '../../sdk/ref.js';

/** wait() reads only a ref's id here. */
const refs = (...ids: string[]) => ids.map((id) => ({ id }) as ObjectRef<unknown>);
const usage = (re: RegExp) => (err: unknown) => err instanceof UsageError && re.test(err.message);

describe('get/wait/cancel argument checks', () => {
  it('refuses a single ref where an array is expected, saying how to wrap it', () => {
    assert.throws(() => checkRefArray('get()', { id: 'a' }), usage(/^get\(\) takes an array of refs, got object; wrap a single ref: get\(\[ref\]\)$/));
    assert.throws(() => checkRefArray('wait()', null), usage(/^wait\(\) takes an array of refs, got null; wrap a single ref: wait\(\[ref\]\)$/));
    assert.throws(() => checkRefArray('get()', 'r'), usage(/got string/));
    assert.doesNotThrow(() => checkRefArray('get()', []));
  });

  it('takes a timeout >= 0, and undefined or Infinity for none', () => {
    assert.equal(checkTimeout('get()', undefined), undefined);
    assert.equal(checkTimeout('get()', Infinity), undefined);
    assert.equal(checkTimeout('get()', 0), 0);
    assert.equal(checkTimeout('get()', 250), 250);
    for (const bad of [-1, -0.5, Number.NaN, '10', null, -Infinity]) {
      assert.throws(() => checkTimeout('get()', bad), usage(/^get\(\): timeoutMs must be a number >= 0 \(or omitted to wait forever\), got /), String(bad));
    }
    assert.throws(() => checkTimeout('wait()', -5), usage(/^wait\(\): timeoutMs .* got -5$/));
  });

  it("checks get()'s options: its timeout and no unknown keys", () => {
    assert.equal(checkGetOptions(undefined), undefined);
    assert.equal(checkGetOptions({}), undefined);
    assert.equal(checkGetOptions({ timeoutMs: 30 }), 30);
    assert.throws(() => checkGetOptions({ timeoutMs: -1 }), usage(/^get\(\): timeoutMs must be/));
    assert.throws(() => checkGetOptions({ timeout: 5 } as never), usage(/^get\(\) got unknown option\(s\) "timeout"; valid options are: timeoutMs$/));
  });

  it("checks wait()'s option keys", () => {
    assert.doesNotThrow(() => checkWaitKeys(undefined));
    assert.doesNotThrow(() => checkWaitKeys({ numReturns: 1, timeoutMs: 1 }));
    assert.throws(() => checkWaitKeys({ num_returns: 1 } as never), usage(/^wait\(\) got unknown option\(s\) "num_returns"/));
  });

  it('wait() waits for one ref by default (none of none), at most all of them, and refuses a ref given twice', () => {
    assert.deepEqual(checkWaitArgs(refs('a', 'b', 'c'), undefined), { numReturns: 1, timeoutMs: undefined });
    assert.deepEqual(checkWaitArgs(refs(), undefined), { numReturns: 0, timeoutMs: undefined });
    assert.deepEqual(checkWaitArgs(refs(), { numReturns: 0 }), { numReturns: 0, timeoutMs: undefined });
    assert.deepEqual(checkWaitArgs(refs('a', 'b', 'c'), { numReturns: 3, timeoutMs: 7 }), { numReturns: 3, timeoutMs: 7 });
    assert.deepEqual(checkWaitArgs(refs('a', 'b'), { numReturns: 1 }), { numReturns: 1, timeoutMs: undefined });
    for (const n of [0, 4, 1.5, -1, Number.NaN]) {
      assert.throws(() => checkWaitArgs(refs('a', 'b', 'c'), { numReturns: n }), usage(/^wait\(\): numReturns must be an integer from 1 to the number of refs \(3\), got /), String(n));
    }
    assert.throws(() => checkWaitArgs(refs(), { numReturns: 1 }), usage(/numReturns must be .* \(0\), got 1$/));
    assert.throws(() => checkWaitArgs(refs('a', 'b', 'a'), undefined), usage(/^wait\(\) got the same ref a twice \(positions 0 and 2\); pass each ref once$/));
    assert.throws(() => checkWaitArgs(refs('a'), { timeoutMs: -1 }), usage(/^wait\(\): timeoutMs must be/));
  });

  it('cancel() is not forced and recursive by default, and takes only booleans', () => {
    assert.deepEqual(checkCancelOptions(undefined), { force: false, recursive: true });
    assert.deepEqual(checkCancelOptions({}), { force: false, recursive: true });
    assert.deepEqual(checkCancelOptions({ force: true, recursive: false }), { force: true, recursive: false });
    assert.throws(() => checkCancelOptions({ force: 'yes' } as never), usage(/^cancel\(\): force must be true or false, got yes$/));
    assert.throws(() => checkCancelOptions({ recursive: 0 } as never), usage(/^cancel\(\): recursive must be true or false, got 0$/));
    assert.throws(() => checkCancelOptions({ deep: true } as never), usage(/^cancel\(\) got unknown option\(s\) "deep"; valid options are: force, recursive$/));
  });
});
