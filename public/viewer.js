// The viewer: noVNC's RFB on a WebSocket to this app's relay, with a slim toolbar, human
// messages for every failure, and automatic reconnection with backoff.
import './token.js';
import RFB from '../novnc/core/rfb.js';

const $ = (id) => document.getElementById(id);
const screen = $('screen');
const targetSelect = $('target');
const scalingSelect = $('scaling');
const viewOnlyBox = $('viewonly');
const keysSelect = $('keys');
const statusText = $('status-text');
const statusDot = $('status-dot');
const overlay = $('overlay');
const overlayText = $('overlay-text');
const overlayRetry = $('overlay-retry');
const overlaySettings = $('overlay-settings');
const connectButton = $('connect');
const disconnectButton = $('disconnect');
const passwordDialog = $('password-dialog');
const passwordInput = $('password');
const clipboardText = $('clipboard-text');

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];

let rfb = null;
let ws = null;
let connected = false;
let userStopped = false;
let attempt = 0;
let retryTimer = null;
let countdownTimer = null;
/** What ended the last connection: the WebSocket close and any security failure. */
let lastClose = null;
let lastSecurity = null;
let desktopName = '';

// ---- settings kept in the browser (never secrets) -------------------------------------------

const prefs = JSON.parse(localStorage.getItem('ctrlx-novnc.viewer') || '{}');
function savePrefs() {
  localStorage.setItem('ctrlx-novnc.viewer', JSON.stringify(prefs));
}

const params = new URLSearchParams(location.search);
/**
 * The target the user chose (`?target=` or the select); '' means "the first configured target",
 * resolved by the relay at each connection, so the viewer follows the settings (and leaves the
 * demo once a target is saved).
 */
let picked = '';
const wanted = params.get('target');
if (wanted && (targetSelect.options.length === 0 || [...targetSelect.options].some((o) => o.value === wanted))) {
  picked = wanted;
  targetSelect.value = wanted;
}
scalingSelect.value = prefs.scaling || 'fit';
viewOnlyBox.checked = params.get('view_only') === '1' || prefs.viewOnly === true;

function currentTarget() {
  return picked;
}

/** Re-reads the targets (the settings may have changed them since the page was loaded). */
async function refreshTargets() {
  try {
    const token = window.ctrlxToken && window.ctrlxToken();
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(new URL('../api/v1/status', location.href), { headers });
    if (!res.ok) return;
    const targets = (await res.json()).relay.targets;
    targetSelect.replaceChildren(...targets.map((t) => new Option(`${t.name}${t.demo ? ' (demo)' : ''}`, t.id)));
    // An explicit choice that vanished is kept: the relay then says the target is unknown.
    targetSelect.value = picked || (targets[0] ? targets[0].id : '');
    targetSelect.closest('label').classList.toggle('hidden', targets.length < 2);
  } catch {
    // The app may be restarting; the next attempt tries again.
  }
}

function targetName() {
  const opt = targetSelect.selectedOptions[0];
  return opt ? opt.textContent : 'the VNC server';
}

