/**
 * @module
 * "Test connection" with the VNC login: on top of the greeting check (relay/probe.ts) it goes
 * through the server's security handshake, so the settings page can say whether the server asks
 * for a password and whether the typed or stored one is right:
 *
 * - a server that asks for no password: the probe logs in with None (a clean login) and closes;
 * - with a password (typed on the page, or the stored one of the saved target at that very
 *   address): the probe logs in with it; right and wrong are told apart;
 * - a server that asks for a password when none is typed or stored: the probe reads that from the
 *   offered security types and closes before authenticating.
 *
 * VNC servers lock a client address out after a few connections that end before a login
 * (TigerVNC: 5, then 10 s, doubling), and the controller is one address for every user. So each
 * click makes at most one connection, and {@link LoginProber} answers tests that would end before
 * a login from a 10 s cache and allows at most 3 of them per target in 5 minutes; a successful
 * login clears the count.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { formatHostPort } from './address.js';
import type { ProbeOutcome, ProbeResult } from './probe.js';
import { SECURITY_NONE, SECURITY_VNC_AUTH, VERSION_LENGTH, versionText } from '../rfb/protocol.js';
import { ServerHandshake, type HandshakeOutcome } from '../rfb/security-proxy.js';

/** How the probe's password fared: the server accepted it, refused it, or none was tried. */
export type PasswordCheck = 'accepted' | 'rejected' | 'none-needed' | 'missing' | 'not-tried';

/** The greeting probe's outcomes, and how a login can end. */
export type LoginProbeOutcome = ProbeOutcome | 'login-rejected' | 'password-needed' | 'handshake-failed';

export interface LoginProbeResult extends Omit<ProbeResult, 'outcome'> {
  outcome: LoginProbeOutcome;
  /** The probe's password and how it fared, when the server got as far as its security types. */
  passwordCheck?: PasswordCheck;
  /** Where the probe's password came from. */
  passwordFrom?: 'typed' | 'stored';
  /** Set when this answer is an earlier test's (no new connection was made): when that test ran. */
  testedAt?: string;
  /** With `testedAt`: seconds until a test connects to the server again. */
  nextTestIn?: number;
}

