/**
 * @module
 * One viewer connected to the demo server: the RFB handshake (3.3, 3.7, 3.8; None or VNC
 * Authentication), then client messages parsed by exact byte counts across any TCP chunking, and
 * raw-encoded framebuffer updates of what changed inside the requested rectangle.
 */
import type net from 'node:net';
import type { Logger } from '../log.js';
import {
  compareVersions,
  ENCODING_RAW,
  formatVersion,
  knownVersion,
  lengthPrefixed,
  MSG_CLIENT_CUT_TEXT,
  MSG_FRAMEBUFFER_UPDATE,
  MSG_FRAMEBUFFER_UPDATE_REQUEST,
  MSG_KEY_EVENT,
  MSG_POINTER_EVENT,
  MSG_SET_ENCODINGS,
  MSG_SET_PIXEL_FORMAT,
  parseVersion,
  SECURITY_NONE,
  SECURITY_RESULT_FAILED,
  SECURITY_RESULT_OK,
  SECURITY_VNC_AUTH,
  u32,
  VERSION_LENGTH,
  type RfbVersion,
} from '../rfb/protocol.js';
import { ByteQueue } from '../rfb/byte-queue.js';
import { CLIENT_MESSAGES } from '../rfb/client-messages.js';
import {
  bytesPerPixel,
  createRectEncoder,
  DEFAULT_PIXEL_FORMAT,
  pixelFormatProblem,
  readPixelFormat,
  writePixelFormat,
  type PixelFormat,
  type RectEncoder,
} from '../rfb/pixel-format.js';
import { checkVncAuthResponse, vncAuthChallenge, VNC_AUTH_CHALLENGE_LENGTH } from '../rfb/vnc-auth.js';
import { bounds, DirtyRegion, intersect, type Rect } from './rect.js';
import type { DemoScene } from './scene.js';

/** How the server greets: normally, not at all, with a non-RFB banner, or one byte at a time. */
export type DemoGreeting = 'normal' | 'silent' | 'garbage' | 'slow';

/** What a `garbage` server sends instead of a ProtocolVersion: an SSH banner, a classic wrong port. */
export const GARBAGE_BANNER = 'SSH-2.0-OpenSSH_9.2p1 ctrlx-novnc-demo-garbage\r\n';

/** Settings every session of one server shares (already validated). */
export interface SessionConfig {
  version: RfbVersion;
  password: string | undefined;
  name: string;
  greeting: DemoGreeting;
  slowDelay: number;
  refuse: string | undefined;
  maxCutText: number;
  handshakeTimeout: number;
}

/** How a session ended, for the server's `disconnect` event and log. */
export interface SessionEnd {
  id: number;
  peer: string;
  /** Why: a protocol error, `client closed`, `server closed` or a socket error code. */
  reason: string;
  bytesRead: number;
  bytesWritten: number;
}

/** What the session needs from its server. */
export interface SessionHost {
  readonly scene: DemoScene;
  readonly config: SessionConfig;
  readonly log: Logger;
  /** The session finished its handshake and will now ask for updates. */
  ready(session: DemoSession): void;
  /** The socket closed. */
  closed(session: DemoSession, end: SessionEnd): void;
}

type Phase = 'version' | 'security' | 'auth' | 'init' | 'normal' | 'ignore' | 'closing';

/** Bytes queued on the socket above which updates wait for `drain`. */
const HIGH_WATER = 4 * 1024 * 1024;
/** Milliseconds a closing socket gets to flush before it is destroyed. */
const LINGER = 2000;
/** Largest rectangle count in one FramebufferUpdate (a U16). */
const MAX_RECTS = 0xffff;

/** The client messages of the RFB core, the ones the demo understands. */
const CORE_MESSAGES = new Set([
  MSG_SET_PIXEL_FORMAT,
  MSG_SET_ENCODINGS,
  MSG_FRAMEBUFFER_UPDATE_REQUEST,
  MSG_KEY_EVENT,
  MSG_POINTER_EVENT,
  MSG_CLIENT_CUT_TEXT,
]);

