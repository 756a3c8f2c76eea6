/**
 * A fake S3 endpoint for unit tests of what no emulator here implements: conditional writes.
 * s3rver (the emulator tier's S3) ignores `If-None-Match` (the emulator answers it in front of
 * s3rver), and neither produces S3's 409 ConditionalRequestConflict; this fake does both.
 *
 * It speaks S3's REST API, path-style, for the operations S3Store uses to write and read one
 * object (PutObject, GetObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * AbortMultipartUpload) and to list and remove a prefix (ListObjectsV2, in pages of at most
 * 1,000 keys with a continuation token, and DeleteObjects; s3rver's paging fails on Node's
 * OpenSSL 3, so deletePrefix past 1,000 keys is tested here too), and implements S3's
 * documented conditional-write behaviour
 * (docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html):
 *   - `If-None-Match: *` on PutObject, or on CompleteMultipartUpload for a multipart upload:
 *     the write succeeds only if no object has the key; otherwise 412 PreconditionFailed and
 *     the stored object is unchanged;
 *   - without the header, a write replaces the object;
 *   - a conditional write that races another write of the same key in flight may get
 *     409 ConditionalRequestConflict (here: on request, through `conflictsBeforeSuccess`).
 * Anything else answers 501, so a test notices when the store starts using another operation.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  method: string;
  /** PutObject, GetObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListObjectsV2, DeleteObjects. */
  op: string;
  key: string;
  ifNoneMatch?: string;
  status: number;
}

export interface FakeS3 {
  endpoint: string;
  bucket: string;
  objects: Map<string, Buffer>;
  requests: RecordedRequest[];
  /** The next n conditional writes answer 409 ConditionalRequestConflict. */
  conflictsBeforeSuccess: number;
  close(): Promise<void>;
}

function xmlError(res: ServerResponse, status: number, code: string, message: string): number {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fake</RequestId></Error>`);
  return status;
}

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startFakeS3(bucket = 'fake-bucket'): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
  const requests: RecordedRequest[] = [];
  let uploadSeq = 0;
  const fake: FakeS3 = {
    endpoint: '',
    bucket,
    objects,
    requests,
    conflictsBeforeSuccess: 0,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };

  /** S3's conditional write: 412 if the key exists, 409 when a conflict is simulated. */
  function conditionFails(res: ServerResponse, key: string, ifNoneMatch: string | undefined): number | undefined {
    if (ifNoneMatch === undefined) return undefined;
    if (ifNoneMatch !== '*') return xmlError(res, 501, 'NotImplemented', 'only If-None-Match: * is supported');
    if (fake.conflictsBeforeSuccess > 0) {
      fake.conflictsBeforeSuccess--;
      return xmlError(res, 409, 'ConditionalRequestConflict', 'A conflicting conditional operation is currently in progress against this resource.');
    }
    if (objects.has(key)) return xmlError(res, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<RecordedRequest> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const [, b, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const ifNoneMatch = req.headers['if-none-match'] as string | undefined;
    const q = url.searchParams;
    const rec: RecordedRequest = { method: req.method ?? '', op: 'Unknown', key, ifNoneMatch, status: 0 };
    const data = await body(req);
    if (b !== bucket) {
      rec.status = xmlError(res, 404, 'NoSuchBucket', `The specified bucket does not exist: ${b}`);
      return rec;
    }
    if (key === '' && req.method === 'GET' && q.get('list-type') === '2') {
      rec.op = 'ListObjectsV2';
      const prefix = q.get('prefix') ?? '';
      const max = Math.min(1000, Number(q.get('max-keys') ?? 1000));
      const after = q.has('continuation-token') ? Buffer.from(q.get('continuation-token')!, 'base64').toString('utf8') : '';
      const all = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
      const page = all.slice(0, max);
      const truncated = all.length > max;
      const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;');
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>${bucket}</Name><Prefix>${esc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>` +
          (truncated ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString('base64')}</NextContinuationToken>` : '') +
          page.map((k) => `<Contents><Key>${esc(k)}</Key><Size>${objects.get(k)!.length}</Size></Contents>`).join('') +
          '</ListBucketResult>',
      );
      rec.status = 200;
    } else if (key === '' && req.method === 'POST' && q.has('delete')) {
      rec.op = 'DeleteObjects';
      const keys = [...data.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!.replace(/&lt;/g, '<').replace(/&amp;/g, '&'));
      if (keys.length > 1000) {
        rec.status = xmlError(res, 400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
        return rec;
      }
      for (const k of keys) objects.delete(k);
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><DeleteResult></DeleteResult>');
      rec.status = 200;
    } else if (req.method === 'PUT' && q.has('partNumber') && q.has('uploadId')) {
      rec.op = 'UploadPart';
      const up = uploads.get(q.get('uploadId')!);
      if (!up) {
        rec.status = xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        return rec;
      }
      up.parts.set(Number(q.get('partNumber')), data);
      res.writeHead(200, { etag: `"part-${q.get('partNumber')}"` });
      res.end();
      rec.status = 200;
    } else if (req.method === 'PUT') {
      rec.op = 'PutObject';
      rec.status = conditionFails(res, key, ifNoneMatch) ?? 0;
      if (rec.status) return rec;
      objects.set(key, data);
      res.writeHead(200, { etag: '"fake"' });
      res.end();
      rec.status = 200;
    } else if (req.method === 'GET') {
      rec.op = 'GetObject';
      const obj = objects.get(key);
      if (!obj) {
        rec.status = xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
        return rec;
      }
      res.writeHead(200, { 'content-length': String(obj.length), 'content-type': 'application/octet-stream' });
      res.end(obj);
      rec.status = 200;
    } else if (req.method === 'POST' && q.has('uploads')) {
      rec.op = 'CreateMultipartUpload';
      const id = `upload-${++uploadSeq}`;
      uploads.set(id, { key, parts: new Map() });
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
      rec.status = 200;
    } else if (req.method === 'POST' && q.has('uploadId')) {
      rec.op = 'CompleteMultipartUpload';
      const id = q.get('uploadId')!;
      const up = uploads.get(id);
      if (!up) {
        rec.status = xmlError(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        return rec;
      }
      rec.status = conditionFails(res, key, ifNoneMatch) ?? 0;
      if (rec.status) return rec;
      const numbers = [...data.toString('utf8').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
      objects.set(key, Buffer.concat(numbers.map((n) => up.parts.get(n)!)));
      uploads.delete(id);
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>"fake-mpu"</ETag></CompleteMultipartUploadResult>`);
      rec.status = 200;
    } else if (req.method === 'DELETE' && q.has('uploadId')) {
      rec.op = 'AbortMultipartUpload';
      uploads.delete(q.get('uploadId')!);
      res.writeHead(204);
      res.end();
      rec.status = 204;
    } else {
      rec.status = xmlError(res, 501, 'NotImplemented', `${req.method} ${url.search} is not implemented by the fake`);
    }
    return rec;
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).then(
      (rec) => requests.push(rec),
      (err: unknown) => xmlError(res, 500, 'InternalError', String(err)),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fake.endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return fake;
}
