/**
 * A running task's session on the embedded runtime: its `.remote()`, `put`, `get` and `wait`
 * travel to the driver's orchestrator over the thread's message channel. The driver owns every
 * ref; the ids are made here (under the task's id), so `.remote()` returns at once, and a
 * problem the driver finds (an unknown ref, the depth limit) fails the new ref.
 */
import type { AwaitReply, AwaitRequest, ObjectStore } from '../backend.js';
import { checkCancelOptions, checkGetOptions, checkRefArray, checkWaitArgs, checkWaitKeys, type GetOptions, type WaitOptions, type WaitResult } from '../checks.js';
import { GetTimeoutError, TaskDepthError, UsageError, reviveError } from '../errors.js';
import type { TaskOptions } from '../options.js';
import { ACTOR_OP_TASK, type ActorOp, type ContainedRefs, type TaskEnvelope } from '../protocol.js';
import { ObjectRef } from '../ref.js';
import type { TaskDefinition } from '../registry.js';
import { encode, encodeArgs } from '../serialize.js';
import { childIdPrefix, decodeResolved, type TaskSession } from '../worker/nested.js';
import { allocateShared } from './memory-store.js';
import type { FromWorker } from './messages.js';

export interface ThreadLink {
  send(m: FromWorker): void;
  request(parent: string, req: AwaitRequest): Promise<AwaitReply>;
  store: ObjectStore;
  maxTaskDepth: number;
}

export class ThreadSession implements TaskSession {
  readonly jobId: string;
  private seq = 0;
  private ended = false;
  private readonly depth: number;

  constructor(
    private readonly env: TaskEnvelope,
    private readonly link: ThreadLink,
  ) {
    this.jobId = env.job;
    this.depth = (env.depth ?? 0) + 1;
  }

  submit(def: TaskDefinition, taskOptions: Readonly<TaskOptions>, args: unknown[]): ObjectRef<unknown> {
    this.checkOpen(`${def.name}.remote()`);
    if (this.depth > this.link.maxTaskDepth) throw new TaskDepthError(def.name, this.link.maxTaskDepth);
    if (typeof taskOptions.retryExceptions === 'function') {
      // The options travel to the driver as a thread message; a function cannot be copied there.
      throw new UsageError(
        `${def.name}.remote() inside a task on the embedded runtime cannot take retryExceptions as a function (it cannot cross the worker thread's channel to the driver): ` +
          "give the error names to retry (retryExceptions: ['MyError']) or true, or start this task from the driver",
      );
    }
    const deps = new Set<string>();
    const bytes = encodeArgs(
      args,
      (ref, path) => {
        this.checkOwn(`${def.name}.remote(): ${path}`, ref);
        deps.add(ref.id);
      },
      this.allocator,
    );
    const id = this.newId();
    this.link.send({ kind: 'submit', parent: this.env.taskId, task: { id, fn: def.name, module: def.module, options: { ...taskOptions }, args: bytes, deps: [...deps] } });
    return new ObjectRef(id, this);
  }

  /**
   * An actor operation (start, call, kill) of this task: it travels to the driver, whose actors
   * run it, as a submit of ACTOR_OP_TASK whose arguments are `[op, args]`; the ref is the call's.
   */
  actorOp(op: ActorOp, args: unknown[]): ObjectRef<unknown> {
    const what = op.op === 'call' ? `${op.method}.remote()` : op.op === 'start' ? `${op.cls}.remote()` : 'kill()';
    this.checkOpen(what);
    if (this.depth > this.link.maxTaskDepth) throw new TaskDepthError(what, this.link.maxTaskDepth);
    const deps = new Set<string>();
    const bytes = encodeArgs(
      [op, args],
      (ref, path) => {
        this.checkOwn(`${what}: ${path}`, ref);
        deps.add(ref.id);
      },
      this.allocator,
    );
    const id = this.newId();
    this.link.send({ kind: 'submit', parent: this.env.taskId, task: { id, fn: ACTOR_OP_TASK, options: {}, args: bytes, deps: [...deps] } });
    return new ObjectRef(id, this);
  }

  put<T>(value: T): ObjectRef<T> {
    this.checkOpen('put()');
    const bytes = encode(value, 'put(value)', this.allocator);
    const id = this.newId();
    this.link.send({ kind: 'object', parent: this.env.taskId, id, bytes });
    return new ObjectRef<T>(id, this);
  }

