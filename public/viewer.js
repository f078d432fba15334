// The viewer: noVNC's RFB on a WebSocket to this app's relay, with a slim toolbar, human
// messages for every failure, and automatic reconnection with backoff. Sections: elements and
// preferences, targets, connection state (what the page shows), connection, toolbar, keyboard.
import './token.js';
import RFB from '../novnc/core/rfb.js';
import keysyms from '../novnc/core/input/keysymdef.js';
import { clockTime, closeMessage, lostAtText, refusalMessage, screenshotName } from '../common/viewer-messages.js';
import { FAILURES, failureOf } from '../common/failures.js';
import { pageLanguage, translator } from '../common/i18n/index.js';
import { installPinchZoom } from './zoom.js';

const $ = (id) => document.getElementById(id);
/** The page's language (the server chose it: ?lang=, else Accept-Language) and its texts. */
const LANG = pageLanguage(document.documentElement.lang);
const t = translator(LANG);
const screen = $('screen');
const targetSelect = $('target');
const scalingSelect = $('scaling');
const viewOnlyBox = $('viewonly');
const keysSelect = $('keys');
const statusText = $('status-text');
const statusCountdown = $('status-countdown');
const statusDot = $('status-dot');
const overlay = $('overlay');
const overlayText = $('overlay-text');
const overlayCountdown = $('overlay-countdown');
const overlayHint = $('overlay-hint');
const overlayRetry = $('overlay-retry');
const overlayCancel = $('overlay-cancel');
const overlaySettings = $('overlay-settings'); // absent for users who may not manage
const emptyState = $('empty-state');
const demoBanner = $('demo-banner');
const lastFrame = $('last-frame');
const lostAt = $('lost-at');
const connectButton = $('connect');
const cancelButton = $('cancel');
const disconnectButton = $('disconnect');
const passwordDialog = $('password-dialog');
const passwordInput = $('password');
const passwordError = $('password-error');
const clipboardText = $('clipboard-text');
const fullscreenButton = $('fullscreen');
const screenshotButton = $('screenshot');

/** The user may open the settings (the server says so in the page). */
const MAY_MANAGE = document.body.dataset.manage === '1';
/** The user's role (watch, operate, manage): operate and manage may take control. */
const ROLE = document.body.dataset.role || 'watch';
const MAY_OPERATE = ROLE === 'operate' || ROLE === 'manage';
/**
 * This page's own random id: the WebSocket carries it (`&viewer=`) and the event stream asks for
 * it, so the app tells this page about its own session (mode, peers, idle warning).
 */
const VIEWER_ID = (() => {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
})();
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
/** The close code of an ended login: the viewer takes a fresh one and reconnects. */
const LOGIN_EXPIRED = FAILURES['login-expired'].code;

let rfb = null;
/** The WebSocket of the last attempt, and a promise of its close (noVNC may report first). */
let lastSocket = null;
let socketClosed = Promise.resolve();
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
/** noVNC's screen element while connected: kept (greyed) as the last picture after a drop. */
let liveScreen = null;
/** A password typed in the dialog after a rejected one: sent when the server asks again. */
let pendingPassword = null;
/** The user typed the password of this connection (its rejection reopens the dialog). */
let typedPassword = false;
/** What the page shows: empty | connecting | connected | retrying | stopped | password | login. */
let phase = 'connecting';
/** Pan mode (see applyViewSettings). */
let panning = false;
/** A touch screen (phone, tablet): the toolbar folds away once connected. */
const TOUCH = matchMedia('(pointer: coarse)').matches;
let autoFolded = false;

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

// ---- targets -------------------------------------------------------------------------------

function currentTarget() {
  return picked;
}

/** No target at all: nothing configured and no demo (the empty state). */
function noTargets() {
  return targetSelect.options.length === 0;
}

/** Re-reads the targets (the settings may have changed them since the page was loaded). */
async function refreshTargets() {
  try {
    const token = window.ctrlxToken?.();
    const headers = { Accept: 'application/json', 'Accept-Language': LANG };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(new URL('../api/v1/status', location.href), { headers });
    if (!res.ok) return;
    const targets = (await res.json()).relay.targets;
    targetSelect.replaceChildren(
      ...targets.map((tg) => {
        const option = new Option(tg.demo ? t('viewer.target.demo', { name: tg.name }) : tg.name, tg.id);
        // Only users who may manage get addresses; the others see names in the messages.
        if (tg.target) option.dataset.address = tg.target;
        if (tg.demo) option.dataset.demo = '1';
        option.dataset.idleMinutes = tg.idleMinutes ?? '';
        option.dataset.control = tg.control ?? '';
        return option;
      }),
    );
    // An explicit choice that vanished is kept: the relay then says the target is unknown.
    targetSelect.value = picked || (targets[0] ? targets[0].id : '');
    targetSelect.closest('label').classList.toggle('hidden', targets.length < 2);
    updateDemoBanner();
  } catch {
    // The app may be restarting; the next attempt tries again.
  }
}

