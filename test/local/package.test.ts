/**
 * volley as a dependency of a separate Node project (linked by path, as `npm install ../volley`
 * does): importable from ESM and CommonJS, with type declarations for both.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function run(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

const task = (x: string) => `
const triple = remote(function triple(x${x}) { return 3 * x; });
async function main() {
  const [a, b] = await get([triple.remote(2), triple.remote(put(5))]);
  console.log('sum=' + (a + b));
  await shutdown();
}`;

describe('volley as a dependency of another project', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'volley-consumer-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(repo, join(dir, 'node_modules', 'volley'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    writeFileSync(join(dir, 'esm.mjs'), `import { remote, get, put, shutdown, isWorker } from 'volley';\n${task('')}\nif (!isWorker()) await main();\n`);
    writeFileSync(join(dir, 'cjs.cjs'), `const { remote, get, put, shutdown, isWorker } = require('volley');\n${task('')}\nif (!isWorker()) main();\n`);
    writeFileSync(
      join(dir, 'typed.mts'),
      `import { remote, get, put, shutdown, isWorker, type ObjectRef } from 'volley';\n${task(': number')}\nconst r: ObjectRef<number> = triple.remote(1);\nvoid r;\nif (!isWorker()) await main();\n`,
    );
    writeFileSync(
      join(dir, 'typed.cts'),
      `import { remote, get, put, shutdown, isWorker, TaskError } from 'volley';\n${task(': number')}\nconst e: typeof TaskError = TaskError;\nvoid e;\nif (!isWorker()) void main();\n`,
    );
    writeFileSync(join(dir, 'bad.mts'), `import { remote } from 'volley';\nconst f = remote(function f(x: number) { return x; });\nf.remote('not a number');\n`);
    const tsconfig = (files: string[]) =>
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(repo, 'node_modules/@types')],
          skipLibCheck: true,
          lib: ['es2022'],
        },
        files,
      });
    writeFileSync(join(dir, 'tsconfig.json'), tsconfig(['typed.mts', 'typed.cts']));
    writeFileSync(join(dir, 'tsconfig.bad.json'), tsconfig(['bad.mts']));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs tasks from an ES module', async () => {
    const r = await run(['esm.mjs'], dir);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), 'sum=21');
  });

  it('runs tasks from a CommonJS module', async () => {
    const r = await run(['cjs.cjs'], dir);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), 'sum=21');
  });

  it('type-checks for ESM and CJS consumers, and rejects a wrongly typed argument', async () => {
    const ok = await run([tsc, '-p', 'tsconfig.json'], dir);
    assert.equal(ok.code, 0, ok.out);
    const bad = await run([tsc, '-p', 'tsconfig.bad.json'], dir);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /bad\.mts.*Argument of type 'string' is not assignable/s);
  });
});
