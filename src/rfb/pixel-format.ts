/**
 * @module
 * RFB pixel formats: the 16-byte PIXEL_FORMAT structure, its validation, and conversion of
 * 0xRRGGBB colours to and from a client's true-colour format (8, 16 or 32 bits per pixel).
 */

export interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** Length of a PIXEL_FORMAT structure in bytes (3 of them padding). */
export const PIXEL_FORMAT_LENGTH = 16;

/** 32 bits per pixel, depth 24, little-endian, 8 bits per channel: byte order B, G, R, X. */
export const DEFAULT_PIXEL_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
});

export function readPixelFormat(buf: Uint8Array, offset = 0): PixelFormat {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    bitsPerPixel: b[offset]!,
    depth: b[offset + 1]!,
    bigEndian: b[offset + 2] !== 0,
    trueColour: b[offset + 3] !== 0,
    redMax: b.readUInt16BE(offset + 4),
    greenMax: b.readUInt16BE(offset + 6),
    blueMax: b.readUInt16BE(offset + 8),
    redShift: b[offset + 10]!,
    greenShift: b[offset + 11]!,
    blueShift: b[offset + 12]!,
  };
}

export function writePixelFormat(pf: PixelFormat): Buffer {
  const b = Buffer.alloc(PIXEL_FORMAT_LENGTH);
  b[0] = pf.bitsPerPixel;
  b[1] = pf.depth;
  b[2] = pf.bigEndian ? 1 : 0;
  b[3] = pf.trueColour ? 1 : 0;
  b.writeUInt16BE(pf.redMax, 4);
  b.writeUInt16BE(pf.greenMax, 6);
  b.writeUInt16BE(pf.blueMax, 8);
  b[10] = pf.redShift;
  b[11] = pf.greenShift;
  b[12] = pf.blueShift;
  return b;
}

/** Number of bits needed to hold `max`. */
function bitLength(max: number): number {
  return max === 0 ? 0 : Math.floor(Math.log2(max)) + 1;
}

/**
 * Why a pixel format cannot be served, or undefined when it can: true colour at 8, 16 or 32 bits
 * per pixel, each channel's maximum 1 to 65535 and fitting, with its shift, inside the pixel.
 */
export function pixelFormatProblem(pf: PixelFormat): string | undefined {
  if (!pf.trueColour) return 'colour-map pixel formats are not supported (true colour only)';
  if (![8, 16, 32].includes(pf.bitsPerPixel)) return `bits-per-pixel ${pf.bitsPerPixel} is not 8, 16 or 32`;
  const channels: [string, number, number][] = [
    ['red', pf.redMax, pf.redShift],
    ['green', pf.greenMax, pf.greenShift],
    ['blue', pf.blueMax, pf.blueShift],
  ];
  for (const [name, max, shift] of channels) {
    if (max < 1) return `${name}-max must be at least 1`;
    if (bitLength(max) + shift > pf.bitsPerPixel) {
      return `${name} channel (max ${max}, shift ${shift}) does not fit in ${pf.bitsPerPixel} bits`;
    }
  }
  return undefined;
}

/** Bytes per pixel of a format. */
export function bytesPerPixel(pf: PixelFormat): number {
  return pf.bitsPerPixel >> 3;
}

/** Scales an 8-bit channel to 0..max, rounding to nearest. */
function scaleChannel(value: number, max: number): number {
  return Math.round((value * max) / 255);
}

/** The pixel value of colour 0xRRGGBB in format `pf` (an unsigned integer, before byte order). */
export function encodeColour(pf: PixelFormat, rgb: number): number {
  const r = scaleChannel((rgb >> 16) & 0xff, pf.redMax) * 2 ** pf.redShift;
  const g = scaleChannel((rgb >> 8) & 0xff, pf.greenMax) * 2 ** pf.greenShift;
  const b = scaleChannel(rgb & 0xff, pf.blueMax) * 2 ** pf.blueShift;
  return r + g + b; // channels do not overlap in valid formats; + keeps 32-bit values unsigned
}

