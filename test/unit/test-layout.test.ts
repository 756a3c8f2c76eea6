/**
 * The test files of the tiers that run tasks in real worker threads (local, emulator, browser)
 * define no task at their top level. A worker thread imports the module that defines a task it
 * runs; if that module is a test file, node:test registers its tests in the thread too and runs
 * them there: a second copy of the file's tests, with runtimes of their own, inside the thread,
 * whose report sometimes reaches the runner (the count of tests then moves from run to run) and
 * sometimes not. Tasks for these tiers live in test/fixtures/.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const THREAD_TIERS = ['local', 'emulator', 'browser'];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : []));
}

/** Whether `node` is a call of `remote(...)`, also as `remote(...).options(...)`. */
function callsRemote(node: ts.Node): boolean {
  if (!ts.isCallExpression(node)) return false;
  const callee = node.expression;
  if (ts.isIdentifier(callee)) return callee.text === 'remote';
  return ts.isPropertyAccessExpression(callee) && callsRemote(callee.expression);
}

/** The tasks a source defines in its top-level statements: `const x = remote(...)` or a bare `remote(...)`. */
function topLevelTasks(fileName: string, text: string): string[] {
  const src = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const found: string[] = [];
  for (const st of src.statements) {
    if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) if (d.initializer && callsRemote(d.initializer)) found.push(d.name.getText(src));
    } else if (ts.isExpressionStatement(st) && callsRemote(st.expression)) found.push(st.expression.getText(src).slice(0, 40));
  }
  return found;
}

describe('test files of the thread tiers', () => {
  it('finds a task defined at the top level, and not one written inside a string for a generated project', () => {
    const text = [
      "import { remote } from 'volley';",
      'const a = remote(function a() { return 1; });',
      'export const b = remote(function b() { return 2; }).options({ maxRetries: 0 });',
      'remote(function c() { return 3; });',
      'const src = `const d = remote(function d() { return 4; });`;',
      'function inner() { const e = remote(function e() { return 5; }); return e; }',
    ].join('\n');
    assert.deepEqual(topLevelTasks('x.test.ts', text), ['a', 'b', 'remote(function c() { return 3; })']);
  });

  it('define no task at their top level (a worker thread importing one would run its tests again)', () => {
    const offenders: string[] = [];
    for (const tier of THREAD_TIERS) {
      for (const file of testFiles(join(root, 'test', tier))) {
        const tasks = topLevelTasks(file, readFileSync(file, 'utf8'));
        if (tasks.length) offenders.push(`${relative(root, file)}: ${tasks.join(', ')}`);
      }
    }
    assert.deepEqual(offenders, [], `move these tasks to a module in test/fixtures/ and import them:\n${offenders.join('\n')}`);
  });
});
