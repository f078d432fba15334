/**
 * Pinch to zoom on a phone (chromium emulating a 390×844 touch screen) with a real TigerVNC
 * `Xvnc`, the relay's connection to it passing through a small TCP proxy that records every byte
 * the relay sends to the machine. Outside pan mode a two-finger pinch is noVNC's Ctrl+wheel on the
 * machine (unchanged); in pan mode it zooms the picture locally, from "fit" to 3×, anchored at the
 * pinch centre, kept when the toolbar folds and unfolds, and the recording shows no pointer or
 * key message sent during the pinch.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { CLIENT_MESSAGES } from '../../src/rfb/client-messages.js';
import { API, client, config, operated, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, saveArtifacts, screenBox, until, viewerState, type TestPages } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

const FILE = 'e2e-viewer-zoom';
const PHONE = { width: 390, height: 844 };
const XK_CONTROL_L = 0xffe3;
const XK_RETURN = 0xff0d;

/** One client-to-server RFB message the relay sent to the machine. */
interface Sent {
  type: number;
  bytes: Buffer;
}

/** A key press or release in a KeyEvent (4) or QEMU extended key event (255). */
function keyOf(m: Sent): { keysym: number; down: boolean } | null {
  if (m.type === 4) return { keysym: m.bytes.readUInt32BE(4), down: m.bytes[1] !== 0 };
  if (m.type === 255 && m.bytes[1] === 0) return { keysym: m.bytes.readUInt32BE(4), down: m.bytes.readUInt16BE(2) !== 0 };
  return null;
}

function describeSent(list: Sent[]): string {
  return list.map((m) => (m.type === 5 ? `pointer(${m.bytes[1]})` : keyOf(m) ? `key(${keyOf(m)!.keysym.toString(16)})` : `type ${m.type}`)).join(' ');
}

/**
 * The client messages of one recorded RFB 3.8 stream (client to server): after the version (12
 * bytes), the chosen security type (1 byte; VNC Authentication adds a 16-byte response) and
 * ClientInit (1 byte), the messages by the one table of their sizes.
 */
function clientMessages(stream: Buffer): Sent[] {
  if (stream.length < 14) return [];
  assert.equal(stream.subarray(0, 12).toString('latin1'), 'RFB 003.008\n');
  const security = stream[12]!;
  assert.ok(security === 1 || security === 2, `security type ${security}`);
  let at = 13 + (security === 2 ? 16 : 0) + 1;
  const out: Sent[] = [];
  while (at < stream.length) {
    const spec = CLIENT_MESSAGES[stream[at]!];
    assert.ok(spec, `unknown client message type ${stream[at]} at ${at}`);
    if (stream.length - at < spec.need) break;
    const size = spec.size(stream.subarray(at));
    assert.ok(size > 0, `a message of type ${stream[at]} that cannot be followed`);
    if (at + size > stream.length) break;
    out.push({ type: stream[at]!, bytes: stream.subarray(at, at + size) });
    at += size;
  }
  return out;
}

