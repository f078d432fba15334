/**
 * @module
 * A lean client side for the benchmark: a plain TCP connection or a minimal RFC 6455 WebSocket
 * client over `net`, behind one interface. The WebSocket side does the handshake itself, parses
 * server frames in place without copying or joining payloads (data is handed on as subarrays of
 * the socket's chunks), answers pings and close frames, and sends pre-built masked frames, so a
 * message that is sent again and again costs one `write` of a cached buffer. This keeps the load
 * generator cheap enough that the relay under test, not the harness, is the limit.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { OP_BINARY, OP_CLOSE, OP_CONTINUATION as OP_CONT, OP_PING, OP_PONG, OP_TEXT, decodeFrameHeader, encodeWsFrame } from '../test/helpers/ws-frame.js';

export interface Conn {
  readonly socket: net.Socket;
  /** Payload bytes from the server (TCP: the stream; WebSocket: data frame payloads). */
  onData: (chunk: Buffer) => void;
  /** The server ended the stream (TCP FIN or WebSocket close frame / socket close), once. */
  onEnd: (why: string) => void;
  /** Bytes to write so the server side receives `payload` as one message. Cache the result. */
  wire(payload: Buffer): Buffer;
  /** Ends politely (close frame, then FIN). */
  close(): void;
}

export type Kind = 'tcp' | 'ws';


const noop = (): void => {};

/**
 * All client sockets of this process read into this one buffer (`onread`): no allocation per
 * read, and reads of up to 1 MiB instead of Node's 64 KiB. Safe because every chunk is handled
 * synchronously and nothing keeps a reference to it (partial headers are copied out).
 */
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);

/** Connects with reads going to `sink(chunk)`, which may be swapped later; starts paused. */
function rawConnect(port: number, host: string): { socket: net.Socket; setSink(sink: (chunk: Buffer) => void): void } {
  let sink: (chunk: Buffer) => void = noop;
  const socket = net.connect({
    port,
    host,
    noDelay: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number, buf: Uint8Array): boolean => {
        sink((buf as Buffer).subarray(0, n));
        return true; // false would pause the socket
      },
    },
  });
  return { socket, setSink: (s) => (sink = s) };
}

/** One mask key for the whole run: frames of a given payload are then constant and cacheable. */
const MASK = randomBytes(4);

/** Builds one final client frame (masked with {@link MASK}). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  return encodeWsFrame(opcode, payload, { maskKey: MASK });
}

class TcpConn implements Conn {
  onData: (chunk: Buffer) => void = noop;
  onEnd: (why: string) => void = noop;
  private ended = false;

  /** The socket should be paused: data flows from `ready()` on. */
  constructor(
    readonly socket: net.Socket,
    setSink: (sink: (chunk: Buffer) => void) => void,
  ) {
    setSink((chunk) => this.onData(chunk));
    const end = (why: string): void => {
      if (this.ended) return;
      this.ended = true;
      this.onEnd(why);
    };
    socket.on('end', () => end('fin'));
    socket.on('close', () => end('closed'));
    socket.on('error', () => {});
  }

  wire(payload: Buffer): Buffer {
    return payload;
  }

  close(): void {
    this.socket.end();
  }
}

/** Streaming parser state for server-to-client frames. */
class WsConn implements Conn {
  onData: (chunk: Buffer) => void = noop;
  onEnd: (why: string) => void = noop;
  /** Close code received from the server, if any. */
  closeCode: number | undefined;
  private ended = false;
  private closeSent = false;
  /** Bytes of an incomplete frame header carried over between chunks. */
  private head: Buffer | null = null;
  /** Payload bytes still to come in the current frame. */
  private left = 0;
  private opcode = 0;
  /** Control frame payload being collected (at most 125 bytes). */
  private control: Buffer[] | null = null;
  private masked = false;
  private maskKey = Buffer.alloc(4);
  private maskPos = 0;

  constructor(
    readonly socket: net.Socket,
    setSink: (sink: (chunk: Buffer) => void) => void,
  ) {
    setSink(this.feed);
    socket.on('end', () => this.end('fin without close frame'));
    socket.on('close', () => this.end('socket closed'));
    socket.on('error', () => {});
  }

  wire(payload: Buffer): Buffer {
    return clientFrame(OP_BINARY, payload);
  }

  close(): void {
    this.sendClose(1000);
    this.socket.end();
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(why);
  }

  private sendClose(code: number): void {
    if (this.closeSent || this.socket.destroyed || this.socket.writableEnded) return;
    this.closeSent = true;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.socket.write(clientFrame(OP_CLOSE, body));
  }

