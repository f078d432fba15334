/**
 * End to end: the viewer's login expires mid-session (issue 12, item 8). The relay closes the
 * session with 4030; the viewer says the login expired, takes the fresh token the ctrlX UI keeps
 * in `sessionStorage.idm_token` (same origin) as soon as there is one, and reconnects with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { SCOPE_VIEW, decodeJwt } from '../../src/ctrlx/auth.js';
import { createLogger } from '../../src/log.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, viewerState } from '../helpers/browser.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';

describe('viewer with an expiring ctrlX login (chromium, fake identity manager)', () => {
  const browser = new BrowserHarness('e2e-login-expiry');
  let demo: DemoServer;
  let idm: FakeIdm;
  let app: TestApp;
  const logs: string[] = [];

  before(async () => {
    await browser.launch();
    idm = await startFakeIdm();
    demo = await startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 480 });
    app = await startTestApp({
      auth: { validityUrl: idm.url },
      relay: { loginCheckMs: 500 },
      fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: demo.port },
      logger: createLogger({ timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close(), idm?.close()]);
  });

  browser.test('on 4030 the viewer says the login expired, then reconnects with the fresh token of the ctrlX UI', async ({ page }) => {
    const short = makeToken('operator', [SCOPE_VIEW], 3);
    const fresh = makeToken('operator', [SCOPE_VIEW], 3600);
    idm.valid.add(short);
    idm.valid.add(fresh);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?token=${short}`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });

    // The token expires; the ctrlX UI has not renewed it yet: the viewer waits for a new login.
    await until(
      'the viewer to say the login expired',
      async () => {
        const s = await viewerState(page);
        return { ok: !s.connected && /Your login expired/.test(s.status), seen: s.status };
      },
      { timeoutMs: 15_000 },
    );
    assert.ok(Date.now() >= (decodeJwt(short)!.exp as number) * 1000, 'not before the expiry');
    assert.ok(logs.some((l) => /session end .*kind=login-expired code=4030/.test(l)), logs.join('\n'));
    assert.ok(!idm.requests.includes(fresh), 'no fresh token used yet');

    // The ctrlX UI renews its token (same origin, sessionStorage): the viewer takes it and reconnects.
    await page.evaluate((t) => (globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }).sessionStorage.setItem('idm_token', t), fresh);
    await until('the viewer connected again', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    assert.ok(idm.requests.includes(fresh), 'the relay upgrade carried the fresh token');
    assert.equal(app.app.status().relay.totals.sessionsOpen, 1);
    recordReliability({
      table: 'faults',
      name: 'viewer login expires mid-session',
      tried: "chromium viewer opened with a ctrlX token expiring after 2–3 s; later the ctrlX UI's token (sessionStorage.idm_token) is renewed (fake identity manager)",
      outcome: 'the session closed with 4030 login-expired after the expiry; the viewer said "Your login expired" and waited; once a fresh token was in sessionStorage it reconnected with it',
    });
  });
});
