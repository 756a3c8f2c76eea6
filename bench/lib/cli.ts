/** Command-line options of `npm run bench -- [options]`. */
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

export const USAGE = `usage: npm run bench -- [--quick] [--runs N] [--emulator] [--systems volley,faast] [--only w1,w2,w3,hop,scale] [--update-readme]
  --quick           smaller sizes and one run of each figure: a smoke check of about a minute
  --runs N          repeat every figure N times (default 3; 1 with --quick), report min/median
  --emulator        also run volley on the emulator tier (target 'emulator')
  --systems LIST    systems besides the bare pool (default volley,faast)
  --only LIST       workload groups (default all): w1, w2, w3, hop, scale
  --update-readme   rewrite the "Performance" section at the end of README.md from this run
  --readme-from F   rewrite that section from a saved full run (bench/results/<stamp>.json); runs nothing`;

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { quick: false, runs: 0, emulator: false, systems: ['volley', 'faast'], updateReadme: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    switch (a) {
      case '--quick':
        o.quick = true;
        break;
      case '--emulator':
        o.emulator = true;
        break;
      case '--update-readme':
        o.updateReadme = true;
        break;
      case '--readme-from':
        o.readmeFrom = value();
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--runs takes a whole number >= 1\n${USAGE}`);
        o.runs = n;
        break;
      }
      case '--systems': {
        const list = value().split(',').filter(Boolean);
        const bad = list.filter((s) => !['volley', 'faast', 'pool'].includes(s));
        if (bad.length) throw new Error(`--systems: unknown ${bad.join(', ')}; valid: volley, faast (pool always runs; use --emulator for the emulator tier)\n${USAGE}`);
        o.systems = list.filter((s) => s !== 'pool') as SystemName[];
        break;
      }
      case '--only': {
        const list = value().split(',').filter(Boolean);
        const bad = list.filter((s) => !['w1', 'w2', 'w3', 'hop', 'scale'].includes(s));
        if (bad.length) throw new Error(`--only: unknown ${bad.join(', ')}; valid: w1, w2, w3, hop, scale\n${USAGE}`);
        o.only = list;
        break;
      }
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.runs === 0) o.runs = o.quick ? 1 : 3;
  return o;
}
