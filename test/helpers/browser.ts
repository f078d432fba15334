/**
 * @module
 * The real browser for end-to-end tests: Debian's `chromium` driven by `playwright-core`
 * (headless, no sandbox, no network beyond loopback), one per test file; a fresh context (own
 * profile state) per test. {@link BrowserHarness.test} wraps `it()`: on failure it keeps a
 * screenshot of every page of the test, with the page's console output, in `test-artifacts/`.
 * Colours are read from screenshots (what a person sees, overlays included), decoded with the
 * small PNG decoder below.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { waitFor, type WaitOptions } from './wait.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** `test-artifacts/` at the package root (build/test/helpers → ../../..). */
export const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
];

export interface TestPages {
  context: BrowserContext;
  /** The first page of the context, opened for the test. */
  page: Page;
  /** Console lines and page errors of every page in the context so far. */
  log: string[];
  /** Uncaught exceptions in any page of the context. */
  pageErrors: string[];
  /**
   * Registers a clean-up (stopping a server, removing a folder) to run after the test, last
   * registered first: after the failure screenshots, so they show the scene as it failed.
   */
  defer(cleanup: () => unknown): void;
}

/**
 * One chromium per test file. Create it at load time (so tests can be registered with
 * {@link BrowserHarness.test}), `launch()` it in `before()` and `close()` it in `after()`.
 */
export class BrowserHarness {
  private instance: Browser | undefined;

  constructor(
    /** Names the artifacts of this file's failures. */
    readonly file: string,
  ) {}

  get browser(): Browser {
    if (!this.instance) throw new Error('the browser is not launched');
    return this.instance;
  }

  /** Launches chromium (playwright gives it a fresh temporary profile and removes it on close). */
  async launch(): Promise<void> {
    this.instance = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000 });
  }

  /** A fresh context (own storage) and page, logging console output and page errors. */
  async open(viewport = { width: 960, height: 600 }): Promise<Omit<TestPages, 'defer'>> {
    const context = await this.browser.newContext({ viewport, deviceScaleFactor: 1 });
    context.setDefaultTimeout(20_000);
    const log: string[] = [];
    const pageErrors: string[] = [];
    context.on('page', (p: Page) => {
      const n = context.pages().indexOf(p);
      p.on('console', (m) => log.push(`[page ${n}] console.${m.type()}: ${m.text()}`));
      p.on('pageerror', (e) => {
        log.push(`[page ${n}] pageerror: ${e.stack ?? e.message}`);
        pageErrors.push(e.message);
      });
      p.on('framenavigated', (f) => {
        if (f === p.mainFrame()) log.push(`[page ${n}] navigated: ${f.url()}`);
      });
    });
    const page = await context.newPage();
    return { context, page, log, pageErrors };
  }

  /**
   * `it(name, fn)` with a fresh context: on failure every page's screenshot and the console log go
   * to `test-artifacts/<file>--<name>[-N].png|.log`; then the context is closed and the deferred
   * clean-ups run. A page error (uncaught exception) fails the test.
   */
  test(name: string, fn: (t: TestPages) => Promise<void>, options: { skip?: string | boolean } = {}): void {
    it(name, options, async () => {
      const cleanups: (() => unknown)[] = [];
      const pages: TestPages = { ...(await this.open()), defer: (c) => void cleanups.unshift(c) };
      let failure: { error: unknown } | undefined;
      try {
        await fn(pages);
        assertNoPageErrors(pages);
      } catch (err) {
        failure = { error: err };
        await saveArtifacts(this.file, name, pages, err).catch(() => {});
      }
      await pages.context.close().catch(() => {});
      let cleanupError: { error: unknown } | undefined;
      for (const c of cleanups) {
        try {
          await c();
        } catch (err) {
          cleanupError ??= { error: err };
        }
      }
      // A failed clean-up fails a passing test; it never hides the test's own failure.
      if (failure) throw failure.error;
      if (cleanupError) throw cleanupError.error;
    });
  }

  async close(): Promise<void> {
    const b = this.instance;
    this.instance = undefined;
    await b?.close().catch(() => {});
  }
}

