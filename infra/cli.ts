/**
 * volley's command line (`npx volley`, entry infra/bin.ts): set up a project, run the emulators,
 * package, deploy, inspect and remove the worker stack, and clean up objects.
 *
 * Every command works in the user's project: the folder of the nearest volley.config.json
 * (task paths are relative to it), whose own dependencies are bundled and whose Serverless
 * Framework deploys. The stack is `<service>-<stage>`, the service being the config's
 * "service", else the project's package.json name (`--service` overrides both).
 *
 * No command exits 0 without doing its job: bad usage (unknown command, unknown flag, missing
 * or invalid value) is a UsageError with the fix, printed as one line, exit code 2; a failure
 * (missing config, task module, framework, credentials) one line, exit code 1.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError, VolleyError } from '../sdk/errors.js';
import { resolveInitOptions } from '../sdk/options.js';
import { CONFIG_FILE, readConfig, serviceFromPackageName } from './bundle.js';
import { dashboardCommand, timelineCommand } from './observe-cli.js';
import { findFramework, prepareService, runFramework } from './service.js';

type Flag = 'target' | 'stage' | 'region' | 'memory' | 'timeout' | 'runtime' | 'tasks' | 'service' | 'job' | 'all' | 'verbose';

interface CommandSpec {
  summary: string;
  flags: Flag[];
  targets?: string[];
  /** The one argument the command takes, if any, and its valid values. */
  actions?: string[];
  usage: string;
}

const FLAG_HELP: Record<Flag, string> = {
  target: '--target T       where the stack lives: aws, or localstack (stage local)',
  stage: '--stage S        stage (default dev for aws, local for localstack); the stack is <service>-<stage>',
  region: '--region R       AWS region (default AWS_REGION)',
  memory: "--memory MB      the worker function's memory, 128-10240 (default 1024)",
  timeout: "--timeout S      the worker function's timeout in seconds, 1-900 (default 900)",
  runtime: '--runtime R      nodejs22.x (default) or nodejs20.x',
  tasks: "--tasks a.ts,b.ts  task modules to add to volley.config.json's (relative to its folder)",
  service: '--service NAME   stack base name (default: volley.config.json "service", else package.json "name")',
  job: "--job ID         remove one job's objects",
  all: '--all            remove every object volley wrote',
  verbose: "--verbose        print serverless-offline's output",
};

const DEPLOY_FLAGS: Flag[] = ['target', 'stage', 'region', 'memory', 'timeout', 'runtime', 'tasks', 'service'];

export const COMMANDS: Record<string, CommandSpec> = {
  init: { summary: 'write volley.config.json, an example task module and a driver (never overwrites a file)', flags: [], usage: 'volley init' },
  emulators: {
    summary: 'bundle your task modules, start s3rver and serverless-offline, print the VOLLEY_* exports (until Ctrl-C)',
    flags: ['tasks', 'verbose'],
    usage: 'volley emulators [--tasks a.ts,b.ts] [--verbose]',
  },
  package: {
    summary: 'bundle your task modules and build the CloudFormation template and zip, offline (.volley/deploy/.serverless)',
    flags: DEPLOY_FLAGS,
    targets: ['aws', 'localstack'],
    usage: 'volley package --target aws|localstack [--stage S] [--region R] [--memory MB] [--timeout S] [--runtime R] [--tasks a.ts,b.ts] [--service NAME]',
  },
  deploy: {
    summary: 'bundle your task modules and deploy the stack, then print the VOLLEY_* exports',
    flags: DEPLOY_FLAGS,
    targets: ['aws', 'localstack'],
    usage: 'volley deploy --target aws|localstack [--stage S] [--region R] [--memory MB] [--timeout S] [--runtime R] [--tasks a.ts,b.ts] [--service NAME]',
  },
  info: {
    summary: "print the stack's function and bucket as VOLLEY_* exports for the driver",
    flags: ['target', 'stage', 'region', 'service'],
    targets: ['aws', 'localstack'],
    usage: 'volley info --target aws|localstack [--stage S] [--region R] [--service NAME]',
  },
  remove: {
    summary: 'empty the bucket and remove the stack',
    flags: ['target', 'stage', 'region', 'service'],
    targets: ['aws', 'localstack'],
    usage: 'volley remove --target aws|localstack [--stage S] [--region R] [--service NAME]',
  },
  cleanup: {
    summary: "remove one job's objects (--job ID) or all of volley's (--all)",
    flags: ['target', 'stage', 'region', 'service', 'job', 'all'],
    targets: ['aws', 'localstack', 'emulator'],
    usage: 'volley cleanup --target aws|localstack|emulator (--job ID | --all) [--stage S] [--region R] [--service NAME]',
  },
  localstack: {
    summary: 'start LocalStack in Docker on port 4566 and print AWS_ENDPOINT_URL (up), or stop it (down); LOCALSTACK_IMAGE, LOCALSTACK_AUTH_TOKEN',
    flags: [],
    actions: ['up', 'down'],
    usage: 'volley localstack up|down',
  },
  // These two parse their own arguments (infra/observe-cli.ts); the table gives their help.
  timeline: {
    summary: 'run a volley program and write its timeline (Chrome trace format, for Perfetto or chrome://tracing)',
    flags: [],
    usage: 'volley timeline [-o trace.json] -- <command> [args...]',
  },
  dashboard: {
    summary: 'show a saved timeline in the dashboard, on 127.0.0.1 (until Ctrl-C)',
    flags: [],
    usage: 'volley dashboard <trace.json> [--port N] [--host H]',
  },
};

