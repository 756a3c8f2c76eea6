/**
 * The Lambda entry point: the handler built by `createHandler` (sdk/aws/handler.ts), which
 * reads the function's environment on the first invocation and keeps it for warm ones.
 */
import { createHandler, type Handler } from '../sdk/aws/handler.js';

export const handler: Handler = createHandler();
