// Settings page enhancement: with JavaScript the form uses the JSON API (no page reload), adds and
// removes rows in place, tests connections, and keeps the status panel live. Without JavaScript
// the same form posts to the server and works as well. A VNC password is sent only when typed
// (null when "Remove password" is ticked) and never comes back: the API says only `passwordSet`.
// The rules that turn rows into targets are the server's own (src/common/form-rules.ts), and the
// status panel is the server's rendering of views/partials/status.ejs, fetched again every 2 s.
import './token.js';
import { pageLanguage, translator } from '../common/i18n/index.js';
import {
  DEFAULT_VNC_PORT,
  passwordsClearedText,
  probeText,
  rowFieldOf,
  targetLabel,
  targetProblems,
  targetsFromRows,
} from '../common/form-rules.js';
import { PROBE_OUTCOME_KINDS, reachWords } from '../common/reach.js';

/** The page's language (the server chose it: ?lang=, else Accept-Language) and its texts. */
const LANG = pageLanguage(document.documentElement.lang);
const say = translator(LANG);
const api = new URL('../api/v1/', location.href);
const form = document.getElementById('config-form');
const list = document.getElementById('targets');
const message = document.getElementById('message');
const statusBody = document.getElementById('status-body');

/** Headers of every API call; `auth` is filled by the ctrlX token module when present. */
function headers(json) {
  // Problem answers in the page's language.
  const h = { Accept: 'application/json', 'Accept-Language': LANG };
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

// ---- the list of targets: one line each, the fields fold out with "Edit" ------------------

/** Opens (or, with `open` false, folds) the fields of a row. */
function showEditor(row, open = true) {
  if (!row) return;
  row.classList.toggle('open', open);
  row.querySelector('[data-action="edit"]').setAttribute('aria-expanded', String(open));
}

/** The row's line in words: name (or host), address, and the Open link once the target is saved. */
function updateLine(row) {
  const host = field(row, 'host').value.trim();
  const port = field(row, 'port').value.trim() || String(DEFAULT_VNC_PORT);
  const title = field(row, 'name').value.trim() || host;
  row.querySelector('[data-field="title"]').textContent = title || say('settings.newTarget');
  row.querySelector('[data-field="open"]').setAttribute('aria-label', say('settings.openNamed', { name: title || say('settings.newTargetLower') }));
  row.querySelector('[data-action="edit"]').setAttribute('aria-label', say('settings.editNamed', { name: title || say('settings.newTargetLower') }));
  row.querySelector('[data-field="address"]').textContent = host ? `${host}:${port}` : '';
  const id = field(row, 'id').value;
  const open = row.querySelector('[data-field="open"]');
  open.classList.toggle('hidden', !id);
  const viewer = new URL('../viewer/', location.href);
  viewer.searchParams.set('target', id);
  const forced = new URLSearchParams(location.search).get('lang');
  if (forced) viewer.searchParams.set('lang', forced);
  open.href = `${viewer.pathname}${viewer.search}`;
}

/** The reachability dot of a row from a target's `reach` (src/common/reach.ts; none: not checked yet). */
function setDot(row, reach) {
  const dot = row.querySelector('[data-field="dot"]');
  const { state, text } = reachWords(reach, LANG);
  dot.className = `dot dot-${state}`;
  dot.setAttribute('aria-label', text);
  dot.title = text;
}

form.classList.add('enhanced');
for (const b of form.querySelectorAll('[data-action="edit"]')) b.hidden = false;
list.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action="edit"]');
  if (!button) return;
  const row = button.closest('fieldset.target');
  const open = !row.classList.contains('open');
  showEditor(row, open);
  if (open) field(row, 'name').focus();
});
list.addEventListener('input', (event) => {
  const row = event.target.closest('fieldset.target');
  if (row && ['name', 'host', 'port'].includes(event.target.name)) updateLine(row);
});

/** Moves the focus to the first field with an error, in the order of the page (after a failed save). */
function focusFirstError() {
  const input = form.querySelector('[aria-invalid="true"]');
  if (!input) return;
  showEditor(input.closest('fieldset.target'));
  input.focus();
}

// ---- unsaved changes -----------------------------------------------------------------------

/** True while the form holds edits that were not saved. */
let dirty = false;
form.addEventListener('input', () => {
  dirty = true;
});
window.addEventListener('beforeunload', (event) => {
  if (!dirty) return;
  // Browsers show their own "Leave site? Changes you made may not be saved." prompt.
  event.preventDefault();
  event.returnValue = '';
});