export type Command = keyof typeof COMMANDS;

export const USAGE = `usage: volley <command> [options]   (volley <command> --help for its options)

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run in your project: the folder of the nearest ${CONFIG_FILE} (npx volley init writes one).`;

export function commandHelp(name: string): string {
  const c = COMMANDS[name]!;
  const flags = c.flags.map(
    (f) => `  ${f === 'target' && c.targets ? `--target T       ${c.targets.join(', ')}${name === 'cleanup' ? ' (emulator: VOLLEY_S3_ENDPOINT)' : ' (localstack: stage local)'}` : FLAG_HELP[f]}`,
  );
  return [`usage: ${c.usage}`, '', c.summary, ...(flags.length ? ['', 'options:', ...flags] : []), '  --help, -h       this help'].join('\n');
}

export interface CliOptions {
  command: Command;
  /** The command's argument (localstack: up or down). */
  action?: string;
  /** Set when --help was asked: the text to print. */
  help?: string;
  target: 'aws' | 'localstack' | 'emulator';
  stage: string;
  region?: string;
  memory?: string;
  timeout?: string;
  runtime?: string;
  tasks: string[];
  service?: string;
  job?: string;
  all: boolean;
  verbose: boolean;
}

const PARSE_OPTIONS = {
  target: { type: 'string' },
  stage: { type: 'string' },
  region: { type: 'string' },
  memory: { type: 'string' },
  timeout: { type: 'string' },
  runtime: { type: 'string' },
  tasks: { type: 'string' },
  service: { type: 'string' },
  job: { type: 'string' },
  all: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses argv (without node and script); throws a one-line UsageError that says the fix. */
export function parseCli(argv: string[]): CliOptions {
  const parse = () => parseArgs({ args: argv, options: PARSE_OPTIONS, allowPositionals: true, strict: true });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    // node:util's messages say what is wrong (unknown option, missing value) on their first line.
    const first = (err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, '');
    const cmd = argv.find((a) => !a.startsWith('-'));
    throw new UsageError(`${first}; see volley ${cmd && cmd in COMMANDS ? `${cmd} ` : ''}--help`);
  }
  const { values: given, positionals } = parsed;
  const values: Partial<Record<keyof typeof PARSE_OPTIONS, string | boolean>> & typeof given = { ...given };
  let [command, ...rest] = positionals;
  if (command === 'help') {
    [command, ...rest] = rest;
    values.help = true;
  }
  const base = { tasks: [], all: false, verbose: false, stage: 'dev', target: 'aws' as const };
  if (command === undefined) {
    if (values.help) return { ...base, command: 'init', help: USAGE };
    throw new UsageError(`no command given; valid commands are: ${Object.keys(COMMANDS).join(', ')}; see volley --help`);
  }
  if (!(command in COMMANDS)) {
    throw new UsageError(`unknown command ${JSON.stringify(command)}; valid commands are: ${Object.keys(COMMANDS).join(', ')}; see volley --help`);
  }
  const spec = COMMANDS[command]!;
  if (values.help) return { ...base, command, help: commandHelp(command) };
  const action = spec.actions ? rest.shift() : undefined;
  if (spec.actions && (action === undefined || !spec.actions.includes(action))) {
    throw new UsageError(`volley ${command} needs one of ${spec.actions.join(', ')}${action === undefined ? '' : `, got ${JSON.stringify(action)}`}; see volley ${command} --help`);
  }
  if (rest.length) throw new UsageError(`volley ${command} takes no ${action ? 'further ' : ''}argument ${JSON.stringify(rest[0])}; see volley ${command} --help`);
  const wrong = (Object.keys(values) as Flag[]).filter((f) => !spec.flags.includes(f));
  if (wrong.length) {
    throw new UsageError(
      `volley ${command} has no option --${wrong[0]}; ${spec.flags.length ? `its options are ${spec.flags.map((f) => `--${f}`).join(', ')}` : 'it takes no options'}; see volley ${command} --help`,
    );
  }
  let target: CliOptions['target'] = 'aws';
  if (spec.targets) {
    const t = values.target ?? process.env.VOLLEY_TARGET;
    if (!t || !spec.targets.includes(t)) {
      throw new UsageError(
        `volley ${command} needs --target ${spec.targets.join('|')}${t ? `, got ${JSON.stringify(t)}${values.target ? '' : ' (from VOLLEY_TARGET)'}` : ''}; see volley ${command} --help`,
      );
    }
    target = t as CliOptions['target'];
  }
  const num = (name: string, v: string | undefined, min: number, max: number, unit: string) => {
    if (v !== undefined && !(/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max))
      throw new UsageError(`--${name} must be a whole number of ${unit} from ${min} to ${max}, got ${JSON.stringify(v)}`);
  };
  num('memory', values.memory, 128, 10240, 'MB');
  num('timeout', values.timeout, 1, 900, 'seconds');
  if (values.runtime !== undefined && !['nodejs20.x', 'nodejs22.x'].includes(values.runtime)) throw new UsageError(`--runtime must be nodejs20.x or nodejs22.x, got ${JSON.stringify(values.runtime)}`);
  if (values.stage !== undefined && !/^[a-zA-Z0-9-]{1,16}$/.test(values.stage)) throw new UsageError(`--stage must be 1-16 letters, digits or '-', got ${JSON.stringify(values.stage)}`);
  if (values.service !== undefined && serviceFromPackageName(values.service) !== values.service) {
    throw new UsageError(`--service must be a lower-case letter then up to 39 lower-case letters, digits or '-', got ${JSON.stringify(values.service)}`);
  }
  if (command === 'cleanup' && !values.job === !values.all) throw new UsageError("volley cleanup needs one of --job ID (one job's objects) or --all (every object volley wrote)");
  const tasks = values.tasks ? values.tasks.split(',').filter(Boolean) : [];
  if (values.tasks !== undefined && tasks.length === 0) throw new UsageError('--tasks needs a comma-separated list of module paths, e.g. --tasks src/a.ts,src/b.ts');
  return {
    command,
    action,
    target,
    stage: values.stage ?? (target === 'localstack' ? 'local' : 'dev'),
    region: values.region,
    memory: values.memory,
    timeout: values.timeout,
    runtime: values.runtime,
    tasks,
    service: values.service,
    job: values.job,
    all: values.all ?? false,
    verbose: values.verbose ?? false,
  };
}

