import { pathToFileURL } from 'node:url';
import { UsageError } from './errors.js';
import { resolveTaskOptionsInput, type TaskOptions } from './options.js';
import type { AnyFunction, RemoteFunction } from './task-types.js';
import { registerTask, type TaskDefinition } from './registry.js';
import { currentRuntime } from './context.js';
import { actorRuntime, isClass, remoteClass, type ActorClass, type ActorOptions } from './actor.js';
import type { AnyClass } from './worker/actor.js';

export type { AnyFunction, RefOr, RemoteArgs, RemoteFunction } from './task-types.js';

/** file: URL of the module that called remote(), found from the call stack. */
function callerModule(skip: AnyFunction): string | undefined {
  const origPrepare = Error.prepareStackTrace;
  const origLimit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 20;
    Error.prepareStackTrace = (_e, callSites) => callSites;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, skip);
    const sites = holder.stack as NodeJS.CallSite[] | undefined;
    for (const site of sites ?? []) {
      const file = site.getFileName();
      if (!file || file.startsWith('node:') || file.startsWith('internal/')) continue;
      return file.startsWith('file:') ? file : pathToFileURL(file).href;
    }
    return undefined;
  } finally {
    Error.prepareStackTrace = origPrepare;
    Error.stackTraceLimit = origLimit;
  }
}

function makeRemoteFunction<F extends AnyFunction>(def: TaskDefinition, opts: TaskOptions): RemoteFunction<F> {
  const rf = function () {
    throw new UsageError(`${def.name} is a remote function and cannot be called directly: call ${def.name}.remote(...args) and read the result with get(ref)`);
  } as unknown as RemoteFunction<F>;
  Object.defineProperties(rf, {
    name: { value: def.name },
    taskName: { value: def.name, enumerable: true },
    taskOptions: { value: Object.freeze({ ...opts }), enumerable: true },
    definition: { value: def },
    remote: {
      value: (...args: unknown[]) => currentRuntime().submit(def, rf.taskOptions, args),
    },
    options: {
      value: (overrides: Omit<TaskOptions, 'name'>) => {
        const o = resolveTaskOptionsInput(`${def.name}.options()`, overrides);
        if (o.name !== undefined) {
          throw new UsageError(`${def.name}.options() cannot change the task name: a name is a task's identity; call remote(fn, { name }) instead`);
        }
        return makeRemoteFunction<F>(def, { ...opts, ...o });
      },
    },
  });
  return rf;
}

/**
 * Turns a class into an actor class (Ray's `@ray.remote` on a class): `X.remote(...args)`
 * starts an actor and returns its handle; `handle.method.remote(...args)` calls a method, in
 * order, one at a time. The class must be defined at a module's top level, like a task.
 *
 * @public
 */
export function remote<C extends AnyClass>(cls: C, options?: ActorOptions): ActorClass<C>;
/**
 * Turns a function into a remote function (Ray's `@ray.remote`). The function must be
 * defined at a module's top level, so that workers importing that module register it too;
 * its name (or `options.name`) identifies it everywhere.
 *
 * @public
 */
export function remote<F extends AnyFunction>(fn: F, options?: TaskOptions): RemoteFunction<F>;
export function remote(fn: AnyFunction | AnyClass, options?: TaskOptions | ActorOptions): RemoteFunction<AnyFunction> | ActorClass<AnyClass> {
  if (isClass(fn)) return remoteClass(fn, options as ActorOptions | undefined, callerModule(remote), actorRuntime);
  return remoteFunction(fn as AnyFunction, options as TaskOptions | undefined);
}

function remoteFunction<F extends AnyFunction>(fn: F, options?: TaskOptions): RemoteFunction<F> {
  if (typeof fn !== 'function') {
    throw new UsageError(`remote() takes a function, got ${fn === null ? 'null' : typeof fn}`);
  }
  const opts = resolveTaskOptionsInput('remote()', options);
  const name = opts.name ?? fn.name;
  if (!name) {
    throw new UsageError('remote() needs a named function, because the name identifies the task in every worker: write remote(function myTask(...) {...}) or remote(fn, { name: "myTask" })');
  }
  delete opts.name;
  const def: TaskDefinition = { name, fn, module: callerModule(remote) };
  registerTask(def);
  return makeRemoteFunction<F>(def, opts);
}
