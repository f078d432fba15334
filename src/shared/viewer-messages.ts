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

/** The sentence for a failure kind of the table, given the reason that came with it. */
export function failureMessage(kind: FailureKind, reason: string, target: ViewerTarget): ViewerMessage {
  const name = target.name;
  const where = target.address ?? name;
  const unreachable = (why: string): ViewerMessage => plain(kind, `Cannot reach the VNC server ${where}: ${why}.`);
  switch (kind) {
    case 'target-closed':
      return plain(kind, `${name} closed the connection.`);
    case 'shutting-down':
      return plain(kind, 'The app is restarting; reconnecting…');
    case 'target-changed':
      return { ...plain(kind, 'The target was changed in the settings; reconnecting…'), soon: true };
    case 'idle': {
      const minutes = target.idleMinutes;
      const span = minutes ? `${minutes} min` : 'the idle time set in the settings';
      return plain(kind, `Disconnected from ${name} after ${span} without input. Connect again when you need it.`);
    }
    case 'not-vnc':
      return plain(kind, `${name} is reachable, but it is not a VNC server${inParens(reason)}. Check the port in the settings.`);
    case 'login-rejected':
      return plain(kind, `${name} did not accept the VNC password stored in the settings. Enter the right password in the settings.`);
    case 'security-unsupported':
      return plain(
        kind,
        `${name} cannot be opened: its VNC server's security type is not supported${inParens(reason)}. ` +
          'Set the VNC server to "VNC password" or no authentication, or store its password in the settings.',
      );
    case 'server-refused':
      return plain(kind, `The VNC server of ${name} refused the connection${inParens(reason)}.`);
    case 'handshake-failed':
      return plain(kind, `The VNC handshake with ${name} failed${inParens(reason)}.`);
    case 'handshake-timeout':
      return plain(kind, `The VNC handshake with ${name} timed out.`);
    case 'viewer-handshake':
      return plain(kind, `The viewer did not complete the VNC handshake with ${name}${inParens(reason)}.`);
    case 'server-lockout':
      return plain(
        kind,
        `The VNC server of ${name} refuses this controller for now: too many security failures. It lets it in again after its lockout time (TigerVNC: 10 s, doubling); connect again later.`,
      );
    case 'connection-refused':
      return unreachable('connection refused (is the VNC server running?)');
    case 'connect-timeout':
      return unreachable('no answer (timed out)');
    case 'host-not-found':
      return unreachable('the host name cannot be resolved');
    case 'host-unreachable':
      return unreachable('the host or its network is unreachable');
    case 'connection-reset':
      return unreachable('the connection was reset');
    case 'target-error':
      return unreachable(reason || 'the connection failed');
    case 'login-expired':
      // The viewer takes the fresh login the ctrlX UI keeps and reconnects (public/viewer.js).
      return { text: 'Your login expired; reconnecting with your current ctrlX login…', retry: true, settings: false, soon: true };
    case 'ended-by-manager':
      // The reason is "Disconnected by <name>": the manager's user name.
      return plain(kind, `${reason || 'Disconnected by a manager'} (${name}). Connect again when you need it.`);
    case 'unknown-client-message':
      return plain(kind, `The relay ended the session with ${name}: the viewer sent a message it cannot check${inParens(reason)}.`);
    case 'no-target':
      return { text: 'No VNC target is configured yet. Add one in the settings.', retry: true, settings: true, quiet: true };
    case 'bad-frame':
    case 'text-message':
    case 'invalid-utf8':
    case 'message-too-big':
      return plain(kind, `The connection to ${name} was lost${inParens(reason)}.`);
    case 'login-held-back':
      // One countdown only: the viewer counts down to the relay's Retry-After, so the sentence
      // carries no number of its own (the relay's detail has one).
      return plain(
        kind,
        `The VNC server of ${name} rejected the stored password; to avoid its lockout the next attempt waits. Check the VNC password in the settings.`,
      );
    case 'unknown-target':
    case 'too-many-sessions':
    case 'relay-stopped':
      // Refusals before the upgrade: the app's own sentence says what and for how long.
      return plain(kind, reason || `The relay refused the connection (${kind}).`);
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
export function closeMessage(closed: ClosedConnection, target: ViewerTarget): ViewerMessage | null {
  const kind = failureOf(closed.code);
  if (kind && HANDSHAKE_KINDS.has(kind)) return failureMessage(kind, closed.reason, target);
  if (closed.securityFailure && LOCKOUT_REASON.test(closed.securityFailure.reason ?? '')) {
    // The server's own lockout, met by the browser's login: not a wrong password.
    return failureMessage('server-lockout', closed.securityFailure.reason ?? '', target);
  }
  if (closed.securityFailure) {
    // The VNC server's own authentication, passed through to the browser, failed.
    const said = closed.securityFailure.reason ? `: ${closed.securityFailure.reason}` : '';
    return { text: `Authentication with ${target.name} failed${said}. Check the VNC password.`, retry: false, settings: false, askPassword: true };
  }
  if (kind) return failureMessage(kind, closed.reason, target);
  if (closed.opened) return { text: `The connection to ${target.name} was lost${inParens(closed.reason)}.`, retry: true, settings: false };
  return null;
}

/** What to say when the upgrade was refused, from the preflight's answer. */
export function refusalMessage(answer: PreflightAnswer, target: ViewerTarget): ViewerMessage {
  if (answer.status === 426) return { text: `Could not open the connection to ${target.name}.`, retry: true, settings: false };
  if (answer.status === 401 || answer.status === 403) {
    return { text: `Not allowed: ${answer.detail || answer.statusText || `HTTP ${answer.status}`}. Reload the page from the ctrlX menu.`, retry: false, settings: false };
  }
  if (isKind(answer.kind)) return failureMessage(answer.kind, answer.detail ?? '', target);
  return { text: answer.detail || `The relay refused the connection (HTTP ${answer.status}).`, retry: true, settings: false };
}

/** `HH:MM` of `at` in the browser's time zone (24 h, as on ctrlX). */
export function clockTime(at: Date): string {
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** What the kept, greyed last picture says after a connection that was up ended. */
export function lostAtText(at: Date): string {
  return `Connection lost at ${clockTime(at)}`;
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