function stackName(o: CliOptions): string {
  return `${o.service ?? readConfig().service}-${o.stage}`;
}

async function backendFor(o: CliOptions) {
  const env = { ...process.env, ...(o.region ? { AWS_REGION: o.region } : {}) };
  const { createAwsBackend } = await import('../sdk/aws/backend.js');
  return createAwsBackend(resolveInitOptions({ target: o.target, jobId: 'cli', maxConcurrency: 16, aws: o.target === 'emulator' ? {} : { stackName: stackName(o) } }, env));
}

async function printInfo(o: CliOptions): Promise<void> {
  const b = await backendFor(o);
  await b.invoker.close();
  await b.close?.();
  console.log(`# stack ${stackName(o)} (target ${o.target}); for the driver:`);
  console.log(`export VOLLEY_TARGET=${o.target}`);
  console.log(`export VOLLEY_STACK=${stackName(o)}`);
  console.log(`export VOLLEY_FUNCTION_NAME=${b.functionName}`);
  console.log(`export VOLLEY_BUCKET=${b.bucket}`);
}

/** Packages or deploys: bundle, serverless.yml beside it, the project's framework. */
async function runStack(o: CliOptions, action: 'package' | 'deploy' | 'remove'): Promise<string> {
  const config = readConfig();
  const bin = findFramework(config.dir, o.target as 'aws' | 'localstack');
  const svc = await prepareService({ config, name: 'deploy', target: o.target, extraTasks: o.tasks, service: o.service });
  const b = svc.bundle;
  console.error(`volley: bundled ${b.tasks.length} task module(s) (${b.tasks.join(', ')}) into ${relative(process.cwd(), b.file)} (${(b.bytes / 1e6).toFixed(1)} MB)`);
  const params = [...(o.memory ? ['--param', `memory=${o.memory}`] : []), ...(o.timeout ? ['--param', `timeout=${o.timeout}`] : []), ...(o.runtime ? ['--param', `runtime=${o.runtime}`] : [])];
  runFramework(bin, [action, '--stage', o.stage, ...(o.region ? ['--region', o.region] : []), ...(action === 'remove' ? [] : params)], svc);
  return svc.dir;
}

