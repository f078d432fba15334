/**
 * @module
 * The relay: accepts WebSocket upgrades handed to it by any `http.Server` and runs one
 * {@link RelaySession} per connection. It owns the heartbeat, the session list and the counters.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { formatHostPort } from './address.js';
import { rejectUpgrade } from './upgrade.js';
import { LoginWatch, MAX_LOGIN_CHECK_MS, type SessionLogin } from './login-watch.js';
import {
  RelaySession,
  type ReachOutcome,
  type RelayTarget,
  type SessionEnd,
  type SessionInfo,
  type SessionOptions,
  type SessionSecrets,
} from './relay.js';
import type { HandshakeOutcome } from '../rfb/security-proxy.js';
import { noAudit, type AuditSink } from '../audit/events.js';
import { ControlBoard, type ViewerEventSink } from './control.js';
import type { SessionOwner } from './relay.js';
import { ResizeGuard } from './resize-guard.js';
import type { FailureKind } from '../common/failures.js';
import { silentLogger, type Logger } from '../log.js';
import { SessionLog, type SessionLogOptions } from './session-log.js';

export interface RelayOptions {
  /** Largest message accepted from the browser, in bytes; larger closes with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Milliseconds to wait for the TCP connection to the target (and again for its greeting or the VNC login). Default 5000. */
  connectTimeoutMs?: number;
  /** Milliseconds between pings to each browser; no pong by the next tick terminates it. 0 = off. Default 20000. */
  heartbeatMs?: number;
  /** Bytes queued towards a browser above which the target is paused. Default 256 KiB. */
  highWaterMark?: number;
  /** Milliseconds a side gets to finish closing before it is destroyed. Default 30000. */
  closeTimeoutMs?: number;
  /** Milliseconds of idle time before TCP keep-alive probes to the target. Default 30000. */
  keepAliveDelayMs?: number;
  /** Close sessions whose target does not greet with `RFB xxx.yyy\n` ("not a VNC server"). Default false. */
  requireRfb?: boolean;
  /**
   * Milliseconds between two checks of a session's login with the identity manager (sessions
   * opened with a login only, see login-watch.ts). Default and maximum 300000 (5 minutes).
   */
  loginCheckMs?: number;
  /** Told how each handshake the relay does for a stored password ended (see {@link SessionSecrets}). */
  onHandshake?: (target: RelayTarget, outcome: HandshakeOutcome) => void;
  /** Told per session whether it reached a usable VNC server at its target (see {@link SessionOptions.onReach}). */
  onReach?: (target: RelayTarget, reach: ReachOutcome) => void;
  /** Where session starts and ends and control changes are recorded. Default: nowhere. */
  audit?: AuditSink;
  /** Delivers events to viewer pages (see control.ts). Default: none. */
  viewerEvents?: ViewerEventSink;
  logger?: Logger;
  /** How the session start and end lines are aggregated under churn (see session-log.ts). */
  sessionLog?: SessionLogOptions;
}

type ResolvedOptions = Required<Omit<RelayOptions, 'logger' | 'onHandshake' | 'onReach' | 'sessionLog' | 'audit' | 'viewerEvents'>>;

const DEFAULTS: ResolvedOptions = {
  maxPayload: 64 * 1024,
  connectTimeoutMs: 5000,
  heartbeatMs: 20_000,
  highWaterMark: 256 * 1024,
  closeTimeoutMs: 30_000,
  keepAliveDelayMs: 30_000,
  requireRfb: false,
  loginCheckMs: MAX_LOGIN_CHECK_MS,
};

/** Counters over the relay's lifetime. */
export interface RelayStats {
  sessionsOpen: number;
  sessionsTotal: number;
  bytesUp: number;
  bytesDown: number;
}