function assertNoPageErrors(pages: TestPages): void {
  if (pages.pageErrors.length) throw new Error(`uncaught errors in the page:\n${pages.pageErrors.join('\n')}`);
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80);
}

/** Writes a screenshot of each open page and the log of the test to {@link ARTIFACTS}. */
export async function saveArtifacts(file: string, name: string, pages: TestPages, err: unknown): Promise<void> {
  try {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const base = path.join(ARTIFACTS, `${slug(file)}--${slug(name)}`);
    const open = pages.context.pages();
    for (const [i, p] of open.entries()) {
      const suffix = open.length > 1 ? `-${i}` : '';
      await p.screenshot({ path: `${base}${suffix}.png`, timeout: 5000 }).catch((e: Error) => pages.log.push(`screenshot ${i} failed: ${e.message}`));
      pages.log.push(`[page ${i}] url at failure: ${p.url()}`);
      const text = async (sel: string): Promise<string> =>
        (await p.locator(sel).first().textContent({ timeout: 1000 }).catch(() => null))?.trim() ?? '(none)';
      pages.log.push(`[page ${i}] status line: ${await text('#status-text')}; overlay: ${await text('#overlay-text')}; message: ${await text('#message')}`);
    }
    const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
    fs.writeFileSync(`${base}.log`, `${why}\n\n${pages.log.join('\n')}\n`);
  } catch {
    // Keeping artifacts must never hide the failure itself.
  }
}

// ---- what is on the screen --------------------------------------------------------------------

export type Rgb = [number, number, number];