function targetName() {
  const opt = targetSelect.selectedOptions[0];
  return opt ? opt.textContent : t('viewer.target.fallback');
}

/** The target as the messages need it: its name, address and idle timeout (from the page). */
function targetInfo() {
  const opt = targetSelect.selectedOptions[0];
  const minutes = opt?.dataset.idleMinutes ? Number(opt.dataset.idleMinutes) : null;
  return { name: targetName(), address: opt?.dataset.address || undefined, idleMinutes: minutes };
}

/** The "Demo screen" banner while the target is the built-in demo. */
function updateDemoBanner() {
  const opt = targetSelect.selectedOptions[0];
  demoBanner.classList.toggle('hidden', !(opt && opt.dataset.demo === '1'));
}

/** The relay URL, derived from this page (ws: or wss:, same host, under the same path prefix). */
function relayUrl() {
  const url = new URL('../websockify', location.href);
  const id = currentTarget();
  if (id) url.searchParams.set('target', id);
  url.searchParams.set('viewer', VIEWER_ID);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

// ---- connection state: what the toolbar, overlay and status line show -----------------------

/**
 * The status line's sentence: a live region (role=status), so it is written only when it changes
 * and a state change is announced once. Countdowns go to elements outside any live region.
 */
function setStatus(text, level) {
  if (statusText.textContent !== text) statusText.textContent = text;
  statusDot.className = `dot ${level || ''}`;
}

/** The countdown beside the status and in the overlay (not announced: it changes every second). */
function setCountdown(text) {
  statusCountdown.textContent = text;
  overlayCountdown.textContent = text;
  overlayCountdown.classList.toggle('hidden', !text);
}

function stopCountdown() {
  clearInterval(countdownTimer);
  countdownTimer = null;
  setCountdown('');
}

/**
 * Shows one state of the connection.
 * @param {string} next the phase
 * @param {{text?: string, level?: string, settings?: boolean}} [what] the sentence and whether the
 *   fix is in the settings (a link for managers, a hint for the others)
 */
function showState(next, what = {}) {
  phase = next;
  const { text = '', level = '', settings = false } = what;
  if (text) setStatus(text, level);
  const waiting = next === 'retrying' || next === 'login';
  connectButton.classList.toggle('hidden', next === 'connected' || next === 'empty' || next === 'connecting');
  cancelButton.classList.toggle('hidden', !(waiting || next === 'connecting'));
  disconnectButton.classList.toggle('hidden', next !== 'connected');
  emptyState.classList.toggle('hidden', next !== 'empty');
  const overlayShown = next === 'retrying' || next === 'stopped' || next === 'login';
  overlay.classList.toggle('hidden', !overlayShown);
  if (overlayShown) {
    overlayText.textContent = text;
    overlayRetry.classList.remove('hidden');
    overlayCancel.classList.toggle('hidden', !waiting);
    overlaySettings?.classList.toggle('hidden', !settings);
    overlayHint.classList.toggle('hidden', !(settings && !MAY_MANAGE));
  }
  if (next !== 'retrying' && next !== 'connecting') stopCountdown();
  // A screenshot of the live screen, or of the last picture while it is kept.
  screenshotButton.disabled = !(next === 'connected' || lastFrame.querySelector('canvas'));
  if (next === 'connected') {
    lastFrame.replaceChildren();
    lastFrame.classList.add('hidden');
    lostAt.classList.add('hidden');
  }
}

/** No target configured: say so once, make no connection and no retry loop. */
function showEmpty() {
  clearTimeout(retryTimer);
  retryTimer = null;
  demoBanner.classList.add('hidden');
  showState('empty', { text: t('viewer.status.empty'), level: '' });
}

/** Keeps the last picture of a connection that was up, greyed, with the time it was lost. */
function keepLastFrame(element, text) {
  if (!element) return;
  lastFrame.replaceChildren(element);
  lastFrame.classList.remove('hidden');
  lostAt.textContent = text;
  lostAt.classList.remove('hidden');
}

// The empty state looks again when the user comes back to this tab (e.g. from the settings).
async function recheckEmpty() {
  if (phase !== 'empty' || document.visibilityState !== 'visible') return;
  await refreshTargets();
  if (phase === 'empty' && !noTargets()) {
    attempt = 0;
    connect();
  }
}
document.addEventListener('visibilitychange', recheckEmpty);
window.addEventListener('focus', recheckEmpty);

// ---- connection ----------------------------------------------------------------------------

function applyViewSettings() {
  if (!rfb) return;
  const mode = scalingSelect.value;
  // Pan mode: the picture 1:1, clipped to the window; a swipe or drag moves it (noVNC's
  // dragViewport) and sends no pointer event to the machine.
  rfb.scaleViewport = !panning && mode === 'fit';
  rfb.resizeSession = !panning && mode === 'remote';
  rfb.clipViewport = panning;
  rfb.dragViewport = panning;
  screen.classList.toggle('scroll', !panning && mode === 'none');
  // Watching: noVNC sends no input and a click does not give the screen the keyboard.
  rfb.viewOnly = viewOnlyBox.checked || !operating();
  rfb.focusOnClick = operating();
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(loginTimer);
  loginTimer = null;
  retryTimer = null;
  userStopped = false;
  if (rfb) teardown();
  lastClose = null;
  lastSecurity = null;
  typedPassword = false;
  desktopName = '';
  updateDemoBanner();
  resetSession();
  openEvents();
  if (phase === 'retrying') {
    // The retry message stays (announced once); the countdown says what happens now.
    clearInterval(countdownTimer);
    countdownTimer = null;
    setCountdown(t('viewer.status.connectingShort'));
    showState('retrying', { text: statusText.textContent, level: statusDot.className.slice(4) });
  } else {
    showState('connecting', { text: t('viewer.status.connecting', { name: targetName() }), level: 'warn' });
  }
  let socket;
  try {
    // The login travels in a subprotocol, not in the URL (URLs end up in logs).
    const token = window.ctrlxToken?.();
    socket = new WebSocket(relayUrl(), token ? ['binary', `ctrlx-novnc.bearer.${token}`] : []);
  } catch (err) {
    showState('stopped', { text: t('viewer.status.cannotOpen', { reason: err.message }), level: 'bad' });
    return;
  }
  lastSocket = socket;
  socketClosed = new Promise((resolve) => {
    socket.addEventListener('close', (e) => {
      if (socket === lastSocket) lastClose = { code: e.code, reason: e.reason, opened: socket._opened === true };
      resolve();
    });
  });
  socket.addEventListener('open', () => {
    socket._opened = true;
  });
  rfb = new RFB(screen, socket, { shared: true });
  rfb.background = '#282828';
  applyViewSettings();
  rfb.addEventListener('connect', onConnect);
  rfb.addEventListener('disconnect', onDisconnect);
  rfb.addEventListener('credentialsrequired', onCredentialsRequired);
  rfb.addEventListener('securityfailure', (e) => (lastSecurity = e.detail));
  rfb.addEventListener('clipboard', (e) => (clipboardText.value = e.detail.text));
  rfb.addEventListener('desktopname', (e) => {
    desktopName = e.detail.name;
    if (connected) setStatus(connectedText(), 'ok');
  });
}

function connectedText() {
  const name = targetName();
  return desktopName ? t('viewer.status.connectedDesktop', { name, desktop: desktopName }) : t('viewer.status.connected', { name });
}

/** Ends the current RFB; the picture of a connection that was up is kept (greyed). */
function teardown(lostText) {
  const old = rfb;
  const wasUp = connected;
  const picture = liveScreen;
  rfb = null;
  connected = false;
  liveScreen = null;
  resetSession();
  if (old) {
    old.removeEventListener('disconnect', onDisconnect);
    try {
      old.disconnect();
    } catch {
      // already closed
    }
  }
  if (wasUp) keepLastFrame(picture, lostText || lostAtText(new Date(), LANG));
}

function onConnect() {
  connected = true;
  attempt = 0;
  pendingPassword = null;
  // noVNC's screen element (the last child it added): kept as the last picture after a drop.
  liveScreen = screen.lastElementChild;
  showState('connected', { text: connectedText(), level: 'ok' });
  releaseModifiers(false);
  if (TOUCH && !autoFolded) {
    // On a phone the screen needs every pixel: the toolbar folds away (its handle brings it back).
    autoFolded = true;
    showToolbar(false);
  }
  // The keyboard stays with the page: the remote screen gets it only when the user, operating,
  // clicks into it (a stray Enter must not reach the machine).
  showControl();
}

function onCredentialsRequired() {
  if (pendingPassword !== null) {
    const password = pendingPassword;
    pendingPassword = null;
    typedPassword = true;
    rfb.sendCredentials({ password });
    return;
  }
  askPassword('');
}

/** Opens the password dialog, with the reason the last password was not accepted (if any). */
function askPassword(error) {
  passwordInput.value = '';
  passwordError.textContent = error;
  passwordError.classList.toggle('hidden', !error);
  if (!passwordDialog.open) passwordDialog.showModal();
  passwordInput.focus();
}

$('password-form').addEventListener('submit', () => {
  const password = passwordInput.value;
  passwordInput.value = '';
  if (rfb && !connected) {
    typedPassword = true;
    rfb.sendCredentials({ password });
  } else {
    // The server closed the connection after the rejected password: a new one, answered at once.
    pendingPassword = password;
    attempt = 0;
    connect();
  }
});
$('password-cancel').addEventListener('click', () => {
  passwordDialog.close();
  pendingPassword = null;
  stop(t('viewer.status.cancelled'));
});

/**
 * Turns how the connection ended into a sentence and a retry decision: by the close code, or by
 * the preflight's failure kind when the upgrade was refused (src/common/viewer-messages.ts).
 * Also returns the failure kind and, for a refusal, the relay's Retry-After in seconds.
 */
async function explain() {
  const close = lastClose || { code: 1006, reason: '', opened: false };
  const target = targetInfo();
  const message = closeMessage({ ...close, securityFailure: lastSecurity }, target, LANG);
  if (message) return { ...message, kind: failureOf(close.code) };
  // The upgrade itself was refused: ask the relay why.
  try {
    const url = relayUrl();
    url.protocol = location.protocol;
    const token = window.ctrlxToken?.();
    const headers = { 'Accept-Language': LANG };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, { headers });
    const body = (res.headers.get('content-type') || '').includes('json') ? await res.json() : {};
    const retryAfter = Number(res.headers.get('retry-after')) || 0;
    const why = refusalMessage({ status: res.status, statusText: res.statusText, kind: body.kind, detail: body.detail }, target, LANG);
    return { ...why, kind: body.kind, retryAfter };
  } catch {
    return { text: t('viewer.status.appUnreachable'), retry: true };
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
    scheduleRetry(why, 300);
    return;
  }
  const text = t('viewer.status.loginExpired');
  showState('login', { text, level: 'bad' });
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
  const closing = socketClosed;
  teardown();
  if (userStopped) return;
  // noVNC reports a failed handshake before the WebSocket has closed: the relay's close code
  // (e.g. 4003, the stored password was rejected) says more than noVNC's own failure.
  await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 2000))]);
  if (userStopped || rfb) return;
  if (passwordDialog.open && !typedPassword) passwordDialog.close();
  if (lastClose?.code === LOGIN_EXPIRED) {
    waitForLogin(closeMessage({ ...lastClose, securityFailure: null }, targetInfo(), LANG));
    return;
  }
  const why = await explain();
  if (userStopped || rfb) return;
  if (why.askPassword && typedPassword) {
    // The server rejected the password typed in the dialog: ask again, with its reason.
    const reason = lastSecurity?.reason;
    const text = reason ? t('viewer.status.passwordRejectedWhy', { name: targetName(), reason }) : t('viewer.status.passwordRejected', { name: targetName() });
    showState('password', { text, level: 'bad' });
    askPassword(text);
    return;
  }
  if (why.kind === 'no-target') {
    await refreshTargets();
    if (userStopped || rfb) return;
    if (noTargets()) {
      showEmpty();
      return;
    }
  }
  if (why.retry) await refreshTargets();
  if (userStopped || rfb) return; // the user acted meanwhile
  if (!why.retry) {
    // Setup errors and the like: no retry loop, the sentence says what to fix.
    retryTimer = null;
    showState('stopped', { text: why.text, level: 'bad', settings: why.settings });
    return;
  }
  const backoff = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  const delay = why.soon ? 300 : Math.max(backoff, (why.retryAfter || 0) * 1000);
  attempt++;
  scheduleRetry(why, delay);
}

