/**
 * The user's Serverless service: a folder in the user's project (`.volley/deploy` or
 * `.volley/emulator`) holding volley's serverless.yml beside the worker bundle of the user's
 * task modules, and the Serverless Framework found in the user's project to run there.
 *
 * volley does not depend on a Serverless Framework itself: the embedded runtime and a driver
 * talking to a deployed stack need none, and osls with serverless-offline is ~500 packages
 * (330 MB). `package`, `deploy` and `remove` need one (it turns serverless.yml into the
 * CloudFormation template and the zip, and deploys them); `emulators` needs osls with
 * serverless-offline and s3rver. Each is looked up from the user's package.json, and a
 * missing one is a ConfigError with the exact install command.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, VolleyError } from '../sdk/errors.js';
import { type BundleResult, bundleWorker, packageRoot, type VolleyConfig } from './bundle.js';

export type ServiceTarget = 'aws' | 'localstack' | 'emulator';

/** Serverless plugins each target's service loads (the template lists both; a copy keeps what it needs). */
const PLUGINS: Record<ServiceTarget, string[]> = { aws: [], localstack: ['serverless-localstack'], emulator: ['serverless-offline'] };

/** What to install for each target, as one command. */
export function installHint(target: ServiceTarget): string {
  if (target === 'emulator') return 'npm install --save-dev osls serverless-offline s3rver';
  return `npm install --save-dev osls${target === 'localstack' ? ' serverless-localstack' : ''}   (or serverless@4 in place of osls)`;
}

function resolver(projectDir: string) {
  const req = createRequire(join(projectDir, 'package.json'));
  return (id: string): string | undefined => {
    try {
      return req.resolve(id);
    } catch {
      return undefined;
    }
  };
}

/** Whether `name` is installed where Node (and the framework, for plugins) looks from `dir`: a node_modules folder of it or above. */
function hasPackage(dir: string, name: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', name, 'package.json'))) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * The Serverless Framework of the user's project (osls, else serverless v3/v4), and the plugins
 * and packages `target` needs, resolved from `projectDir`. Throws a ConfigError naming what is
 * missing, why it is needed, and the command that installs it.
 */
export function findFramework(projectDir: string, target: ServiceTarget): string {
  const resolve = resolver(projectDir);
  const ids = target === 'emulator' ? ['osls/bin/serverless.js'] : ['osls/bin/serverless.js', 'serverless/bin/serverless.js'];
  const bin = ids.map(resolve).find(Boolean);
  const missing = [...(bin ? [] : [target === 'emulator' ? 'osls' : 'a Serverless Framework (osls or serverless)']), ...PLUGINS[target].filter((p) => !hasPackage(projectDir, p))];
  if (target === 'emulator' && !resolve('s3rver')) missing.push('s3rver');
  if (missing.length) {
    const why =
      target === 'emulator'
        ? 'volley emulators runs serverless-offline on osls (the Lambda Invoke API) and s3rver (S3) from your project'
        : 'volley packages and deploys its stack with the Serverless Framework, which turns serverless.yml into the CloudFormation template and the zip of your tasks';
    throw new ConfigError(`${missing.join(', ')} not found in ${projectDir}: ${why}; install with: ${installHint(target)}`);
  }
  return bin!;
}

/** Where a package of the user's project is (s3rver for the emulators); a ConfigError saying how to install it when it is not there. */
export function resolveFromProject(projectDir: string, id: string, target: ServiceTarget): string {
  const path = resolver(projectDir)(id);
  if (!path) throw new ConfigError(`${id} not found in ${projectDir}; install with: ${installHint(target)}`);
  return path;
}

export interface PreparedService {
  /** The service folder: serverless.yml and dist/lambda/worker.mjs. */
  dir: string;
  bundle: BundleResult;
  /** Environment for the framework: the service name (serverless.yml reads `${env:VOLLEY_SERVICE}`). */
  env: Record<string, string>;
}

/**
 * Writes `<project>/.volley/<name>/`: volley's serverless.yml with the plugins `target` needs,
 * and the worker bundle of the project's task modules (plus `extraTasks`).
 */
export async function prepareService(o: { config: VolleyConfig; name: 'deploy' | 'emulator'; target: ServiceTarget; extraTasks?: string[]; service?: string }): Promise<PreparedService> {
  const dir = join(o.config.dir, '.volley', o.name);
  mkdirSync(dir, { recursive: true });
  const template = readFileSync(join(packageRoot(), 'serverless.yml'), 'utf8');
  const block = /^plugins:\n(?: {2}- .*\n)+/m;
  if (!block.test(template)) throw new VolleyError(`${join(packageRoot(), 'serverless.yml')} has no plugins block to adapt; reinstall volley`);
  const plugins = PLUGINS[o.target];
  const yml = template.replace(block, plugins.length ? `plugins:\n${plugins.map((p) => `  - ${p}\n`).join('')}` : '');
  writeFileSync(join(dir, 'serverless.yml'), yml);
  const bundle = await bundleWorker({ config: o.config, outdir: join(dir, 'dist/lambda'), extraTasks: o.extraTasks });
  return { dir, bundle, env: { VOLLEY_SERVICE: o.service ?? o.config.service } };
}

/** Runs the framework in the service folder, its output passed through; throws if it fails. */
export function runFramework(bin: string, args: string[], svc: PreparedService): void {
  console.error(`volley: serverless ${args.join(' ')}  (in ${svc.dir})`);
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: svc.dir,
    stdio: 'inherit',
    env: { SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off', ...process.env, ...svc.env },
  });
  if (r.status !== 0) throw new VolleyError(`serverless ${args[0]} failed (exit code ${r.status ?? r.signal}); its output above says why`);
}
