/**
 * @module
 * The supervisor owns the relay's lifecycle inside the process:
 * - routes each upgrade on `/ctrlx-novnc/websockify?target=<id>` to a target from the
 *   configuration only (404 for an unknown id, 503 when none is configured): a browser can never
 *   name a host and port itself;
 * - on every configuration change closes the sessions whose target changed or vanished with
 *   4000 "target changed" and leaves the others running; new sessions use the new values;
 * - hands the relay a target's stored VNC password, and after repeated rejected passwords holds
 *   new sessions to that target back (VNC servers lock clients out after a few failures);
 * - reports its state for the status page and the API.
 *
 * Refusals are kinds of the failure table (src/common/failures.ts), answered the same way to an
 * upgrade (HTTP status) and to the viewer's preflight (Problem JSON naming the kind). The relay
 * is created once, at {@link Supervisor.start}: creating it fails only for bad options, which a
 * retry would not mend, so the error reaches the caller and the process exits (snapd restarts it).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Relay, type RelayOptions } from '../relay/relay-server.js';
import type { ReachOutcome, RelayTarget } from '../relay/relay.js';
import type { Caller, ControlResult, SessionView, ViewerAddress, ViewerEventSink } from '../relay/control.js';
import type { AuditSink } from '../audit/events.js';
import type { SessionLogin } from '../relay/login-watch.js';
import { FAILURES, type FailureKind } from '../common/failures.js';
import { type Message, type MessageKey, type Params, translate } from '../common/i18n/index.js';
import type { HandshakeOutcome } from '../rfb/security-proxy.js';
import { formatHostPort } from '../relay/address.js';
import { rejectUpgrade } from '../relay/upgrade.js';
import { type LastProbe, Prober, type ProbeLimits, type ProbeResult } from '../relay/probe.js';
import type { Config, ControlMode, Target } from '../config/schema.js';
import { silentLogger, type Logger } from '../log.js';

export type RelayState = 'running' | 'stopped';

/** Who opens a session: the login's user name and role, and the viewer page's own id. */
export interface SessionWho {
  identity: { name: string; role: 'watch' | 'operate' | 'manage' };
  viewerId?: string | undefined;
  /** The login the session must not outlive (none with authentication off). */
  login?: SessionLogin | undefined;
}

export interface SessionStatus {
  id: number;
  targetId: string | undefined;
  target: string;
  peer: string;
  startedAt: string;
  bytesUp: number;
  bytesDown: number;
}

export interface SupervisorStatus {
  state: RelayState;
  since: string;
  /** The targets new sessions can use; `demo` marks the built-in fallback. */
  targets: TargetStatus[];
  sessions: SessionStatus[];
  totals: { sessionsOpen: number; sessionsTotal: number; bytesUp: number; bytesDown: number };
  limits: { maxSessions: number; maxSessionsPerTarget: number };
}

/** A target as the status shows it. */
export interface TargetStatus {
  id: string;
  name: string;
  target: string;
  demo: boolean;
  /** The relay authenticates to this target with a stored password. */
  passwordSet: boolean;
  /** Sessions without input are closed after this many minutes; null for never. */
  idleMinutes: number | null;
  /** Who may operate it (the target's `control` setting); null for the demo, which has no rules. */
  control: ControlMode | null;
  /** Rejected stored passwords in a row, and whether new sessions are held back because of them. */
  auth: AuthStatus | null;
  /**
   * The VNC server said it locks this controller out ("Too many security failures"), seen in a
   * session's or a probe's handshake within the last 10 minutes and not followed by a login.
   */
  lockout: LockoutStatus | null;
  /** The newest sign of whether its VNC server can be reached; null before any. */
  reach: ReachStatus | null;
}

/**
 * Whether a target's VNC server was reached, by the newest of two: how the last viewer session
 * through the relay got on (it reached the server, or failed before with one of the failure kinds
 * of `REACH_FAILURES`), and the last "Test connection" of its address. No connection is made for
 * it: a periodic probe would count towards the server's lockout.
 */
