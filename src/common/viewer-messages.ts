/**
 * @module
 * What the viewer says when a connection ends or is refused, and whether it reconnects by itself.
 * The message is chosen by the close code (or, for a refused upgrade, the preflight's `kind`),
 * never by the reason text: reasons are shown as they are where they add detail, never parsed.
 *
 * Browser-safe (bundled into public/viewer.js's script at build time) and
 * tested in Node with codes and arbitrary reasons.
 */
import { FAILURES, LOCKOUT_REASON, failureOf, type FailureKind } from './failures.js';
import { DEFAULT_LANGUAGE, type Lang, translate, translator } from './i18n/index.js';

/** The target as the viewer knows it from its page. */
export interface ViewerTarget {
  /** What the target picker shows, e.g. `Press`. */
  name: string;
  /** `host:port`, when the page knows it. */
  address?: string | undefined;
  /** The target's idle timeout in minutes, when it has one. */
  idleMinutes?: number | null | undefined;
}

/** How the WebSocket ended, as the browser saw it. */
export interface ClosedConnection {
  code: number;
  reason: string;
  /** The WebSocket had opened (else the upgrade was refused or the app is unreachable). */
  opened: boolean;
  /** noVNC reported a security failure (the VNC server's own authentication), with its reason. */
  securityFailure?: { reason?: string | undefined } | null | undefined;
}

/** The preflight's answer (`GET websockify?target=`) after a refused upgrade. */
export interface PreflightAnswer {
  status: number;
  statusText?: string | undefined;
  /** From the Problem JSON: the kind of the failure table, and the reason in words. */
  kind?: string | undefined;
  detail?: string | undefined;
}

export interface ViewerMessage {
  text: string;
  /** Reconnect by itself (with backoff); otherwise wait for the user. */
  retry: boolean;
  /** Offer the link to the settings. */
  settings: boolean;
  /** Reconnect at once rather than after the backoff (the target was just changed). */
  soon?: boolean;
  /** Not an error as such (nothing configured yet). */
  quiet?: boolean;
  /**
   * A setup error: the target is not what it should be (not a VNC server, password rejected,
   * security type not supported). Retrying cannot help; the text says what to fix.
   */
  setup?: boolean;
  /**
   * The VNC server's own authentication (passed through to the browser) rejected the password
   * the user typed: the viewer asks again, with this message, rather than stopping.
   */
  askPassword?: boolean;
}

/** Kinds that are setup errors: the viewer stops retrying and says what to fix. */
export const SETUP_KINDS: ReadonlySet<FailureKind> = new Set<FailureKind>(['not-vnc', 'login-rejected', 'security-unsupported']);

const isKind = (kind: string | undefined): kind is FailureKind => kind !== undefined && Object.hasOwn(FAILURES, kind);

/** Whether the user has something to fix on the settings page or beyond. */
const offersSettings = (kind: FailureKind): boolean => FAILURES[kind].fix !== 'none' && FAILURES[kind].fix !== 'wait';

const plain = (kind: FailureKind, text: string): ViewerMessage => ({
  text,
  retry: FAILURES[kind].retry,
  settings: offersSettings(kind),
  ...(SETUP_KINDS.has(kind) ? { setup: true } : {}),
});

/** `(reason)` for showing a reason as detail, or nothing for an empty one. */
const inParens = (reason: string): string => (reason ? ` (${reason})` : '');

/** The sentence for a failure kind of the table, given the reason that came with it, in `lang`. */
export function failureMessage(kind: FailureKind, reason: string, target: ViewerTarget, lang: Lang = DEFAULT_LANGUAGE): ViewerMessage {
  const t = translator(lang);
  const name = target.name;
  const where = target.address ?? name;
  const detail = inParens(reason);
  const unreachable = (why: string): ViewerMessage => plain(kind, t('msg.unreachable', { where, why }));
  switch (kind) {
    case 'target-closed':
      return plain(kind, t('msg.targetClosed', { name }));
    case 'shutting-down':
      return plain(kind, t('msg.shuttingDown'));
    case 'target-changed':
      return { ...plain(kind, t('msg.targetChanged')), soon: true };
    case 'idle': {
      const minutes = target.idleMinutes;
      return plain(kind, minutes ? t('msg.idle', { name, minutes }) : t('msg.idleUnknown', { name }));
    }
    case 'not-vnc':
      return plain(kind, t('msg.notVnc', { name, detail }));
    case 'login-rejected':
      return plain(kind, t('msg.loginRejected', { name }));
    case 'security-unsupported':
      return plain(kind, t('msg.securityUnsupported', { name, detail }));
    case 'server-refused':
      return plain(kind, t('msg.serverRefused', { name, detail }));
    case 'handshake-failed':
      return plain(kind, t('msg.handshakeFailed', { name, detail }));
    case 'handshake-timeout':
      return plain(kind, t('msg.handshakeTimeout', { name }));
    case 'viewer-handshake':
      return plain(kind, t('msg.viewerHandshake', { name, detail }));
    case 'server-lockout':
      return plain(kind, t('msg.serverLockout', { name }));
    case 'connection-refused':
      return unreachable(t('msg.why.connectionRefused'));
    case 'connect-timeout':
      return unreachable(t('msg.why.connectTimeout'));
    case 'host-not-found':
      return unreachable(t('msg.why.hostNotFound'));
    case 'host-unreachable':
      return unreachable(t('msg.why.hostUnreachable'));
    case 'connection-reset':
      return unreachable(t('msg.why.connectionReset'));
    case 'target-error':
      return unreachable(reason || t('msg.why.failed'));
    case 'login-expired':
      // The viewer takes the fresh login the ctrlX UI keeps and reconnects (public/viewer.js).
      return { text: t('msg.loginExpired'), retry: true, settings: false, soon: true };
    case 'ended-by-manager':
      // The reason is "Disconnected by <name>": the manager's user name.
      return plain(kind, reason ? t('msg.endedBy', { reason, name }) : t('msg.endedByManager', { name }));
    case 'unknown-client-message':
      return plain(kind, t('msg.unknownClientMessage', { name, detail }));
    case 'no-target':
      return { text: t('msg.noTarget'), retry: true, settings: true, quiet: true };
    case 'bad-frame':
    case 'text-message':
    case 'invalid-utf8':
    case 'message-too-big':
      return plain(kind, t('msg.lost', { name, detail }));
    case 'login-held-back':
      // One countdown only: the viewer counts down to the relay's Retry-After, so the sentence
      // carries no number of its own (the relay's detail has one).
      return plain(kind, t('msg.loginHeldBack', { name }));
    case 'unknown-target':
    case 'too-many-sessions':
    case 'relay-stopped':
      // Refusals before the upgrade: the app's own sentence (in the page's language, asked with
      // Accept-Language) says what and for how long.
      return plain(kind, reason || t('msg.refused', { kind }));
  }
}

