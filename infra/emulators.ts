/**
 * Local emulators of the two AWS services volley uses, on free loopback ports:
 *
 * - `s3rver` (S3), run in this process on its own directory;
 * - `serverless-offline` on `osls` (the Lambda Invoke API), run as a child process from the
 *   real serverless.yml with a real worker bundle of the project's task modules (in
 *   `<project>/.volley/emulator/`); each invocation runs in a worker thread.
 *
 * The project is the folder of the nearest volley.config.json (`npx volley emulators` in a
 * user's project); s3rver, osls and serverless-offline are loaded from that project.
 *
 * Every start returns a `stop()` that ends what it started and waits for it; a child process
 * still alive when this process exits is killed. Used by the emulator test tier, benchmarks
 * and anyone who wants to try the AWS path without an account:
 *
 *   const emu = await startEmulators();
 *   const rt = new Runtime({ target: 'emulator', aws: emu.aws });
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VolleyError } from '../sdk/errors.js';
import { optionDefault } from '../sdk/options.js';
import { packageRoot, readConfig } from './bundle.js';
import { findFramework, prepareService, resolveFromProject } from './service.js';

/** volley's own package root (where serverless.yml is); the project of volley's own test tiers. */
export const projectRoot = packageRoot;

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after). */
export function freePort(): Promise<number> {
  return new Promise((resolveP, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolveP(port));
    });
  });
}

