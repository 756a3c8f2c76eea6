/**
 * Builds the Lambda worker bundle with esbuild: the handler plus the user's task modules, in
 * one ESM file with task names preserved (keepNames) and a source map beside it.
 *
 * Which task modules: the `tasks` list of volley.config.json (paths relative to that file).
 * The entry imports handlers/mark-worker first, so every task module sees `isWorker()` true
 * while it evaluates, then handlers/worker, whose `startWorker` it awaits at its top level (at
 * INIT) with an import() of each task module in the listed order (a listed module that another
 * imports before that one: `dependencyOrder`): one that throws there is
 * caught, the ones after it still load, and its tasks are answered with its error (see
 * handlers/worker.ts). esbuild keeps those modules in the one file, each evaluated when its
 * import() runs.
 *
 * Deterministic: paths in the output are relative to the project root, no timestamps, sources
 * not embedded in the map; the same sources give the same bytes.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build } from 'esbuild';
import { ConfigError } from '../sdk/errors.js';

/** volley's own package root (the folder of its package.json), whether run from sources or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'serverless.yml')) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'volley') return dir;
    dir = dirname(dir);
  }
  throw new ConfigError(`cannot find the volley package root (its package.json and serverless.yml) above ${fileURLToPath(import.meta.url)}; reinstall volley`);
}

export interface VolleyConfig {
  /** The config file, absolute; undefined when the project has none. */
  file?: string;
  /** The project's folder: the config file's, else the folder it was looked for from. Task paths are relative to it. */
  dir: string;
  /** Task modules, relative to `dir`. */
  tasks: string[];
  /** Base of the stack, function and bucket names (`<service>-<stage>`): the config's "service", else the project's package.json name. */
  service: string;
}

export const CONFIG_FILE = 'volley.config.json';
const CONFIG_FIELDS = ['//', 'tasks', 'service'];
/** What CloudFormation and Lambda accept in `<service>-<stage>-worker` (64 characters at most). */
const SERVICE_NAME = /^[a-zA-Z][a-zA-Z0-9-]{0,39}$/;

