/**
 * The object store on S3. Keys are laid out per job (`<prefix>jobs/<job>/<object>`), so one
 * job's objects are listed and removed together; the bucket's lifecycle rule expires whatever
 * a crashed driver left behind.
 */
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client, type UploadPartCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { ObjectStore } from '../backend.js';
import { ObjectStoreError } from '../errors.js';
import { retryWithBackoff, type ThrottlePolicy } from './throttle.js';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { RangeReadError, rangedGet } from './transfer.js';

/** S3 faults a new attempt may not meet: 5xx, SlowDown, connection resets and timeouts. */
function transient(err: unknown): boolean {
  const e = err as Parameters<typeof isTransientError>[0];
  return typeof err === 'object' && err !== null && (isTransientError(e) || isServerError(e) || isThrottlingError(e));
}

export interface S3StoreOptions {
  /**
   * Objects larger than this go up in parts (the options table's multipartThresholdBytes). On
   * s3rver parts lose at 8 MB too: in 5 MiB parts an 8 MB PUT took 76/141 ms against 34/57 ms
   * whole (best/median of 15, interleaved), since s3rver writes the parts, then copies them into the object.
   */
  multipartThresholdBytes: number;
  /** Part size of multipart uploads. Default: 8 MiB. */
  partSizeBytes?: number;
  /** Parts uploaded at once. Default: 4. */
  partConcurrency?: number;
  /**
   * Reads go in byte ranges of this size, several at once (transfer.ts); an object no larger
   * than one range costs one GET. 0 reads with one plain GET. Default: 32 MiB, measured against
   * 8 and 16 MiB on s3rver at 100 MB (bench/aws-path.ts): smaller ranges cost more requests for no
   * gain there. At 8 MB one GET is also the fastest there: 8 MB in parallel ranges of 4 MiB x 4,
   * 2 MiB x 4 and 1 MiB x 8 took 29/59, 37/62 and 42/79 ms (best/median of 20, interleaved) against
   * 23/43 ms for one GET, and two to three times the client's CPU (12/32, 19/41, 21/45 against 7/13 ms).
   */
  rangeBytes?: number;
  /** Ranged GETs in flight at once. Default: 4. */
  rangeConcurrency?: number;
  /** Deadline of one ranged GET, answer and body, ms (on top of the client's connection, answer and idle deadlines). Default: 60000, as s3RequestTimeoutMs. */
  rangeTimeoutMs?: number;
}

/**
 * Whether a write's body may go without its SHA-256 in the signature (`x-amz-content-sha256:
 * UNSIGNED-PAYLOAD`, which S3 accepts): over HTTPS, where TLS protects the body in transit (and on
 * AWS the SDK's CRC32 checksum header, which is signed, lets S3 verify it), and to a loopback
 * address (an emulator on this machine). To any other plain-HTTP endpoint the body stays signed.
 * Hashing costs the client about 0.75 ms of CPU per MB here (an 8 MB PUT to s3rver: 9.4 ms of
 * client CPU signed, 3.2 ms unsigned, best of 30; bench/aws-path.ts), and more on a small Lambda.
 */