export interface ReachStatus {
  ok: boolean;
  /** Why not, as a failure kind (src/common/failures.ts); null when ok. */
  kind: FailureKind | null;
  at: string;
  /** What found it out: a viewer's session through the relay, or Test connection. */
  via: 'session' | 'test';
}

export interface LockoutStatus {
  /** The server's words, as the viewer or the probe was told. */
  message: string;
  at: string;
}

/** How long a reported lockout is shown without a login since. */
const LOCKOUT_SHOWN_MS = 10 * 60_000;

export interface AuthStatus {
  /** Consecutive handshakes in which the server rejected the stored password. */
  failures: number;
  /** Seconds until new sessions are let through again; null when they are not held back. */
  retryIn: number | null;
  /** The last failure, as the browser was told. */
  lastError: string;
  at: string;
}

export interface SupervisorOptions {
  /** Open sessions allowed in total; more are refused with 503 before the upgrade. Default 32. */
  maxSessions?: number;
  /** Open sessions allowed per target. Default 16. */
  maxSessionsPerTarget?: number;
  /** The stored VNC password of a target, if any (see config/secrets.ts). */
  passwordFor?: (targetId: string) => string | undefined;
  /** Rejected passwords in a row after which new sessions to that target are held back. Default 3. */
  authFailuresBeforeBackoff?: number;
  /** First hold-back in milliseconds, doubled per further failure. Default 30000. */
  authBackoffMs?: number;
  /** Hold-back cap in milliseconds. Default 600000 (10 min). */
  maxAuthBackoffMs?: number;
  relay?: RelayOptions;
  /** Used as the only target while the configuration has none (the built-in demo server). */
  fallbackTarget?: Target;
  /** Where session and control events are recorded (the audit trail). */
  audit?: AuditSink;
  /** Delivers events to the viewer pages (`GET api/v1/events`). */
  viewerEvents?: ViewerEventSink;
  /** How often "Test connection" may leave a VNC server before a login (see relay/probe.ts). */
  probeLimits?: ProbeLimits;
  /** Makes the relay; replaceable so tests can watch it. */
  createRelay?: (options: RelayOptions) => Relay;
  logger?: Logger;
}

/** Why an upgrade is refused: a kind of the failure table, its HTTP status, and the reason in words. */
/** How the settings page tests a target ({@link Supervisor.probe}). */
export interface ProbeOptions {
  /** A password typed on the page: the probe logs in with it (not the stored one). */
  password?: string;
  /** Go through the security handshake also without a password: says whether one is asked. */
  login?: boolean;
}

export interface Refusal {
  kind: FailureKind;
  status: number;
  reason: string;
  /** The reason as a catalogue key, for the preflight's answer in the viewer's language. */
  i18n: Message;
  /** Seconds, for `Retry-After`. */
  retryAfter?: number;
}

/** A refusal; its reason is the English text of `key` (the preflight answers in the viewer's language). */
function refuse(kind: FailureKind & keyof typeof REFUSAL_STATUS, key: MessageKey, params?: Params, retryAfter?: number): Refusal {
  const i18n: Message = params ? { key, params } : { key };
  return { kind, status: REFUSAL_STATUS[kind], reason: translate('en', key, params), i18n, ...(retryAfter !== undefined ? { retryAfter } : {}) };
}

/** The refusals and their HTTP status, from the failure table. */
const REFUSAL_STATUS = {
  'no-target': FAILURES['no-target'].status,
  'unknown-target': FAILURES['unknown-target'].status,
  'too-many-sessions': FAILURES['too-many-sessions'].status,
  'login-held-back': FAILURES['login-held-back'].status,
  'relay-stopped': FAILURES['relay-stopped'].status,
} as const;

/** A viewer id as the page makes it (URL-safe, 8–64 characters); anything else is ignored. */
export function validViewerId(id: string | undefined): string | undefined {
  return id !== undefined && /^[A-Za-z0-9_-]{8,64}$/.test(id) ? id : undefined;
}

export const DEFAULT_MAX_SESSIONS = 32;
export const DEFAULT_MAX_SESSIONS_PER_TARGET = 16;