/** Colour 0xRRGGBB of a pixel value in format `pf`, channels scaled back to 8 bits. */
export function decodeColour(pf: PixelFormat, pixel: number): number {
  const channel = (max: number, shift: number): number =>
    Math.round(((Math.floor(pixel / 2 ** shift) % (max + 1)) * 255) / max);
  const r = channel(pf.redMax, pf.redShift);
  const g = channel(pf.greenMax, pf.greenShift);
  return (r << 16) | (g << 8) | channel(pf.blueMax, pf.blueShift);
}

/** Reads one pixel value of format `pf` at `offset`. */
export function readPixel(pf: PixelFormat, buf: Buffer, offset: number): number {
  switch (pf.bitsPerPixel) {
    case 8:
      return buf[offset]!;
    case 16:
      return pf.bigEndian ? buf.readUInt16BE(offset) : buf.readUInt16LE(offset);
    default:
      return pf.bigEndian ? buf.readUInt32BE(offset) : buf.readUInt32LE(offset);
  }
}

/**
 * Copies a rectangle out of a B,G,R,X framebuffer (the {@link DEFAULT_PIXEL_FORMAT} layout) into
 * `out` at `offset` in format `pf`, row after row with no padding. Returns the offset after it.
 */
export type RectEncoder = (
  src: Buffer,
  srcWidth: number,
  x: number,
  y: number,
  w: number,
  h: number,
  out: Buffer,
  offset: number,
) => number;

/** Builds the fastest {@link RectEncoder} for `pf` (which must pass {@link pixelFormatProblem}). */
export function createRectEncoder(pf: PixelFormat): RectEncoder {
  const eightBit = pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255;
  const byteShifts = [pf.redShift, pf.greenShift, pf.blueShift].every((s) => s % 8 === 0);
  if (pf.bitsPerPixel === 32 && eightBit && byteShifts) {
    // Whole-byte channels: each one lands in a fixed byte of the 4-byte pixel.
    const at = (shift: number): number => (pf.bigEndian ? 3 - shift / 8 : shift / 8);
    const ri = at(pf.redShift);
    const gi = at(pf.greenShift);
    const bi = at(pf.blueShift);
    const same = ri === 2 && gi === 1 && bi === 0;
    return function encode32(src, srcWidth, x, y, w, h, out, offset) {
      for (let row = 0; row < h; row++) {
        let s = ((y + row) * srcWidth + x) * 4;
        if (same) {
          src.copy(out, offset, s, s + w * 4);
          offset += w * 4;
          continue;
        }
        for (let i = 0; i < w; i++, s += 4, offset += 4) {
          out[offset] = 0;
          out[offset + 1] = 0;
          out[offset + 2] = 0;
          out[offset + 3] = 0;
          out[offset + bi] = src[s]!;
          out[offset + gi] = src[s + 1]!;
          out[offset + ri] = src[s + 2]!;
        }
      }
      return offset;
    };
  }
  // General true colour: per-channel lookup tables, then the pixel in the client's byte order.
  const table = (max: number, shift: number): Float64Array =>
    Float64Array.from({ length: 256 }, (_, v) => scaleChannel(v, max) * 2 ** shift);
  const rt = table(pf.redMax, pf.redShift);
  const gt = table(pf.greenMax, pf.greenShift);
  const bt = table(pf.blueMax, pf.blueShift);
  const bpp = bytesPerPixel(pf);
  return function encodeAny(src, srcWidth, x, y, w, h, out, offset) {
    for (let row = 0; row < h; row++) {
      let s = ((y + row) * srcWidth + x) * 4;
      for (let i = 0; i < w; i++, s += 4, offset += bpp) {
        const v = bt[src[s]!]! + gt[src[s + 1]!]! + rt[src[s + 2]!]!;
        if (bpp === 1) out[offset] = v;
        else if (bpp === 2) {
          if (pf.bigEndian) out.writeUInt16BE(v, offset);
          else out.writeUInt16LE(v, offset);
        } else if (pf.bigEndian) out.writeUInt32BE(v, offset);
        else out.writeUInt32LE(v, offset);
      }
    }
    return offset;
  };
}
