/**
 * The observability commands of the CLI:
 *
 *   volley timeline [-o trace.json] -- <command> [args...]
 *       runs the command (a volley program) with VOLLEY_TIMELINE set, so its runtime records
 *       the timeline and writes it at shutdown(), saying where (one line, sdk/observe/index.ts);
 *       the command adds a line only when the program wrote none.
 *   volley dashboard <trace.json> [--port N] [--host H]
 *       serves the dashboard for a saved timeline (until Ctrl-C).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, UsageError } from '../sdk/errors.js';
import { JobCounts } from '../sdk/observe/counts.js';
import { Dashboard } from '../sdk/observe/dashboard.js';
import { RecentTasks } from '../sdk/observe/recent.js';
import { checkTrace, eventsFromTrace } from '../sdk/observe/replay.js';

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
}

/** `volley timeline`: returns the program's exit code. */
export function timelineCommand(argv: string[]): number {
  const dash = argv.indexOf('--');
  if (dash < 0 || dash === argv.length - 1) throw new UsageError('volley timeline needs the program to run after --, e.g. volley timeline -o trace.json -- node app.js; see volley timeline --help');
  const { values } = parseArgs({ args: argv.slice(0, dash), options: { out: { type: 'string', short: 'o' } } });
  const out = resolve(values.out ?? `volley-timeline-${stamp()}.json`);
  const [cmd, ...args] = argv.slice(dash + 1);
  // A file left at that path by an earlier run is not this run's timeline.
  const before = modified(out);
  const r = spawnSync(cmd!, args, { stdio: 'inherit', env: { ...process.env, VOLLEY_TIMELINE: out } });
  // A command that cannot be started is a failure (exit 1), as a missing file is, not bad usage of volley.
  if (r.error) throw new ConfigError(`volley timeline could not run ${cmd}: ${r.error.message}`);
  const after = modified(out);
  if (after === undefined || after === before) {
    console.error(`volley timeline: ${cmd} wrote no timeline to ${out}; a volley program writes it when it calls shutdown()`);
    return r.status || 1;
  }
  // The program's runtime said where it wrote the timeline and how to open it, once.
  return r.status ?? 1;
}

/** The file's modification time (ns), or undefined when there is none. */
function modified(file: string): bigint | undefined {
  return statSync(file, { throwIfNoEntry: false, bigint: true })?.mtimeNs;
}

/** `volley dashboard trace.json`: serves until the process is stopped; resolves to the dashboard. */
export async function dashboardCommand(argv: string[]): Promise<Dashboard> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { port: { type: 'string' }, host: { type: 'string' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('volley dashboard takes one saved timeline, e.g. volley dashboard trace.json; see volley dashboard --help');
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be an integer from 0 to 65535, got ${values.port}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    // The usage was right; the file is missing or unreadable: a failure (exit 1), as README says.
    throw new ConfigError(`volley dashboard could not read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const trace = checkTrace(parsed, file);
  const counts = new JobCounts();
  const recent = new RecentTasks();
  const events = eventsFromTrace(trace);
  for (const e of events) {
    counts.onEvent(e);
    recent.onEvent(e);
  }
  const end = events.at(-1)?.time ?? 0;
  const d = await Dashboard.start(
    { job: trace.otherData.job, target: trace.otherData.target, counts, recent, timeline: () => trace, ended: true, now: () => end },
    { host: values.host ?? '127.0.0.1', port, keepAlive: true },
  );
  console.log(`volley dashboard: ${d.url} (${file}; Ctrl-C to stop)`);
  return d;
}