/**
 * True when a session to `old` must go because the configuration now says `now`: another address,
 * or other rules for operating it (the viewer reconnects at once and gets the new ones).
 */
function targetChanged(old: RelayTarget, now: Target | undefined): boolean {
  return (
    !now ||
    now.host !== old.host ||
    now.port !== old.port ||
    (now.control ?? 'on-request') !== (old.control ?? 'on-request') ||
    (now.allowResize ?? false) !== (old.allowResize ?? false)
  );
}

export class Supervisor {
  private readonly log: Logger;
  private readonly options: SupervisorOptions;
  private readonly createRelay: (options: RelayOptions) => Relay;
  private relay: Relay | null = null;
  private targets: Target[] = [];
  private usingFallback = false;
  private state: RelayState = 'stopped';
  private since = new Date();
  /** Per target id: rejected stored passwords in a row (see {@link onHandshake}). */
  private readonly authFailures = new Map<
    string,
    { target: string; failures: number; until: number; lastError: string; at: string }
  >();
  /** Per target id: the last "too many security failures" answer (see {@link noteHandshake}). */
  private readonly lockouts = new Map<string, { target: string; message: string; at: number }>();
  /** Per target id: how the newest session that got that far reached its server (see {@link onReach}). */
  private readonly reaches = new Map<string, { target: string; ok: boolean; kind: FailureKind | null; at: number }>();
  private readonly prober: Prober;

  constructor(options: SupervisorOptions = {}) {
    this.options = options;
    this.log = options.logger ?? silentLogger;
    this.createRelay = options.createRelay ?? ((o) => new Relay(o));
    this.prober = new Prober(options.probeLimits);
  }

  /** Creates the relay and serves `config`; throws when the relay cannot be created. */
  start(config: Config): void {
    this.setTargets(config);
    // Configured targets must be VNC servers: the relay is never a general TCP tunnel.
    this.relay = this.createRelay({
      requireRfb: true,
      ...this.options.relay,
      ...(this.options.audit ? { audit: this.options.audit } : {}),
      ...(this.options.viewerEvents ? { viewerEvents: this.options.viewerEvents } : {}),
      onHandshake: this.onHandshake,
      onReach: this.onReach,
      logger: this.log,
    });
    this.setState('running');
  }

  /**
   * Applies a new configuration: sessions to targets that changed or disappeared are closed with
   * 4000 "target changed"; the others keep running.
   */
  apply(config: Config): void {
    this.setTargets(config);
    const byId = new Map(this.targets.map((t) => [t.id, t]));
    // Rejected passwords count against an address: a moved or removed target starts afresh.
    for (const [id, a] of this.authFailures) {
      const t = byId.get(id);
      if (!t || formatHostPort(t.host, t.port) !== a.target) this.authFailures.delete(id);
    }
    for (const [id, l] of this.lockouts) {
      const t = byId.get(id);
      if (!t || formatHostPort(t.host, t.port) !== l.target) this.lockouts.delete(id);
    }
    for (const [id, r] of this.reaches) {
      const t = byId.get(id);
      if (!t || formatHostPort(t.host, t.port) !== r.target) this.reaches.delete(id);
    }
    const closed = this.relay?.closeSessions((s) => targetChanged(s.target, byId.get(s.target.id ?? '')), 'target-changed', 'target changed') ?? 0;
    this.log.info('configuration applied', {
      targets: this.targets.map((t) => `${t.id}=${formatHostPort(t.host, t.port)}`).join(',') || 'none',
      demo: this.usingFallback || undefined,
      closedSessions: closed,
    });
  }

  /** The target a `?target=` value selects: the id given, or the first one. */
  resolve(id: string | null): { target: Target } | Refusal {
    if (this.targets.length === 0) return refuse('no-target', 'problem.noTarget');
    if (id === null || id === '') return { target: this.targets[0]! };
    const target = this.targets.find((t) => t.id === id);
    if (!target) return refuse('unknown-target', 'problem.unknownTarget', { id: id.slice(0, 64) });
    return { target };
  }

