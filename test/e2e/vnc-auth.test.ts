/**
 * Server-side VNC authentication end to end: TigerVNC `Xvnc -SecurityTypes VncAuth -PasswordFile`
 * (the file made by `vncpasswd`), the app in-process with the password stored through the API, and
 * Debian's chromium running the stock noVNC viewer. The user is never asked for the password, the
 * browser is only ever offered security type None, and the password appears nowhere on the page,
 * in the API or in what the browser receives.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { API, client, makeTempDir, removeDir, startTestApp, type TestApp } from '../helpers/app.js';
import { BrowserHarness, overlayText, until, viewerState, waitForScreen } from '../helpers/browser.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

const FILE = 'e2e-vnc-auth';
const GREEN = '#28a050';
const PASSWORD = 'Hmi-2026';

describe('server-side VNC authentication end to end (Xvnc VncAuth + chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let x: Xvnc;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  let logDir: string;
  const logs: string[] = [];

  before(async () => {
    logDir = await makeTempDir('e2e-vnc-auth');
    const { createLogger } = await import('../../src/log.js');
    const logger = createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) });
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ background: GREEN, desktop: 'e2e-locked', password: PASSWORD }).then((v) => (x = v)),
      startTestApp({ pollInterval: 50, logger }).then((v) => (app = v)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    http = client(app.port);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), x?.stop(), app?.close(), removeDir(logDir)]);
  });

  async function store(password: string | null | undefined): Promise<void> {
    const t: Record<string, unknown> = { id: 'locked', name: 'Locked HMI', host: '127.0.0.1', port: x.port };
    if (password !== undefined) t['password'] = password;
    const res = await http.put(`${API}/config`, { targets: [t] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.text.includes(PASSWORD), false, 'the PUT response does not echo the password');
  }

  /** Bytes the page received over its WebSocket(s), in order. */
  function recordFrames(page: Page): Buffer[] {
    const frames: Buffer[] = [];
    page.on('websocket', (ws) => {
      ws.on('framereceived', (f) => frames.push(typeof f.payload === 'string' ? Buffer.from(f.payload) : f.payload));
    });
    return frames;
  }

  const e2e = browser.test.bind(browser);

  e2e('with the right password stored, the viewer connects without asking and the browser sees only None', async ({ page }) => {
    await store(PASSWORD);
    const frames = recordFrames(page);
    let asked = false;
    await page.exposeFunction('__asked', () => (asked = true));
    // Reports if the password dialog ever opens (a string: this file has no DOM types).
    await page.addInitScript({
      content: `document.addEventListener('DOMContentLoaded', () => {
        const d = document.getElementById('password-dialog');
        new MutationObserver(() => d.open && window.__asked()).observe(d, { attributes: true });
      });`,
    });
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await waitForScreen(page, x, GREEN, 'e2e-locked');
    assert.match((await viewerState(page)).status, /^Connected to Locked HMI — e2e-locked$/);
    assert.equal(asked, false, 'the password dialog never opened');
    const head = Buffer.concat(frames).subarray(0, 14);
    assert.equal(head.subarray(0, 12).toString(), 'RFB 003.008\n');
    assert.deepEqual([...head.subarray(12, 14)], [1, 1], 'one security type offered: None');
    assert.equal(Buffer.concat(frames).includes(PASSWORD), false);
    assert.equal((await page.content()).includes(PASSWORD), false);
    const cfg = await http.get(`${API}/config`);
    assert.equal(cfg.text.includes(PASSWORD), false, 'GET config never returns it');
    assert.equal((await http.get(`${API}/status`)).text.includes(PASSWORD), false);
    assert.equal(logs.some((l) => l.includes(PASSWORD)), false, 'no log line has it');
  });

  e2e('with a wrong password stored, the viewer says so and points to the settings, without asking', async ({ page }) => {
    await store('not-it');
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer to report the rejected password', async () => {
      const text = (await overlayText(page)) ?? '';
      return { ok: /did not accept the VNC password stored in the settings/.test(text), seen: text };
    });
    assert.equal(await page.locator('#password-dialog').isVisible(), false);
    assert.equal(await page.locator('#overlay-settings').isVisible(), true, 'a link to the settings is offered');
    const status = await http.status();
    const t = status.relay.targets.find((v: { id: string }) => v.id === 'locked');
    assert.equal(t?.auth?.failures, 1, 'the status counts the rejection');
  });

  e2e('without a stored password, the server’s own prompt reaches the viewer as before', async ({ page }) => {
    await store(null);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await page.locator('#password-dialog').waitFor({ state: 'visible' });
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#password').press('Enter');
    await waitForScreen(page, x, GREEN, 'e2e-locked');
  });
});
