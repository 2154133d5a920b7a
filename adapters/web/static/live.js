// Live updates over the API's SSE feeds (EventSource with ?access_token=).
// Resuming: the browser reconnects by itself with Last-Event-ID while the
// stream token is valid; once it is refused (expired), we mint a fresh
// token and reopen with ?after=<last id>. Events already shown are skipped
// by id, so a reconnect never duplicates a line.

// EventSource needs a listener per event name: the domain's catalogue.
const TYPES = ['ProjectCreated', 'ProjectRenamed', 'ProjectArchived', 'MemberGranted', 'MemberRevoked',
  'RepositoryAdded', 'RepositoryRemoved', 'SnapshotRequested', 'SnapshotCaptured', 'SnapshotFailed', 'ThreatProfileDefined',
  'ScanRequested', 'ScanClaimed', 'ScanLeaseRenewed', 'ScanRequeued', 'RunnerLaunched', 'ScanCredentialIssued', 'ScanStarted',
  'ScanProgressed', 'FindingRecorded', 'LLMUsageRecorded', 'ScanBudgetExceeded', 'ScanCancelRequested', 'ScanCancelled',
  'ScanCompleted', 'ScanFailed', 'ScanTimedOut', 'ScanClassified', 'IssueOpened', 'IssueSeen', 'IssueReopened', 'IssueFixed',
  'IssueTriaged', 'message'];

const TERMINAL = { ScanCompleted: 'completed', ScanFailed: 'failed', ScanCancelled: 'cancelled', ScanTimedOut: 'timed_out' };
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];
const ICONS = { critical: '⬛', high: '▲', medium: '◆', low: '▽', info: '○' };
const MAX_LOG = 1000;

function csrf() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : '';
}

async function freshToken(scanId) {
  const r = await fetch('/stream-token', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrf() }, body: new URLSearchParams({ scan_id: scanId || '' }),
  });
  if (!r.ok) throw new Error(`stream token: ${r.status}`);
  return (await r.json()).token;
}

// follow opens an SSE feed and keeps it open until it ends or stop().
// isNew(id) says whether an event id was not shown yet; it records it.
function follow({ url, token, scanId, after, onEvent, onEnd, onState }) {
  let last = after;
  let es = null;
  let stopped = false;
  let failures = 0;
  let timer = null;
  let opens = 0;

  const handle = (ev) => {
    if (ev.lastEventId) {
      if (scanId) {
        const n = Number(ev.lastEventId);
        if (n <= Number(last || 0)) return; // already shown
        last = n;
      } else {
        if (ev.lastEventId === last) return;
        last = ev.lastEventId;
      }
    }
    let payload = {};
    try { payload = JSON.parse(ev.data); } catch { /* not JSON */ }
    onEvent(ev.type, payload, ev.lastEventId);
  };

  const open = () => {
    const u = new URL(url, location.origin);
    u.searchParams.set('access_token', token);
    if (last) u.searchParams.set('after', String(last));
    es = new EventSource(u);
    opens++;
    es.onopen = () => { failures = 0; onState('live'); };
    for (const t of TYPES) es.addEventListener(t, handle);
    es.addEventListener('end', () => { stop(); if (onEnd) onEnd(); });
    es.addEventListener('overflow', (ev) => {
      try { const d = JSON.parse(ev.data); if (d.last_id) last = d.last_id; } catch { /* keep last */ }
      reopen(0);
    });
    es.onerror = () => {
      if (stopped) return;
      onState('reconnecting');
      // CLOSED: the server refused the reconnect (an expired token).
      if (es.readyState === EventSource.CLOSED) reopen(Math.min(30000, 500 * 2 ** failures++));
    };
  };

  const reopen = (delay) => {
    if (es) es.close();
    onState('reconnecting');
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (stopped) return;
      try {
        token = await freshToken(scanId);
      } catch {
        onState('offline');
        reopen(Math.min(30000, 1000 * 2 ** failures++));
        return;
      }
      open();
    }, delay);
  };

  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    if (es) es.close();
    onState('ended');
  };

  open();
  return { stop, reconnect: () => reopen(0), opens: () => opens };
}

function logLine(version, payload, summary) {
  const li = document.createElement('li');
  if (version) li.dataset.version = version;
  const ver = document.createElement('span');
  ver.className = 'ver';
  ver.textContent = version ? `#${version}` : '';
  const time = document.createElement('time');
  time.dateTime = payload.recorded_at || '';
  time.textContent = (payload.recorded_at || '').replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');
  const type = document.createElement('strong');
  type.textContent = payload.type || '';
  const sum = document.createElement('span');
  sum.className = 'sum';
  sum.textContent = summary;
  li.append(ver, ' ', time, ' ', type, ' ', sum);
  if (payload.actor) {
    const a = document.createElement('span');
    a.className = 'actor';
    a.textContent = `by ${payload.actor}`;
    li.append(' ', a);
  }
  return li;
}