/** Waits `delay` ms, counting down (one countdown, outside the live region), then reconnects. */
function scheduleRetry(why, delay) {
  const until = Date.now() + delay;
  showState('retrying', { text: why.text, level: why.soon ? 'warn' : 'bad', settings: !!why.settings });
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    setCountdown(why.soon ? '' : t('viewer.status.retryIn', { seconds: s }));
  };
  tick();
  clearInterval(countdownTimer);
  countdownTimer = setInterval(tick, 1000);
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryTimer = null;
    connect();
  }, delay);
}

function stop(text = t('viewer.status.disconnected')) {
  userStopped = true;
  closeEvents();
  clearTimeout(retryTimer);
  clearInterval(loginTimer);
  loginTimer = null;
  retryTimer = null;
  teardown(t('viewer.status.disconnectedAt', { time: clockTime(new Date()) }));
  showState('stopped', { text: t('viewer.status.stopped', { text }), level: '' });
}

// ---- who operates the screen: banner, Take control / Release, who else is connected ---------

const controlBanner = $('control-banner');
const controlState = $('control-state');
const controlNotice = $('control-notice');
const controlPeers = $('control-peers');
const idleLeft = $('idle-left');
const takeButton = $('take-control');
const releaseButton = $('release-control');

/** This page's session as the app's event stream tells it: id, mode (watch | control), target. */
let session = null;
/** The others on the same target, from the last `peers` event. */
let peers = [];
let idleTimer = null;

