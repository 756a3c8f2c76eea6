/**
 * volley: Ray's task model on AWS Lambda.
 *
 * ```ts
 * import { remote, get, isWorker } from 'volley';
 * const square = remote(function square(x: number) { return x * x; });
 * if (!isWorker()) console.log(await get(square.remote(4)));
 * ```
 *
 * @packageDocumentation
 */
export { remote, type RemoteFunction, type RemoteArgs, type RefOr, type AnyFunction } from './remote.js';
export type { Opaque, Resolved } from './task-types.js';
export { kill, getActor, actorId, type ActorClass, type ActorHandle, type ActorMethod, type ActorOptions, type MethodNames } from './actor.js';
export type { AnyClass } from './worker/actor.js';
export { ObjectRef } from './ref.js';
export { Matrix, seededRandom } from './matrix.js';
export type { KernelInfo } from './kernels/gemm.js';
export { Runtime, type CancelOptions, type GetOptions, type WaitOptions, type WaitResult, type TaskStats, type Values } from './runtime.js';
export { taskContext, type TaskContext } from './worker/task-context.js';
export { init, shutdown, isWorker } from './context.js';
export type { InitOptions, TaskOptions, RetryExceptions, LocalOptions, AwsOptions, AwsBaseOptions, S3ClientChoice, LambdaClientChoice, Target } from './options.js';
export type { ObjectStore, Invoker, Backend, InvokeCallback, InvokeOptions } from './backend.js';
export { PROTOCOL_VERSION, type TaskEnvelope, type ResultEnvelope, type ResultCommon, type ResultWorker, type Payload, type Timing, type ContainedRefs } from './protocol.js';
export type { VolleyEvent, EventListener, TaskSubmittedEvent, TaskDispatchedEvent, TaskRetryingEvent, TaskRebuildingEvent, TaskFinishedEvent, StoreEvent, TaskOutcome, WorkerInfo } from './events.js';
export type { ObserveOptions, TimelineOptions, DashboardOptions, CostOptions } from './observe/options.js';
export type { Progress, TaskCounts } from './observe/counts.js';
export type { CostReport, CostLine, S3Usage, Architecture } from './observe/cost.js';
export type { PriceTable, PriceOverrides } from './observe/prices.js';
export type { ChromeTrace, TraceEvent } from './observe/timeline.js';
export {
  VolleyError,
  UsageError,
  ConfigError,
  SerializationError,
  DuplicateTaskError,
  TaskError,
  DependencyError,
  TaskDepthError,
  TaskTimeoutError,
  WorkerCrashedError,
  GetTimeoutError,
  ObjectStoreError,
  ProtocolError,
  TaskNotFoundError,
  ThrottledError,
  TaskCancelledError,
  ObjectLostError,
  type AttemptFailure,
  ActorDiedError,
  ActorStateError,
  type RemoteErrorInfo,
  type TaskErrorContext,
  type VolleyErrorCode,
  type VolleyErrorOptions,
} from './errors.js';
export { cancel, get, put, wait } from './api.js';