  /** Cancels a task this task started (see Runtime.cancel); the driver does it. */
  cancel(ref: ObjectRef<unknown>, options?: { force?: boolean; recursive?: boolean }): void {
    this.checkOwn('cancel()', ref);
    this.checkOpen('cancel()');
    const { force, recursive } = checkCancelOptions(options);
    this.link.send({ kind: 'cancel', parent: this.env.taskId, id: ref.id, force, recursive });
  }

  async get(refOrRefs: ObjectRef<unknown> | readonly ObjectRef<unknown>[], options?: GetOptions): Promise<unknown> {
    const single = !Array.isArray(refOrRefs);
    const refs = (single ? [refOrRefs] : refOrRefs) as readonly ObjectRef<unknown>[];
    const ids = this.idsOf('get()', refs);
    const timeoutMs = checkGetOptions(options);
    const reply = await this.await({ refs: ids, numReturns: ids.length, timeoutMs, payloads: true });
    const pending = ids.filter((_, i) => reply.states[i] === 0);
    if (pending.length > 0) throw new GetTimeoutError(timeoutMs!, pending);
    const failed = reply.states.indexOf(2);
    if (failed >= 0) throw reviveError(reply.errors![failed]!);
    const read = (key: string) => this.link.store.get(key);
    const values = await Promise.all(ids.map((_, i) => decodeResolved(reply.payloads![i]!, reply.contained?.[i], read, this)));
    return single ? values[0] : values;
  }

  async wait<T>(refs: readonly ObjectRef<T>[], options?: WaitOptions): Promise<WaitResult<T>> {
    checkRefArray('wait()', refs);
    checkWaitKeys(options);
    const ids = this.idsOf('wait()', refs);
    const { numReturns, timeoutMs } = checkWaitArgs(refs, options);
    const reply = await this.await({ refs: ids, numReturns, timeoutMs, payloads: false });
    const ready: ObjectRef<T>[] = [];
    const pending: ObjectRef<T>[] = [];
    refs.forEach((r, i) => (reply.states[i] !== 0 && ready.length < numReturns ? ready : pending).push(r));
    return { ready, pending };
  }

  async contained(ids: string[]): Promise<ContainedRefs> {
    const reply = await this.link.request(this.env.taskId, { refs: ids, numReturns: ids.length, payloads: true });
    const out: ContainedRefs = {};
    for (let i = 0; i < ids.length; i++) {
      if (reply.states[i] === 2) throw reviveError(reply.errors![i]!);
      out[ids[i]!] = reply.payloads![i]!;
      Object.assign(out, reply.contained?.[i]);
    }
    return out;
  }

  end(): void {
    this.ended = true;
  }

  // --- internals ---------------------------------------------------------------------------

  private await(req: AwaitRequest): Promise<AwaitReply> {
    this.checkOpen(req.payloads ? 'get()' : 'wait()');
    return this.link.request(this.env.taskId, req);
  }

  /** Large encodings go into shared memory, which reaches the driver's store without a copy. */
  private readonly allocator = (n: number): Uint8Array => (n > this.env.inlineLimit ? allocateShared(n) : new Uint8Array(n));

  /** `<taskId>.<n>`; a task's later runs (retries, rebuilds) use `<taskId>.r<attempt>.<n>`, so a re-run's children are new tasks. */
  private newId(): string {
    return `${childIdPrefix(this.env)}${(++this.seq).toString(36)}`;
  }

  private checkOpen(what: string): void {
    if (this.ended) {
      throw new UsageError(`${what} was called after the task ${this.env.fn} (${this.env.taskId}) that made these refs had returned: a task's refs are used while it runs, or returned in its result`);
    }
  }

  private checkOwn(where: string, r: unknown): void {
    if (!(r instanceof ObjectRef)) throw new UsageError(`${where} is not an ObjectRef (got ${r === null ? 'null' : typeof r}); pass refs returned by .remote() or put()`);
    if (r.owner !== (this as unknown)) {
      throw new UsageError(`${where}: ref ${r.id} was not made by this run of ${this.env.fn}; inside a task, use the refs the task made while it runs (its arguments arrive as values)`);
    }
  }

  private idsOf(where: string, refs: readonly unknown[]): string[] {
    return refs.map((r, i) => {
      this.checkOwn(`${where}: item ${i}`, r);
      return (r as ObjectRef<unknown>).id;
    });
  }
}
