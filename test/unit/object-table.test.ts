/**
 * The driver's object table on its own: when an entry is freed (and its stored bytes deleted),
 * that a settled entry stays settled, and how waiting on entries ends.
 */
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { FAILED, ObjectTable, PENDING, READY } from '../../sdk/object-table.js';
import type { Payload } from '../../sdk/protocol.js';

const stored = (key: string): Payload => ({ kind: 'stored', key, size: 10 });
const inline: Payload = { kind: 'inline', bytes: new Uint8Array(3) };

function table() {
  const deleted: string[][] = [];
  const t = new ObjectTable<string>((keys) => {
    const batch: string[] = [];
    deleted.push(batch);
    for (const k of keys) void k.then((key) => batch.push(key));
  });
  return { t, deleted, flush: () => new Promise<void>((r) => setImmediate(r)) };
}

describe('ObjectTable', () => {
  it('frees an entry only once it is dropped, unused and settled, and deletes its stored bytes once', async () => {
    const { t, deleted, flush } = table();
    const e = t.add('a');
    e.uses = 1;
    e.dropped = true;
    t.maybeFree(e);
    assert.equal(t.has('a'), true, 'pending');
    t.markReady(e, stored('k/a'));
    t.maybeFree(e);
    assert.equal(t.has('a'), true, 'still used by a task');
    e.dropped = false;
    e.uses = 0;
    t.maybeFree(e);
    assert.equal(t.has('a'), true, 'the program still holds its ref');
    e.dropped = true;
    t.maybeFree(e);
    assert.equal(t.has('a'), false);
    t.maybeFree(e);
    await flush();
    assert.deepEqual(deleted, [['k/a']], 'deleted once, though asked twice');
  });

  it('keeps the entry of a task whose ref was dropped while it still runs, and frees it once the result is in', async () => {
    const { t, deleted, flush } = table();
    const e = t.add('running');
    e.dropped = true;
    t.maybeFree(e);
    assert.equal(t.has('running'), true, 'its result has yet to arrive');
    t.markReady(e, stored('k/running'));
    t.maybeFree(e);
    assert.equal(t.has('running'), false);
    await flush();
    assert.deepEqual(deleted, [['k/running']]);
  });

  it('a freed entry releases the refs its value held, which are freed in turn', async () => {
    const { t, deleted, flush } = table();
    const inner = t.add('inner');
    t.markReady(inner, stored('k/inner'));
    inner.uses = 1; // held by the outer object's value
    inner.dropped = true;
    t.maybeFree(inner);
    assert.equal(t.has('inner'), true);
    const outer = t.add('outer');
    outer.contains = ['inner'];
    t.markReady(outer, inline);
    outer.dropped = true;
    t.maybeFree(outer);
    await flush();
    assert.equal(t.has('outer'), false);
    assert.equal(t.has('inner'), false);
    assert.deepEqual(deleted, [['k/inner']], 'only the stored object has bytes to delete; the inline one asks for no delete');
  });

  it("deletes a freed entry's spilled copy as well as its stored bytes", async () => {
    const { t, deleted, flush } = table();
    const e = t.add('s');
    t.markReady(e, inline);
    e.spilled = Promise.resolve(stored('k/s-spilled'));
    e.dropped = true;
    t.maybeFree(e);
    await flush();
    assert.deepEqual(deleted, [['k/s-spilled']]);
  });

  it('puts a freed entry back with readd', () => {
    const { t } = table();
    const e = t.add('r');
    t.markReady(e, inline);
    e.dropped = true;
    t.maybeFree(e);
    assert.equal(t.get('r'), undefined);
    t.readd(e);
    assert.equal(t.get('r'), e);
  });

  it('settles an entry once: a later markReady or markFailed changes nothing and wakes no one', () => {
    const { t } = table();
    const a = t.add('a');
    a.dependents = ['task-1'];
    assert.deepEqual(t.markFailed(a, new Error('lost')), ['task-1']);
    a.dependents = ['task-2'];
    assert.equal(t.markReady(a, inline), undefined);
    assert.equal(a.state, FAILED);
    assert.equal(a.payload, undefined);
    assert.equal(a.error?.message, 'lost');
    assert.deepEqual(a.dependents, ['task-2'], 'not handed out again');

    const b = t.add('b');
    assert.equal(t.markReady(b, stored('k/b')), undefined, 'nothing waited');
    assert.equal(t.markFailed(b, new Error('late')), undefined);
    assert.equal(b.state, READY);
    assert.equal(b.error, undefined);
    assert.equal(t.markFailed(t.add('c'), new Error('x'))?.length, 0, 'a failure with no dependents returns an empty list');
    assert.equal(t.get('c')?.state, FAILED);
    assert.equal(t.add('d').state, PENDING);
  });

  it('a timeout of 0 reports the entries as they are at the call, even if one settles before the caller looks', async () => {
    const { t } = table();
    const e = t.add('p');
    const polled = t.settled([e], 1, 0);
    t.markReady(e, inline);
    assert.equal(await polled, false);
    assert.equal(await t.settled([e], 1, 0), true);
  });

  it('waiting ends true once n entries settle, or false at its timeout, and stops listening either way', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { t } = table();
      const [a, b, c] = [t.add('a'), t.add('b'), t.add('c')];
      t.markReady(c, inline);
      const two = t.settled([a, b, c], 2, undefined);
      t.markFailed(a, new Error('x'));
      assert.equal(await two, true, 'c was settled already; a makes two');
      assert.equal(b.listeners?.size ?? 0, 0, 'no listener left on b');

      let timedOut: boolean | undefined;
      const late = t.settled([b], 1, 1000).then((ok) => {
        timedOut = !ok;
      });
      mock.timers.tick(999);
      await Promise.resolve();
      assert.equal(timedOut, undefined, 'not before its timeout');
      mock.timers.tick(1);
      await late;
      assert.equal(timedOut, true);
      assert.equal(b.listeners?.size ?? 0, 0);
      assert.equal(b.state, PENDING);
    } finally {
      mock.timers.reset();
    }
  });
});
