/**
 * A task module that throws while a worker thread loads it: its tasks fail with that error (see
 * test/init-error.ts), even the task it registered before the throw. The same rule is held on
 * the emulator tier's Lambda worker (test/emulator/init-error.test.ts).
 */
import { describe, it } from 'node:test';
import { assertModuleFailure, runUnguardedProgram } from '../init-error.js';

describe('a task module that throws while a worker thread loads it', () => {
  it('fails its task with the module error (a UsageError for an unguarded driver), naming the module, not retried', async () => {
    const out = await runUnguardedProgram({ VOLLEY_TARGET: 'local' });
    assertModuleFailure(out, /task module \/.*test\/fixtures\/unguarded-init\.js: no task of that module can run in this worker/);
  });
});
