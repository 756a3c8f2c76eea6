/**
 * The table of task definitions, by name. Tasks register when their module is imported, in
 * the driver and in every worker alike, so a name is a task's identity across processes.
 *
 * It lives on globalThis under a registered symbol: it is definitions only (no runtime
 * state), and one table must serve both copies of the library when ESM and CJS builds are
 * loaded side by side in one worker.
 */
import { DuplicateTaskError } from './errors.js';

export interface TaskDefinition {
  readonly name: string;
  readonly fn: (...args: never[]) => unknown;
  /** file: URL of the module that called remote(), when known. */
  readonly module?: string;
}

const KEY = Symbol.for('volley.registry');

function table(): Map<string, TaskDefinition> {
  const g = globalThis as unknown as Record<symbol, Map<string, TaskDefinition> | undefined>;
  return (g[KEY] ??= new Map());
}

export function registerTask(def: TaskDefinition): void {
  const t = table();
  const prev = t.get(def.name);
  if (prev && prev.fn !== def.fn) {
    throw new DuplicateTaskError(
      `two tasks are named ${JSON.stringify(def.name)} (${prev.module ?? 'unknown module'} and ${def.module ?? 'unknown module'}): ` +
        `task names identify tasks across driver and workers, so they must be unique; rename one function or pass remote(fn, { name: '...' })`,
    );
  }
  t.set(def.name, def);
}

export function lookupTask(name: string): TaskDefinition | undefined {
  return table().get(name);
}

/** The names of the tasks registered so far, in the order they registered. */
export function taskNames(): string[] {
  return [...table().keys()];
}
