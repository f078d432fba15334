/**
 * The viewer on a phone (chromium emulating a 390×844 touch screen, `isMobile`, `hasTouch`) with
 * a real TigerVNC `Xvnc`: the toolbar folds away behind a handle, touch targets are at least
 * 44 px, pinch-zoom is not disabled; in pan mode a one-finger swipe moves the picture and sends no
 * pointer event (the X pointer stays where it was, while the same swipe outside pan mode moves
 * it); the keyboard button opens a field whose typing reaches an xterm; the extra-keys bar sends
 * Esc, Tab, F-keys and a sticky Ctrl (read back from `cat -v` in the xterm). The banners' links
 * (the demo's "Add a real machine") are 44 px tall as well.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { startDemoServer } from '../../src/demo/demo-server.js';
import { API, client, config, makeTempDir, operated, removeDir, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, decodePng, hex, near, pixel, rgb, saveArtifacts, screenBox, until, viewerState, type TestPages } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

const FILE = 'e2e-viewer-touch';
const RED = '#c83c28';
const PHONE = { width: 390, height: 844 };

describe('viewer on a phone (chromium touch emulation + Xvnc)', () => {
  const browser = new BrowserHarness(FILE);
  let x: Xvnc;
  let app: TestApp;
  let dir: string;
  let typed: string;
  let xterm: ReturnType<Xvnc['client']>;
  /** The xterm's window: position and size on the remote screen. */
  let win = { x: 0, y: 0, width: 0, height: 0 };
  let xtermId = '';

  before(async () => {
    dir = await makeTempDir('e2e-touch');
    typed = path.join(dir, 'typed.txt');
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ background: RED, desktop: 'e2e-phone' }).then((v) => (x = v)),
      startTestApp({ pollInterval: 50 }).then((v) => (app = v)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    // A small terminal in the top left corner whose input goes, made visible by `cat -v`, to a file.
    xterm = x.client('xterm', ['-geometry', '20x4+0+0', '-title', 'e2e-phone', '-e', 'sh', '-c', 'cat -v > "$0"', typed]);
    let id = '';
    await until('the xterm window to be mapped', async () => {
      id = await x.xdotool('search', '--onlyvisible', '--name', '^e2e-phone$').catch(() => '');
      return { ok: /^\d+$/.test(id) && fs.existsSync(typed), seen: `window=${id} ${xterm.output()}` };
    });
    xtermId = id;
    const geo = Object.fromEntries((await x.xdotool('getwindowgeometry', '--shell', id)).split('\n').map((l) => l.split('=') as [string, string]));
    win = { x: Number(geo.X), y: Number(geo.Y), width: Number(geo.WIDTH), height: Number(geo.HEIGHT) };
    // Operated by its first viewer (control: immediate): this page has no "Take control" yet.
    const res = await client(app.port).put(`${API}/config`, config(operated(target('hmi', x.port, '127.0.0.1', 'HMI'))));
    assert.equal(res.status, 200, res.text);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), xterm?.stop(), x?.stop(), app?.close(), dir ? removeDir(dir) : undefined]);
  });

  /** `it()` with a phone context; on failure the page's screenshot and log go to test-artifacts/. */
  function phoneTest(name: string, fn: (page: Page) => Promise<void>): void {
    it(name, async () => {
      const context = await browser.browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
      context.setDefaultTimeout(20_000);
      const log: string[] = [];
      const pageErrors: string[] = [];
      const page = await context.newPage();
      page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => pageErrors.push(e.message));
      try {
        await fn(page);
        assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
      } catch (err) {
        const pages: TestPages = { context, page, log, pageErrors, defer: () => {} };
        await saveArtifacts(FILE, name, pages, err).catch(() => {});
        throw err;
      } finally {
        await context.close().catch(() => {});
      }
    });
  }

  async function openConnected(page: Page): Promise<void> {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
  }

  /** The remote pointer after the X server has seen everything sent so far. */
  async function pointer(): Promise<{ x: number; y: number }> {
    return x.pointer();
  }

  /** A one-finger swipe on the touch screen (CDP touch events, as a finger sends them). */
  async function swipe(page: Page, from: { x: number; y: number }, to: { x: number; y: number }): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    try {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: from.x, y: from.y }] });
      const steps = 12;
      for (let i = 1; i <= steps; i++) {
        const p = { x: from.x + ((to.x - from.x) * i) / steps, y: from.y + ((to.y - from.y) * i) / steps };
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [p] });
      }
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    } finally {
      await cdp.detach().catch(() => {});
    }
  }

  /** The colour at page point (px, py). */
  async function colourAt(page: Page, px: number, py: number): Promise<string> {
    const img = decodePng(await page.screenshot({ type: 'png' }));
    return hex(pixel(img, Math.floor(px), Math.floor(py)));
  }

  /** Brings the folded toolbar back with its handle. */
  async function unfold(page: Page): Promise<void> {
    if (await page.locator('#toolbar').isVisible()) return;
    await page.locator('#toolbar-handle').tap();
    await page.locator('#toolbar').waitFor({ state: 'visible' });
  }

  phoneTest('the toolbar folds away behind a handle, touch targets are at least 44 px, pinch-zoom is allowed', async (page) => {
    await openConnected(page);
    const viewport = (await page.locator('meta[name=viewport]').getAttribute('content')) ?? '';
    assert.doesNotMatch(viewport, /user-scalable\s*=\s*no|maximum-scale/, `viewport meta: ${viewport}`);
    await until('the toolbar folded away', async () => {
      const shown = await page.locator('#toolbar').isVisible();
      return { ok: !shown, seen: `toolbar visible=${shown}` };
    });
    const canvasBox = await screenBox(page);
    const handle = await page.locator('#toolbar-handle').boundingBox();
    assert.ok(handle && handle.width >= 44 && handle.height >= 44, `handle ${JSON.stringify(handle)}`);
    await unfold(page);
    await page.locator('#extra-toggle').tap();
    const small: string[] = [];
    for (const el of await page.locator('#toolbar button:visible, #toolbar select:visible, #toolbar label.toggle:visible, #extra-keys button:visible').all()) {
      const box = await el.boundingBox();
      if (box && (box.height < 44 || box.width < 44)) small.push(`${(await el.innerText()).trim() || (await el.getAttribute('id'))}: ${box.width}×${box.height}`);
    }
    assert.deepEqual(small, [], 'every touch target is at least 44×44 px');
    await page.locator('#fold').tap();
    await page.locator('#toolbar').waitFor({ state: 'hidden' });
    const folded = await screenBox(page);
    assert.ok(folded.width >= canvasBox.width - 1, 'the folded toolbar gives the screen its room');
  });

  phoneTest('the links and buttons of the banners are touch targets of at least 44 px (the demo banner)', async (page) => {
    // The built-in demo as the only target: its banner links to the settings to add a real machine.
    const demo = await startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 480 });
    const demoApp = await startTestApp({ fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: demo.port } }).catch(async (err) => {
      await demo.close();
      throw err;
    });
    try {
      await page.goto(`${demoApp.origin}/ctrlx-novnc/viewer/`);
      await page.locator('#demo-add').waitFor({ state: 'visible' });
      const targets = await page.locator('.banner a:visible, .banner button:visible, #banner-slot a:visible, #banner-slot button:visible').all();
      assert.ok(targets.length >= 1, 'the demo banner has its link');
      const small: string[] = [];
      for (const el of targets) {
        const box = await el.boundingBox();
        if (!box || box.height < 44 || box.width < 44) small.push(`${(await el.innerText()).trim()}: ${box ? `${box.width}×${box.height}` : 'no box'}`);
      }
      assert.deepEqual(small, [], 'every banner link and button is at least 44 px tall and wide');
      recordReliability({
        table: 'inputs',
        name: 'phone banner links are touch targets',
        tried: 'chromium 390×844 touch emulation: the viewer on the built-in demo, its "Demo screen" banner',
        outcome: 'the "Add a real machine" link (before: 137×15 px) and every other banner link or button are at least 44 px tall and wide',
      });
    } finally {
      await Promise.allSettled([demoApp.close(), demo.close()]);
    }
  });

  phoneTest('in pan mode a one-finger swipe moves the picture and sends no pointer event; outside pan mode it does', async (page) => {
    await openConnected(page);
    await unfold(page);
    // Control: outside pan mode a swipe is a drag on the machine and moves its pointer.
    await x.xdotool('mousemove', String(x.width - 20), String(x.height - 20));
    const start = await pointer();
    let box = await screenBox(page);
    await swipe(page, { x: box.x + box.width * 0.8, y: box.y + box.height * 0.5 }, { x: box.x + box.width * 0.3, y: box.y + box.height * 0.5 });
    await until('the swipe outside pan mode to move the remote pointer', async () => {
      const p = await pointer();
      return { ok: p.x !== start.x || p.y !== start.y, seen: JSON.stringify(p) };
    });

    // Pan mode: 1:1, the xterm (white) in the top left corner of the picture.
    await x.xdotool('mousemove', String(x.width - 20), String(x.height - 20));
    const parked = await pointer();
    await page.locator('#pan').tap();
    assert.equal(await page.locator('#pan').getAttribute('aria-pressed'), 'true');
    // A spot in the xterm's white text area, away from its (black) cursor in the first cell.
    const corner = { x: win.x + Math.floor(win.width * 0.75), y: win.y + Math.floor(win.height * 0.75) };
    await until('the picture 1:1 with the xterm in the top left corner', async () => {
      box = await screenBox(page);
      const c = await colourAt(page, box.x + corner.x, box.y + corner.y);
      return { ok: box.width < x.width + 1 && near(rgb(c), rgb('#ffffff'), 30), seen: `canvas ${JSON.stringify(box)} colour ${c}` };
    });
    const dx = win.x + win.width + 60;
    await swipe(page, { x: box.x + Math.min(box.width - 10, dx + 20), y: box.y + box.height * 0.6 }, { x: box.x + 20, y: box.y + box.height * 0.6 });
    await until('the picture to have moved (the corner shows the red desktop)', async () => {
      const c = await colourAt(page, box.x + corner.x, box.y + corner.y);
      return { ok: near(rgb(c), rgb(RED), 30), seen: c };
    });
    // A barrier: a key sent after the swipe on the same connection reaches the xterm (given the
    // keyboard focus explicitly); RFB messages are handled in order, so any pointer event of
    // the swipe has reached the X server before it.
    await x.xdotool('windowfocus', '--sync', xtermId);
    const size = fs.statSync(typed).size;
    await page.locator('#kbd-button').tap();
    await page.keyboard.press('Enter');
    await until('the barrier key in the xterm', async () => {
      const now = fs.statSync(typed).size;
      return { ok: now > size, seen: `${now} bytes (before ${size})` };
    });
    assert.deepEqual(await pointer(), parked, 'no pointer event reached the machine');
    recordReliability({
      table: 'inputs',
      name: 'phone pan mode sends no pointer events',
      tried: 'chromium 390×844 touch emulation on Xvnc: a one-finger swipe outside and inside pan mode',
      outcome: 'outside pan mode the remote pointer moved; in pan mode the picture moved and the remote pointer stayed where it was',
    });
  });

  phoneTest('the keyboard button opens a field whose typing reaches the xterm; extra keys send Esc, Tab, F1, F12 and a sticky Ctrl', async (page) => {
    // What earlier tests left in the file (cat holds it open: it is read from here on).
    const base = fs.statSync(typed).size;
    const typedNow = (): string => fs.readFileSync(typed).subarray(base).toString('utf8');
    await openConnected(page);
    // No window manager: the keyboard follows the pointer; park it over the xterm.
    await x.xdotool('mousemove', String(win.x + Math.floor(win.width / 2)), String(win.y + Math.floor(win.height / 2)));
    await unfold(page);
    await page.locator('#extra-toggle').tap();
    await page.locator('#kbd-button').tap();
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'kbd-input', 'the typing field has the focus');
    await page.keyboard.type('Hi phone 42');
    await page.keyboard.press('Enter');
    await until('the typed line in the xterm', async () => {
      const text = typedNow();
      return { ok: text === 'Hi phone 42\n', seen: JSON.stringify(text) };
    });

    const bar = page.locator('#extra-keys');
    await bar.getByRole('button', { name: 'Esc', exact: true }).tap();
    await bar.getByRole('button', { name: 'Tab', exact: true }).tap();
    await bar.getByRole('button', { name: 'F1', exact: true }).tap();
    await bar.getByRole('button', { name: 'F12', exact: true }).tap();
    const ctrl = bar.getByRole('button', { name: 'Ctrl', exact: true });
    await ctrl.tap();
    assert.equal(await ctrl.getAttribute('aria-pressed'), 'true', 'Ctrl stays down');
    // The typing field kept the focus through the taps on the bar.
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'kbd-input');
    await page.keyboard.type('a');
    await ctrl.tap();
    assert.equal(await ctrl.getAttribute('aria-pressed'), 'false');
    await page.keyboard.press('Enter');
    // cat -v: Esc is ^[, Tab stays a tab, F1 is ESC O P, F12 ESC [24~, Ctrl+A is ^A.
    await until('the extra keys in the xterm', async () => {
      const text = typedNow();
      return { ok: text === 'Hi phone 42\n^[\t^[OP^[[24~^A\n', seen: JSON.stringify(text) };
    });
    recordReliability({
      table: 'inputs',
      name: 'phone keyboard and extra keys',
      tried: 'chromium 390×844 touch emulation on Xvnc: typing in the keyboard field, then Esc, Tab, F1, F12, sticky Ctrl + a from the extra-keys bar',
      outcome: 'the xterm (cat -v) read "Hi phone 42" and "^[<tab>^[OP^[[24~^A": every key arrived, in order',
    });
  });
});
