/**
 * @module
 * The supervisor owns the relay's lifecycle inside the process:
 * - routes each upgrade on `/ctrlx-novnc/websockify?target=<id>` to a target from the
 *   configuration only (404 for an unknown id, 503 when none is configured): a browser can never
 *   name a host and port itself;
 * - on every configuration change closes the sessions whose target changed or vanished with
 *   4000 "target changed" and leaves the others running; new sessions use the new values;
 * - when the relay fails, replaces it with exponential backoff (capped at 30 s);
 * - hands the relay a target's stored VNC password, and after repeated rejected passwords holds
 *   new sessions to that target back (VNC servers lock clients out after a few failures);
 * - reports its state for the status page and the API.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Relay, type RelayOptions } from '../relay/relay-server.js';
import { CLOSE_INTERNAL_ERROR, CLOSE_TARGET_CHANGED, type RelayTarget } from '../relay/relay.js';
import type { HandshakeOutcome } from '../rfb/security-proxy.js';
import { formatHostPort } from '../relay/address.js';
import { rejectUpgrade } from '../relay/upgrade.js';
import type { Config, Target } from '../config/schema.js';
import { silentLogger, type Logger } from '../log.js';

export type RelayState = 'running' | 'restarting' | 'failed' | 'stopped';

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
  lastError: { message: string; at: string } | null;
  restarts: number;
  /** Seconds until the next restart attempt while restarting. */
  retryIn: number | null;
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
  /** Rejected stored passwords in a row, and whether new sessions are held back because of them. */
  auth: AuthStatus | null;
}

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
  /** First hold-back in ms, doubled per further failure. Default 30000. */
  authBackoff?: number;
  /** Hold-back cap in ms. Default 600000 (10 min). */
  maxAuthBackoff?: number;
  relay?: RelayOptions;
  /** Used as the only target while the configuration has none (the built-in demo server). */
  fallbackTarget?: Target;
  /** First restart delay in ms, doubled per consecutive failure. Default 500. */
  initialBackoff?: number;
  /** Restart delay cap in ms. Default 30000. */
  maxBackoff?: number;
  /** Makes the relay; replaceable so tests can make it fail. */
  createRelay?: (options: RelayOptions) => Relay;
  logger?: Logger;
}

export const ERR_RELAY_FAILED = 'ERR_RELAY_FAILED';
export const DEFAULT_MAX_SESSIONS = 32;
export const DEFAULT_MAX_SESSIONS_PER_TARGET = 16;

/** True when a session to `old` must go because the configuration now says `now`. */
function targetChanged(old: RelayTarget, now: Target | undefined): boolean {
  return !now || now.host !== old.host || now.port !== old.port;
}

export class Supervisor {
  private readonly log: Logger;
  private readonly options: Required<Pick<SupervisorOptions, 'initialBackoff' | 'maxBackoff'>> & SupervisorOptions;
  private readonly createRelay: (options: RelayOptions) => Relay;
  private relay: Relay | null = null;
  /** Relays replaced after a failure, kept until their sessions have ended. */
  private readonly retired = new Set<Relay>();
  private targets: Target[] = [];
  private usingFallback = false;
  private state: RelayState = 'stopped';
  private since = new Date();
  private lastError: { message: string; at: string } | null = null;
  private restarts = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAt = 0;
  private readonly totalsOfRetired = { sessionsTotal: 0, bytesUp: 0, bytesDown: 0 };
  /** Set by {@link stop}; failures after it are not restarted. */
  private stopped = false;
  /** Per target id: rejected stored passwords in a row (see {@link onHandshake}). */
  private readonly authFailures = new Map<
    string,
    { target: string; failures: number; until: number; lastError: string; at: string }
  >();

  constructor(options: SupervisorOptions = {}) {
    this.options = { initialBackoff: 500, maxBackoff: 30_000, ...options };
    this.log = options.logger ?? silentLogger;
    this.createRelay = options.createRelay ?? ((o) => new Relay(o));
  }

  /** Starts the relay with `config`. */
  start(config: Config): void {
    this.setTargets(config);
    this.spawn();
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
    let closed = 0;
    for (const relay of this.allRelays()) {
      closed += relay.closeSessions((s) => targetChanged(s.target, byId.get(s.target.id ?? '')), CLOSE_TARGET_CHANGED, 'target changed');
    }
    this.log.info('configuration applied', {
      targets: this.targets.map((t) => `${t.id}=${formatHostPort(t.host, t.port)}`).join(',') || 'none',
      demo: this.usingFallback || undefined,
      closedSessions: closed,
    });
  }