/**
 * Chooses the subprotocol to echo: `binary` when offered (noVNC offers it, or nothing), else none.
 * Nothing else is ever echoed: in particular not the subprotocol that carries the ctrlX login
 * (`ctrlx-novnc.bearer.<jwt>`, see ctrlx/auth.ts), which would send the token back in a response
 * header for every proxy and log on the way to see. The viewer offers `binary` with its token.
 */
function chooseProtocol(offered: Set<string>): string | false {
  return offered.has('binary') ? 'binary' : false;
}

/**
 * Address of the browser side, as seen by this process. On the unix socket (only the ctrlX reverse
 * proxy can reach it) that is the last `X-Forwarded-For` entry, the one the proxy appended (as the
 * rate limiter reads it), else `unix`.
 */
function peerOf(req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket;
  if (!remoteAddress) {
    const raw = req.headers['x-forwarded-for'];
    const last = (Array.isArray(raw) ? raw.join(',') : raw)?.split(',').pop()?.trim();
    return last && net.isIP(last) ? last : 'unix';
  }
  return formatHostPort(remoteAddress, remotePort ?? 0);
}

function checkOptions(o: ResolvedOptions): void {
  const positive = ['maxPayload', 'connectTimeoutMs', 'highWaterMark', 'closeTimeoutMs', 'loginCheckMs'] as const;
  for (const key of positive) {
    if (!(Number.isFinite(o[key]) && o[key] > 0)) throw new RangeError(`relay option ${key} must be a positive number`);
  }
  if (o.loginCheckMs > MAX_LOGIN_CHECK_MS) throw new RangeError(`relay option loginCheckMs must be at most ${MAX_LOGIN_CHECK_MS} (5 minutes)`);
  if (!(Number.isFinite(o.heartbeatMs) && o.heartbeatMs >= 0)) {
    throw new RangeError('relay option heartbeatMs must be 0 (off) or a positive number of milliseconds');
  }
}

export class Relay {
  readonly options: ResolvedOptions;
  private readonly sessionOptions: SessionOptions;
  private readonly log: Logger;
  private readonly sessionLog: SessionLog;
  private readonly wss: WebSocketServer;
  private readonly live = new Set<RelaySession>();
  /** The login watch of each session opened with a login. */
  private readonly logins = new Map<RelaySession, LoginWatch>();
  private readonly waiters = new Set<() => void>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  private totals = { sessionsTotal: 0, bytesUp: 0, bytesDown: 0 };
  /** Who operates which screen, the sessions list, viewer events, the audit trail. */
  readonly board: ControlBoard;
  /** Puts the remote screen's size back after a session resized it (targets with allowResize). */
  readonly resizes: ResizeGuard;

