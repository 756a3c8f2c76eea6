/**
 * A counting HTTP proxy in front of an S3 endpoint (s3rver), for measuring what a workload
 * costs in S3 requests and bytes on the wire. Every request is forwarded byte for byte (Host
 * header included, so the server checks the client's own signature) and tallied by operation:
 * its method, the status the server answered, and a kind the caller derives from the path
 * (e.g. an actor's state version or index entry). Bytes are the bodies as they pass: up (the
 * request's, e.g. a PutObject's object) and down (the response's, e.g. a GetObject's object,
 * or the XML of an error); headers are not counted.
 *
 * Written by hand because the measurement is the point: a proxy library would hide the body
 * streams this counts. A request is tallied when its response starts (its body has been read
 * by then); response bytes as they are forwarded, before the client sees them, so a client
 * that has read a whole response finds it counted. Request body bytes that arrive after the
 * response has started (a server may answer, e.g. 412, before it has read a whole body) are
 * added to the request's operation as they pass.
 */
import { Agent, createServer, request, type IncomingMessage } from 'node:http';

export interface OpTally {
  requests: number;
  /** Request body bytes (client to S3). */
  bytesUp: number;
  /** Response body bytes (S3 to client). */
  bytesDown: number;
  /** Milliseconds from the request's arrival to the response's end, summed. */
  ms: number;
}

/** Tallies by operation: `"<METHOD> <status> <kind>"`, e.g. `"GET 404 state"`. */
export type Tally = Record<string, OpTally>;

export interface S3Counter {
  /** http://127.0.0.1:<port>: the S3 endpoint to give the client. */
  endpoint: string;
  /** A copy of the tallies so far. */
  snapshot(): Tally;
  /** TCP connections clients opened to the proxy so far (a client that keeps its connections alive opens few). */
  connections(): number;
  stop(): Promise<void>;
}

/** An upstream request waits at most this long (s3rver on loopback answers in milliseconds). */
const UPSTREAM_TIMEOUT_MS = 120_000;

/** Starts a counting proxy to `upstream` on a free loopback port; `kindOf` names a request's kind from its path (without the query). */
export async function startS3Counter(o: { upstream: string; kindOf?: (path: string) => string }): Promise<S3Counter> {
  const target = new URL(o.upstream);
  const kindOf = o.kindOf ?? (() => 'object');
  const agent = new Agent({ keepAlive: true });
  const tally: Tally = {};
  const add = (op: string, field: keyof OpTally, n: number) => {
    const t = (tally[op] ??= { requests: 0, bytesUp: 0, bytesDown: 0, ms: 0 });
    t[field] += n;
  };

  const server = createServer((req: IncomingMessage, res) => {
    const t0 = performance.now();
    const raw = (req.url ?? '/').split('?')[0]!;
    let path = raw;
    try {
      path = decodeURIComponent(raw);
    } catch {
      /* not percent-encoded validly: classify it as sent */
    }
    let up = 0;
    let op: string | undefined;
    req.on('data', (c: Buffer) => {
      if (op === undefined) up += c.length;
      else add(op, 'bytesUp', c.length);
    });
    const fwd = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent, timeout: UPSTREAM_TIMEOUT_MS }, (ures) => {
      const key = `${req.method} ${ures.statusCode} ${kindOf(path)}`;
      op = key;
      add(key, 'requests', 1);
      add(key, 'bytesUp', up);
      ures.on('data', (c: Buffer) => add(key, 'bytesDown', c.length));
      ures.on('end', () => add(key, 'ms', performance.now() - t0));
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    fwd.on('timeout', () => fwd.destroy(new Error(`no answer from ${o.upstream} within ${UPSTREAM_TIMEOUT_MS} ms`)));
    fwd.on('error', (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`s3 counter: ${o.upstream} failed: ${err.message}`);
    });
    req.pipe(fwd);
  });
  server.keepAliveTimeout = 60_000;
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    snapshot: () => structuredClone(tally),
    connections: () => connections,
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}

/** What an object's path is to an actor: a version of its state (`actors/<id>/v<n>`), its index entry of a call (`actors/<id>/c/<call>`), or anything else. */
export function actorKeyKind(path: string): 'state' | 'index' | 'other' {
  if (/\/actors\/[^/]+\/v\d+$/.test(path)) return 'state';
  if (/\/actors\/[^/]+\/c\/[^/]+$/.test(path)) return 'index';
  return 'other';
}

/** What happened between two snapshots. */
export function tallyDiff(after: Tally, before: Tally): Tally {
  const out: Tally = {};
  for (const [op, a] of Object.entries(after)) {
    const b = before[op] ?? { requests: 0, bytesUp: 0, bytesDown: 0, ms: 0 };
    const d = { requests: a.requests - b.requests, bytesUp: a.bytesUp - b.bytesUp, bytesDown: a.bytesDown - b.bytesDown, ms: a.ms - b.ms };
    if (d.requests || d.bytesUp || d.bytesDown) out[op] = d;
  }
  return out;
}
