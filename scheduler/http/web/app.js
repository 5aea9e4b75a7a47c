// wslq dashboard: plain JavaScript, no libraries, works offline.
//
// Data flow: one EventSource on /api/v1/events pushes an "update" (summary + nodes) whenever
// the scheduler's state changes; when its jobs_version differs from the last one seen, the
// job list (or the open job) is fetched again. On a job page the stream also carries the
// job's new log bytes ("log") and metric points ("metrics"). Nothing here polls.
// Every piece of server text goes into the page through textContent, never as HTML.
'use strict';

const S = {
  token: sessionStorage.getItem('wslq_token') || '',
  es: null,
  esUrl: '',
  view: 'cluster',
  jobId: 0,
  jobsVersion: null,
  filters: { state: 'active', user: '', name: '', limit: 50 },
  before: 0,
  pageStack: [],
  jobsLoading: false,
  jobsAgain: false,
  series: {},
  drawQueued: false,
  logBytes: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// ---------- formatting ----------

function fmtDuration(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
  const m = Math.floor(s / 60) % 60, sec = s % 60;
  const hms = [h, m, sec].map((x) => String(x).padStart(2, '0')).join(':');
  return d ? `${d}-${hms}` : hms;
}

function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtMiB(mb) {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${mb} MiB`;
}

function fmtNum(v) {
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  if (a >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}

// Seconds shown in the TIME column, as `wslq queue` does.
function jobSeconds(j, now) {
  const ended = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY'].includes(j.state);
  if (ended) return j.start_ms ? ((j.end_ms || j.start_ms) - j.start_ms) / 1000 : 0;
  if (j.state === 'PENDING' || !j.start_ms) return (now - j.submit_ms) / 1000;
  return (now - j.start_ms) / 1000;
}

function badge(state) {
  return el('span', { class: `badge ${state}`, text: state.toLowerCase().replace('_', ' ') });
}

function shellWord(w) {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`;
}

// ---------- talking to the scheduler ----------

class HttpError extends Error {}

async function api(path) {
  const headers = S.token ? { Authorization: `Bearer ${S.token}` } : {};
  const r = await fetch(path, { headers, cache: 'no-store' });
  if (r.status === 401) {
    askToken();
    throw new HttpError('an access token is needed');
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new HttpError((body && body.error) || `HTTP ${r.status}`);
  return body;
}

function setConn(state, text) {
  const c = $('conn');
  c.className = `conn ${state}`;
  c.textContent = text;
}

function connect() {
  const q = new URLSearchParams();
  if (S.view === 'job') q.set('job', String(S.jobId));
  if (S.token) q.set('access_token', S.token);
  const url = '/api/v1/events' + (q.toString() ? `?${q}` : '');
  if (S.es && S.esUrl === url) return;
  if (S.es) S.es.close();
  S.esUrl = url;
  S.es = new EventSource(url);
  S.es.addEventListener('open', () => setConn('live', 'live'));
  S.es.addEventListener('error', () => setConn('down', 'reconnecting…'));
  S.es.addEventListener('update', (e) => onUpdate(JSON.parse(e.data)));
  S.es.addEventListener('log', (e) => onLog(JSON.parse(e.data)));
  S.es.addEventListener('metrics', (e) => onMetrics(JSON.parse(e.data)));
}

function askToken() {
  const d = $('token-dialog');
  if (!d.open) d.showModal();
}

// Who the token belongs to, in the header ("sign in" without one).
async function showWho() {
  const b = $('who');
  try {
    const w = await api('/api/v1/whoami');
    b.textContent = w.open ? 'open (insecure)' : `${w.user}${w.admin ? ' (admin)' : ''}`;
  } catch (e) {
    b.textContent = 'sign in';
  }
}

function onUpdate(u) {
  setConn('live', 'live');
  renderSummary(u.summary);
  renderNodes(u.nodes);
  if (u.jobs_version !== S.jobsVersion) {
    S.jobsVersion = u.jobs_version;
    if (S.view === 'job') loadJob();
    else loadJobs();
    if (S.view !== 'job') loadUsage();
  }
}

// ---------- GPU-hours per user, the last 7 days ----------

// At most every 30 s: it sums every job that ended in the week.
async function loadUsage() {
  const now = Date.now();
  if (S.usageAt && now - S.usageAt < 30000) return;
  S.usageAt = now;
  try {
    const r = await api('/api/v1/usage');
    const rows = r.users.map((u) => el('tr', {},
      el('td', { text: u.user }),
      el('td', { class: 'num', text: String(u.jobs) }),
      el('td', { class: 'num', text: u.gpu_hours.toFixed(2) }),
      el('td', { class: 'num', text: u.cpu_hours.toFixed(2) })));
    $('usage').tBodies[0].replaceChildren(...rows);
    $('usage-empty').hidden = rows.length > 0;
    $('usage-empty').textContent = 'No job has ended in the last 7 days.';
  } catch (e) {
    $('usage-empty').hidden = false;
    $('usage-empty').textContent = `Could not load usage: ${e.message}`;
  }
}

// ---------- summary and nodes ----------

function renderSummary(s) {
  const j = s.jobs, n = s.nodes, g = s.gpus;
  const up = n.idle + n.mixed + n.allocated;
  const cards = [
    ['running', j.running + j.starting],
    ['pending', j.pending],
    ['completed', j.completed],
    ['failed', j.failed + j.timeout + j.node_fail + (j.out_of_memory || 0)],
    ['nodes up', `${up} / ${n.total}`],
    ['GPUs in use', `${g.used} / ${g.total}`],
    ['mean wait', s.wait.mean_s == null ? '–'
      : s.wait.mean_s < 60 ? `${s.wait.mean_s.toFixed(1)} s` : fmtDuration(s.wait.mean_s)],
  ];
  $('summary').replaceChildren(...cards.map(([label, value]) =>
    el('div', { class: 'card' }, el('div', { class: 'n', text: String(value) }),
      el('div', { class: 'l', text: label }))));
}

function bar(kind, frac, text) {
  const fill = el('div', { class: 'fill' });
  fill.style.width = `${Math.max(0, Math.min(1, frac)) * 100}%`;
  return el('div', { class: `bar ${kind}` }, fill, el('span', { class: 'txt', text }));
}

function renderGpu(g) {
  const model = (g.name || 'GPU').replace(/^NVIDIA (GeForce )?/, '');
  const facts = [g.temp_c != null ? `${g.temp_c} °C` : '', g.power_w != null ? `${g.power_w} W` : '']
    .filter(Boolean).join(' · ');
  const name = el('div', { class: 'gname', title: `${g.name} ${g.uuid}` },
    el('div', { text: `GPU ${g.index} · ${model}${g.kind === 'dx' ? ' (dx)' : ''}` }),
    el('div', { class: 'muted', text: facts }));
  const bars = el('div', { class: 'bars' });
  if (g.mem_total_mb > 0) {
    bars.append(bar('mem', g.mem_used_mb / g.mem_total_mb,
      `mem ${fmtMiB(g.mem_used_mb)} / ${fmtMiB(g.mem_total_mb)}`));
  }
  if (g.util_pct != null) bars.append(bar('util', g.util_pct / 100, `util ${g.util_pct}%`));
  if (!bars.childElementCount) {
    bars.append(el('span', {
      class: 'nometrics', text: g.declared ? 'declared by hand: no metrics' : 'no metrics reported',
    }));
  }
  if (g.shared_jobs && g.shared_jobs.length && g.mem_total_mb > 0) {
    const room = Math.max(0, g.mem_total_mb - (g.mem_other_mb || 0));
    bars.append(bar('mem', g.mem_shared_mb / g.mem_total_mb,
      `shared ${fmtMiB(g.mem_shared_mb)} / ${fmtMiB(room)}`));
  }
  const shared = (g.shared_jobs || []).map((id) => el('a', { href: `#/jobs/${id}`, text: `job ${id}` }));
  const holder = g.job_id != null
    ? el('div', { class: 'holder' }, el('a', { href: `#/jobs/${g.job_id}`, text: `job ${g.job_id}` }))
    : shared.length ? el('div', { class: 'holder' }, ...shared)
      : el('div', { class: 'holder free', text: 'free' });
  return el('div', { class: 'gpu' }, name, bars, holder);
}

function renderNodes(nodes) {
  const box = $('nodes');
  if (!nodes.length) {
    box.replaceChildren(el('p', { class: 'muted', text: 'No nodes have registered yet.' }));
    return;
  }
  box.replaceChildren(...nodes.map((n) => {
    const facts = `CPUs ${n.cpus_alloc}/${n.cpus} · mem ${fmtMiB(n.mem_alloc_mb)}/${fmtMiB(n.mem_mb)}` +
      ` · ${n.ip || '?'}${n.inbound_ok ? '' : ' (NAT)'}`;
    const card = el('div', { class: 'node', 'data-node': n.name },
      el('header', {}, el('span', { class: 'name', text: n.name }), badge(n.state),
        el('span', { class: 'facts', text: facts })));
    if (n.drained) {
      card.append(el('div', { class: 'muted drain',
        text: `drained by ${n.drain_by || '?'} since ${fmtTime(n.drain_since_ms)}: ${n.drain_reason || ''}` }));
    }
    // the PC's owner (worker 'owner' policy), shown as `wslq nodes` does
    if ((n.owner && n.owner !== 'ignore') || (n.owner_state && n.owner_state !== 'unknown')) {
      const susp = (n.suspended_jobs || []).length ? ` · suspended jobs ${n.suspended_jobs.join(', ')}` : '';
      card.append(el('div', { class: 'muted owner',
        text: `owner ${n.owner_state || 'unknown'}, policy ${n.owner || 'ignore'}` +
          `${n.owner_why ? ': ' + n.owner_why : ''}${susp}` }));
    }
    if (n.gpu_resets) card.append(el('div', { class: 'muted tdr', text: `GPU resets by Windows (TDR): ${n.gpu_resets}` }));
    if (!n.gpus.length) card.append(el('div', { class: 'muted', text: 'no GPUs' }));
    for (const g of n.gpus) card.append(renderGpu(g));
    return card;
  }));
}

// ---------- job list ----------

function jobsQuery() {
  const q = new URLSearchParams();
  const f = S.filters;
  if (f.state) q.set('state', f.state);
  if (f.user) q.set('user', f.user);
  if (f.name) q.set('name', f.name);
  q.set('limit', String(f.limit));
  if (S.before) q.set('before', String(S.before));
  return q.toString();
}

async function loadJobs() {
  if (S.jobsLoading) {
    S.jobsAgain = true;
    return;
  }
  S.jobsLoading = true;
  try {
    const r = await api(`/api/v1/jobs?${jobsQuery()}`);
    renderJobs(r);
  } catch (e) {
    $('jobs-empty').hidden = false;
    $('jobs-empty').textContent = `Could not load jobs: ${e.message}`;
  } finally {
    S.jobsLoading = false;
    if (S.jobsAgain) {
      S.jobsAgain = false;
      loadJobs();
    }
  }
}

function renderJobs(r) {
  const now = Date.now();
  const rows = r.jobs.map((j) => {
    const nodes = j.allocs.length ? j.allocs.map((a) => a.node).join(',') : '';
    const reason = nodes || (j.reason ? `(${j.reason})` : '');
    const time = el('td', { class: 'num time', text: fmtDuration(jobSeconds(j, now)) });
    time.dataset.job = JSON.stringify({ state: j.state, start_ms: j.start_ms,
      end_ms: j.end_ms, submit_ms: j.submit_ms });
    return el('tr', { 'data-id': String(j.id), 'data-state': j.state },
      el('td', { class: 'num' }, el('a', { href: `#/jobs/${j.id}`, text: String(j.id) })),
      el('td', { text: j.spec.user }),
      el('td', {}, el('a', { href: `#/jobs/${j.id}`, text: j.spec.name })),
      el('td', {}, badge(j.state)),
      el('td', { class: 'num', text: String(j.spec.gpus) }),
      el('td', { class: 'num', text: String(j.spec.nodes) }),
      time,
      el('td', { class: 'reason', text: reason }));
  });
  $('jobs').tBodies[0].replaceChildren(...rows);
  $('jobs-empty').hidden = rows.length > 0;
  $('jobs-empty').textContent = 'No jobs match.';
  $('older').disabled = !r.more;
  $('newer').disabled = S.pageStack.length === 0;
  $('page-info').textContent = `page ${S.pageStack.length + 1}`;
  S.nextBefore = r.next_before;
}

function tickTimes() {
  const now = Date.now();
  for (const td of document.querySelectorAll('#jobs td.time')) {
    const j = JSON.parse(td.dataset.job);
    if (j.state === 'RUNNING' || j.state === 'PENDING' || j.state === 'STARTING') {
      td.textContent = fmtDuration(jobSeconds(j, now));
    }
  }
}

function setupFilters() {
  const form = $('filters');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = new FormData(form);
    S.filters = {
      state: d.get('state'), user: d.get('user').trim(), name: d.get('name').trim(),
      limit: Number(d.get('limit')),
    };
    S.before = 0;
    S.pageStack = [];
    loadJobs();
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  $('older').addEventListener('click', () => {
    if (!S.nextBefore) return;
    S.pageStack.push(S.before);
    S.before = S.nextBefore;
    loadJobs();
  });
  $('newer').addEventListener('click', () => {
    if (!S.pageStack.length) return;
    S.before = S.pageStack.pop();
    loadJobs();
  });
}

// ---------- one job ----------

async function loadJob() {
  const id = S.jobId;
  try {
    const r = await api(`/api/v1/jobs/${id}`);
    if (id === S.jobId) renderJob(r);
  } catch (e) {
    $('job-title').textContent = `Job ${id}: ${e.message}`;
  }
}

function renderJob(r) {
  const j = r.job, s = j.spec;
  $('job-title').replaceChildren(`Job ${j.id} · ${s.name} `, badge(j.state));
  const rows = [
    ['command', el('code', { text: (s.wrap ? [s.argv[2] || ''] : s.argv.map(shellWord)).join(' ') })],
    ['user', s.user],
    ['directory', s.cwd || '(worker default)'],
    ['resources', `${s.nodes} node(s) × ${s.gpus_per_node} GPU(s), ${s.cpus_per_node || 1} CPU(s)` +
      (s.mem_mb_per_node ? `, ${fmtMiB(s.mem_mb_per_node)}` : '') + ' per node'],
    ['time limit', s.time_limit_s ? fmtDuration(s.time_limit_s) : 'none'],
    ['priority / retries', `${s.priority} / ${s.retries}${s.requeue_on_fail ? ' (also on failure)' : ''}`],
    ['depends on', s.depends_on.length ? s.depends_on.join(', ') : '–'],
    ['environment', s.env.length ? s.env.join(' ') : '–'],
    ['attempt', String(j.attempt + 1)],
    ['submitted', fmtTime(j.submit_ms)],
    ['started', fmtTime(j.start_ms)],
    ['ended', fmtTime(j.end_ms)],
    ['exit', j.exit_code != null ? `code ${j.exit_code}` + (j.signal ? `, signal ${j.signal}` : '') : '–'],
    ['reason', j.reason || '–'],
  ];
  if (j.failed_rank != null) rows.push(['failed rank', `${j.failed_rank} on ${j.failed_node}`]);
  if (j.master_addr) rows.push(['master', `${j.master_addr}:${j.master_port}`]);
  $('job-spec').replaceChildren(...rows.flatMap(([k, v]) =>
    [el('dt', { text: k }), el('dd', {}, typeof v === 'string' ? v : v)]));
  $('job-events').replaceChildren(...r.events.map((e) =>
    el('li', {}, el('span', { class: 'when', text: fmtTime(e.ts_ms) }), badge(e.state),
      e.node ? el('span', { text: e.node }) : null,
      el('span', { class: 'why', text: [e.reason, e.detail].filter(Boolean).join(' · ') }))));
  $('job-allocs').tBodies[0].replaceChildren(...j.allocs.map((a) =>
    el('tr', {}, el('td', { text: a.node }), el('td', { class: 'num', text: String(a.node_rank) }),
      el('td', { text: a.gpus.join(',') || '–' }), el('td', { class: 'num', text: String(a.nranks) }),
      el('td', { text: a.ip }))));
}

function onLog(d) {
  const pre = $('log');
  if (S.logBytes === 0 && d.offset > 0) pre.textContent = `… (${d.offset} earlier bytes not shown)\n`;
  pre.append(d.data);
  S.logBytes += d.data.length + 1;
  // Keep the page light on long logs: drop the oldest half past 2 MB.
  if (pre.textContent.length > 2e6) pre.textContent = pre.textContent.slice(-1e6);
  if ($('follow').checked) pre.scrollTop = pre.scrollHeight;
}

function onMetrics(d) {
  for (const [key, ranks] of Object.entries(d.series)) {
    S.series[key] = S.series[key] || {};
    for (const [rank, pts] of Object.entries(ranks)) {
      S.series[key][rank] = (S.series[key][rank] || []).concat(pts);
    }
  }
  if (!S.drawQueued) {
    S.drawQueued = true;
    requestAnimationFrame(() => {
      S.drawQueued = false;
      drawCharts();
    });
  }
}

// ---------- charts ----------

const COLORS = ['#1f6feb', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#0a7ea4', '#bf3989'];
const GROUPS = [
  { title: 'Loss', test: (k) => /loss/i.test(k) },
  { title: 'Accuracy', test: (k) => /acc/i.test(k) },
  { title: 'Samples/s', test: (k) => /samples|per_s|throughput|tokens/i.test(k) },
];
const SKIP = /^(epoch|time|ts|t|wall|timestamp)$/i;

function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

function chart(title, lines) {
  const W = 420, H = 190, L = 46, R = 22, T = 8, B = 22;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const l of lines) {
    for (const [x, y] of l.points) {
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  }
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  for (const v of niceTicks(y0, y1, 5)) {
    s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: sy(v), y2: sy(v) }));
    const t = svg('text', { x: L - 4, y: sy(v) + 3, 'text-anchor': 'end' });
    t.textContent = fmtNum(v);
    s.append(t);
  }
  for (const v of niceTicks(x0, x1, 5)) {
    const t = svg('text', { x: sx(v), y: H - 6, 'text-anchor': 'middle' });
    t.textContent = fmtNum(v);
    s.append(t);
  }
  s.append(svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  s.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const legend = el('div', { class: 'legend' });
  lines.forEach((l, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = l.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    s.append(svg('polyline', { class: 'line', points: pts, stroke: color }));
    const sw = el('span', { class: 'sw' });
    sw.style.background = color;
    const last = l.points.length ? l.points[l.points.length - 1][1] : NaN;
    legend.append(el('span', {}, sw, `${l.label} ${fmtNum(last)}`));
  });
  return el('div', { class: 'chart', 'data-chart': title }, el('div', { class: 'title', text: title }),
    s, legend);
}

function drawCharts() {
  const keys = Object.keys(S.series).filter((k) => !SKIP.test(k)).sort();
  if (!keys.length) return;
  const used = new Set();
  const boxes = [];
  const linesOf = (ks) => ks.flatMap((k) => {
    const ranks = Object.keys(S.series[k]);
    return ranks.map((r) => ({
      label: ranks.length > 1 ? `${k} (rank ${r})` : k,
      points: S.series[k][r].slice().sort((a, b) => a[0] - b[0]),
    }));
  });
  for (const g of GROUPS) {
    const ks = keys.filter((k) => !used.has(k) && g.test(k));
    ks.forEach((k) => used.add(k));
    if (ks.length) boxes.push(chart(g.title, linesOf(ks)));
  }
  for (const k of keys) if (!used.has(k)) boxes.push(chart(k, linesOf([k])));
  $('charts').replaceChildren(...boxes);
}

// ---------- routing ----------

function route() {
  const h = location.hash || '#/';
  const m = /^#\/jobs\/(\d+)$/.exec(h);
  for (const a of document.querySelectorAll('.top nav a')) a.classList.remove('current');
  if (m) {
    const id = Number(m[1]);
    if (S.view !== 'job' || S.jobId !== id) {
      S.view = 'job';
      S.jobId = id;
      S.series = {};
      S.logBytes = 0;
      $('log').textContent = '';
      $('charts').replaceChildren(el('p', { class: 'muted', text: 'No metric lines yet.' }));
      $('job-title').textContent = `Job ${id}`;
      $('job-spec').replaceChildren();
      $('job-events').replaceChildren();
    }
    $('view-cluster').hidden = true;
    $('view-job').hidden = false;
  } else {
    const history = h.startsWith('#/history');
    const view = history ? 'history' : 'cluster';
    if (S.view !== view) {
      S.view = view;
      const state = history ? 'ended' : 'active';
      S.filters = { state, user: '', name: '', limit: S.filters.limit };
      $('filters').elements.state.value = state;
      $('filters').elements.user.value = '';
      $('filters').elements.name.value = '';
      S.before = 0;
      S.pageStack = [];
    }
    $('jobs-title').textContent = history ? 'History' : 'Queue';
    document.querySelector(`.top nav a[data-view="${view}"]`).classList.add('current');
    $('view-cluster').hidden = false;
    $('view-job').hidden = true;
  }
  S.jobsVersion = null; // the next update (sent at once on a new stream) loads the list
  connect();
  if (S.view === 'job') loadJob();
  else loadJobs();
}

function setupToken() {
  $('token-form').addEventListener('submit', () => {
    S.token = $('token-input').value.trim();
    sessionStorage.setItem('wslq_token', S.token);
    S.esUrl = '';
    route();
    showWho();
  });
  $('who').addEventListener('click', askToken);
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  setupFilters();
  setupToken();
  setInterval(tickTimes, 1000);
  route();
  showWho();
});