export function mayLeavePayloadUnsigned(request: { protocol: string; hostname: string }): boolean {
  if (request.protocol === 'https:') return true;
  const host = request.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

type Next = (args: { request: unknown }) => Promise<unknown>;

/**
 * A build-step middleware (it runs before signing): sets `x-amz-content-sha256: UNSIGNED-PAYLOAD`
 * where mayLeavePayloadUnsigned allows it, unless the header is set already (the SDK's checksum
 * middleware sets it for a streamed, aws-chunked body, whose framing it must describe).
 */
const unsignedPayload = (next: Next) => (args: { request: unknown }) => {
  const request = args.request as { protocol: string; hostname: string; headers: Record<string, string> };
  const set = Object.keys(request.headers).some((h) => h.toLowerCase() === 'x-amz-content-sha256');
  if (!set && mayLeavePayloadUnsigned(request)) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  return next(args);
};

function withUnsignedPayload<C extends PutObjectCommand | UploadPartCommand>(command: C): C {
  (command.middlewareStack as unknown as { add(m: typeof unsignedPayload, o: object): void }).add(unsignedPayload, { step: 'build', name: 'volleyUnsignedPayload', override: true });
  return command;
}

/** The client as `Upload` sees it: its part (and small-object) uploads go with unsigned payloads, as the store's own PUT does. */
function unsignedWrites(client: S3Client): S3Client {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'send') return Reflect.get(target, prop, receiver);
      return (command: Parameters<S3Client['send']>[0], ...rest: unknown[]) => {
        // Of the commands Upload sends, PutObject and UploadPart carry a Body (told by the input, not by class names a bundler may rename).
        if ((command.input as { Body?: unknown }).Body !== undefined) withUnsignedPayload(command as PutObjectCommand);
        return (target.send as (...a: unknown[]) => unknown).call(target, command, ...rest);
      };
    },
  });
}

/** Backoff for a write that conflicts with another conditional write of its key: a few tries over about 2 s. */
const CONFLICT_BACKOFF: ThrottlePolicy = { baseDelayMs: 50, maxDelayMs: 800, giveUpMs: 2_000 };

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function describeError(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string };
  return `${e?.name ?? 'Error'}${e?.code && e.code !== e.name ? ` (${e.code})` : ''}: ${e?.message ?? String(err)}`;
}

export class S3Store implements ObjectStore {
  private readonly partSize: number;
  private readonly partConcurrency: number;

  constructor(
    readonly client: S3Client,
    readonly bucket: string,
    private readonly options: S3StoreOptions,
  ) {
    this.partSize = options.partSizeBytes ?? 8 * 1024 * 1024;
    this.partConcurrency = options.partConcurrency ?? 4;
  }

  /**
   * Writes once: `If-None-Match: *` makes S3 refuse to replace an existing object (412), so a
   * second execution of a task (a retried invocation) cannot replace or corrupt the result the
   * first one wrote; the 412 is success, since the object is there. Endpoints that ignore the
   * header (s3rver does) overwrite instead: the last write of the same key wins, whole.
   */
  async put(key: string, bytes: Uint8Array): Promise<void> {
    await this.create(key, bytes);
  }

