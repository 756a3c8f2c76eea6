/** The dashboard server: loopback only, read-only, its own assets only, and the state it streams. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import { JobCounts } from '../../sdk/observe/counts.js';
import { Dashboard, type DashboardState } from '../../sdk/observe/dashboard.js';
import { RecentTasks } from '../../sdk/observe/recent.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request; for an event stream, the body up to the first complete event. */
function call(url: string, opts: { method?: string; host?: string; path?: string } = {}): Promise<Reply> {
  const u = new URL(opts.path ?? '/', url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {}, timeout: 10_000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (String(res.headers['content-type']).startsWith('text/event-stream') && /event:state\n(id:[^\n]*\n)?data:.*\n\n/.test(body)) {
          req.destroy();
          resolve({ status: res.statusCode!, headers: res.headers, body });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

function source() {
  const counts = new JobCounts();
  const recent = new RecentTasks();
  for (const e of [
    { type: 'submitted', time: 0, taskId: 'sq-1', fn: 'square' },
    { type: 'submitted', time: 0, taskId: 'sq-2', fn: 'square' },
    { type: 'dispatched', time: 1, taskId: 'sq-1', fn: 'square', attempt: 1, memoryMB: 1024, deps: [], storedInputs: 0, storedInputBytes: 0 },
    {
      type: 'finished',
      time: 5,
      taskId: 'sq-1',
      fn: 'square',
      attempt: 1,
      outcome: 'failed',
      memoryMB: 1024,
      submittedAt: 0,
      dispatchedAt: 1,
      deps: [],
      worker: { id: 'thread-1' },
      timing: { fetchMs: 0, runMs: 3, storeMs: 0 },
      error: { name: 'RangeError', message: 'negative', stack: 'RangeError: negative\n    at square (tasks.js:9:11)' },
    },
  ] as const) {
    counts.onEvent(e);
    recent.onEvent(e);
  }
  return { job: 'job-1', target: 'local', counts, recent, ended: false };
}

describe('dashboard server', () => {
  it('serves its page on 127.0.0.1 with a policy that loads nothing from elsewhere, and streams the job state', async () => {
    const d = await Dashboard.start(source(), { host: '127.0.0.1', port: 0 });
    try {
      assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await call(d.url);
      assert.equal(page.status, 200);
      assert.match(page.body, /<script src="\/app\.js"/);
      assert.doesNotMatch(page.body, /https?:\/\//, 'the page names no other site');
      assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
      assert.equal(page.headers['access-control-allow-origin'], undefined);
      const app = await call(d.url, { path: '/app.js' });
      assert.equal(app.status, 200);
      assert.match(String(app.headers['content-type']), /javascript/);
      assert.match(app.body, /new EventSource\('\/events'\)/);

      const sse = await call(d.url, { path: '/events' });
      assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
      const state = JSON.parse(/event:state\n(?:id:[^\n]*\n)?data:(.*)\n\n/.exec(sse.body)![1]!) as DashboardState;
      assert.equal(state.reset, true);
      assert.equal(state.job, 'job-1');
      assert.deepEqual([state.progress.total, state.progress.failed, state.progress.pending], [2, 1, 1]);
      assert.equal(state.failures[0]!.taskId, 'sq-1');
      assert.match(state.failures[0]!.stack!, /at square \(tasks\.js:9:11\)/);
      assert.equal(state.recent[0]!.worker, 'thread-1');

      const tl = await call(d.url, { path: '/timeline.json' });
      assert.equal(tl.status, 404);
      assert.match(tl.body, /init\(\{ timeline: true \}\)/);
    } finally {
      await d.close();
    }
  });

  it('is read-only and answers only the address it serves (no DNS rebinding)', async () => {
    const d = await Dashboard.start(source(), { host: '127.0.0.1', port: 0 });
    try {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
        const r = await call(d.url, { method, path: '/events' });
        assert.equal(r.status, 405, method);
        assert.equal(r.headers.allow, 'GET, HEAD');
      }
      const port = new URL(d.url).port;
      assert.equal((await call(d.url, { host: `evil.example:${port}` })).status, 403);
      assert.equal((await call(d.url, { host: `localhost:${port}` })).status, 200);
      assert.equal((await call(d.url, { path: '/../package.json' })).status, 404);
      assert.equal((await call(d.url, { path: '/api/jobs' })).status, 404);
    } finally {
      await d.close();
    }
    await assert.rejects(call(d.url), /ECONNREFUSED/, 'closed with the job');
  });
});
