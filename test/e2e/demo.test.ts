/**
 * End to end with the built-in demo VNC server (`src/demo`) as the fallback target, as `npm start`
 * / `ctrlx-novnc serve --demo` runs it: with no target configured the viewer shows the demo screen
 * (its colour bars), a click leaves a mark where it was pressed, typed keys appear on it; once a
 * target is saved the demo is no longer used; and the same through the CLI, `serve --demo`.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { BAR_COLOURS, MARK_COLOURS, TEXT_COLOUR, demoLayout } from '../../src/demo/scene.js';
import { API, client, config, makeTempDir, removeDir, startTestApp, target, type TestApp } from '../helpers/app.js';
import { spawnCli } from '../helpers/cli.js';
import { BrowserHarness, hex, near, pagepoint, remoteColours, rgb, until, viewerState, decodePng, pixel, screenBox, overlayText } from '../helpers/browser.js';

const FILE = 'e2e-demo';

describe('viewer end to end with the built-in demo server (chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let demo: DemoServer;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  const remote = { width: 800, height: 600 };

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startDemoServer({ host: '127.0.0.1', port: 0, ...remote }).then(async (d) => {
        demo = d;
        app = await startTestApp({ fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: d.port } });
      }),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    http = client(app.port);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close()]);
  });

  const e2e = browser.test.bind(browser);

  /** Opens the viewer and waits until it shows the demo's colour bars. */
  async function viewDemo(page: Page, url = `${app.origin}/ctrlx-novnc/viewer/`, screen = remote): Promise<void> {
    await page.goto(url);
    const { bars } = demoLayout(screen.width, screen.height);
    const w = bars.w / BAR_COLOURS.length;
    const points = BAR_COLOURS.map((_, i) => [Math.floor(bars.x + w * (i + 0.5)), Math.floor(bars.y + bars.h / 2)] as [number, number]);
    await until('the demo colour bars', async () => {
      const state = await viewerState(page);
      const seen = await remoteColours(page, screen, points);
      const ok = state.connected && (await overlayText(page)) === null && seen.every((c, i) => near(c, rgb(BAR_COLOURS[i]!)));
      return { ok, seen: `connected=${state.connected} status=${JSON.stringify(state.status)} bars=${seen.map(hex).join(',')}` };
    });
  }

  e2e('with no target configured the viewer shows the demo screen', async ({ page }) => {
    await viewDemo(page);
    assert.match((await viewerState(page)).status, /^Connected to Demo \(demo\) — ctrlx-novnc demo$/);
    assert.deepEqual(await http.config(), config(), 'the demo is a fallback, not a saved target');
  });

  e2e('a click on the demo screen leaves a mark where it was pressed, typed keys appear on it', async ({ page }) => {
    await viewDemo(page);
    const { text } = demo.scene.layout;
    // Click in the empty part of the text area (right half, middle line).
    const spot = { x: text.x + Math.floor(text.w * 0.8), y: text.y + Math.floor(text.h / 2) };
    const before = demo.scene.fb.pixel(spot.x, spot.y);
    assert.notEqual(before, MARK_COLOURS[0]);
    const at = await pagepoint(page, remote, spot.x, spot.y);
    await page.mouse.click(at.x, at.y);
    await until('the mark under the click', async () => {
      const [seen] = await remoteColours(page, remote, [[spot.x, spot.y]]);
      return { ok: near(seen!, rgb(MARK_COLOURS[0])), seen: hex(seen!) };
    });

    // Typed text is drawn in the text area (left part): count text-coloured pixels there.
    const textPixels = async (): Promise<number> => {
      const box = await screenBox(page);
      const scale = box.width / remote.width;
      const img = decodePng(await page.screenshot({ clip: { x: box.x + text.x * scale, y: box.y + text.y * scale, width: (text.w / 2) * scale, height: text.h * scale } }));
      let n = 0;
      for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) if (near(pixel(img, x, y), rgb(TEXT_COLOUR), 40)) n++;
      return n;
    };
    const blank = await textPixels();
    await page.keyboard.type('Hello demo');
    await until('the typed text on the demo screen', async () => {
      const n = await textPixels();
      return { ok: n > blank + 100, seen: `${n} text pixels (before typing ${blank})` };
    });
  });

  e2e('once a target is saved the viewer no longer uses the demo', async ({ page }) => {
    await viewDemo(page);
    // A target where nothing listens: the session to the demo is closed, the viewer reconnects
    // to the configured target and says it cannot reach it.
    const res = await http.put(`${API}/config`, config(target('plc', 9, '127.0.0.1', 'PLC')));
    assert.equal(res.status, 200, res.text);
    try {
      await until('the viewer to leave the demo for the configured target', async () => {
        const text = await overlayText(page);
        return { ok: text !== null && /^Cannot reach the VNC server 127\.0\.0\.1:9: connection refused/.test(text), seen: String(text) };
      });
      assert.equal(demo.clients, 0, 'no session to the demo is left');
      assert.equal(await page.locator('#target').inputValue(), 'plc', 'the viewer knows the new target');
    } finally {
      await http.put(`${API}/config`, config());
    }
  });

  e2e('`ctrlx-novnc serve --demo` (what `npm start` runs) shows the demo screen in the browser', async ({ page, defer }) => {
    const data = await makeTempDir('e2e-cli');
    defer(() => removeDir(data));
    const cli = spawnCli(['serve', '--demo', '--listen', '127.0.0.1:0', '--data', data]);
    defer(() => cli.stop('SIGKILL'));
    const open = /open (http:\/\/127\.0\.0\.1:\d+\/ctrlx-novnc\/)/;
    const url = open.exec(await cli.waitForLine(open))![1]!;
    // The demo's default screen is 1024x640.
    await viewDemo(page, url, { width: 1024, height: 640 });
    assert.match(page.url(), /\/ctrlx-novnc\/viewer\/$/);
    assert.match((await viewerState(page)).status, /\(demo\) — ctrlx-novnc demo$/);
    assert.deepEqual(await cli.stop('SIGTERM'), { code: 0, signal: null }, cli.stderr.join('\n'));
  });
});
