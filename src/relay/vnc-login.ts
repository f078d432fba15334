/**
 * @module
 * The relay-side VNC login of one session (a target with a stored password): drives the two
 * handshake machines of rfb/security-proxy.ts between the server's and the browser's bytes, and
 * tells the session through {@link LoginPorts} what to send where and how it ended. No sockets,
 * no timers: the session owns those.
 *
 * ```
 *   server ──► 'server' ──(server OK)──► 'browser' ──(browser through)──► 'through'
 *                 │                          │
 *         (server failed)             (browser broke it)
 *                 ▼                          ▼
 *            'refusing' ──(browser told)──► 'failed'
 * ```
 *
 * - `server`: talking to the server; the browser is greeted with RFB 3.8 as soon as the server
 *   proved to be a VNC server, and its version is read meanwhile.
 * - `browser`: the server accepted; the browser is offered None and finishes its part. Server
 *   bytes that come early (it should send none before ClientInit) are held, up to a limit.
 * - `refusing`: the server side failed; the browser gets RFB's failure message once its version
 *   has arrived (or the session's deadline closes it).
 * - `through` / `failed`: the end; the session relays or closes.
 */
import type { FailureKind } from '../common/failures.js';
import { BrowserHandshake, ServerHandshake, type HandshakeFailure, type HandshakeOutcome, type HandshakeStep } from '../rfb/security-proxy.js';

/** Server bytes held between its SecurityResult and the browser's ClientInit (it should send none). */
const MAX_EARLY_SERVER_BYTES = 64 * 1024;

/** A failed login, in the session's terms. */
export interface LoginFailure {
  kind: FailureKind;
  /** For the browser (close reason), one sentence. */
  message: string;
  /** For the log only. */
  detail: string;
  /** Drop the server connection instead of ending it (it misbehaved). */
  drop?: boolean;
}

/** What the login asks of its session. */
export interface LoginPorts {
  toServer(bytes: Buffer): void;
  toBrowser(bytes: Buffer): void;
  /** The server greeted and the browser has been greeted in turn: read the browser now. */
  browserGreeted(): void;
  /** How the relay's own handshake with the server ended (reported once, for the back-off). */
  serverOutcome(outcome: HandshakeOutcome): void;
  /** The server side failed: end the server connection; the browser is told next or later. */
  serverFailed(failure: LoginFailure): void;
  /** Both sides are through: `up` goes to the server, `down` to the browser; then bytes pass unchanged. */
  through(up: Buffer, down: Buffer | null): void;
  /** The login failed: close the browser with this, and end the server connection (drop it with `drop`). */
  failed(failure: LoginFailure): void;
}

export type LoginState = 'server' | 'browser' | 'refusing' | 'through' | 'failed';

/** The failure kinds of the server-side machine, as the browser hears them. */
const SERVER_FAILURE: Record<HandshakeFailure['kind'], FailureKind> = {
  'not-rfb': 'not-vnc',
  version: 'handshake-failed',
  refused: 'server-refused',
  unsupported: 'security-unsupported',
  auth: 'login-rejected',
  lockout: 'server-lockout',
  protocol: 'handshake-failed',
};

const asLoginFailure = (f: HandshakeFailure, kind: FailureKind = SERVER_FAILURE[f.kind]): LoginFailure => ({
  kind,
  message: f.message,
  detail: `${f.kind}: ${f.detail}`,
});

export class VncLogin {
  private readonly ports: LoginPorts;
  private readonly label: string;
  private readonly server: ServerHandshake;
  private readonly browser = new BrowserHandshake();
  private current: LoginState = 'server';
  private browserWasGreeted = false;
  /** The server's failure while refusing. */
  private serverFailure: HandshakeOutcome | null = null;
  /** Server bytes after its SecurityResult, sent once the browser is through too. */
  private serverRest: Buffer | null = null;

  /**
   * @param password the stored VNC password
   * @param label the target for messages, e.g. `10.0.0.5:5900`
   */
  constructor(password: string, label: string, ports: LoginPorts) {
    this.server = new ServerHandshake(password, label);
    this.label = label;
    this.ports = ports;
  }

  get state(): LoginState {
    return this.current;
  }

  /** True until the server side has ended: the session counts as "authenticating" for the back-off. */
  get authenticating(): boolean {
    return this.current === 'server';
  }

