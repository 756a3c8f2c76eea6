/**
 * A LocalStack-shaped edge in front of the emulators: test infrastructure, not a product feature.
 *
 * Why it exists: LocalStack needs Docker images and a network this test machine (and CI) does
 * not have, so without it the `localstack` target's own code — the endpoint from
 * AWS_ENDPOINT_URL, path-style S3, the test/test credentials, the function and bucket read from
 * the outputs of stack `volley-local` — would never run over the wire. This edge gives that code
 * what LocalStack gives it: one loopback port serving every service, routed by the request's
 * shape as LocalStack's edge routes it:
 *
 * - `GET /_localstack/health` is answered here, in LocalStack's format;
 * - a request signed for `cloudformation` (the SigV4 credential scope, LocalStack's first
 *   routing rule) is answered here: `DescribeStacks` returns the stacks given to the edge, with
 *   the outputs serverless.yml declares; an unknown stack gets CloudFormation's
 *   `ValidationError ... does not exist`; other actions are refused (nothing here deploys);
 * - Lambda's API paths (`/2015-03-31/functions/...`) go to serverless-offline's Lambda port;
 * - everything else is S3 (bucket paths) and goes to s3rver.
 *
 * Requests are forwarded byte for byte, Host header included, so s3rver checks the client's
 * own signature. s3rver accepts only its key pair S3RVER; LocalStack accepts any, and the
 * target signs with test/test, so `startLocalStackLike` registers that pair with s3rver.
 */
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { bundleWorker } from '../../infra/bundle.js';
import { projectRoot, startS3rver, startServerlessOffline } from '../../infra/emulators.js';

export interface EdgeStack {
  name: string;
  /** Output key to value, e.g. { WorkerFunctionName: 'volley-local-worker', BucketName: '...' }. */
  outputs: Record<string, string>;
}

export type EdgeRoute = 'health' | 'cloudformation' | 'lambda' | 's3';

export interface LocalStackEdge {
  /** http://127.0.0.1:<port>: what AWS_ENDPOINT_URL is set to. */
  endpoint: string;
  /** Requests served per route, so a test can see which service a client reached. */
  requests: Record<EdgeRoute, number>;
  /** Points Lambda's paths at serverless-offline once it runs (it is started after the edge, to reach S3 through it). */
  setLambdaEndpoint(url: string): void;
  stop(): Promise<void>;
}

/** Upstream calls wait at most this long (past Lambda's 15-minute maximum, as the client does). */
const UPSTREAM_TIMEOUT_MS = 16 * 60_000;
/** A DescribeStacks form body is a few hundred bytes. */
const MAX_CF_BODY = 64 * 1024;

/** The AWS service a request was signed for (SigV4 credential scope), if any. */
function signedService(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization ?? '';
  return /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(auth)?.[1];
}

export function routeOf(req: IncomingMessage): EdgeRoute {
  const path = req.url ?? '/';
  if (path.split('?')[0] === '/_localstack/health') return 'health';
  if (signedService(req) === 'cloudformation') return 'cloudformation';
  if (path.startsWith('/2015-03-31/functions/')) return 'lambda';
  return 's3';
}

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function cfError(res: ServerResponse, status: number, code: string, message: string): void {
  const body =
    `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type>` +
    `<Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomBytes(8).toString('hex')}</RequestId></ErrorResponse>`;
  res.writeHead(status, { 'content-type': 'text/xml' }).end(body);
}

function describeStacks(res: ServerResponse, form: URLSearchParams, stacks: EdgeStack[]): void {
  const action = form.get('Action');
  if (action !== 'DescribeStacks') {
    cfError(res, 400, 'InvalidAction', `this test edge answers only DescribeStacks, not ${action ?? '(no Action)'}`);
    return;
  }
  const wanted = form.get('StackName');
  const found = wanted === null ? stacks : stacks.filter((s) => s.name === wanted);
  if (wanted !== null && found.length === 0) {
    cfError(res, 400, 'ValidationError', `Stack with id ${wanted} does not exist`);
    return;
  }
  const members = found
    .map((s) => {
      const outputs = Object.entries(s.outputs)
        .map(([k, v]) => `<member><OutputKey>${xmlEscape(k)}</OutputKey><OutputValue>${xmlEscape(v)}</OutputValue></member>`)
        .join('');
      return (
        `<member><StackName>${xmlEscape(s.name)}</StackName>` +
        `<StackId>arn:aws:cloudformation:us-east-1:000000000000:stack/${xmlEscape(s.name)}/00000000-0000-0000-0000-000000000000</StackId>` +
        `<CreationTime>2026-01-01T00:00:00.000Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${outputs}</Outputs></member>`
      );
    })
    .join('');
  res
    .writeHead(200, { 'content-type': 'text/xml' })
    .end(
      `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks>${members}</Stacks></DescribeStacksResult>` +
        `<ResponseMetadata><RequestId>${randomBytes(8).toString('hex')}</RequestId></ResponseMetadata></DescribeStacksResponse>`,
    );
}