  /**
   * What an upgrade for `?target=<id>` would get now: the target, or the refusal (its kind, HTTP
   * status and reason). Also answers the viewer's preflight GET.
   */
  admit(targetId: string | null): { target: Target } | Refusal {
    const resolved = this.resolve(targetId);
    if ('kind' in resolved) return resolved;
    const limit = this.sessionLimit(resolved.target);
    if (limit) return refuse('too-many-sessions', limit.key, limit.params, 10);
    const held = this.authFailures.get(resolved.target.id);
    if (held && this.authenticating(resolved.target.id)) {
      // After a rejection, one attempt at a time: a burst of viewers must not use up the
      // server's own lockout allowance.
      return refuse('login-held-back', 'problem.heldBackOther', undefined, 2);
    }
    if (held && held.until > Date.now()) {
      const retryAfter = Math.max(1, Math.ceil((held.until - Date.now()) / 1000));
      return refuse('login-held-back', 'problem.heldBack', { count: held.failures, seconds: retryAfter }, retryAfter);
    }
    if (!this.relay) return refuse('relay-stopped', 'problem.relayStopped');
    return resolved;
  }

  /**
   * Accepts or refuses a relay upgrade; refusals are real HTTP responses sent before the upgrade.
   * `who` is the login's user and role and the viewer page's id; a session opened with a
   * `who.login` ends when that login does (4030, see relay/login-watch.ts).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, targetId: string | null, who?: SessionWho): void {
    const admitted = this.admit(targetId);
    if ('kind' in admitted) {
      rejectUpgrade(socket, admitted.status, admitted.reason, admitted.retryAfter ? { 'Retry-After': String(admitted.retryAfter) } : {});
      return;
    }
    const { id, name, host, port, idleTimeout, control, allowResize } = admitted.target;
    // The configuration counts idle time in minutes (idleTimeout), the relay in milliseconds.
    const target: RelayTarget = {
      id,
      name,
      host,
      port,
      ...(idleTimeout ? { idleMs: idleTimeout * 60_000 } : {}),
      // The built-in demo (no configuration yet) is there to be tried: its first viewer operates it.
      control: control ?? (this.usingFallback ? 'immediate' : 'on-request'),
      allowResize: allowResize === true,
    };
    const owner = who ? { user: who.identity.name, role: who.identity.role, viewerId: validViewerId(who.viewerId) } : undefined;
    this.relay!.handleUpgrade(req, socket, head, target, { password: this.passwordOf(id) }, owner, who?.login);
  }

  // ---- sessions and control (api/v1/sessions, api/v1/events) ---------------------------------

  /** The open sessions as `caller` may see them. */
  sessions(caller: Caller): SessionView[] {
    return this.relay?.board.list(caller) ?? [];
  }

  /** Ends session `id` for a manager (close code 4031); false when there is no such session. */
  endSession(id: string, manager: Caller): boolean {
    return this.relay?.board.end(id, manager) ?? false;
  }

  /** Takes or releases control for the caller's own session `id`. */
  control(id: string, caller: Caller, action: 'take' | 'release'): ControlResult {
    const board = this.relay?.board;
    if (!board) return { ok: false, why: 'not-found' };
    return action === 'take' ? board.take(id, caller) : board.release(id, caller);
  }

  /** Resolves once the remote screen sizes being read or put back (allowResize targets) are done. */
  async resizesSettled(): Promise<void> {
    await this.relay?.resizes.settled();
  }

  /** Sends a page that just subscribed to events what it should know already. */
  replayEvents(to: ViewerAddress): void {
    this.relay?.board.replay(to);
  }

  /**
   * "Test connection" of `host:port`. When a configured target has that address and a stored
   * VNC password, the probe logs in with it (a clean login, no lockout count at the server) and
   * its handshake counts like a session's (rejected passwords, a lockout shown in the status);
   * otherwise it reads the greeting only, limited per target (see relay/probe.ts). The settings
   * page asks with `login` (and a typed `password`): the answer then says whether the server asks
   * for a password and whether the typed (or else the stored) one is right.
   */
  probe(host: string, port: number, timeoutMs: number, options: ProbeOptions = {}): Promise<ProbeResult> {
    // A password typed on the settings page is tried as it is; it says nothing about the stored one.
    if (options.password !== undefined) return this.prober.probe(host, port, timeoutMs, options.password, undefined, true);
    const t = this.targets.find((x) => x.host === host && x.port === port);
    if (!t) return this.prober.probe(host, port, timeoutMs, undefined, undefined, options.login === true);
    const relayTarget: RelayTarget = { id: t.id, name: t.name, host: t.host, port: t.port };
    const stored = this.passwordOf(t.id);
    return this.prober.probe(host, port, timeoutMs, stored, (outcome) => this.onHandshake(relayTarget, outcome), stored !== undefined || options.login === true);
  }