/** Operating: this page's session holds control (until the app says so, it watches). */
function operating() {
  return session?.mode === 'control';
}

/** The target's `control` setting as the page knows it ('' for the demo, which has no rules). */
function targetControl() {
  return targetSelect.selectedOptions[0]?.dataset.control || '';
}

/** A note in the banner, announced once (its own live region, written only when it changes). */
function notice(text) {
  if (controlNotice.textContent !== text) controlNotice.textContent = text;
}

function stopIdleCountdown() {
  clearInterval(idleTimer);
  idleTimer = null;
  idleLeft.textContent = '';
}

/** The session ended or a new one starts: nothing is known about it until the app says. */
function resetSession() {
  session = null;
  peers = [];
  stopIdleCountdown();
  notice('');
  showControl();
}

/** Shows the banner, the buttons and the peers as the session is now; applies the mode to noVNC. */
function showControl() {
  const known = session !== null && connected;
  controlBanner.classList.toggle('hidden', !known);
  const watchOnly = targetControl() === 'watch-only';
  takeButton.classList.toggle('hidden', !known || operating() || !MAY_OPERATE || watchOnly);
  releaseButton.classList.toggle('hidden', !known || !operating());
  if (!known) {
    applyViewSettings();
    return;
  }
  controlBanner.dataset.mode = operating() ? 'control' : 'watch';
  const name = targetName();
  const state = operating()
    ? `${t('viewer.control.operating', { name })} ${t('viewer.control.operatingHint')}`
    : t(watchOnly ? 'viewer.control.watchingOnly' : 'viewer.control.watching', { name });
  if (controlState.textContent !== state) controlState.textContent = state;
  const others = peers.filter((p) => !p.own);
  const items = others.length
    ? others.map((p) => {
        const li = document.createElement('li');
        li.textContent = t(p.mode === 'control' ? 'viewer.peers.operating' : 'viewer.peers.watching', { user: p.user, time: clockTime(new Date(p.since)) });
        return li;
      })
    : [Object.assign(document.createElement('li'), { textContent: t('viewer.peers.none') })];
  controlPeers.replaceChildren(...items);
  applyViewSettings();
  // Watching again: the remote screen must not keep the keyboard.
  if (!operating() && screen.contains(document.activeElement) && document.activeElement !== screen) document.activeElement.blur();
}

