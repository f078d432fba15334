// Settings page enhancement: with JavaScript the form uses the JSON API (no page reload), adds and
// removes rows in place, tests connections, and keeps the status panel live. Without JavaScript
// the same form posts to the server and works as well. A VNC password is sent only when typed
// (null when "Remove password" is ticked) and never comes back: the API says only `passwordSet`.
import './token.js';

const api = new URL('../api/v1/', location.href);
const form = document.getElementById('config-form');
const list = document.getElementById('targets');
const message = document.getElementById('message');
const statusBox = document.getElementById('status');

/** Headers of every API call; `auth` is filled by the ctrlX token module when present. */
function headers(json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  const token = window.ctrlxToken && window.ctrlxToken();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function call(method, path, body) {
  const res = await fetch(new URL(path, api), {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : null;
  return { ok: res.ok, status: res.status, data, headers: res.headers };
}

function show(kind, text) {
  message.className = `message message-${kind}`;
  message.textContent = text;
}

function rows() {
  return [...list.querySelectorAll('fieldset.target')];
}

function field(row, name) {
  return row.querySelector(`[name="${name}"]`);
}

function clearErrors(row) {
  for (const el of row.querySelectorAll('.error')) el.textContent = '';
  for (const el of row.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

function setError(row, name, text) {
  const out = row.querySelector(`.error[data-for="${name === 'id' ? 'name' : name}"]`);
  const input = field(row, name === 'id' ? 'name' : name);
  if (out) out.textContent = text;
  if (input) input.setAttribute('aria-invalid', 'true');
}

const PASSWORD_AND_REMOVE = 'Type a new password or tick "Remove password", not both.';

/** Shows whether a password is stored for a row, and empties its password field. */
function setPasswordState(row, set) {
  const state = row.querySelector('[data-field="passwordState"]');
  state.textContent = set ? 'Password set' : 'No password stored';
  state.classList.toggle('password-set', set);
  const input = field(row, 'password');
  input.value = '';
  input.placeholder = set ? 'unchanged' : 'optional';
  const box = field(row, 'removePassword');
  box.checked = false;
  box.value = field(row, 'id').value;
  row.querySelector('[data-field="removePassword"]').classList.toggle('hidden', !set);
}

/**
 * Builds the configuration from the rows, as the server does for the plain form; `password` only
 * when typed, null when "Remove password" is ticked; `idleTimeout` only when filled in (minutes,
 * empty: never). Returns null (errors shown) when a row has both a password and "Remove password".
 */
function collect() {
  const targets = [];
  const rowOf = [];
  let conflict = false;
  rows().forEach((row, i) => {
    const host = field(row, 'host').value.trim();
    const name = field(row, 'name').value.trim() || host;
    const portText = field(row, 'port').value.trim();
    const password = field(row, 'password').value;
    const remove = field(row, 'removePassword').checked;
    const idleText = field(row, 'idleTimeout').value.trim();
    if (!host && !field(row, 'name').value.trim() && !portText && !idleText && !password) return;
    const port = portText === '' ? 5900 : /^\d+$/.test(portText) ? Number(portText) : portText;
    let id = field(row, 'id').value;
    if (!id) {
      const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 24) || 'target';
      const used = new Set(targets.map((t) => t.id).concat(rows().map((r) => field(r, 'id').value).filter(Boolean)));
      id = base;
      for (let n = 2; used.has(id); n++) id = `${base}-${n}`;
    }
    const target = { id, name, host, port };
    // Not a number: sent as typed, so the server's message explains what is wanted.
    if (idleText) target.idleTimeout = /^\d+$/.test(idleText) ? Number(idleText) : idleText;
    if (password && remove) {
      setError(row, 'password', PASSWORD_AND_REMOVE);
      conflict = true;
    } else if (password) target.password = password;
    else if (remove) target.password = null;
    targets.push(target);
    rowOf.push(i);
  });
  return conflict ? null : { targets, rowOf };
}

async function save() {
  const all = rows();
  all.forEach(clearErrors);
  const collected = collect();
  if (!collected) {
    show('error', `Not saved: ${PASSWORD_AND_REMOVE}`);
    return;
  }
  const { targets, rowOf } = collected;
  const res = await call('PUT', 'config', { targets });
  if (res.ok) {
    // Keep the ids the server stored so later saves address the same targets; empty the
    // password fields (a password is never shown again) and say which targets have one.
    res.data.targets.forEach((t, i) => {
      const row = all[rowOf[i]];
      field(row, 'id').value = t.id;
      field(row, 'idleTimeout').value = t.idleTimeout === undefined ? '' : String(t.idleTimeout);
      setPasswordState(row, t.passwordSet);
    });
    show('ok', 'Saved. New viewer sessions use these targets now.');
    refreshStatus();
    return;
  }
  const p = res.data || {};
  for (const e of p.errors || []) {
    const m = /^targets\[(\d+)\]\.(id|name|host|port|password|idleTimeout)$/.exec(e.field);
    if (m) setError(all[rowOf[Number(m[1])]], m[2], e.message);
  }
  show('error', `Not saved: ${p.detail || `HTTP ${res.status}`}`);
}

async function probe(row) {
  const out = row.querySelector('[data-field="probe"]');
  out.className = 'probe probe-busy';
  out.textContent = 'Testing…';
  clearErrors(row);
  const res = await call('POST', 'probe', { host: field(row, 'host').value.trim(), port: field(row, 'port').value.trim() || '5900' });
  if (res.ok) {
    out.className = `probe ${res.data.ok ? 'probe-ok' : 'probe-bad'}`;
    out.textContent = res.data.message;
  } else {
    out.className = 'probe probe-bad';
    out.textContent = '';
    for (const e of (res.data && res.data.errors) || []) setError(row, e.field, e.message);
  }
}

function renumber() {
  rows().forEach((row, i) => {
    row.dataset.index = String(i);
    row.querySelector('legend').textContent = `Target ${i + 1}`;
    for (const b of row.querySelectorAll('button[value]')) b.value = String(i);
    row.querySelector('.hint').id = `password-hint-${i}`;
    field(row, 'password').setAttribute('aria-describedby', `password-hint-${i}`);
    row.querySelector('.idle-hint').id = `idle-hint-${i}`;
    field(row, 'idleTimeout').setAttribute('aria-describedby', `idle-hint-${i}`);
  });
}

/** Empties a row's fields (a fresh target: no id, port 5900, no password, never idle-closed). */
function resetRow(row) {
  for (const input of row.querySelectorAll('input')) input.value = input.name === 'port' ? '5900' : '';
  setPasswordState(row, false);
  clearErrors(row);
}

function addRow() {
  const first = rows()[0];
  const row = first.cloneNode(true);
  resetRow(row);
  const out = row.querySelector('[data-field="probe"]');
  out.className = 'probe';
  out.textContent = '';
  list.appendChild(row);
  renumber();
  field(row, 'name').focus();
}

function removeRow(row) {
  if (rows().length === 1) {
    resetRow(row);
  } else {
    row.remove();
  }
  renumber();
  show('info', 'Target removed from the form; Save to apply.');
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const button = event.submitter;
  const action = button && button.dataset.action;
  const row = button && button.closest('fieldset.target');
  const run = action === 'probe' ? probe(row) : action === 'remove' ? removeRow(row) : action === 'add' ? addRow() : save();
  if (button && run instanceof Promise) {
    button.disabled = true;
    run.catch((err) => show('error', `Request failed: ${err.message}`)).finally(() => (button.disabled = false));
  }
});

// ---- live status -------------------------------------------------------------------------

const STATE_TEXT = { running: 'Running', stopped: 'Stopped' };

function fmtBytes(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
}

function time(iso) {
  return iso.replace('T', ' ').slice(0, 19);
}

/** Targets whose stored VNC password the server rejected; same words as views/partials/status.ejs. */
function authText(targets) {
  const bad = targets.filter((t) => t.auth);
  if (!bad.length) return 'no rejected passwords';
  return bad
    .map((t) => `${t.name}: password rejected ${t.auth.failures} time${t.auth.failures === 1 ? '' : 's'} in a row` +
      (t.auth.retryIn ? `, next try allowed in ${t.auth.retryIn} s` : ''))
    .join('; ');
}

/** The relay's targets, each with its address and whether a VNC password is stored; same words as views/partials/status.ejs. */
function renderTargets(out, targets) {
  if (!targets.length) {
    out.replaceChildren('none configured');
    return;
  }
  const ul = document.createElement('ul');
  ul.className = 'target-list';
  for (const t of targets) {
    const li = document.createElement('li');
    li.append(`${t.name} (${t.target}${t.demo ? ', demo' : ''})`);
    if (t.passwordSet) {
      const note = document.createElement('span');
      note.className = 'password-note';
      note.textContent = 'VNC password stored';
      li.append(' ', note);
    }
    ul.append(li);
  }
  out.replaceChildren(ul);
}

function renderStatus(s) {
  const r = s.relay;
  const c = s.config;
  const q = (name) => statusBox.querySelector(`[data-field="${name}"]`);
  const state = q('state');
  state.className = `badge badge-${r.state}`;
  state.textContent = STATE_TEXT[r.state] || r.state;
  q('since').textContent = time(r.since);
  q('sessions').textContent = String(r.totals.sessionsOpen);
  renderTargets(q('targets'), r.targets);
  q('auth').textContent = authText(r.targets);
  const cfg = q('config');
  cfg.replaceChildren();
  const badge = document.createElement('span');
  const [cls, label, text] =
    c.state === 'unmounted' ? ['failed', 'Not available yet', ' waiting for the ctrlX active configuration']
    : c.state === 'invalid' ? ['failed', 'File invalid', ' running on the last good configuration']
    : c.loading ? ['restarting', 'Loading', ' a configuration is being loaded']
    : ['running', 'OK', c.exists ? ' config.json' : ' no file yet (nothing saved)'];
  badge.className = `badge badge-${cls}`;
  badge.textContent = label;
  cfg.append(badge, text);
  const table = q('sessionTable');
  table.classList.toggle('hidden', r.sessions.length === 0);
  const body = table.querySelector('tbody');
  body.replaceChildren(
    ...r.sessions.map((x) => {
      const tr = document.createElement('tr');
      for (const v of [`${x.targetId} (${x.target})`, x.peer, time(x.startedAt), fmtBytes(x.bytesUp), fmtBytes(x.bytesDown)]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
}

/** No status polls before this time (ms): the app asked to wait (429 with Retry-After). */
let pausedUntil = 0;
let poller;

async function refreshStatus() {
  if (Date.now() < pausedUntil) return;
  try {
    const res = await call('GET', 'status');
    if (res.ok) {
      renderStatus(res.data);
    } else if (res.status === 401) {
      // The login expired: every further poll would be another failed login, which the app
      // counts per address (too many lock this address out for a while). Stop and say so.
      clearInterval(poller);
      show('error', 'The ctrlX login of this page has ended, so the status is no longer updated. Open the settings again from the ctrlX menu.');
    } else if (res.status === 429) {
      const wait = Number(res.headers.get('Retry-After')) || 60;
      pausedUntil = Date.now() + wait * 1000;
      show('error', (res.data && res.data.detail) || `Too many requests; the status resumes in ${wait} s.`);
    }
  } catch {
    // The app may be restarting; the next poll tries again.
  }
}

poller = setInterval(refreshStatus, 2000);
