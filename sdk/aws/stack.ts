/** Reads the deployed stack's outputs: the worker function's name and the bucket's. */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ConfigError } from '../errors.js';

/** Output keys declared in serverless.yml. */
export const STACK_OUTPUTS = { functionName: 'WorkerFunctionName', bucket: 'BucketName' } as const;

export interface StackOutputs {
  functionName: string;
  bucket: string;
}

export interface StackLookup {
  stackName: string;
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** How the user deploys this stack, for error messages. */
  deployHint: string;
  /** Deadline of each of the (at most two) DescribeStacks attempts, in ms. Default: 10000. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export async function readStackOutputs(l: StackLookup): Promise<StackOutputs> {
  const cf = new CloudFormationClient({
    ...(l.region ? { region: l.region } : {}),
    ...(l.endpoint ? { endpoint: l.endpoint } : {}),
    ...(l.credentials ? { credentials: l.credentials } : {}),
    // A deadline: an endpoint that accepts connections but never answers (a LocalStack still
    // starting, a wrong port behind a proxy) would otherwise hang init() for ever.
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({ connectionTimeout: l.timeoutMs ?? DEFAULT_TIMEOUT_MS, requestTimeout: l.timeoutMs ?? DEFAULT_TIMEOUT_MS, throwOnRequestTimeout: true }),
  });
  const where = `stack ${l.stackName}${l.region ? ` in ${l.region}` : ''}${l.endpoint ? ` at ${l.endpoint}` : ''}`;
  try {
    const res = await cf.send(new DescribeStacksCommand({ StackName: l.stackName }));
    const outputs = new Map((res.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
    const functionName = outputs.get(STACK_OUTPUTS.functionName);
    const bucket = outputs.get(STACK_OUTPUTS.bucket);
    if (!functionName || !bucket) {
      throw new ConfigError(
        `${where} has no ${!functionName ? STACK_OUTPUTS.functionName : STACK_OUTPUTS.bucket} output: it was not deployed from volley's serverless.yml; redeploy with ${l.deployHint}, or pass init({ aws: { functionName, bucket } })`,
      );
    }
    return { functionName, bucket };
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const e = err as { name?: string; message?: string };
    const missing = /does not exist/i.test(e?.message ?? '');
    throw new ConfigError(
      missing
        ? `${where} does not exist: deploy it with ${l.deployHint}, or name the function and bucket with init({ aws: { functionName, bucket } }) (or VOLLEY_FUNCTION_NAME and VOLLEY_BUCKET)`
        : `could not read the outputs of ${where} (${e?.name ?? 'Error'}: ${e?.message ?? String(err)}); ` +
            (l.endpoint && !/credential/i.test(e?.name ?? '')
              ? `check that ${l.endpoint} is up (LocalStack answers ${new URL('/_localstack/health', l.endpoint)})`
              : 'check credentials and region (AWS_PROFILE, AWS_REGION)') +
            ', or pass init({ aws: { functionName, bucket } })',
      { cause: err },
    );
  } finally {
    cf.destroy();
  }
}