/** "Take control" / "Release": asks the app (POST api/v1/sessions/:id/control). */
async function changeControl(action) {
  if (!session) return;
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json', 'Accept-Language': LANG };
  const token = window.ctrlxToken?.();
  if (token) headers.Authorization = `Bearer ${token}`;
  const button = action === 'take' ? takeButton : releaseButton;
  button.disabled = true;
  try {
    const res = await fetch(new URL(`../api/v1/sessions/${encodeURIComponent(session.id)}/control`, location.href), {
      method: 'POST',
      headers,
      body: JSON.stringify({ action }),
      credentials: 'same-origin',
    });
    const body = (res.headers.get('content-type') || '').includes('json') ? await res.json() : {};
    if (!res.ok) {
      notice(t('viewer.control.failed', { reason: body.detail || `HTTP ${res.status}` }));
      return;
    }
    if (session) session.mode = body.mode;
    notice('');
    showControl();
    // The keyboard stays on the page: the other button has it now (a click on the screen gives
    // the keyboard to the machine).
    (operating() ? releaseButton : takeButton).focus();
  } catch (err) {
    notice(t('viewer.control.failed', { reason: err.message }));
  } finally {
    button.disabled = false;
  }
}
takeButton.addEventListener('click', () => changeControl('take'));
releaseButton.addEventListener('click', () => changeControl('release'));

