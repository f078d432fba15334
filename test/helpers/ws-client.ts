/**
 * @module
 * Browser-side helpers: `ws` clients that collect what they receive, a flow-controlled sender, and
 * a raw-socket client that writes handshakes and frames byte by byte (for what `ws` would refuse
 * to send: bad handshakes, unmasked frames, control frames between fragments).
 */
import net from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import { FrameReader } from './ws-frame.js';

// The frames themselves (encoder, header decoder, parser) are in ws-frame.ts, here for one import.
export * from './ws-frame.js';

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
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export interface HttpResponse {
  status: number;
  statusLine: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: string;
}

/** The status line, status and headers (names lower-cased) of a response head without its blank line. */
export function parseResponseHead(head: Buffer): Omit<HttpResponse, 'body'> {
  const [statusLine = '', ...lines] = head.toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), statusLine, headers };
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
      response = { ...parseResponseHead(head.subarray(0, end)), body: '' };
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
