/**
 * @module
 * Every way a relay session can end badly or be refused, as data: one row per kind with its code.
 * A session that fails is closed with the row's WebSocket close code; an upgrade that is refused
 * (before the WebSocket opens) is answered with the row's HTTP status, and the preflight
 * `GET websockify?target=` names the row (`kind`, `code`) in its Problem JSON. The relay, the
 * supervisor, the preflight and the viewer all take codes from here; the sentence that goes with a
 * failure (the close reason, the Problem `detail`) is for people and no code parses it.
 *
 * Browser-safe: no imports, bundled into the pages' scripts (scripts/bundle.mjs).
 * docs/errors.md lists the same rows ("WebSocket close codes"); a test keeps them in step.
 */

/** What the user can do about a failure. */
export type FailureFix =
  /** Nothing: it is temporary or expected; reconnecting is enough. */
  | 'none'
  /** The target's address, port or stored VNC password on the settings page. */
  | 'settings'
  /** The VNC server itself (running? its security settings?). */
  | 'vnc-server'
  /** The network between the controller and the VNC server. */
  | 'network'
  /** Wait, or close another viewer. */
  | 'wait';

export interface FailureRow {
  /** WebSocket close code: sent in the close frame, or named by the preflight for a refused upgrade. */
  readonly code: number;
  /** For refusals before the upgrade: the HTTP status of the answer. */
  readonly status?: number;
  /** The viewer reconnects by itself (with backoff) after this failure. */
  readonly retry: boolean;
  readonly fix: FailureFix;
  /** One line for docs/errors.md. */
  readonly summary: string;
}

/**
 * The table. Codes 1000–1011 are RFC 6455's own; 4000–4099 are this app's (the application range).
 * 4000 and 4001 are the oldest and keep their numbers.
 */
export const FAILURES = {
  // ---- the session ended (RFC 6455 codes) --------------------------------------------------------
  'target-closed': { code: 1000, retry: true, fix: 'none', summary: 'the VNC server ended the session (its FIN); every byte it sent was delivered first' },
  'shutting-down': { code: 1001, retry: true, fix: 'none', summary: 'the app is stopping or restarting' },
  'bad-frame': { code: 1002, retry: true, fix: 'none', summary: 'the viewer sent a malformed WebSocket frame (sent by ws)' },
  'text-message': { code: 1003, retry: true, fix: 'none', summary: 'the viewer sent a text message; the relay carries binary messages only' },
  'invalid-utf8': { code: 1007, retry: true, fix: 'none', summary: 'the viewer sent a close reason that is not UTF-8 (sent by ws)' },
  'message-too-big': { code: 1009, retry: true, fix: 'none', summary: 'the viewer sent a message above the 64 KiB limit' },
  // ---- the session was closed by the app -----------------------------------------------------
  'target-changed': { code: 4000, retry: true, fix: 'none', summary: 'the target was changed or removed in the settings; the viewer reconnects at once' },
  idle: { code: 4001, retry: false, fix: 'none', summary: "no input from the viewer for the target's idle timeout" },
  // ---- the VNC server is not what it should be -----------------------------------------------
  'not-vnc': { code: 4002, retry: false, fix: 'settings', summary: 'the target answered, but not with an RFB greeting: not a VNC server (wrong port?)' },
  'login-rejected': { code: 4003, retry: false, fix: 'settings', summary: 'the VNC server did not accept the VNC password stored in the settings' },
  'security-unsupported': { code: 4004, retry: false, fix: 'vnc-server', summary: 'the VNC server offers no security type the relay can do (None, VNC Authentication), or needs a password and none is stored' },
  'server-refused': { code: 4005, retry: true, fix: 'vnc-server', summary: 'the VNC server refused the connection during the handshake (with its reason)' },
  'handshake-failed': { code: 4006, retry: true, fix: 'vnc-server', summary: 'the VNC handshake with the server failed: unsupported RFB version, malformed bytes, or it closed mid-handshake' },
  'handshake-timeout': { code: 4007, retry: true, fix: 'vnc-server', summary: 'the VNC server greeted but did not finish the handshake within the connect timeout' },
  'viewer-handshake': { code: 4008, retry: true, fix: 'none', summary: 'the viewer broke or did not finish the VNC handshake the relay does for a stored password' },
  'server-lockout': { code: 4009, retry: false, fix: 'wait', summary: 'the VNC server locks the controller out after too many security failures ("Too many security failures"); wait for its lockout to pass' },
  // ---- the VNC server cannot be reached --------------------------------------------------------
  'connection-refused': { code: 4010, retry: true, fix: 'vnc-server', summary: 'nothing listens on the target address (ECONNREFUSED): is the VNC server running?' },
  'connect-timeout': { code: 4011, retry: true, fix: 'network', summary: 'no answer from the target within the connect timeout (ETIMEDOUT)' },
  'host-not-found': { code: 4012, retry: true, fix: 'settings', summary: 'the host name cannot be resolved (ENOTFOUND, EAI_AGAIN, EAI_NONAME)' },
  'host-unreachable': { code: 4013, retry: true, fix: 'network', summary: 'no route to the host or its network (EHOSTUNREACH, ENETUNREACH)' },
  'connection-reset': { code: 4014, retry: true, fix: 'none', summary: 'the VNC server reset the connection (ECONNRESET, EPIPE)' },
  'target-error': { code: 4015, retry: true, fix: 'network', summary: 'any other error of the connection to the target; the reason names the error code' },
  // ---- the upgrade was refused (no WebSocket; the preflight names the kind) ----------------------
  'no-target': { code: 4020, status: 503, retry: true, fix: 'settings', summary: 'no VNC target is configured yet' },
  'unknown-target': { code: 4021, status: 404, retry: true, fix: 'settings', summary: 'the `?target=` id is not in the configuration' },
  'too-many-sessions': { code: 4022, status: 503, retry: true, fix: 'wait', summary: 'the limit of open viewers (in total or per target) is reached' },
  'login-held-back': { code: 4023, status: 503, retry: true, fix: 'settings', summary: 'after rejected VNC passwords new sessions to the target are held back for a while' },
  'relay-stopped': { code: 4024, status: 503, retry: true, fix: 'none', summary: 'the relay is shutting down' },
  // ---- the login ended -------------------------------------------------------------------------
  'login-expired': { code: 4030, retry: true, fix: 'none', summary: "the viewer's ctrlX login expired (timer at the token's expiry) or was revoked (asked again at least every 5 minutes); the viewer takes the fresh login of the ctrlX UI and reconnects" },
  // ---- operating a running machine (issue 13) ----------------------------------------------------
  'ended-by-manager': { code: 4031, retry: false, fix: 'none', summary: 'a user with the manage role ended the session (the reason names them)' },
  'unknown-client-message': { code: 4032, retry: false, fix: 'none', summary: 'the viewer sent an RFB message the relay does not know, or one it cannot check for a watching session' },
} as const satisfies Record<string, FailureRow>;