/** What the app says about this page's session (GET api/v1/events, Server-Sent Events). */
function onEvent(name, data) {
  switch (name) {
    case 'session':
      session = { id: data.id, mode: data.mode, target: data.target };
      break;
    case 'peers':
      if (session && data.target !== session.target) return;
      peers = data.peers;
      break;
    case 'control':
      if (!session) return;
      session.mode = data.mode;
      if (data.mode === 'watch' && data.by) notice(t('viewer.control.takenBy', { name: data.by }));
      else if (data.mode === 'control') notice('');
      break;
    case 'idle-warning': {
      // Announced once; the seconds left tick beside it, outside the live region.
      const until = Date.now() + data.secondsLeft * 1000;
      notice(t('viewer.idle.warning', { seconds: data.secondsLeft }));
      clearInterval(idleTimer);
      const tick = () => (idleLeft.textContent = t('viewer.idle.left', { seconds: Math.max(0, Math.ceil((until - Date.now()) / 1000)) }));
      tick();
      idleTimer = setInterval(tick, 1000);
      break;
    }
    case 'idle-cleared':
      stopIdleCountdown();
      notice('');
      break;
    default:
      // `ended`: the WebSocket's close code says the same (and the page words it).
      return;
  }
  showControl();
}

/** The event stream: one at a time, opened again (after 3 s) when it drops. */
let eventStream = null;

/** Closes the event stream (the user disconnected: nothing to hear about until the next connection). */
function closeEvents() {
  const stream = eventStream;
  eventStream = null;
  stream?.abort.abort();
}

/**
 * Opens the event stream unless one is open. fetch rather than EventSource: the ctrlX login goes in
 * the Authorization header, as on every other API call. A 401 stops it (each would count as a
 * failed login); the next connection opens it again.
 */
function openEvents() {
  if (eventStream) return;
  const stream = { abort: new AbortController() };
  eventStream = stream;
  const run = async () => {
    let delay = 3000;
    while (eventStream === stream) {
      try {
        const headers = { Accept: 'text/event-stream', 'Accept-Language': LANG };
        const token = window.ctrlxToken?.();
        if (token) headers.Authorization = `Bearer ${token}`;
        const url = new URL('../api/v1/events', location.href);
        url.searchParams.set('viewer', VIEWER_ID);
        const res = await fetch(url, { headers, signal: stream.abort.signal, credentials: 'same-origin', cache: 'no-store' });
        if (res.status === 401 || res.status === 403) break;
        if (res.ok && res.body) {
          delay = 3000;
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value.replaceAll('\r\n', '\n');
            let end = buffer.indexOf('\n\n');
            while (end >= 0) {
              const frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              end = buffer.indexOf('\n\n');
              let name = 'message';
              let data = '';
              for (const line of frame.split('\n')) {
                if (line.startsWith('event:')) name = line.slice(6).trim();
                else if (line.startsWith('data:')) data += line.slice(5).trim();
              }
              if (!data) continue;
              try {
                onEvent(name, JSON.parse(data));
              } catch {
                // a malformed event: ignored
              }
            }
          }
        } else {
          delay = Math.max(delay, (Number(res.headers.get('retry-after')) || 0) * 1000);
        }
      } catch {
        // dropped or aborted: opened again below unless this stream was closed
      }
      if (eventStream !== stream) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30_000);
    }
    if (eventStream === stream) eventStream = null;
  };
  void run();
}

// ---- toolbar -------------------------------------------------------------------------------

function connectNow() {
  attempt = 0;
  connect();
}
connectButton.addEventListener('click', connectNow);
overlayRetry.addEventListener('click', connectNow);
cancelButton.addEventListener('click', () => stop(t('viewer.status.reconnectStopped')));
overlayCancel.addEventListener('click', () => stop(t('viewer.status.reconnectStopped')));
disconnectButton.addEventListener('click', () => stop());
targetSelect.addEventListener('change', () => {
  picked = targetSelect.value;
  const url = new URL(location.href);
  url.searchParams.set('target', targetSelect.value);
  history.replaceState(null, '', url);
  // The last picture was of the other target.
  lastFrame.replaceChildren();
  lastFrame.classList.add('hidden');
  lostAt.classList.add('hidden');
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
  f8: [0xffc5, 'F8'],
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
  f8: ['f8'],
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
  if (operating()) rfb.focus();
});

