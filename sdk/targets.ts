/**
 * Builds the backend of a target. Each target's code is imported only when chosen, so a
 * program on the embedded runtime never loads the AWS SDK, and a Lambda worker never loads
 * the thread pool.
 */
import type { Backend } from './backend.js';
import type { ResolvedInitOptions } from './options.js';

export async function createBackend(options: ResolvedInitOptions): Promise<Backend> {
  switch (options.target) {
    case 'local': {
      const { createLocalBackend } = await import('./local/backend.js');
      return createLocalBackend(options);
    }
    case 'aws':
    case 'localstack':
    case 'emulator': {
      const { createAwsBackend } = await import('./aws/backend.js');
      return createAwsBackend(options);
    }
  }
}
