/**
 * `npm run soak [-- --runs N] [-- --seed S]`: the fault-injection property run, many times
 * (default 1,000), on the embedded runtime. Prints what happened: runs, faults injected by
 * kind, retries and rebuilds, wrong results, hangs, and objects left in the store after
 * shutdown(); exits non-zero if any run was wrong, hung or leaked.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { dagArbitrary, runFaultyDag } from './dag.js';
import { faultyLocalRuntime } from './fault-harness.js';
import { noFaults } from './faults.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '1000' }, seed: { type: 'string' } }, strict: true });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs takes a whole number >= 1, got ${values.runs}`);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);

const cases = fc.sample(dagArbitrary({ maxNodes: 12, nodeFaults: ['crash', 'throw', 'crash', 'throw', 'hang'], faultRate: 0.08 }), { numRuns: runs, seed });
const faults = {
  invoker: { throttle: 0.05, lambda5xx: 0.05, reset: 0.08, upToAttempt: 3 },
  store: { store503: 0.05, noSuchKey: 0.1, slow: 0.1, slowMs: 5 },
};
const totals = noFaults();
const tally = { runs: 0, tasks: 0, retries: 0, rebuilds: 0, wrong: 0, hangs: 0, overCommitted: 0, objectsLeft: 0 };
const problems: string[] = [];
const t0 = Date.now();
for (const [i, c] of cases.entries()) {
  const counts = noFaults();
  const { rt, store, inner, invoker } = await faultyLocalRuntime(c.seed, faults, counts);
  const outcome = await runFaultyDag(rt, c, { invoker, counts, totals }, 30_000, 300);
  tally.retries += outcome.retries;
  tally.rebuilds += outcome.rebuilds;
  tally.runs++;
  tally.tasks += c.nodes.length;
  if (outcome.hung) tally.hangs++;
  if (outcome.wrong.length) tally.wrong += outcome.wrong.length;
  const over = store.overCommitted();
  tally.overCommitted += over.length;
  const left = inner.keys();
  tally.objectsLeft += left.length;
  if (outcome.hung || outcome.wrong.length || over.length || left.length) {
    problems.push(`run ${i} (case seed ${c.seed}): ${outcome.hung ? 'hung; ' : ''}${[...outcome.wrong, ...over.map((k) => `committed twice: ${k}`), ...left.map((k) => `left: ${k}`)].join('; ')}`);
  }
  if ((i + 1) % 100 === 0) console.error(`soak: ${i + 1}/${runs} runs, ${Math.round((Date.now() - t0) / 1000)} s`);
}
const injected = Object.values(totals).reduce((a, b) => a + b, 0);
console.log(`soak (sample seed ${seed}), ${Math.round((Date.now() - t0) / 1000)} s:`);
console.log(`  runs             ${tally.runs} (${tally.tasks} tasks)`);
console.log(
  `  faults injected  ${injected}: ${Object.entries(totals)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ')}`,
);
console.log(`  retries          ${tally.retries} (rebuilds of lost objects: ${tally.rebuilds})`);
console.log(`  wrong results    ${tally.wrong}`);
console.log(`  hangs            ${tally.hangs}`);
console.log(`  committed twice  ${tally.overCommitted}`);
console.log(`  objects left     ${tally.objectsLeft}`);
for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
process.exit(problems.length ? 1 : 0);