function summarize(type, d) {
  d = d || {};
  switch (type) {
    case 'ScanProgressed': return `${d.phase || ''} — ${d.progress ?? 0}%`;
    case 'FindingRecorded': {
      const f = d.finding || {};
      return `${f.severity}: ${f.title} (${f.file}:${f.start_line})`;
    }
    case 'ScanClaimed': return `claimed by ${d.worker_id || ''}`;
    case 'ScanCompleted': {
      const c = d.counts || {};
      const total = SEVERITIES.reduce((n, s) => n + (c[s] || 0), 0);
      return `${total} findings: ${SEVERITIES.map((s) => `${c[s] || 0} ${s}`).join(', ')}${d.partial ? ' (partial)' : ''}`;
    }
    default: return d.reason || '';
  }
}

function setLiveState(state) {
  const el = document.getElementById('live-state') || document.getElementById('activity-hint');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = {
    live: 'Live: new events appear as they happen.',
    reconnecting: 'Connection lost: reconnecting…',
    offline: 'Offline: retrying…',
    ended: '',
  }[state] ?? '';
}

export function startScanLive(main) {
  const log = document.getElementById('event-log');
  const statusText = document.getElementById('scan-status-text');
  const phase = document.getElementById('scan-phase');
  const bar = document.getElementById('scan-progress');
  const barText = document.getElementById('scan-progress-text');
  const done = document.getElementById('scan-done');
  const cancel = document.getElementById('cancel-scan');
  const counts = {};
  for (const s of SEVERITIES) counts[s] = document.querySelector(`#counts [data-count="${s}"]`);

  const setStatus = (st) => {
    main.dataset.scanStatus = st;
    if (statusText) {
      statusText.replaceChildren();
      const span = document.createElement('span');
      span.className = `status status-${st}`;
      span.textContent = st.replace('_', ' ');
      statusText.append(span);
    }
  };
  const setProgress = (n) => {
    const v = Math.max(0, Math.min(100, Number(n) || 0));
    if (bar) { bar.value = v; bar.textContent = `${v}%`; }
    if (barText) barText.textContent = `${v}%`;
  };
  const setCount = (s, n) => { if (counts[s]) counts[s].textContent = String(n); };

  const onEvent = (type, payload, id) => {
    if (log && !(id && log.querySelector(`li[data-version="${CSS.escape(id)}"]`))) {
      log.append(logLine(id, payload, summarize(type, payload.data)));
      while (log.children.length > MAX_LOG) log.firstElementChild.remove();
    }
    const d = payload.data || {};
    switch (type) {
      case 'ScanClaimed': setStatus('claimed'); break;
      case 'ScanStarted': setStatus('running'); break;
      case 'ScanRequeued':
        setStatus('requested'); setProgress(0);
        for (const s of SEVERITIES) setCount(s, 0);
        break;
      case 'ScanProgressed':
        if (phase) phase.textContent = d.phase || '—';
        setProgress(d.progress);
        break;
      case 'FindingRecorded': {
        const s = d.finding && d.finding.severity;
        if (counts[s]) setCount(s, Number(counts[s].textContent || 0) + 1);
        break;
      }
      default:
        if (TERMINAL[type]) {
          if (type === 'ScanCompleted') {
            setProgress(100);
            for (const s of SEVERITIES) setCount(s, (d.counts || {})[s] || 0);
          }
          setStatus(TERMINAL[type]);
          if (done) done.hidden = false;
          if (cancel) cancel.hidden = true;
        }
    }
  };

  const live = follow({
    url: main.dataset.live, token: main.dataset.streamToken, scanId: main.dataset.scanId,
    after: Number(main.dataset.lastEvent || 0), onEvent, onState: setLiveState,
  });
  window.vegaLive = live; // lets tests force a reconnect
}

const PAGES = { scan: '/scans/', repository: '/repositories/', project: '/projects/', issue: '/issues/' };

export function startActivity(main) {
  const list = document.getElementById('activity');
  if (!list) return;
  const onEvent = (type, payload) => {
    const sid = payload.stream_id || '';
    const cut = sid.indexOf('-');
    const cat = sid.slice(0, cut);
    const li = logLine('', payload, summarize(type, payload.data));
    if (PAGES[cat]) {
      const a = document.createElement('a');
      a.href = PAGES[cat] + encodeURIComponent(sid.slice(cut + 1));
      a.textContent = `${cat} ${sid.slice(-10)}`;
      li.append(' — ', a);
    }
    list.prepend(li);
    while (list.children.length > 50) list.lastElementChild.remove();
  };
  window.vegaLive = follow({ url: main.dataset.live, token: main.dataset.streamToken, scanId: '', after: '', onEvent, onState: setLiveState });
}

export { ICONS };