/** A TCP proxy to `port` that keeps what each connection's client sent. */
async function recordingProxy(port: number): Promise<{ port: number; streams: Buffer[][]; close(): Promise<void> }> {
  const streams: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((downstream) => {
    const sent: Buffer[] = [];
    streams.push(sent);
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [downstream, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        downstream.destroy();
        upstream.destroy();
      });
    }
    downstream.on('data', (chunk: Buffer) => sent.push(Buffer.from(chunk)));
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    streams,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('pinch to zoom on a phone (chromium touch emulation + Xvnc)', () => {
  const browser = new BrowserHarness(FILE);
  let x: Xvnc;
  let app: TestApp;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ background: '#2850a0', desktop: 'e2e-zoom' }).then((v) => (x = v)),
      startTestApp({ pollInterval: 50 }).then((v) => (app = v)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    proxy = await recordingProxy(x.port);
    // Operated by its first viewer (control: immediate).
    const res = await client(app.port).put(`${API}/config`, config(operated(target('hmi', proxy.port, '127.0.0.1', 'HMI'))));
    assert.equal(res.status, 200, res.text);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), proxy?.close(), x?.stop(), app?.close()]);
  });

  /** What the relay has sent to the machine on the viewer's connection (the last one with messages). */
  function sent(): Sent[] {
    for (let i = proxy.streams.length - 1; i >= 0; i--) {
      const list = clientMessages(Buffer.concat(proxy.streams[i]!));
      if (list.length > 0) return list;
    }
    return [];
  }

  /** Two fingers on a horizontal line through `centre`, from `from` to `to` px apart (CDP touch events). */
  async function pinch(page: Page, centre: { x: number; y: number }, from: number, to: number): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    const fingers = (d: number) => [
      { x: centre.x - d / 2, y: centre.y, id: 1 },
      { x: centre.x + d / 2, y: centre.y, id: 2 },
    ];
    try {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: fingers(from) });
      const steps = 12;
      for (let i = 1; i <= steps; i++) {
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: fingers(from + ((to - from) * i) / steps) });
      }
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    } finally {
      await cdp.detach().catch(() => {});
    }
  }

  /** One tap (finger down and up) at a page point. */
  async function tap(page: Page, at: { x: number; y: number }): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    try {
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: at.x, y: at.y, id: 1 }] });
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    } finally {
      await cdp.detach().catch(() => {});
    }
  }

  /**
   * The picture as the page shows it: the canvas's displayed size, its size in remote pixels (the
   * part of the remote screen in view) and the scale between them; the container's size.
   */
  async function picture(page: Page): Promise<{ cssW: number; cssH: number; w: number; h: number; scale: number; boxW: number; boxH: number }> {
    return page.evaluate(`(() => {
      const c = document.querySelector('#screen canvas');
      const r = c.getBoundingClientRect();
      const box = c.parentElement.getBoundingClientRect();
      return { cssW: r.width, cssH: r.height, w: c.width, h: c.height, scale: c.width ? r.width / c.width : 0, boxW: box.width, boxH: box.height };
    })()`);
  }

  /**
   * Everything the machine got from `mark` on, up to and including a barrier: Enter typed in the
   * keyboard field after the gesture (RFB messages go in order, so whatever the gesture sent came
   * before it). Returns the messages before the barrier.
   */
  async function sentBefore(page: Page, mark: number): Promise<Sent[]> {
    await page.locator('#kbd-button').tap();
    await page.keyboard.press('Enter');
    let before: Sent[] = [];
    await until('the barrier key (Enter) at the machine', async () => {
      const list = sent().slice(mark);
      const at = list.findIndex((m) => keyOf(m)?.keysym === XK_RETURN && keyOf(m)?.down);
      before = at < 0 ? [] : list.slice(0, at);
      return { ok: at >= 0, seen: describeSent(list) };
    });
    return before;
  }

  it('outside pan mode a pinch is Ctrl+wheel on the machine; in pan mode it zooms the picture (fit to 3×, at the pinch centre) and sends no pointer or key message', async () => {
    const context = await browser.browser.newContext({ viewport: PHONE, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
    context.setDefaultTimeout(20_000);
    const log: string[] = [];
    const pageErrors: string[] = [];
    const page = await context.newPage();
    page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
      await until('the viewer connected', async () => {
        const s = await viewerState(page);
        return { ok: s.connected, seen: s.status };
      });
      // The toolbar shown (it folds away once connected on a touch screen; a fold resizes the picture).
      await until('the toolbar folded away', async () => ({ ok: !(await page.locator('#toolbar').isVisible()), seen: 'visible' }));
      await page.locator('#toolbar-handle').tap();
      await page.locator('#toolbar').waitFor({ state: 'visible' });

      // Control: outside pan mode ("fit") the pinch reaches the machine as Ctrl + wheel.
      let box = await screenBox(page);
      let centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      let mark = sent().length;
      await pinch(page, centre, 60, 300);
      await until('the pinch outside pan mode at the machine (Ctrl and wheel)', async () => {
        const list = sent().slice(mark);
        const ctrl = list.some((m) => keyOf(m)?.keysym === XK_CONTROL_L && keyOf(m)?.down);
        const wheel = list.some((m) => m.type === 5 && (m.bytes[1]! & 0x18) !== 0);
        return { ok: ctrl && wheel, seen: describeSent(list) };
      });

      // Pan mode: 1:1.
      await page.locator('#pan').tap();
      assert.equal(await page.locator('#pan').getAttribute('aria-pressed'), 'true');
      await until('the picture 1:1', async () => {
        const p = await picture(page);
        return { ok: Math.abs(p.scale - 1) < 0.01, seen: JSON.stringify(p) };
      });
      box = await screenBox(page);
      centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      // Where a tap at the centre lands on the machine at 1:1 (a tap stays a click in pan mode).
      await x.xdotool('mousemove', '1', '1');
      await tap(page, centre);
      let anchor = { x: 1, y: 1 };
      await until('the tap at 1:1 to move the remote pointer', async () => {
        anchor = await x.pointer();
        return { ok: anchor.x !== 1 || anchor.y !== 1, seen: JSON.stringify(anchor) };
      });

      // Fingers from 60 to 300 px apart: five times, held at 3×.
      mark = sent().length;
      await pinch(page, centre, 60, 300);
      await until('the picture zoomed in to 3×', async () => {
        const p = await picture(page);
        return { ok: Math.abs(p.scale - 3) < 0.05, seen: JSON.stringify(p) };
      });
      const zoomed = await picture(page);
      assert.ok(zoomed.w < x.width / 2, `a third of the remote screen's width in view: ${JSON.stringify(zoomed)}`);
      let during = await sentBefore(page, mark);
      assert.deepEqual(
        during.filter((m) => m.type === 5 || keyOf(m)),
        [],
        `no pointer or key message during the pinch in pan mode: ${describeSent(during)}`,
      );
      // Anchored: the remote point under the pinch centre is still there (the tap lands on it).
      await x.xdotool('mousemove', '1', '1');
      await tap(page, centre);
      let tapped = Date.now();
      let taps = 1;
      await until('the tap at 3× to land where the one at 1:1 did', async () => {
        const p = await x.pointer();
        // On a loaded machine a tap right after the pinch was once not seen at all (the pointer
        // never left 1,1; alone the test passes every time): tap again, at most twice. Where a tap
        // lands is still checked exactly, and a viewer that drops every tap still fails.
        if (p.x === 1 && p.y === 1 && taps < 3 && Date.now() - tapped > 3000) {
          await tap(page, centre);
          tapped = Date.now();
          taps++;
        }
        return { ok: Math.abs(p.x - anchor.x) <= 2 && Math.abs(p.y - anchor.y) <= 2, seen: `${JSON.stringify(p)} after ${taps} tap(s), at 1:1 ${JSON.stringify(anchor)}` };
      });

      // The zoom outlives a change of the picture's room (noVNC itself goes back to 1:1): the
      // toolbar folds, the same remote point stays in the middle at 3×; it unfolds, again.
      // At 3× filling the new room (right after a resize, before noVNC's reset, the canvas still
      // has the old room's size: that does not count).
      const at3 = (p: Awaited<ReturnType<typeof picture>>): boolean =>
        Math.abs(p.scale - 3) < 0.05 && Math.abs(p.w - p.boxW / 3) < 2 && Math.abs(p.h - p.boxH / 3) < 2;
      await page.locator('#fold').tap();
      await page.locator('#toolbar').waitFor({ state: 'hidden' });
      await until('the picture at 3× in the larger room', async () => {
        const p = await picture(page);
        return { ok: at3(p) && p.boxH > zoomed.boxH, seen: JSON.stringify(p) };
      });
      box = await screenBox(page);
      await x.xdotool('mousemove', '1', '1');
      await tap(page, { x: box.x + box.width / 2, y: box.y + box.height / 2 });
      await until('a tap in the middle to land where the pinch centre was', async () => {
        const p = await x.pointer();
        return { ok: Math.abs(p.x - anchor.x) <= 2 && Math.abs(p.y - anchor.y) <= 2, seen: `${JSON.stringify(p)}, pinch centre ${JSON.stringify(anchor)}` };
      });
      await page.locator('#toolbar-handle').tap();
      await page.locator('#toolbar').waitFor({ state: 'visible' });
      await until('the picture at 3× with the toolbar back', async () => {
        const p = await picture(page);
        return { ok: at3(p) && Math.abs(p.boxH - zoomed.boxH) < 1, seen: JSON.stringify(p) };
      });

      // Fingers from 300 to 30 px apart: down to "fit" (the whole remote screen in view), no further.
      box = await screenBox(page);
      centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      mark = sent().length;
      await pinch(page, centre, 300, 30);
      await until('the picture zoomed out to fit', async () => {
        const p = await picture(page);
        const fit = Math.min(p.boxW / x.width, p.boxH / x.height);
        return { ok: p.w === x.width && p.h === x.height && Math.abs(p.scale - fit) < 0.01, seen: `${JSON.stringify(p)} fit ${fit}` };
      });
      const fitted = await picture(page);
      during = await sentBefore(page, mark);
      assert.deepEqual(
        during.filter((m) => m.type === 5 || keyOf(m)),
        [],
        `no pointer or key message during the pinch in pan mode: ${describeSent(during)}`,
      );
      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
      recordReliability({
        table: 'inputs',
        name: 'phone pinch to zoom in pan mode sends nothing',
        tried: 'chromium 390×844 touch emulation on Xvnc through a recording TCP proxy: a two-finger pinch outside pan mode, then in pan mode out to 3× and back in',
        outcome: `outside pan mode noVNC sent Ctrl+wheel; in pan mode the picture went from 1:1 to ${zoomed.scale.toFixed(2)}× (${zoomed.w}×${zoomed.h} remote px in view) and to fit (${fitted.cssW}×${fitted.cssH} px, ${fitted.scale.toFixed(3)}×), a tap at the pinch centre landed on the same remote pixel (also after the toolbar folded and came back, the zoom kept), and no pointer or key message reached the machine during the pinches`,
      });
    } catch (err) {
      const pages: TestPages = { context, page, log, pageErrors, defer: () => {} };
      await saveArtifacts(FILE, 'pinch zoom', pages, err).catch(() => {});
      throw err;
    } finally {
      await context.close().catch(() => {});
    }
  });
});