/** `volley localstack up|down`: LocalStack in a container that outlives the command, on its default port. */
async function localstackCommand(action: 'up' | 'down'): Promise<void> {
  const ls = await import('./localstack.js');
  if (action === 'down') {
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

const EXAMPLE_TASKS = `import { remote } from 'volley';

/** A task: runs in a worker thread of the embedded runtime, or in the Lambda function once deployed. */
export const square = remote(function square(x: number): number {
  return x * x;
});
`;

const EXAMPLE_DRIVER = `import { get, isWorker, shutdown } from 'volley';
import { square } from './tasks.ts';

async function main(): Promise<void> {
  const squares = await get([1, 2, 3, 4].map((x) => square.remote(x))); // four tasks, side by side
  console.log('squares:', squares.join(' '));
  await shutdown();
}

// Worker threads import the modules that define tasks; keep driver code behind this guard.
if (!isWorker()) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
`;

const EXAMPLE_TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "strict": true,
    "skipLibCheck": true,
    "types": ["node"],
    "rewriteRelativeImportExtensions": true,
    "rootDir": "src",
    "outDir": "dist"
  },
  "include": ["src"]
}
`;

/**
 * Whether tsx's loader reaches worker threads on this Node: it registers its hooks with
 * module.register, whose hooks each thread gets only from Node 22.22.3 and 24.11.1 on (before,
 * the task module fails to load in every worker thread).
 */
function tsxReachesWorkers(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number);
  if (major >= 25) return true;
  if (major === 24) return minor > 11 || (minor === 11 && patch >= 1);
  if (major === 22) return minor > 22 || (minor === 22 && patch >= 3);
  return false;
}

/** The ways to run the driver that `volley init` suggests: only ways that work on this Node first. */
export function runDriverHints(version: string): string {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const compiled = 'npx tsc && node dist/main.js                 #';
  const tsx = 'npx tsx src/main.ts                          #';
  if (tsxReachesWorkers(version)) {
    return `  ${tsx} run the driver on the embedded runtime (npm install --save-dev tsx)\n  ${compiled} or compiled (npm install --save-dev typescript @types/node)`;
  }
  const strip = major > 22 || (major === 22 && minor >= 6) ? "\n  node --experimental-strip-types src/main.ts  # or with Node's type stripping" : '';
  return (
    `  ${compiled} run the driver on the embedded runtime (npm install --save-dev typescript @types/node)${strip}\n` +
    `  # not npx tsx src/main.ts on Node ${version}: tsx's loader reaches worker threads from Node 22.22.3 and 24.11.1 on`
  );
}

