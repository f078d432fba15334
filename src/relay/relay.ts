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
import { IdleWatch } from './idle-watch.js';
import { SMALL_READ, frameBuffer, giveSlab, readBuffer, takeSlab } from './read-pool.js';
import { VncLogin, type LoginFailure, type LoginPorts } from './vnc-login.js';
import { GreetingWait } from '../rfb/protocol.js';
import { ClientFilter, FILTER_INPUT, FILTER_LOST, FILTER_UNKNOWN, type FilterMode } from '../rfb/client-filter.js';
import { refusalAfterGreeting, type HandshakeOutcome } from '../rfb/security-proxy.js';
import { FAILURES, LOCKOUT_REASON, REACH_FAILURES, errnoKind, failureOf, type FailureKind } from '../common/failures.js';

/** Where a session connects to. `id`/`name` come from the configuration when there is one. */
export interface RelayTarget {
  host: string;
  port: number;
  id?: string | undefined;
  name?: string | undefined;
  /**
   * Milliseconds without user input (keys, pointer, clipboard) after which a session is closed
   * with 4001 "idle"; absent or 0 for never.
   */
  idleMs?: number | undefined;
  /**
   * Who operates the screen (see config/schema.ts): `on-request`, `immediate` or `watch-only`;
   * sessions watch (the relay drops their input) until they hold control. The supervisor always
   * sets it; absent (a target from no configuration: the `relay` command) every session operates.
   */
  control?: 'on-request' | 'immediate' | 'watch-only' | undefined;
  /** A controlling session may change the remote screen's size (SetDesktopSize). Default false. */
  allowResize?: boolean | undefined;
}

/** Who a session belongs to, as the relay's control board and the sessions list show it. */
export interface SessionOwner {
  /** The user name from the login ("local" with authentication off). */
  user: string;
  role: 'watch' | 'operate' | 'manage';
  /** The viewer page's own random id (`&viewer=` on the WebSocket URL), if it sent one. */
  viewerId: string | undefined;
  /** The client's address (behind the ctrlX proxy: the last X-Forwarded-For entry). */
  address: string;
}

/** What a session tells its relay besides its end: user input seen, idle warnings, a resize. */
export interface SessionHooks {
  /** Input (passed or dropped) after an idle warning: the warning is over. */
  idleCleared?(session: RelaySession): void;
  /** A minute (or less) of idle time left. */
  idleWarning?(session: RelaySession, secondsLeft: number): void;
}

/** Tunables of a session, all filled in by the {@link Relay}. */
export interface SessionOptions {
  /** Milliseconds for the TCP connection to the target, and again for its greeting or the VNC login. */
  connectTimeoutMs: number;
  /** Bytes queued towards the browser above which reading from the target pauses. */
  highWaterMark: number;
  /** Milliseconds a side gets to finish closing before it is destroyed. */
  closeTimeoutMs: number;
  /** Milliseconds of idle time before TCP keep-alive probes start on the target socket. */
  keepAliveDelayMs: number;
  /**
   * Require the target to open with an RFB ProtocolVersion greeting (`RFB xxx.yyy\n`) within
   * `connectTimeoutMs`; otherwise close with "not a VNC server". Browser bytes are held until
   * the greeting is seen, so nothing reaches a non-VNC service.
   */
  requireRfb: boolean;
  /**
   * Reports how the relay's own RFB security handshake with the server ended (sessions with a
   * stored password only), e.g. to back off after rejected passwords.
   */
  onHandshake?: ((target: RelayTarget, outcome: HandshakeOutcome) => void) | undefined;
  /**
   * Reports once per session whether it reached a usable VNC server: `ok` when it starts relaying
   * (or its login succeeded), else, at its end, the failure kind when it is one of
   * {@link REACH_FAILURES} (sessions the viewer or the app ended first report nothing).
   */
  onReach?: ((target: RelayTarget, reach: ReachOutcome) => void) | undefined;
}