  /** The target a `?target=` value selects: the id given, or the first one. */
  resolve(id: string | null): { target: Target } | { status: 404 | 503; reason: string } {
    if (this.targets.length === 0) {
      return { status: 503, reason: 'No VNC target is configured yet: add one on the settings page.' };
    }
    if (id === null || id === '') return { target: this.targets[0]! };
    const target = this.targets.find((t) => t.id === id);
    if (!target) return { status: 404, reason: `Unknown VNC target "${id.slice(0, 64)}".` };
    return { target };
  }

  /**
   * What an upgrade for `?target=<id>` would get now: the target, or the refusal (404 unknown
   * target, 503 no target or relay restarting). Also answers the viewer's preflight GET.
   */
  admit(targetId: string | null): { target: Target } | { status: 404 | 503; reason: string; retryAfter?: number } {
    const resolved = this.resolve(targetId);
    if ('status' in resolved) return resolved;
    const limit = this.sessionLimit(resolved.target);
    if (limit) return { status: 503, reason: limit, retryAfter: 10 };
    const held = this.authFailures.get(resolved.target.id);
    if (held && this.authenticating(resolved.target.id)) {
      // After a rejection, one attempt at a time: a burst of viewers must not use up the
      // server's own lockout allowance.
      return {
        status: 503,
        reason: 'The VNC server rejected the stored password before; another viewer is trying it now. Try again in a moment.',
        retryAfter: 2,
      };
    }
    if (held && held.until > Date.now()) {
      const retryAfter = Math.max(1, Math.ceil((held.until - Date.now()) / 1000));
      return {
        status: 503,
        reason:
          `The VNC server rejected the stored password ${held.failures} times in a row; to avoid a lockout the next ` +
          `attempt is allowed in ${retryAfter} s. Check the VNC password in the settings.`,
        retryAfter,
      };
    }
    if (!this.relay || this.state !== 'running') {
      const retryAfter = Math.max(1, Math.ceil((this.restartAt - Date.now()) / 1000));
      return { status: 503, reason: `The relay is restarting; try again in ${retryAfter} s.`, retryAfter };
    }
    return resolved;
  }

  /** Accepts or refuses a relay upgrade; refusals are real HTTP responses sent before the upgrade. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, targetId: string | null): void {
    const admitted = this.admit(targetId);
    if ('status' in admitted) {
      rejectUpgrade(socket, admitted.status, admitted.reason, admitted.retryAfter ? { 'Retry-After': String(admitted.retryAfter) } : {});
      return;
    }
    const { id, name, host, port, idleTimeout } = admitted.target;
    try {
      // The configuration counts idle time in minutes, the relay in seconds.
      const target: RelayTarget = { id, name, host, port, ...(idleTimeout ? { idleTimeout: idleTimeout * 60 } : {}) };
      this.relay!.handleUpgrade(req, socket, head, target, { password: this.passwordOf(id) });
      this.failures = 0;
    } catch (err) {
      rejectUpgrade(socket, 500, 'The relay failed; it is being restarted.');
      this.fail(err);
    }
  }

  /** Forgets rejected passwords of a target (its password was changed or removed). */
  resetAuthFailures(targetId: string): void {
    this.authFailures.delete(targetId);
  }

  /** Reports a relay failure from outside (or from handleUpgrade): restart with backoff. */
  fail(err: unknown): void {
    // Not `state === 'stopped'`: that is also the state before the first start, and a relay
    // whose very first creation fails must be retried like any other.
    if (this.stopped) return;
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = { message, at: new Date().toISOString() };
    this.log.error('relay failed', { error: message, failures: this.failures + 1 });
    if (this.relay) {
      const old = this.relay;
      this.relay = null;
      this.retire(old, CLOSE_INTERNAL_ERROR, 'relay restarting');
    }
    this.scheduleRestart();
  }

  status(): SupervisorStatus {
    const sessions: SessionStatus[] = [];
    const totals = { sessionsOpen: 0, ...this.totalsOfRetired };
    for (const relay of this.allRelays()) {
      const s = relay.stats();
      totals.sessionsOpen += s.sessionsOpen;
      totals.sessionsTotal += s.sessionsTotal;
      totals.bytesUp += s.bytesUp;
      totals.bytesDown += s.bytesDown;
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
      lastError: this.lastError,
      restarts: this.restarts,
      retryIn: this.state === 'restarting' ? Math.max(0, Math.ceil((this.restartAt - Date.now()) / 1000)) : null,
      targets: this.targets.map((t) => ({
        id: t.id,
        name: t.name,
        target: formatHostPort(t.host, t.port),
        demo: this.usingFallback,
        passwordSet: this.passwordOf(t.id) !== undefined,
        auth: this.authStatus(t.id),
      })),
      sessions,
      totals,
      limits: {
        maxSessions: this.options.maxSessions ?? DEFAULT_MAX_SESSIONS,
        maxSessionsPerTarget: this.options.maxSessionsPerTarget ?? DEFAULT_MAX_SESSIONS_PER_TARGET,
      },
    };
  }

