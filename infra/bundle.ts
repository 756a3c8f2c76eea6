/**
 * Builds the Lambda worker bundle with esbuild: the handler plus the user's task modules, in
 * one ESM file with task names preserved (keepNames) and a source map beside it.
 *
 * Which task modules: the `tasks` list of volley.config.json (paths relative to that file).
 * The entry imports handlers/mark-worker first, so every task module sees `isWorker()` true
 * while it evaluates, then each task module in the listed order, then the handler.
 *
 * Deterministic: paths in the output are relative to the project root, no timestamps, sources
 * not embedded in the map; the same sources give the same bytes.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { ConfigError } from '../sdk/errors.js';

/** volley's own package root (the folder with package.json), whether run from sources or dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'handlers'))) return dir;
    dir = dirname(dir);
  }
  throw new ConfigError(`cannot find the volley package root (a folder with package.json and handlers/) above ${fileURLToPath(import.meta.url)}`);
}

export interface VolleyConfig {
  /** Task modules, relative to the config file. */
  tasks: string[];
}

export const CONFIG_FILE = 'volley.config.json';

/** Reads volley.config.json from `projectRoot`; a missing file means no task modules beyond `extraTasks`. */
export function readConfig(projectRoot: string): VolleyConfig {
  const file = join(projectRoot, CONFIG_FILE);
  if (!existsSync(file)) return { tasks: [] };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const tasks = (raw as { tasks?: unknown })?.tasks;
  if (!Array.isArray(tasks) || !tasks.every((t) => typeof t === 'string' && t !== '')) {
    throw new ConfigError(`${file} must have "tasks": an array of module paths (relative to the file), e.g. { "tasks": ["src/tasks.ts"] }`);
  }
  const valid = ['//', 'tasks'];
  const unknown = Object.keys(raw as object).filter((k) => !valid.includes(k));
  if (unknown.length) throw new ConfigError(`${file} has unknown field(s) ${unknown.join(', ')}; valid fields are: tasks (and "//" for a comment)`);
  return { tasks: tasks as string[] };
}

export interface BundleOptions {
  /** The user's project: where volley.config.json is, and what output paths are relative to. Default: cwd. */
  projectRoot?: string;
  /** Output folder; the bundle is `<outdir>/worker.mjs`. Default: `<projectRoot>/dist/lambda`. */
  outdir?: string;
  /** Task modules to add to the config's (relative to projectRoot), e.g. test fixtures. */
  extraTasks?: string[];
}

export interface BundleResult {
  file: string;
  bytes: number;
  tasks: string[];
}

export async function bundleWorker(o: BundleOptions = {}): Promise<BundleResult> {
  const projectRoot = resolve(o.projectRoot ?? process.cwd());
  const outdir = resolve(projectRoot, o.outdir ?? 'dist/lambda');
  const tasks = [...readConfig(projectRoot).tasks, ...(o.extraTasks ?? [])];
  const missing = tasks.filter((t) => !existsSync(resolve(projectRoot, t)));
  if (missing.length) {
    throw new ConfigError(`task module(s) ${missing.join(', ')} listed in ${join(projectRoot, CONFIG_FILE)} do not exist (paths are relative to that file)`);
  }

  // From a source checkout, bundle the TypeScript sources; from an installed package, dist/.
  const pkg = packageRoot();
  const fromSource = existsSync(join(pkg, 'sdk/index.ts')) && existsSync(join(pkg, 'handlers/worker.ts'));
  const base = fromSource ? pkg : join(pkg, 'dist');
  const ext = fromSource ? '.ts' : '.js';
  const spec = (p: string) => JSON.stringify(`./${relative(projectRoot, p).split('\\').join('/')}`.replace(/^\.\/\.\.\//, '../'));
  const contents = [
    `import ${spec(join(base, `handlers/mark-worker${ext}`))};`,
    ...tasks.map((t) => `import ${spec(resolve(projectRoot, t))};`),
    `export { handler } from ${spec(join(base, `handlers/worker${ext}`))};`,
    '',
  ].join('\n');

  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, 'worker.mjs');
  const result = await build({
    stdin: { contents, resolveDir: projectRoot, sourcefile: 'volley-worker-entry.js', loader: 'js' },
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
    metafile: true,
    alias: { volley: join(base, `sdk/index${ext}`) },
    tsconfigRaw: fromSource ? readFileSync(join(pkg, 'tsconfig.json'), 'utf8') : undefined,
    // A worker never starts a runtime: leave the driver-side backends (the thread pool, the
    // Lambda client) out of the bundle; their lazy import() stays, unreachable.
    plugins: [
      {
        name: 'no-driver-backends',
        setup(b) {
          b.onResolve({ filter: /(^|\/)(local|aws)\/backend(\.js|\.ts)?$/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
        },
      },
    ],
    // CommonJS dependencies inside an ESM bundle call require(): give them Node's.
    banner: { js: "import { createRequire as __volleyCreateRequire } from 'node:module'; const require = __volleyCreateRequire(import.meta.url);" },
  });
  const bytes = result.metafile.outputs[relative(projectRoot, file).split('\\').join('/')]?.bytes ?? 0;
  return { file, bytes, tasks };
}
