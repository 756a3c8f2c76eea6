/**
 * Aggregation in logarithmic time, written with nested tasks: a task sums its numbers if they
 * are few, and otherwise starts two tasks for the halves and adds their sums. A million
 * numbers become a tree of tasks 3 levels deep; the driver starts one task and reads one
 * number. The result is checked against a plain loop (the numbers are integers, so both sums
 * are exact).
 *
 *   npm run build && node dist/examples/tree-reduce.js [count] [leaf]
 */
import { get, init, isWorker, remote, shutdown } from 'volley';

/**
 * The remote function is `sumTree`; its own function is named apart (`sumHalves`), because
 * inside a named function expression its own name is the plain function, not the remote one.
 */
export const sumTree = remote(async function sumHalves(xs: Float64Array, leaf: number): Promise<number> {
  if (xs.length <= leaf) {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[i]!;
    return s;
  }
  const mid = xs.length >> 1;
  // Both halves run at once; while this task waits for them, its worker does not hold a slot they need.
  const [left, right] = await get([sumTree.remote(xs.subarray(0, mid), leaf), sumTree.remote(xs.subarray(mid), leaf)]);
  return left + right;
});

/** Integers below 2^20 from a small LCG: sums stay exact in float64. */
function numbers(n: number): Float64Array {
  const xs = new Float64Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    xs[i] = x >>> 12;
  }
  return xs;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1 << 20);
  const leaf = Number(process.argv[3] ?? 1 << 17);
  const xs = numbers(count);
  const levels = Math.max(0, Math.ceil(Math.log2(count / leaf)));
  console.log(`tree reduce: sum of ${count} numbers in leaves of at most ${leaf}: ${2 ** (levels + 1) - 1} tasks, ${levels} level(s) of tasks starting tasks`);

  await init();
  const t0 = performance.now();
  const total = await get(sumTree.remote(xs, leaf));
  const tree = performance.now() - t0;

  let plain = 0;
  for (let i = 0; i < xs.length; i++) plain += xs[i]!;
  console.log(`  nested tasks: ${total} in ${(tree / 1000).toFixed(2)} s (embedded runtime, including worker start-up)`);
  console.log(`  plain loop:   ${plain}`);
  await shutdown();
  if (total !== plain) throw new Error(`the tree's sum ${total} differs from the plain sum ${plain}`);
  console.log('  equal');
}

if (!isWorker()) await main();
