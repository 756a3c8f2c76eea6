// The dashboard page: applies the server's state messages (server-sent events on /events)
// to the DOM and draws the recent tasks on a canvas. Plain browser JavaScript with no
// dependencies, served by the dashboard itself: it loads nothing from the network.
(() => {
  const $ = (id) => document.getElementById(id);
  const MAX_TASKS = 500;
  const MAX_FAILURES = 50;
  const COLORS = ['#4c6ef5', '#12b886', '#fab005', '#7950f2', '#15aabf', '#e64980', '#82c91e', '#fd7e14'];
  const state = { tasks: [], failures: [], fnColor: new Map(), ended: false };

  const num = (n) => (n ?? 0).toLocaleString('en-US');
  const dur = (ms) => {
    if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = Math.round(ms / 1000);
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} m ${s % 60} s`;
  };
  const bytes = (n) => {
    if (n < 1024) return `${n} B`;
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = -1;
    do {
      v /= 1024;
      i++;
    } while (v >= 1024 && i < u.length - 1);
    return `${v.toFixed(v < 10 ? 2 : 1)} ${u[i]}`;
  };
  const usd = (x) => (x === 0 ? '$0' : x < 0.01 ? `$${x.toPrecision(2)}` : `$${x.toFixed(2)}`);
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    Object.assign(e, props);
    for (const k of kids) e.append(k);
    return e;
  };
  const colorOf = (fn) => {
    if (!state.fnColor.has(fn)) state.fnColor.set(fn, COLORS[state.fnColor.size % COLORS.length]);
    return state.fnColor.get(fn);
  };

  function setStatus(text, cls) {
    const s = $('status');
    s.textContent = text;
    s.className = `status ${cls}`;
  }

  function renderCounts(p) {
    const finished = p.done + p.failed;
    $('finished').textContent = num(finished);
    $('total').textContent = num(p.total);
    for (const k of ['done', 'running', 'pending', 'failed', 'retries', 'rebuilds']) $(k).textContent = num(p[k]);
    $('rate').textContent = p.ratePerSecond ? `${p.ratePerSecond.toFixed(p.ratePerSecond < 10 ? 1 : 0)}/s` : '–';
    $('eta').textContent = p.total > finished ? dur(p.etaMs) : '–';
    $('elapsed').textContent = dur(p.elapsedMs);
    const pct = (n) => `${p.total ? (100 * n) / p.total : 0}%`;
    $('bar-done').style.width = pct(p.done);
    $('bar-failed').style.width = pct(p.failed);
    $('bar-running').style.width = pct(p.running);
  }

  function renderFunctions(byFunction) {
    const body = $('functions').tBodies[0];
    body.replaceChildren(
      ...Object.entries(byFunction).map(([fn, c]) => {
        const pct = (n) => `${c.total ? (100 * n) / c.total : 0}%`;
        const bar = el('div', { className: 'fnbar' });
        for (const [cls, n] of [
          ['done', c.done],
          ['failed', c.failed],
          ['running', c.running],
        ]) {
          const d = el('div', { className: cls });
          d.style.width = pct(n);
          bar.append(d);
        }
        const row = el('tr', {}, el('td', { textContent: fn }));
        for (const k of ['total', 'done', 'running', 'pending', 'failed']) row.append(el('td', { textContent: num(c[k]) }));
        row.append(el('td', {}, bar));
        row.dataset.fn = fn;
        return row;
      }),
    );
  }

  function renderCost(cost, error) {
    const box = $('cost');
    if (error) box.replaceChildren(el('p', { className: 'muted', textContent: `not priced: ${error}` }));
    if (!cost) return;
    const rows = [
      ['total', usd(cost.totalUsd)],
      ['Lambda', `${usd(cost.lambda.usd)} · ${num(cost.lambda.requests)} requests · ${cost.lambda.gbSeconds.toFixed(2)} GB-s`],
      ...(cost.lambda.coldStarts ? [['  cold starts', `${num(cost.lambda.coldStarts)} · INIT ${cost.lambda.initGbSeconds.toFixed(2)} GB-s`]] : []),
      ...cost.lambda.byMemory.map((b) => [`  ${b.memoryMB} MB ${b.architecture}`, `${usd(b.usd)} · ${num(b.requests)} · ${b.gbSeconds.toFixed(2)} GB-s`]),
      ['S3', `${usd(cost.s3.usd)} · ${num(cost.s3.putRequests)} PUT · ${num(cost.s3.getRequests)} GET`],
    ];
    box.replaceChildren(
      el('p', { className: 'muted', textContent: `${cost.estimate ? 'Estimate of this job on Lambda' : 'This job on AWS'}; ${cost.prices.region} prices as of ${cost.prices.asOf}` }),
      el('table', { className: 'plain' }, ...rows.map(([k, v]) => el('tr', {}, el('td', { textContent: k }), el('td', { textContent: v })))),
    );
  }

  function renderObjects(o) {
    if (!o) return;
    $('objects').replaceChildren(
      el(
        'table',
        { className: 'plain' },
        el('tr', {}, el('td', { textContent: 'written' }), el('td', { textContent: `${bytes(o.bytesWritten)} · ${num(o.putRequests)} PUT` })),
        el('tr', {}, el('td', { textContent: 'read by tasks and driver' }), el('td', { textContent: `${bytes(o.bytesRead)} · ${num(o.getRequests)} GET` })),
        el('tr', {}, el('td', { textContent: 'read by the driver' }), el('td', { textContent: bytes(o.bytesToDriver) })),
      ),
    );
  }

  function renderFailures() {
    const list = $('failures');
    $('no-failures').hidden = state.failures.length > 0;
    $('failures-note').textContent = state.failures.length >= MAX_FAILURES ? `(the last ${MAX_FAILURES})` : '';
    list.replaceChildren(
      ...state.failures
        .slice()
        .reverse()
        .map((f) =>
          el(
            'li',
            { className: f.retried ? 'retried' : '' },
            el('div', { className: 'what', textContent: `${f.fn} (${f.taskId}): ${f.name}: ${f.message}` }),
            el('div', {
              className: 'who',
              textContent: `${f.outcome}${f.worker ? ` on ${f.worker}` : ''}${f.attempt > 1 || f.retried ? `, attempt ${f.attempt}` : ''}, at ${dur(f.time)}${
                f.retried ? (f.retryInMs === undefined ? ' — run again once its lost argument was rebuilt' : ` — retried after ${dur(f.retryInMs)}`) : ''
              }`,
            }),
            ...(f.stack ? [el('pre', { className: 'stack', textContent: f.stack })] : []),
          ),
        ),
    );
  }

  function drawTimeline() {
    const canvas = $('timeline');
    const tasks = state.tasks;
    const width = canvas.clientWidth;
    const workers = [...new Set(tasks.map((t) => t.worker))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const rowH = Math.max(6, Math.min(18, Math.floor(220 / Math.max(1, workers.length))));
    const left = 110;
    const height = Math.max(60, workers.length * rowH + 20);
    const ratio = window.devicePixelRatio || 1;
    canvas.style.height = `${height}px`;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, width, height);
    $('timeline-note').textContent = tasks.length ? `(the last ${tasks.length} finished, one row per worker)` : '(none finished yet)';
    if (!tasks.length) return;
    const t0 = Math.min(...tasks.map((t) => t.start));
    const t1 = Math.max(...tasks.map((t) => t.end));
    const span = Math.max(1, t1 - t0);
    const x = (t) => left + ((t - t0) / span) * (width - left - 8);
    g.font = '11px ui-monospace, monospace';
    g.textBaseline = 'middle';
    workers.forEach((w, i) => {
      g.fillStyle = '#6b7385';
      g.fillText(w.length > 16 ? `…${w.slice(-15)}` : w, 4, 10 + i * rowH + rowH / 2);
    });
    for (const t of tasks) {
      const row = workers.indexOf(t.worker);
      g.fillStyle = t.outcome === 'ok' ? colorOf(t.fn) : t.retried ? '#868e96' : '#d9480f';
      g.fillRect(x(t.start), 10 + row * rowH + 1, Math.max(1.5, x(t.end) - x(t.start)), rowH - 2);
    }
    g.fillStyle = '#6b7385';
    g.fillText(dur(t0), left, height - 5);
    const end = dur(t1);
    g.fillText(end, width - 8 - g.measureText(end).width, height - 5);
    $('legend').replaceChildren(
      ...[...state.fnColor.entries()].map(([fn, c]) => {
        const s = el('span', { textContent: fn });
        s.style.setProperty('--c', c);
        return s;
      }),
      ...[
        ['failed, retried', '#868e96'],
        ['failed', '#d9480f'],
      ].map(([label, c]) => {
        const s = el('span', { textContent: label });
        s.style.setProperty('--c', c);
        return s;
      }),
    );
  }

  function apply(msg) {
    if (msg.reset) {
      state.tasks = [];
      state.failures = [];
    }
    $('job').textContent = `job ${msg.job} on ${msg.target}`;
    document.title = `volley · ${msg.job}`;
    state.ended = msg.ended;
    setStatus(msg.ended ? 'ended' : 'running', msg.ended ? 'ended' : 'running');
    $('timeline-link').hidden = !msg.timeline;
    renderCounts(msg.progress);
    renderFunctions(msg.progress.byFunction);
    for (const t of msg.recent) colorOf(t.fn);
    state.tasks = state.tasks.concat(msg.recent).slice(-MAX_TASKS);
    state.failures = state.failures.concat(msg.failures).slice(-MAX_FAILURES);
    renderFailures();
    renderCost(msg.cost, msg.costError);
    renderObjects(msg.objects);
    drawTimeline();
  }

  const source = new EventSource('/events');
  source.addEventListener('state', (ev) => apply(JSON.parse(ev.data)));
  source.addEventListener('error', () => {
    if (state.ended) {
      source.close();
      setStatus('ended', 'ended');
    } else setStatus('disconnected', 'lost');
  });
  window.addEventListener('resize', drawTimeline);
})();
