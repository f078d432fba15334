/**
 * @module
 * A small RFB (VNC) client for tests: handshake for 3.3/3.7/3.8 with None or VNC Authentication,
 * client messages, and a decoder for raw (and CopyRect, DesktopSize) framebuffer updates into a
 * local copy of the screen. Reads by exact byte counts, so any TCP chunking works.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import { openClient, whenClosed, type CloseEvent } from './ws-client.js';
import {
  compareVersions,
  ENCODING_COPY_RECT,
  ENCODING_DESKTOP_SIZE,
  ENCODING_RAW,
  formatVersion,
  knownVersion,
  MSG_CLIENT_CUT_TEXT,
  MSG_FRAMEBUFFER_UPDATE_REQUEST,
  MSG_KEY_EVENT,
  MSG_POINTER_EVENT,
  MSG_SET_ENCODINGS,
  MSG_SET_PIXEL_FORMAT,
  parseVersion,
  SECURITY_NONE,
  SECURITY_VNC_AUTH,
  type RfbVersion,
} from '../../src/rfb/protocol.js';
import {
  bytesPerPixel,
  decodeColour,
  readPixel,
  readPixelFormat,
  writePixelFormat,
  type PixelFormat,
} from '../../src/rfb/pixel-format.js';
import { vncAuthResponse } from '../../src/rfb/vnc-auth.js';
import { ByteQueue } from '../../src/rfb/byte-queue.js';

/** A handshake or protocol failure; `reason` is the server's own text when it sent one. */
export class RfbError extends Error {
  readonly reason: string | undefined;
  constructor(message: string, reason?: string) {
    super(reason === undefined ? message : `${message}: ${reason}`);
    this.name = 'RfbError';
    this.reason = reason;
  }
}

/** Hands out exactly `n` bytes at a time from a socket, whatever the chunking (a {@link ByteQueue} that waits). */
export class ByteReader {
  private readonly queue = new ByteQueue();
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private ended = false;
  private endWaiters: (() => void)[] = [];
  /** Sizes of the chunks as they arrived, for tests about chunking. */
  readonly chunkSizes: number[] = [];

  constructor(socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.chunkSizes.push(chunk.length);
      this.queue.push(chunk);
      this.serve();
    });
    const end = (): void => {
      this.ended = true;
      this.serve();
      for (const resolve of this.endWaiters.splice(0)) resolve();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', () => {});
  }

  /** Bytes received and not read yet. */
  get available(): number {
    return this.queue.length;
  }

  /** Resolves with the next `n` bytes; rejects with an RfbError if the connection ends first. */
  read(n: number): Promise<Buffer> {
    if (this.waiter) throw new Error('ByteReader: one read at a time');
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.serve();
    });
  }

  /** Resolves once the peer has closed, with every byte that was still unread. */
  async rest(): Promise<Buffer> {
    if (!this.ended) await new Promise<void>((resolve) => this.endWaiters.push(resolve));
    return this.queue.rest();
  }

  private serve(): void {
    const w = this.waiter;
    if (!w) return;
    const bytes = this.queue.take(w.n);
    if (bytes) {
      this.waiter = undefined;
      w.resolve(bytes);
    } else if (this.ended) {
      this.waiter = undefined;
      w.reject(new RfbError(`connection closed (wanted ${w.n} bytes, had ${this.queue.length})`));
    }
  }
}

export interface RfbClientOptions {
  host?: string;
  port: number;
  /** Version to answer with. Default: the server's, at most 3.8. */
  version?: RfbVersion;
  /** Password for VNC Authentication. */
  password?: string;
  /** Security type to pick (3.7+) regardless of what is offered. Default: None if offered, else VNC auth. */
  securityType?: number;
  /** Shared flag of ClientInit. Default true. */
  shared?: boolean;
  /** Sent as SetPixelFormat right after ServerInit. Default: keep the server's. */
  pixelFormat?: PixelFormat;
  /** Sent as SetEncodings right after ServerInit. Default [raw]. */
  encodings?: number[];
}

export interface UpdateRect {
  x: number;
  y: number;
  w: number;
  h: number;
  encoding: number;
}

export interface Update {
  rects: UpdateRect[];
}

