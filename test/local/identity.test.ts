/**
 * A task's identity is its name, and it must be the same in the driver and in a bundled,
 * minified worker. esbuild's keepNames (set by volley's Lambda bundler) preserves it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { build } from 'esbuild';
import * as fixtures from '../fixtures/tasks.js';

const fixture = fileURLToPath(new URL('../fixtures/tasks.js', import.meta.url));
// Inside the project, so the bundle's external imports (the AWS SDK) resolve from node_modules.
const dir = mkdtempSync(fileURLToPath(new URL('../identity-', import.meta.url)));

/** Names registered by a minified bundle of the fixture module (volley inside it), read in a fresh process. */
async function namesInBundle(keepNames: boolean): Promise<string[] | Error> {
  const outfile = join(dir, `tasks-${keepNames}.mjs`);
  await build({
    entryPoints: [fixture],
    bundle: true,
    minify: true,
    keepNames,
    format: 'esm',
    platform: 'node',
    outfile,
    external: ['@aws-sdk/*', '@smithy/*'],
    logLevel: 'silent',
  });
  const script = `try { await import(${JSON.stringify(outfile)}); console.log(JSON.stringify([...globalThis[Symbol.for('volley.registry')].keys()].sort())); } catch (e) { console.log(JSON.stringify({ error: e.name + ': ' + e.message })); }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout, stderr) => {
      if (err) return reject(new Error(stderr.slice(0, 500)));
      const out = JSON.parse(stdout) as string[] | { error: string };
      resolve(Array.isArray(out) ? out : new Error(out.error));
    });
  });
}

describe('task identity', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));
  const driverNames = Object.values(fixtures)
    .filter((v): v is { taskName: string } & typeof v => typeof v === 'function' && 'taskName' in v)
    .map((rf) => rf.taskName)
    .sort();

  it('survives bundling and minification with keepNames', async () => {
    assert.ok(driverNames.includes('failIfNegative') && driverNames.length >= 10);
    assert.deepEqual(await namesInBundle(true), driverNames);
  });

  it('is lost by a minifier that drops function names, and remote() says so instead of guessing', async () => {
    const names = await namesInBundle(false);
    assert.ok(names instanceof Error, `expected a clear error, got names ${JSON.stringify(names)}`);
    assert.match(names.message, /^UsageError: remote\(\) needs a named function/);
  });
});
