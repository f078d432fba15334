/**
 * @module
 * What the demo server shows: colour bars and a grey ramp (to check colours and pixel formats), a
 * moving block (to see that updates flow), the label "ctrlx-novnc demo", the time, typed text,
 * the last clipboard text and marks where the pointer was pressed. Every change is reported as a
 * dirty rectangle, so clients are sent only what changed.
 */
import { Framebuffer } from './framebuffer.js';
import { GLYPH_HEIGHT, GLYPH_WIDTH, hasGlyph } from './font.js';
import { bounds, intersect, type Rect } from './rect.js';

export const LABEL = 'ctrlx-novnc demo';

export const BACKGROUND = 0x14202c;
export const PANEL = 0x223446;
export const LABEL_COLOUR = 0xffffff;
export const TEXT_COLOUR = 0xf2f5f8;
export const DIM_COLOUR = 0x8fa3b8;
export const TRACK_COLOUR = 0x0b141d;
/** Full-intensity bars, left to right: white, yellow, cyan, green, magenta, red, blue, black. */
export const BAR_COLOURS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000] as const;
/** Steps of the grey ramp under the bars (black to white). */
export const RAMP_STEPS = 16;
/** Mark colours by pointer button: left, middle, right. */
export const MARK_COLOURS = [0xff8000, 0xff5ab4, 0x7fd0ff] as const;
export const MARK_RADIUS = 4;

/** The text area scale and the number of lines it shows. */
const TEXT_SCALE = 2;
const TEXT_LINES = 3;
const MARGIN = 16;
const PAD = 8;
/** Typed text kept (older characters are dropped). */
const MAX_TYPED = 4096;
/** Clipboard characters kept: more than one line can show. */
const MAX_CLIP_SHOWN = 512;
/** Pointer marks remembered, so redrawn areas keep them; the oldest are forgotten. */
const MAX_MARKS = 4096;
/** Most marks one pointer event may add when filling a drag's gap. */
const MAX_STROKE_STEPS = 64;
/** Block speed in pixels per second. */
const BLOCK_SPEED = 240;

/** Smallest screen the layout fits in. */
export const MIN_WIDTH = 480;
export const MIN_HEIGHT = 400;

export interface DemoLayout {
  bars: Rect;
  ramp: Rect;
  track: Rect;
  block: number;
  label: Rect;
  labelScale: number;
  clock: Rect;
  clockScale: number;
  text: Rect;
  clipboard: Rect;
  status: Rect;
}

const CLOCK_SAMPLE = '0000-00-00 00:00:00';

/** Where everything goes on a `width`×`height` screen (at least {@link MIN_WIDTH}×{@link MIN_HEIGHT}). */
export function demoLayout(width: number, height: number): DemoLayout {
  const inner = width - 2 * MARGIN;
  const labelScale = Math.max(1, Math.min(5, Math.floor(inner / (LABEL.length * GLYPH_WIDTH))));
  const clockScale = Math.max(1, Math.min(3, Math.floor(inner / (CLOCK_SAMPLE.length * GLYPH_WIDTH))));
  const line = GLYPH_HEIGHT * TEXT_SCALE;
  const status = { x: 0, y: height - GLYPH_HEIGHT - 6, w: width, h: GLYPH_HEIGHT + 6 };
  const heights = {
    ramp: 24,
    track: 36,
    label: GLYPH_HEIGHT * labelScale,
    clock: GLYPH_HEIGHT * clockScale,
    text: TEXT_LINES * line + 2 * PAD,
    clipboard: line,
  };
  const gaps = 6; // between ramp/track, track/label, label/clock, clock/text, text/clipboard, clipboard/status
  const fixed = Object.values(heights).reduce((a, b) => a + b, 0) + status.h;
  const barsH = Math.max(24, Math.min(Math.round(height * 0.3), height - fixed - gaps * 8));
  const gap = Math.max(4, Math.floor((height - fixed - barsH) / gaps));
  let y = 0;
  const take = (h: number, x = MARGIN, w = inner): Rect => {
    const r = { x, y, w, h };
    y += h;
    return r;
  };
  const bars = take(barsH, 0, width);
  const ramp = take(heights.ramp, 0, width);
  y += gap;
  const track = take(heights.track);
  y += gap;
  const labelW = LABEL.length * GLYPH_WIDTH * labelScale;
  const label = take(heights.label, Math.floor((width - labelW) / 2), labelW);
  y += Math.floor(gap / 2);
  const clockW = CLOCK_SAMPLE.length * GLYPH_WIDTH * clockScale;
  const clock = take(heights.clock, Math.floor((width - clockW) / 2), clockW);
  y += gap;
  const text = take(heights.text);
  y += Math.floor(gap / 2);
  const clipboard = take(heights.clipboard);
  return { bars, ramp, track, block: heights.track - 8, label, labelScale, clock, clockScale, text, clipboard, status };
}