  /** Bytes from the server. */
  fromServer(chunk: Buffer): void {
    if (this.current === 'browser') {
      // The server may only speak again after ClientInit, which the browser has not sent yet.
      this.serverRest = this.serverRest ? Buffer.concat([this.serverRest, chunk]) : chunk;
      if (this.serverRest.length > MAX_EARLY_SERVER_BYTES) {
        this.fail({
          kind: 'handshake-failed',
          message: `VNC handshake with ${this.label} failed: the server sent data out of turn`,
          detail: `protocol: ${this.serverRest.length} bytes from the server before ClientInit`,
          drop: true,
        });
      }
      return;
    }
    if (this.current !== 'server') return;
    const step = this.server.push(chunk);
    for (const b of step.send) this.ports.toServer(b);
    if (this.server.greeted && !this.browserWasGreeted) {
      // A VNC server after all: greet the browser and start reading it.
      this.browserWasGreeted = true;
      this.ports.toBrowser(this.browser.greeting());
      this.ports.browserGreeted();
    }
    if (step.done) this.serverDone(step.done);
  }

  /** Bytes from the browser. */
  fromBrowser(chunk: Buffer): void {
    if (this.current === 'through' || this.current === 'failed') return;
    this.browserStep(this.browser.push(chunk));
  }

  /**
   * The server connection ended: `byServer` for its FIN, false when it was reset or dropped by
   * the relay (timeout, browser gone). Returns the failure to close with, or null when the
   * login has already failed (the browser is being told) or is through.
   */
  serverGone(byServer: boolean): LoginFailure | null {
    if (this.current === 'refusing' || this.current === 'failed' || this.current === 'through') return null;
    if (!this.server.greeted) {
      return { kind: 'not-vnc', message: `not a VNC server: ${this.label} closed without an RFB greeting`, detail: 'not-rfb: closed' };
    }
    const detail = 'protocol: server closed during the handshake';
    if (this.current === 'server') {
      // A 3.3/3.7 server closes after a wrong password without a reason: that is the usual cause.
      // Only its own FIN is its verdict; a reset or the relay's own teardown is not.
      const rejected = byServer && this.server.awaitingResult;
      this.serverDone({
        ok: false,
        failure: {
          kind: rejected ? 'auth' : 'protocol',
          message: rejected
            ? `authentication failed: ${this.label} did not accept the VNC password stored in the settings (it closed the connection)`
            : `VNC handshake with ${this.label} failed: the server closed the connection`,
          detail: 'server closed during the handshake',
        },
      });
      return null;
    }
    return { kind: 'handshake-failed', message: `VNC handshake with ${this.label} failed: the server closed the connection`, detail };
  }

  /** The session's deadline passed: what to close with. */
  timedOut(): LoginFailure {
    if (this.serverFailure && !this.serverFailure.ok) return asLoginFailure(this.serverFailure.failure);
    if (this.current === 'browser') {
      return { kind: 'viewer-handshake', message: 'the viewer did not complete the VNC handshake in time', detail: 'protocol: viewer too slow' };
    }
    if (this.server.greeted) {
      return { kind: 'handshake-timeout', message: `VNC handshake with ${this.label} timed out`, detail: 'protocol: timeout' };
    }
    return { kind: 'not-vnc', message: `not a VNC server: no RFB greeting from ${this.label}`, detail: 'not-rfb: timeout' };
  }

  private serverDone(outcome: HandshakeOutcome): void {
    this.ports.serverOutcome(outcome);
    if (!outcome.ok) {
      this.serverFailure = outcome;
      this.ports.serverFailed(asLoginFailure(outcome.failure));
      if (!this.browserWasGreeted) {
        // Not even a VNC greeting: the browser never saw an RFB byte.
        this.fail(asLoginFailure(outcome.failure));
        return;
      }
      this.current = 'refusing';
    } else {
      this.current = 'browser';
      this.serverRest = outcome.rest.length ? outcome.rest : null;
    }
    this.browserStep(this.browser.serverDone(outcome));
  }

  /** Applies what the browser-side machine produced: bytes for the browser and, at its end, the outcome. */
  private browserStep(step: HandshakeStep): void {
    for (const b of step.send) this.ports.toBrowser(b);
    const done = step.done;
    if (!done) return;
    if (!done.ok) {
      // Either the server's failure, now told to the browser as RFB's "no security types +
      // reason" (the close frame repeats it), or the browser's own protocol error.
      const server = this.serverFailure;
      this.fail(server && !server.ok && done === server ? asLoginFailure(done.failure) : asLoginFailure(done.failure, 'viewer-handshake'));
      return;
    }
    if (this.current !== 'browser') return; // cannot happen: the browser side ends after the server's
    this.current = 'through';
    this.ports.through(done.rest, this.serverRest);
  }

  private fail(failure: LoginFailure): void {
    if (this.current === 'failed') return;
    this.current = 'failed';
    this.ports.failed(failure);
  }
}