/** Whether a session reached a usable VNC server at its target, and if not, why. */
export type ReachOutcome = { ok: true } | { ok: false; kind: FailureKind };

/** Secrets for one session; kept apart from {@link RelayTarget}, which is shown in status and logs. */
export interface SessionSecrets {
  /**
   * The target's stored VNC password. With one, the relay does the RFB security handshake with
   * the server itself and offers the browser security type None: the password never reaches it.
   */
  password?: string | undefined;
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

/**
 * Why a session ended: a kind of the failure table (src/common/failures.ts; `target-closed` is the
 * normal end), or the viewer's own doing: it closed (`viewer-closed`) or vanished or was dropped
 * without a close frame (`viewer-gone`).
 */
export type EndKind = FailureKind | 'viewer-closed' | 'viewer-gone';

/** How a session ended, reported once through `onEnd`. */
export interface SessionEnd {
  /** The first cause of the end. */
  kind: EndKind;
  /**
   * The close code the browser was sent: the relay's own (the kind's code in the table) or, when
   * the browser closed first, the echo of its code; 1006 when no close frame was sent (the
   * browser vanished or was dropped).
   */
  code: number;
  /** Short reason, e.g. `ECONNREFUSED 10.0.0.5:5900` or `target closed`. */
  reason: string;
  /** For a failed handshake done by the relay: what exactly happened, for the log only. */
  detail?: string | undefined;
  durationMs: number;
}

// WebSocket close codes of RFC 6455 §7.4.1 the relay meets besides those in the failure table.
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_ABNORMAL = 1006;

/** Close reasons must fit a control frame: 123 bytes of UTF-8. */
function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = reason.slice(0, 123);
  while (Buffer.byteLength(out) > 120) out = out.slice(0, -1);
  return `${out}...`;
}

/** The zero-byte write that tells a FIN from a reset reported as EOF (see onTargetEnd). */
const EMPTY = Buffer.alloc(0);

/** The phases of a session, in order; see {@link RelaySession}. */
type Phase = 'connecting' | 'greeting' | 'login' | 'relaying' | 'closed';

const NEXT: Readonly<Record<Phase, readonly Phase[]>> = {
  connecting: ['greeting', 'login', 'relaying', 'closed'],
  greeting: ['relaying', 'closed'],
  login: ['relaying', 'closed'],
  relaying: ['closed'],
  closed: [],
};

