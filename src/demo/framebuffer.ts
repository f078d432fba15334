/**
 * @module
 * A 32-bit framebuffer (bytes B, G, R, X per pixel, the RFB default format on the wire) and the
 * few drawing primitives the demo screen needs: rectangles, circles and bitmap text.
 */
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from './font.js';
import { intersect, type Rect } from './rect.js';

export interface TextStyle {
  /** Each font pixel becomes a `scale`×`scale` square. Default 1. */
  scale?: number;
  /** Text colour, 0xRRGGBB. */
  colour: number;
  /** Fills each character cell first when set. */
  background?: number;
  /** Thickens strokes by half a font pixel to the right. Default false. */
  bold?: boolean;
}

export class Framebuffer {
  readonly width: number;
  readonly height: number;
  /** Pixels, row after row, 4 bytes each: blue, green, red, unused. */
  readonly data: Buffer;
  /** Drawing outside this rectangle is dropped; see {@link Framebuffer.withClip}. */
  private clip: Rect;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.data = Buffer.alloc(width * height * 4);
    this.clip = this.bounds;
  }

  get bounds(): Rect {
    return { x: 0, y: 0, w: this.width, h: this.height };
  }

  /** Runs `draw` with drawing limited to `rect` (and the screen). */
  withClip(rect: Rect, draw: () => void): void {
    const saved = this.clip;
    this.clip = intersect(saved, rect) ?? { x: 0, y: 0, w: 0, h: 0 };
    try {
      draw();
    } finally {
      this.clip = saved;
    }
  }

  /** Colour 0xRRGGBB at (x, y). */
  pixel(x: number, y: number): number {
    const i = (y * this.width + x) * 4;
    return (this.data[i + 2]! << 16) | (this.data[i + 1]! << 8) | this.data[i]!;
  }

  fillRect(x: number, y: number, w: number, h: number, colour: number): void {
    const r = intersect(this.clip, { x: Math.round(x), y: Math.round(y), w: Math.round(w), h: Math.round(h) });
    if (!r) return;
    const px = Buffer.from([colour & 0xff, (colour >> 8) & 0xff, (colour >> 16) & 0xff, 0]);
    const rowStart = (r.y * this.width + r.x) * 4;
    // Fill the first row pixel by pixel, then copy it to the rows below.
    for (let i = 0; i < r.w; i++) px.copy(this.data, rowStart + i * 4);
    for (let row = 1; row < r.h; row++) {
      this.data.copy(this.data, rowStart + row * this.width * 4, rowStart, rowStart + r.w * 4);
    }
  }

  /** A filled disc of radius `radius` centred on (cx, cy). */
  fillCircle(cx: number, cy: number, radius: number, colour: number): void {
    for (let dy = -radius; dy <= radius; dy++) {
      const half = Math.floor(Math.sqrt(radius * radius - dy * dy) + 0.5);
      this.fillRect(cx - half, cy + dy, 2 * half + 1, 1, colour);
    }
  }

  /** Width in pixels of `text` at `scale`. */
  static textWidth(text: string, scale = 1): number {
    return text.length * GLYPH_WIDTH * scale;
  }

  /** Height in pixels of one line of text at `scale`. */
  static textHeight(scale = 1): number {
    return GLYPH_HEIGHT * scale;
  }

  /** Draws one line of text with its top-left corner at (x, y). */
  drawText(x: number, y: number, text: string, style: TextStyle): void {
    const scale = style.scale ?? 1;
    const cellW = GLYPH_WIDTH * scale;
    // Bold widens each run by half a font pixel, which keeps the gaps inside letters open.
    const boldExtra = style.bold ? Math.max(1, Math.floor(scale / 2)) : 0;
    if (style.background !== undefined) {
      this.fillRect(x, y, cellW * text.length, GLYPH_HEIGHT * scale, style.background);
    }
    for (let c = 0; c < text.length; c++) {
      const rows = glyph(text[c]!);
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        const bits = rows[row]!;
        if (bits === 0) continue;
        // Draw runs of set bits as one rectangle each.
        for (let col = 0; col < 8; ) {
          if (!(bits & (0x80 >> col))) {
            col++;
            continue;
          }
          let end = col;
          while (end < 8 && bits & (0x80 >> end)) end++;
          const left = x + c * cellW + col * scale;
          this.fillRect(left, y + row * scale, (end - col) * scale + boldExtra, scale, style.colour);
          col = end;
        }
      }
    }
  }
}
