/**
 * @module
 * Browser-side helpers: `ws` clients that collect what they receive, a flow-controlled sender, and
 * a raw-socket client that writes handshakes and frames byte by byte (for what `ws` would refuse
 * to send: bad handshakes, unmasked frames, control frames between fragments).
 */
import net from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';

export function wsUrl(port: number, path = '/'): string {
  return `ws://127.0.0.1:${port}${path}`;
}

/** Opens a client and resolves once it is open (rejects on an error before that). */
export function openClient(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    ws.once('open', () => {
      ws.removeListener('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

export interface CloseEvent {
  code: number;
  reason: string;
}

/** Resolves with the close code and reason when `ws` closes. */
export function whenClosed(ws: WebSocket): Promise<CloseEvent> {
  if (ws.readyState === ws.CLOSED) return Promise.reject(new Error('already closed'));
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: String(reason) })));
}

export interface Received extends CloseEvent {
  /** Every binary message, concatenated. */
  data: Buffer;
  messages: number;
  textMessages: number;
  /** Set if the client saw an 'error' event. */
  error: Error | undefined;
}

/** Collects everything `ws` receives until it closes. */
export function collect(ws: WebSocket): Promise<Received> {
  const chunks: Buffer[] = [];
  let messages = 0;
  let textMessages = 0;
  let error: Error | undefined;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    messages++;
    if (!isBinary) textMessages++;
    chunks.push(data);
  });
  ws.on('error', (err: Error) => {
    error = err;
  });
  return whenClosed(ws).then(({ code, reason }) => ({
    data: Buffer.concat(chunks),
    messages,
    textMessages,
    code,
    reason,
    error,
  }));
}

/** Resolves when at least `bytes` bytes of binary messages arrived (counting from now). */
export function receiveBytes(ws: WebSocket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onMessage = (data: Buffer): void => {
      chunks.push(data);
      n += data.length;
      if (n >= bytes) {
        cleanup();
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = (code: number, reason: Buffer): void => {
      cleanup();
      reject(new Error(`closed with ${code} "${reason}" after ${n} of ${bytes} bytes`));
    };
    const cleanup = (): void => {
      ws.removeListener('message', onMessage);
      ws.removeListener('close', onClose);
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

/**
 * Sends every buffer `next()` yields as one binary message, keeping at most `window` bytes
 * not yet handed to the kernel (counted by send callbacks). Resolves when all were written.
 */
export function sendAll(ws: WebSocket, next: () => Buffer | undefined, window = 1024 * 1024): Promise<void> {
  return new Promise((resolve, reject) => {
    let inFlight = 0;
    let done = false;
    const pump = (): void => {
      while (inFlight < window) {
        const buf = next();
        if (!buf) {
          done = true;
          if (inFlight === 0) resolve();
          return;
        }
        inFlight += buf.length;
        ws.send(buf, { binary: true }, (err) => {
          if (err) return reject(err);
          inFlight -= buf.length;
          if (done) {
            if (inFlight === 0) resolve();
          } else if (inFlight < window / 2) pump();
        });
      }
    };
    pump();
  });
}

// ---- raw HTTP / WebSocket over a plain socket ----------------------------------------------------

/** The RFC 6455 example key and its accept value (RFC 6455 §1.3). */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** Builds a handshake request; a header set to `undefined` is left out. */
export function handshake(headers: Record<string, string | undefined> = {}, path = '/'): string {
  const all: Record<string, string | undefined> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': SAMPLE_KEY,
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = [`GET ${path} HTTP/1.1`];
  for (const [k, v] of Object.entries(all)) if (v !== undefined) lines.push(`${k}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

export interface HttpResponse {
  status: number;
  statusLine: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: string;
}

export interface RawConnection {
  socket: net.Socket;
  response: HttpResponse;
  /** Bytes after the response head (frames, for a 101). */
  frames: FrameReader;
  /** Resolves when the server closes or ends the socket. */
  ended: Promise<void>;
}

/**
 * Writes `request` on a fresh socket and reads the response head. Non-101 responses are read to
 * the end of the connection, so `body` is complete and `ended` has resolved: the server hung up.
 */
export function rawRequest(port: number, request: string | Buffer): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const frames = new FrameReader();
    let head: Buffer = Buffer.alloc(0);
    let response: HttpResponse | undefined;
    const bodyChunks: Buffer[] = [];
    const ended = new Promise<void>((res) => socket.once('close', () => res()));
    socket.on('error', (err) => {
      if (!response) reject(err);
    });
    socket.once('connect', () => socket.write(request));
    const onData = (chunk: Buffer): void => {
      if (response) {
        if (response.status === 101) frames.push(chunk);
        else bodyChunks.push(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const [statusLine = '', ...lines] = head.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      response = { status: Number(statusLine.split(' ')[1]), statusLine, headers, body: '' };
      const rest = head.subarray(end + 4);
      if (response.status === 101) {
        if (rest.length) frames.push(rest);
        resolve({ socket, response, frames, ended });
      } else {
        bodyChunks.push(rest);
        const r = response;
        void ended.then(() => {
          r.body = Buffer.concat(bodyChunks).toString('utf8');
          resolve({ socket, response: r, frames, ended });
        });
      }
    };
    socket.on('data', onData);
    socket.once('close', () => {
      if (!response) reject(new Error(`connection closed before a response: ${JSON.stringify(head.toString())}`));
    });
  });
}

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface FrameOptions {
  fin?: boolean;
  /** Mask the payload (clients must); default true. */
  mask?: boolean;
}

/** Encodes one WebSocket frame, choosing the 7-, 16- or 64-bit length form by payload size. */
export function encodeWsFrame(opcode: number, payload: Buffer = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  const { fin = true, mask = true } = options;
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (n < 126 ? n : n < 65536 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!mask) return Buffer.concat([head, payload]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  key.copy(head, 2 + lengthBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([head, body]);
}

/** A close frame payload: code and reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export interface WsFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Parses server frames from pushed bytes; `next()` resolves with each frame in order. */
export class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly frames: WsFrame[] = [];
  private readonly waiting: ((f: WsFrame) => void)[] = [];

  push(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let n = b[1]! & 0x7f;
      let offset = 2;
      if (n === 126) {
        if (b.length < 4) return;
        n = b.readUInt16BE(2);
        offset = 4;
      } else if (n === 127) {
        if (b.length < 10) return;
        n = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b[1]! & 0x80) !== 0;
      if (masked) offset += 4;
      if (b.length < offset + n) return;
      const frame: WsFrame = {
        fin: (b[0]! & 0x80) !== 0,
        opcode: b[0]! & 0x0f,
        masked,
        payload: Buffer.from(b.subarray(offset, offset + n)),
      };
      this.buffer = b.subarray(offset + n);
      const w = this.waiting.shift();
      if (w) w(frame);
      else this.frames.push(frame);
    }
  }

  next(): Promise<WsFrame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Reads frames until one with `opcode`, returning the frames skipped and the match. */
  async until(opcode: number): Promise<{ skipped: WsFrame[]; frame: WsFrame }> {
    const skipped: WsFrame[] = [];
    for (;;) {
      const frame = await this.next();
      if (frame.opcode === opcode) return { skipped, frame };
      skipped.push(frame);
    }
  }
}

/** Decodes a close frame payload. */
export function parseClose(payload: Buffer): CloseEvent {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}