  /** The last "Test connection" of `host:port` that connected. */
  lastProbe(host: string, port: number): LastProbe | undefined {
    return this.prober.last(host, port);
  }

  /**
   * Whether the VNC server of target `id` at `host:port` was reached: the newest of its last
   * session's outcome and the last Test connection of that address; null when neither is known.
   */
  reach(id: string, host: string, port: number): ReachStatus | null {
    const address = formatHostPort(host, port);
    const r = this.reaches.get(id);
    const session = r && r.target === address ? r : undefined;
    const test = this.lastProbe(host, port);
    if (session && (!test || session.at > test.at)) {
      return { ok: session.ok, kind: session.kind, at: new Date(session.at).toISOString(), via: 'session' };
    }
    if (!test) return null;
    return { ok: test.ok, kind: test.ok ? null : (test.kind ?? 'target-error'), at: new Date(test.at).toISOString(), via: 'test' };
  }

  /** Forgets rejected passwords of a target (its password was changed or removed). */
  resetAuthFailures(targetId: string): void {
    this.authFailures.delete(targetId);
  }

  status(): SupervisorStatus {
    const sessions: SessionStatus[] = [];
    const totals = this.relay?.stats() ?? { sessionsOpen: 0, sessionsTotal: 0, bytesUp: 0, bytesDown: 0 };
    for (const relay of this.allRelays()) {
      for (const info of relay.sessionInfo()) {
        sessions.push({
          id: info.id,
          targetId: info.target.id,
          target: formatHostPort(info.target.host, info.target.port),
          peer: info.peer,
          startedAt: new Date(info.startedAt).toISOString(),
          bytesUp: info.bytesUp,
          bytesDown: info.bytesDown,
        });
      }
    }
    return {
      state: this.state,
      since: this.since.toISOString(),
      targets: this.targets.map((t) => ({
        id: t.id,
        name: t.name,
        target: formatHostPort(t.host, t.port),
        demo: this.usingFallback,
        passwordSet: this.passwordOf(t.id) !== undefined,
        idleMinutes: t.idleTimeout ?? null,
        control: this.usingFallback ? null : (t.control ?? 'on-request'),
        auth: this.authStatus(t.id),
        lockout: this.lockoutStatus(t.id),
        reach: this.reach(t.id, t.host, t.port),
      })),
      sessions,
      totals: { sessionsOpen: totals.sessionsOpen, sessionsTotal: totals.sessionsTotal, bytesUp: totals.bytesUp, bytesDown: totals.bytesDown },
      limits: {
        maxSessions: this.options.maxSessions ?? DEFAULT_MAX_SESSIONS,
        maxSessionsPerTarget: this.options.maxSessionsPerTarget ?? DEFAULT_MAX_SESSIONS_PER_TARGET,
      },
    };
  }

  /** Closes every session with 1001 and stops; resolves when all have ended. */
  async stop(): Promise<void> {
    this.setState('stopped');
    const relay = this.relay;
    this.relay = null;
    await relay?.close();
  }

  // ---- internals ---------------------------------------------------------------------------

  private setTargets(config: Config): void {
    const fallback = this.options.fallbackTarget;
    this.usingFallback = config.targets.length === 0 && fallback !== undefined;
    this.targets = this.usingFallback ? [fallback!] : config.targets;
  }

  /** The relay, as a list for the loops over sessions (none once stopped). */
  private allRelays(): Relay[] {
    return this.relay ? [this.relay] : [];
  }

