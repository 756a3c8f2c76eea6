#!/usr/bin/env node
/** The `volley` executable (package.json "bin"): runs the CLI of infra/cli.ts on this process's arguments. */
import { run } from './cli.js';

await run(process.argv.slice(2));
