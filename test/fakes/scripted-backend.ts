/**
 * An in-process backend for unit tests of the orchestrator: every invocation runs the real
 * worker-side code (`executeTask`) against an in-memory store, and a script decides before each
 * one whether it fails and how (a throw from the script = the invoker rejects) or waits (a run
 * held until the test releases it). It stands in for Lambda and the embedded pool, whose own
 * behaviour is tested against real threads and emulators in the local and emulator tiers.
 */
import type { Backend, InvokeOptions } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';

export type Script = (env: TaskEnvelope, nth: number) => Promise<void> | void;

/** `script` runs before each invocation (nth counts per function, from 1); it may throw (the invoker rejects) or wait. */
export function scriptedBackend(script: Script = () => {}, payloadLimitBytes?: number) {
  const store = new MemoryStore();
  const invoked: Array<{ fn: string; attempt: number; taskId: string }> = [];
  const cancels: Array<[string, boolean]> = [];
  const perFn = new Map<string, number>();
  const backend: Backend = {
    name: 'scripted',
    keyPrefix: 'volley/',
    maxConcurrency: 100,
    payloadLimitBytes,
    store,
    invoker: {
      async invoke(env: TaskEnvelope, _o: InvokeOptions): Promise<ResultEnvelope> {
        const nth = (perFn.get(env.fn) ?? 0) + 1;
        perFn.set(env.fn, nth);
        invoked.push({ fn: env.fn, attempt: env.attempt ?? 1, taskId: env.taskId });
        await script(env, nth);
        return executeTask(structuredClone(env), { store, keyPrefix: 'volley/' });
      },
      cancel(taskId: string, force: boolean) {
        cancels.push([taskId, force]);
      },
      async close() {},
    },
  };
  return { backend, store, invoked, cancels, fns: () => invoked.map((i) => `${i.fn}#${i.attempt}`) };
}

/** Retry delays short enough for unit tests. */
export const fast = { retryBaseDelayMs: 1, retryMaxDelayMs: 2 };
/** Lets `n` event-loop turns pass (promise chains and setImmediate callbacks settle). */
export const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