  /** Closes every session with 1001 and stops; resolves when all have ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.setState('stopped');
    const relays = this.allRelays();
    this.relay = null;
    await Promise.all(relays.map((r) => r.close()));
  }

  // ---- internals ---------------------------------------------------------------------------

  private setTargets(config: Config): void {
    const fallback = this.options.fallbackTarget;
    this.usingFallback = config.targets.length === 0 && fallback !== undefined;
    this.targets = this.usingFallback ? [fallback!] : config.targets;
  }

  private allRelays(): Relay[] {
    return this.relay ? [this.relay, ...this.retired] : [...this.retired];
  }

  /** True while a session to `targetId` is in the relay's own security handshake. */
  private authenticating(targetId: string): boolean {
    for (const relay of this.allRelays()) {
      for (const s of relay.sessions) if (s.target.id === targetId && s.authenticating) return true;
    }
    return false;
  }

  /** Why one more session to `target` would exceed a limit, or undefined. */
  private sessionLimit(target: Target): string | undefined {
    const total = this.options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    const perTarget = this.options.maxSessionsPerTarget ?? DEFAULT_MAX_SESSIONS_PER_TARGET;
    let open = 0;
    let toTarget = 0;
    for (const relay of this.allRelays()) {
      for (const s of relay.sessions) {
        // A viewer that has left no longer counts, even while a slow server is still closing.
        if (!s.browserOpen) continue;
        open++;
        if (s.target.id === target.id) toTarget++;
      }
    }
    if (open >= total) {
      return `The app already serves ${open} viewers, its limit; close a viewer and try again.`;
    }
    if (toTarget >= perTarget) {
      return `${target.name} already has ${toTarget} viewers, the limit per target; close one and try again.`;
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

  /** Counts rejected stored passwords per target; a success clears the count. */
  private readonly onHandshake = (target: RelayTarget, outcome: HandshakeOutcome): void => {
    const id = target.id;
    if (id === undefined) return;
    if (outcome.ok) {
      this.authFailures.delete(id);
      return;
    }
    if (outcome.failure.kind !== 'auth') return;
    const a = this.authFailures.get(id) ?? { target: formatHostPort(target.host, target.port), failures: 0, until: 0, lastError: '', at: '' };
    a.failures++;
    a.lastError = outcome.failure.message;
    a.at = new Date().toISOString();
    const free = this.options.authFailuresBeforeBackoff ?? 3;
    if (a.failures >= free) {
      const base = this.options.authBackoff ?? 30_000;
      const delay = Math.min(base * 2 ** (a.failures - free), this.options.maxAuthBackoff ?? 600_000);
      a.until = Date.now() + delay;
      this.log.warn('holding back sessions after rejected VNC passwords', {
        targetId: id,
        failures: a.failures,
        retryIn: `${Math.ceil(delay / 1000)}s`,
      });
    }
    this.authFailures.set(id, a);
  };

  private spawn(): void {
    try {
      // Configured targets must be VNC servers: the relay is never a general TCP tunnel.
      this.relay = this.createRelay({
        requireRfb: true,
        ...this.options.relay,
        onHandshake: this.onHandshake,
        logger: this.log,
      });
      this.setState('running');
    } catch (err) {
      this.relay = null;
      this.fail(err);
    }
  }

  private scheduleRestart(): void {
    this.failures++;
    const delay = Math.min(this.options.initialBackoff * 2 ** (this.failures - 1), this.options.maxBackoff);
    this.restartAt = Date.now() + delay;
    this.setState(this.failures > 1 && delay >= this.options.maxBackoff ? 'failed' : 'restarting');
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restarts++;
      this.log.info('restarting relay', { attempt: this.restarts });
      this.spawn();
    }, delay);
    this.restartTimer.unref();
  }

  private retire(relay: Relay, code: number, reason: string): void {
    this.retired.add(relay);
    relay
      .close(code, reason)
      .catch(() => {})
      .finally(() => {
        const s = relay.stats();
        this.totalsOfRetired.sessionsTotal += s.sessionsTotal;
        this.totalsOfRetired.bytesUp += s.bytesUp;
        this.totalsOfRetired.bytesDown += s.bytesDown;
        this.retired.delete(relay);
      });
  }

  private setState(state: RelayState): void {
    if (state === this.state) return;
    this.state = state;
    this.since = new Date();
  }
}
