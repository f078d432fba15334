/**
 * End to end with authentication on (as on the device), the identity manager faked: the viewer
 * opened from a ctrlX menu link (`?token=…`) strips the token from the address bar, connects
 * through the relay with the token in a WebSocket subprotocol, and its settings link carries the
 * login to the settings page, whose save works through the API.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, viewerState } from '../helpers/browser.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';

describe('viewer end to end with ctrlX authentication (chromium, fake identity manager)', () => {
  const browser = new BrowserHarness('e2e-auth');
  let demo: DemoServer;
  let idm: FakeIdm;
  let app: TestApp;
  const manager = makeToken('engineer', [SCOPE_MANAGE]);
  const viewer = makeToken('operator', [SCOPE_VIEW]);

  before(async () => {
    await browser.launch();
    idm = await startFakeIdm();
    idm.valid.add(manager);
    idm.valid.add(viewer);
    demo = await startDemoServer({ host: '127.0.0.1', port: 0, width: 800, height: 600 });
    app = await startTestApp({
      auth: { validityUrl: idm.url },
      fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: demo.port },
    });
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close(), idm?.close()]);
  });

  browser.test('connects with the token from the menu link and strips it from the address bar', async ({ page }) => {
    const sockets: string[] = [];
    page.on('websocket', (w) => sockets.push(w.url()));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?token=${viewer}`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    assert.equal(new URL(page.url()).search, '', 'the token is gone from the address bar');
    assert.ok(sockets.length > 0, 'a WebSocket was opened');
    assert.ok(sockets.every((u) => !u.includes(viewer)), 'the token is not in the WebSocket URL');
  });

  browser.test('a view-only login gets a clear refusal on the settings page', async ({ page }) => {
    // The viewer shows such a user no link to the settings; the address typed in gets a refusal.
    await page.goto(`${app.origin}/ctrlx-novnc/config/?token=${viewer}`);
    assert.match(await page.locator('main').innerText(), /may not change the remote screen settings/);
  });

  browser.test('the settings link carries the login and saving works through the API', async ({ page }) => {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?token=${manager}`);
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL(/\/config\//);
    await page.waitForFunction('location.search === ""');
    await page.locator('input[name="host"]').first().fill('127.0.0.1');
    await page.locator('input[name="port"]').first().fill(String(demo.port));
    await page.locator('input[name="name"]').first().fill('Line 1 HMI');
    await page.getByRole('button', { name: 'Save', exact: true }).last().click();
    await until('the saved message', async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: /^Saved\./.test(text), seen: text };
    });
    assert.deepEqual(app.app.config.current.targets.map((t) => [t.name, t.port]), [['Line 1 HMI', demo.port]]);
  });

  browser.test('without a token the page asks to open the app from the ctrlX menu', async ({ page }) => {
    const res = await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    assert.equal(res?.status(), 401);
    assert.match(await page.locator('main').innerText(), /from the ctrlX sidebar/);
  });
});