  /**
   * The same write-once put, telling whether this write created the object (false: it was
   * there, S3 answered 412 and nothing changed). Actors commit their state versions with it.
   * On an endpoint that ignores `If-None-Match` (s3rver) it always says true.
   */
  async create(key: string, bytes: Uint8Array): Promise<boolean> {
    const write = async (): Promise<boolean> => {
      try {
        if (bytes.byteLength > this.options.multipartThresholdBytes) {
          await new Upload({
            client: unsignedWrites(this.client),
            params: { Bucket: this.bucket, Key: key, Body: bytes, IfNoneMatch: '*' },
            partSize: this.partSize,
            queueSize: this.partConcurrency,
          }).done();
        } else {
          await this.client.send(withUnsignedPayload(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, IfNoneMatch: '*' })));
        }
      } catch (err) {
        if (status(err) === 412) return false; // already written by an earlier execution: first write wins
        throw err;
      }
      return true;
    };
    try {
      // 409 ConditionalRequestConflict: another conditional write of this key is in flight; try again, then 412 settles it.
      return await retryWithBackoff(write, CONFLICT_BACKOFF, { retryable: (err) => status(err) === 409, giveUp: (err) => err });
    } catch (err) {
      throw new ObjectStoreError(
        `could not write object ${key} (${bytes.byteLength} bytes) to bucket ${this.bucket}: ${describeError(err)}; check that the bucket exists and that the credentials may s3:PutObject in it`,
        key,
        { cause: err, retryable: transient(err) },
      );
    }
  }

  /** Reads an object into one buffer: in parallel byte ranges (transfer.ts), or with one GET when ranges are off. */
  async get(key: string): Promise<Uint8Array> {
    const rangeBytes = this.options.rangeBytes ?? 32 * 1024 * 1024;
    if (rangeBytes <= 0) return this.getWhole(key);
    try {
      return await rangedGet(this.client, this.bucket, key, { rangeBytes, concurrency: this.options.rangeConcurrency ?? 4, rangeTimeoutMs: this.options.rangeTimeoutMs ?? 60_000 }, () =>
        this.getWhole(key),
      );
    } catch (err) {
      if (err instanceof ObjectStoreError) throw err;
      throw this.readError(key, err);
    }
  }

  private readError(key: string, err: unknown): ObjectStoreError {
    const e = err as { name?: string };
    if (e?.name === 'NoSuchKey' || status(err) === 404) {
      return new ObjectStoreError(
        `object ${key} is not in bucket ${this.bucket}: it was removed (shutdown, volley cleanup, or the bucket's lifecycle expiry) or never written`,
        key,
        { cause: err },
        'OBJECT_MISSING',
      );
    }
    if (err instanceof RangeReadError) {
      // A range cut off, stalled or answered 5xx is worth another attempt; one refused (4xx) is not.
      const code = status(err.cause);
      return new ObjectStoreError(`could not read object ${key} from bucket ${this.bucket}: a ranged read failed, ${err.message}`, key, {
        cause: err,
        retryable: code === undefined || code >= 500 || transient(err.cause),
      });
    }
    return new ObjectStoreError(`could not read object ${key} from bucket ${this.bucket}: ${describeError(err)}`, key, { cause: err, retryable: transient(err) });
  }

  /** Reads an object with one GET into one buffer, sized from Content-Length when S3 sends it. */
  private async getWhole(key: string): Promise<Uint8Array> {
    let body: { transformToByteArray(): Promise<Uint8Array> } | undefined;
    let length: number | undefined;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      body = res.Body;
      length = res.ContentLength;
    } catch (err) {
      throw this.readError(key, err);
    }
    try {
      // The SDK's own collector: measured faster here than filling a buffer from 'data' events.
      if (!body) throw new Error('the response has no body');
      const bytes = await body.transformToByteArray();
      if (length !== undefined && bytes.byteLength !== length) {
        throw new Error(`the body has ${bytes.byteLength} bytes, its Content-Length says ${length}`);
      }
      return bytes;
    } catch (err) {
      // A body cut off mid-read (a reset) is worth another attempt.
      throw new ObjectStoreError(`could not read object ${key} from bucket ${this.bucket}: ${describeError(err)}`, key, { cause: err, retryable: true });
    }
  }

  /** Lists and deletes every object under prefix, 1000 at a time. */
  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      try {
        const res = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } }));
        if (res.Errors && res.Errors.length > 0) {
          const first = res.Errors[0]!;
          throw new Error(`${res.Errors.length} object(s) were not deleted, e.g. ${first.Key}: ${first.Code} ${first.Message}`);
        }
      } catch (err) {
        throw new ObjectStoreError(
          `could not remove ${batch.length} object(s) from bucket ${this.bucket}: ${describeError(err)}; the bucket's lifecycle rule expires them, or run npx volley cleanup`,
          batch[0]!.Key,
          { cause: err },
        );
      }
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    let removed = 0;
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length === 0) continue;
        const res = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }));
        if (res.Errors && res.Errors.length > 0) {
          const first = res.Errors[0]!;
          throw new Error(`${res.Errors.length} object(s) were not deleted, e.g. ${first.Key}: ${first.Code} ${first.Message}`);
        }
        removed += keys.length;
      } while (token);
    } catch (err) {
      if (err instanceof ObjectStoreError) throw err;
      throw new ObjectStoreError(
        `could not remove the objects under ${prefix} in bucket ${this.bucket} (${removed} removed so far): ${describeError(err)}; the bucket's lifecycle rule expires them, or run npx volley cleanup`,
        prefix,
        { cause: err },
      );
    }
    return removed;
  }
}