/** The character a key press types, or undefined; see {@link DemoScene.key} for editing keys. */
export function keysymToChar(keysym: number): string | undefined {
  if ((keysym >= 0x20 && keysym <= 0x7e) || (keysym >= 0xa0 && keysym <= 0xff)) return String.fromCharCode(keysym);
  if (keysym >= 0x01000020 && keysym <= 0x0110ffff) return String.fromCodePoint(keysym - 0x01000000);
  if (keysym >= 0xffb0 && keysym <= 0xffb9) return String(keysym - 0xffb0); // keypad digits
  return KEYPAD[keysym];
}

const KEYPAD: Record<number, string> = {
  0xff80: ' ',
  0xffaa: '*',
  0xffab: '+',
  0xffac: ',',
  0xffad: '-',
  0xffae: '.',
  0xffaf: '/',
};
const KEY_BACKSPACE = 0xff08;
const KEY_TAB = 0xff09;
const KEY_RETURN = 0xff0d;
const KEY_ESCAPE = 0xff1b;
const KEY_KP_ENTER = 0xff8d;

/** Local time as `YYYY-MM-DD HH:MM:SS`. */
export function formatClock(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const date = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return `${date} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Replaces characters the font lacks with `?` and line breaks with spaces. */
function printable(text: string): string {
  return Array.from(text, (ch) => (ch === '\n' || ch === '\r' || ch === '\t' ? ' ' : hasGlyph(ch) ? ch : '?')).join('');
}

/** Cuts `text` to `max` characters, ending with `...` when cut. */
function ellipsis(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 3))}...`;
}

interface Mark {
  x: number;
  y: number;
  colour: number;
}

export interface DemoSceneOptions {
  width: number;
  height: number;
  /** Clock source. Default: `() => new Date()`. */
  now?: () => Date;
}

export class DemoScene {
  readonly fb: Framebuffer;
  readonly layout: DemoLayout;
  /** Called with every rectangle that changed. */
  onDirty: (rect: Rect) => void = () => {};
  private readonly now: () => Date;
  private typed = '';
  private clip = '';
  private marks: Mark[] = [];
  private lastPointer: { x: number; y: number; mask: number } | undefined;
  private blockRect: Rect | undefined;
  private clockText = '';
  private statusText = '';
  private readonly started: number;

  constructor(options: DemoSceneOptions) {
    this.fb = new Framebuffer(options.width, options.height);
    this.layout = demoLayout(options.width, options.height);
    this.now = options.now ?? (() => new Date());
    this.started = this.now().getTime();
    this.drawAll();
  }

  /** Redraws the whole screen (dropping typed text, clipboard and marks when `reset`). */
  drawAll(reset = false): void {
    if (reset) {
      this.typed = '';
      this.clip = '';
      this.marks = [];
    }
    const { fb, layout } = this;
    fb.fillRect(0, 0, fb.width, fb.height, BACKGROUND);
    this.drawBars();
    fb.fillRect(layout.track.x, layout.track.y, layout.track.w, layout.track.h, TRACK_COLOUR);
    this.blockRect = undefined;
    this.drawBlock();
    fb.drawText(layout.label.x, layout.label.y, LABEL, { scale: layout.labelScale, colour: LABEL_COLOUR, bold: true });
    this.clockText = '';
    this.drawClock();
    this.drawTyped();
    this.drawClipboard();
    this.drawStatus();
    for (const m of this.marks) fb.fillCircle(m.x, m.y, MARK_RADIUS, m.colour);
    this.onDirty(fb.bounds);
  }

  /** Advances the animation and the clock to now; reports what moved. */
  tick(): void {
    this.drawBlock();
    this.drawClock();
  }

  /** Handles a key press: printable keys are echoed, Backspace deletes, Enter breaks, Esc clears. */
  key(keysym: number, down: boolean): void {
    if (!down) return;
    if (keysym === KEY_ESCAPE) {
      this.drawAll(true);
      return;
    }
    let typed = this.typed;
    if (keysym === KEY_BACKSPACE) typed = Array.from(typed).slice(0, -1).join('');
    else if (keysym === KEY_RETURN || keysym === KEY_KP_ENTER) typed += '\n';
    else if (keysym === KEY_TAB) typed += '  ';
    else {
      const ch = keysymToChar(keysym);
      if (ch === undefined) return;
      typed += hasGlyph(ch) ? ch : '?';
    }
    this.typed = typed.length > MAX_TYPED ? typed.slice(typed.length - MAX_TYPED) : typed;
    this.drawTyped();
  }