/** The nearest volley.config.json at or above `from`, or undefined. */
export function findConfig(from: string): string | undefined {
  let dir = resolve(from);
  for (;;) {
    const file = join(dir, CONFIG_FILE);
    if (existsSync(file)) return file;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** A service name from a package name: `@acme/My_App` -> `my-app`; undefined if nothing usable is left. */
export function serviceFromPackageName(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const s = name
    .replace(/^@[^/]*\//, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return SERVICE_NAME.test(s) ? s : undefined;
}

/**
 * Reads the project's volley.config.json (the nearest one at or above `from`); without one,
 * the project is `from` with no task modules beyond those given on the command line. Every
 * error names the file.
 */
export function readConfig(from: string = process.cwd()): VolleyConfig {
  const file = findConfig(from);
  const dir = file ? dirname(file) : resolve(from);
  let raw: Record<string, unknown> = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${file} must hold an object such as { "tasks": ["src/tasks.ts"] }`);
    const unknown = Object.keys(raw).filter((k) => !CONFIG_FIELDS.includes(k));
    if (unknown.length) throw new ConfigError(`${file} has unknown field(s) ${unknown.join(', ')}; valid fields are: tasks, service (and "//" for a comment)`);
    const tasks = raw.tasks;
    if (!Array.isArray(tasks) || !tasks.every((t) => typeof t === 'string' && t !== '')) {
      throw new ConfigError(`${file} must have "tasks": an array of module paths (relative to the file), e.g. { "tasks": ["src/tasks.ts"] }`);
    }
    if (raw.service !== undefined && (typeof raw.service !== 'string' || !SERVICE_NAME.test(raw.service))) {
      throw new ConfigError(`${file}: "service" must be a letter then up to 39 letters, digits or '-' (it names the stack <service>-<stage>), got ${JSON.stringify(raw.service)}`);
    }
  }
  let service = raw.service as string | undefined;
  if (service === undefined) {
    const pkg = join(dir, 'package.json');
    const name = existsSync(pkg) ? (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name : undefined;
    service = serviceFromPackageName(name);
    if (!service) {
      throw new ConfigError(
        `cannot derive a stack name from ${existsSync(pkg) ? `the "name" of ${pkg}` : `${dir} (it has no package.json)`}: set "service" in ${file ?? join(dir, CONFIG_FILE)} (a letter then letters, digits or '-'), or pass --service`,
      );
    }
  }
  return { file, dir, tasks: (raw.tasks as string[] | undefined) ?? [], service };
}

export interface BundleOptions {
  /** Where to look for volley.config.json (it and the folders above). Default: cwd. */
  projectRoot?: string;
  /** The config, already read (then projectRoot is not searched). */
  config?: VolleyConfig;
  /** Output folder; the bundle is `<outdir>/worker.mjs`. Default: `<project>/dist/lambda`. */
  outdir?: string;
  /** Task modules to add to the config's (relative to the project's folder), e.g. test fixtures. */
  extraTasks?: string[];
}

export interface BundleResult {
  file: string;
  bytes: number;
  /** Task modules in the bundle (relative to the project's folder), as esbuild's metafile lists them. */
  tasks: string[];
  /** The config file the tasks came from, if any. */
  configFile?: string;
}

/** The bundle's entry, as esbuild names it (it has no file). */
const ENTRY = 'volley-worker-entry.js';
/** Where the entry puts volley's API for the task modules' `import ... from 'volley'`. */
const API_KEY = 'volley.bundle.api';

export async function bundleWorker(o: BundleOptions = {}): Promise<BundleResult> {
  const config = o.config ?? readConfig(o.projectRoot ?? process.cwd());
  const projectRoot = config.dir;
  const outdir = resolve(projectRoot, o.outdir ?? 'dist/lambda');
  const tasks = [...new Set([...config.tasks, ...(o.extraTasks ?? [])])];
  const missing = tasks.filter((t) => !existsSync(resolve(projectRoot, t)));
  if (missing.length) {
    const where = config.file ? `listed in ${config.file} (paths are relative to that file)` : `given (paths are relative to ${projectRoot}, which has no ${CONFIG_FILE})`;
    throw new ConfigError(`task module(s) ${missing.join(', ')} ${where} do not exist`);
  }
  if (tasks.length === 0) {
    throw new ConfigError(`no task modules to bundle: list them in ${config.file ?? join(projectRoot, CONFIG_FILE)} as { "tasks": ["src/tasks.ts"] } (npx volley init writes one)`);
  }

  // From a source checkout, bundle the TypeScript sources; from an installed package, dist/.
  const pkg = packageRoot();
  const fromSource = existsSync(join(pkg, 'sdk/index.ts')) && existsSync(join(pkg, 'handlers/worker.ts'));
  const base = fromSource ? pkg : join(pkg, 'dist');
  const ext = fromSource ? '.ts' : '.js';
  const spec = (p: string) => JSON.stringify(`./${relative(projectRoot, p).split('\\').join('/')}`.replace(/^\.\/\.\.\//, '../'));
  // The task modules are evaluated in esbuild's lazy wrappers (each when its import() runs), and
  // so would every module they import: volley's whole API, parsed twice (V8 compiles a wrapper's
  // body when it is first called) at every cold start. They reach the API through the entry's
  // own copy instead (API_KEY), which loads as one flat module, as before.
  const apiFile = join(base, `sdk/index${ext}`);
  const api = await build({ entryPoints: [apiFile], bundle: false, write: false, metafile: true, format: 'esm', logLevel: 'silent', outdir: outdir });
  const apiNames = Object.values(api.metafile.outputs).flatMap((out) => out.exports);
  const entry = (order: string[]) =>
    [
      `import ${spec(join(base, `handlers/mark-worker${ext}`))};`,
      `import * as volleyApi from ${spec(apiFile)};`,
      `import { startWorker } from ${spec(join(base, `handlers/worker${ext}`))};`,
      `globalThis[Symbol.for(${JSON.stringify(API_KEY)})] = volleyApi;`,
      'export const handler = await startWorker([',
      ...order.map((t) => `  [${JSON.stringify(t)}, () => import(${spec(resolve(projectRoot, t))})],`),
      ']);',
      '',
    ].join('\n');

  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, 'worker.mjs');
  // Everything but the entry (its task modules' order).
  const options = {
    absWorkingDir: projectRoot,
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    mainFields: ['module', 'main'],
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true as const,
    // The package's own entries, to its sources (a checkout) or its dist/ (an installed package).
    // Keyed by the full specifier: esbuild's alias maps subpaths by appending them to the target
    // ('volley/aws' would become '<sdk/index>/aws'), so each exported subpath has its own key.
    alias: { 'volley/aws': join(base, `sdk/aws/index${ext}`) },
    tsconfigRaw: fromSource ? readFileSync(join(pkg, 'tsconfig.json'), 'utf8') : undefined,
    // A worker never starts a runtime: leave the driver-side backends (the thread pool, the
    // Lambda client) and the observers (progress, timeline, dashboard, cost) out of the bundle;
    // their lazy import() stays, unreachable.
    plugins: [
      {
        name: 'volley-api-of-the-entry',
        setup(b) {
          b.onResolve({ filter: /^volley$/ }, () => ({ path: 'volley', namespace: 'volley-api' }));
          b.onLoad({ filter: /.*/, namespace: 'volley-api' }, () => ({
            contents: `export const { ${apiNames.join(', ')} } = globalThis[Symbol.for(${JSON.stringify(API_KEY)})];`,
            loader: 'js',
          }));
        },
      },
      {
        name: 'no-driver-backends',
        setup(b) {
          // Not the entry's import() of a task module, whatever its name.
          b.onResolve({ filter: /(^|\/)((local|aws)\/backend|observe\/(index|timeline))(\.js|\.ts)?$/ }, (args) =>
            args.kind === 'dynamic-import' && args.importer !== join(projectRoot, ENTRY) ? { path: args.path, external: true } : undefined,
          );
        },
      },
      // A built-in module that an ES module imports would be an import statement at the top of
      // the bundle, loaded at INIT even where its importer is evaluated only on first use (the
      // AWS SDK's HTTP stack, which the handler imports when a task first reaches S3 or starts a
      // task: http, https, http2, tls, net, zlib, crypto). Each becomes a require() run where its
      // importer is evaluated: the same module object, loaded when it is needed.
      {
        name: 'builtins-when-used',
        setup(b) {
          b.onResolve({ filter: /^[a-z0-9_:/]+$/ }, (args) => (args.kind === 'import-statement' && isBuiltin(args.path) ? { path: args.path, namespace: 'volley-builtin' } : undefined));
          b.onLoad({ filter: /.*/, namespace: 'volley-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
        },
      },
    ],
    // CommonJS dependencies (and the built-ins above) inside an ESM bundle call require(): give them Node's.
    banner: { js: "import { createRequire as __volleyCreateRequire } from 'node:module'; const require = __volleyCreateRequire(import.meta.url);" },
  } satisfies BuildOptions;
  const bundle = (order: string[]) => build({ ...options, stdin: { contents: entry(order), resolveDir: projectRoot, sourcefile: ENTRY, loader: 'js' } });
  const rel = (p: string) => relative(projectRoot, p).split('\\').join('/');
  const key = (t: string) => rel(resolve(projectRoot, t));
  let result = await bundle(tasks);
  // A listed module that another imports loads before it (bundled again in that order, which
  // only a project whose task modules import each other needs): see dependencyOrder.
  const order = dependencyOrder(tasks, result.metafile.inputs, key);
  if (order.some((t, i) => t !== tasks[i])) result = await bundle(order);
  const bytes = result.metafile.outputs[rel(file)]?.bytes ?? 0;
  const bundled = order.filter((t) => key(t) in result.metafile.inputs);
  return { file, bytes, tasks: bundled, configFile: config.file };
}

/**
 * The task modules in the order the bundle loads them: each after the listed modules it imports
 * (statically, directly or through others), else as listed. A worker knows which tasks a module
 * that throws while it loads had registered by what the registry gained meanwhile
 * (handlers/worker.ts); had a listed module been evaluated as another's import, its tasks would
 * count as that module's, and fail with it where the embedded runtime (which imports each
 * task's own module) runs them. ESM evaluates a module's imports before it anyway, so this moves
 * no module's evaluation past one that depends on it.
 *
 * @param inputs - esbuild's metafile inputs (paths relative to the project, as `key` gives them).
 */
export function dependencyOrder(
  tasks: readonly string[],
  inputs: Readonly<Record<string, { imports: ReadonlyArray<{ path: string; kind: string; external?: boolean }> }>>,
  key: (task: string) => string,
): string[] {
  const listed = new Map(tasks.map((t) => [key(t), t]));
  const seen = new Set<string>();
  const order: string[] = [];
  const visit = (k: string) => {
    if (seen.has(k)) return;
    seen.add(k);
    // A dynamic import() runs when the module calls it, not while it loads.
    for (const i of inputs[k]?.imports ?? []) if (i.kind !== 'dynamic-import' && !i.external) visit(i.path);
    const t = listed.get(k);
    if (t !== undefined) order.push(t);
  };
  for (const t of tasks) visit(key(t));
  return order;
}
