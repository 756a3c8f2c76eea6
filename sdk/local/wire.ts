/**
 * How batches of task envelopes (pool → worker) and of results (worker → pool) cross the
 * thread boundary: packed, because structured clone spends most of its time per object and per
 * ArrayBuffer, not per byte. A batch of 32 tiny tasks sent as envelopes is ~32 x 4 objects and
 * ~32 x 2 ArrayBuffers to serialize, allocate on the other side and collect; packed, it is one
 * flat array of strings and numbers plus one ArrayBuffer holding every small payload, moved
 * (transferred) rather than copied. On a DAG of tiny tasks this was most of the driver's own
 * time per task (bench/driver-cost.ts).
 *
 * The layouts are private to the pool and its worker (same library, same process). What comes
 * out is an ordinary TaskEnvelope / ResultEnvelope: the worker still validates every envelope
 * (executeTask), and a payload that does not fit the layout is a ProtocolError here.
 *
 * Hand-written: no kept library packs these shapes (msgpack-style codecs encode the same
 * objects one by one, which is the cost being avoided).
 */
import { ProtocolError } from '../errors.js';
import { NO_DEPS, PROTOCOL_VERSION, type Payload, type ResultEnvelope, type TaskEnvelope, type Timing } from '../protocol.js';

/**
 * Payloads at most this large travel inside the batch's shared buffer; larger ones as their
 * own Uint8Array (their copy costs more than an ArrayBuffer's overhead, and a small object
 * kept by the driver must not keep a large neighbour's bytes alive: a view holds its whole buffer).
 */
export const PACK_MAX_BYTES = 1024;

/** One flat list of fields, and the small payloads' bytes in order. */
export interface Packed {
  f: Array<string | number | Uint8Array | ResultEnvelope>;
  bytes?: ArrayBuffer;
}

/** Collects small payloads into one buffer. */
class Bytes {
  private parts: Uint8Array[] = [];
  private total = 0;

  /** A payload's field: its length (it goes in the shared buffer), or the payload itself when large. */
  add(b: Uint8Array): number | Uint8Array {
    if (b.byteLength > PACK_MAX_BYTES) return b;
    this.parts.push(b);
    this.total += b.byteLength;
    return b.byteLength;
  }

  done(): ArrayBuffer | undefined {
    if (this.parts.length === 0) return undefined;
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out.buffer;
  }
}

/** Reads packed fields in order. */
class Reader {
  private i = 0;
  private at = 0;
  private readonly view: Uint8Array;

  constructor(
    private readonly p: Packed,
    what: string,
  ) {
    if (!Array.isArray(p?.f)) throw new ProtocolError(`${what}: not a packed batch`);
    this.view = p.bytes instanceof ArrayBuffer ? new Uint8Array(p.bytes) : new Uint8Array(0);
  }

  get more(): boolean {
    return this.i < this.p.f.length;
  }

  next(): unknown {
    if (this.i >= this.p.f.length) throw new ProtocolError('packed batch: fields end early');
    return this.p.f[this.i++];
  }

  str(): string {
    const v = this.next();
    if (typeof v !== 'string') throw new ProtocolError(`packed batch: expected a string, got ${typeof v}`);
    return v;
  }

  num(): number {
    const v = this.next();
    if (typeof v !== 'number') throw new ProtocolError(`packed batch: expected a number, got ${typeof v}`);
    return v;
  }

  /** A payload's bytes: the next `n` of the shared buffer, or a Uint8Array of its own. */
  bytes(v: unknown): Uint8Array {
    if (v instanceof Uint8Array) return v;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > this.view.length - this.at) throw new ProtocolError('packed batch: a payload outside its buffer');
    const b = this.view.subarray(this.at, this.at + v);
    this.at += v;
    return b;
  }

  /** A payload: inline (a length or bytes), or stored (its key, then its size). */
  payload(): Payload {
    const v = this.next();
    if (typeof v === 'string') return { kind: 'stored', key: v, size: this.num() };
    return { kind: 'inline', bytes: this.bytes(v) };
  }

  end(): void {
    if (this.at !== this.view.length) throw new ProtocolError('packed batch: bytes left after the last payload');
  }
}

function addPayload(f: Packed['f'], b: Bytes, p: Payload): void {
  if (p.kind === 'inline') f.push(b.add(p.bytes));
  else f.push(p.key, p.size);
}

/**
 * A task as the pool hands it to a worker: its envelope, and for a follower the ids of the
 * earlier tasks of the worker's queue whose results are its missing arguments (chaining, see
 * `InvokeOptions.after`).
 */
export interface ThreadTask {
  env: TaskEnvelope;
  after?: readonly string[];
}