/** `#rrggbb` or 0xrrggbb as [r, g, b]. */
export function rgb(colour: string | number): Rgb {
  const n = typeof colour === 'number' ? colour : parseInt(colour.replace(/^#/, ''), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

export function near(a: Rgb, b: Rgb, tolerance = 12): boolean {
  return a.every((v, i) => Math.abs(v - b[i]!) <= tolerance);
}

export function hex([r, g, b]: Rgb): string {
  return `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

export interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel, row by row. */
  data: Buffer;
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are). */
export function decodePng(png: Buffer): Image {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let pos = 8;
  let width = 0;
  let height = 0;
  let colourType = 0;
  const idat: Buffer[] = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    const body = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      colourType = body[9]!;
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || body[12] !== 0) {
        throw new Error(`unsupported PNG (depth ${depth}, colour type ${colourType}, interlace ${body[12]})`);
      }
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    pos += 12 + len;
  }
  const bpp = colourType === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const cur = Buffer.alloc(stride);
  const prev = Buffer.alloc(stride);
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      switch (filter) {
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
      }
      cur[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      data[o] = cur[x * bpp]!;
      data[o + 1] = cur[x * bpp + 1]!;
      data[o + 2] = cur[x * bpp + 2]!;
      data[o + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    cur.copy(prev);
  }
  return { width, height, data };
}

export function pixel(img: Image, x: number, y: number): Rgb {
  const o = (y * img.width + x) * 4;
  return [img.data[o]!, img.data[o + 1]!, img.data[o + 2]!];
}

/** The noVNC canvas on the viewer page. */
export function canvas(page: Page): Locator {
  return page.locator('#screen canvas');
}

/** Where the remote screen is drawn on the page (the canvas box), in CSS pixels. */
export async function screenBox(page: Page): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = await canvas(page).boundingBox();
  if (!box || box.width < 1 || box.height < 1) throw new Error('the viewer shows no canvas');
  return box;
}

/** The page coordinates of remote pixel (rx, ry), given the remote screen size. */
export async function pagepoint(page: Page, remote: { width: number; height: number }, rx: number, ry: number): Promise<{ x: number; y: number }> {
  const box = await screenBox(page);
  return { x: box.x + ((rx + 0.5) * box.width) / remote.width, y: box.y + ((ry + 0.5) * box.height) / remote.height };
}

/**
 * The colours a person sees at the given remote screen points: one screenshot of the page, each
 * point mapped through the canvas' position and scale. A point outside the viewport reads black.
 */
export async function remoteColours(page: Page, remote: { width: number; height: number }, points: [number, number][]): Promise<Rgb[]> {
  const box = await screenBox(page);
  const img = decodePng(await page.screenshot({ type: 'png', timeout: 10_000 }));
  return points.map(([rx, ry]) => {
    const x = Math.floor(box.x + ((rx + 0.5) * box.width) / remote.width);
    const y = Math.floor(box.y + ((ry + 0.5) * box.height) / remote.height);
    return x >= 0 && y >= 0 && x < img.width && y < img.height ? pixel(img, x, y) : [0, 0, 0];
  });
}

/** A spread of points over the whole remote screen (corners inset, centre, edges' middles). */
export function spread(remote: { width: number; height: number }, inset = 8): [number, number][] {
  const xs = [inset, Math.floor(remote.width / 2), remote.width - 1 - inset];
  const ys = [inset, Math.floor(remote.height / 2), remote.height - 1 - inset];
  return xs.flatMap((x) => ys.map((y) => [x, y] as [number, number]));
}

/** The viewer's test hook `window.ctrlxViewer`. */
export async function viewerState(page: Page): Promise<{ connected: boolean; status: string }> {
  return page.evaluate(() => {
    const v = (globalThis as unknown as { ctrlxViewer?: { connected: boolean; status: string } }).ctrlxViewer;
    return { connected: v ? v.connected : false, status: v ? v.status : '' };
  });
}

/** The overlay's text if it is shown, else null. */
export async function overlayText(page: Page): Promise<string | null> {
  const overlay = page.locator('#overlay');
  if (!(await overlay.isVisible())) return null;
  return (await page.locator('#overlay-text').textContent()) ?? '';
}

/**
 * Polls `probe` until it reports `ok`; fails after `timeoutMs` (default 20 s: a bound that only
 * turns a hang into a readable failure) with `what` and the last thing `probe` saw. A probe that
 * throws (a page in the middle of a navigation) counts as not yet.
 */
export async function until(what: string, probe: () => Promise<{ ok: boolean; seen: string }>, options: WaitOptions = {}): Promise<void> {
  let seen = '';
  await waitFor(
    what,
    async () => {
      try {
        const r = await probe();
        seen = r.seen;
        return r.ok;
      } catch (err) {
        seen = `error: ${err instanceof Error ? err.message : String(err)}`;
        return false;
      }
    },
    { timeoutMs: 20_000, intervalMs: 100, ...options, seen: () => seen },
  );
}

/**
 * Waits until the viewer says it is connected (status naming `desktop` when given) and every
 * sampled point of the remote screen shows `colour`.
 */
export async function waitForScreen(
  page: Page,
  remote: { width: number; height: number },
  colour: string,
  desktop?: string,
  timeoutMs = 20_000,
): Promise<void> {
  const want = rgb(colour);
  const points = spread(remote);
  await until(
    `the viewer to show ${colour}${desktop ? ` from ${desktop}` : ''}`,
    async () => {
      const state = await viewerState(page);
      const overlay = await overlayText(page);
      const seen = (await remoteColours(page, remote, points)).map(hex);
      const ok =
        state.connected &&
        overlay === null &&
        (!desktop || state.status.includes(desktop)) &&
        seen.every((c) => near(rgb(c), want));
      return { ok, seen: `connected=${state.connected} status=${JSON.stringify(state.status)} overlay=${JSON.stringify(overlay)} colours=${seen.join(',')}` };
    },
    { timeoutMs },
  );
}
