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
  readonly parts: Uint8Array[] = [];
  total = 0;

  /** A payload's field: its length (it goes in the shared buffer), or the payload itself when large. */
  add(b: Uint8Array): number | Uint8Array {
    if (b.byteLength > PACK_MAX_BYTES) return b;
    this.parts.push(b);
    this.total += b.byteLength;
    return b.byteLength;
  }
}

/**
 * A batch: each item's fields (`one`), then the small payloads in one buffer. The driver packs
 * every task it hands a worker, and the worker every result: the per-item code is kept small,
 * one function an item with its rarer parts in their own, and the loop in a function large
 * enough that V8 does not compile it (with all it would inline) in the first few thousand items.
 */
function packAll<T>(items: readonly T[], one: (f: Packed['f'], b: Bytes, item: T) => void): Packed {
  const f: Packed['f'] = [];
  const b = new Bytes();
  for (let i = 0; i < items.length; i++) one(f, b, items[i]!);
  const parts = b.parts;
  if (parts.length === 0) return { f };
  const out = new Uint8Array(b.total);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i]!, at);
    at += parts[i]!.byteLength;
  }
  return { f, bytes: out.buffer };
}

const NO_BYTES = new Uint8Array(0);

/** The items of a batch, read one by one (`one`); see `packAll`. */
function unpackAll<T, A>(p: Packed, what: string, one: (r: Reader, a: A) => T, a: A): T[] {
  if (!Array.isArray(p?.f)) throw new ProtocolError(`${what}: not a packed batch`);
  const r = new Reader(p.f, p.bytes instanceof ArrayBuffer ? new Uint8Array(p.bytes) : NO_BYTES);
  const out: T[] = [];
  const n = p.f.length;
  while (r.i < n) out.push(one(r, a));
  if (r.at !== r.view.length) throw new ProtocolError('packed batch: bytes left after the last payload');
  return out;
}

/**
 * Reads packed fields in order. The common records (a task, a packed value result) are read
 * with one check of all their fields; a record that fails it is read again field by field, which
 * says which field is wrong (the rare path).
 */
class Reader {
  i = 0;
  at = 0;

  constructor(
    readonly f: Packed['f'],
    readonly view: Uint8Array,
  ) {}

  next(): unknown {
    if (this.i >= this.f.length) throw new ProtocolError('packed batch: fields end early');
    return this.f[this.i++];
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

  /** A packed value result's timing: fetchMs, runMs, storeMs, startedAt (-1: none). */
  timing(): Timing {
    const f = this.f;
    const i = this.i;
    const fetchMs = f[i];
    const runMs = f[i + 1];
    const storeMs = f[i + 2];
    const startedAt = f[i + 3];
    // One check of the four (past the end, a field reads as undefined and fails it); field by field to say which does not fit.
    if (typeof fetchMs !== 'number' || typeof runMs !== 'number' || typeof storeMs !== 'number' || typeof startedAt !== 'number') return this.badFields(4);
    this.i = i + 4;
    return startedAt === -1 ? { fetchMs, runMs, storeMs } : { fetchMs, runMs, storeMs, startedAt };
  }

  /** Reads the next `n` numbers one by one, for the ProtocolError of the first that is not one. */
  private badFields(n: number): never {
    for (let k = 0; k < n; k++) this.num();
    throw new ProtocolError('packed batch: fields that do not fit the layout');
  }

  /** The next field as a payload's bytes: its length `n` (the next `n` bytes of the shared buffer), or a Uint8Array of its own. */
  inlineBytes(): Uint8Array {
    const v = this.next();
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= this.view.length - this.at) {
      const b = this.view.subarray(this.at, this.at + v);
      this.at += v;
      return b;
    }
    if (v instanceof Uint8Array) return v;
    throw new ProtocolError('packed batch: a payload outside its buffer');
  }

