/**
 * A batch's progress and the answers of its finished tasks, in memory shared by the Lambda
 * handler and its task thread (handler.ts).
 *
 * The task thread used to post one message per finished task. A message between threads wakes
 * the thread it goes to, and for a batch of short tasks that wake-up was the largest cost per
 * task on the worker (in a CPU profile of 256-task batches of no-ops, the thread's postMessage
 * alone outweighed decoding, running and encoding the task together). So the thread appends
 * each answer to a log here and posts one message per batch; the handler reads the log when the
 * batch ends, or when the thread crashed or was stopped at a task's timeout: a task that
 * finished before is in the log whatever happened to the thread after, so its answer still
 * reaches the driver once, and it is not run again. Each task thread has one log, made with it
 * and sized for the largest batch and answer; every batch writes from its start (the reader
 * empties it before the batch is sent), so a small batch touches a few pages of it.
 *
 * Layout of the buffer: Int32 [0] the position (in the batch) of the running task, -1 while
 * none runs; Int32 [1] how many records the log holds; Float64 at byte 8 when the running task
 * started (Date.now()); from byte 16 the records, one per finished task in the order they
 * finished: Int32 position, Int32 byte length, the answer (a result envelope in wire form) as
 * JSON in UTF-8, padded to a multiple of 4 bytes. The writer fills a record, then counts it
 * (`Atomics.add`, which orders the record's bytes before the count for any reader that
 * `Atomics.load`s it); the position is set after the start time, and read before and after it
 * (the reader takes the start time only when both reads agree: the task it belongs to).
 *
 * Written by hand: this is a few lines over `SharedArrayBuffer` and `Atomics`, for which no kept
 * library exists that would spare them.
 */
import { ProtocolError } from '../errors.js';

const HEADER_BYTES = 16;
const RECORD_HEADER_BYTES = 8;

/** Bytes of a buffer whose log holds `answerBytes` of answers from up to `tasks` records. */
export function answerLogBytes(answerBytes: number, tasks: number): number {
  return HEADER_BYTES + Math.max(0, answerBytes) + tasks * (RECORD_HEADER_BYTES + 3);
}

const encoder = new TextEncoder();

/** The task thread's side: marks the running task and appends answers. */
export class AnswerLogWriter {
  private readonly head: Int32Array;
  private readonly since: Float64Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private end = HEADER_BYTES;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.head = new Int32Array(buffer, 0, 2);
    this.since = new Float64Array(buffer, 8, 1);
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
  }

  /** Task `pos` starts now: when first, then which (the reader reads which, then when). */
  start(pos: number, now: number): void {
    this.since[0] = now;
    Atomics.store(this.head, 0, pos);
  }

  /** No task runs (between tasks, and after the last). */
  idle(): void {
    Atomics.store(this.head, 0, -1);
  }

  /**
   * Appends task `pos`'s answer (JSON text). Returns its size in bytes, or -1 when the log has
   * no room left for it (the caller sends it another way).
   */
  append(pos: number, json: string): number {
    const at = this.end + RECORD_HEADER_BYTES;
    if (at > this.bytes.byteLength) return -1;
    const { read, written } = encoder.encodeInto(json, this.bytes.subarray(at));
    if (read < json.length) return -1;
    this.view.setInt32(this.end, pos, true);
    this.view.setInt32(this.end + 4, written, true);
    this.end = (at + written + 3) & ~3;
    Atomics.add(this.head, 1, 1);
    return written;
  }
}

/** The handler's side: which task runs since when, and the answers so far. */
export class AnswerLogReader {
  private readonly head: Int32Array;
  private readonly since: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.head = new Int32Array(buffer, 0, 2);
    this.since = new Float64Array(buffer, 8, 1);
    // A new batch: no task runs, the log is empty (the writer starts from the log's start).
    Atomics.store(this.head, 0, -1);
    Atomics.store(this.head, 1, 0);
  }

  /** The running task's position and when it started; undefined while none runs. */
  running(): { pos: number; since: number } | undefined {
    for (;;) {
      const pos = Atomics.load(this.head, 0);
      if (pos < 0) return undefined;
      const since = this.since[0]!;
      // Unchanged: no later task started between the two reads, so `since` is this task's start, not the next one's.
      if (Atomics.load(this.head, 0) === pos) return { pos, since };
    }
  }

  /**
   * Every answer counted so far, as [position, answer]. The log is the task thread's own
   * writing, but it is read with the bounds checked (a position outside the batch, a length
   * past the buffer are a ProtocolError), so nothing is read beyond what was written.
   */
  answers(tasks: number): Array<[number, Record<string, unknown>]> {
    const count = Atomics.load(this.head, 1);
    const buf = Buffer.from(this.buffer);
    const view = new DataView(this.buffer);
    const out: Array<[number, Record<string, unknown>]> = [];
    let at = HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      if (at + RECORD_HEADER_BYTES > buf.byteLength) throw new ProtocolError(`the task thread's answer log ends inside record ${i} of ${count}`);
      const pos = view.getInt32(at, true);
      const len = view.getInt32(at + 4, true);
      const from = at + RECORD_HEADER_BYTES;
      if (pos < 0 || pos >= tasks || len < 0 || from + len > buf.byteLength) {
        throw new ProtocolError(`the task thread's answer log has a bad record ${i} (position ${pos} of ${tasks} tasks, ${len} bytes at ${from} of ${buf.byteLength})`);
      }
      out.push([pos, JSON.parse(buf.toString('utf8', from, from + len)) as Record<string, unknown>]);
      at = (from + len + 3) & ~3;
    }
    return out;
  }
}
