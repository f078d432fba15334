/**
 * @module
 * "Test connection": opens a TCP connection to a VNC target, reads the 12-byte RFB
 * ProtocolVersion greeting and closes, without leaving the server a half-finished login where
 * that can be avoided. VNC servers lock a client address out after a few connections that end
 * before authentication (TigerVNC: 5, then 10 s, doubling), and the controller is one address
 * for every user:
 *
 * - with the target's stored VNC password the probe completes the login (the RFB security
 *   handshake up to a successful SecurityResult) and then closes: a clean login;
 * - without one it sends nothing and closes after the greeting, which the server counts; so
 *   {@link Prober} answers such tests from a 10 s cache (for the same password) and makes at most
 *   3 of them per target in 5 minutes, answering the others with the last result and when the
 *   next one can go;
 * - the settings page's test (`login`) also goes through the security handshake with the typed
 *   password, or none: a server that asks for none gets a clean login, and the answer says
 *   whether the server asks for a password (`asksPassword`) and whether the password was right.
 *
 * A server that locks the controller out says so in its greeting (TigerVNC: `RFB 003.003`, no
 * security types, "Too many security failures"); the probe reports `server-lockout` (4009).
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { formatHostPort } from './address.js';
import { checkGreeting, SECURITY_NONE, SECURITY_VNC_AUTH, VERSION_LENGTH, versionText } from '../rfb/protocol.js';
import { ServerHandshake, type HandshakeFailure, type HandshakeOutcome } from '../rfb/security-proxy.js';
import { FAILURES, type FailureKind } from '../common/failures.js';
import { PROBE_OUTCOME_KINDS } from '../common/reach.js';

export type ProbeOutcome =
  | 'vnc'
  | 'not-vnc'
  | 'refused'
  | 'timeout'
  | 'not-found'
  | 'unreachable'
  | 'error'
  | 'server-lockout'
  | 'login-rejected'
  | 'server-refused'
  | 'security-unsupported'
  | 'handshake-failed';

export interface ProbeResult {
  ok: boolean;
  outcome: ProbeOutcome;
  /** A sentence for the user, e.g. "VNC server, RFB 003.008". */
  message: string;
  /** `RFB 003.008` when the target answered with a greeting. */
  version?: string;
  target: string;
  /** Milliseconds from connect to result. */
  elapsedMs: number;
  /** Set when the probe logged in (and so closed cleanly): with the stored `password`, or `none` needed. */
  login?: 'password' | 'none';
  /** The failure kind and close code a viewer would meet, when the probe met one (e.g. `server-lockout`, 4009). */
  kind?: FailureKind;
  code?: number;
  /** Set when this answer is an earlier test's (no new connection was made): when that test ran. */
  testedAt?: string;
  /** With `testedAt`: seconds until a test connects to the server again. */
  nextTestIn?: number;
  /**
   * Whether the server asks for a VNC password (offers VNC Authentication and not None), once the
   * probe got as far as its security types (a probe that logs in).
   */
  asksPassword?: boolean;
}

/**
 * The last test of an address: whether it reached a VNC server, in words, when, its outcome (for
 * other languages) and, when it failed, the failure kind a viewer would meet.
 */
export type LastProbe = { ok: boolean; message: string; at: number } & Pick<ProbeResult, 'outcome' | 'target' | 'version' | 'kind'>;

/** How long to wait after a 3.3 greeting for the refusal that may follow it at once. */
const REFUSAL_WAIT_MS = 250;

/** The outcome and kind of a failed login, by the handshake's failure kind. */
const LOGIN_FAILURE: Record<HandshakeFailure['kind'], { outcome: ProbeOutcome; kind: FailureKind }> = {
  'not-rfb': { outcome: 'not-vnc', kind: 'not-vnc' },
  version: { outcome: 'handshake-failed', kind: 'handshake-failed' },
  refused: { outcome: 'server-refused', kind: 'server-refused' },
  unsupported: { outcome: 'security-unsupported', kind: 'security-unsupported' },
  auth: { outcome: 'login-rejected', kind: 'login-rejected' },
  lockout: { outcome: 'server-lockout', kind: 'server-lockout' },
  protocol: { outcome: 'handshake-failed', kind: 'handshake-failed' },
};