/** Kinds in which the relay itself reports how the VNC handshake failed. */
const HANDSHAKE_KINDS: ReadonlySet<FailureKind> = new Set<FailureKind>([
  'login-rejected',
  'security-unsupported',
  'server-refused',
  'handshake-failed',
  'handshake-timeout',
  'viewer-handshake',
  'server-lockout',
]);

/**
 * What to say after the WebSocket closed; null when it never opened and the preflight should be
 * asked why (see {@link refusalMessage}).
 */
export function closeMessage(closed: ClosedConnection, target: ViewerTarget, lang: Lang = DEFAULT_LANGUAGE): ViewerMessage | null {
  const t = translator(lang);
  const kind = failureOf(closed.code);
  if (kind && HANDSHAKE_KINDS.has(kind)) return failureMessage(kind, closed.reason, target, lang);
  if (closed.securityFailure && LOCKOUT_REASON.test(closed.securityFailure.reason ?? '')) {
    // The server's own lockout, met by the browser's login: not a wrong password.
    return failureMessage('server-lockout', closed.securityFailure.reason ?? '', target, lang);
  }
  if (closed.securityFailure) {
    // The VNC server's own authentication, passed through to the browser, failed.
    const detail = closed.securityFailure.reason ? `: ${closed.securityFailure.reason}` : '';
    return { text: t('msg.authFailed', { name: target.name, detail }), retry: false, settings: false, askPassword: true };
  }
  if (kind) return failureMessage(kind, closed.reason, target, lang);
  if (closed.opened) return { text: t('msg.lost', { name: target.name, detail: inParens(closed.reason) }), retry: true, settings: false };
  return null;
}

/** What to say when the upgrade was refused, from the preflight's answer. */
export function refusalMessage(answer: PreflightAnswer, target: ViewerTarget, lang: Lang = DEFAULT_LANGUAGE): ViewerMessage {
  const t = translator(lang);
  if (answer.status === 426) return { text: t('msg.couldNotOpen', { name: target.name }), retry: true, settings: false };
  if (answer.status === 401 || answer.status === 403) {
    const detail = answer.detail || answer.statusText || `HTTP ${answer.status}`;
    return { text: t('msg.notAllowed', { detail }), retry: false, settings: false };
  }
  if (isKind(answer.kind)) return failureMessage(answer.kind, answer.detail ?? '', target, lang);
  return { text: answer.detail || t('msg.refusedHttp', { status: answer.status }), retry: true, settings: false };
}

/** `HH:MM` of `at` in the browser's time zone (24 h, as on ctrlX). */
export function clockTime(at: Date): string {
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** What the kept, greyed last picture says after a connection that was up ended. */
export function lostAtText(at: Date, lang: Lang = DEFAULT_LANGUAGE): string {
  return translate(lang, 'viewer.status.lostAt', { time: clockTime(at) });
}

/**
 * The file name of a screenshot: `<target>-<YYYYMMDD-HHMMSS>.png`, local time; characters other
 * than letters, digits, `-` and `_` in the target become `_` (target ids have none).
 */
export function screenshotName(target: string, at: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  const day = `${at.getFullYear()}${two(at.getMonth() + 1)}${two(at.getDate())}`;
  const time = `${two(at.getHours())}${two(at.getMinutes())}${two(at.getSeconds())}`;
  const safe = [...(target || 'screen')].map((c) => (/[A-Za-z0-9_-]/.test(c) ? c : '_')).join('');
  return `${safe}-${day}-${time}.png`;
}
