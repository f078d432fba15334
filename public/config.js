// Settings page enhancement: with JavaScript the form uses the JSON API (no page reload), adds and
// removes rows in place, tests connections, and keeps the status panel live. Without JavaScript
// the same form posts to the server and works as well. A VNC password is sent only when typed
// (null when "Remove password" is ticked) and never comes back: the API says only `passwordSet`.
// The rules that turn rows into targets are the server's own (src/shared/form-rules.ts), and the
// status panel is the server's rendering of views/partials/status.ejs, fetched again every 2 s.
import './token.js';
import { DEFAULT_VNC_PORT, PASSWORD_AND_REMOVE, passwordsClearedText, rowFieldOf, targetsFromRows } from '../shared/form-rules.js';

const api = new URL('../api/v1/', location.href);
const form = document.getElementById('config-form');
const list = document.getElementById('targets');
const message = document.getElementById('message');
const statusBody = document.getElementById('status-body');

/** Headers of every API call; `auth` is filled by the ctrlX token module when present. */
function headers(json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  const token = window.ctrlxToken?.();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

/** Calls the API; `accept: 'html'` asks for a rendered fragment (then `html` holds it). */
async function call(method, path, body, accept = 'json') {
  const h = headers(body !== undefined);
  if (accept === 'html') h.Accept = 'text/html';
  const res = await fetch(new URL(path, api), {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const type = res.headers.get('content-type') || '';
  const data = type.includes('json') ? await res.json() : null;
  const html = type.startsWith('text/html') ? await res.text() : null;
  return { ok: res.ok, status: res.status, data, html, headers: res.headers };
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
  row.querySelector('[data-field="addressHint"]').classList.toggle('hidden', !set);
}

/**
 * Builds the targets from the rows by the form's rules (the server applies the same to the page
 * without JavaScript). Returns null (errors shown) when a row has both a password and "Remove
 * password".
 */
function collect() {
  const all = rows();
  const { targets, rowOf, conflicts } = targetsFromRows(
    all.map((row) => ({
      id: field(row, 'id').value,
      name: field(row, 'name').value,
      host: field(row, 'host').value,
      port: field(row, 'port').value,
      idleTimeout: field(row, 'idleTimeout').value,
      control: field(row, 'control').value,
      allowResize: field(row, 'allowResize').value === 'on',
      password: field(row, 'password').value,
      removePassword: field(row, 'removePassword').checked,
    })),
  );
  for (const i of conflicts) setError(all[i], 'password', PASSWORD_AND_REMOVE);
  return conflicts.length ? null : { targets, rowOf };
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
    const cleared = res.data.targets.filter((t) => (res.data.passwordsCleared || []).includes(t.id)).map((t) => t.name);
    show('ok', `Saved. New viewer sessions use these targets now.${cleared.length ? ` ${passwordsClearedText(cleared)}` : ''}`);
    await refreshStatus();
    return;
  }
  const p = res.data || {};
  for (const e of p.errors || []) {
    const at = rowFieldOf(e.field);
    if (at) setError(all[rowOf[at.target]], at.field, e.message);
  }
  show('error', `Not saved: ${p.detail || `HTTP ${res.status}`}`);
}

async function probe(row) {
  const out = row.querySelector('[data-field="probe"]');
  out.className = 'probe probe-busy';
  out.textContent = 'Testing…';
  clearErrors(row);
  const res = await call('POST', 'probe', { host: field(row, 'host').value.trim(), port: field(row, 'port').value.trim() || String(DEFAULT_VNC_PORT) });
  if (res.ok) {
    out.className = `probe ${res.data.ok ? 'probe-ok' : 'probe-bad'}`;
    out.textContent = res.data.message;
  } else {
    out.className = 'probe probe-bad';
    out.textContent = '';
    for (const e of (res.data?.errors) || []) setError(row, e.field, e.message);
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

/** Empties a row's fields (a fresh target: no id, the default port, no password, never idle-closed). */
function resetRow(row) {
  for (const input of row.querySelectorAll('input')) input.value = input.name === 'port' ? String(DEFAULT_VNC_PORT) : '';
  field(row, 'control').value = 'on-request';
  field(row, 'allowResize').value = '';
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
  const action = button?.dataset.action;
  const row = button?.closest('fieldset.target');
  const run = action === 'probe' ? probe(row) : action === 'remove' ? removeRow(row) : action === 'add' ? addRow() : save();
  if (button && run instanceof Promise) {
    button.disabled = true;
    run.catch((err) => show('error', `Request failed: ${err.message}`)).finally(() => (button.disabled = false));
  }
});

// ---- live status -------------------------------------------------------------------------

/** No status polls before this time (ms): the app asked to wait (429 with Retry-After). */
let pausedUntil = 0;
let poller;

async function refreshStatus() {
  if (Date.now() < pausedUntil) return;
  try {
    const res = await call('GET', 'status', undefined, 'html');
    if (res.ok && res.html !== null) {
      // The server's own rendering of the panel (views/partials/status.ejs), escaped there.
      statusBody.innerHTML = res.html;
    } else if (res.status === 401) {
      // The login expired: every further poll would be another failed login, which the app
      // counts per address (too many lock this address out for a while). Stop and say so.
      clearInterval(poller);
      show('error', 'The ctrlX login of this page has ended, so the status is no longer updated. Open the settings again from the ctrlX menu.');
    } else if (res.status === 429) {
      const wait = Number(res.headers.get('Retry-After')) || 60;
      pausedUntil = Date.now() + wait * 1000;
      show('error', (res.data?.detail) || `Too many requests; the status resumes in ${wait} s.`);
    }
  } catch {
    // The app may be restarting; the next poll tries again.
  }
}

poller = setInterval(refreshStatus, 2000);
