/**
 * First module of the Lambda bundle: marks the process as a volley worker before any task
 * module evaluates, so their `if (!isWorker()) await main();` guard skips driver code.
 */
import { markWorker } from '../sdk/context.js';

markWorker();
