#!/usr/bin/env node
/**
 * Runs the compiled test files (dist/test/<tier>/**\/*.test.js) with node's test runner.
 * Usage: node infra/run-tests.mjs [tier ...]   (default: unit local emulator browser)
 * Only *.test.js files are tests; fixtures and shared scenario modules are not.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tiers = process.argv.slice(2).length ? process.argv.slice(2) : ['unit', 'local', 'emulator', 'browser'];

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? find(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []));
}

const files = tiers.flatMap((t) => find(join(root, 'dist/test', t))).sort();
if (files.length === 0) {
  console.error(`no test files found for tier(s) ${tiers.join(', ')} under dist/test; run npm run build first`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