/** volley init: the files a project needs, each written only if it does not exist. */
function init(dir: string): void {
  const pkgFile = join(dir, 'package.json');
  const files: [string, string][] = [
    [CONFIG_FILE, `${JSON.stringify({ '//': 'Task modules bundled into the Lambda worker, relative to this file.', tasks: ['src/tasks.ts'] }, null, 2)}\n`],
    ['src/tasks.ts', EXAMPLE_TASKS],
    ['src/main.ts', EXAMPLE_DRIVER],
    ['tsconfig.json', EXAMPLE_TSCONFIG],
  ];
  if (!existsSync(pkgFile)) files.unshift(['package.json', `${JSON.stringify({ name: serviceFromPackageName(basename(dir)) ?? 'my-volley-app', private: true, type: 'module' }, null, 2)}\n`]);
  for (const [name, text] of files) {
    const file = join(dir, name);
    if (existsSync(file)) {
      console.log(`kept    ${name} (exists)`);
      continue;
    }
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text, { flag: 'wx' });
    console.log(`wrote   ${name}`);
  }
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { type?: string };
  if (pkg.type !== 'module') console.log(`note: ${pkgFile} has no "type": "module"; the example is ES modules: add it, or node --experimental-strip-types treats src/*.ts as CommonJS`);
  console.log(`next:
${runDriverHints(process.versions.node)}
  npx volley emulators                         # the AWS path on this machine (npm install --save-dev osls serverless-offline s3rver)
  npx volley deploy --target aws               # to AWS (npm install --save-dev osls)`);
}

export async function main(argv: string[]): Promise<void> {
  const asksHelp = argv[1] === '--help' || argv[1] === '-h';
  if (argv[0] === 'timeline' && !asksHelp) {
    process.exitCode = timelineCommand(argv.slice(1));
    return;
  }
  if (argv[0] === 'dashboard' && !asksHelp) {
    await dashboardCommand(argv.slice(1));
    return;
  }
  const o = parseCli(argv);
  if (o.help) {
    console.log(o.help);
    return;
  }
  switch (o.command) {
    case 'init':
      init(process.cwd());
      return;
    case 'emulators': {
      const { startEmulators } = await import('./emulators.js');
      const emu = await startEmulators({ projectRoot: process.cwd(), extraTasks: o.tasks, verbose: o.verbose });
      console.error(`volley: bundled ${emu.tasks.length} task module(s) (${emu.tasks.join(', ')}) from ${emu.configFile ?? 'the command line'}`);
      console.log('# volley emulators are running (Ctrl-C stops them); in another shell:');
      console.log('export VOLLEY_TARGET=emulator');
      console.log(`export VOLLEY_LAMBDA_ENDPOINT=${emu.aws.lambdaEndpoint}`);
      console.log(`export VOLLEY_S3_ENDPOINT=${emu.aws.s3Endpoint}`);
      console.log(`export VOLLEY_FUNCTION_NAME=${emu.aws.functionName}`);
      console.log(`export VOLLEY_BUCKET=${emu.aws.bucket}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await emu.stop();
      return;
    }
    case 'package': {
      const dir = await runStack(o, 'package');
      console.log(join(dir, '.serverless'));
      return;
    }
    case 'deploy':
      await runStack(o, 'deploy');
      await printInfo(o);
      return;
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
        await b.close?.();
      }
      await runStack(o, 'remove');
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
        await b.close?.();
      }
      return;
    }
    case 'localstack':
      await localstackCommand(o.action as 'up' | 'down');
      return;
    default:
      throw new ConfigError(`volley ${o.command} is not implemented`);
  }
}

/** Runs the CLI and sets the exit code: 0 done, 1 failed, 2 bad usage; errors as one line. */
export async function run(argv: string[]): Promise<void> {
  try {
    await main(argv);
  } catch (err) {
    if (err instanceof VolleyError) {
      console.error(`volley: ${err.message}`);
      process.exitCode = err instanceof UsageError ? 2 : 1;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  }
}