  /** Handles pointer movement: while a button (1–3) is down, draws marks along the path. */
  pointer(x: number, y: number, mask: number): void {
    x = Math.min(Math.max(0, x), this.fb.width - 1);
    y = Math.min(Math.max(0, y), this.fb.height - 1);
    const buttons = mask & 7;
    const last = this.lastPointer;
    this.lastPointer = { x, y, mask: buttons };
    if (!buttons) return;
    const colour = MARK_COLOURS[buttons & 1 ? 0 : buttons & 2 ? 1 : 2];
    // While dragging, fill the gap from the last position so strokes are continuous.
    const from = last?.mask ? last : { x, y };
    // Capped, so a client jumping across the screen cannot make one event cost much drawing.
    const steps = Math.min(MAX_STROKE_STEPS, Math.max(1, Math.ceil(Math.hypot(x - from.x, y - from.y) / MARK_RADIUS)));
    let dirty: Rect | undefined;
    for (let i = 1; i <= steps; i++) {
      const mark = {
        x: Math.round(from.x + ((x - from.x) * i) / steps),
        y: Math.round(from.y + ((y - from.y) * i) / steps),
        colour,
      };
      this.marks.push(mark);
      this.fb.fillCircle(mark.x, mark.y, MARK_RADIUS, colour);
      const r = markRect(mark);
      dirty = dirty ? bounds(dirty, r) : r;
    }
    if (this.marks.length > MAX_MARKS) this.marks.splice(0, this.marks.length - MAX_MARKS);
    const clipped = dirty && intersect(dirty, this.fb.bounds);
    if (clipped) this.onDirty(clipped);
  }

  /** Shows clipboard text sent by a viewer. */
  clipboard(text: string): void {
    this.clip = text.slice(0, MAX_CLIP_SHOWN);
    this.drawClipboard();
  }

  /** Sets the left part of the status line (e.g. size, version, client count). */
  setStatus(text: string): void {
    if (text === this.statusText) return;
    this.statusText = text;
    this.drawStatus();
  }

  /** Repaints `rect` by running `paint` clipped to it, puts marks back on top and reports it. */
  private repaint(rect: Rect, paint: () => void): void {
    const r = intersect(rect, this.fb.bounds);
    if (!r) return;
    this.fb.withClip(r, () => {
      paint();
      for (const m of this.marks) {
        if (intersect(markRect(m), r)) this.fb.fillCircle(m.x, m.y, MARK_RADIUS, m.colour);
      }
    });
    this.onDirty(r);
  }

  private drawBars(): void {
    const { fb, layout } = this;
    const { bars, ramp } = layout;
    const n = BAR_COLOURS.length;
    for (let i = 0; i < n; i++) {
      const x0 = Math.floor((i * bars.w) / n);
      const x1 = Math.floor(((i + 1) * bars.w) / n);
      fb.fillRect(bars.x + x0, bars.y, x1 - x0, bars.h, BAR_COLOURS[i]!);
    }
    for (let i = 0; i < RAMP_STEPS; i++) {
      const x0 = Math.floor((i * ramp.w) / RAMP_STEPS);
      const x1 = Math.floor(((i + 1) * ramp.w) / RAMP_STEPS);
      const v = Math.round((i * 255) / (RAMP_STEPS - 1));
      fb.fillRect(ramp.x + x0, ramp.y, x1 - x0, ramp.h, (v << 16) | (v << 8) | v);
    }
  }

  /** The block bounces along the track at a fixed speed; its colour cycles through the hues. */
  private drawBlock(): void {
    const { track, block } = this.layout;
    const t = (this.now().getTime() - this.started) / 1000;
    const span = track.w - block - 8;
    const d = (t * BLOCK_SPEED) % (2 * span);
    const x = track.x + 4 + Math.round(d < span ? d : 2 * span - d);
    const next = { x, y: track.y + 4, w: block, h: block };
    const prev = this.blockRect;
    if (prev && prev.x === next.x) return;
    this.blockRect = next;
    const colour = hue((t * 90) % 360);
    this.repaint(prev ? bounds(prev, next) : next, () => {
      if (prev) this.fb.fillRect(prev.x, prev.y, prev.w, prev.h, TRACK_COLOUR);
      this.fb.fillRect(next.x, next.y, next.w, next.h, colour);
      this.fb.fillRect(next.x + 6, next.y + 6, next.w - 12, next.h - 12, TRACK_COLOUR);
    });
  }

