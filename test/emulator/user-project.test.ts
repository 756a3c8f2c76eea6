/**
 * volley as a new user gets it: packed once with `npm pack`, installed from the tarball into a
 * fresh project outside the repository (os.tmpdir()), set up with `npx volley init`, with a
 * task module that imports a small dependency of the project's own (a local `file:` package,
 * so no registry is needed). The project is made once and shared by every case.
 *
 * For speed, the project links osls, serverless-offline and s3rver (which a user installs with
 * `npm install --save-dev osls serverless-offline s3rver`) from volley's own node_modules, and
 * runs volley's copies of tsc and tsx: the same packages, without another install. The CLI
 * finds them through the project's node_modules, as it finds a user's.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const tsx = join(repo, 'node_modules/tsx/dist/cli.mjs');
const AdmZip = require('adm-zip') as new (file: string) => { getEntries(): { entryName: string; getData(): Buffer }[] };

/** A user's shell: none of the npm_* variables of the `npm test` running us, no VOLLEY_* of ours. */
const userEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') && !k.startsWith('VOLLEY_'))),
  SLS_TELEMETRY_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  NODE_NO_WARNINGS: '1',
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeout = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: { ...userEnv, ...env }, timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const npx = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => run('npx', ['--no-install', ...args], cwd, env);
/** What `npx volley` runs (node_modules/.bin/volley), without npm exec's second of start-up per call. */
const volley = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => run(join(cwd, 'node_modules/.bin/volley'), args, cwd, env);
const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

const TASKS = `import { remote } from 'volley';
import { shout } from 'shout';

export const square = remote(function square(x: number): number {
  return x * x;
});

export const greet = remote(function greet(name: string): string {
  return shout(\`hello \${name}\`);
});
`;

const DRIVER = `import { get, isWorker, shutdown } from 'volley';
import { greet, square } from './tasks.ts';

async function main(): Promise<void> {
  const squares = await get([1, 2, 3, 4].map((x) => square.remote(x)));
  console.log('squares:', squares.join(' '));
  console.log(await get(greet.remote('volley')));
  await shutdown();
}

if (!isWorker()) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
`;

const EXPECTED = 'squares: 1 4 9 16\nHELLO VOLLEY!\n';

/**
 * A CommonJS driver that is its own task module. whoRuns reports the files of the volley
 * package on its stack: the thread's code that called it (the pool's thread entry, the task's
 * execution), which must be the copy the task's require('volley') got.
 */
const CJS_DRIVER = `const { remote, get, isWorker, shutdown, TaskError, VolleyError } = require('volley');

const triple = remote(function triple(x) {
  return 3 * x;
});
const sumOfTriples = remote(async function sumOfTriples(xs) {
  const ys = await get(xs.map((x) => triple.remote(x)));
  return ys.reduce((a, b) => a + b, 0);
});
const fails = remote(function fails() {
  throw new RangeError('no such thing');
});
const whoRuns = remote(function whoRuns() {
  const files = (new Error().stack.match(/(?:file:\\/\\/)?\\/[^\\s():]+/g) ?? []).map((f) => f.replace(/^file:\\/\\//, ''));
  return { isWorker: isWorker(), files: [...new Set(files.filter((f) => f.includes('/node_modules/volley/')))] };
});

async function main() {
  const nested = await get(sumOfTriples.remote([1, 2, 3]));
  let error;
  try {
    await get(fails.remote());
  } catch (err) {
    error = { name: err.name, task: err instanceof TaskError, volley: err instanceof VolleyError };
  }
  console.log(JSON.stringify({ nested, error, thread: await get(whoRuns.remote()), driver: require.resolve('volley') }));
  await shutdown();
}

if (!isWorker()) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
`;