export interface Rectangle {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Upper bound for strings the server sends (names, reasons, cut text) and one update's pixels. */
const MAX_STRING = 1024 * 1024;
const MAX_PIXELS = 64 * 1024 * 1024;

/** Reads a U32 length and that many bytes as UTF-8. */
async function readString(reader: ByteReader): Promise<string> {
  const n = (await reader.read(4)).readUInt32BE(0);
  if (n > MAX_STRING) throw new RfbError(`string of ${n} bytes is too long`);
  return (await reader.read(n)).toString('utf8');
}

export class RfbClient {
  readonly socket: Duplex;
  readonly reader: ByteReader;
  /** The WebSocket under {@link socket} when connected through a relay. */
  ws: WebSocket | undefined;
  /** Resolves with the WebSocket's close code and reason (WebSocket clients only). */
  wsClosed: Promise<CloseEvent> | undefined;
  /** The server's ProtocolVersion message, e.g. `RFB 003.008\n`. */
  serverVersion = '';
  version: RfbVersion = '3.8';
  /** Types the server offered (3.3: the one it imposed). */
  securityTypes: number[] = [];
  width = 0;
  height = 0;
  name = '';
  serverPixelFormat!: PixelFormat;
  pixelFormat!: PixelFormat;
  /** The screen as decoded so far, 0xRRGGBB per pixel. */
  framebuffer = new Uint32Array(0);
  /** Server cut texts and bells received, in order. */
  readonly cutTexts: string[] = [];
  bells = 0;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  private readonly updates: Update[] = [];
  private updateWaiter: { resolve: (u: Update) => void; reject: (e: Error) => void } | undefined;
  private loopError: Error | undefined;

