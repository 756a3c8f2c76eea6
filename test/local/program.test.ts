import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

function runProgram(file: string, args: string[] = [], nodeFlags: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const path = fileURLToPath(new URL(`../fixtures/${file}`, import.meta.url));
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeFlags, path, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe('a seed-style single-file program', () => {
  it('runs its tasks in workers, its driver code once, and exits after shutdown()', async () => {
    const r = await runProgram('single-file.js');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['result=1030']);
  });

  it('exits on its own even without shutdown(): idle workers do not hold the process', async () => {
    const r = await runProgram('single-file.js', ['no-shutdown']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['result=1030']);
  });

  it('without the isWorker() guard, driver code inside a worker fails clearly instead of starting workers', async () => {
    const r = await runProgram('unguarded.js');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /error=UsageError: \.remote\(\)\/put\(\) was called inside a worker/);
    assert.match(r.stdout, /if \(!isWorker\(\)\)/);
    assert.match(r.stdout, /^result=42$/m);
  });
});

describe('object lifetime', () => {
  it('frees stored objects once the program drops their refs and no task needs them', async () => {
    const r = await runProgram('free-objects.js', [], ['--expose-gc']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { total: number; afterDrop: number; afterAll: number };
    assert.equal(out.total, 100_000 * (2 + 3 + 4), 'the values arrived before they were freed');
    // Only the object still referenced by `kept` (800 KB plus framing) remains.
    assert.ok(out.afterDrop > 800_000 && out.afterDrop < 900_000, `store held ${out.afterDrop} bytes with one ref kept`);
    assert.equal(out.afterAll, 0);
  });
});