/** The relay URL, derived from this page (ws: or wss:, same host, under the same path prefix). */
function relayUrl() {
  const url = new URL('../websockify', location.href);
  const id = currentTarget();
  if (id) url.searchParams.set('target', id);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

// ---- status line and overlay ---------------------------------------------------------------

function setStatus(text, level) {
  statusText.textContent = text;
  statusDot.className = `dot ${level || ''}`;
}

function showOverlay(text, { retry = false, settings = false } = {}) {
  overlayText.textContent = text;
  overlayRetry.classList.toggle('hidden', !retry);
  overlaySettings.classList.toggle('hidden', !settings);
  overlay.classList.remove('hidden');
}

function hideOverlay() {
  overlay.classList.add('hidden');
}

function setConnectedUi(isConnected) {
  connectButton.classList.toggle('hidden', isConnected || (!userStopped && retryTimer !== null));
  disconnectButton.classList.toggle('hidden', !isConnected && (userStopped || retryTimer === null));
}

// ---- connection ----------------------------------------------------------------------------

function applyViewSettings() {
  if (!rfb) return;
  const mode = scalingSelect.value;
  rfb.scaleViewport = mode === 'fit';
  rfb.resizeSession = mode === 'remote';
  rfb.clipViewport = false;
  screen.classList.toggle('scroll', mode === 'none');
  rfb.viewOnly = viewOnlyBox.checked;
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryTimer = null;
  userStopped = false;
  if (rfb) teardown();
  lastClose = null;
  lastSecurity = null;
  desktopName = '';
  setStatus(`Connecting to ${targetName()}…`, 'warn');
  let socket;
  try {
    // The login travels in a subprotocol, not in the URL (URLs end up in logs).
    const token = window.ctrlxToken && window.ctrlxToken();
    socket = new WebSocket(relayUrl(), token ? ['binary', `ctrlx-novnc.bearer.${token}`] : []);
  } catch (err) {
    showOverlay(`Cannot open the connection: ${err.message}`, { retry: true });
    return;
  }
  ws = socket;
  socket.addEventListener('close', (e) => {
    if (socket === ws) lastClose = { code: e.code, reason: e.reason, opened: socket._opened === true };
  });
  socket.addEventListener('open', () => {
    socket._opened = true;
  });
  rfb = new RFB(screen, socket, { shared: true });
  rfb.background = '#282828';
  rfb.focusOnClick = true;
  applyViewSettings();
  rfb.addEventListener('connect', onConnect);
  rfb.addEventListener('disconnect', onDisconnect);
  rfb.addEventListener('credentialsrequired', onCredentialsRequired);
  rfb.addEventListener('securityfailure', (e) => (lastSecurity = e.detail));
  rfb.addEventListener('clipboard', (e) => (clipboardText.value = e.detail.text));
  rfb.addEventListener('desktopname', (e) => {
    desktopName = e.detail.name;
    if (connected) setStatus(`Connected to ${targetName()}${desktopName ? ` — ${desktopName}` : ''}`, 'ok');
  });
  setConnectedUi(false);
  disconnectButton.classList.remove('hidden');
  connectButton.classList.add('hidden');
}

function teardown() {
  const old = rfb;
  rfb = null;
  ws = null;
  connected = false;
  if (old) {
    old.removeEventListener('disconnect', onDisconnect);
    try {
      old.disconnect();
    } catch {
      // already closed
    }
  }
}

function onConnect() {
  connected = true;
  attempt = 0;
  hideOverlay();
  setStatus(`Connected to ${targetName()}${desktopName ? ` — ${desktopName}` : ''}`, 'ok');
  setConnectedUi(true);
  rfb.focus();
}

function onCredentialsRequired() {
  passwordInput.value = '';
  passwordDialog.showModal();
}

$('password-form').addEventListener('submit', () => {
  const password = passwordInput.value;
  passwordInput.value = '';
  if (rfb) rfb.sendCredentials({ password });
});
$('password-cancel').addEventListener('click', () => {
  passwordDialog.close();
  stop('Connection cancelled.');
});

/** Turns how the connection ended into a sentence and a retry decision. */
async function explain() {
  // Failures of the handshake the relay does itself with a stored password (RFB reason and close
  // reason carry the same text).
  const relayReason = (lastSecurity && lastSecurity.reason) || (lastClose && lastClose.reason) || '';
  if (/^authentication failed: /.test(relayReason)) {
    const said = /\(server: (.*)\)$/.exec(relayReason);
    return {
      text: `${targetName()} did not accept the VNC password stored in the settings${said ? ` (${said[1]})` : ''}. Enter the right password in the settings.`,
      retry: false,
      settings: true,
    };
  }
  if (/^security type not supported: /.test(relayReason)) {
    return { text: `${targetName()} cannot be opened: ${relayReason.replace(/^security type not supported: /, '')}.`, retry: false, settings: true };
  }
  if (/^VNC server .* refused the connection|^VNC handshake with /.test(relayReason)) {
    return { text: `${relayReason}.`, retry: true };
  }
  if (lastSecurity) {
    const reason = lastSecurity.reason ? `: ${lastSecurity.reason}` : '';
    return { text: `Authentication with ${targetName()} failed${reason}. Check the VNC password.`, retry: false };
  }
  const close = lastClose || { code: 1006, reason: '' };
  const reason = close.reason || '';
  if (close.code === 4000) return { text: `The target was changed in the settings; reconnecting…`, retry: true, soon: true };
  if (close.code === 4001) {
    const span = reason.replace(/^idle: no input for /, '');
    return { text: `Disconnected from ${targetName()} after ${span} without input. Connect again when you need it.`, retry: false };
  }
  if (close.code === 1001) return { text: 'The app is restarting; reconnecting…', retry: true };
  if (/^not a VNC server/.test(reason)) {
    return { text: `${targetName()} is reachable, but it is not a VNC server (${reason.replace(/^not a VNC server:? ?/, '')}). Check the port in the settings.`, retry: true, settings: true };
  }
  const m = /^(E[A-Z]+) (.*)$/.exec(reason);
  if (m) {
    const why = {
      ECONNREFUSED: 'connection refused (is the VNC server running?)',
      ETIMEDOUT: 'no answer (timed out)',
      EHOSTUNREACH: 'the host is unreachable',
      ENETUNREACH: 'the network is unreachable',
      ENOTFOUND: 'the host name is unknown',
      EAI_AGAIN: 'the host name cannot be resolved right now',
      ECONNRESET: 'the connection was reset',
    }[m[1]] || m[1];
    return { text: `Cannot reach the VNC server ${m[2]}: ${why}.`, retry: true, settings: true };
  }
  if (close.code === 1000 && reason === 'target closed') return { text: `${targetName()} closed the connection.`, retry: true };
  if (close.opened) return { text: `The connection to ${targetName()} was lost${reason ? ` (${reason})` : ''}.`, retry: true };
  // The upgrade itself was refused: ask the relay why, in words.
  try {
    const url = relayUrl();
    url.protocol = location.protocol;
    const token = window.ctrlxToken && window.ctrlxToken();
    const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const body = (res.headers.get('content-type') || '').includes('json') ? await res.json() : {};
    if (res.status === 426) return { text: `Could not open the connection to ${targetName()}.`, retry: true };
    if (res.status === 503 && /No VNC target/.test(body.detail || '')) {
      return { text: 'No VNC target is configured yet. Add one in the settings.', retry: true, settings: true, quiet: true };
    }
    if (res.status === 401 || res.status === 403) return { text: `Not allowed: ${body.detail || res.statusText}. Reload the page from the ctrlX menu.`, retry: false };
    return { text: body.detail || `The relay refused the connection (HTTP ${res.status}).`, retry: true, settings: res.status === 404 || /password/.test(body.detail || '') };
  } catch {
    return { text: 'The app cannot be reached; reconnecting…', retry: true };
  }
}

async function onDisconnect() {
  const wasConnected = connected;
  teardown();
  if (userStopped) return;
  if (passwordDialog.open) passwordDialog.close();
  const why = await explain();
  if (why.retry) await refreshTargets();
  if (userStopped || rfb) return; // the user acted meanwhile
  if (!why.retry) {
    setStatus(why.text, 'bad');
    showOverlay(why.text, { retry: true, settings: true });
    retryTimer = null;
    setConnectedUi(false);
    return;
  }
  const delay = why.soon ? 300 : BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  attempt++;
  scheduleRetry(why, delay, wasConnected);
}

function scheduleRetry(why, delay, wasConnected) {
  const until = Date.now() + delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    const text = why.soon ? why.text : `${why.text} Retrying in ${s} s.`;
    setStatus(text, wasConnected || why.soon ? 'warn' : 'bad');
    showOverlay(text, { retry: !why.soon, settings: !!why.settings });
  };
  tick();
  clearInterval(countdownTimer);
  countdownTimer = setInterval(tick, 1000);
  retryTimer = setTimeout(() => {
    clearInterval(countdownTimer);
    connect();
  }, delay);
  setConnectedUi(false);
}