/** Shows whether a password is stored for a row, and empties its password field. */
function setPasswordState(row, set) {
  const state = row.querySelector('[data-field="passwordState"]');
  state.textContent = set ? say('settings.password.set') : say('settings.password.none');
  state.classList.toggle('password-set', set);
  const input = field(row, 'password');
  input.value = '';
  input.placeholder = set ? say('settings.password.unchanged') : say('settings.password.optional');
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
  const conflict = say('form.passwordAndRemove');
  for (const i of conflicts) setError(all[i], 'password', conflict);
  if (conflicts.length) return { problem: `${targetLabel(conflicts[0], field(all[conflicts[0]], 'name').value, LANG)}: ${conflict}` };
  // The rules the page can check itself (the server checks them all again).
  let problem = '';
  targets.forEach((t, i) => {
    const row = all[rowOf[i]];
    for (const p of targetProblems(t, LANG)) {
      setError(row, p.field, p.message);
      problem ||= `${targetLabel(rowOf[i], field(row, 'name').value, LANG)}: ${p.message}`;
    }
  });
  return problem ? { problem } : { targets, rowOf };
}

async function save() {
  const all = rows();
  all.forEach(clearErrors);
  const collected = collect();
  if (collected.problem) {
    show('error', say('settings.msg.notSaved', { problem: collected.problem }));
    focusFirstError();
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
      updateLine(row);
    });
    dirty = false;
    const cleared = res.data.targets.filter((t) => (res.data.passwordsCleared || []).includes(t.id)).map((t) => t.name);
    const clearedText = cleared.length ? ` ${passwordsClearedText(cleared, LANG)}` : '';
    const failed = failedTests();
    if (failed.length) show('warn', `${say('settings.msg.savedWarn', { list: failed.join('; ') })}${clearedText}`);
    else show('ok', `${say('settings.msg.saved')}${clearedText}`);
    await refreshStatus();
    return;
  }
  const p = res.data || {};
  let first = '';
  for (const e of p.errors || []) {
    const at = rowFieldOf(e.field);
    if (!at) continue;
    const row = all[rowOf[at.target]];
    setError(row, at.field, e.message);
    first ||= `${targetLabel(rowOf[at.target], field(row, 'name').value, LANG)}: ${e.message}`;
  }
  show('error', say('settings.msg.notSaved', { problem: first || p.detail || `HTTP ${res.status}` }));
  focusFirstError();
}

async function probe(row) {
  const out = row.querySelector('[data-field="probe"]');
  out.className = 'probe probe-busy';
  out.textContent = say('settings.testing');
  clearErrors(row);
  const host = field(row, 'host').value.trim();
  const port = field(row, 'port').value.trim() || String(DEFAULT_VNC_PORT);
  // The typed password; else the server uses the stored one of the saved target at this address.
  const body = { host, port, login: true };
  const typed = field(row, 'password').value;
  if (typed) body.password = typed;
  const res = await call('POST', 'probe', body);
  if (res.ok) {
    out.className = `probe ${res.data.ok ? 'probe-ok' : 'probe-bad'}`;
    out.textContent = probeText(res.data, Boolean(typed), LANG);
    // Remembered for Save, which warns (without refusing) when the last test of a target failed.
    row.dataset.lastTest = res.data.ok ? 'ok' : 'failed';
    row.dataset.lastTestOf = `${host}:${port}`;
    const kind = res.data.ok ? null : (res.data.kind ?? PROBE_OUTCOME_KINDS[res.data.outcome] ?? 'target-error');
    setDot(row, { ok: res.data.ok, kind, at: new Date().toISOString(), via: 'test' });
  } else {
    out.className = 'probe probe-bad';
    out.textContent = res.data?.detail || say('settings.testFailed', { status: res.status });
    for (const e of (res.data?.errors) || []) setError(row, e.field, e.message);
  }
}

/** Targets whose last Test connection (of the address they have now) failed, in words. */
function failedTests() {
  return rows()
    .map((row, i) => {
      const address = `${field(row, 'host').value.trim()}:${field(row, 'port').value.trim() || DEFAULT_VNC_PORT}`;
      if (row.dataset.lastTest !== 'failed' || row.dataset.lastTestOf !== address) return '';
      return `${targetLabel(i, field(row, 'name').value, LANG)}: ${row.querySelector('[data-field="probe"]').textContent}`;
    })
    .filter(Boolean);
}

