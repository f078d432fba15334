/**
 * @module
 * One relay session: one browser WebSocket paired with one TCP connection to a VNC server.
 * Bytes pass through unchanged in both directions, with backpressure each way and a close
 * sequence that delivers everything already received before either side is shut.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, RawData } from 'ws';
import { formatHostPort } from './address.js';
import { BrowserHandshake, ServerHandshake, type HandshakeOutcome, type HandshakeStep } from '../rfb/security-proxy.js';
import { InputWatcher } from '../rfb/input-watcher.js';

/** Where a session connects to. `id`/`name` come from the configuration when there is one. */
export interface RelayTarget {
  host: string;
  port: number;
  id?: string | undefined;
  name?: string | undefined;
  /**
   * Seconds without user input (keys, pointer, clipboard) after which a session is closed with
   * 4001; absent or 0 for never.
   */
  idleTimeout?: number | undefined;
}

/** Tunables of a session, all filled in by the {@link Relay}. */
export interface SessionOptions {
  /** Milliseconds to wait for the TCP connection to the target. */
  connectTimeout: number;
  /** Bytes queued towards the browser above which reading from the target pauses. */
  highWaterMark: number;
  /** Milliseconds a side gets to finish closing before it is destroyed. */
  closeTimeout: number;
  /** Milliseconds of idle time before TCP keep-alive probes start on the target socket. */
  keepAliveDelay: number;
  /**
   * Require the target to open with an RFB ProtocolVersion greeting (`RFB xxx.yyy\n`) within
   * `connectTimeout`; otherwise close with 1011 "not a VNC server". Browser bytes are held until
   * the greeting is seen, so nothing reaches a non-VNC service.
   */
  requireRfb: boolean;
  /**
   * Reports how the relay's own RFB security handshake with the server ended (sessions with a
   * stored password only), e.g. to back off after rejected passwords.
   */
  onHandshake?: ((target: RelayTarget, outcome: HandshakeOutcome) => void) | undefined;
}

/** Secrets for one session; kept apart from {@link RelayTarget}, which is shown in status and logs. */
export interface SessionSecrets {
  /**
   * The target's stored VNC password. With one, the relay does the RFB security handshake with
   * the server itself and offers the browser security type None: the password never reaches it.
   */
  password?: string | undefined;
}

/** The spliced handshake of a session with a stored password (see rfb/security-proxy.ts). */
interface Splice {
  server: ServerHandshake;
  browser: BrowserHandshake;
  browserGreeted: boolean;
  serverDone: HandshakeOutcome | null;
  /** Server bytes that followed its SecurityResult, sent once the browser is through too. */
  serverRest: Buffer | null;
}

/** A snapshot of a session for status pages and logs. */
export interface SessionInfo {
  id: number;
  target: RelayTarget;
  peer: string;
  startedAt: number;
  /** Bytes from the browser to the target. */
  bytesUp: number;
  /** Bytes from the target to the browser. */
  bytesDown: number;
  connected: boolean;
}

/** How a session ended, reported once through `onEnd`. */
export interface SessionEnd {
  /** WebSocket close code sent or received (1006 when the browser vanished). */
  code: number;
  /** Short reason, e.g. `ECONNREFUSED 10.0.0.5:5900` or `target closed`. */
  reason: string;
  /** For a failed handshake done by the relay: what exactly happened, for the log only. */
  detail?: string | undefined;
  durationMs: number;
}

// WebSocket close codes used by the relay (RFC 6455 §7.4.1, plus the application range).
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_ABNORMAL = 1006;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_INTERNAL_ERROR = 1011;
export const CLOSE_TARGET_CHANGED = 4000;
export const CLOSE_IDLE = 4001;

/** A complete RFB ProtocolVersion greeting. */
const RFB_GREETING = /^RFB \d{3}\.\d{3}\n$/;
/** A prefix of one (fewer than 12 bytes received). */
const RFB_PREFIX = /^(R(F(B( (\d(\d(\d(\.(\d(\d(\d)?)?)?)?)?)?)?)?)?)?)?$/;

/**
 * Target reads: up to 256 KiB per read() instead of Node's 64 KiB, into one buffer shared by all
 * sessions (the relay is single-threaded and each read is copied out before the next), so there
 * is no fresh 64 KiB allocation per read. Large chunks are copied into recycled slabs, small ones
 * into Node's shared 8 KiB pool.
 */