  private constructor(socket: Duplex) {
    this.socket = socket;
    this.reader = new ByteReader(socket);
    // Not events.once: that would reject on an 'error' (a reset) before 'close'.
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Connects and completes the handshake up to ServerInit; rejects with an RfbError on refusal. */
  static async connect(options: RfbClientOptions): Promise<RfbClient> {
    const socket = net.connect(options.port, options.host ?? '127.0.0.1');
    await once(socket, 'connect');
    const client = new RfbClient(socket);
    try {
      await client.handshake(options);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    void client.messageLoop();
    if (options.pixelFormat) client.setPixelFormat(options.pixelFormat);
    client.setEncodings(options.encodings ?? [ENCODING_RAW]);
    return client;
  }

  /**
   * Connects through a WebSocket relay (`url`), as noVNC does, and completes the handshake up to
   * ServerInit. On failure the error carries the WebSocket close as `close` once it arrived.
   */
  static async connectWebSocket(
    url: string,
    options: Omit<RfbClientOptions, 'port' | 'host'> = {},
    protocols: string[] = ['binary'],
  ): Promise<RfbClient> {
    const ws = await openClient(url, protocols);
    const wsClosed = whenClosed(ws);
    const stream = createWebSocketStream(ws);
    const client = new RfbClient(stream);
    client.ws = ws;
    client.wsClosed = wsClosed;
    try {
      await client.handshake({ port: 0, ...options });
    } catch (err) {
      const close = await wsClosed;
      ws.terminate();
      throw Object.assign(err as Error, { close });
    }
    void client.messageLoop();
    if (options.pixelFormat) client.setPixelFormat(options.pixelFormat);
    client.setEncodings(options.encodings ?? [ENCODING_RAW]);
    return client;
  }

  private async handshake(options: RfbClientOptions): Promise<void> {
    const r = this.reader;
    const greeting = await r.read(12);
    this.serverVersion = greeting.toString('latin1');
    const numbers = parseVersion(greeting);
    const server = numbers && knownVersion(numbers);
    if (!server) throw new RfbError('not an RFB server', JSON.stringify(this.serverVersion));
    this.version = options.version ?? (compareVersions(server, '3.8') > 0 ? '3.8' : server);
    this.socket.write(formatVersion(this.version));

    let type: number;
    if (this.version === '3.3') {
      type = (await r.read(4)).readUInt32BE(0);
      if (type === 0) throw new RfbError('connection refused', await readString(r));
      this.securityTypes = [type];
    } else {
      const count = (await r.read(1))[0]!;
      if (count === 0) throw new RfbError('connection refused', await readString(r));
      this.securityTypes = [...(await r.read(count))];
      const none = this.securityTypes.includes(SECURITY_NONE) && options.password === undefined;
      type = options.securityType ?? (none ? SECURITY_NONE : SECURITY_VNC_AUTH);
      this.socket.write(Buffer.from([type]));
    }

    if (type === SECURITY_VNC_AUTH) {
      const challenge = await r.read(16);
      this.socket.write(vncAuthResponse(options.password ?? '', challenge));
      await this.securityResult(true);
    } else if (type === SECURITY_NONE) {
      await this.securityResult(this.version === '3.8');
    } else {
      await this.securityResult(true); // an unsupported choice: expect the server to fail it
    }

    this.socket.write(Buffer.from([options.shared === false ? 0 : 1]));
    const init = await r.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.serverPixelFormat = readPixelFormat(init, 4);
    this.pixelFormat = this.serverPixelFormat;
    const nameLength = init.readUInt32BE(20);
    if (nameLength > MAX_STRING) throw new RfbError(`desktop name of ${nameLength} bytes is too long`);
    this.name = (await r.read(nameLength)).toString('utf8');
    this.framebuffer = new Uint32Array(this.width * this.height);
  }

  /** Reads a SecurityResult when one is due; failures become an RfbError (3.8 with the reason). */
  private async securityResult(expected: boolean): Promise<void> {
    if (!expected) return;
    const status = (await this.reader.read(4)).readUInt32BE(0);
    if (status === 0) return;
    const reason = this.version === '3.8' ? await readString(this.reader) : undefined;
    throw new RfbError('security failed', reason);
  }

  /** Reads server messages until the connection ends. */
  private async messageLoop(): Promise<void> {
    const r = this.reader;
    try {
      for (;;) {
        const type = (await r.read(1))[0]!;
        if (type === 0) await this.readUpdate();
        else if (type === 1) {
          const head = await r.read(5);
          await r.read(6 * head.readUInt16BE(3));
        } else if (type === 2) this.bells++;
        else if (type === 3) {
          await r.read(3);
          this.cutTexts.push(await readString(r));
        } else throw new RfbError(`unknown server message type ${type}`);
      }
    } catch (err) {
      this.loopError = err as Error;
      this.updateWaiter?.reject(this.loopError);
      this.updateWaiter = undefined;
    }
  }

  private async readUpdate(): Promise<void> {
    const r = this.reader;
    const count = (await r.read(3)).readUInt16BE(1);
    const rects: UpdateRect[] = [];
    for (let i = 0; i < count; i++) {
      const h = await r.read(12);
      const rect = {
        x: h.readUInt16BE(0),
        y: h.readUInt16BE(2),
        w: h.readUInt16BE(4),
        h: h.readUInt16BE(6),
        encoding: h.readInt32BE(8),
      };
      rects.push(rect);
      if (rect.encoding === ENCODING_RAW) {
        if (rect.x + rect.w > this.width || rect.y + rect.h > this.height) {
          throw new RfbError('raw rectangle outside the screen');
        }
        const bpp = bytesPerPixel(this.pixelFormat);
        if (rect.w * rect.h * bpp > MAX_PIXELS) throw new RfbError('rectangle too large');
        const data = await r.read(rect.w * rect.h * bpp);
        const decode = this.decoder();
        let o = 0;
        for (let y = rect.y; y < rect.y + rect.h; y++) {
          for (let x = rect.x; x < rect.x + rect.w; x++, o += bpp) {
            this.framebuffer[y * this.width + x] = decode(data, o);
          }
        }
      } else if (rect.encoding === ENCODING_COPY_RECT) {
        const src = await r.read(4);
        const sx = src.readUInt16BE(0);
        const sy = src.readUInt16BE(2);
        const copy = new Uint32Array(this.framebuffer);
        for (let y = 0; y < rect.h; y++) {
          for (let x = 0; x < rect.w; x++) {
            this.framebuffer[(rect.y + y) * this.width + rect.x + x] = copy[(sy + y) * this.width + sx + x]!;
          }
        }
      } else if (rect.encoding === ENCODING_DESKTOP_SIZE) {
        this.width = rect.w;
        this.height = rect.h;
        this.framebuffer = new Uint32Array(rect.w * rect.h);
      } else {
        throw new RfbError(`unsupported encoding ${rect.encoding}`);
      }
    }
    const update = { rects };
    if (this.updateWaiter) {
      this.updateWaiter.resolve(update);
      this.updateWaiter = undefined;
    } else this.updates.push(update);
  }

  /** Pixel decoder for the current format: a shift-and-mask fast path for 8-bit channels. */
  private decoder(): (data: Buffer, offset: number) => number {
    const pf = this.pixelFormat;
    if (pf.bitsPerPixel === 32 && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255) {
      return (data, o) => {
        const v = pf.bigEndian ? data.readUInt32BE(o) : data.readUInt32LE(o);
        const r = (v >>> pf.redShift) & 0xff;
        const g = (v >>> pf.greenShift) & 0xff;
        return (r << 16) | (g << 8) | ((v >>> pf.blueShift) & 0xff);
      };
    }
    return (data, o) => decodeColour(pf, readPixel(pf, data, o));
  }

  /** The next FramebufferUpdate (already applied to {@link RfbClient.framebuffer}). */
  nextUpdate(): Promise<Update> {
    const queued = this.updates.shift();
    if (queued) return Promise.resolve(queued);
    if (this.loopError) return Promise.reject(this.loopError);
    return new Promise((resolve, reject) => {
      this.updateWaiter = { resolve, reject };
    });
  }

  /** Updates received and not yet taken with {@link RfbClient.nextUpdate}. */
  get queuedUpdates(): number {
    return this.updates.length;
  }

  requestUpdate(incremental: boolean, rect: Rectangle = { x: 0, y: 0, w: this.width, h: this.height }): void {
    const b = Buffer.alloc(10);
    b[0] = MSG_FRAMEBUFFER_UPDATE_REQUEST;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(rect.x, 2);
    b.writeUInt16BE(rect.y, 4);
    b.writeUInt16BE(rect.w, 6);
    b.writeUInt16BE(rect.h, 8);
    this.socket.write(b);
  }

  /** Requests an update and waits for it. */
  update(incremental: boolean, rect?: Rectangle): Promise<Update> {
    this.requestUpdate(incremental, rect);
    return this.nextUpdate();
  }

  /** Colour 0xRRGGBB of the local copy at (x, y). */
  pixel(x: number, y: number): number {
    return this.framebuffer[y * this.width + x]!;
  }

  key(keysym: number, down: boolean): void {
    const b = Buffer.alloc(8);
    b[0] = MSG_KEY_EVENT;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    this.socket.write(b);
  }

  /** Presses and releases each character's keysym (Latin-1 keysyms equal the character code). */
  type(text: string): void {
    for (const ch of text) {
      const keysym = ch === '\n' ? 0xff0d : ch.charCodeAt(0);
      this.key(keysym, true);
      this.key(keysym, false);
    }
  }

  pointer(x: number, y: number, mask: number): void {
    const b = Buffer.alloc(6);
    b[0] = MSG_POINTER_EVENT;
    b[1] = mask;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    this.socket.write(b);
  }

  /** Presses and releases a button (1 left, 2 middle, 3 right) at (x, y). */
  click(x: number, y: number, button = 1): void {
    this.pointer(x, y, 1 << (button - 1));
    this.pointer(x, y, 0);
  }

  cutText(text: string): void {
    const body = Buffer.from(text, 'latin1');
    const b = Buffer.alloc(8);
    b[0] = MSG_CLIENT_CUT_TEXT;
    b.writeUInt32BE(body.length, 4);
    this.socket.write(Buffer.concat([b, body]));
  }

  /** Switches pixel format; later updates are decoded with it. */
  setPixelFormat(pf: PixelFormat): void {
    this.pixelFormat = pf;
    this.socket.write(Buffer.concat([Buffer.from([MSG_SET_PIXEL_FORMAT, 0, 0, 0]), writePixelFormat(pf)]));
  }

  setEncodings(encodings: number[]): void {
    const b = Buffer.alloc(4 + 4 * encodings.length);
    b[0] = MSG_SET_ENCODINGS;
    b.writeUInt16BE(encodings.length, 2);
    for (const [i, e] of encodings.entries()) b.writeInt32BE(e, 4 + 4 * i);
    this.socket.write(b);
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Closes the connection and waits until the socket is gone. */
  async close(): Promise<void> {
    this.socket.end();
    this.socket.destroy();
    await this.closed;
  }
}
