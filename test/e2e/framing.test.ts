/**
 * Framing, as chromium enforces it: the ctrlX UI shows the app's pages in a frame of its own
 * origin, so a same-origin frame must load and the viewer in it must connect; a page of another
 * origin must not be able to frame the viewer or the settings page (CSP `frame-ancestors 'self'`
 * and `X-Frame-Options: SAMEORIGIN`), so no foreign page can overlay or click-jack them.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe } from 'node:test';
import type { Frame, Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until } from '../helpers/browser.js';

const FILE = 'e2e-framing';

/** A page of another origin (another loopback port) that frames `url`. */
async function foreignFramer(url: string): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>foreign</title><iframe id="f" src="${url}" width="800" height="600"></iframe>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The frame of `page` whose element is `#f`. */
async function childFrame(page: Page): Promise<Frame> {
  const handle = await page.locator('#f').elementHandle();
  const frame = await handle?.contentFrame();
  assert.ok(frame, 'the iframe has a frame');
  return frame;
}

describe('framing of the app pages (chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let demo: DemoServer;
  let app: TestApp;

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 480 }).then(async (d) => {
        demo = d;
        app = await startTestApp({ fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: d.port } });
      }),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close()]);
  });

  const e2e = browser.test.bind(browser);

  e2e('a page of the same origin frames the viewer, and the viewer in the frame connects', async ({ page }) => {
    // The settings page stands in for the ctrlX UI: same origin, our CSP (frame-src falls back to 'self').
    await page.goto(`${app.origin}/ctrlx-novnc/config/`);
    // A string: the test code is compiled without the DOM types.
    const src = JSON.stringify(`${app.origin}/ctrlx-novnc/viewer/`);
    await page.evaluate(`(() => {
      const f = document.createElement('iframe');
      f.id = 'f';
      f.src = ${src};
      f.width = '640';
      f.height = '400';
      document.body.append(f);
    })()`);
    const frame = await childFrame(page);
    await until('the framed viewer connected to the demo', async () => {
      const state = await frame.evaluate(() => {
        const v = (globalThis as unknown as { ctrlxViewer?: { connected: boolean; status: string } }).ctrlxViewer;
        return { connected: v?.connected ?? false, status: v?.status ?? '' };
      });
      return { ok: state.connected, seen: JSON.stringify(state) };
    });
    assert.equal(await frame.locator('canvas').count() > 0, true, 'the framed viewer draws into a canvas');
  });

  for (const [what, path] of [
    ['viewer', 'viewer/'],
    ['settings page', 'config/'],
  ] as const) {
    e2e(`a page of another origin cannot frame the ${what}`, async ({ page, log, defer }) => {
      const framer = await foreignFramer(`${app.origin}/ctrlx-novnc/${path}`);
      defer(() => framer.close());
      const sessionsBefore = app.app.supervisor.status().totals.sessionsTotal;
      await page.goto(`${framer.origin}/`);
      const frame = await childFrame(page);
      await frame.waitForLoadState('load');
      // Blocked frames show chromium's error page instead of the document, and the console says why.
      await until('chromium refused to frame the page', async () => {
        // Chromium's words vary by version ("Refused to frame …", "Framing '…' violates …"); the directive does not.
        const refused = log.some((l) => l.includes(app.origin) && l.includes(`directive: "frame-ancestors 'self'"`));
        return { ok: refused, seen: log.join('\n') || '(no console output)' };
      });
      const content = await frame.evaluate<string>('document.title').catch((err: Error) => `(unreadable: ${err.message})`);
      assert.doesNotMatch(content, /Remote screen/, 'the framed document is not the app page');
      assert.equal(await frame.locator('#config-form, canvas, #overlay').count(), 0, 'none of the app page rendered in the frame');
      // And no viewer ran in the frame: no relay session was opened.
      assert.equal(app.app.supervisor.status().totals.sessionsTotal, sessionsBefore);
    });
  }
});