function renumber() {
  rows().forEach((row, i) => {
    row.dataset.index = String(i);
    row.querySelector('legend').textContent = say('settings.targetN', { n: i + 1 });
    for (const b of row.querySelectorAll('button[value]')) b.value = String(i);
    row.querySelector('.hint').id = `password-hint-${i}`;
    field(row, 'password').setAttribute('aria-describedby', `password-hint-${i}`);
    row.querySelector('.idle-hint').id = `idle-hint-${i}`;
    row.querySelector('.target-fields').id = `target-fields-${i}`;
    row.querySelector('[data-action="edit"]').setAttribute('aria-controls', `target-fields-${i}`);
    field(row, 'idleTimeout').setAttribute('aria-describedby', `idle-hint-${i}`);
    row.querySelector('.control-hint').id = `control-hint-${i}`;
    field(row, 'control').setAttribute('aria-describedby', `control-hint-${i}`);
    row.querySelector('.resize-hint').id = `resize-hint-${i}`;
    field(row, 'allowResize').setAttribute('aria-describedby', `resize-hint-${i}`);
  });
}

/** Empties a row's fields (a fresh target: no id, the default port, no password, never idle-closed). */
function resetRow(row) {
  for (const input of row.querySelectorAll('input')) input.value = input.name === 'port' ? String(DEFAULT_VNC_PORT) : '';
  field(row, 'control').value = 'on-request';
  field(row, 'allowResize').value = '';
  setPasswordState(row, false);
  clearErrors(row);
  delete row.dataset.lastTest;
  setDot(row, null);
  updateLine(row);
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
  showEditor(row);
  field(row, 'name').focus();
}

function removeRow(row) {
  const name = field(row, 'name').value.trim() || field(row, 'host').value.trim();
  // Nothing is deleted before Save, but a row with values is work to lose: ask first.
  if ((name || field(row, 'id').value) && !window.confirm(name ? say('settings.confirmRemoveNamed', { name }) : say('settings.confirmRemove'))) return;
  dirty = true;
  if (rows().length === 1) {
    resetRow(row);
    showEditor(row);
  } else {
    row.remove();
  }
  renumber();
  show('info', say('settings.msg.removed'));
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const button = event.submitter;
  const action = button?.dataset.action;
  const row = button?.closest('fieldset.target');
  const run = action === 'probe' ? probe(row) : action === 'remove' ? removeRow(row) : action === 'add' ? addRow() : save();
  if (button && run instanceof Promise) {
    button.disabled = true;
    run.catch((err) => show('error', say('settings.msg.requestFailed', { reason: err.message }))).finally(() => (button.disabled = false));
  }
});

// ---- live reachability dots -----------------------------------------------------------------

/** The address a row has now, as the status names a target's (`host:port`, IPv6 in brackets). */
function rowAddress(row) {
  const host = field(row, 'host').value.trim();
  const port = field(row, 'port').value.trim() || String(DEFAULT_VNC_PORT);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Sets each saved row's dot from its target's `reach` in the status panel the server rendered (the
 * newest of its last viewer session and Test connection; no request of its own): the dot follows
 * the viewers without a Test connection, which would cost the VNC server a connection closed
 * before its login. A row whose address was edited and not saved keeps its dot.
 */
function refreshDots() {
  let targets;
  try {
    targets = JSON.parse(statusBody.querySelector('[data-field="reach"]')?.dataset.reach ?? '[]');
  } catch {
    return;
  }
  const byId = new Map(targets.map((t) => [t.id, t]));
  for (const row of rows()) {
    const t = byId.get(field(row, 'id').value);
    if (t?.reach && (t.target === undefined || t.target === rowAddress(row))) setDot(row, t.reach);
  }
}

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
      refreshDots();
    } else if (res.status === 401) {
      // The login expired: every further poll would be another failed login, which the app
      // counts per address (too many lock this address out for a while). Stop and say so.
      clearInterval(poller);
      show('error', say('settings.msg.loginEnded'));
    } else if (res.status === 429) {
      const wait = Number(res.headers.get('Retry-After')) || 60;
      pausedUntil = Date.now() + wait * 1000;
      show('error', res.data?.detail || say('settings.msg.statusPaused', { seconds: wait }));
    }
  } catch {
    // The app may be restarting; the next poll tries again.
  }
}

