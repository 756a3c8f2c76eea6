/** Command-line options of `npm run bench -- [options]`. */
import { parseArgs as parseArgsUtil } from 'node:util';
import type { SystemName } from '../systems/types.js';

export interface BenchOptions {
  quick: boolean;
  runs: number;
  emulator: boolean;
  /** Systems to run (the bare pool always runs: it is the baseline). */
  systems: SystemName[];
  /** Workload groups to run. */
  only?: string[];
  updateReadme: boolean;
  /** Rewrite README's Performance section from this saved full run, and run nothing. */
  readmeFrom?: string;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--emulator] [--systems volley,faast] [--only w1,w2,kernel,w3,hop,scale] [--update-readme]
  --quick           smaller sizes and one run of each figure: a smoke check of about a minute
  --runs N          repeat every figure N times (default 3; 1 with --quick), report min/median
  --emulator        also run volley on the emulator tier (target 'emulator'), and actor calls there (S3 traffic per call)
  --systems LIST    systems besides the bare pool (default volley,faast)
  --only LIST       workload groups (default all): w1, w2, kernel (the matrix kernel alone), w3, hop, scale
  --update-readme   rewrite the "Performance" section at the end of README.md from this run
  --readme-from F   rewrite that section from a saved full run (bench/results/<stamp>.json); runs nothing`;

/** A comma-separated list, each item one of `valid`. */
function list(flag: string, value: string, valid: readonly string[], hint: string): string[] {
  const items = value.split(',').filter(Boolean);
  const bad = items.filter((s) => !valid.includes(s));
  if (bad.length) throw new Error(`${flag}: unknown ${bad.join(', ')}; valid: ${hint}\n${USAGE}`);
  return items;
}

/** Parses the options with node:util's parseArgs (strict: unknown options and missing values are errors). */
export function parseArgs(argv: string[]): BenchOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  const o: BenchOptions = {
    quick: values.quick ?? false,
    runs: 0,
    emulator: values.emulator ?? false,
    systems: ['volley', 'faast'],
    updateReadme: values['update-readme'] ?? false,
    help: values.help ?? false,
  };
  if (values['readme-from'] !== undefined) o.readmeFrom = values['readme-from'];
  if (values.runs !== undefined) {
    const n = Number(values.runs);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--runs takes a whole number >= 1\n${USAGE}`);
    o.runs = n;
  }
  if (values.systems !== undefined) {
    const systems = list('--systems', values.systems, ['volley', 'faast', 'pool'], 'volley, faast (pool always runs; use --emulator for the emulator tier)');
    o.systems = systems.filter((s) => s !== 'pool') as SystemName[];
  }
  if (values.only !== undefined) o.only = list('--only', values.only, ['w1', 'w2', 'kernel', 'w3', 'hop', 'scale'], 'w1, w2, kernel, w3, hop, scale');
  if (o.runs === 0) o.runs = o.quick ? 1 : 3;
  return o;
}

function parse(argv: string[]) {
  return parseArgsUtil({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      emulator: { type: 'boolean' },
      'update-readme': { type: 'boolean' },
      'readme-from': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      runs: { type: 'string' },
      systems: { type: 'string' },
      only: { type: 'string' },
    },
  });
}