/**
 * Probes `host:port`; never throws. With `password` it logs in with it and reports how the
 * handshake ended through `onHandshake`; without, it sends nothing (and reports only a lockout),
 * unless `login` is set: then it goes through the security handshake without a password (a login
 * with None where the server asks for none; where it asks for one, the answer says so).
 */
export function probeTarget(
  host: string,
  port: number,
  timeoutMs = 3000,
  password?: string,
  onHandshake?: (outcome: HandshakeOutcome) => void,
  login = password !== undefined,
): Promise<ProbeResult> {
  const target = formatHostPort(host, port);
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    let version: string | undefined;
    /** With a password: the login. Without: a parser of what a 3.3 server sends unasked. */
    let handshake: ServerHandshake | null = null;
    let refusalWait: NodeJS.Timeout | undefined;
    const socket = net.connect({ host, port });
    const done = (outcome: ProbeOutcome, message: string, extra: Partial<ProbeResult> = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(refusalWait);
      socket.destroy();
      resolve({ ok: outcome === 'vnc', outcome, message, target, elapsedMs: Date.now() - started, ...(version ? { version } : {}), ...extra });
    };
    const failed = (outcome: ProbeOutcome, kind: FailureKind, message: string): void => done(outcome, message, { kind, code: FAILURES[kind].code });
    const ended = (outcome: HandshakeOutcome): void => {
      const offered = handshake?.offered ?? [];
      const asks = offered.length ? { asksPassword: offered.includes(SECURITY_VNC_AUTH) && !offered.includes(SECURITY_NONE) } : {};
      if (outcome.ok) {
        const how = outcome.securityType === 2 ? 'logged in with the stored VNC password' : 'logged in, no password needed';
        done('vnc', `VNC server, ${version}; ${how}`, { login: outcome.securityType === 2 ? 'password' : 'none', ...asks });
        return;
      }
      const { outcome: o, kind } = LOGIN_FAILURE[outcome.failure.kind];
      const message =
        outcome.failure.kind === 'lockout'
          ? `VNC server ${target} locks this controller out for now: too many security failures (it lets the address in again after its lockout time, TigerVNC: 10 s, doubling)`
          : outcome.failure.message;
      done(o, message, { kind, code: FAILURES[kind].code, ...asks });
    };
    const timer = setTimeout(() => {
      if (socket.connecting) done('timeout', `timed out: no answer from ${target} within ${timeoutMs / 1000} s`);
      else if (version === undefined) done('not-vnc', `port open but not a VNC server: ${target} sent no RFB greeting within ${timeoutMs / 1000} s`);
      else if (login) failed('timeout', 'handshake-timeout', `VNC server, ${version}, but the login did not finish within ${timeoutMs / 1000} s`);
      else done('vnc', `VNC server, ${version}`);
    }, timeoutMs);
    /** Without a password nothing is sent: only a refusal the server sends unasked counts. */
    const unasked = (step: { done?: HandshakeOutcome }): void => {
      const d = step.done;
      if (d && !d.ok && (d.failure.kind === 'lockout' || d.failure.kind === 'refused')) {
        if (d.failure.kind === 'lockout') onHandshake?.(d);
        ended(d);
      } else if (d) {
        done('vnc', `VNC server, ${version}`);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      if (handshake) {
        const step = handshake.push(chunk);
        if (!login) return unasked(step);
        for (const b of step.send) socket.write(b);
        if (step.done) {
          onHandshake?.(step.done);
          ended(step.done);
        }
        return;
      }
      received = Buffer.concat([received, chunk]);
      // The first 12 bytes every VNC server sends: `RFB xxx.yyy\n`.
      const check = checkGreeting(received);
      if (check === 'invalid') return done('not-vnc', `port open but not a VNC server: ${target} does not speak RFB`);
      if (check !== 'complete') return;
      version = versionText(received.subarray(0, VERSION_LENGTH));
      handshake = new ServerHandshake(password, target);
      if (login) {
        const step = handshake.push(received);
        for (const b of step.send) socket.write(b);
        if (step.done) {
          onHandshake?.(step.done);
          ended(step.done);
        }
        return;
      }
      // Only a 3.3 server says more before the client speaks: its security type, or no type and
      // a reason (the lockout). Wait a moment for that; other versions wait for the client.
      if (version !== 'RFB 003.003') return done('vnc', `VNC server, ${version}`);
      unasked(handshake.push(received));
      refusalWait = setTimeout(() => done('vnc', `VNC server, ${version}`), REFUSAL_WAIT_MS);
    });
    socket.on('end', () => {
      if (version === undefined) return done('not-vnc', `port open but not a VNC server: ${target} closed the connection without an RFB greeting`);
      if (!login) return done('vnc', `VNC server, ${version}`);
      if (handshake?.awaitingResult) {
        const outcome: HandshakeOutcome = {
          ok: false,
          failure: { kind: 'auth', message: `authentication failed: ${target} did not accept the VNC password stored in the settings (it closed the connection)`, detail: 'closed' },
        };
        onHandshake?.(outcome);
        return ended(outcome);
      }
      failed('handshake-failed', 'handshake-failed', `VNC server, ${version}, but it closed the connection during the login`);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      switch (err.code) {
        case 'ECONNREFUSED':
          return done('refused', `connection refused: nothing listens on ${target}`);
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
        case 'EAI_NONAME':
          return done('not-found', `host not found: ${host}`);
        case 'EHOSTUNREACH':
        case 'ENETUNREACH':
          return done('unreachable', `no route to ${target} (${err.code})`);
        case 'ETIMEDOUT':
          return done('timeout', `timed out connecting to ${target}`);
        default:
          return done('error', `${err.code ?? err.message} ${target}`);
      }
    });
  });
}