describe("volley in a user's own project (npm pack, npx volley)", () => {
  let base: string;
  let dir: string;
  /** What `volley init` printed from its "next:" line on. */
  let initNext = '';
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'volley-user-'));
    dir = join(base, 'my-app');
    mkdirSync(join(dir, 'vendor/shout'), { recursive: true });
    // dist/ is built by `npm test`; pack it as it is (no prepare script: it would build again).
    const pack = await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', base], repo);
    assert.equal(pack.code, 0, show(pack));
    const tarball = join(base, readdirSync(base).find((f) => f.endsWith('.tgz'))!);
    writeFileSync(join(dir, 'vendor/shout/package.json'), JSON.stringify({ name: 'shout', version: '1.0.0', type: 'module', main: 'index.js', types: 'index.d.ts' }));
    writeFileSync(join(dir, 'vendor/shout/index.js'), 'export function shout(s) { return String(s).toUpperCase() + "!"; }\n');
    writeFileSync(join(dir, 'vendor/shout/index.d.ts'), 'export declare function shout(s: string): string;\n');
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'my-app', version: '1.0.0', private: true, type: 'module', dependencies: { shout: 'file:vendor/shout', volley: `file:${tarball}` } }, null, 2),
    );
    // Everything volley depends on is in the npm cache after `npm ci`; ask the registry only for what is not.
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
    assert.equal(install.code, 0, show(install));
    for (const p of ['osls', 'serverless-offline', 's3rver']) symlinkSync(join(repo, 'node_modules', p), join(dir, 'node_modules', p), 'dir');
    const init = await npx(['volley', 'init'], dir);
    assert.equal(init.code, 0, show(init));
    assert.match(init.stdout, /wrote {3}volley\.config\.json\nwrote {3}src\/tasks\.ts\nwrote {3}src\/main\.ts\nwrote {3}tsconfig\.json\n/);
    initNext = init.stdout.slice(init.stdout.indexOf('next:\n'));
    writeFileSync(join(dir, 'src/tasks.ts'), TASKS);
    writeFileSync(join(dir, 'src/main.ts'), DRIVER);
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('npx volley --help lists the commands and exits 0; each command has its own --help', async () => {
    const r = await npx(['volley', '--help'], dir);
    assert.equal(r.code, 0, show(r));
    for (const c of ['init', 'emulators', 'package', 'deploy', 'info', 'remove', 'cleanup']) assert.match(r.stdout, new RegExp(`^ {2}${c} `, 'm'));
    const d = await npx(['volley', 'deploy', '--help'], dir);
    assert.equal(d.code, 0, show(d));
    assert.match(d.stdout, /^usage: volley deploy --target aws\|localstack/);
    assert.match(d.stdout, /--memory MB/);
  });

  it('bad usage exits 2 with one line saying the fix; nothing exits 0 without doing its job', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^volley: no command given; valid commands are: init, .*; see volley --help\n$/],
      [['launch'], /^volley: unknown command "launch"; valid commands are: .*; see volley --help\n$/],
      [['package', '--target', 'aws', '--frob'], /^volley: Unknown option '--frob'; see volley package --help\n$/],
      [['package'], /^volley: volley package needs --target aws\|localstack; see volley package --help\n$/],
      [['init', '--target', 'aws'], /^volley: volley init has no option --target; it takes no options; see volley init --help\n$/],
      [['deploy', '--target', 'aws', '--memory', 'lots'], /^volley: --memory must be a whole number of MB from 128 to 10240, got "lots"\n$/],
    ];
    for (const [args, message] of cases) {
      const r = await volley(args, dir);
      assert.equal(r.code, 2, `volley ${args.join(' ')}: ${show(r)}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });

  it('init a second time keeps every file', async () => {
    const before = readFileSync(join(dir, 'src/tasks.ts'), 'utf8');
    const r = await volley(['init'], dir);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /kept {4}volley\.config\.json \(exists\)\nkept {4}src\/tasks\.ts \(exists\)\nkept {4}src\/main\.ts \(exists\)\nkept {4}tsconfig\.json \(exists\)/);
    assert.equal(readFileSync(join(dir, 'src/tasks.ts'), 'utf8'), before);
  });

  it('runs the driver compiled by tsc under node, on the embedded runtime', async () => {
    const build = await run(process.execPath, [tsc, '-p', '.', '--typeRoots', join(repo, 'node_modules/@types')], dir);
    assert.equal(build.code, 0, show(build));
    const r = await run(process.execPath, ['dist/main.js'], dir);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, EXPECTED);
  });

  it("runs a CommonJS driver (require('volley')): its worker threads run one copy of volley, the one its require() gets", async () => {
    writeFileSync(join(dir, 'cjs-main.cjs'), CJS_DRIVER);
    const r = await run(process.execPath, ['cjs-main.cjs'], dir);
    assert.equal(r.code, 0, show(r));
    const out = JSON.parse(r.stdout) as { nested: number; error: unknown; thread: { isWorker: boolean; files: string[] }; driver: string };
    const cjsEntry = join(realpathSync(dir), 'node_modules/volley/dist/cjs/index.cjs');
    assert.equal(out.driver, cjsEntry);
    assert.equal(out.nested, 18, 'a task started tasks and waited for them');
    assert.deepEqual(out.error, { name: 'TaskError', task: true, volley: true });
    assert.equal(out.thread.isWorker, true);
    // The thread ran the task from index.cjs too: not from an ES module copy of the library beside it.
    assert.deepEqual(out.thread.files, [cjsEntry], "the files of volley on the task thread's stack");
  });

  it('runs the driver under tsx: worker threads inherit its loader, or one ConfigError says why they cannot', async () => {
    // Whether this Node's worker threads get tsx's hooks, asked of a bare Worker, not of volley.
    writeFileSync(join(dir, 'probe-worker.ts'), 'const n: number = 1;\nconsole.log("worker loaded", n);\n');
    writeFileSync(join(dir, 'probe.ts'), "import { Worker } from 'node:worker_threads';\nnew Worker(new URL('./probe-worker.ts', import.meta.url)).on('error', () => console.log('worker failed'));\n");
    const probe = await run(process.execPath, [tsx, 'probe.ts'], dir);
    const inherits = probe.stdout.includes('worker loaded 1');
    // volley init suggests tsx first only where it works: on an older Node, the compiled driver, and why not tsx.
    if (inherits) assert.match(initNext, /^next:\n {2}npx tsx src\/main\.ts +# run the driver/, initNext);
    else
      assert.match(
        initNext,
        /^next:\n {2}npx tsc && node dist\/main\.js +# run the driver[^\n]*\n(.*\n)? {2}# not npx tsx src\/main\.ts on Node [\d.]+: tsx's loader reaches worker threads from Node 22\.22\.3 and 24\.11\.1 on\n/,
        initNext,
      );
    const r = await run(process.execPath, [tsx, 'src/main.ts'], dir);
    if (inherits) {
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, EXPECTED);
    } else {
      assert.equal(r.code, 1, show(r));
      assert.equal(r.stdout, '');
      // One error for the whole run, a ConfigError naming the module, the loader and the fix; no task crashed.
      assert.equal(r.stderr.match(/^ConfigError: /gm)?.length, 1, show(r));
      assert.match(
        r.stderr,
        /^ConfigError: worker threads cannot load the task module .*src\/tasks\.ts: Unknown file extension "\.ts".*--import .*tsx.* Fix: .*experimental-strip-types.*compile the tasks to JavaScript/m,
      );
      assert.match(r.stderr, /code: 'CONFIG'/);
      assert.doesNotMatch(r.stderr, /WORKER_CRASHED|WORKER_FAILED|TaskError/);
    }
  });

  const strips = Boolean((process.features as { typescript?: unknown }).typescript) || Number(process.versions.node.split('.')[0]) >= 23;
  it('runs the driver under node --experimental-strip-types', { skip: strips ? false : `Node ${process.version} has no type stripping (Node 22.6+)` }, async () => {
    const r = await run(process.execPath, ['--experimental-strip-types', 'src/main.ts'], dir);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, EXPECTED);
  });

  it('volley/aws loads from CommonJS and from ESM', async () => {
    const cjs = await run(process.execPath, ['-e', "const a = require('volley/aws'); console.log(typeof a.S3Store, typeof a.LambdaInvoker, typeof a.createAwsBackend)"], dir);
    assert.equal(cjs.code, 0, show(cjs));
    assert.equal(cjs.stdout, 'function function function\n');
    const esm = await run(process.execPath, ['--input-type=module', '-e', "const a = await import('volley/aws'); console.log(typeof a.S3Store)"], dir);
    assert.equal(esm.stdout, 'function\n', show(esm));
  });

  it("the package's type declarations check without skipLibCheck, from ES modules and from CommonJS", async () => {
    // A project that checks its libraries' types (skipLibCheck off, the compiler's default) read
    // volley/aws's declarations, which named a type that stripInternal had removed (TS2339).
    mkdirSync(join(dir, 'types-check'), { recursive: true });
    // README's explicit Runtime: its constructor's public signature must be in the declarations.
    writeFileSync(
      join(dir, 'types-check/esm.mts'),
      "import * as volley from 'volley';\nimport * as aws from 'volley/aws';\nexport const all = [volley, aws, new volley.Runtime({ local: { maxWorkers: 4 } })];\n",
    );
    writeFileSync(
      join(dir, 'types-check/cjs.cts'),
      "import volley = require('volley');\nimport aws = require('volley/aws');\nexport const all = [volley, aws, new volley.Runtime({ local: { maxWorkers: 4 } })];\n",
    );
    const options = {
      strict: true,
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      target: 'ES2022',
      types: ['node'],
      typeRoots: [join(repo, 'node_modules/@types')],
      noEmit: true,
      skipLibCheck: false,
    };
    writeFileSync(join(dir, 'types-check/tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['esm.mts', 'cjs.cts'] }));
    const r = await run(process.execPath, [tsc, '-p', 'types-check'], dir);
    assert.equal(r.code, 0, show(r));
  });

  it("npx volley package --target aws builds a zip with the project's task and its own dependency, named after the project", async () => {
    const r = await run('npx', ['--no-install', 'volley', 'package', '--target', 'aws'], join(dir, 'src')); // from a subfolder: the config is found above
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /volley: bundled 1 task module\(s\) \(src\/tasks\.ts\) into /);
    const out = join(dir, '.volley/deploy/.serverless');
    assert.equal(r.stdout.trim(), out);
    const zip = new AdmZip(join(out, 'my-app.zip'));
    assert.deepEqual(
      zip
        .getEntries()
        .map((e) => e.entryName)
        .sort(),
      ['dist/lambda/worker.mjs', 'dist/lambda/worker.mjs.map'],
    );
    const sources = (
      JSON.parse(
        zip
          .getEntries()
          .find((e) => e.entryName.endsWith('.map'))!
          .getData()
          .toString(),
      ) as { sources: string[] }
    ).sources;
    assert.ok(
      sources.some((s) => s.endsWith('/src/tasks.ts')),
      "the project's task module is in the bundle",
    );
    assert.ok(
      sources.some((s) => s.endsWith('/vendor/shout/index.js')),
      'its own dependency is in the bundle',
    );
    const code = zip
      .getEntries()
      .find((e) => e.entryName === 'dist/lambda/worker.mjs')!
      .getData()
      .toString();
    // keepNames: the task is registered under its own name, and calls the dependency's function.
    assert.ok(/__name\(function greet\d*\(name\) \{\n\s*return shout\(`hello \$\{name\}`\);\n\s*\}, "greet"\)/.test(code), 'worker.mjs defines the task greet');
    assert.ok(/function shout\(\w+\) \{\n\s*return String\(\w+\)\.toUpperCase\(\) \+ "!";/.test(code), "worker.mjs holds the dependency's shout");
    const template = readFileSync(join(out, 'cloudformation-template-update-stack.json'), 'utf8');
    assert.match(template, /"FunctionName": "my-app-dev-worker"/);
  });

  it("errors name the project's config file", async () => {
    writeFileSync(join(dir, 'volley.config.json'), JSON.stringify({ tasks: ['src/tasks.ts', 'src/missing.ts'] }));
    try {
      const r = await volley(['package', '--target', 'aws'], dir);
      assert.equal(r.code, 1, show(r));
      assert.equal(r.stderr, `volley: task module(s) src/missing.ts listed in ${join(dir, 'volley.config.json')} (paths are relative to that file) do not exist\n`);
    } finally {
      writeFileSync(join(dir, 'volley.config.json'), JSON.stringify({ tasks: ['src/tasks.ts'] }));
    }
  });

  it('the driver runs against npx volley emulators', async () => {
    const emu: ChildProcess = spawn('npx', ['--no-install', 'volley', 'emulators'], { cwd: dir, env: userEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    emu.stderr!.on('data', (d: Buffer) => (err += d));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`volley emulators did not print its exports in 90 s:\n${out}\n${err}`)), 90_000);
        emu.stdout!.on('data', (d: Buffer) => {
          out += d;
          if (/export VOLLEY_BUCKET=.*\n/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
        emu.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`volley emulators exited with ${code}:\n${out}\n${err}`));
        });
      });
      assert.match(err, /volley: bundled 1 task module\(s\) \(src\/tasks\.ts\) from .*volley\.config\.json/);
      const env = Object.fromEntries([...out.matchAll(/^export (VOLLEY_[A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
      assert.equal(env.VOLLEY_TARGET, 'emulator');
      assert.deepEqual(Object.keys(env).sort(), ['VOLLEY_BUCKET', 'VOLLEY_FUNCTION_NAME', 'VOLLEY_LAMBDA_ENDPOINT', 'VOLLEY_S3_ENDPOINT', 'VOLLEY_TARGET'], out);
      const r = await run(process.execPath, ['dist/main.js'], dir, env);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, EXPECTED);
    } finally {
      // Ctrl-C, as in a terminal: the whole process group.
      const exited = new Promise((resolve) => emu.once('exit', resolve));
      try {
        process.kill(-emu.pid!, 'SIGINT');
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-emu.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 15_000);
      await exited;
      clearTimeout(t);
    }
  });
});
