/**
 * Random task graphs with random faults, for the property-based fault-injection runs (the local
 * and emulator tiers, and `npm run soak`): fast-check generates them; `runDag` runs one on a
 * runtime and checks every value against the same computation done in-process.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import type { ObjectRef, Runtime } from 'volley';
import type { FaultCounts } from './faults.js';
import { type NodeFault, type NodeSpec, dagNode, nodeValue } from './fixtures/failure-tasks.js';

/** An input of a node: an earlier node's ref, or a value put() by the driver. */
export type Input = { node: number } | { put: number };

export interface DagNode {
  spec: NodeSpec;
  inputs: Input[];
}

export interface DagCase {
  /** Values the driver put() (numbers, or large arrays stored as objects). */
  puts: Array<number | { fill: number; size: number }>;
  nodes: DagNode[];
  /** Seed of the invoker's and store's fault decisions. */
  seed: number;
}

/** A result over the inline threshold (100 KiB), so it travels through the store. */
export const LARGE = 16_000;

export interface DagShape {
  maxNodes: number;
  /** Node faults (crash, hang, throw) allowed, with their weights; hang costs a task timeout. */
  nodeFaults: NodeFault[];
  /** Probability that a node fails on a given attempt (attempts 1-3). */
  faultRate: number;
}

/**
 * Graphs where each node takes up to three earlier nodes or put values: fan-out (a node used by
 * many), fan-in (a node using many), diamonds (two paths from one node to another), chains;
 * about a third of the values large.
 */
export function dagArbitrary(shape: DagShape): fc.Arbitrary<DagCase> {
  const putArb = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.record({ fill: fc.integer({ min: 1, max: 99 }), size: fc.constant(LARGE) }));
  const none = Math.max(1, Math.round((1 - shape.faultRate) / Math.max(shape.faultRate, 0.001)));
  const faultArb = fc.oneof({ arbitrary: fc.constant(null), weight: none }, { arbitrary: fc.constantFrom(...shape.nodeFaults), weight: 1 });
  return fc
    .record({
      puts: fc.array(putArb, { minLength: 0, maxLength: 3 }),
      n: fc.integer({ min: 1, max: shape.maxNodes }),
      seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
    })
    .chain(({ puts, n, seed }) =>
      fc
        .tuple(
          ...Array.from({ length: n }, (_, i) =>
            fc.record({
              large: fc.integer({ min: 0, max: 2 }).map((k) => k === 0),
              faults: fc.tuple(faultArb, faultArb, faultArb),
              inputs: fc.array(
                i === 0 && puts.length === 0
                  ? fc.constant(null)
                  : fc.oneof(
                      ...(i > 0 ? [fc.integer({ min: 0, max: i - 1 }).map((j): Input => ({ node: j }))] : []),
                      ...(puts.length > 0 ? [fc.integer({ min: 0, max: puts.length - 1 }).map((j): Input => ({ put: j }))] : []),
                    ),
                { maxLength: 3 },
              ),
            }),
          ),
        )
        .map((raw) => ({
          puts,
          seed,
          nodes: raw.map((r, id) => {
            const faults: Record<number, NodeFault> = {};
            r.faults.forEach((f, k) => {
              if (f) faults[k + 1] = f;
            });
            return { spec: { id, size: r.large ? LARGE : 0, faults }, inputs: r.inputs.filter((x): x is Input => x !== null) };
          }),
        })),
    );
}

/** The values the graph must produce, computed in-process. */
export function expectedValues(c: DagCase): Array<number | Float64Array> {
  const putValues = c.puts.map((p) => (typeof p === 'number' ? p : new Float64Array(p.size).fill(p.fill)));
  const out: Array<number | Float64Array> = [];
  for (const n of c.nodes)
    out.push(
      nodeValue(
        n.spec,
        n.inputs.map((x) => ('node' in x ? out[x.node] : putValues[x.put])),
      ),
    );
  return out;
}

export interface DagOutcome {
  /** Nodes whose value differed from the in-process computation (or failed). */
  wrong: string[];
  /** The run did not finish within its deadline. */
  hung: boolean;
  /** Task ids of the nodes, in order. */
  taskIds: string[];
}

/** The node faults (crash, hang, throw) that fired: those planned for attempts that reached a worker. */
export function firedNodeFaults(c: DagCase, taskIds: string[], delivered: Map<string, number[]>): Record<NodeFault, number> {
  const n: Record<NodeFault, number> = { crash: 0, hang: 0, throw: 0 };
  c.nodes.forEach((node, i) => {
    for (const a of delivered.get(taskIds[i]!) ?? []) {
      const f = node.spec.faults?.[a];
      if (f) n[f]++;
    }
  });
  return n;
}

/**
 * Runs a graph on a runtime with fault injection, then shuts it down: the faults that fired (the
 * invoker's and store's in `counts`, plus the node faults of the attempts that were delivered)
 * are added to `totals`. Shared by the local and emulator fault suites and `npm run soak`.
 */
export async function runFaultyDag(
  rt: Runtime,
  c: DagCase,
  faulty: { invoker: { delivered: Map<string, number[]> }; counts: FaultCounts; totals: FaultCounts },
  deadlineMs: number,
  timeoutMs: number,
): Promise<DagOutcome & { retries: number; rebuilds: number }> {
  let outcome: DagOutcome;
  try {
    outcome = await runDag(rt, c, deadlineMs, timeoutMs);
  } finally {
    await rt.shutdown();
  }
  Object.assign(faulty.counts, firedNodeFaults(c, outcome.taskIds, faulty.invoker.delivered));
  for (const k of Object.keys(faulty.counts) as Array<keyof FaultCounts>) faulty.totals[k] += faulty.counts[k];
  return { ...outcome, retries: rt.faultCounts.retries, rebuilds: rt.faultCounts.rebuilds };
}

/** Runs a graph on `rt`; every node's task gets these options (retries, timeout). */
export async function runDag(rt: Runtime, c: DagCase, deadlineMs: number, timeoutMs: number): Promise<DagOutcome> {
  const fn = dagNode.options({ maxRetries: 10, retryExceptions: ['TransientError'], timeoutMs });
  const putRefs = c.puts.map((p) => rt.put(typeof p === 'number' ? p : new Float64Array(p.size).fill(p.fill)));
  const refs: ObjectRef<number | Float64Array>[] = [];
  for (const n of c.nodes) refs.push(rt.remote(fn, n.spec, ...n.inputs.map((x) => ('node' in x ? refs[x.node]! : putRefs[x.put]!))));
  const expected = expectedValues(c);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'hung'>((r) => {
    timer = setTimeout(() => r('hung'), deadlineMs);
  });
  try {
    const settled = await Promise.race([Promise.allSettled(refs.map((r) => rt.get(r))), deadline]);
    const taskIds = refs.map((r) => r.id);
    if (settled === 'hung') return { wrong: [], hung: true, taskIds };
    const wrong: string[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'rejected') wrong.push(`node ${i} failed: ${String((s.reason as Error)?.message ?? s.reason)}`);
      else if (!isDeepStrictEqual(s.value, expected[i])) wrong.push(`node ${i}: got ${describe(s.value)}, expected ${describe(expected[i])}`);
    });
    return { wrong, hung: false, taskIds };
  } finally {
    clearTimeout(timer);
  }
}

function describe(v: unknown): string {
  return v instanceof Float64Array ? `Float64Array(${v.length}) [${v[0]}, ...]` : String(v);
}
