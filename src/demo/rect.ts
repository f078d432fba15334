/**
 * @module
 * Rectangles and a small dirty-region set: what changed on screen since a client's last update.
 */

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function area(r: Rect): number {
  return r.w * r.h;
}

/** The overlap of two rectangles, or undefined when they do not overlap. */
export function intersect(a: Rect, b: Rect): Rect | undefined {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.w, b.x + b.w);
  const y2 = Math.min(a.y + a.h, b.y + b.h);
  return x2 > x && y2 > y ? { x, y, w: x2 - x, h: y2 - y } : undefined;
}

/** The smallest rectangle holding both. */
export function bounds(a: Rect, b: Rect): Rect {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}

export function contains(outer: Rect, inner: Rect): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.w <= outer.x + outer.w &&
    inner.y + inner.h <= outer.y + outer.h
  );
}

/** `a` minus `b`: up to four rectangles (above, below, left, right of the overlap). */
export function subtract(a: Rect, b: Rect): Rect[] {
  const o = intersect(a, b);
  if (!o) return [a];
  const out: Rect[] = [];
  if (o.y > a.y) out.push({ x: a.x, y: a.y, w: a.w, h: o.y - a.y });
  if (o.y + o.h < a.y + a.h) out.push({ x: a.x, y: o.y + o.h, w: a.w, h: a.y + a.h - (o.y + o.h) });
  if (o.x > a.x) out.push({ x: a.x, y: o.y, w: o.x - a.x, h: o.h });
  if (o.x + o.w < a.x + a.w) out.push({ x: o.x + o.w, y: o.y, w: a.x + a.w - (o.x + o.w), h: o.h });
  return out;
}

/** Rectangles farther apart than this many pixels are kept separate. */
const MERGE_GAP = 8;
/** Past this many rectangles the region collapses into its bounding box. */
const MAX_RECTS = 24;

/**
 * A set of changed rectangles. Adding merges a rectangle with neighbours when their bounding box
 * wastes little area, so drawing along a pointer drag or a line of text stays a few rectangles.
 */
export class DirtyRegion {
  private rects: Rect[] = [];

  get empty(): boolean {
    return this.rects.length === 0;
  }

  add(rect: Rect): void {
    if (rect.w <= 0 || rect.h <= 0) return;
    let r = rect;
    for (let merged = true; merged; ) {
      merged = false;
      for (let i = 0; i < this.rects.length; i++) {
        const other = this.rects[i]!;
        const near = intersect(
          { x: other.x - MERGE_GAP, y: other.y - MERGE_GAP, w: other.w + 2 * MERGE_GAP, h: other.h + 2 * MERGE_GAP },
          r,
        );
        const box = bounds(other, r);
        if (contains(other, r) || (near && area(box) <= (area(other) + area(r)) * 1.5) || contains(r, other)) {
          this.rects.splice(i, 1);
          r = box;
          merged = true;
          break;
        }
      }
    }
    this.rects.push(r);
    if (this.rects.length > MAX_RECTS) this.rects = [this.rects.reduce(bounds)];
  }

  /**
   * Removes and returns the parts inside `clip`; what lies outside stays dirty.
   */
  take(clip: Rect): Rect[] {
    const taken: Rect[] = [];
    const kept: Rect[] = [];
    for (const r of this.rects) {
      const inside = intersect(r, clip);
      if (!inside) {
        kept.push(r);
        continue;
      }
      taken.push(inside);
      kept.push(...subtract(r, clip));
    }
    this.rects = kept;
    return taken;
  }

  clear(): void {
    this.rects = [];
  }
}
