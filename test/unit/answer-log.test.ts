/**
 * The answer log a Lambda task thread shares with its handler (sdk/aws/answer-log.ts): the
 * answers of a batch's finished tasks, readable by the handler whatever happens to the thread
 * after, and which task runs since when.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ProtocolError } from 'volley';
import { AnswerLogReader, AnswerLogWriter, answerLogBytes } from '../../sdk/aws/answer-log.js';
import { PROTOCOL_VERSION } from '../../sdk/protocol.js';

const answer = (taskId: string, extra: Record<string, unknown> = {}) => ({
  v: PROTOCOL_VERSION,
  kind: 'value',
  taskId,
  bytes: { $b64: 'Sm51bGw=' },
  timing: { fetchMs: 0.25, runMs: 1.5, storeMs: 0 },
  ...extra,
});

describe('the answer log of a batch', () => {
  it('gives the handler each finished task’s answer by position, unchanged, and none for a task not started', () => {
    const buffer = new SharedArrayBuffer(answerLogBytes(4096, 3));
    const reader = new AnswerLogReader(buffer);
    const writer = new AnswerLogWriter(buffer);
    const a = answer('t0');
    const c = { v: PROTOCOL_VERSION, kind: 'error', taskId: 't2', fault: 'user', error: { name: 'Error', message: 'ünïcödé ✓ 𝄞 "quoted"\n' }, timing: { fetchMs: 0, runMs: 0, storeMs: 0 } };
    assert.ok(writer.append(0, JSON.stringify(a)) > 0);
    assert.deepEqual(reader.answers(3), [[0, a]]);
    // Task 1 was not started: it has no record.
    assert.ok(writer.append(2, JSON.stringify(c)) > 0);
    assert.deepEqual(reader.answers(3), [
      [0, a],
      [2, c],
    ]);
  });

  it('tells which task runs since when, and that none runs between tasks', () => {
    const buffer = new SharedArrayBuffer(answerLogBytes(1024, 2));
    const reader = new AnswerLogReader(buffer);
    const writer = new AnswerLogWriter(buffer);
    assert.equal(reader.running(), undefined);
    writer.start(1, 1_795_000_000_123.5);
    assert.deepEqual(reader.running(), { pos: 1, since: 1_795_000_000_123.5 });
    writer.idle();
    assert.equal(reader.running(), undefined);
  });

  it('refuses an answer it has no room for, keeping the ones before and taking smaller ones after', () => {
    const small = JSON.stringify(answer('t0'));
    const buffer = new SharedArrayBuffer(answerLogBytes(2 * small.length, 3));
    const reader = new AnswerLogReader(buffer);
    const writer = new AnswerLogWriter(buffer);
    assert.equal(writer.append(0, small), small.length);
    assert.equal(writer.append(1, JSON.stringify(answer('t1', { pad: 'x'.repeat(4 * small.length) }))), -1);
    // Characters beyond ASCII take more bytes than characters: counted in bytes.
    assert.equal(writer.append(1, JSON.stringify(answer('t1', { pad: '✓'.repeat(small.length) }))), -1);
    assert.equal(writer.append(2, small), small.length);
    assert.deepEqual(
      reader.answers(3).map(([pos]) => pos),
      [0, 2],
    );
  });

  it('starts empty for each batch: a reader made for the next batch sees none of the last one’s answers', () => {
    const buffer = new SharedArrayBuffer(answerLogBytes(4096, 2));
    new AnswerLogReader(buffer);
    const first = new AnswerLogWriter(buffer);
    first.append(0, JSON.stringify(answer('old0')));
    first.append(1, JSON.stringify(answer('old1')));
    first.start(1, 5);
    const reader = new AnswerLogReader(buffer);
    assert.equal(reader.running(), undefined);
    assert.deepEqual(reader.answers(2), []);
    new AnswerLogWriter(buffer).append(1, JSON.stringify(answer('new1')));
    assert.deepEqual(reader.answers(2), [[1, answer('new1')]]);
  });

  it('reads nothing outside the buffer or the batch: a record with a bad position or length is a ProtocolError', () => {
    const buffer = new SharedArrayBuffer(answerLogBytes(256, 2));
    const reader = new AnswerLogReader(buffer);
    new AnswerLogWriter(buffer).append(0, JSON.stringify(answer('t0')));
    const view = new DataView(buffer);
    view.setInt32(16 + 4, buffer.byteLength, true);
    assert.throws(() => reader.answers(2), ProtocolError);
    view.setInt32(16 + 4, 8, true);
    view.setInt32(16, 5, true);
    assert.throws(() => reader.answers(2), /position 5 of 2 tasks/);
  });

  it('keeps the answers a thread wrote before it died mid-task, and shows the task it was running', async () => {
    const buffer = new SharedArrayBuffer(answerLogBytes(4096, 3));
    const reader = new AnswerLogReader(buffer);
    const url = new URL('../../sdk/aws/answer-log.js', import.meta.url).href;
    // The thread answers two tasks, starts the third and exits in it, posting nothing.
    const code = `
      import('${url}').then(({ AnswerLogWriter }) => {
        const { workerData } = require('node:worker_threads');
        const w = new AnswerLogWriter(workerData);
        for (const k of [0, 1]) { w.start(k, Date.now()); w.append(k, JSON.stringify({ taskId: 't' + k })); w.idle(); }
        w.start(2, Date.now());
        process.exit(3);
      });`;
    const worker = new Worker(code, { eval: true, workerData: buffer });
    const exitCode = await new Promise<number>((resolve) => worker.once('exit', resolve));
    assert.equal(exitCode, 3);
    assert.deepEqual(reader.answers(3), [
      [0, { taskId: 't0' }],
      [1, { taskId: 't1' }],
    ]);
    assert.equal(reader.running()?.pos, 2);
  });
});
