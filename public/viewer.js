// The viewer: noVNC's RFB on a WebSocket to this app's relay, with a slim toolbar, human
// messages for every failure, and automatic reconnection with backoff.
import './token.js';
import RFB from '../novnc/core/rfb.js';
import { closeMessage, refusalMessage } from '../shared/viewer-messages.js';
import { FAILURES } from '../shared/failures.js';

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
/** The close code of an ended login: the viewer takes a fresh one and reconnects. */
const LOGIN_EXPIRED = FAILURES['login-expired'].code;

let rfb = null;
let ws = null;
let connected = false;
let userStopped = false;
let attempt = 0;
let retryTimer = null;
let countdownTimer = null;
/** Polls for a fresh ctrlX login after 4030 (see waitForLogin). */
let loginTimer = null;
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
    const token = window.ctrlxToken?.();
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(new URL('../api/v1/status', location.href), { headers });
    if (!res.ok) return;
    const targets = (await res.json()).relay.targets;
    targetSelect.replaceChildren(
      ...targets.map((t) => {
        const option = new Option(`${t.name}${t.demo ? ' (demo)' : ''}`, t.id);
        // Only users who may manage get addresses; the others see names in the messages.
        if (t.target) option.dataset.address = t.target;
        option.dataset.idleMinutes = t.idleMinutes ?? '';
        return option;
      }),
    );
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

/** The target as the messages need it: its name, address and idle timeout (from the page). */
function targetInfo() {
  const opt = targetSelect.selectedOptions[0];
  const minutes = opt?.dataset.idleMinutes ? Number(opt.dataset.idleMinutes) : null;
  return { name: targetName(), address: (opt?.dataset.address) || undefined, idleMinutes: minutes };
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
  clearInterval(loginTimer);
  loginTimer = null;
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
    const token = window.ctrlxToken?.();
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

/**
 * Turns how the connection ended into a sentence and a retry decision: by the close code, or by
 * the preflight's failure kind when the upgrade was refused (src/shared/viewer-messages.ts).
 */
async function explain() {
  const close = lastClose || { code: 1006, reason: '', opened: false };
  const target = targetInfo();
  const message = closeMessage({ ...close, securityFailure: lastSecurity }, target);
  if (message) return message;
  // The upgrade itself was refused: ask the relay why.
  try {
    const url = relayUrl();
    url.protocol = location.protocol;
    const token = window.ctrlxToken?.();
    const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    const body = (res.headers.get('content-type') || '').includes('json') ? await res.json() : {};
    return refusalMessage({ status: res.status, statusText: res.statusText, kind: body.kind, detail: body.detail }, target);
  } catch {
    return { text: 'The app cannot be reached; reconnecting…', retry: true };
  }
}

/**
 * The login ended (4030): take the fresh one the ctrlX UI keeps and reconnect at once; without
 * one, say so and look again every 2 s (the user logs in again in the ctrlX UI).
 */
function waitForLogin(why) {
  clearInterval(loginTimer);
  loginTimer = null;
  if (window.ctrlxRefreshToken?.()) {
    scheduleRetry(why, 300, true);
    return;
  }
  const text = 'Your login expired. Log in to ctrlX again: the viewer reconnects as soon as the new login is there (or open Remote screen again from the ctrlX menu).';
  setStatus(text, 'bad');
  showOverlay(text, { retry: true });
  setConnectedUi(false);
  loginTimer = setInterval(() => {
    if (userStopped || rfb) {
      clearInterval(loginTimer);
      loginTimer = null;
    } else if (window.ctrlxRefreshToken?.()) {
      clearInterval(loginTimer);
      loginTimer = null;
      attempt = 0;
      connect();
    }
  }, 2000);
}

async function onDisconnect() {
  const wasConnected = connected;
  teardown();
  if (userStopped) return;
  if (passwordDialog.open) passwordDialog.close();
  if (lastClose?.code === LOGIN_EXPIRED) {
    waitForLogin(closeMessage({ ...lastClose, securityFailure: null }, targetInfo()));
    return;
  }
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
  clearInterval(loginTimer);
  loginTimer = null;
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