export interface Stoppable {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts s3rver (from `projectDir`'s dependencies, default volley's) in a child process
 * (infra/s3rver-process.ts says why) with `buckets` created. Credentials: S3RVER / S3RVER, and
 * any `keyPairs` ([id, secret]) besides. `pid` is the server process's (the bench reads its CPU time).
 */
export async function startS3rver(o: { buckets: string[]; directory?: string; projectDir?: string; keyPairs?: Array<[string, string]> }): Promise<Stoppable & { directory: string; pid: number }> {
  const s3rver = resolveFromProject(o.projectDir ?? packageRoot(), 's3rver', 'emulator');
  const ownDir = o.directory === undefined;
  const directory = o.directory ?? mkdtempSync(join(tmpdir(), 'volley-s3rver-'));
  const script = fileURLToPath(new URL('./s3rver-process.js', import.meta.url));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', script, JSON.stringify({ s3rver, directory, buckets: o.buckets, keyPairs: o.keyPairs })], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // No kill on exit needed: the child stops when its stdin ends, which it does when this process dies.
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const port = await new Promise<number>((resolveP, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new VolleyError(`s3rver did not start within 30 s: ${err.trim() || 'no output'}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolveP((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new VolleyError(`s3rver exited (${code}) before it listened: ${err.trim() || 'no output'}`));
    });
  });
  child.stdout!.resume();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directory,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((resolveP) => {
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(t);
            resolveP();
          });
          child.stdin!.end();
        });
      }
      if (ownDir) rmSync(directory, { recursive: true, force: true });
    },
  };
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
}

function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveP) => {
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig); // the whole process group: serverless and anything it started
      } catch {
        /* already gone */
      }
    };
    const t = setTimeout(() => kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolveP();
    });
    kill('SIGTERM');
  });
}

export interface OfflineOptions {
  /** S3 endpoint the worker uses (s3rver's). */
  s3Endpoint: string;
  /** Bucket the worker writes results to. */
  bucket: string;
  /** The service folder (serverless.yml and the bundle), from prepareService(). Default: volley's package root. */
  serviceDir?: string;
  /** Folder of worker.mjs, relative to serviceDir. Default: dist/lambda. */
  bundleDir?: string;
  /** The framework's entry (osls), from findFramework(). Default: the one serviceDir's project has. */
  bin?: string;
  /** Environment for the framework (the service name). */
  env?: Record<string, string>;
  /** serverless stage; the function is named volley-<stage>-worker. Default: emulator. */
  stage?: string;
  /** Give up starting after this many ms. Default: 60000. */
  startTimeoutMs?: number;
  /** Print serverless-offline's output. Default: false (kept, and shown if start-up fails). */
  verbose?: boolean;
}

/** Starts serverless-offline (osls) from serverless.yml; resolves once its Lambda API listens. */
export async function startServerlessOffline(o: OfflineOptions): Promise<Stoppable & { functionName: string }> {
  const stage = o.stage ?? 'emulator';
  const serviceDir = o.serviceDir ?? packageRoot();
  const bin = o.bin ?? findFramework(serviceDir, 'emulator');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const args = [
      bin,
      'offline',
      'start',
      '--stage',
      stage,
      '--param',
      `bucket=${o.bucket}`,
      '--param',
      `bundleDir=${o.bundleDir ?? 'dist/lambda'}`,
      '--host',
      '127.0.0.1',
      '--lambdaPort',
      String(port),
      '--httpPort',
      String(await freePort()),
      '--noPrependStageInUrl',
    ];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      // serverless-offline passes AWS_* variables through to the worker.
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: o.s3Endpoint,
      // Tasks that start tasks invoke the function through serverless-offline itself.
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${port}`,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      SLS_TELEMETRY_DISABLED: '1',
      SLS_NOTIFICATIONS_MODE: 'off',
      SLS_DEPRECATION_DISABLE: '*',
      NODE_NO_WARNINGS: '1',
      ...o.env,
    };
    // For profiling the Lambda side (bench/profile.ts): VOLLEY_OFFLINE_CPU_PROF=<dir> runs serverless-offline under --cpu-prof, each of its threads writing a profile there when it stops.
    const prof = process.env.VOLLEY_OFFLINE_CPU_PROF;
    const child = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...args], { cwd: serviceDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    let output = '';
    const ready = await new Promise<boolean>((resolveP, reject) => {
      const timer = setTimeout(() => reject(new Error(`serverless-offline did not start within ${o.startTimeoutMs ?? 60_000} ms:\n${output}`)), o.startTimeoutMs ?? 60_000);
      const onData = (d: Buffer) => {
        const s = d.toString();
        output += s;
        if (o.verbose) process.stderr.write(s);
        if (output.includes(`127.0.0.1:${port}`)) {
          clearTimeout(timer);
          resolveP(true);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (/EADDRINUSE/.test(output) && attempt < 3) resolveP(false);
        else reject(new Error(`serverless-offline exited with code ${code} while starting:\n${output}`));
      });
    }).catch(async (err: Error) => {
      await stopChild(child);
      throw err;
    });
    if (!ready) continue;
    // Keep draining its output so it never blocks on a full pipe.
    if (!o.verbose) {
      child.stdout!.removeAllListeners('data').resume();
      child.stderr!.removeAllListeners('data').resume();
    }
    return { endpoint: `http://127.0.0.1:${port}`, functionName: `${o.env?.VOLLEY_SERVICE ?? 'volley'}-${stage}-worker`, stop: () => stopChild(child) };
  }
}

export interface Emulators {
  /** Pass as `new Runtime({ target: 'emulator', aws: emu.aws })`. */
  aws: { lambdaEndpoint: string; s3Endpoint: string; functionName: string; bucket: string };
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** Where to look for the project's volley.config.json. Default: volley's own package root. */
  projectRoot?: string;
  /** Extra task modules to bundle (relative to the project's folder), e.g. test fixtures. */
  extraTasks?: string[];
  bucket?: string;
  verbose?: boolean;
}

/** Bundles the project's task modules, starts s3rver and serverless-offline. */
export async function startEmulators(o: EmulatorOptions = {}): Promise<Emulators & { tasks: string[]; configFile?: string }> {
  const config = readConfig(o.projectRoot ?? packageRoot());
  const bin = findFramework(config.dir, 'emulator');
  const bucket = o.bucket ?? (optionDefault('aws', 'bucket', 'emulator') as string);
  // The emulator's service keeps volley's name, so its function is volley-emulator-worker.
  const svc = await prepareService({ config, name: 'emulator', target: 'emulator', extraTasks: o.extraTasks, service: 'volley' });
  const s3 = await startS3rver({ buckets: [bucket], projectDir: config.dir });
  let offline: Awaited<ReturnType<typeof startServerlessOffline>>;
  try {
    offline = await startServerlessOffline({ s3Endpoint: s3.endpoint, bucket, serviceDir: svc.dir, bin, env: svc.env, verbose: o.verbose });
  } catch (err) {
    await s3.stop();
    throw err;
  }
  return {
    aws: { lambdaEndpoint: offline.endpoint, s3Endpoint: s3.endpoint, functionName: offline.functionName, bucket },
    tasks: svc.bundle.tasks,
    configFile: config.file,
    async stop() {
      await offline.stop();
      await s3.stop();
    },
  };
}