  private drawClock(): void {
    const text = formatClock(this.now());
    if (text === this.clockText) return;
    this.clockText = text;
    const { clock, clockScale } = this.layout;
    const style = { scale: clockScale, colour: TEXT_COLOUR, background: BACKGROUND };
    this.repaint(clock, () => this.fb.drawText(clock.x, clock.y, text, style));
  }

  private drawTyped(): void {
    const { text } = this.layout;
    const cellW = GLYPH_WIDTH * TEXT_SCALE;
    const lineH = GLYPH_HEIGHT * TEXT_SCALE;
    const cols = Math.max(1, Math.floor((text.w - 2 * PAD) / cellW));
    this.repaint(text, () => {
      this.fb.fillRect(text.x, text.y, text.w, text.h, PANEL);
      if (this.typed === '') {
        const hint = ellipsis('Type here: keys are echoed. Enter = new line, Esc clears all.', cols);
        this.fb.drawText(text.x + PAD, text.y + PAD, hint, { scale: TEXT_SCALE, colour: DIM_COLOUR });
        return;
      }
      // Wrap each typed line to the box width and show the last lines, with a block cursor.
      const lines: string[] = [];
      for (const logical of this.typed.split('\n')) {
        for (let i = 0; i === 0 || i < logical.length; i += cols) lines.push(logical.slice(i, i + cols));
      }
      if (lines[lines.length - 1]!.length === cols) lines.push('');
      const shown = lines.slice(-TEXT_LINES);
      shown.forEach((line, i) => {
        this.fb.drawText(text.x + PAD, text.y + PAD + i * lineH, line, { scale: TEXT_SCALE, colour: TEXT_COLOUR });
      });
      const last = shown[shown.length - 1]!;
      const cursorY = text.y + PAD + (shown.length - 1) * lineH + 2;
      this.fb.fillRect(text.x + PAD + last.length * cellW, cursorY, cellW - 2, lineH - 6, DIM_COLOUR);
    });
  }

  private drawClipboard(): void {
    const { clipboard } = this.layout;
    const cols = Math.floor(clipboard.w / (GLYPH_WIDTH * TEXT_SCALE));
    const label = 'Clipboard: ';
    this.repaint(clipboard, () => {
      this.fb.fillRect(clipboard.x, clipboard.y, clipboard.w, clipboard.h, BACKGROUND);
      this.fb.drawText(clipboard.x, clipboard.y, label, { scale: TEXT_SCALE, colour: DIM_COLOUR });
      const body = this.clip === '' ? '(send text from the viewer\'s clipboard)' : printable(this.clip);
      const x = clipboard.x + label.length * GLYPH_WIDTH * TEXT_SCALE;
      const colour = this.clip === '' ? DIM_COLOUR : TEXT_COLOUR;
      this.fb.drawText(x, clipboard.y, ellipsis(body, cols - label.length), { scale: TEXT_SCALE, colour });
    });
  }

  private drawStatus(): void {
    const { status } = this.layout;
    const help = 'click or drag to draw - type to echo - Esc clears';
    this.repaint(status, () => {
      this.fb.fillRect(status.x, status.y, status.w, status.h, PANEL);
      const cols = Math.floor((status.w - 2 * MARGIN) / GLYPH_WIDTH);
      const left = ellipsis(printable(this.statusText), cols);
      this.fb.drawText(MARGIN, status.y + 3, left, { colour: TEXT_COLOUR });
      if (left.length + help.length + 4 <= cols) {
        this.fb.drawText(status.w - MARGIN - help.length * GLYPH_WIDTH, status.y + 3, help, { colour: DIM_COLOUR });
      }
    });
  }
}

function markRect(m: Mark): Rect {
  return { x: m.x - MARK_RADIUS, y: m.y - MARK_RADIUS, w: 2 * MARK_RADIUS + 1, h: 2 * MARK_RADIUS + 1 };
}

/** A fully saturated colour at hue `h` degrees, as 0xRRGGBB. */
function hue(h: number): number {
  const f = (n: number): number => {
    const k = (n + h / 60) % 6;
    return Math.round(255 * (1 - Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return (f(5) << 16) | (f(3) << 8) | f(1);
}
