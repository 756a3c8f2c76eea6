#!/usr/bin/env node
/**
 * volley's command line: deploy, inspect, remove the worker stack, and clean up objects.
 *
 *   volley deploy  --target aws|localstack [--stage S] [--region R] [--memory MB] [--timeout S]
 *                  [--runtime nodejs22.x|nodejs20.x] [--tasks a.ts,b.ts]
 *   volley package --target aws|localstack [same options as deploy]   (offline: builds .volley/deploy/.serverless)
 *   volley info    --target aws|localstack [--stage S] [--region R]
 *   volley remove  --target aws|localstack [--stage S] [--region R]
 *   volley cleanup --target aws|localstack|emulator [--job ID | --all] [--stage S] [--region R]
 *   volley localstack up|down     (LocalStack in Docker on port 4566, through Testcontainers; infra/localstack.ts)
 *
 * deploy bundles the worker (volley.config.json's task modules, plus --tasks), copies
 * serverless.yml next to the bundle in .volley/deploy/, and runs the Serverless Framework
 * there (osls or Serverless v4, whichever the project has installed). The `aws` target uses
 * stage `dev` by default, `localstack` stage `local` (deployed through serverless-localstack).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError, VolleyError } from '../sdk/errors.js';
import { resolveInitOptions } from '../sdk/options.js';
import { bundleWorker } from './bundle.js';
import { projectRoot } from './emulators.js';

const COMMANDS = ['deploy', 'package', 'info', 'remove', 'cleanup'] as const;
type Command = (typeof COMMANDS)[number];
type DeployTarget = 'aws' | 'localstack';

const USAGE = `usage: volley <${COMMANDS.join('|')}> --target aws|localstack [options]
  deploy   bundle the worker and deploy the stack   [--stage] [--region] [--memory MB] [--timeout s] [--runtime] [--tasks a.ts,b.ts]
  package  the same without deploying (works offline): the CloudFormation template and zip in .volley/deploy/.serverless
  info     print the stack's function and bucket, as environment variables for the driver
  remove   empty the bucket and remove the stack
  cleanup  remove one job's objects (--job ID) or all of volley's (--all); --target emulator takes VOLLEY_S3_ENDPOINT
usage: volley localstack up|down   start LocalStack in Docker on port 4566 (LOCALSTACK_IMAGE, LOCALSTACK_AUTH_TOKEN), or stop it`;

export interface CliOptions {
  command: Command;
  target: DeployTarget | 'emulator';
  stage: string;
  region?: string;
  memory?: string;
  timeout?: string;
  runtime?: string;
  tasks: string[];
  job?: string;
  all: boolean;
}

/** Parses argv (without node and script); throws UsageError naming the valid choices. */
export function parseCli(argv: string[]): CliOptions {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      stage: { type: 'string' },
      region: { type: 'string' },
      memory: { type: 'string' },
      timeout: { type: 'string' },
      runtime: { type: 'string' },
      tasks: { type: 'string' },
      job: { type: 'string' },
      all: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0] as Command | undefined;
  if (values.help || !command) throw new UsageError(USAGE);
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}; valid commands are: ${COMMANDS.join(', ')}\n${USAGE}`);
  const target = values.target ?? process.env.VOLLEY_TARGET;
  const valid = command === 'cleanup' ? ['aws', 'localstack', 'emulator'] : ['aws', 'localstack'];
  if (!target || !valid.includes(target)) {
    throw new UsageError(`volley ${command} needs --target ${valid.join('|')}${target ? `, got ${JSON.stringify(target)}` : ''}`);
  }
  if (values.memory !== undefined && !/^\d+$/.test(values.memory)) throw new UsageError(`--memory must be a whole number of MB (128-10240), got ${values.memory}`);
  if (values.timeout !== undefined && !/^\d+$/.test(values.timeout)) throw new UsageError(`--timeout must be a whole number of seconds (1-900), got ${values.timeout}`);
  if (values.runtime !== undefined && !['nodejs20.x', 'nodejs22.x'].includes(values.runtime)) throw new UsageError(`--runtime must be nodejs20.x or nodejs22.x, got ${values.runtime}`);
  if (command === 'cleanup' && !values.job && !values.all) throw new UsageError("volley cleanup needs --job ID (one job's objects) or --all (every object volley wrote)");
  return {
    command,
    target: target as CliOptions['target'],
    stage: values.stage ?? (target === 'localstack' ? 'local' : 'dev'),
    region: values.region,
    memory: values.memory,
    timeout: values.timeout,
    runtime: values.runtime,
    tasks: values.tasks ? values.tasks.split(',').filter(Boolean) : [],
    job: values.job,
    all: values.all ?? false,
  };
}

/** The Serverless Framework entry the project has: osls, or serverless (v3/v4). */
function serverlessBin(cwd: string): string {
  const req = createRequire(join(cwd, 'package.json'));
  for (const id of ['osls/bin/serverless.js', 'serverless/bin/serverless.js']) {
    try {
      return req.resolve(id);
    } catch {
      /* try the next */
    }
  }
  throw new ConfigError('no Serverless Framework found: npm install --save-dev osls serverless-offline serverless-localstack (or serverless@4 with the same plugins)');
}

function runServerless(o: CliOptions, args: string[], serviceDir: string): void {
  const bin = serverlessBin(process.cwd());
  const full = [bin, ...args, '--stage', o.stage, ...(o.region ? ['--region', o.region] : [])];
  console.error(`volley: serverless ${full.slice(1).join(' ')}  (in ${serviceDir})`);
  const r = spawnSync(process.execPath, full, { cwd: serviceDir, stdio: 'inherit', env: { SLS_TELEMETRY_DISABLED: '1', ...process.env } });
  if (r.status !== 0) throw new VolleyError(`serverless ${args[0]} failed (exit code ${r.status ?? r.signal}); its output above says why`);
}

/** .volley/deploy/: serverless.yml beside the bundle, so packaging sees only the worker. */
async function prepareService(o: CliOptions): Promise<string> {
  const dir = resolve('.volley/deploy');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(projectRoot(), 'serverless.yml'), join(dir, 'serverless.yml'));
  const b = await bundleWorker({ projectRoot: process.cwd(), outdir: join(dir, 'dist/lambda'), extraTasks: o.tasks });
  console.error(`volley: bundled ${b.tasks.length} task module(s) into ${b.file} (${(b.bytes / 1e6).toFixed(1)} MB)`);
  return dir;
}

function stackName(o: CliOptions): string {
  return `volley-${o.stage}`;
}

async function backendFor(o: CliOptions) {
  const env = { ...process.env, ...(o.region ? { AWS_REGION: o.region } : {}) };
  const { createAwsBackend } = await import('../sdk/aws/backend.js');
  return createAwsBackend(resolveInitOptions({ target: o.target, jobId: 'cli', maxConcurrency: 16, aws: { stackName: stackName(o) } }, env));
}

/** `volley localstack up|down`: LocalStack in a container that outlives the command, on its default port. */
async function localstackCommand(args: string[]): Promise<void> {
  const ls = await import('./localstack.js');
  if (args.length !== 1 || !['up', 'down'].includes(args[0]!)) throw new UsageError(`usage: volley localstack up|down, got ${args.join(' ') || 'nothing'}`);
  if (args[0] === 'down') {
    const n = await ls.stopKeptLocalStack();
    console.error(n > 0 ? 'volley: LocalStack stopped and removed' : 'volley: no LocalStack started by volley localstack up is running');
    return;
  }
  const s = ls.localStackSettings();
  const problem = await ls.localStackProblem(s);
  if (problem) throw new ConfigError(problem);
  let endpoint = await ls.keptLocalStack();
  if (endpoint) console.error(`volley: LocalStack is already running at ${endpoint}`);
  else {
    endpoint = (await ls.startLocalStack({ settings: s, keep: true })).endpoint;
    console.error(`volley: LocalStack (${s.image}) is running at ${endpoint}; next: npx volley deploy --target localstack; stop it with npx volley localstack down`);
  }
  console.log(`export AWS_ENDPOINT_URL=${endpoint}`);
}

export async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'localstack') return localstackCommand(argv.slice(1));
  const o = parseCli(argv);
  const params = [...(o.memory ? ['--param', `memory=${o.memory}`] : []), ...(o.timeout ? ['--param', `timeout=${o.timeout}`] : []), ...(o.runtime ? ['--param', `runtime=${o.runtime}`] : [])];
  switch (o.command) {
    case 'deploy': {
      const dir = await prepareService(o);
      runServerless(o, ['deploy', ...params], dir);
      await printInfo(o);
      return;
    }
    case 'package': {
      const dir = await prepareService(o);
      runServerless(o, ['package', ...params], dir);
      console.log(join(dir, '.serverless'));
      return;
    }
    case 'info':
      await printInfo(o);
      return;
    case 'remove': {
      const b = await backendFor(o);
      try {
        const n = await b.store.deletePrefix('');
        console.error(`volley: emptied bucket ${b.bucket} (${n} objects), so that the stack can remove it`);
      } finally {
        await b.invoker.close();
      }
      runServerless(o, ['remove'], await prepareService(o));
      return;
    }
    case 'cleanup': {
      const b = await backendFor(o);
      try {
        const prefix = o.all ? b.keyPrefix : `${b.keyPrefix}jobs/${o.job}/`;
        const n = await b.store.deletePrefix(prefix);
        console.log(`removed ${n} object(s) under s3://${b.bucket}/${prefix}`);
      } finally {
        await b.invoker.close();
      }
      return;
    }
  }
}

async function printInfo(o: CliOptions): Promise<void> {
  const b = await backendFor(o);
  await b.invoker.close();
  console.log(`# stack ${stackName(o)} (target ${o.target}); for the driver:`);
  console.log(`export VOLLEY_TARGET=${o.target}`);
  console.log(`export VOLLEY_STACK=${stackName(o)}`);
  console.log(`export VOLLEY_FUNCTION_NAME=${b.functionName}`);
  console.log(`export VOLLEY_BUCKET=${b.bucket}`);
}

const invokedDirectly = (process.argv[1] !== undefined && /cli\.(js|ts)$/.test(process.argv[1])) || /\/bin\/volley$/.test(process.argv[1] ?? '');
if (invokedDirectly) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof VolleyError ? `volley: ${err.message}` : err);
    process.exit(1);
  });
}