$('clipboard-toggle').addEventListener('click', (e) => {
  const panel = $('clipboard-panel');
  panel.classList.toggle('hidden');
  e.currentTarget.setAttribute('aria-expanded', String(!panel.classList.contains('hidden')));
});
$('clipboard-send').addEventListener('click', () => {
  if (rfb && connected) rfb.clipboardPasteFrom(clipboardText.value);
});
fullscreenButton.addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});
/** "Full screen" ↔ "Exit full screen", as the page is. */
function updateFullscreenLabel() {
  const on = Boolean(document.fullscreenElement);
  const label = on ? t('viewer.fullscreen.exit') : t('viewer.fullscreen');
  fullscreenButton.querySelector('.label').textContent = label;
  fullscreenButton.querySelector('use').setAttribute('href', on ? '#i-fullscreen-exit' : '#i-fullscreen');
  fullscreenButton.title = label;
  fullscreenButton.setAttribute('aria-pressed', String(on));
}
document.addEventListener('fullscreenchange', updateFullscreenLabel);

// ---- screenshot ----------------------------------------------------------------------------

/**
 * The whole remote screen as a canvas: noVNC's frame buffer (its display's back buffer: in pan
 * mode the visible canvas holds only the part in view), else the visible canvas, else the kept
 * last picture.
 */
function screenCanvas() {
  if (rfb && connected) return rfb._display?._backbuffer || screen.querySelector('canvas');
  return lastFrame.querySelector('canvas');
}

/** Saves the remote screen as `<target>-<YYYYMMDD-HHMMSS>.png` (for service reports). */
function saveScreenshot() {
  const canvas = screenCanvas();
  if (!canvas?.width) return;
  const name = screenshotName(targetSelect.value || picked || 'screen', new Date());
  canvas.toBlob((blob) => {
    if (!blob) return;
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  }, 'image/png');
}
screenshotButton.addEventListener('click', saveScreenshot);

// ---- keyboard: F8 gives the keyboard back to the page ----------------------------------------

const toolbar = $('toolbar');

/** The toolbar's controls a user can reach now (shown, enabled). */
function toolbarControls() {
  return [...toolbar.querySelectorAll('button, select, input, a[href]')].filter((el) => !el.disabled && el.offsetParent !== null);
}

/**
 * F8 (as in TigerVNC's viewer): the keyboard leaves the remote screen; the toolbar opens and its
 * first control has the focus, so Tab and Shift+Tab move through the toolbar. A click on the
 * remote screen (or Esc in the toolbar) gives the keyboard back to the machine.
 */
function releaseKeyboard() {
  showToolbar(true);
  toolbarControls()[0]?.focus();
}
// Capture phase on the screen's container: before noVNC's handler on its canvas sees the key.
screen.addEventListener(
  'keydown',
  (e) => {
    if (e.key !== 'F8' || e.ctrlKey || e.altKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    e.stopPropagation();
    releaseKeyboard();
  },
  true,
);
toolbar.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && e.target.tagName !== 'SELECT' && rfb && connected && operating()) {
    e.preventDefault();
    rfb.focus();
  }
});

// ---- touch: folding toolbar, pan mode, on-screen keyboard, extra keys --------------------------

const handle = $('toolbar-handle');
const panButton = $('pan');
const kbdInput = $('kbd-input');
const extraKeys = $('extra-keys');
const extraToggle = $('extra-toggle');

/** Shows or folds the toolbar (and the status line): the handle at the top brings it back. */
function showToolbar(shown) {
  document.body.classList.toggle('toolbar-folded', !shown);
  handle.setAttribute('aria-expanded', String(shown));
}
$('fold').addEventListener('click', () => {
  showToolbar(false);
  handle.focus();
});
handle.addEventListener('click', () => {
  showToolbar(true);
  toolbarControls()[0]?.focus();
});

panButton.addEventListener('click', () => {
  panning = !panning;
  panButton.setAttribute('aria-pressed', String(panning));
  applyViewSettings();
});
// In pan mode a pinch zooms the picture locally (public/zoom.js); nothing goes to the machine.
installPinchZoom(screen, { rfb: () => rfb, active: () => panning });

