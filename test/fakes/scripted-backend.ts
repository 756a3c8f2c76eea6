/**
 * An in-process backend for unit tests of the orchestrator: every invocation runs the real
 * worker-side code (`executeTask`) against an in-memory store, and a script decides before each
 * one whether it fails and how (a throw from the script = the invoker rejects) or waits (a run
 * held until the test releases it). It stands in for Lambda and the embedded pool, whose own
 * behaviour is tested against real threads and emulators in the local and emulator tiers.
 *
 * With `chain`, it chains as the Lambda invoker and handler do (sdk/aws/lambda-invoker.ts,
 * handler.ts): the tasks handed over in one turn are one "invocation", run in order; a
 * follower (`InvokeOptions.after`) runs only if each of its producers went before it in that
 * invocation and answered a value holding no refs, with those answers as its arguments;
 * otherwise it is answered NOT_CHAINED. A producer whose script throws did not answer.
 *
 * What a test may read of it besides the runs (`invoked`): every task handed to the invoker
 * (`handed`: its envelope and the `after` list it came with, as the Lambda invoker receives
 * them), and with `chain` how many followers it answered NOT_CHAINED (`invocations.notChained`)
 * and the most tasks handed over and not yet answered at once (`invocations.peak`), which the
 * orchestrator bounds by `maxConcurrency` (times `tasksPerSlot`, which this invoker has not).
 * A script may also throw NOT_CHAINED for a follower: its worker did not start it, as the
 * Lambda invoker hands back a follower its batch answered `notStarted` (lambda-invoker.ts).
 * With `chain.batch`, a turn's tasks go in invocations of at most that many, run side by side
 * (the Lambda invoker's batch policy caps a batch); a follower whose producers are not all
 * before it in its own invocation is answered NOT_CHAINED at once, before any of them ran, as
 * the Lambda invoker's `chained` does.
 */
import { NOT_CHAINED, type Backend, type InvokeOptions } from '../../sdk/backend.js';
import { MemoryStore } from '../../sdk/local/memory-store.js';
import type { ResultEnvelope, TaskEnvelope } from '../../sdk/protocol.js';
import { executeTask } from '../../sdk/worker/execute.js';

export type Script = (env: TaskEnvelope, nth: number) => Promise<void> | void;

/** `script` runs before each invocation (nth counts per function, from 1); it may throw (the invoker rejects) or wait. */
export function scriptedBackend(script: Script = () => {}, payloadLimitBytes?: number, chain?: { chains: (fn: string) => boolean; batch?: number }) {
  const store = new MemoryStore();
  const invoked: Array<{ fn: string; attempt: number; taskId: string }> = [];
  const cancels: Array<[string, boolean]> = [];
  const perFn = new Map<string, number>();
  /** With `chain`: the tasks handed over this turn (one invocation), and how many invocations ran. */
  let turn: Array<{ env: TaskEnvelope; after?: readonly string[]; resolve: (r: ResultEnvelope) => void; reject: (e: unknown) => void }> | undefined;
  const invocations = { count: 0, followers: 0, notChained: 0, peak: 0 };
  const handed: Array<{ taskId: string; fn: string; after?: readonly string[]; env: TaskEnvelope }> = [];
  /** With `chain`: tasks handed over and not answered yet. */
  let out = 0;
  const runOne = async (env: TaskEnvelope): Promise<ResultEnvelope> => {
    const nth = (perFn.get(env.fn) ?? 0) + 1;
    perFn.set(env.fn, nth);
    invoked.push({ fn: env.fn, attempt: env.attempt ?? 1, taskId: env.taskId });
    await script(env, nth);
    return executeTask(structuredClone(env), { store, keyPrefix: 'volley/' });
  };
  const runTurn = async (tasks: NonNullable<typeof turn>) => {
    invocations.count++;
    const answers = new Map<string, ResultEnvelope>();
    for (const t of tasks) {
      let env = t.env;
      if (t.after) {
        const deps = { ...env.deps };
        for (const id of t.after) {
          const r = answers.get(id);
          if (r?.kind === 'value' && !r.refs) deps[id] = { kind: 'inline', bytes: r.bytes };
          else if (r?.kind === 'stored' && !r.refs) deps[id] = { kind: 'stored', key: r.key, size: r.size };
          else {
            out--;
            invocations.notChained++;
            t.reject(NOT_CHAINED);
            env = undefined as never;
            break;
          }
        }
        if (!env) continue;
        invocations.followers++;
        env = { ...env, deps };
      }
      try {
        const r = await runOne(env);
        answers.set(env.taskId, r);
        out--;
        t.resolve(r);
      } catch (err) {
        out--;
        t.reject(err);
      }
    }
  };
  /** With `chain.batch`: the followers of one invocation whose producers all go before them in it; the others are answered NOT_CHAINED. */
  const chained = (tasks: NonNullable<typeof turn>) => {
    const ids = new Set<string>();
    return tasks.filter((t) => {
      if (t.after && !t.after.every((id) => ids.has(id))) {
        out--;
        invocations.notChained++;
        t.reject(NOT_CHAINED);
        return false;
      }
      ids.add(t.env.taskId);
      return true;
    });
  };
  const backend: Backend = {
    name: 'scripted',
    keyPrefix: 'volley/',
    maxConcurrency: 100,
    payloadLimitBytes,
    store,
    invoker: {
      async invoke(env: TaskEnvelope, o: InvokeOptions): Promise<ResultEnvelope> {
        handed.push({ taskId: env.taskId, fn: env.fn, ...(o.after ? { after: o.after } : {}), env });
        if (!chain) return runOne(env);
        invocations.peak = Math.max(invocations.peak, ++out);
        return new Promise((resolve, reject) => {
          if (!turn) {
            const tasks = (turn = []);
            setImmediate(() => {
              turn = undefined;
              const size = chain.batch;
              if (size === undefined) void runTurn(tasks);
              else
                for (let i = 0; i < tasks.length; i += size) {
                  const kept = chained(tasks.slice(i, i + size));
                  if (kept.length > 0) void runTurn(kept);
                }
            });
          }
          turn.push({ env, after: o.after, resolve, reject });
        });
      },
      cancel(taskId: string, force: boolean) {
        cancels.push([taskId, force]);
        // A task not sent yet never starts (chaining: it waits for the turn's end).
        const i = turn?.findIndex((t) => t.env.taskId === taskId) ?? -1;
        if (i >= 0) out--;
        if (i >= 0) turn!.splice(i, 1)[0]!.reject(new Error(`cancelled before it started: ${taskId}`));
      },
      ...(chain ? { chains: chain.chains } : {}),
      async close() {},
    },
  };
  return { backend, store, invoked, handed, cancels, invocations, fns: () => invoked.map((i) => `${i.fn}#${i.attempt}`) };
}

/** Retry delays short enough for unit tests. */
export const fast = { retryBaseDelayMs: 1, retryMaxDelayMs: 2 };
/** Lets `n` event-loop turns pass (promise chains and setImmediate callbacks settle). */
export const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
