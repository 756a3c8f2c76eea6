/**
 * Which tasks a Lambda worker answers with a task module's load failure (sdk/worker/load-failure.ts),
 * as the handler's executeTask asks: those the failed module registered, and tasks no module
 * registered; never the other modules' tasks, nor a task not found while no module failed (a
 * TaskNotFoundError, as always), nor a task that failed for another reason; and the bundle's
 * load order, which keeps a listed module's tasks its own. The whole sandbox is in
 * test/emulator/init-error.test.ts; this file's process starts with no failure recorded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dependencyOrder } from '../../infra/bundle.js';
import { ProtocolError, TaskNotFoundError } from '../../sdk/errors.js';
import { moduleFailureResult, recordBundleFailure } from '../../sdk/worker/load-failure.js';

const timing = { fetchMs: 0, runMs: 0, storeMs: 0 };
const notFound = new TaskNotFoundError('task "x" is not registered in this worker');
const env = (fn: string, module?: string) => ({ taskId: `t-${fn}`, fn, ...(module ? { module } : {}) });
const message = (r: ReturnType<typeof moduleFailureResult>) => (r?.kind === 'error' ? `${r.error.name}: ${r.error.message}` : undefined);

describe('the tasks a Lambda worker answers with a module load failure', () => {
  it('none while no module failed: a task not found stays a TaskNotFoundError', () => {
    assert.equal(moduleFailureResult(env('missing', 'file:///app/dist/tasks.js'), timing, notFound), undefined);
    assert.equal(moduleFailureResult(env('inc'), timing), undefined);
  });

  it("one module failed: its tasks and unregistered ones get its error (fault user); others' tasks and other errors do not", () => {
    recordBundleFailure('src/a.ts', new Error('A broke'), ['fromA']);
    const a = moduleFailureResult(env('fromA'), timing);
    assert.equal(a?.kind, 'error');
    assert.equal(a.fault, 'user');
    assert.equal(a.taskId, 't-fromA');
    assert.match(message(a)!, /^Error: A broke \(thrown while the worker loaded task module src\/a\.ts: no task of that module can run in this sandbox/);
    assert.match(message(moduleFailureResult(env('later', 'file:///x/other.js'), timing, notFound))!, /^Error: A broke \(thrown while the worker loaded task module src\/a\.ts/);
    assert.equal(moduleFailureResult(env('fromB'), timing), undefined, "another module's task runs");
    assert.equal(moduleFailureResult(env('later'), timing, new ProtocolError('bad args')), undefined, 'a failure other than not found is answered as itself');
  });

  it("two modules failed: an unregistered task gets the one whose path matches the driver's module, else both are named", () => {
    recordBundleFailure('src/jobs/b.ts', new RangeError('B broke'), ['fromB']);
    assert.match(message(moduleFailureResult(env('fromB'), timing))!, /^RangeError: B broke \(thrown while the worker loaded task module src\/jobs\/b\.ts/);
    assert.match(message(moduleFailureResult(env('fromA'), timing))!, /^Error: A broke/);
    // Compiled on the driver (dist/…/b.js) where the bundle has b.ts: the name and folder match.
    assert.match(message(moduleFailureResult(env('later', 'file:///home/me/app/dist/jobs/b.js'), timing, notFound))!, /^RangeError: B broke/);
    assert.match(message(moduleFailureResult(env('later', 'file:///home/me/app/src/a.ts'), timing, notFound))!, /^Error: A broke/);
    for (const e of [env('later', 'file:///home/me/app/src/c.ts'), env('later')]) {
      assert.equal(
        message(moduleFailureResult(e, timing, notFound)),
        'TaskNotFoundError: task "later" is not registered in this worker, and 2 task modules threw while it loaded them, before it could register: src/a.ts (Error: A broke); src/jobs/b.ts (RangeError: B broke) ' +
          '(thrown while the worker loaded task modules src/a.ts, src/jobs/b.ts: the task is most likely defined in one of them; ' +
          "no task of those modules can run in this sandbox (the bundle's other modules load and run); fix them and deploy again (npx volley deploy, or restart the emulators))",
      );
    }
  });

  it("matches the driver's module by its decoded path: a folder with a space in its name", () => {
    recordBundleFailure('src/my jobs/d.ts', new TypeError('D in my jobs broke'), ['fromD1']);
    recordBundleFailure('src/other/d.ts', new SyntaxError('D in other broke'), ['fromD2']);
    // The driver's URL spells the space %20; the bundle's path has it as it is.
    assert.match(message(moduleFailureResult(env('later', 'file:///home/me/my%20app/dist/my%20jobs/d.js'), timing, notFound))!, /^TypeError: D in my jobs broke/);
    assert.match(message(moduleFailureResult(env('later', 'file:///home/me/my%20app/dist/other/d.js'), timing, notFound))!, /^SyntaxError: D in other broke/);
  });
});

describe('the order a Lambda bundle loads its task modules in', () => {
  const imports = (...paths: string[]) => ({ imports: paths.map((path) => ({ path, kind: 'import-statement' })) });
  const key = (t: string) => t.replace(/^\.\//, '');

  it('as listed, but a listed module that another imports (directly or not) before it', () => {
    const inputs = {
      'src/main.ts': imports('src/util.ts', 'volley'),
      'src/util.ts': imports('src/tasks.ts', 'node_modules/lib/index.js'),
      'src/tasks.ts': imports('volley'),
      'src/other.ts': { imports: [{ path: 'src/late.ts', kind: 'dynamic-import' }] },
      'src/late.ts': imports(),
      volley: imports(),
    };
    assert.deepEqual(dependencyOrder(['src/main.ts', 'src/other.ts', './src/tasks.ts', 'src/late.ts'], inputs, key), ['./src/tasks.ts', 'src/main.ts', 'src/other.ts', 'src/late.ts']);
    assert.deepEqual(dependencyOrder(['src/other.ts', 'src/late.ts'], inputs, key), ['src/other.ts', 'src/late.ts'], 'a dynamic import() does not run at load');
  });

  it('a cycle of listed modules: each once, in the order first reached', () => {
    const inputs = { 'a.ts': imports('b.ts'), 'b.ts': imports('a.ts') };
    assert.deepEqual(dependencyOrder(['a.ts', 'b.ts'], inputs, key), ['b.ts', 'a.ts']);
  });
});