const READ_SIZE = 256 * 1024;
const readBuffer = Buffer.allocUnsafeSlow(READ_SIZE);
/** Chunks up to this size are copied with Buffer.from (Node's pool); larger ones into a slab. */
const SMALL_CHUNK = 4096;
/** Slabs whose bytes have been handed to a browser socket, ready for reuse; at most 16 (4 MiB). */
const freeSlabs: Buffer[] = [];
const MAX_FREE_SLABS = 16;
/** Server bytes held between its SecurityResult and the browser's ClientInit (it should send none). */
const MAX_EARLY_SERVER_BYTES = 64 * 1024;
/** The zero-byte write that surfaces a reset reported as EOF (see onTargetEnd). */
const EMPTY = Buffer.alloc(0);

/** Close reasons must fit a control frame: 123 bytes of UTF-8. */
function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = reason.slice(0, 123);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return out + '...';
}

/**
 * Pairs a browser WebSocket with a TCP connection to `target`.
 *
 * Flow control: while more than `highWaterMark` bytes wait to be written to the browser, the
 * target socket is paused (resumed on the browser socket's `drain`); while the target socket's
 * write buffer is full, the WebSocket is paused (resumed on the target's `drain`).
 */
export class RelaySession {
  readonly id: number;
  readonly target: RelayTarget;
  readonly peer: string;
  readonly startedAt = Date.now();
  bytesUp = 0;
  bytesDown = 0;
  /** Cleared by each heartbeat, set by each pong. */
  alive = true;

  private readonly ws: WebSocket;
  private readonly browser: Duplex;
  private readonly tcp: net.Socket;
  private readonly options: SessionOptions;
  private readonly onEnd: (session: RelaySession, end: SessionEnd) => void;
  private readonly label: string;
  private connected = false;
  /** Browser messages that arrived before the target connection was up. */
  private pending: Buffer[] | null = [];
  /** The target's first bytes while its RFB greeting is being checked; null once checked. */
  private greeting: Buffer | null;
  /** Set while the relay runs the security handshake on the browser's behalf; null after. */
  private splice: Splice | null = null;
  private downPaused = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private wsClosed = false;
  private tcpClosed = false;
  private closeCode: number | undefined;
  private closeReason = '';
  private ended = false;
  /** Finds user input in the browser's messages, when the target has an idle timeout. */
  private input: InputWatcher | null = null;
  private lastInput = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  /** Log detail of a failed spliced handshake (never shown to the browser). */
  private handshakeDetail: string | undefined;