  /** A payload: inline (a length or bytes), or stored (its key, then its size). */
  payload(): Payload {
    const v = this.f[this.i];
    if (typeof v !== 'string') return { kind: 'inline', bytes: this.inlineBytes() };
    this.i++;
    return { kind: 'stored', key: v, size: this.num() };
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
 *
 * The driver packs every task it hands a worker, and the worker unpacks it: the per-task code
 * is kept small (one function a task, the rarer parts - deps, after - in their own) so that
 * compiling it does not cost more than it saves in a short run.
 */
export function packTasks(tasks: readonly ThreadTask[]): Packed {
  return packAll(tasks, packTask);
}

function packTask(f: Packed['f'], b: Bytes, t: ThreadTask): void {
  const e = t.env;
  packFixed(f, e);
  addPayload(f, b, e.args);
  if (e.deps === NO_DEPS) f.push(0);
  else packDeps(f, b, e.deps);
  if (t.after === undefined) f.push(0);
  else packAfter(f, t.after);
}

/** A task's fixed fields. (Apart from `packTask`: a small function per task stays interpreted in a short run, as one twice its size would not.) */
function packFixed(f: Packed['f'], e: TaskEnvelope): void {
  f.push(e.taskId, e.fn, e.module ?? 0, e.job, e.resultKey, e.inlineLimit, e.depth ?? 0, e.attempt ?? 0);
}

function packDeps(f: Packed['f'], b: Bytes, deps: TaskEnvelope['deps']): void {
  const at = f.length;
  f.push(0);
  let n = 0;
  for (const id in deps) {
    f.push(id);
    addPayload(f, b, deps[id]!);
    n++;
  }
  f[at] = n;
}

function packAfter(f: Packed['f'], after: readonly string[]): void {
  f.push(after.length);
  for (const id of after) f.push(id);
}

/** The tasks of a packed batch (their envelopes are validated later, by executeTask, as every envelope is). */
export function unpackTasks(p: Packed): ThreadTask[] {
  return unpackAll(p, 'tasks', unpackTask, undefined);
}

function unpackTask(r: Reader): ThreadTask {
  const f = r.f;
  const i = r.i;
  // One check of the fixed fields (past the end, a field reads as undefined and fails it).
  if (
    typeof f[i] !== 'string' ||
    typeof f[i + 1] !== 'string' ||
    typeof f[i + 3] !== 'string' ||
    typeof f[i + 4] !== 'string' ||
    typeof f[i + 5] !== 'number' ||
    typeof f[i + 6] !== 'number' ||
    typeof f[i + 7] !== 'number'
  )
    return unpackTaskByField(r);
  r.i = i + 8;
  return taskRest(r, taskEnvelope(f, i, r.payload()));
}

/** The envelope of the task whose fixed fields, checked, start at `i`. (Apart from `unpackTask`: see `packFixed`.) */
function taskEnvelope(f: Packed['f'], i: number, args: Payload): TaskEnvelope {
  const env: TaskEnvelope = {
    v: PROTOCOL_VERSION,
    kind: 'task',
    job: f[i + 3] as string,
    taskId: f[i] as string,
    fn: f[i + 1] as string,
    args,
    deps: NO_DEPS as TaskEnvelope['deps'],
    resultKey: f[i + 4] as string,
    inlineLimit: f[i + 5] as number,
  };
  const module = f[i + 2];
  const depth = f[i + 6] as number;
  const attempt = f[i + 7] as number;
  if (module !== 0) env.module = module as string;
  if (depth !== 0) env.depth = depth;
  if (attempt !== 0) env.attempt = attempt;
  return env;
}

/**
 * A task whose fixed fields do not fit the layout (see `unpackTask`): they are read one by one,
 * and the first that does not fit is the ProtocolError.
 */
function unpackTaskByField(r: Reader): ThreadTask {
  const i = r.i;
  r.str();
  r.str();
  r.next();
  r.str();
  r.str();
  r.num();
  r.num();
  r.num();
  return taskRest(r, taskEnvelope(r.f, i, r.payload()));
}

/** A task's deps and `after` ids. */
function taskRest(r: Reader, env: TaskEnvelope): ThreadTask {
  const n = r.num();
  if (n > 0) unpackDeps(r, env, n);
  const k = r.num();
  if (k === 0) return { env };
  // A follower's worker fills its deps: it gets an object of its own.
  if (n === 0) env.deps = Object.create(null) as TaskEnvelope['deps'];
  const after: string[] = [];
  for (let i = 0; i < k; i++) after.push(r.str());
  return { env, after };
}

/**
 * deps: keyed by ids from the wire, so no prototype (an id '__proto__' is only a key). A task
 * with none shares one empty object, unless it is a follower, whose worker fills them.
 */
function unpackDeps(r: Reader, env: TaskEnvelope, n: number): void {
  const deps = Object.create(null) as TaskEnvelope['deps'];
  for (let i = 0; i < n; i++) {
    const id = r.str();
    deps[id] = r.payload();
  }
  env.deps = deps;
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
  return packAll(results, packResult);
}

function packResult(f: Packed['f'], b: Bytes, r: ResultEnvelope | NotStarted): void {
  if (r.kind === 'value' && r.refs === undefined && r.worker === undefined) {
    const t = r.timing;
    f.push(r.taskId, t.fetchMs, t.runMs, t.storeMs, t.startedAt ?? -1, b.add(r.bytes));
  } else if (r.kind === 'notStarted') f.push(0, r.taskId);
  else f.push(r);
}

/**
 * The results of a packed batch. `worker`, when given, is set on each packed value result (the
 * pool names the thread the results came from).
 */
export function unpackResults(p: Packed, worker?: { id: string }): Array<ResultEnvelope | NotStarted> {
  return unpackAll(p, 'results', unpackResult, worker);
}

function unpackResult(r: Reader, worker: { id: string } | undefined): ResultEnvelope | NotStarted {
  const taskId = r.f[r.i];
  if (typeof taskId !== 'string') return otherResult(r);
  r.i++;
  const timing = r.timing();
  const bytes = r.inlineBytes();
  if (worker === undefined) return { v: PROTOCOL_VERSION, kind: 'value', taskId, timing, bytes };
  return { v: PROTOCOL_VERSION, kind: 'value', taskId, timing, bytes, worker };
}

/** A result not packed as a value: a follower not started, or an envelope as it is. */
function otherResult(r: Reader): ResultEnvelope | NotStarted {
  const v = r.next();
  if (v === 0) return { kind: 'notStarted', taskId: r.str() };
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) throw new ProtocolError('packed batch: a result that is neither packed nor an envelope');
  return v as ResultEnvelope;
}