/** Starts the edge on a free loopback port. */
export async function startLocalStackEdge(o: { s3Endpoint: string; lambdaEndpoint?: string; stacks: EdgeStack[] }): Promise<LocalStackEdge> {
  let lambdaEndpoint = o.lambdaEndpoint;
  const requests: Record<EdgeRoute, number> = { health: 0, cloudformation: 0, lambda: 0, s3: 0 };
  const agent = new Agent({ keepAlive: true });

  const forward = (req: IncomingMessage, res: ServerResponse, base: string) => {
    const target = new URL(base);
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent, timeout: UPSTREAM_TIMEOUT_MS }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    up.on('timeout', () => up.destroy(new Error(`no answer from ${base} within ${UPSTREAM_TIMEOUT_MS} ms`)));
    up.on('error', (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`edge: ${base} failed: ${err.message}`);
    });
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    const route = routeOf(req);
    requests[route]++;
    switch (route) {
      case 'health':
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ services: { cloudformation: 'running', lambda: 'running', s3: 'running' }, edition: 'community', version: 'volley-test-edge' }));
        return;
      case 'cloudformation': {
        const chunks: Buffer[] = [];
        let size = 0;
        req.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_CF_BODY) req.destroy();
          else chunks.push(c);
        });
        req.on('end', () => describeStacks(res, new URLSearchParams(Buffer.concat(chunks).toString('utf8')), o.stacks));
        return;
      }
      case 'lambda':
        if (!lambdaEndpoint) res.writeHead(503, { 'content-type': 'text/plain' }).end('edge: the Lambda emulator is not running yet');
        else forward(req, res, lambdaEndpoint);
        return;
      case 's3':
        forward(req, res, o.s3Endpoint);
    }
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setLambdaEndpoint(url) {
      lambdaEndpoint = url;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };
}

export interface LocalStackLike {
  edge: LocalStackEdge;
  /** The stack the edge describes (named as `npx volley deploy --target localstack` names it). */
  stack: { name: string; functionName: string; bucket: string };
  stop(): Promise<void>;
}

/**
 * What `npx volley deploy --target localstack` leaves behind, on the emulators: s3rver with the
 * stack's bucket (a generated name, as CloudFormation gives, so only the stack outputs can tell
 * it), serverless-offline running the worker bundle (default tasks + `extraTasks`) with its S3
 * endpoint set to the edge, as LocalStack sets it inside its Lambdas, and the edge in front.
 */
export async function startLocalStackLike(o: { extraTasks: string[]; stackName?: string }): Promise<LocalStackLike> {
  const root = projectRoot();
  const bundleDir = '.volley/localstack-edge';
  await bundleWorker({ projectRoot: root, outdir: resolve(root, bundleDir), extraTasks: o.extraTasks });
  const stackName = o.stackName ?? 'volley-local';
  const bucket = `${stackName}-volleybucket-${randomBytes(6).toString('hex')}`;
  // LocalStack accepts any key pair; the localstack target signs with test/test.
  const s3 = await startS3rver({ buckets: [bucket], keyPairs: [['test', 'test']] });
  const stack = { name: stackName, functionName: '', bucket };
  const stacks: EdgeStack[] = [];
  const edge = await startLocalStackEdge({ s3Endpoint: s3.endpoint, stacks });
  let offline: Awaited<ReturnType<typeof startServerlessOffline>>;
  try {
    offline = await startServerlessOffline({ s3Endpoint: edge.endpoint, bucket, bundleDir });
  } catch (err) {
    await edge.stop();
    await s3.stop();
    throw err;
  }
  edge.setLambdaEndpoint(offline.endpoint);
  stack.functionName = offline.functionName;
  stacks.push({ name: stackName, outputs: { WorkerFunctionName: offline.functionName, BucketName: bucket } });
  return {
    edge,
    stack,
    async stop() {
      await offline.stop();
      await edge.stop();
      await s3.stop();
    },
  };
}