poller = setInterval(refreshStatus, 2000);

// ---- open sessions and recent activity ------------------------------------------------------

const sessionsBody = document.getElementById('sessions-body');
const auditBody = document.getElementById('audit-body');
/** Audit entries shown: the newest this many. */
const AUDIT_SHOWN = 20;
let activityTimer;

/** "12:04:31" for today, else the date and time, in the page's language. */
function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString(LANG) : d.toLocaleString(LANG);
}

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
}

/** Shows `trs` in `body`, or the "none" line when there are none. */
function fillTable(body, trs, none) {
  body.replaceChildren(...trs);
  body.closest('.table-scroll').classList.toggle('hidden', trs.length === 0);
  document.getElementById(none).classList.toggle('hidden', trs.length > 0);
}

/** Ends session `s` after asking (DELETE api/v1/sessions/:id): its viewer says who ended it. */
async function endSession(s, button) {
  if (!window.confirm(say('settings.sessions.confirmEnd', { user: s.user, target: s.targetName }))) return;
  button.disabled = true;
  try {
    const res = await call('DELETE', `sessions/${encodeURIComponent(s.id)}`);
    if (res.ok || res.status === 404) show('ok', say('settings.sessions.ended', { user: s.user }));
    else show('error', res.data?.detail || say('settings.testFailed', { status: res.status }));
  } catch (err) {
    show('error', say('settings.msg.requestFailed', { reason: err.message }));
  }
  await refreshActivity();
  // The session's end reaches the trail once its connections have closed: look again shortly.
  setTimeout(refreshActivity, 1500);
}

function sessionRow(s) {
  const tr = document.createElement('tr');
  tr.dataset.session = s.id;
  const action = document.createElement('td');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button secondary small';
  button.textContent = say('settings.sessions.end');
  button.setAttribute('aria-label', say('settings.sessions.endNamed', { user: s.user, target: s.targetName }));
  button.addEventListener('click', () => endSession(s, button));
  action.append(button);
  tr.append(
    cell(s.targetName),
    cell(s.user),
    cell(say(s.mode === 'control' ? 'settings.sessions.control' : 'settings.sessions.watch')),
    cell(when(s.since)),
    cell(s.address || ''),
    action,
  );
  return tr;
}

function auditRow(e) {
  const tr = document.createElement('tr');
  const key = `settings.audit.ev.${e.event}`;
  const event = say(key) === key ? e.event : say(key);
  const detail = [e.detail || '', typeof e.durationMs === 'number' ? say('settings.audit.duration', { seconds: Math.round(e.durationMs / 1000) }) : '']
    .filter(Boolean)
    .join('; ');
  tr.append(cell(when(e.time)), cell(event), cell(e.user || ''), cell(e.targetName || e.target || ''), cell(e.address || ''), cell(detail));
  return tr;
}

/** Reads the open sessions and the newest audit entries again (every 10 s, and after an action). */
async function refreshActivity() {
  if (Date.now() < pausedUntil) return;
  try {
    const [sessions, audit] = await Promise.all([call('GET', 'sessions'), call('GET', `audit?page=1&limit=${AUDIT_SHOWN}`)]);
    if (sessions.status === 401 || audit.status === 401) {
      clearInterval(activityTimer);
      return;
    }
    if (sessions.ok && sessions.data) fillTable(sessionsBody, sessions.data.sessions.map(sessionRow), 'sessions-none');
    if (audit.ok && audit.data) fillTable(auditBody, audit.data.entries.map(auditRow), 'audit-none');
  } catch {
    // The app may be restarting; the next refresh tries again.
  }
}

// "Download CSV": the file comes from the API with the page's login (a plain link would carry none).
document.getElementById('audit-csv').addEventListener('click', async (event) => {
  event.preventDefault();
  try {
    const h = headers(false);
    h.Accept = 'text/csv';
    const res = await fetch(new URL('audit', api), { headers: h, credentials: 'same-origin' });
    if (!res.ok) {
      show('error', say('settings.testFailed', { status: res.status }));
      return;
    }
    const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') || '')?.[1] || 'audit.csv';
    const link = document.createElement('a');
    link.href = URL.createObjectURL(await res.blob());
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (err) {
    show('error', say('settings.msg.requestFailed', { reason: err.message }));
  }
});

activityTimer = setInterval(refreshActivity, 10_000);
void refreshActivity();