/**
 * Pairs a browser WebSocket with a TCP connection to `target`. Its phases, each entered once
 * through {@link RelaySession.enter} (the table `NEXT` lists the moves allowed):
 *
 * ```
 *  connecting ──TCP up──┬──────────────────────────────► relaying ──► closed
 *      │                ├─► greeting ──RFB greeting──►──┤              ▲
 *      │                └─► login ─────both through──►──┘              │
 *      └──────────────── any phase: both sides closed ─────────────────┘
 * ```
 *
 * | phase      | browser bytes               | target bytes                        | deadline         |
 * |------------|-----------------------------|-------------------------------------|------------------|
 * | connecting | held (`pending`)            | none yet                            | connect timeout  |
 * | greeting   | held (`pending`)            | checked for `RFB xxx.yyy\n`         | connect timeout  |
 * | login      | to the {@link VncLogin}     | to the {@link VncLogin}             | connect timeout  |
 * | relaying   | to the target, unchanged    | to the browser, unchanged           | idle timeout     |
 * | closed     | dropped                     | dropped                             | –                |
 *
 * `greeting` only with `requireRfb`, `login` only with a stored password. Closing is not a phase:
 * each side closes on its own (`browserClosed`, `targetClosed`) while the bytes already in flight
 * drain the way the current phase sends them, bounded by the close timer; `closed` follows once
 * both are. The first cause of the end (`cause`) and the close code sent (`codeSent`) are noted
 * once, for {@link SessionEnd}.
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
  /** The session's public id (random, URL-safe): the sessions API and the audit trail name it. */
  sessionId = '';
  /** Who it belongs to; set by the relay before the session does anything. */
  owner: SessionOwner = { user: 'local', role: 'manage', viewerId: undefined, address: '' };
  /** Since when it is in its current mode. */
  modeSince = Date.now();
  hooks: SessionHooks = {};
  /** The watch filter on the browser's messages (see rfb/client-filter.ts). */
  readonly filter: ClientFilter;

  private readonly ws: WebSocket;
  private readonly browser: Duplex;
  private readonly tcp: net.Socket;
  private readonly options: SessionOptions;
  private readonly onEnd: (session: RelaySession, end: SessionEnd) => void;
  private readonly label: string;
  private phase: Phase = 'connecting';
  /** Connecting, greeting: browser messages held until the target is up and proven. */
  private pending: Buffer[] = [];
  /** Greeting: the target's first bytes, until they are `RFB xxx.yyy\n`. */
  private greeting: GreetingWait | null = null;
  /** Login: the relay's VNC login (stored password); null without a password. */
  private readonly login: VncLogin | null;
  /** The deadline of the connecting, greeting and login phases. */
  private deadline: NodeJS.Timeout | undefined;
  private readonly idle: IdleWatch | null;
  private downPaused = false;
  private connected = false;
  private browserClosed = false;
  private targetClosed = false;
  private closeTimer: NodeJS.Timeout | undefined;
  /** The reason ws gave for closing the browser on a protocol error, if it did. */
  private browserFailed: string | undefined;
  private cause: { kind: EndKind; reason: string; detail: string | undefined } | null = null;
  private codeSent: number | undefined;
  /** A write to the target filled its buffer during the current filter pass. */
  private upBlocked = false;
  /** The session told `onReach` that it reached the VNC server. */
  private reached = false;

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
    this.login = secrets.password !== undefined ? new VncLogin(secrets.password, this.label, this.loginPorts()) : null;
    this.filter = new ClientFilter(this.login !== null);
    this.filter.allowResize = target.allowResize === true;
    const idleMs = target.idleMs ?? 0;
    this.idle =
      idleMs > 0
        ? new IdleWatch(idleMs, this.onIdle, {
            warn: (secondsLeft) => this.hooks.idleWarning?.(this, secondsLeft),
            cleared: () => this.hooks.idleCleared?.(this),
          })
        : null;

    // Nothing goes to the target before it is connected: hold the browser until then.
    ws.pause();
    ws.on('message', this.onBrowserMessage);
    ws.on('close', this.onBrowserClose);
    ws.on('error', this.onBrowserError);
    ws.on('pong', this.onPong);
    browserSocket.on('drain', this.onBrowserDrain);

    this.tcp = net.connect({
      host: target.host,
      port: target.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: options.keepAliveDelayMs,
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
    this.deadline = setTimeout(this.onDeadline, options.connectTimeoutMs);
  }

  /** True while the relay is doing the security handshake with the server for this session. */
  get authenticating(): boolean {
    return this.phase === 'login' && this.login!.authenticating;
  }

  /** False once the browser side has closed (the server side may still be finishing). */
  get browserOpen(): boolean {
    return !this.browserClosed;
  }

  /** `watch` (input dropped) or `control`. */
  get mode(): FilterMode {
    return this.filter.mode;
  }

  /**
   * Moves the session to `mode` (from its next message on). A session whose stream cannot be
   * checked (see {@link ClientFilter.failedOpen}) cannot watch: it is ended instead.
   */
  setMode(mode: FilterMode): void {
    if (this.filter.mode === mode) return;
    this.filter.mode = mode;
    this.modeSince = Date.now();
    if (mode === 'watch' && this.filter.failedOpen) this.closeWith('unknown-client-message', 'cannot check the viewer messages of a watching session');
  }

  /** User input messages the relay dropped from this session. */
  get refusedInput(): number {
    return this.filter.refused;
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
   * Closes the session from the server side with `kind`'s close code: the browser gets it after
   * every byte already received from the target, the target gets what the browser already sent,
   * then FIN.
   */
  close(kind: FailureKind, reason: string): void {
    this.closeWith(kind, reason);
  }

  /** Drops both sides at once, without a closing handshake (shutdown deadline passed). */
  destroy(): void {
    this.noteCause('shutting-down', 'terminated');
    if (!this.browserClosed) this.ws.terminate();
    if (!this.targetClosed) this.tcp.destroy();
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
      this.noteCause('viewer-gone', 'no pong from browser');
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  // ---- phases --------------------------------------------------------------------------------

  /** Moves to `next` if the table allows it; false (and no change) otherwise. */
  private enter(next: Phase): boolean {
    if (!NEXT[this.phase].includes(next)) return false;
    this.phase = next;
    if (next === 'relaying' || next === 'closed') clearTimeout(this.deadline);
    if (next === 'relaying') this.reachedServer();
    return true;
  }

  /** Tells `onReach` (once) that the target is a VNC server that let this session through. */
  private reachedServer(): void {
    if (this.reached) return;
    this.reached = true;
    this.options.onReach?.(this.target, { ok: true });
  }

  /** Target connected: check its greeting, log in, or relay at once. */
  private readonly onTargetConnect = (): void => {
    clearTimeout(this.deadline);
    this.connected = true;
    if (this.login) {
      this.enter('login');
    } else if (this.options.requireRfb) {
      this.enter('greeting');
      this.greeting = new GreetingWait();
    } else {
      this.startRelaying();
      return;
    }
    // Browser bytes wait until the target has proven to be a VNC server.
    this.deadline = setTimeout(this.onDeadline, this.options.connectTimeoutMs);
  };

  /** Enters relaying from connecting or greeting: what the browser sent so far goes to the target. */
  private startRelaying(): void {
    if (!this.enter('relaying')) return;
    const pending = this.pending;
    this.pending = [];
    for (const chunk of pending) this.upstream(chunk);
    const full = this.upBlocked;
    this.upBlocked = false;
    if (this.browserClosed) {
      this.tcp.end();
      return;
    }
    if (!full) this.ws.resume();
  }

  /** The connect timeout, or the greeting or login deadline after it. */
  private readonly onDeadline = (): void => {
    if (this.phase === 'connecting') this.closeWith('connect-timeout', `ETIMEDOUT ${this.label}`);
    else if (this.phase === 'login') this.closeWithLogin(this.login!.timedOut());
    else this.closeWith('not-vnc', `not a VNC server: no RFB greeting from ${this.label}`);
    this.tcp.destroy();
  };

  private readonly onIdle = (): void => {
    this.closeWith('idle', `idle: no input for ${this.idle!.span()}`);
  };

  // ---- browser side --------------------------------------------------------------------------

  private readonly onBrowserMessage = (data: RawData, isBinary: boolean): void => {
    if (!isBinary) {
      this.closeWith('text-message', 'text frames are not supported');
      return;
    }
    // binaryType is 'nodebuffer': fragments arrive joined, so `data` is one Buffer.
    const chunk = data as Buffer;
    this.bytesUp += chunk.length;
    if (this.phase !== 'relaying') {
      this.browserBytesBeforeRelaying(chunk);
      return;
    }
    this.upstream(chunk);
    if (this.upBlocked) {
      this.upBlocked = false;
      this.ws.pause();
    }
  };

  /**
   * Browser bytes towards the target through the watch filter: what passes is written, input
   * (passed or dropped) counts for the idle timeout, an unknown message ends the session.
   */
  private upstream(chunk: Buffer): void {
    const flags = this.filter.push(chunk, this.writeUp);
    if (flags & FILTER_INPUT) this.idle?.input();
    if (flags & FILTER_UNKNOWN) {
      this.closeWith('unknown-client-message', `unknown client message type ${this.filter.unknownType}`);
    } else if (flags & FILTER_LOST && this.filter.mode === 'watch') {
      this.closeWith('unknown-client-message', 'cannot check the viewer messages of a watching session (security type)');
    }
  }

  private readonly writeUp = (bytes: Buffer): void => {
    if (this.tcp.destroyed || this.tcp.writableEnded) return;
    if (!this.tcp.write(bytes)) this.upBlocked = true;
  };

  private browserBytesBeforeRelaying(chunk: Buffer): void {
    if (this.phase === 'login') {
      this.login!.fromBrowser(chunk);
      return;
    }
    if (this.phase === 'closed') return;
    this.pending.push(chunk);
  }

  private readonly onTargetDrain = (): void => {
    if (!this.browserClosed) this.ws.resume();
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
    // ws closes the connection itself with the matching code (1002, 1007, 1009); the kind
    // follows from that code in onBrowserClose.
    this.browserFailed = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message too big' : err.message;
  };

  private readonly onBrowserClose = (code: number, reason: Buffer): void => {
    this.browserClosed = true;
    this.browser.removeListener('drain', this.onBrowserDrain);
    this.codeSent ??= code;
    if (this.browserFailed !== undefined) this.noteCause(failureOf(code) ?? 'viewer-gone', this.browserFailed);
    else this.noteCause(code === CLOSE_ABNORMAL ? 'viewer-gone' : 'viewer-closed', reason.length ? reason.toString() : 'browser closed');
    if (this.targetClosed) {
      this.finish();
      return;
    }
    if (this.phase === 'login') {
      // Mid-login the server has nothing of the browser's to receive. But a connection dropped
      // before its authentication counts as a failed login towards the server's own lockout
      // (TigerVNC blacklists the address after a few), and this controller is one address for
      // every viewer: while the server side is still being logged in, finish that first (the
      // login's serverOutcome then ends the connection; the deadline and close timer bound it).
      if (this.login!.authenticating) {
        this.tcp.resume();
        this.armCloseTimer();
      } else if (this.login!.state === 'browser') {
        this.tcp.end(); // logged in: a clean end
        this.armCloseTimer();
      } else {
        this.tcp.destroy();
      }
      return;
    }
    // Whatever the browser sent still reaches the target, then FIN (end() flushes first).
    if (this.phase === 'relaying') this.tcp.end();
    this.tcp.resume();
    this.armCloseTimer();
  };

  /** Notes `kind` as the cause (if none yet) and sends the browser its close code, once. */
  private closeWith(kind: FailureKind, reason: string, detail?: string): void {
    if (this.browserClosed || this.ws.readyState !== this.ws.OPEN) return;
    this.noteCause(kind, reason, detail);
    this.codeSent ??= FAILURES[kind].code;
    // The close frame is queued behind all data already sent.
    this.ws.close(FAILURES[kind].code, clampReason(reason));
    // Keep reading so the browser's answering close frame is seen (the socket may be paused).
    this.ws.resume();
    this.armCloseTimer();
  }

  private closeWithLogin(failure: LoginFailure): void {
    this.closeWith(failure.kind, failure.message, failure.detail);
  }

  private noteCause(kind: EndKind, reason: string, detail?: string): void {
    if (this.cause === null) this.cause = { kind, reason, detail };
    else this.cause.detail ??= detail;
  }

  // ---- target side ---------------------------------------------------------------------------

  /** Copies one read out of the shared {@link readBuffer} and relays it. Never pauses (true). */
  private onTargetRead(n: number, buf: Uint8Array): boolean {
    if (n <= SMALL_READ) {
      if (this.phase === 'relaying' && this.ws.readyState === this.ws.OPEN) this.frameSmallRead(n);
      else this.onTargetData(Buffer.from(buf.subarray(0, n)));
      return true;
    }
    const slab = takeSlab();
    slab.set(buf.subarray(0, n));
    this.onTargetData(slab.subarray(0, n), () => giveSlab(slab));
    return true;
  }

  /**
   * A small read while relaying (a VNC server's answer to a key or pointer event, an incremental
   * update): framed here as one binary WebSocket message (RFC 6455 §5.2, server frames unmasked)
   * in one buffer, copied once out of the read buffer, and written to the browser socket in one
   * write. `ws.send` would copy the bytes out first, then write a separate header and the payload
   * corked (a writev with its request, array and callback objects): about a third of the
   * relay's allocation per round trip, and with it the scavenges, for the same bytes on the wire.
   * Equivalent because the server has no per-message compression (relay-server.ts), so ws's
   * sender writes each frame at once and in call order, and frames only whole messages: a frame
   * written here lands exactly where `ws.send` would have put it. `bufferedAmount` counts it too.
   */
  private frameSmallRead(n: number): void {
    this.bytesDown += n;
    const head = n < 126 ? 2 : 4; // n <= SMALL_READ: a 7-bit or a 16-bit length
    const frame = frameBuffer(head + n);
    frame[0] = 0x82; // FIN, binary
    if (head === 2) frame[1] = n;
    else {
      frame[1] = 126;
      frame.writeUInt16BE(n, 2);
    }
    readBuffer.copy(frame, head, 0, n); // the read is in readBuffer (onread); copy() makes no view of it
    // Only the server's first bytes matter to the filter: no view of the frame once they are read.
    if (this.filter.wantsServer) this.filter.server(frame.subarray(head));
    this.browser.write(frame);
    if (this.ws.bufferedAmount >= this.options.highWaterMark) {
      this.downPaused = true;
      this.tcp.pause();
    }
  }

  /** `sent` runs once the chunk has been written to the browser socket (not if it is dropped). */
  private onTargetData(chunk: Buffer, sent?: () => void): void {
    this.bytesDown += chunk.length;
    if (this.phase !== 'relaying') {
      this.targetBytesBeforeRelaying(chunk, sent);
      return;
    }
    this.filter.server(chunk);
    this.toBrowser(chunk, sent);
  }

  private toBrowser(chunk: Buffer, sent?: () => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return; // browser gone: drain and drop
    this.ws.send(chunk, sent);
    if (this.ws.bufferedAmount >= this.options.highWaterMark) {
      this.downPaused = true;
      this.tcp.pause();
    }
  }

  private targetBytesBeforeRelaying(chunk: Buffer, sent: (() => void) | undefined): void {
    if (this.phase === 'login') {
      // The login keeps views of its bytes: copy out of a slab before recycling it.
      this.login!.fromServer(sent ? Buffer.from(chunk) : chunk);
      sent?.();
      return;
    }
    if (this.phase !== 'greeting') {
      sent?.(); // closed: dropped
      return;
    }
    this.filter.server(chunk);
    const got = this.greeting!.push(chunk); // a copy: the slab can go back
    sent?.();
    if (got === 'wait') return;
    if (got === 'invalid') {
      this.closeWith('not-vnc', `not a VNC server: ${this.label} sent no RFB greeting`);
      this.tcp.destroy();
      return;
    }
    this.greeting = null;
    if (this.lockedOut(got)) return;
    this.startRelaying();
    this.toBrowser(got);
  }

  /**
   * A server that locks this controller out answers at once with a 3.3 greeting, no security
   * type and "Too many security failures" (TigerVNC): say so with `server-lockout` rather than
   * pass it on as a failed login the viewer would blame on the password. True when it did.
   */
  private lockedOut(got: Buffer): boolean {
    const reason = refusalAfterGreeting(got);
    if (typeof reason !== 'string' || !LOCKOUT_REASON.test(reason)) return false;
    const message = `VNC server ${this.label} locks this controller out for now: ${reason.slice(0, 60)}`;
    const detail = `server reason "${reason}"`;
    this.options.onHandshake?.(this.target, { ok: false, failure: { kind: 'lockout', message, detail } });
    this.closeWith('server-lockout', message, `lockout: ${detail}`);
    this.tcp.end();
    return true;
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
    if (this.phase === 'login') {
      const failure = this.login!.serverGone(true);
      if (failure) this.closeWithLogin(failure);
    } else if (this.phase === 'greeting') {
      this.closeWith('not-vnc', `not a VNC server: ${this.label} closed without an RFB greeting`);
    } else {
      // Every byte the target sent has been handed to the WebSocket; the close frame follows it.
      this.closeWith('target-closed', 'target closed');
    }
  }

  private readonly onTargetError = (err: NodeJS.ErrnoException): void => {
    if (this.phase === 'login' && this.login!.state !== 'server' && this.login!.state !== 'browser') return; // the login failure is what the browser hears about
    this.closeWith(errnoKind(err.code), `${err.code ?? err.message} ${this.label}`);
  };

  private readonly onTargetClose = (): void => {
    this.targetClosed = true;
    if (this.phase === 'login') {
      const failure = this.login!.serverGone(false);
      if (failure) this.closeWithLogin(failure);
    }
    // After a failed login the browser may still be waiting to be told (its version first); the
    // deadline bounds that. Otherwise the browser hears now, if it has not yet.
    if (!(this.phase === 'login' && this.login!.state === 'refusing')) {
      clearTimeout(this.deadline);
      // Closed without 'end' or 'error' (destroyed, reset): still tell the browser.
      if (this.phase === 'greeting') this.closeWith('not-vnc', `not a VNC server: ${this.label} closed without an RFB greeting`);
      else this.closeWith('target-closed', 'target closed');
    }
    if (this.browserClosed) this.finish();
  };

  // ---- the login (stored password) -----------------------------------------------------------

  private loginPorts(): LoginPorts {
    return {
      toServer: (bytes) => {
        this.tcp.write(bytes);
      },
      toBrowser: (bytes) => {
        if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes);
      },
      browserGreeted: () => this.ws.resume(),
      serverOutcome: (outcome) => {
        this.options.onHandshake?.(this.target, outcome);
        if (outcome.ok) this.reachedServer();
        // The viewer left during the login: the server side is through now, end it cleanly.
        if (outcome.ok && this.browserClosed) this.tcp.end();
      },
      serverFailed: (failure) => {
        this.noteCause(failure.kind, failure.message, failure.detail);
        this.tcp.end();
      },
      through: (up, down) => {
        if (!this.enter('relaying')) return;
        this.pending = [];
        if (up.length) this.upstream(up);
        this.upBlocked = false;
        if (down?.length && this.ws.readyState === this.ws.OPEN) this.ws.send(down);
      },
      failed: (failure) => {
        this.closeWithLogin(failure);
        if (failure.drop) this.tcp.destroy();
        else if (!this.tcp.destroyed) this.tcp.end();
      },
    };
  }

  // ---- teardown ------------------------------------------------------------------------------

  /** Whatever side is still open after `closeTimeoutMs` is destroyed: no half-open pairs. */
  private armCloseTimer(): void {
    if (this.closeTimer) return;
    this.closeTimer = setTimeout(() => {
      if (!this.browserClosed) this.ws.terminate();
      if (!this.targetClosed) this.tcp.destroy();
    }, this.options.closeTimeoutMs);
  }

  private finish(): void {
    if (!this.enter('closed')) return;
    this.idle?.stop();
    clearTimeout(this.closeTimer);
    const cause = this.cause ?? { kind: 'viewer-closed', reason: '', detail: undefined };
    if (!this.reached && REACH_FAILURES.has(cause.kind as FailureKind)) this.options.onReach?.(this.target, { ok: false, kind: cause.kind as FailureKind });
    this.onEnd(this, {
      kind: cause.kind,
      code: this.codeSent ?? CLOSE_NO_STATUS,
      reason: cause.reason,
      detail: cause.detail,
      durationMs: Date.now() - this.startedAt,
    });
  }
}
