/**
 * The live dashboard: a read-only page on the loopback interface, updated by server-sent
 * events (better-sse).
 *
 * Read-only by construction: the server answers GET (and HEAD) on five fixed paths and
 * nothing else; it runs no code and takes no input beyond the path. It binds to 127.0.0.1
 * unless told otherwise, refuses requests whose Host header is not the address it serves (a
 * web page elsewhere cannot read it through DNS rebinding), sends no CORS headers, and its
 * Content-Security-Policy lets the page load nothing but its own bundled files, so it works
 * without a network.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CostReport, Usage } from './cost.js';
import type { JobCounts, Progress } from './counts.js';
import type { RecentTasks } from './recent.js';
import type { ChromeTrace } from './timeline.js';

/** What the dashboard shows, wherever it comes from (a running job, or a saved timeline). */
export interface DashboardSource {
  job: string;
  target: string;
  counts: JobCounts;
  recent: RecentTasks;
  objects?: () => Usage['s3'];
  cost?: () => CostReport;
  timeline?: () => ChromeTrace;
  /** The job is over (shut down, or a saved timeline). */
  ended: boolean;
  /** The clock of the counts (a saved timeline's end); default performance.now(). */
  now?: () => number;
}

/** The page's state message. */
export interface DashboardState {
  job: string;
  target: string;
  ended: boolean;
  /** True when this message replaces what the page had (first message of a connection). */
  reset: boolean;
  progress: Progress;
  recent: ReturnType<RecentTasks['since']>['tasks'];
  failures: ReturnType<RecentTasks['since']>['failures'];
  objects?: Usage['s3'];
  cost?: CostReport;
  /** Why there is no cost: its region has no price table and no prices were given. */
  costError?: string;
  timeline: boolean;
}

const ASSETS = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
} as const;

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/** The page's files: beside this module in the tsc layout, or in page/ beside an esbuild chunk. */
async function loadAssets(): Promise<Map<string, Buffer>> {
  const dirs = [new URL('./page/', import.meta.url), new URL('./observe/page/', import.meta.url)];
  for (const dir of dirs) {
    try {
      const files = new Map<string, Buffer>();
      for (const [, [file]] of Object.entries(ASSETS)) files.set(file, await readFile(new URL(file, dir)));
      return files;
    } catch {
      // try the next layout
    }
  }
  throw new Error(`the dashboard page is missing (looked in ${dirs.map((d) => d.pathname).join(' and ')}); rebuild volley (npm run build)`);
}

export interface DashboardOptions {
  host: string;
  port: number;
  /** How often the page is sent what changed. */
  intervalMs?: number;
  /** Keep the process alive while serving (the CLI); a job's dashboard never does. */
  keepAlive?: boolean;
}

export class Dashboard {
  private readonly channel: import('better-sse').Channel;
  private timer?: NodeJS.Timeout;
  private sentVersion = -1;
  private sentSeq = 0;
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly source: DashboardSource,
    private readonly sse: typeof import('better-sse'),
    private readonly assets: Map<string, Buffer>,
    readonly url: string,
    private readonly allowedHosts: Set<string>,
    intervalMs: number,
    private readonly keepAlive: boolean,
  ) {
    this.channel = sse.createChannel();
    server.on('request', (req, res) => void this.handle(req, res));
    this.timer = setInterval(() => this.push(), intervalMs);
    this.timer.unref();
  }

  static async start(source: DashboardSource, options: DashboardOptions): Promise<Dashboard> {
    const [sse, assets] = await Promise.all([import('better-sse'), loadAssets()]);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (!options.keepAlive) {
      // Neither the server nor an open page keeps a finished program alive.
      server.unref();
      server.on('connection', (socket) => socket.unref());
    }
    const port = (server.address() as AddressInfo).port;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    const allowed = new Set([`${host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]);
    return new Dashboard(server, source, sse, assets, `http://${host}:${port}/`, allowed, options.intervalMs ?? 250, options.keepAlive === true);
  }

  /** The state message: everything when `reset`, otherwise what changed since the last push. */
  state(reset: boolean): DashboardState {
    const s = this.source;
    const recent = s.recent.since(reset ? 0 : this.sentSeq);
    let cost: CostReport | undefined;
    let costError: string | undefined;
    try {
      cost = s.cost?.();
    } catch (err) {
      costError = (err as Error).message;
    }
    return {
      job: s.job,
      target: s.target,
      ended: s.ended,
      reset,
      progress: s.counts.snapshot(s.now?.()),
      recent: recent.tasks,
      failures: recent.failures,
      objects: s.objects?.(),
      cost,
      costError,
      timeline: s.timeline !== undefined,
    };
  }

  private push(): void {
    if (this.channel.sessionCount === 0 || this.source.counts.version === this.sentVersion) return;
    this.sentVersion = this.source.counts.version;
    const msg = this.state(false);
    this.sentSeq = this.source.recent.since(Number.MAX_SAFE_INTEGER).seq;
    this.channel.broadcast(msg, 'state');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.allowedHosts.has(req.headers.host ?? '')) {
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('volley dashboard: this Host is not served here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('volley dashboard is read-only\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const asset = ASSETS[path as keyof typeof ASSETS];
    if (asset) {
      res.writeHead(200, { 'Content-Type': asset[1], ...SECURITY_HEADERS }).end(this.assets.get(asset[0]));
      return;
    }
    switch (path) {
      case '/events': {
        // A job's stream needs no keep-alive comments (it is on loopback and sends its state
        // four times a second), and its timer would keep a finished program alive.
        const session = await this.sse.createSession(req, res, { headers: SECURITY_HEADERS, retry: 1000, keepAlive: this.keepAlive ? 10_000 : null });
        session.push(this.state(true), 'state');
        this.channel.register(session);
        return;
      }
      case '/state.json':
        res.writeHead(200, { 'Content-Type': 'application/json', ...SECURITY_HEADERS }).end(JSON.stringify(this.state(true)));
        return;
      case '/timeline.json': {
        const trace = this.source.timeline?.();
        if (!trace) {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('the timeline is off: start the job with init({ timeline: true }) or VOLLEY_TIMELINE=1\n');
          return;
        }
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Disposition': `attachment; filename="volley-timeline-${this.source.job}.json"`, ...SECURITY_HEADERS });
        res.end(JSON.stringify(trace));
        return;
      }
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  /** Sends the final state (the job ended), then closes every connection and the server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.source.ended = true;
    this.sentVersion = -1;
    if (this.channel.sessionCount > 0) this.channel.broadcast(this.state(false), 'state');
    // Let the last message leave before the sockets close.
    await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
