/** Where things are, from the compiled file's location (dist/bench/lib/ -> repository root). */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const peersDir = join(repoRoot, 'bench', 'peers');
export const resultsDir = join(repoRoot, 'bench', 'results');
/** Compiled bench modules (dist/bench/). */
export const benchDist = fileURLToPath(new URL('../', import.meta.url));
