/**
 * A fake CloudFormation endpoint for the one call volley makes, DescribeStacks, so the `aws`
 * target's discovery of its function and bucket from a stack's outputs is tested over the
 * real wire protocol without an account (no emulator here runs CloudFormation).
 *
 * It speaks the AWS Query protocol as CloudFormation documents it
 * (docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html): a form
 * POST with Action=DescribeStacks&StackName=…, answered with a DescribeStacksResponse listing
 * the stack's Outputs, or for an unknown stack HTTP 400 with a ValidationError
 * "Stack with id NAME does not exist", as CloudFormation answers.
 */
import { createServer, type Server } from 'node:http';

export interface FakeCloudFormation {
  endpoint: string;
  /** Stacks by name: their outputs, key to value. */
  stacks: Map<string, Record<string, string>>;
  /** StackName of every DescribeStacks call. */
  calls: string[];
  close(): Promise<void>;
}

const NS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function startFakeCloudFormation(): Promise<FakeCloudFormation> {
  const stacks = new Map<string, Record<string, string>>();
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const reply = (status: number, xml: string) => {
        res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': 'fake-request' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?>${xml}`);
      };
      if (req.method !== 'POST' || form.get('Action') !== 'DescribeStacks') {
        reply(
          400,
          `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>not implemented by the fake: ${esc(String(form.get('Action')))}</Message></Error><RequestId>fake-request</RequestId></ErrorResponse>`,
        );
        return;
      }
      const name = form.get('StackName') ?? '';
      calls.push(name);
      const outputs = stacks.get(name);
      if (!outputs) {
        reply(
          400,
          `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${esc(name)} does not exist</Message></Error><RequestId>fake-request</RequestId></ErrorResponse>`,
        );
        return;
      }
      const members = Object.entries(outputs)
        .map(([k, v]) => `<member><OutputKey>${esc(k)}</OutputKey><OutputValue>${esc(v)}</OutputValue></member>`)
        .join('');
      reply(
        200,
        `<DescribeStacksResponse xmlns="${NS}"><DescribeStacksResult><Stacks><member><StackName>${esc(name)}</StackName>` +
          `<StackId>arn:aws:cloudformation:us-east-1:123456789012:stack/${esc(name)}/fake</StackId><CreationTime>2026-01-01T00:00:00Z</CreationTime>` +
          `<StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult>` +
          '<ResponseMetadata><RequestId>fake-request</RequestId></ResponseMetadata></DescribeStacksResponse>',
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    stacks,
    calls,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