/** X11 keysyms and DOM codes of the keys the page sends itself. */
const KEYS = {
  Escape: [0xff1b, 'Escape'],
  Tab: [0xff09, 'Tab'],
  Enter: [0xff0d, 'Enter'],
  Backspace: [0xff08, 'Backspace'],
  Delete: [0xffff, 'Delete'],
  ArrowLeft: [0xff51, 'ArrowLeft'],
  ArrowUp: [0xff52, 'ArrowUp'],
  ArrowRight: [0xff53, 'ArrowRight'],
  ArrowDown: [0xff54, 'ArrowDown'],
};
for (let n = 1; n <= 12; n++) KEYS[`F${n}`] = [0xffbe + n - 1, `F${n}`];
const MODIFIERS = { ctrl: [0xffe3, 'ControlLeft'], alt: [0xffe9, 'AltLeft'], super: [0xffeb, 'MetaLeft'] };
/** Modifiers held down by their sticky toggle in the extra-keys bar. */
const held = new Set();

function canSend() {
  return rfb && connected && !rfb.viewOnly;
}

/** Presses and releases one key on the machine (held modifiers stay down). */
function tapKey([sym, code]) {
  if (canSend()) rfb.sendKey(sym, code);
}

/** Sends typed text character by character as keysyms (what the phone keyboard produced). */
function typeText(text) {
  if (!canSend()) return;
  for (const ch of text) {
    if (ch === '\n') tapKey(KEYS.Enter);
    else rfb.sendKey(keysyms.lookup(ch.codePointAt(0)), '');
  }
}

/** Lets go of the sticky modifiers (sends their release when `send`). */
function releaseModifiers(send = true) {
  for (const mod of held) if (send && canSend()) rfb.sendKey(MODIFIERS[mod][0], MODIFIERS[mod][1], false);
  held.clear();
  for (const b of extraKeys.querySelectorAll('.mod')) b.setAttribute('aria-pressed', 'false');
}

extraToggle.addEventListener('click', () => {
  const shown = extraKeys.classList.toggle('hidden') === false;
  extraToggle.setAttribute('aria-pressed', String(shown));
  if (!shown) releaseModifiers();
});
// A tap on the bar must not take the focus from the phone keyboard's field (it would close).
extraKeys.addEventListener('mousedown', (e) => e.preventDefault());
extraKeys.addEventListener('click', (e) => {
  const button = e.target instanceof Element ? e.target.closest('button') : null;
  if (!button) return;
  const mod = button.dataset.mod;
  if (mod) {
    const down = !held.has(mod);
    if (down) held.add(mod);
    else held.delete(mod);
    button.setAttribute('aria-pressed', String(down));
    if (canSend()) rfb.sendKey(MODIFIERS[mod][0], MODIFIERS[mod][1], down);
  } else if (KEYS[button.dataset.key]) {
    tapKey(KEYS[button.dataset.key]);
  }
});

// The keyboard button focuses a field out of sight: the phone opens its keyboard, and what is
// typed there is sent to the machine (noVNC's own keyboard handling needs a hardware keyboard).
$('kbd-button').addEventListener('click', () => {
  kbdInput.value = '';
  kbdInput.focus();
});
kbdInput.addEventListener('keydown', (e) => {
  const key = KEYS[e.key];
  if (!key || e.isComposing) return;
  e.preventDefault();
  tapKey(key);
});
kbdInput.addEventListener('input', (e) => {
  if (e.isComposing || e.inputType === 'insertCompositionText') return;
  if (e.inputType === 'deleteContentBackward') tapKey(KEYS.Backspace);
  else if (e.inputType === 'insertLineBreak' || e.inputType === 'insertParagraph') tapKey(KEYS.Enter);
  else if (e.data) typeText(e.data);
  kbdInput.value = '';
});
kbdInput.addEventListener('compositionend', (e) => {
  if (e.data) typeText(e.data);
  kbdInput.value = '';
});

// Expose a tiny read-only hook for tests and diagnostics.
window.ctrlxViewer = {
  get connected() {
    return connected;
  },
  get status() {
    return statusText.textContent;
  },
  /** What the page shows: empty, connecting, connected, retrying, stopped, password or login. */
  get phase() {
    return phase;
  },
  /** The close code of the last WebSocket (null before any closed). */
  get closeCode() {
    return lastClose ? lastClose.code : null;
  },
  /** This page's session mode as the app said it: watch, control, or null before it said. */
  get mode() {
    return session ? session.mode : null;
  },
  /** The event stream is open (or being opened again). */
  get events() {
    return eventStream !== null;
  },
  /** A reconnection is scheduled. */
  get retrying() {
    return retryTimer !== null;
  },
};

updateDemoBanner();
if (noTargets()) showEmpty();
else connect();
