/**
 * Task envelopes: built in one place, and fitted to the payload limit their backend declares.
 *
 * An envelope carries small values inline (the arguments and the values of ref arguments). Many
 * small values together can outgrow what one invocation may carry (Lambda: 6 MB of JSON, bytes
 * as base64), so the largest inline values are moved to the store and passed by key until the
 * rest fits. The caller says where a moved value goes (`Place`), so it can reuse a value
 * already moved for another task and free it with the object it belongs to.
 */
import { PROTOCOL_VERSION, type Payload, type TaskEnvelope } from './protocol.js';

/**
 * Lambda's limit for a synchronous invocation's request payload. A backend without a limit of
 * its own declares this one too, so a program that runs on the embedded runtime fits on Lambda.
 */
export const DEFAULT_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/**
 * Most inline bytes one envelope carries under a payload limit: half of it, since bytes travel
 * as base64 (4 characters per 3 bytes) and the rest of the envelope (ids, keys) needs room too.
 */
export function inlineBudget(payloadLimitBytes: number): number {
  return Math.floor(payloadLimitBytes / 2);
}

/** Moves one inline value to the store; `dep` is the ref id, or undefined for the argument list. */
export type Place = (dep: string | undefined, bytes: Uint8Array) => Promise<Payload>;

export interface EnvelopeParts {
  job: string;
  taskId: string;
  fn: string;
  module: string | undefined;
  args: Payload;
  deps: Record<string, Payload>;
  resultKey: string;
  inlineLimit: number;
  /** Nesting depth of the task (0 for the program's own tasks, left out of the envelope). */
  depth?: number;
  /** Which run of the task this is (1 for the first, which the envelope leaves out). */
  attempt: number;
}

/** The one constructor of task envelopes. */
export function buildEnvelope(p: EnvelopeParts): TaskEnvelope {
  const env: TaskEnvelope = {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: p.job,
    taskId: p.taskId,
    fn: p.fn,
    args: p.args,
    deps: p.deps,
    resultKey: p.resultKey,
    inlineLimit: p.inlineLimit,
  };
  if (p.module !== undefined) env.module = p.module;
  if (p.depth) env.depth = p.depth;
  if (p.attempt > 1) env.attempt = p.attempt;
  return env;
}

/** Bytes an envelope carries inline. */
export function inlineBytes(env: TaskEnvelope): number {
  let n = env.args.kind === 'inline' ? env.args.bytes.byteLength : 0;
  for (const id in env.deps) {
    const p = env.deps[id]!;
    if (p.kind === 'inline') n += p.bytes.byteLength;
  }
  return n;
}

/**
 * The envelope with at most `budget` inline bytes: the largest inline values are placed in
 * the store (in parallel) until the rest fits. Returns `env` itself when it already fits.
 */
export async function fitEnvelope(env: TaskEnvelope, budget: number, place: Place): Promise<TaskEnvelope> {
  let inline = inlineBytes(env);
  if (inline <= budget) return env;
  const out: TaskEnvelope = { ...env, deps: { ...env.deps } };
  const items: Array<{ dep: string | undefined; bytes: Uint8Array }> = [];
  if (env.args.kind === 'inline') items.push({ dep: undefined, bytes: env.args.bytes });
  for (const id in env.deps) {
    const p = env.deps[id]!;
    if (p.kind === 'inline') items.push({ dep: id, bytes: p.bytes });
  }
  items.sort((a, b) => b.bytes.byteLength - a.bytes.byteLength);
  const waits: Promise<void>[] = [];
  for (const { dep, bytes } of items) {
    if (inline <= budget) break;
    inline -= bytes.byteLength;
    waits.push(
      place(dep, bytes).then((p) => {
        if (dep === undefined) out.args = p;
        else out.deps[dep] = p;
      }),
    );
  }
  await Promise.all(waits);
  return out;
}