/**
 * Tasks as one packed batch. Per task: taskId, fn, module (0: none), job, resultKey,
 * inlineLimit, depth (0: none), attempt (0: none), args, the number of deps, then each dep's
 * id and payload, then the number of `after` ids and the ids.
 */
export function packTasks(tasks: readonly ThreadTask[]): Packed {
  const f: Packed['f'] = [];
  const b = new Bytes();
  for (const t of tasks) {
    const e = t.env;
    f.push(e.taskId, e.fn, e.module ?? 0, e.job, e.resultKey, e.inlineLimit, e.depth ?? 0, e.attempt ?? 0);
    addPayload(f, b, e.args);
    const at = f.length;
    f.push(0);
    let n = 0;
    for (const id in e.deps) {
      f.push(id);
      addPayload(f, b, e.deps[id]!);
      n++;
    }
    f[at] = n;
    const after = t.after;
    f.push(after ? after.length : 0);
    if (after) for (const id of after) f.push(id);
  }
  const bytes = b.done();
  return bytes ? { f, bytes } : { f };
}

/** The tasks of a packed batch (their envelopes are validated later, by executeTask, as every envelope is). */
export function unpackTasks(p: Packed): ThreadTask[] {
  const r = new Reader(p, 'tasks');
  const out: ThreadTask[] = [];
  while (r.more) {
    const taskId = r.str();
    const fn = r.str();
    const module = r.next();
    const env: TaskEnvelope = { v: PROTOCOL_VERSION, kind: 'task', job: '', taskId, fn, args: undefined as never, deps: NO_DEPS as TaskEnvelope['deps'], resultKey: '', inlineLimit: 0 };
    if (module !== 0) env.module = module as string;
    env.job = r.str();
    env.resultKey = r.str();
    env.inlineLimit = r.num();
    const depth = r.num();
    const attempt = r.num();
    if (depth !== 0) env.depth = depth;
    if (attempt !== 0) env.attempt = attempt;
    env.args = r.payload();
    const n = r.num();
    // deps: keyed by ids from the wire, so no prototype (an id '__proto__' is only a key). A
    // task with none shares one empty object, unless it is a follower, whose worker fills them.
    if (n > 0) env.deps = Object.create(null) as TaskEnvelope['deps'];
    for (let i = 0; i < n; i++) {
      const id = r.str();
      env.deps[id] = r.payload();
    }
    const k = r.num();
    if (k > 0 && n === 0) env.deps = Object.create(null) as TaskEnvelope['deps'];
    if (k === 0) out.push({ env });
    else {
      const after: string[] = [];
      for (let i = 0; i < k; i++) after.push(r.str());
      out.push({ env, after });
    }
  }
  r.end();
  return out;
}

/** A worker's answer for a follower it did not start: a producer's result was not a value it could pass on. */
export interface NotStarted {
  kind: 'notStarted';
  taskId: string;
}

/**
 * Results as one packed batch. A value result without refs or worker (the common case) is
 * packed: taskId, fetchMs, runMs, storeMs, startedAt (-1: none), payload; a follower not
 * started is 0 and its task id; any other result travels as the object it is.
 */
export function packResults(results: ReadonlyArray<ResultEnvelope | NotStarted>): Packed {
  const f: Packed['f'] = [];
  const b = new Bytes();
  for (const r of results) {
    if (r.kind === 'notStarted') f.push(0, r.taskId);
    else if (r.kind === 'value' && r.refs === undefined && r.worker === undefined) {
      const t = r.timing;
      f.push(r.taskId, t.fetchMs, t.runMs, t.storeMs, t.startedAt ?? -1, b.add(r.bytes));
    } else f.push(r);
  }
  const bytes = b.done();
  return bytes ? { f, bytes } : { f };
}

/** The results of a packed batch. */
export function unpackResults(p: Packed): Array<ResultEnvelope | NotStarted> {
  const r = new Reader(p, 'results');
  const out: Array<ResultEnvelope | NotStarted> = [];
  while (r.more) {
    const v = r.next();
    if (v === 0) {
      out.push({ kind: 'notStarted', taskId: r.str() });
      continue;
    }
    if (typeof v !== 'string') {
      if (typeof v !== 'object' || v === null || v instanceof Uint8Array) throw new ProtocolError('packed batch: a result that is neither packed nor an envelope');
      out.push(v as ResultEnvelope);
      continue;
    }
    const fetchMs = r.num();
    const runMs = r.num();
    const storeMs = r.num();
    const startedAt = r.num();
    const timing: Timing = startedAt === -1 ? { fetchMs, runMs, storeMs } : { fetchMs, runMs, storeMs, startedAt };
    out.push({ v: PROTOCOL_VERSION, kind: 'value', taskId: v, timing, bytes: r.bytes(r.next()) });
  }
  r.end();
  return out;
}