export type FailureKind = keyof typeof FAILURES;

/**
 * The kinds that say a session could not reach a usable VNC server at the target's address (the
 * settings page's reachability dot): the connection failed, or the server there did not let the
 * relay through its greeting and login. The viewer's or the app's own doing is not among them.
 */
export const REACH_FAILURES: ReadonlySet<FailureKind> = new Set<FailureKind>([
  'not-vnc',
  'login-rejected',
  'security-unsupported',
  'server-refused',
  'handshake-failed',
  'handshake-timeout',
  'server-lockout',
  'connection-refused',
  'connect-timeout',
  'host-not-found',
  'host-unreachable',
  'connection-reset',
  'target-error',
]);

/**
 * A VNC server's failure reason that says it locks this client address out for a while (the
 * `server-lockout` kind): TigerVNC and RealVNC blacklist an address after a few failed or
 * abandoned logins and answer it with "Too many security failures" (libvncserver: "Too many
 * authentication failures"). Used by the relay's handshake and by the viewer, which sees the
 * reason itself when the browser does the VNC login.
 */
export const LOCKOUT_REASON = /too many (security|authentication) failures/i;

/** The close code of `kind`. */
export function failureCode(kind: FailureKind): number {
  return FAILURES[kind].code;
}

const BY_CODE = new Map<number, FailureKind>(
  (Object.keys(FAILURES) as FailureKind[]).map((kind) => [FAILURES[kind].code, kind]),
);

/** The kind a close code stands for, or undefined for a code not in the table (e.g. 1006). */
export function failureOf(code: number): FailureKind | undefined {
  return BY_CODE.get(code);
}

/** Errno codes of the target connection and the kind each one is. */
const ERRNO_KINDS: Readonly<Record<string, FailureKind>> = {
  ECONNREFUSED: 'connection-refused',
  ETIMEDOUT: 'connect-timeout',
  ENOTFOUND: 'host-not-found',
  EAI_AGAIN: 'host-not-found',
  EAI_NONAME: 'host-not-found',
  EHOSTUNREACH: 'host-unreachable',
  ENETUNREACH: 'host-unreachable',
  ECONNRESET: 'connection-reset',
  EPIPE: 'connection-reset',
};

/** The kind of a socket error code (`err.code`); `target-error` for any other. */
export function errnoKind(errno: string | undefined): FailureKind {
  return (errno !== undefined && ERRNO_KINDS[errno]) || 'target-error';
}