/** Probes `host:port` and, where the server asks for one, logs in with `password`; never throws. */
export function probeLogin(host: string, port: number, timeoutMs = 3000, password?: string): Promise<LoginProbeResult> {
  const target = formatHostPort(host, port);
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    const handshake = new ServerHandshake(password, target);
    let version = '';
    let head = Buffer.alloc(0);
    const socket = net.connect({ host, port });
    const done = (outcome: LoginProbeOutcome, message: string, extra: Partial<LoginProbeResult> = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // After a login the server waits for ClientInit; ending here is a clean close.
      socket.end();
      socket.destroy();
      resolve({ ok: outcome === 'vnc', outcome, message, target, elapsedMs: Date.now() - started, ...(version ? { version } : {}), ...extra });
    };
    const ended = (outcome: HandshakeOutcome): void => {
      const asks = handshake.offered.includes(SECURITY_VNC_AUTH) && !handshake.offered.includes(SECURITY_NONE);
      if (outcome.ok) {
        if (outcome.securityType === SECURITY_VNC_AUTH) {
          done('vnc', `VNC server, ${version}. It asks for a password: the password was accepted.`, { asksPassword: true, passwordCheck: 'accepted' });
        } else {
          const unused = password === undefined ? '' : ' (the password is not needed)';
          done('vnc', `VNC server, ${version}. It asks for no password: viewers connect without one${unused}.`, { asksPassword: false, passwordCheck: 'none-needed' });
        }
        return;
      }
      const f = outcome.failure;
      if (f.kind === 'auth') {
        done('login-rejected' , `VNC server, ${version}. It asks for a password: the password was not accepted (wrong password).`, {
          asksPassword: true,
          passwordCheck: 'rejected',
        });
      } else if (f.kind === 'unsupported' && password === undefined && asks) {
        done('password-needed' , `VNC server, ${version}. It asks for a password: type it under "VNC password" and test again (none is typed or stored).`, {
          asksPassword: true,
          passwordCheck: 'missing',
        });
      } else {
        done(f.kind === 'not-rfb' ? 'not-vnc' : ('handshake-failed' ), f.message, handshake.offered.length ? { asksPassword: asks } : {});
      }
    };
    const timer = setTimeout(() => {
      if (socket.connecting) done('timeout', `timed out: no answer from ${target} within ${timeoutMs / 1000} s`);
      else if (!handshake.greeted) done('not-vnc', `port open but not a VNC server: ${target} sent no RFB greeting within ${timeoutMs / 1000} s`);
      else done('timeout', `VNC server, ${version}, but the login did not finish within ${timeoutMs / 1000} s`);
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (head.length < VERSION_LENGTH) head = Buffer.concat([head, chunk]).subarray(0, VERSION_LENGTH);
      const step = handshake.push(chunk);
      if (!version && handshake.greeted) version = versionText(head);
      for (const b of step.send) socket.write(b);
      if (step.done) ended(step.done);
    });
    socket.on('end', () => {
      if (!handshake.greeted) return done('not-vnc', `port open but not a VNC server: ${target} closed the connection without an RFB greeting`);
      // RFB 3.3 and 3.7 servers close after a wrong password without saying why.
      if (handshake.awaitingResult) {
        return ended({ ok: false, failure: { kind: 'auth', message: 'closed after the password', detail: 'closed' } });
      }
      done('handshake-failed' , `VNC server, ${version}, but it closed the connection during the login`);
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

export interface LoginProbeLimits {
  /** Milliseconds an answer that ended before a login is reused. Default 10000. */
  cacheMs?: number;
  /** The window of {@link maxUnclean}, in milliseconds. Default 300000 (5 min). */
  windowMs?: number;
  /** Tests per target and window that may end before a login. Default 3 (TigerVNC locks out at 5). */
  maxUnclean?: number;
}

interface Seen {
  /** The last result that ended before a login, with the password it used (as a digest). */
  last: LoginProbeResult;
  passwordDigest: string;
  at: number;
  /** When tests that ended before a login ran, within the window. */
  unclean: number[];
}

/** Targets remembered at most (oldest forgotten first). */
const MAX_REMEMBERED = 256;

/** A digest that tells passwords apart without keeping them. */
function digest(password: string | undefined): string {
  return password === undefined ? '' : createHash('sha256').update(`ctrlx-novnc probe\0${password}`).digest('base64url');
}

/** True when a result cost the server a connection that ended before a login. */
function unclean(result: LoginProbeResult): boolean {
  return result.version !== undefined && result.passwordCheck !== 'accepted' && result.passwordCheck !== 'none-needed';
}

/**
 * "Test connection" with the server's lockout in mind (see the module): one connection per test,
 * tests of one target that overlap share it, tests that would end before a login are cached and
 * limited per target.
 */
export class LoginProber {
  private readonly cacheMs: number;
  private readonly windowMs: number;
  private readonly maxUnclean: number;
  private readonly seen = new Map<string, Seen>();
  private readonly running = new Map<string, Promise<LoginProbeResult>>();
  /** The last answer per target, for the settings page's reachability dots. */
  private readonly latest = new Map<string, { ok: boolean; message: string; at: number }>();

  constructor(limits: LoginProbeLimits = {}) {
    this.cacheMs = limits.cacheMs ?? 10_000;
    this.windowMs = limits.windowMs ?? 300_000;
    this.maxUnclean = limits.maxUnclean ?? 3;
  }

  probe(host: string, port: number, timeoutMs: number, password?: string, from?: 'typed' | 'stored'): Promise<LoginProbeResult> {
    const key = formatHostPort(host, port);
    const pw = digest(password);
    const now = Date.now();
    const seen = this.seen.get(key);
    if (seen) {
      seen.unclean = seen.unclean.filter((t) => now - t < this.windowMs);
      const fresh = now - seen.at < this.cacheMs && seen.passwordDigest === pw;
      const spent = seen.unclean.length >= this.maxUnclean;
      if (fresh || spent) {
        const nextAt = spent ? seen.unclean[0]! + this.windowMs : seen.at + this.cacheMs;
        return Promise.resolve(this.earlier(seen, now, nextAt));
      }
    }
    const runKey = `${key}\0${pw}`;
    const running = this.running.get(runKey);
    if (running !== undefined) return running;
    const probe = probeLogin(host, port, timeoutMs, password).then((result) => {
      this.running.delete(runKey);
      const answer: LoginProbeResult = result.passwordCheck && result.passwordCheck !== 'none-needed' && from ? { ...result, passwordFrom: from } : result;
      this.remember(key, pw, answer);
      return answer;
    });
    this.running.set(runKey, probe);
    return probe;
  }

  /** The last test of `host:port` (any user's), or undefined when none ran since the start. */
  last(host: string, port: number): { ok: boolean; message: string; at: number } | undefined {
    return this.latest.get(formatHostPort(host, port));
  }

  private remember(key: string, passwordDigest: string, result: LoginProbeResult): void {
    const now = Date.now();
    this.latest.delete(key);
    this.latest.set(key, { ok: result.ok, message: result.message, at: now });
    if (this.latest.size > MAX_REMEMBERED) this.latest.delete(this.latest.keys().next().value!);
    if (!unclean(result)) {
      // A clean login: the server counts nothing against this address.
      this.seen.delete(key);
      return;
    }
    const seen = this.seen.get(key) ?? { last: result, passwordDigest, at: now, unclean: [] };
    seen.last = result;
    seen.passwordDigest = passwordDigest;
    seen.at = now;
    seen.unclean.push(now);
    this.seen.delete(key); // re-insert: the map's order is the age
    this.seen.set(key, seen);
    for (const [k, s] of this.seen) {
      if (this.seen.size <= MAX_REMEMBERED && now - s.at < this.windowMs) break;
      this.seen.delete(k);
    }
  }

  private earlier(seen: Seen, now: number, nextAt: number): LoginProbeResult {
    const age = Math.max(0, Math.round((now - seen.at) / 1000));
    const next = Math.max(1, Math.ceil((nextAt - now) / 1000));
    return {
      ...seen.last,
      message: `${seen.last.message} (tested ${age} s ago; so that the VNC server does not lock this controller out, the next test connects in ${next} s)`,
      elapsedMs: 0,
      testedAt: new Date(seen.at).toISOString(),
      nextTestIn: next,
    };
  }
}

/** The controller's one prober: the VNC servers count per client address, and this process is one. */
export const loginProber = new LoginProber();