function stop(text = 'Disconnected.') {
  userStopped = true;
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  retryTimer = null;
  teardown();
  setStatus(text, '');
  showOverlay(`${text} Press Connect to connect again.`, { retry: true });
  setConnectedUi(false);
}

// ---- toolbar -------------------------------------------------------------------------------

connectButton.addEventListener('click', () => {
  attempt = 0;
  connect();
});
overlayRetry.addEventListener('click', () => {
  attempt = 0;
  connect();
});
disconnectButton.addEventListener('click', () => stop());
targetSelect.addEventListener('change', () => {
  picked = targetSelect.value;
  const url = new URL(location.href);
  url.searchParams.set('target', targetSelect.value);
  history.replaceState(null, '', url);
  attempt = 0;
  connect();
});
scalingSelect.addEventListener('change', () => {
  prefs.scaling = scalingSelect.value;
  savePrefs();
  applyViewSettings();
});
viewOnlyBox.addEventListener('change', () => {
  prefs.viewOnly = viewOnlyBox.checked;
  savePrefs();
  applyViewSettings();
});

// X11 keysyms and DOM codes for the key combinations.
const K = {
  ctrl: [0xffe3, 'ControlLeft'],
  alt: [0xffe9, 'AltLeft'],
  esc: [0xff1b, 'Escape'],
  tab: [0xff09, 'Tab'],
  f4: [0xffc1, 'F4'],
  f11: [0xffc8, 'F11'],
  super: [0xffeb, 'MetaLeft'],
};
const COMBOS = {
  'ctrl-esc': ['ctrl', 'esc'],
  'alt-tab': ['alt', 'tab'],
  'alt-f4': ['alt', 'f4'],
  super: ['super'],
  esc: ['esc'],
  tab: ['tab'],
  f11: ['f11'],
};
keysSelect.addEventListener('change', () => {
  const combo = keysSelect.value;
  keysSelect.value = '';
  if (!rfb || !connected || rfb.viewOnly) return;
  if (combo === 'ctrl-alt-del') rfb.sendCtrlAltDel();
  else {
    const keys = COMBOS[combo].map((k) => K[k]);
    for (const [sym, code] of keys) rfb.sendKey(sym, code, true);
    for (const [sym, code] of [...keys].reverse()) rfb.sendKey(sym, code, false);
  }
  rfb.focus();
});

$('clipboard-toggle').addEventListener('click', (e) => {
  const panel = $('clipboard-panel');
  panel.classList.toggle('hidden');
  e.currentTarget.setAttribute('aria-expanded', String(!panel.classList.contains('hidden')));
});
$('clipboard-send').addEventListener('click', () => {
  if (rfb && connected) rfb.clipboardPasteFrom(clipboardText.value);
});
$('fullscreen').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});

// Expose a tiny read-only hook for tests and diagnostics.
window.ctrlxViewer = {
  get connected() {
    return connected;
  },
  get status() {
    return statusText.textContent;
  },
};

connect();
