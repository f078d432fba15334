/**
 * @module
 * RFC 6455 frames, byte by byte, for the tests and the benchmark: opcodes, an encoder for client
 * frames, the one frame-header decoder and a parser of frames from a byte stream however it was
 * cut into chunks. No dependencies, no sockets.
 */

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** The mask key of {@link encodeWsFrame} unless one is given. */
const DEFAULT_MASK_KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

export interface FrameOptions {
  fin?: boolean;
  /** Mask the payload (clients must); default true. */
  mask?: boolean;
  /** The 4-byte masking key (default a fixed one). */
  maskKey?: Buffer;
}

/** Encodes one WebSocket frame, choosing the 7-, 16- or 64-bit length form by payload size. */
export function encodeWsFrame(opcode: number, payload: Buffer = Buffer.alloc(0), options: FrameOptions = {}): Buffer {
  const { fin = true, mask = true, maskKey = DEFAULT_MASK_KEY } = options;
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (n < 126 ? n : n < 65536 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!mask) return Buffer.concat([head, payload]);
  maskKey.copy(head, 2 + lengthBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= maskKey[i & 3]!;
  return Buffer.concat([head, body]);
}

/** A close frame payload: code and reason (bytes as given: a test may send invalid UTF-8). */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code, 0);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** Decodes a close frame payload. */
export function parseClose(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

export interface FrameHeader {
  fin: boolean;
  /** RSV1..3 as bits 2..0 (0 unless an extension was agreed). */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** Offset of the 4-byte masking key in the buffer, when `masked`. */
  maskAt: number;
  /** Payload length (the 64-bit form as a Number: exact up to 2^53). */
  length: number;
  /** Header bytes: 2 to 14. */
  size: number;
}

/** Decodes the frame header at `at` in `b`, or returns null while `b` does not hold all of it. */
export function decodeFrameHeader(b: Buffer, at = 0): FrameHeader | null {
  if (b.length - at < 2) return null;
  const b0 = b[at]!;
  const b1 = b[at + 1]!;
  const masked = (b1 & 0x80) !== 0;
  let length = b1 & 0x7f;
  let size = length === 126 ? 4 : length === 127 ? 10 : 2;
  if (masked) size += 4;
  if (b.length - at < size) return null;
  if (length === 126) length = b.readUInt16BE(at + 2);
  else if (length === 127) length = Number(b.readBigUInt64BE(at + 2));
  return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, maskAt: at + size - 4, length, size };
}

export interface WsFrame {
  fin: boolean;
  /** RSV1..3 as bits 2..0. */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The payload as sent (a masked one is left masked: servers never mask). */
  payload: Buffer;
}

/** Parses whole frames out of pushed bytes, however the stream was cut. */
export class FrameParser {
  private buffer: Buffer = Buffer.alloc(0);

  /** Adds `chunk` and returns the frames it completed, in order. */
  push(chunk: Buffer): WsFrame[] {
    this.buffer = Buffer.concat([this.buffer, chunk]); // a copy: the caller may reuse `chunk`
    const out: WsFrame[] = [];
    for (;;) {
      const h = decodeFrameHeader(this.buffer);
      if (!h || this.buffer.length < h.size + h.length) break;
      const payload = Buffer.from(this.buffer.subarray(h.size, h.size + h.length));
      out.push({ fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked: h.masked, payload });
      this.buffer = this.buffer.subarray(h.size + h.length);
    }
    return out;
  }

  /** Bytes of an incomplete frame still buffered. */
  get leftover(): number {
    return this.buffer.length;
  }
}

/** Parses server frames from pushed bytes; `next()` resolves with each frame in order. */
export class FrameReader {
  private readonly parser = new FrameParser();
  private readonly frames: WsFrame[] = [];
  private readonly waiting: ((f: WsFrame) => void)[] = [];

  push(chunk: Buffer): void {
    for (const frame of this.parser.push(chunk)) {
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