  /** Parses as many frames as `chunk` holds; data payloads go to onData as subarrays. */
  readonly feed = (chunk: Buffer): void => {
    let buf = chunk;
    let pos = 0;
    if (this.head) {
      buf = Buffer.concat([this.head, chunk]);
      this.head = null;
    }
    const n = buf.length;
    while (pos < n) {
      if (this.left === 0 && this.control === null) {
        // Frame header.
        const h = decodeFrameHeader(buf, pos);
        if (!h) {
          this.head = Buffer.from(buf.subarray(pos)); // copy: the read buffer is reused
          return;
        }
        const len = h.length;
        this.masked = h.masked;
        if (h.masked) {
          buf.copy(this.maskKey, 0, h.maskAt, h.maskAt + 4);
          this.maskPos = 0;
        }
        this.opcode = h.opcode;
        pos += h.size;
        this.left = len;
        if (this.opcode >= 0x8) {
          this.control = [];
          if (len === 0) {
            this.onControl();
            continue;
          }
        } else if (len === 0) {
          continue;
        }
      }
      const take = Math.min(this.left, n - pos);
      let part = buf.subarray(pos, pos + take);
      pos += take;
      this.left -= take;
      if (this.masked) {
        // Servers never mask; handled for completeness (copy, then unmask).
        part = Buffer.from(part);
        for (let i = 0; i < part.length; i++) part[i] = part[i]! ^ this.maskKey[(this.maskPos + i) & 3]!;
        this.maskPos = (this.maskPos + part.length) & 3;
      }
      if (this.control) {
        this.control.push(part);
        if (this.left === 0) this.onControl();
      } else if (this.opcode === OP_BINARY || this.opcode === OP_CONT || this.opcode === OP_TEXT) {
        this.onData(part);
      }
    }
  };

  private onControl(): void {
    const body = Buffer.concat(this.control!);
    this.control = null;
    if (this.opcode === OP_PING) {
      if (!this.closeSent && !this.socket.destroyed) this.socket.write(clientFrame(OP_PONG, body));
    } else if (this.opcode === OP_CLOSE) {
      this.closeCode = body.length >= 2 ? body.readUInt16BE(0) : 1005;
      this.sendClose(this.closeCode === 1005 ? 1000 : this.closeCode);
      this.socket.end();
      this.end('close frame');
    }
    // OP_PONG: ignored.
  }
}

/** Connects a raw TCP client. */
export function connectTcp(port: number, host = '127.0.0.1'): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const { socket, setSink } = rawConnect(port, host);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      socket.pause();
      resolve(new TcpConn(socket, setSink));
    });
  });
}

/**
 * Connects a WebSocket client the way noVNC does (subprotocol `binary`). Resolves after the 101
 * response; bytes that came with it are parsed as frames right away, once `onData` can be set:
 * the caller sets its handlers before `ready()`.
 */
export function connectWs(port: number, host = '127.0.0.1', path = '/'): Promise<Conn & { ready(): void }> {
  return new Promise((resolve, reject) => {
    const { socket, setSink } = rawConnect(port, host);
    const key = randomBytes(16).toString('base64');
    let got: Buffer = Buffer.alloc(0);
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n` +
          `Origin: http://${host}:${port}\r\n\r\n`,
      );
    });
    const onHandshake = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]); // copy: the read buffer is reused
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) {
        if (got.length > 16384) fail(new Error('handshake response too long'));
        return;
      }
      setSink(noop);
      socket.removeListener('end', onEarlyEnd);
      socket.removeListener('error', fail);
      const status = got.subarray(0, got.indexOf('\r\n')).toString('latin1');
      if (!/^HTTP\/1\.1 101/.test(status)) {
        fail(new Error(`handshake refused: ${status}`));
        return;
      }
      const rest = got.subarray(end + 4);
      socket.pause();
      const conn = new WsConn(socket, setSink);
      resolve(
        Object.assign(conn, {
          ready(): void {
            if (rest.length) conn.feed(rest);
            socket.resume();
          },
        }),
      );
    };
    const onEarlyEnd = (): void => fail(new Error('connection closed during handshake'));
    setSink(onHandshake);
    socket.once('end', onEarlyEnd);
  });
}

/** Connects either kind; call `ready()` after setting the handlers (no-op for TCP). */
export async function connect(kind: Kind, port: number): Promise<Conn & { ready(): void }> {
  if (kind === 'ws') return connectWs(port);
  const conn = await connectTcp(port); // paused until ready()
  return Object.assign(conn, {
    ready(): void {
      conn.socket.resume();
    },
  });
}