  /** True while a session to `targetId` is in the relay's own security handshake. */
  private authenticating(targetId: string): boolean {
    for (const relay of this.allRelays()) {
      for (const s of relay.sessions) if (s.target.id === targetId && s.authenticating) return true;
    }
    return false;
  }

  /** Why one more session to `target` would exceed a limit, or undefined. */
  private sessionLimit(target: Target): Message & { params: Params } | undefined {
    const total = this.options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    const perTarget = this.options.maxSessionsPerTarget ?? DEFAULT_MAX_SESSIONS_PER_TARGET;
    let open = 0;
    let toTarget = 0;
    for (const relay of this.allRelays()) {
      for (const s of relay.sessions) {
        // A session holds its place until both sides are closed: a viewer that has left still
        // counts while its connection to the server is connecting, logging in or closing, so
        // opening and dropping upgrades cannot pile up connections to the server.
        open++;
        if (s.target.id === target.id) toTarget++;
      }
    }
    if (open >= total) {
      return { key: 'problem.tooManyViewers', params: { count: open } };
    }
    if (toTarget >= perTarget) {
      return { key: 'problem.tooManyViewersTarget', params: { name: target.name, count: toTarget } };
    }
    return undefined;
  }

  private passwordOf(targetId: string): string | undefined {
    if (this.usingFallback) return undefined;
    return this.options.passwordFor?.(targetId);
  }

  private authStatus(targetId: string): AuthStatus | null {
    const a = this.authFailures.get(targetId);
    if (!a) return null;
    const left = a.until - Date.now();
    return { failures: a.failures, retryIn: left > 0 ? Math.ceil(left / 1000) : null, lastError: a.lastError, at: a.at };
  }

  private lockoutStatus(targetId: string): LockoutStatus | null {
    const l = this.lockouts.get(targetId);
    if (!l || Date.now() - l.at > LOCKOUT_SHOWN_MS) return null;
    return { message: l.message, at: new Date(l.at).toISOString() };
  }

  /** Notes how a session got on with its target's server, while the target still has that address. */
  private readonly onReach = (target: RelayTarget, reach: ReachOutcome): void => {
    const id = target.id;
    if (id === undefined) return;
    const now = this.targets.find((t) => t.id === id);
    const address = formatHostPort(target.host, target.port);
    if (!now || formatHostPort(now.host, now.port) !== address) return;
    this.reaches.set(id, { target: address, ok: reach.ok, kind: reach.ok ? null : reach.kind, at: Date.now() });
  };

  /** Counts rejected stored passwords per target and notes lockouts; a success clears both. */
  private readonly onHandshake = (target: RelayTarget, outcome: HandshakeOutcome): void => {
    const id = target.id;
    if (id === undefined) return;
    if (outcome.ok) {
      this.authFailures.delete(id);
      this.lockouts.delete(id);
      return;
    }
    if (outcome.failure.kind === 'lockout') {
      const known = this.lockouts.has(id);
      this.lockouts.set(id, { target: formatHostPort(target.host, target.port), message: outcome.failure.message, at: Date.now() });
      if (!known) this.log.warn('the VNC server locks this controller out', { targetId: id, target: formatHostPort(target.host, target.port) });
      return;
    }
    if (outcome.failure.kind !== 'auth') return;
    const a = this.authFailures.get(id) ?? { target: formatHostPort(target.host, target.port), failures: 0, until: 0, lastError: '', at: '' };
    a.failures++;
    a.lastError = outcome.failure.message;
    a.at = new Date().toISOString();
    const free = this.options.authFailuresBeforeBackoff ?? 3;
    if (a.failures >= free) {
      const base = this.options.authBackoffMs ?? 30_000;
      const delay = Math.min(base * 2 ** (a.failures - free), this.options.maxAuthBackoffMs ?? 600_000);
      a.until = Date.now() + delay;
      this.log.warn('holding back sessions after rejected VNC passwords', {
        targetId: id,
        failures: a.failures,
        retryIn: `${Math.ceil(delay / 1000)}s`,
      });
    }
    this.authFailures.set(id, a);
  };

  private setState(state: RelayState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = new Date();
  }
}