  constructor(options: RelayOptions = {}) {
    const { logger, onHandshake, onReach, sessionLog, audit, viewerEvents, ...rest } = options;
    this.board = new ControlBoard(audit ?? noAudit, viewerEvents ?? (() => {}));
    this.options = { ...DEFAULTS, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) };
    checkOptions(this.options);
    this.log = logger ?? silentLogger;
    this.sessionLog = new SessionLog(this.log, sessionLog);
    this.resizes = new ResizeGuard(this.log);
    this.sessionOptions = {
      ...this.options,
      onHandshake: (target, outcome) => {
        if (!outcome.ok) {
          const { kind, detail } = outcome.failure;
          const label = formatHostPort(target.host, target.port);
          this.sessionLog.handshakeFailed(label, kind, { target: label, targetId: target.id, kind, detail });
        }
        onHandshake?.(target, outcome);
      },
      onReach,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.maxPayload,
      handleProtocols: chooseProtocol,
    });
    if (this.options.heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => {
        for (const session of this.live) session.heartbeat();
      }, this.options.heartbeatMs);
      this.heartbeatTimer.unref();
    }
  }

  /**
   * Completes a WebSocket upgrade and relays it to `target`. A malformed handshake is answered
   * with an HTTP 400 by `ws`; after {@link close} the upgrade is refused with 503. With a
   * password in `secrets` the relay authenticates to the VNC server itself. `who` is the login's
   * user and role (default: "local" with the manage role, as with authentication off). With a
   * `login` the session ends (4030) when that login expires or is revoked (see login-watch.ts).
   */
  handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: RelayTarget,
    secrets: SessionSecrets = {},
    who: Omit<SessionOwner, 'address'> = { user: 'local', role: 'manage', viewerId: undefined },
    login?: SessionLogin,
  ): void {
    if (this.closed) {
      rejectUpgrade(socket, 503, 'relay is shutting down');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const session = new RelaySession(this.nextId++, ws, socket, peerOf(req), target, this.sessionOptions, this.onEnd, secrets);
      session.owner = { ...who, address: session.peer };
      this.live.add(session);
      this.totals.sessionsTotal++;
      if (login) {
        const watch = new LoginWatch(login, this.options.loginCheckMs, (reason) => session.close('login-expired', reason), this.log);
        this.logins.set(session, watch);
      }
      this.board.join(session);
      this.resizes.join(session, secrets.password, this.live);
      const label = formatHostPort(target.host, target.port);
      this.sessionLog.start(label, {
        id: session.id,
        session: session.sessionId,
        mode: session.mode,
        target: label,
        targetId: target.id,
        peer: session.peer,
        user: who.user,
        vncAuth: secrets.password !== undefined ? 'relay' : undefined,
      });
    });
  }

  /** Open sessions. */
  get sessions(): ReadonlySet<RelaySession> {
    return this.live;
  }

  /** Snapshots of the open sessions. */
  sessionInfo(): SessionInfo[] {
    return [...this.live].map((s) => s.info());
  }

  /** Lifetime counters, including open sessions' bytes so far. */
  stats(): RelayStats {
    let up = this.totals.bytesUp;
    let down = this.totals.bytesDown;
    for (const s of this.live) {
      up += s.bytesUp;
      down += s.bytesDown;
    }
    return { sessionsOpen: this.live.size, sessionsTotal: this.totals.sessionsTotal, bytesUp: up, bytesDown: down };
  }

  /** Closes the sessions `filter` selects with `kind`'s close code and `reason`; returns how many. */
  closeSessions(filter: (session: RelaySession) => boolean, kind: FailureKind, reason: string): number {
    let n = 0;
    for (const s of this.live) {
      if (filter(s)) {
        s.close(kind, reason);
        n++;
      }
    }
    return n;
  }

  /** Resolves once no session is open. */
  idle(): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /**
   * Stops accepting, closes every session with 1001 "server shutting down" and resolves when all
   * have ended; sessions still open after `graceMs` are dropped.
   */
  async close(graceMs = 3000): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.closeSessions(() => true, 'shutting-down', 'server shutting down');
    const timer = setTimeout(() => {
      for (const s of this.live) s.destroy();
    }, graceMs);
    await this.idle();
    clearTimeout(timer);
    // The screen sizes put back as the sessions ended (each bounded by its own timeout).
    await this.resizes.settled();
    this.sessionLog.flush();
    this.wss.close();
  }

  private readonly onEnd = (session: RelaySession, end: SessionEnd): void => {
    this.live.delete(session);
    this.logins.get(session)?.stop();
    this.logins.delete(session);
    this.board.leave(session, end);
    this.resizes.leave(session, this.live);
    this.totals.bytesUp += session.bytesUp;
    this.totals.bytesDown += session.bytesDown;
    const label = formatHostPort(session.target.host, session.target.port);
    this.sessionLog.end(label, end.kind, {
      id: session.id,
      target: label,
      duration: `${(end.durationMs / 1000).toFixed(3)}s`,
      up: session.bytesUp,
      down: session.bytesDown,
      kind: end.kind,
      code: end.code,
      refusedInput: session.refusedInput || undefined,
      reason: end.reason,
      detail: end.detail,
    });
    if (this.live.size === 0) {
      for (const resolve of this.waiters) resolve();
      this.waiters.clear();
    }
  };
}
