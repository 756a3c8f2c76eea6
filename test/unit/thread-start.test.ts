/**
 * On Lambda a task runs on a task thread, which a cold sandbox is still starting (loading the
 * bundle) when the first task arrives. The task's timeout counts from when the task starts on
 * the thread, for a task sent alone as for a batch: the thread's start is not the task's time.
 * The thread here is held before it serves until the task's timeout has passed since the task
 * was handed over; the task then runs, and answers its value.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { Runtime } from 'volley';
import type { Backend, Invoker } from '../../sdk/backend.js';
import { createHandler } from '../../sdk/aws/handler.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import { PROTOCOL_VERSION, fromWire, toWire, validateResultEnvelope } from '../../sdk/protocol.js';
import { inc } from '../fixtures/tasks.js';
import { slowThreadGate } from '../fixtures/slow-task-thread.js';

const gate = slowThreadGate();
rmSync(gate, { force: true });
after(() => rmSync(gate, { force: true }));

describe('a task sent alone to a task thread that is still starting', () => {
  it('gets its whole timeout from its start, not from when it was handed to the thread', async () => {
    // The task thread reads its environment from the process's (a copy made when it starts).
    Object.assign(process.env, { VOLLEY_SLOW_THREAD: '1', VOLLEY_BUCKET: 'volley-thread-start' });
    const handler = createHandler({ VOLLEY_BUCKET: 'volley-thread-start' }, { taskThread: new URL('../fixtures/slow-task-thread.js', import.meta.url) });
    const timeoutMs = 2000;
    const invoker: Invoker = {
      async invoke(env, o) {
        const event = JSON.parse(JSON.stringify({ v: PROTOCOL_VERSION, kind: 'invoke', task: toWire(env), timeoutMs: Math.ceil(o.timeoutMs), memoryMB: o.memoryMB }));
        const answer = handler(event);
        // The handler has handed the task to the thread (and set its clock) before it returned:
        // the thread starts serving once the task's timeout has passed since then.
        setTimeout(() => writeFileSync(gate, ''), timeoutMs + 300);
        const { logs: _logs, ...wire } = JSON.parse(JSON.stringify(await answer)) as Record<string, unknown>;
        return validateResultEnvelope(fromWire(wire));
      },
      async close() {},
    };
    const backend: Backend = { name: 'in-process-lambda', invoker, store: new MemoryStore(), maxConcurrency: 1, keyPrefix: 'volley/' };
    const rt = new Runtime({}, { backend });
    try {
      assert.equal(await rt.get(rt.remote(inc.options({ timeoutMs, maxRetries: 0 }), 41)), 42);
    } finally {
      await rt.shutdown();
      delete process.env.VOLLEY_SLOW_THREAD;
    }
  });
});
