/**
 * End to end, as a person uses it: a real VNC server (TigerVNC `Xvnc` with a known background
 * colour), the app in-process, and Debian's chromium opening the viewer through the app's relay.
 * The assertions are on what is seen (pixels of the page, the overlay, the status line) and on
 * what reaches the X server (a line typed into an xterm, the pointer position, the clicked window).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { API, client, config, makeTempDir, operated, removeDir, startTestApp, target, type TestApp } from '../helpers/app.js';
import {
  BrowserHarness,
  hex,
  near,
  overlayText,
  pagepoint,
  remoteColours,
  rgb,
  screenBox,
  until,
  viewerState,
  waitForScreen,
} from '../helpers/browser.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

const FILE = 'e2e-viewer';
const RED = '#c83c28';
const BLUE = '#2864c8';
const GREEN = '#28a050';
const PURPLE = '#8040a0';
const YELLOW = '#d0b020';

describe('viewer end to end (Xvnc + chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let a: Xvnc;
  let b: Xvnc;
  let app: TestApp;
  let http: ReturnType<typeof client>;

  // Started together; after() stops whatever did start, even if another part failed.
  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ background: RED, desktop: 'e2e-A' }).then((x) => (a = x)),
      startXvnc({ background: BLUE, desktop: 'e2e-B' }).then((x) => (b = x)),
      startTestApp({ pollInterval: 50 }).then((x) => (app = x)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    http = client(app.port);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), a?.stop(), b?.stop(), app?.close()]);
  });

  async function configure(...targets: ReturnType<typeof target>[]): Promise<void> {
    const res = await http.put(`${API}/config`, config(...targets));
    assert.equal(res.status, 200, res.text);
  }

  async function openViewer(page: Page, query = ''): Promise<void> {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/${query}`);
  }

  const e2e = browser.test.bind(browser);

  e2e('shows the remote screen: the VNC server background fills the canvas, and changes on it show up live', async ({ page }) => {
    await configure(target('a', a.port, '127.0.0.1', 'Server A'));
    await openViewer(page);
    await waitForScreen(page, a, RED, 'e2e-A');
    const { status } = await viewerState(page);
    assert.match(status, /^Connected to Server A — e2e-A$/);
    // Fit to window keeps the remote aspect ratio.
    const box = await screenBox(page);
    assert.ok(Math.abs(box.width / box.height - a.width / a.height) < 0.02, `canvas ${box.width}x${box.height}`);
    // A change on the remote screen reaches the page without any action in the browser.
    await a.setBackground(YELLOW);
    try {
      await waitForScreen(page, a, YELLOW, 'e2e-A');
    } finally {
      await a.setBackground(RED);
    }
    await waitForScreen(page, a, RED, 'e2e-A');
  });

  e2e('a click lands on the window under it and typed keys reach the X server', async ({ page, defer }) => {
    const dir = await makeTempDir('e2e-xterm');
    defer(() => removeDir(dir));
    const typed = path.join(dir, 'typed.txt');
    // A terminal whose input goes to a file: what reaches the X server can be read back.
    const xterm = a.client('xterm', ['-geometry', '40x8+220+160', '-title', 'e2e-typing', '-e', 'sh', '-c', 'cat > "$0"', typed]);
    defer(() => xterm.stop());
    // Operated by its first viewer (control: immediate): this page has no "Take control".
    await configure(operated(target('a', a.port, '127.0.0.1', 'Server A')));
    let win = '';
    await until('the xterm window to be mapped', async () => {
      win = await a.xdotool('search', '--onlyvisible', '--name', '^e2e-typing$').catch(() => '');
      return { ok: /^\d+$/.test(win) && fs.existsSync(typed), seen: `window=${win} xterm running=${xterm.running} ${xterm.output()}` };
    });
    const geo = Object.fromEntries((await a.xdotool('getwindowgeometry', '--shell', win)).split('\n').map((l) => l.split('=') as [string, string]));
    const want = { x: Number(geo.X) + Math.floor(Number(geo.WIDTH) / 2), y: Number(geo.Y) + Math.floor(Number(geo.HEIGHT) / 2) };

    await openViewer(page);
    // The page shows the red desktop with the (white) terminal where the X server has it.
    await until('the viewer to show the terminal on the red desktop', async () => {
      const state = await viewerState(page);
      const [corner, terminal] = await remoteColours(page, a, [[10, 10], [want.x, want.y]]);
      const ok = state.connected && near(corner!, rgb(RED)) && near(terminal!, rgb('#ffffff'));
      return { ok, seen: `status=${state.status} corner=${hex(corner!)} terminal=${hex(terminal!)}` };
    });

    // `xdotool selectwindow` grabs the pointer and prints the window the next click lands on.
    const select = a.client('xdotool', ['selectwindow']);
    defer(() => select.stop());
    const at = await pagepoint(page, a, want.x, want.y);
    // Its grab may not be in place at the first click: click until it reports one.
    await until('a click in the viewer to reach the X server', async () => {
      if (select.running) await page.mouse.click(at.x, at.y);
      await Promise.race([select.exited, new Promise((r) => setTimeout(r, 500))]);
      return { ok: !select.running, seen: `selectwindow running=${select.running} ${select.output()}` };
    });
    assert.equal(select.stdout().trim(), win, 'the click landed on the xterm window');
    // Fit-to-window scaling: the remote position is the page position divided by the scale.
    const pointer = await a.pointer();
    assert.ok(
      Math.abs(pointer.x - want.x) <= 3 && Math.abs(pointer.y - want.y) <= 3,
      `pointer at ${JSON.stringify(pointer)}, clicked remote ${JSON.stringify(want)} (canvas ${JSON.stringify(await screenBox(page))})`,
    );

    // No window manager: the keyboard follows the pointer, which is over the xterm.
    await page.keyboard.type('Hello e2e, 42!');
    await page.keyboard.press('Enter');
    await until('the typed line in the xterm', async () => {
      const text = fs.readFileSync(typed, 'utf8');
      return { ok: text === 'Hello e2e, 42!\n', seen: JSON.stringify(text) };
    });
  });

  e2e('changing the target on the settings page switches the open viewer to the new server without a reload', async ({ context, page }) => {
    await configure(target('machine', a.port, '127.0.0.1', 'Machine'));
    await openViewer(page);
    await waitForScreen(page, a, RED, 'e2e-A');
    await page.evaluate(() => ((globalThis as unknown as { __marker: string }).__marker = 'same page'));
    let navigations = 0;
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) navigations++;
    });

    // The settings page in another tab: point the target at server B and save.
    const settings = await context.newPage();
    await settings.goto(`${app.origin}/ctrlx-novnc/config/`);
    const row = settings.locator('fieldset.target').first();
    assert.equal(await row.locator('input[name="host"]').inputValue(), '127.0.0.1');
    assert.equal(await row.locator('input[name="port"]').inputValue(), String(a.port));
    await row.getByRole('button', { name: 'Edit' }).click();
    await row.locator('input[name="port"]').fill(String(b.port));
    await settings.getByRole('button', { name: 'Save', exact: true }).click();
    await until('the settings page to confirm the save', async () => {
      const text = (await settings.locator('#message').textContent()) ?? '';
      return { ok: /^Saved\./.test(text), seen: text };
    });
    assert.deepEqual(await http.config(), config(target('machine', b.port, '127.0.0.1', 'Machine')));

    await page.bringToFront();
    await waitForScreen(page, b, BLUE, 'e2e-B');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __marker?: string }).__marker), 'same page');
    assert.equal(navigations, 0, 'the viewer page was not reloaded');
    assert.match((await viewerState(page)).status, /^Connected to Machine — e2e-B$/);
  });

  e2e('stopping the VNC server shows that it cannot be reached; the viewer reconnects when it is back', async ({ page, defer }) => {
    let c = await startXvnc({ background: GREEN, desktop: 'e2e-C' });
    defer(() => c.stop());
    await configure(target('c', c.port, '127.0.0.1', 'Server C'));
    await openViewer(page);
    await waitForScreen(page, c, GREEN, 'e2e-C');

    await c.stop();
    const unreachable = new RegExp(`^Cannot reach the VNC server 127\\.0\\.0\\.1:${c.port}: connection refused \\(is the VNC server running\\?\\)\\.`);
    const messages = new Set<string>();
    await until('the "cannot reach" message', async () => {
      const text = await overlayText(page);
      if (text) messages.add(text.replace(/Retrying in \d+ s\./, 'Retrying in N s.'));
      return { ok: text !== null && unreachable.test(text), seen: [...messages].join(' | ') };
    });
    for (const m of messages) {
      assert.match(m, /^(Server C closed the connection\.|Cannot reach the VNC server .*connection refused)/, `every message on the way is one of the expected: ${m}`);
    }
    const state = await viewerState(page);
    assert.equal(state.connected, false);
    assert.match(state.status, unreachable);
    assert.ok(await page.locator('#overlay-settings').isVisible(), 'the overlay offers the settings');
    assert.ok(await page.locator('#overlay-retry').isVisible(), 'the overlay offers "Connect now"');

    // The server comes back on the same port (other content): the viewer finds it by itself.
    c = await startXvnc({ port: c.port, background: PURPLE, desktop: 'e2e-C2' });
    await waitForScreen(page, c, PURPLE, 'e2e-C2', 40_000);
  });

  e2e('the target list in the toolbar switches between servers and remembers the choice in the address', async ({ page }) => {
    await configure(target('a', a.port, '127.0.0.1', 'Server A'), target('b', b.port, '127.0.0.1', 'Server B'));
    await openViewer(page);
    await waitForScreen(page, a, RED, 'e2e-A');
    const select = page.getByRole('combobox', { name: 'Target' });
    assert.deepEqual(await select.locator('option').allTextContents(), ['Server A', 'Server B']);
    await select.selectOption({ label: 'Server B' });
    await waitForScreen(page, b, BLUE, 'e2e-B');
    assert.match(page.url(), /\/viewer\/\?target=b$/);
    // A reload keeps the choice.
    await page.reload();
    await waitForScreen(page, b, BLUE, 'e2e-B');
    assert.equal(await select.inputValue(), 'b');
  });

  e2e('with no target configured the viewer says so and links to the settings page', async ({ page }) => {
    await configure();
    await openViewer(page);
    const empty = page.locator('#empty-state');
    await empty.waitFor({ state: 'visible' });
    assert.match(await empty.innerText(), /No VNC target is configured/);
    assert.equal((await viewerState(page)).connected, false);
    const link = page.getByRole('link', { name: 'Add VNC target' });
    assert.ok(await link.isVisible());
    await link.click();
    await page.waitForURL(`${app.origin}/ctrlx-novnc/config/`);
    assert.equal(await page.locator('h1').textContent(), 'VNC targets');
  });
});