export interface ProbeLimits {
  /** Milliseconds an answer that cost the server a pre-login close is reused. Default 10000. */
  cacheMs?: number;
  /** The window of {@link maxUnclean}, in milliseconds. Default 300000 (5 min). */
  windowMs?: number;
  /** Probes per target and window that may end before a login. Default 3. */
  maxUnclean?: number;
}

interface Seen {
  last: ProbeResult;
  /** Which test `last` answers: the password it used (a digest, never the password) and the mode. */
  asked: string;
  at: number;
  /** When probes that ended before a login ran, within the window. */
  unclean: number[];
}

/** Targets remembered at most (oldest forgotten first). */
const MAX_REMEMBERED = 256;

/** Tells tests apart by their password and mode without keeping the password. */
function testKey(password: string | undefined, login: boolean): string {
  if (password === undefined) return login ? 'login' : 'greeting';
  return `password:${createHash('sha256').update(`ctrlx-novnc probe\0${password}`).digest('base64url')}`;
}

/**
 * "Test connection" with the server's lockout in mind: probes that end before a login (no
 * password stored, a rejected one, a lockout) are answered from a cache for `cacheMs` and
 * limited to `maxUnclean` per target in `windowMs`; a clean login clears the count. Probes of
 * one target that overlap share one connection.
 */
export class Prober {
  private readonly cacheMs: number;
  private readonly windowMs: number;
  private readonly maxUnclean: number;
  private readonly seen = new Map<string, Seen>();
  private readonly running = new Map<string, Promise<ProbeResult>>();
  /** The last answer that connected, per target: the settings page's reachability dot. */
  private readonly latest = new Map<string, LastProbe>();

