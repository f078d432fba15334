/**
 * @module
 * Deterministic test traffic: a seeded PRNG, a source of framed messages (sequence number, length,
 * payload, checksum) and a verifier that parses the same frames back out of a byte stream, however
 * it was cut into chunks or WebSocket messages on the way.
 *
 * Frame layout (big-endian): `seq u32 | length u32 | payload[length] | checksum u32`, where the
 * checksum is the first 4 bytes of SHA-1 over `seq | length | payload`.
 */
import { createHash } from 'node:crypto';

/** Mulberry32: a tiny seeded PRNG returning 32-bit unsigned integers. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** An integer in `[min, max]` from `rand`. */
export function between(rand: () => number, min: number, max: number): number {
  return min + (rand() % (max - min + 1));
}

/** `n` pseudo-random bytes from `rand` (4 bytes per call). */
export function randomBytes(rand: () => number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) buf.writeUInt32LE(rand(), i);
  for (; i < n; i++) buf[i] = rand() & 0xff;
  return buf;
}

/** SHA-256 of the concatenation of `chunks`, hex. */
export function sha256(...chunks: Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

export const FRAME_OVERHEAD = 12;

function checksum(header: Buffer, payload: Buffer): number {
  return createHash('sha1').update(header).update(payload).digest().readUInt32BE(0);
}

/** Builds one frame. */
export function encodeFrame(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(seq, 0);
  header.writeUInt32BE(payload.length, 4);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(checksum(header, payload), 0);
  return Buffer.concat([header, payload, trailer]);
}

/**
 * Produces `count` frames from `seed`. Sizes are spread over the three WebSocket length encodings:
 * 7-bit (total ≤ 125), 16-bit (≤ 65535) and 64-bit (up to `maxFrame`, which should be the relay's
 * maxPayload so that a frame always fits one browser message), with the exact maximum now and then.
 */
export class FrameSource {
  readonly count: number;
  readonly maxFrame: number;
  produced = 0;
  bytes = 0;
  private readonly rand: () => number;

  constructor(seed: number, count: number, maxFrame = 64 * 1024) {
    this.rand = prng(seed);
    this.count = count;
    this.maxFrame = maxFrame;
  }

  /** The next frame, or `undefined` after `count` frames. */
  next(): Buffer | undefined {
    if (this.produced >= this.count) return undefined;
    const kind = this.rand() % 10;
    const max = this.maxFrame - FRAME_OVERHEAD;
    let size: number;
    if (kind < 4) size = between(this.rand, 0, Math.min(125 - FRAME_OVERHEAD, max));
    else if (kind < 7) size = between(this.rand, 126 - FRAME_OVERHEAD, Math.min(65535 - FRAME_OVERHEAD, max));
    else if (kind < 9) size = between(this.rand, Math.min(65536 - FRAME_OVERHEAD, max), max);
    else size = max;
    const frame = encodeFrame(this.produced++, randomBytes(this.rand, size));
    this.bytes += frame.length;
    return frame;
  }
}

/**
 * Parses frames out of a byte stream and checks each one: sequence numbers consecutive from 0,
 * length within bounds, checksum right. Records every problem in `errors` (assert it is empty).
 */
export class FrameVerifier {
  frames = 0;
  bytes = 0;
  readonly errors: string[] = [];
  private buffered: Buffer[] = [];
  private bufferedLength = 0;
  private readonly maxFrame: number;

  constructor(maxFrame = 64 * 1024) {
    this.maxFrame = maxFrame;
  }

  /** Bytes received that do not form a whole frame yet. */
  get partial(): number {
    return this.bufferedLength;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.buffered.push(chunk);
    this.bufferedLength += chunk.length;
    while (this.bufferedLength >= 8 && this.errors.length === 0) {
      const head = this.peek(8);
      const seq = head.readUInt32BE(0);
      const length = head.readUInt32BE(4);
      if (length > this.maxFrame - FRAME_OVERHEAD) {
        this.errors.push(`frame ${this.frames}: length ${length} out of range (seq ${seq})`);
        return;
      }
      const total = length + FRAME_OVERHEAD;
      if (this.bufferedLength < total) return;
      const frame = this.take(total);
      const payload = frame.subarray(8, 8 + length);
      const sum = frame.readUInt32BE(8 + length);
      if (seq !== this.frames) this.errors.push(`frame ${this.frames}: sequence number ${seq}`);
      if (sum !== checksum(frame.subarray(0, 8), payload)) this.errors.push(`frame ${this.frames}: bad checksum`);
      this.frames++;
    }
  }

  private peek(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    const first = this.buffered[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.buffered.shift();
    else this.buffered[0] = first.subarray(n);
    this.bufferedLength -= n;
    return out;
  }
}
