/**
 * Entry point of an embedded-runtime worker thread: the local twin of the Lambda handler.
 * It runs one task at a time through the shared worker-side code; its object store is the
 * driver's MemoryStore, reached through store-channel.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { markWorker } from '../context.js';
import { executeTask } from '../worker/execute.js';
import { errorResult, type ResultEnvelope, type TaskEnvelope } from '../protocol.js';
import type { FromWorker, ToWorker } from './messages.js';
import { storeClient } from './store-channel.js';

markWorker();
const port = parentPort!;
/** Where this worker marks the position in its batch of the task it is running. */
const progress = (workerData as { progress: Int32Array }).progress;
/** Results are sent together at most this far apart, and at once after a slower task. */
const FLUSH_MS = 2;
const send = (m: FromWorker) => port.postMessage(m);

const { store, onReply } = storeClient(send);

const modules = new Map<string, Promise<unknown>>();
const loadModule = (url: string) => {
  let p = modules.get(url);
  if (!p) modules.set(url, (p = import(url)));
  return p;
};

/** Tasks received and not yet run; they run one at a time, in order. */
const queue: TaskEnvelope[] = [];
let running = false;
/** Sequence number of the next task this worker runs (the pool counts results the same way). */
let seq = 0;

/** Runs queued tasks one after another; see FLUSH_MS for when results go out. */
async function runQueue(): Promise<void> {
  running = true;
  let pending: ResultEnvelope[] = [];
  let lastFlush = performance.now();
  while (queue.length > 0) {
    const env = queue.shift()!;
    Atomics.store(progress, 0, seq++);
    const started = performance.now();
    let res: ResultEnvelope;
    try {
      res = await executeTask(env, { store, loadModule });
    } catch (err) {
      // Only a malformed envelope gets here; report it as the task's failure.
      res = errorResult(typeof env?.taskId === 'string' ? env.taskId : '?', err, 'infrastructure');
    }
    pending.push(res);
    const now = performance.now();
    if (queue.length === 0 || now - started >= FLUSH_MS / 2 || now - lastFlush >= FLUSH_MS) {
      send({ kind: 'results', results: pending });
      pending = [];
      lastFlush = now;
    }
  }
  running = false;
}

port.on('message', (m: ToWorker) => {
  switch (m.kind) {
    case 'tasks':
      queue.push(...m.envs);
      if (!running) void runQueue();
      break;
    case 'got':
    case 'stored':
      onReply(m);
      break;
  }
});

send({ kind: 'ready' });
