/**
 * The peers (tinypool, faast.js) and the charting library (vega, vega-lite) live in
 * bench/peers/ with their own package.json and lockfile, installed on demand, so the
 * project's own install stays lean. They are loaded by path, not by bare specifier, because
 * the compiled bench (dist/bench/) resolves packages from the root node_modules.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { peersDir } from './paths.js';

/** Installs bench/peers/node_modules from the lockfile when it is missing. */
export function ensurePeers(log: (line: string) => void): void {
  if (existsSync(join(peersDir, 'node_modules', '.package-lock.json'))) return;
  log('installing the benchmark peers (npm ci --prefix bench/peers), once ...');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['ci', '--prefix', peersDir, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Imports a package installed in bench/peers/. */
export async function importPeer<T>(name: string): Promise<T> {
  const require = createRequire(join(peersDir, 'package.json'));
  return (await import(pathToFileURL(require.resolve(name)).href)) as T;
}