export class DemoSession {
  readonly id: number;
  readonly peer: string;
  /** The version agreed with the client, once known. */
  version: RfbVersion | undefined;
  /** The security type the client chose (or the 3.3 server imposed). */
  security: 'none' | 'vnc-auth' | undefined;
  pixelFormat: PixelFormat = DEFAULT_PIXEL_FORMAT;
  encodings: number[] = [];
  private readonly socket: net.Socket;
  private readonly host: SessionHost;
  private readonly log: Logger;
  private encoder: RectEncoder = createRectEncoder(DEFAULT_PIXEL_FORMAT);
  private phase: Phase = 'version';
  /** Bytes received and not yet parsed. */
  private readonly input = new ByteQueue();
  private challenge: Buffer | undefined;
  private readonly dirty = new DirtyRegion();
  /** Union of the rectangles requested and not answered yet. */
  private pending: Rect | undefined;
  private flushQueued = false;
  private waitingDrain = false;
  /** `slow` greeting: bytes still to send; handshake chunks go one byte per tick. */
  private readonly drip: { data: Buffer; slow: boolean }[] = [];
  private dripTimer: NodeJS.Timeout | undefined;
  private endAfterDrip = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private endReason: string | undefined;

  constructor(id: number, socket: net.Socket, peer: string, host: SessionHost) {
    this.id = id;
    this.socket = socket;
    this.peer = peer;
    this.host = host;
    this.log = host.log;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.endReason ??= err.code ?? err.message;
    });
    socket.on('close', () => this.onClose());

    const { config } = host;
    if (config.greeting === 'silent' || config.greeting === 'garbage') {
      // Test doubles for relays: no handshake and no timeout; input is read and dropped.
      this.phase = 'ignore';
      if (config.greeting === 'garbage') socket.write(GARBAGE_BANNER);
      return;
    }
    if (config.handshakeTimeout > 0) {
      this.handshakeTimer = setTimeout(() => this.fail('handshake timed out'), config.handshakeTimeout);
      this.handshakeTimer.unref();
    }
    this.send(formatVersion(config.version));
  }

  /** True once the handshake is done and updates can be sent. */
  get isReady(): boolean {
    return this.phase === 'normal';
  }

  /** Notes a changed rectangle; answers a waiting update request that covers it. */
  markDirty(rect: Rect): void {
    if (this.phase !== 'normal') return;
    this.dirty.add(rect);
    if (this.pending) this.scheduleFlush();
  }

  /** Closes the connection at once (server shutdown). */
  destroy(reason = 'server closed'): void {
    this.endReason ??= reason;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'ignore' || this.phase === 'closing') return;
    this.input.push(chunk);
    // Every step consumes one whole message or returns false to wait for more bytes, so the
    // input never holds more than one message (bounded by maxCutText or 4 + 4 * 65535 bytes).
    try {
      while (this.step()) {
        /* next message */
      }
    } catch (err) {
      // A bug in drawing or parsing must cost this client its connection, not the whole server.
      this.log.error('demo client handler failed', { id: this.id, error: (err as Error).message });
      this.endReason ??= 'internal error';
      this.phase = 'closing';
      this.socket.destroy();
    }
  }

  /** Takes `n` bytes off the input, or undefined when fewer have arrived. */
  private take(n: number): Buffer | undefined {
    return this.input.take(n) ?? undefined;
  }

  /** Handles one message of the current phase; false when waiting for bytes or closing. */
  private step(): boolean {
    switch (this.phase) {
      case 'version': {
        const bytes = this.take(VERSION_LENGTH);
        if (bytes) this.onVersion(bytes);
        return bytes !== undefined;
      }
      case 'security': {
        const bytes = this.take(1);
        if (bytes) this.onSecurityType(bytes[0]!);
        return bytes !== undefined;
      }
      case 'auth': {
        const bytes = this.take(VNC_AUTH_CHALLENGE_LENGTH);
        if (bytes) this.onAuthResponse(bytes);
        return bytes !== undefined;
      }
      case 'init': {
        const bytes = this.take(1);
        if (bytes) this.onClientInit();
        return bytes !== undefined;
      }
      case 'normal':
        return this.onMessage();
      default:
        return false;
    }
  }

  // ---- Handshake -------------------------------------------------------------------------------

  private onVersion(bytes: Buffer): void {
    const server = this.host.config.version;
    const numbers = parseVersion(bytes);
    const client = numbers && knownVersion(numbers);
    if (!client) {
      this.log.warn('client sent no valid ProtocolVersion', { id: this.id, peer: this.peer });
      this.refuse(server, 'unsupported protocol version');
      return;
    }
    if (compareVersions(client, server) > 0) {
      this.refuse(server, `client version ${client} is newer than the server's ${server}`);
      return;
    }
    this.version = client;
    if (this.host.config.refuse !== undefined) {
      this.refuse(client, this.host.config.refuse);
      return;
    }
    const type = this.host.config.password === undefined ? SECURITY_NONE : SECURITY_VNC_AUTH;
    if (client === '3.3') {
      // 3.3: the server decides and sends the type as a U32.
      this.send(u32(type));
      this.startSecurity(type);
    } else {
      this.send(Buffer.from([1, type]));
      this.phase = 'security';
    }
  }

  /** Refuses at the security step: 3.3 sends type 0 + reason, 3.7+ an empty list + reason. */
  private refuse(version: RfbVersion, reason: string): void {
    const head = version === '3.3' ? u32(0) : Buffer.from([0]);
    this.send(Buffer.concat([head, lengthPrefixed(reason)]));
    this.fail(`refused: ${reason}`);
  }

  private onSecurityType(type: number): void {
    const offered = this.host.config.password === undefined ? SECURITY_NONE : SECURITY_VNC_AUTH;
    if (type !== offered) {
      // 3.8 explains in a failed SecurityResult; 3.7 has no way to, so it just closes.
      const reason = `security type ${type} was not offered`;
      if (this.version === '3.8') this.send(Buffer.concat([u32(SECURITY_RESULT_FAILED), lengthPrefixed(reason)]));
      this.fail(reason);
      return;
    }
    this.startSecurity(type);
  }

  private startSecurity(type: number): void {
    if (type === SECURITY_VNC_AUTH) {
      this.security = 'vnc-auth';
      this.challenge = vncAuthChallenge();
      this.send(this.challenge);
      this.phase = 'auth';
      return;
    }
    this.security = 'none';
    // None: only 3.8 sends a SecurityResult.
    if (this.version === '3.8') this.send(u32(SECURITY_RESULT_OK));
    this.phase = 'init';
  }

  private onAuthResponse(response: Buffer): void {
    if (checkVncAuthResponse(this.host.config.password!, this.challenge!, response)) {
      this.send(u32(SECURITY_RESULT_OK));
      this.phase = 'init';
      return;
    }
    const reason = 'authentication failed';
    // VNC Authentication always ends with a SecurityResult; only 3.8 adds the reason.
    const tail = this.version === '3.8' ? lengthPrefixed(reason) : Buffer.alloc(0);
    this.send(Buffer.concat([u32(SECURITY_RESULT_FAILED), tail]));
    this.fail(reason);
  }

  private onClientInit(): void {
    const { fb } = this.host.scene;
    const head = Buffer.alloc(4);
    head.writeUInt16BE(fb.width, 0);
    head.writeUInt16BE(fb.height, 2);
    this.send(Buffer.concat([head, writePixelFormat(DEFAULT_PIXEL_FORMAT), lengthPrefixed(this.host.config.name)]));
    clearTimeout(this.handshakeTimer);
    this.phase = 'normal';
    // The client has no pixels yet: even an incremental first request gets the whole screen.
    this.dirty.add(fb.bounds);
    this.host.ready(this);
  }

  // ---- Normal phase ----------------------------------------------------------------------------

  /** Handles one client message if it has fully arrived; false to wait for more bytes. */
  private onMessage(): boolean {
    if (this.input.length === 0) return false;
    // The whole message is read in place (peek joins what arrived); take() then consumes it.
    const input = this.input.peek();
    const type = input[0]!;
    // The demo takes the six messages of the RFB core; others (noVNC sends none to it) end the session.
    const size = CORE_MESSAGES.has(type) ? CLIENT_MESSAGES[type]!.header : undefined;
    if (size === undefined) {
      this.fail(`unknown message type ${type}`);
      return false;
    }
    if (input.length < size) return false;
    const { scene } = this.host;
    switch (type) {
      case MSG_SET_PIXEL_FORMAT: {
        const pf = readPixelFormat(input, 4);
        const problem = pixelFormatProblem(pf);
        if (problem) {
          this.fail(`unsupported pixel format: ${problem}`);
          return false;
        }
        this.pixelFormat = pf;
        this.encoder = createRectEncoder(pf);
        break;
      }
      case MSG_SET_ENCODINGS: {
        const count = input.readUInt16BE(2);
        if (input.length < size + 4 * count) return false;
        this.encodings = Array.from({ length: count }, (_, i) => input.readInt32BE(size + 4 * i));
        this.take(size + 4 * count);
        return true;
      }
      case MSG_FRAMEBUFFER_UPDATE_REQUEST:
        this.onUpdateRequest(input[1] !== 0, {
          x: input.readUInt16BE(2),
          y: input.readUInt16BE(4),
          w: input.readUInt16BE(6),
          h: input.readUInt16BE(8),
        });
        break;
      case MSG_KEY_EVENT:
        scene.key(input.readUInt32BE(4), input[1] !== 0);
        break;
      case MSG_POINTER_EVENT:
        scene.pointer(input.readUInt16BE(2), input.readUInt16BE(4), input[1]!);
        break;
      case MSG_CLIENT_CUT_TEXT: {
        const length = input.readUInt32BE(4);
        // Checked before waiting for the text, so a huge length never makes us buffer it.
        if (length > this.host.config.maxCutText) {
          this.fail(`ClientCutText of ${length} bytes is over the ${this.host.config.maxCutText}-byte limit`);
          return false;
        }
        if (input.length < size + length) return false;
        scene.clipboard(input.toString('latin1', size, size + length));
        this.take(size + length);
        return true;
      }
    }
    this.take(size);
    return true;
  }

  private onUpdateRequest(incremental: boolean, requested: Rect): void {
    const rect = intersect(requested, this.host.scene.fb.bounds);
    if (!rect) {
      // Nothing on screen to send; a full request still deserves an (empty) answer.
      if (!incremental) this.writeUpdate([]);
      return;
    }
    if (!incremental) this.dirty.add(rect);
    this.pending = this.pending ? bounds(this.pending, rect) : rect;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    // Deferred so a burst of changes (a typed word, a drag) goes out as one update.
    setImmediate(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /** Answers the pending request with the dirty parts inside it, unless nothing there changed. */
  private flush(): void {
    if (this.phase !== 'normal' || !this.pending) return;
    if (this.socket.writableLength > HIGH_WATER) {
      if (!this.waitingDrain) {
        this.waitingDrain = true;
        this.socket.once('drain', () => {
          this.waitingDrain = false;
          this.scheduleFlush();
        });
      }
      return;
    }
    const rects = this.dirty.take(this.pending);
    if (rects.length === 0) return; // an incremental request waits for a change
    this.pending = undefined;
    this.writeUpdate(rects.slice(0, MAX_RECTS));
  }

  /** Sends one FramebufferUpdate with `rects` in raw encoding. */
  private writeUpdate(rects: Rect[]): void {
    const { fb } = this.host.scene;
    const bpp = bytesPerPixel(this.pixelFormat);
    const size = rects.reduce((n, r) => n + 12 + r.w * r.h * bpp, 4);
    const out = Buffer.allocUnsafe(size);
    out[0] = MSG_FRAMEBUFFER_UPDATE;
    out[1] = 0;
    out.writeUInt16BE(rects.length, 2);
    let offset = 4;
    for (const r of rects) {
      out.writeUInt16BE(r.x, offset);
      out.writeUInt16BE(r.y, offset + 2);
      out.writeUInt16BE(r.w, offset + 4);
      out.writeUInt16BE(r.h, offset + 6);
      out.writeInt32BE(ENCODING_RAW, offset + 8);
      offset = this.encoder(fb.data, fb.width, r.x, r.y, r.w, r.h, out, offset + 12);
    }
    this.send(out);
  }

  // ---- Output and teardown ---------------------------------------------------------------------

  /** Writes to the socket; a `slow` server drips handshake bytes one per `slowDelay` ms. */
  private send(data: Buffer): void {
    if (this.host.config.greeting === 'slow' && (this.phase !== 'normal' || this.drip.length > 0)) {
      this.drip.push({ data, slow: this.phase !== 'normal' });
      this.pumpDrip();
      return;
    }
    this.socket.write(data);
  }

  private pumpDrip(): void {
    if (this.dripTimer) return;
    this.dripTimer = setTimeout(() => {
      this.dripTimer = undefined;
      const head = this.drip[0];
      if (!head || this.socket.destroyed) return;
      if (head.slow && head.data.length > 1) {
        this.socket.write(head.data.subarray(0, 1));
        head.data = head.data.subarray(1);
      } else {
        this.socket.write(head.data);
        this.drip.shift();
      }
      if (this.drip.length > 0) this.pumpDrip();
      else if (this.endAfterDrip) this.end();
    }, this.host.config.slowDelay);
  }

  /** Ends the connection after what was sent so far, recording why. */
  private fail(reason: string): void {
    if (this.phase === 'closing') return;
    this.phase = 'closing';
    this.endReason ??= reason;
    this.log.warn('closing demo client', { id: this.id, peer: this.peer, reason });
    if (this.drip.length > 0) this.endAfterDrip = true;
    else this.end();
  }

  private end(): void {
    this.socket.end();
    // A peer that never closes its side must not keep the socket forever.
    this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER);
    this.lingerTimer.unref();
  }

  private onClose(): void {
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.lingerTimer);
    clearTimeout(this.dripTimer);
    this.phase = 'closing';
    this.host.closed(this, {
      id: this.id,
      peer: this.peer,
      reason: this.endReason ?? 'client closed',
      bytesRead: this.socket.bytesRead,
      bytesWritten: this.socket.bytesWritten,
    });
  }
}
