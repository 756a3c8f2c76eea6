#!/usr/bin/env node
/**
 * Builds the package:
 *   0. wat2wasm: the WebAssembly kernels of sdk/kernels/ (see infra/build-wasm.mjs);
 *   1. tsc: sdk/, infra/, handlers/, examples/, test/, bench/ -> dist/ (ESM + .d.ts + source maps);
 *   2. esbuild: the CommonJS entries dist/cjs/index.cjs (with the embedded runtime's worker thread
 *      entry dist/cjs/worker-thread.js) and dist/cjs/aws.cjs (volley/aws), with .d.cts declarations
 *      beside them;
 *   3. esbuild: the Lambda worker bundle dist/lambda/worker.mjs (+ .map), with the task modules
 *      listed in volley.config.json (see infra/bundle.ts).
 * Deterministic: same sources, same bytes.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { buildWasm } from './build-wasm.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const dist = join(root, 'dist');

await buildWasm();
rmSync(join(dist, 'cjs'), { recursive: true, force: true });
rmSync(join(dist, 'esm'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], {
  stdio: 'inherit',
  cwd: root,
});
pruneStale(join(dist, 'test'), join(root, 'test'));

/**
 * tsc never deletes what it emitted before: a test moved or removed in the sources would keep
 * running from its old copy in dist/test. Drops emitted files whose source is gone.
 */
function pruneStale(outDir, srcDir) {
  for (const entry of readdirSync(outDir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const m = /^(.*?)(\.d)?\.js(\.map)?$/.exec(entry.name) ?? /^(.*?)\.d\.ts(\.map)?$/.exec(entry.name);
    if (!m) continue;
    const rel = relative(outDir, join(entry.parentPath, m[1]));
    if (!existsSync(join(srcDir, `${rel}.ts`))) rmSync(join(entry.parentPath, entry.name));
  }
}

// The ESM entry: the library, the worker thread's entry and the AWS subpath bundled with
// shared chunks, so a worker thread (which loads the entry, then the user's module importing
// 'volley') reads a few files instead of the whole module graph, and both share one copy.
// Chunks sit beside the entries: the pool finds './worker-thread.js' relative to its own chunk.
await build({
  entryPoints: {
    index: join(root, 'sdk/index.ts'),
    aws: join(root, 'sdk/aws/index.ts'),
    'worker-thread': join(root, 'sdk/local/worker-thread.ts'),
  },
  outdir: join(dist, 'esm'),
  bundle: true,
  splitting: true,
  chunkNames: '[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  keepNames: true,
  logLevel: 'warning',
});

// CommonJS entry: the whole library in one file, the embedded runtime's backend and its worker
// thread included, so that a CommonJS driver and its worker threads each run one copy of volley.
// The thread's entry is dist/cjs/worker-thread.js (CommonJS: dist/cjs/package.json says so),
// beside index.cjs, as the pool finds it (new URL('./worker-thread.js', import.meta.url), with
// import.meta.url defined as index.cjs's own URL): it requires index.cjs, which, seeing it is
// that thread's main module, runs the thread (sdk/local/worker-thread.ts). The task module's
// require('volley') then gets the same module. A thread entry of the tsc output (ESM) would load
// dist/sdk/*, a second copy of the library beside the task module's index.cjs.
const cjsThreadEntry = 'worker-thread.js';
await build({
  stdin: {
    contents: `export * from './index.js';\nif (__volleyThreadMain) require('./local/worker-thread.js');\n`,
    resolveDir: join(dist, 'sdk'),
    sourcefile: 'volley-cjs-entry.js',
    loader: 'js',
  },
  outfile: join(dist, 'cjs/index.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  keepNames: true,
  logLevel: 'warning',
  // The observers are loaded with import() from the tsc output (dist/sdk/observe/), not
  // bundled: they are the driver's only, and the dashboard finds its page beside its module.
  // Other import()s (task modules) stay import(), not require(): they may be ES modules.
  supported: { 'dynamic-import': true },
  define: { 'import.meta.url': '__volleyUrl' },
  banner: {
    js: [
      "const __volleyUrl = require('node:url').pathToFileURL(__filename).href;",
      `const __volleyThreadMain = require.main?.filename === require('node:path').join(__dirname, ${JSON.stringify(cjsThreadEntry)}) && !require('node:worker_threads').isMainThread;`,
    ].join('\n'),
  },
  plugins: [
    {
      name: 'external-observers',
      setup(b) {
        b.onResolve({ filter: /^\.\/(observe\/index|observe\/timeline)\.js$/ }, (args) => (args.kind === 'dynamic-import' ? { path: `../sdk/${args.path.slice(2)}`, external: true } : undefined));
      },
    },
  ],
});
writeFileSync(join(dist, 'cjs/package.json'), `${JSON.stringify({ type: 'commonjs' })}\n`);
writeFileSync(
  join(dist, 'cjs', cjsThreadEntry),
  "'use strict';\n// The embedded runtime's worker thread for a CommonJS driver: index.cjs runs it when this file is the thread's main module (see infra/build.mjs).\nrequire('./index.cjs');\n",
);

// volley/aws for require(): the AWS backends; classes shared with the main entry (errors) match
// across the two copies by name (see VolleyError's Symbol.hasInstance).
await build({
  entryPoints: [join(dist, 'sdk/aws/index.js')],
  outfile: join(dist, 'cjs/aws.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  keepNames: true,
  logLevel: 'warning',
});

// The dashboard's page (HTML, CSS, script; no dependencies) beside the module that serves it,
// in both layouts: dist/sdk/observe/ (tsc, and the CJS entry) and dist/esm/ (its chunks).
for (const to of [join(dist, 'sdk/observe/page'), join(dist, 'esm/page')]) {
  mkdirSync(to, { recursive: true });
  for (const f of ['index.html', 'app.js', 'style.css']) copyFileSync(join(root, 'sdk/observe/page', f), join(to, f));
}

// Declarations for require(): the ESM .d.ts files, renamed .d.cts with their imports adjusted.
function copyDecls(from, to) {
  for (const ent of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, ent.name);
    if (ent.isDirectory()) copyDecls(src, join(to, ent.name));
    else if (ent.name.endsWith('.d.ts')) {
      mkdirSync(to, { recursive: true });
      const text = readFileSync(src, 'utf8').replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.js\2/g, '$1$2$3.cjs$2');
      writeFileSync(join(to, ent.name.replace(/\.d\.ts$/, '.d.cts')), text);
    }
  }
}
copyDecls(join(dist, 'sdk'), join(dist, 'cjs'));

// The Lambda worker bundle: handler + the task modules of volley.config.json; the count is of
// the task modules esbuild actually put in it.
const { bundleWorker } = await import(pathToFileURL(join(dist, 'infra/bundle.js')).href);
const lambda = await bundleWorker({ projectRoot: root, outdir: join(dist, 'lambda') });
console.log(
  `built ${relative(process.cwd(), dist) || 'dist'}/ (ESM, CJS, declarations; Lambda bundle ${(lambda.bytes / 1e6).toFixed(1)} MB with ${lambda.tasks.length} task module(s) of ${relative(process.cwd(), lambda.configFile) || 'volley.config.json'})`,
);