  constructor(limits: ProbeLimits = {}) {
    this.cacheMs = limits.cacheMs ?? 10_000;
    this.windowMs = limits.windowMs ?? 300_000;
    // Three, so that a test without a password, one with a wrong and one with the right password
    // can all go (TigerVNC locks an address out after 5; a login clears its count).
    this.maxUnclean = limits.maxUnclean ?? 3;
  }

  /**
   * Tests `host:port` (see {@link probeTarget}); a cached answer is reused only for the same
   * password and mode (a different password is a new test, within the limit).
   */
  probe(
    host: string,
    port: number,
    timeoutMs: number,
    password?: string,
    onHandshake?: (outcome: HandshakeOutcome) => void,
    login = password !== undefined,
  ): Promise<ProbeResult> {
    const key = formatHostPort(host, port);
    const asked = testKey(password, login);
    const now = Date.now();
    const seen = this.seen.get(key);
    if (seen) {
      seen.unclean = seen.unclean.filter((t) => now - t < this.windowMs);
      const fresh = now - seen.at < this.cacheMs && seen.asked === asked;
      if (fresh || seen.unclean.length >= this.maxUnclean) {
        const nextAt = Math.max(fresh ? seen.at + this.cacheMs : 0, seen.unclean.length >= this.maxUnclean ? seen.unclean[0]! + this.windowMs : 0);
        return Promise.resolve(this.earlier(seen, now, nextAt));
      }
    }
    const runKey = `${key} ${asked}`;
    const running = this.running.get(runKey);
    if (running !== undefined) return running;
    const probe = probeTarget(host, port, timeoutMs, password, onHandshake, login).then((result) => {
      this.running.delete(runKey);
      this.remember(key, asked, result);
      return result;
    });
    this.running.set(runKey, probe);
    return probe;
  }

  /** The last test of `host:port` that connected (any user's), or undefined. */
  last(host: string, port: number): LastProbe | undefined {
    return this.latest.get(formatHostPort(host, port));
  }

  private remember(key: string, asked: string, result: ProbeResult): void {
    this.latest.delete(key);
    this.latest.set(key, {
      ok: result.ok,
      message: result.message,
      at: Date.now(),
      outcome: result.outcome,
      target: result.target,
      ...(result.version !== undefined ? { version: result.version } : {}),
      ...(result.ok ? {} : { kind: result.kind ?? (PROBE_OUTCOME_KINDS as Partial<Record<string, FailureKind>>)[result.outcome] ?? 'target-error' }),
    });
    if (this.latest.size > MAX_REMEMBERED) this.latest.delete(this.latest.keys().next().value!);
    // Only a VNC server that greeted and was left before a login counts towards its lockout.
    const unclean = result.version !== undefined && result.login === undefined;
    if (!unclean) {
      this.seen.delete(key);
      return;
    }
    const now = Date.now();
    const seen = this.seen.get(key) ?? { last: result, asked, at: now, unclean: [] };
    seen.last = result;
    seen.asked = asked;
    seen.at = now;
    seen.unclean.push(now);
    this.seen.delete(key); // re-insert: the map's order is the age
    this.seen.set(key, seen);
    for (const [k, s] of this.seen) {
      if (this.seen.size <= MAX_REMEMBERED && now - s.at < this.windowMs) break;
      this.seen.delete(k);
    }
  }

  private earlier(seen: Seen, now: number, nextAt: number): ProbeResult {
    const age = Math.max(0, Math.round((now - seen.at) / 1000));
    const next = Math.max(1, Math.ceil((nextAt - now) / 1000));
    return {
      ...seen.last,
      message: `${seen.last.message} (tested ${age} s ago; to keep clear of the VNC server's lockout the next test connects in ${next} s)`,
      elapsedMs: 0,
      testedAt: new Date(seen.at).toISOString(),
      nextTestIn: next,
    };
  }
}