  constructor(
    id: number,
    ws: WebSocket,
    browserSocket: Duplex,
    peer: string,
    target: RelayTarget,
    options: SessionOptions,
    onEnd: (session: RelaySession, end: SessionEnd) => void,
    secrets: SessionSecrets = {},
  ) {
    this.id = id;
    this.ws = ws;
    this.browser = browserSocket;
    this.peer = peer;
    this.target = target;
    this.options = options;
    this.onEnd = onEnd;
    this.label = formatHostPort(target.host, target.port);
    if (secrets.password !== undefined) {
      // The handshake machine checks the greeting itself.
      this.splice = {
        server: new ServerHandshake(secrets.password, this.label),
        browser: new BrowserHandshake(),
        browserGreeted: false,
        serverDone: null,
        serverRest: null,
      };
      this.greeting = null;
    } else {
      this.greeting = options.requireRfb ? Buffer.alloc(0) : null;
    }

    // Nothing goes to the target before it is connected: hold the browser until then.
    ws.pause();
    ws.on('message', this.onBrowserMessage);
    ws.on('close', this.onBrowserClose);
    ws.on('error', this.onBrowserError);
    ws.on('pong', this.onPong);
    browserSocket.on('drain', this.onBrowserDrain);
    const idle = target.idleTimeout ?? 0;
    if (idle > 0) {
      this.input = new InputWatcher(this.splice !== null);
      this.idleTimer = setTimeout(this.onIdleCheck, idle * 1000);
    }

    this.tcp = net.connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: options.keepAliveDelay,
      // Half-open so a write is still possible after 'end' (see onTargetEnd); end() is ours to call.
      allowHalfOpen: true,
      onread: { buffer: readBuffer, callback: (n, buf) => this.onTargetRead(n, buf) },
    });
    this.tcp.on('connect', this.onTargetConnect);
    // No 'data' events: reads arrive through onread (onTargetRead).
    this.tcp.on('end', this.onTargetEnd);
    this.tcp.on('drain', this.onTargetDrain);
    this.tcp.on('error', this.onTargetError);
    this.tcp.on('close', this.onTargetClose);
    this.connectTimer = setTimeout(this.onConnectTimeout, options.connectTimeout);
  }

  /** True while the relay is doing the security handshake with the server for this session. */
  get authenticating(): boolean {
    return this.splice !== null && this.splice.serverDone === null;
  }

  /** False once the browser side has closed (the server side may still be finishing). */
  get browserOpen(): boolean {
    return !this.wsClosed;
  }

  /** A snapshot for status output. */
  info(): SessionInfo {
    return {
      id: this.id,
      target: this.target,
      peer: this.peer,
      startedAt: this.startedAt,
      bytesUp: this.bytesUp,
      bytesDown: this.bytesDown,
      connected: this.connected,
    };
  }

  /**
   * Closes the session from the server side: the browser gets `code`/`reason` after every byte
   * already received from the target, the target gets what the browser already sent, then FIN.
   */
  close(code: number, reason: string): void {
    this.closeBrowser(code, reason);
  }

  /** Drops both sides at once, without a closing handshake (shutdown deadline passed). */
  destroy(): void {
    this.closeCode ??= CLOSE_ABNORMAL;
    this.closeReason ||= 'terminated';
    if (!this.wsClosed) this.ws.terminate();
    if (!this.tcpClosed) this.tcp.destroy();
  }

  /** Heartbeat tick: terminate when the last ping went unanswered, else ping again. */
  heartbeat(): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.isPaused) {
      // The relay holds the browser back (target slow or still connecting), so its pongs wait
      // unread in the socket: that silence is ours. Give it a full interval once reading again.
      this.alive = true;
      this.ws.ping();
      return;
    }
    if (!this.alive) {
      this.closeCode ??= CLOSE_ABNORMAL;
      this.closeReason ||= 'no pong from browser';
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  // ---- browser side ------------------------------------------------------------------------

  private readonly onBrowserMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      this.closeBrowser(CLOSE_UNSUPPORTED_DATA, 'text frames are not supported');
      return;
    }
    // binaryType is 'nodebuffer': fragments arrive joined, so `data` is one Buffer.
    const chunk = data as Buffer;
    this.bytesUp += chunk.length;
    if (this.splice) {
      this.onBrowserStep(this.splice.browser.push(chunk));
      return;
    }
    if (this.input?.browser(chunk)) this.lastInput = Date.now();
    if (this.pending) {
      this.pending.push(chunk);
      return;
    }
    if (this.tcp.destroyed || this.tcp.writableEnded) return;
    if (!this.tcp.write(chunk)) this.ws.pause();
  };

  private readonly onTargetDrain = (): void => {
    if (!this.wsClosed) this.ws.resume();
  };

  private readonly onBrowserDrain = (): void => {
    if (this.downPaused && this.ws.bufferedAmount < this.options.highWaterMark) {
      this.downPaused = false;
      this.tcp.resume();
    }
  };

  private readonly onPong = (): void => {
    this.alive = true;
  };

  private readonly onBrowserError = (err: Error & { code?: string }): void => {
    // ws already closes the connection with the matching code (1002, 1009, ...).
    this.closeReason ||= err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message too big' : err.message;
  };

  private readonly onBrowserClose = (code: number, reason: Buffer): void => {
    this.wsClosed = true;
    this.browser.removeListener('drain', this.onBrowserDrain);
    this.closeCode ??= code;
    if (!this.closeReason) this.closeReason = reason.length ? reason.toString() : 'browser closed';
    if (this.tcpClosed) {
      this.finish();
      return;
    }
    if (this.splice) {
      // Mid-handshake: the server has nothing of the browser's to receive.
      this.tcp.destroy();
      return;
    }
    // Whatever the browser sent still reaches the target, then FIN (end() flushes first).
    if (this.pending === null) this.tcp.end();
    this.tcp.resume();
    this.armCloseTimer();
  };

  /** Sends a close frame once; the frame is queued behind all data already sent. */
  private closeBrowser(code: number, reason: string): void {
    if (this.wsClosed || this.ws.readyState !== this.ws.OPEN) return;
    this.closeCode ??= code;
    this.closeReason ||= reason;
    this.ws.close(code, clampReason(reason));
    // Keep reading so the browser's answering close frame is seen (the socket may be paused).
    this.ws.resume();
    this.armCloseTimer();
  }

  // ---- target side -------------------------------------------------------------------------

  private readonly onTargetConnect = (): void => {
    clearTimeout(this.connectTimer);
    this.connected = true;
    if (this.greeting !== null || this.splice) {
      // Browser bytes wait until the target has proven to be a VNC server.
      this.connectTimer = setTimeout(this.onGreetingTimeout, this.options.connectTimeout);
      return;
    }
    this.releasePending();
  };

  /** Sends what the browser sent so far to the target and lets the browser flow. */
  private releasePending(): void {
    const pending = this.pending!;
    this.pending = null;
    let full = false;
    for (const chunk of pending) full = !this.tcp.write(chunk);
    if (this.wsClosed) {
      this.tcp.end();
      return;
    }
    if (!full) this.ws.resume();
  }

  /** Copies one read out of the shared {@link readBuffer} and relays it. Never pauses (true). */
  private onTargetRead(n: number, buf: Uint8Array): boolean {
    if (n <= SMALL_CHUNK) {
      this.onTargetData(Buffer.from(buf.subarray(0, n)));
      return true;
    }
    const slab = freeSlabs.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
    slab.set(buf.subarray(0, n));
    this.onTargetData(slab.subarray(0, n), () => {
      if (freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(slab);
    });
    return true;
  }

  /** `sent` runs once the chunk has been written to the browser socket (not if it is dropped). */
  private onTargetData(chunk: Buffer, sent?: () => void): void {
    this.bytesDown += chunk.length;
    if (this.splice) {
      // The handshake keeps views of its bytes: copy out of a slab before recycling it.
      this.onServerBytes(this.splice, sent ? Buffer.from(chunk) : chunk);
      sent?.();
      return;
    }
    this.input?.server(chunk);
    if (this.greeting !== null) {
      const checked = this.checkGreeting(chunk);
      if (!checked) return;
      chunk = checked;
    }
    if (this.ws.readyState !== this.ws.OPEN) return; // browser gone: drain and drop
    this.ws.send(chunk, sent);
    if (this.ws.bufferedAmount >= this.options.highWaterMark) {
      this.downPaused = true;
      this.tcp.pause();
    }
  }

  /**
   * Collects the first 12 bytes and checks them against `RFB xxx.yyy\n`. Returns everything
   * received so far once the greeting is good, or null (still waiting, or rejected).
   */
  private checkGreeting(chunk: Buffer): Buffer | null {
    const got = Buffer.concat([this.greeting!, chunk]);
    const head = got.subarray(0, 12).toString('latin1');
    const ok = got.length >= 12 ? RFB_GREETING.test(head) : RFB_PREFIX.test(head);
    if (!ok) {
      this.greeting = null;
      this.closeBrowser(CLOSE_INTERNAL_ERROR, `not a VNC server: ${this.label} sent no RFB greeting`);
      this.tcp.destroy();
      return null;
    }
    if (got.length < 12) {
      this.greeting = got;
      return null;
    }
    this.greeting = null;
    clearTimeout(this.connectTimer);
    this.releasePending();
    return got;
  }

  private readonly onGreetingTimeout = (): void => {
    const failed = this.splice?.serverDone;
    if (failed && !failed.ok) this.closeBrowser(CLOSE_INTERNAL_ERROR, failed.failure.message);
    else if (failed?.ok) this.closeBrowser(CLOSE_INTERNAL_ERROR, 'the viewer did not complete the VNC handshake in time');
    else if (this.splice?.server.greeted) this.closeBrowser(CLOSE_INTERNAL_ERROR, `VNC handshake with ${this.label} timed out`);
    else this.closeBrowser(CLOSE_INTERNAL_ERROR, `not a VNC server: no RFB greeting from ${this.label}`);
    this.tcp.destroy();
  };

  /** Closes the session once `idleTimeout` seconds have passed without user input. */
  private readonly onIdleCheck = (): void => {
    const idleMs = (this.target.idleTimeout ?? 0) * 1000;
    const left = this.lastInput + idleMs - Date.now();
    if (left > 0) {
      this.idleTimer = setTimeout(this.onIdleCheck, left);
      return;
    }
    const minutes = idleMs / 60_000;
    const span = Number.isInteger(minutes) ? `${minutes} min` : `${idleMs / 1000} s`;
    this.closeBrowser(CLOSE_IDLE, `idle: no input for ${span}`);
  };

  // ---- spliced security handshake (stored password) -----------------------------------------

  /** Server bytes during the relay's own handshake with it. */
  private onServerBytes(splice: Splice, chunk: Buffer): void {
    if (splice.serverDone) {
      // The server may only speak again after ClientInit, which the browser has not sent yet.
      if (!splice.serverDone.ok) return;
      splice.serverRest = Buffer.concat([splice.serverRest ?? Buffer.alloc(0), chunk]);
      if (splice.serverRest.length > MAX_EARLY_SERVER_BYTES) {
        this.handshakeDetail = `protocol: ${splice.serverRest.length} bytes from the server before ClientInit`;
        this.closeBrowser(CLOSE_INTERNAL_ERROR, `VNC handshake with ${this.label} failed: the server sent data out of turn`);
        this.tcp.destroy();
      }
      return;
    }
    const step = splice.server.push(chunk);
    for (const b of step.send) this.tcp.write(b);
    if (splice.server.greeted && !splice.browserGreeted) {
      // A VNC server after all: greet the browser and start reading it.
      splice.browserGreeted = true;
      if (this.ws.readyState === this.ws.OPEN) this.ws.send(splice.browser.greeting());
      this.ws.resume();
    }
    if (step.done) this.onServerDone(splice, step.done);
  }

  private onServerDone(splice: Splice, outcome: HandshakeOutcome): void {
    splice.serverDone = outcome;
    this.options.onHandshake?.(this.target, outcome);
    if (!outcome.ok) {
      this.closeReason ||= outcome.failure.message;
      this.handshakeDetail = `${outcome.failure.kind}: ${outcome.failure.detail}`;
      this.tcp.end();
      if (!splice.browserGreeted) {
        // Not even a VNC greeting: the browser never saw an RFB byte.
        this.closeBrowser(CLOSE_INTERNAL_ERROR, outcome.failure.message);
        return;
      }
    } else {
      splice.serverRest = outcome.rest;
    }
    this.onBrowserStep(splice.browser.serverDone(outcome));
  }

  /** Applies what the browser-side machine produced: bytes for the browser and, at its end, the switch to relaying. */
  private onBrowserStep(step: HandshakeStep): void {
    const splice = this.splice;
    if (!splice) return;
    const open = this.ws.readyState === this.ws.OPEN;
    for (const b of step.send) if (open) this.ws.send(b);
    if (!step.done) return;
    if (!step.done.ok) {
      this.handshakeDetail ??= `${step.done.failure.kind}: ${step.done.failure.detail}`;
      // The failure message went out as RFB's own "no security types + reason"; the close frame
      // repeats it for viewers that read close reasons.
      this.closeBrowser(CLOSE_INTERNAL_ERROR, step.done.failure.message);
      if (!this.tcp.destroyed) this.tcp.end();
      return;
    }
    if (!splice.serverDone?.ok) return; // cannot happen: the browser side ends after the server's
    // Both sides are through: from here on bytes pass unchanged.
    this.splice = null;
    clearTimeout(this.connectTimer);
    this.pending = null;
    const up = step.done.rest;
    if (up.length) {
      if (this.input?.browser(up)) this.lastInput = Date.now();
      this.tcp.write(up);
    }
    const down = splice.serverRest;
    if (down?.length && open) this.ws.send(down);
  }

  /**
   * The target's FIN, or a reset in disguise: libuv before 1.52 (Node 20) reports EOF instead of
   * ECONNRESET when an RST arrives while unread data is queued (libuv/libuv#4997). A zero-byte
   * write tells them apart: the kernel answers it with the pending ECONNRESET, which arrives as
   * 'error' (onTargetError); after a real FIN it succeeds and the end is handled as one.
   */
  private readonly onTargetEnd = (): void => {
    if (this.tcp.destroyed || this.tcp.writableEnded) {
      this.onTargetFin();
      return;
    }
    this.tcp.write(EMPTY, (err) => {
      if (err) return; // reported through 'error'
      this.onTargetFin();
      this.tcp.end();
    });
  };

  private onTargetFin(): void {
    if (this.splice) {
      this.onSpliceTargetGone(true);
      return;
    }
    if (this.greeting !== null) {
      this.closeBrowser(CLOSE_INTERNAL_ERROR, `not a VNC server: ${this.label} closed without an RFB greeting`);
      return;
    }
    // Every byte the target sent has been handed to the WebSocket; the close frame follows it.
    this.closeBrowser(CLOSE_NORMAL, 'target closed');
  }

  /**
   * The server connection ended during the spliced handshake: `byServer` for its FIN, false when
   * it was reset or dropped by the relay (timeout, browser gone). After a failure the browser's
   * version may still be on its way: it gets the RFB failure message then (or the close reason
   * at the handshake timeout). Otherwise the server hung up mid-handshake.
   */
  private onSpliceTargetGone(byServer: boolean): void {
    const splice = this.splice!;
    if (splice.serverDone && !splice.serverDone.ok) return;
    if (!splice.server.greeted) {
      this.closeBrowser(CLOSE_INTERNAL_ERROR, `not a VNC server: ${this.label} closed without an RFB greeting`);
      return;
    }
    const detail = 'server closed during the handshake';
    this.handshakeDetail ??= `protocol: ${detail}`;
    if (splice.serverDone === null) {
      // A 3.3/3.7 server closes after a wrong password without a reason: that is the usual cause.
      // Only its own FIN is its verdict; a reset or the relay's own teardown is not.
      const rejected = byServer && splice.server.awaitingResult;
      this.onServerDone(splice, {
        ok: false,
        failure: {
          kind: rejected ? 'auth' : 'protocol',
          message: rejected
            ? `authentication failed: ${this.label} did not accept the VNC password stored in the settings (it closed the connection)`
            : `VNC handshake with ${this.label} failed: the server closed the connection`,
          detail,
        },
      });
      return;
    }
    this.closeBrowser(CLOSE_INTERNAL_ERROR, `VNC handshake with ${this.label} failed: the server closed the connection`);
  }

  private readonly onTargetError = (err: NodeJS.ErrnoException): void => {
    const failed = this.splice?.serverDone;
    if (failed && !failed.ok) return; // the failure is what the browser hears about
    this.closeBrowser(CLOSE_INTERNAL_ERROR, `${err.code ?? err.message} ${this.label}`);
  };

  private readonly onConnectTimeout = (): void => {
    this.closeBrowser(CLOSE_INTERNAL_ERROR, `ETIMEDOUT ${this.label}`);
    this.tcp.destroy();
  };

  private readonly onTargetClose = (): void => {
    this.tcpClosed = true;
    if (this.splice && this.splice.serverDone?.ok !== false) this.onSpliceTargetGone(false);
    // After a failed spliced handshake the browser may still be waiting to be told (its
    // version first); the handshake timer bounds that.
    if (this.splice?.serverDone?.ok !== false) {
      clearTimeout(this.connectTimer);
      // Closed without 'end' or 'error' (destroyed, reset): still tell the browser.
      if (this.greeting !== null && this.connected) {
        this.closeBrowser(CLOSE_INTERNAL_ERROR, `not a VNC server: ${this.label} closed without an RFB greeting`);
      } else this.closeBrowser(CLOSE_NORMAL, 'target closed');
    }
    if (this.wsClosed) this.finish();
  };

  // ---- teardown ----------------------------------------------------------------------------

  /** Whatever side is still open after `closeTimeout` is destroyed: no half-open pairs. */
  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => {
      if (!this.wsClosed) this.ws.terminate();
      if (!this.tcpClosed) this.tcp.destroy();
    }, this.options.closeTimeout);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.closeTimer);
    this.onEnd(this, {
      code: this.closeCode ?? CLOSE_NO_STATUS,
      reason: this.closeReason,
      detail: this.handshakeDetail,
      durationMs: Date.now() - this.startedAt,
    });
  }
}
