/**
 * @module
 * What the viewer says when a connection ends or is refused, and whether it reconnects by itself.
 * The message is chosen by the close code (or, for a refused upgrade, the preflight's `kind`),
 * never by the reason text: reasons are shown as they are where they add detail, never parsed.
 *
 * Browser-safe (served at `/ctrlx-novnc/shared/viewer-messages.js`, used by public/viewer.js) and
 * tested in Node with codes and arbitrary reasons.
 */
import { FAILURES, failureOf, type FailureKind } from './failures.js';

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
}

const isKind = (kind: string | undefined): kind is FailureKind => kind !== undefined && Object.hasOwn(FAILURES, kind);

/** Whether the user has something to fix on the settings page or beyond. */
const offersSettings = (kind: FailureKind): boolean => FAILURES[kind].fix !== 'none' && FAILURES[kind].fix !== 'wait';

const plain = (kind: FailureKind, text: string): ViewerMessage => ({ text, retry: FAILURES[kind].retry, settings: offersSettings(kind) });

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
      return plain(kind, `${name} cannot be opened: its VNC server's security type is not supported${inParens(reason)}.`);
    case 'server-refused':
      return plain(kind, `The VNC server of ${name} refused the connection${inParens(reason)}.`);
    case 'handshake-failed':
      return plain(kind, `The VNC handshake with ${name} failed${inParens(reason)}.`);
    case 'handshake-timeout':
      return plain(kind, `The VNC handshake with ${name} timed out.`);
    case 'viewer-handshake':
      return plain(kind, `The viewer did not complete the VNC handshake with ${name}${inParens(reason)}.`);
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
    case 'unknown-target':
    case 'too-many-sessions':
    case 'login-held-back':
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
]);

/**
 * What to say after the WebSocket closed; null when it never opened and the preflight should be
 * asked why (see {@link refusalMessage}).
 */
export function closeMessage(closed: ClosedConnection, target: ViewerTarget): ViewerMessage | null {
  const kind = failureOf(closed.code);
  if (kind && HANDSHAKE_KINDS.has(kind)) return failureMessage(kind, closed.reason, target);
  if (closed.securityFailure) {
    // The VNC server's own authentication, passed through to the browser, failed.
    const said = closed.securityFailure.reason ? `: ${closed.securityFailure.reason}` : '';
    return { text: `Authentication with ${target.name} failed${said}. Check the VNC password.`, retry: false, settings: false };
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
