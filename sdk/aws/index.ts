/**
 * `volley/aws`: the AWS backends on their own, for programs that build a Runtime around their
 * own clients or reuse the S3 store. Loads the AWS SDK, which the main entry never does.
 *
 * @packageDocumentation
 */
export { S3Store, type S3StoreOptions } from './s3-store.js';
export { LambdaInvoker, logLocation, type LambdaInvokerOptions } from './lambda-invoker.js';
export { createAwsBackend, type AwsBackend } from './backend.js';
