/**
 * The settings page's live reachability dot (chromium, TigerVNC `Xvnc`): with the page open and
 * nobody clicking "Test connection", a viewer in another tab connects to the target and the dot
 * turns "Reachable HH:MM (viewer session)"; the VNC server stops, the viewer's next attempt fails,
 * and the dot turns "Not reachable: connection refused, HH:MM". The page makes no Test connection
 * for it (no connection the server would count towards its lockout): it reads the status panel's
 * polls.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { client, config, PREFIX, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, viewerState } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

describe('settings page: live reachability dot (chromium + Xvnc)', () => {
  const browser = new BrowserHarness('e2e-reachability');
  let x: Xvnc | undefined;
  let app: TestApp;

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ desktop: 'e2e-reach' }).then((v) => (x = v)),
      startTestApp().then((v) => (app = v)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const res = await client(app.port).put(`${PREFIX}/api/v1/config`, config(target('hmi', x!.port, '127.0.0.1', 'HMI')));
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    await Promise.allSettled([browser.close(), x?.stop(), app?.close()]);
  });

  /** The dot of the first row: its state class and its words (tooltip and accessible name). */
  const dot = async (page: Page): Promise<{ state: string; label: string; title: string }> => {
    const el = page.locator('fieldset.target').first().locator('[data-field="dot"]');
    const cls = (await el.getAttribute('class')) ?? '';
    return { state: /dot-(\w+)/.exec(cls)?.[1] ?? cls, label: (await el.getAttribute('aria-label')) ?? '', title: (await el.getAttribute('title')) ?? '' };
  };
  const waitDot = (page: Page, state: string, words: RegExp) =>
    until(`the dot ${state} ${words}`, async () => {
      const d = await dot(page);
      return { ok: d.state === state && words.test(d.label) && d.title === d.label, seen: JSON.stringify(d) };
    });

  browser.test('the dot follows viewer sessions without a click on Test connection', async ({ page, context }) => {
    const tests: string[] = [];
    context.on('request', (r) => {
      if (r.method() === 'POST' && /\/probe$/.test(r.url())) tests.push(r.url());
    });
    await page.goto(`${app.origin}${PREFIX}/config/`);
    assert.deepEqual(await dot(page), { state: 'unknown', label: 'Not checked yet', title: 'Not checked yet' });

    // A viewer in another tab connects to the target.
    const viewer = await context.newPage();
    await viewer.goto(`${app.origin}${PREFIX}/viewer/?target=hmi`);
    await until('the viewer connected', async () => {
      const s = await viewerState(viewer);
      return { ok: s.connected, seen: s.status };
    });
    await waitDot(page, 'ok', /^Reachable \d\d:\d\d \(viewer session\)$/);

    // The VNC server stops: the viewer's next attempt fails, and the dot says why.
    await x!.stop();
    x = undefined;
    await waitDot(page, 'bad', /^Not reachable: connection refused, \d\d:\d\d$/);
    await viewer.close();
    assert.deepEqual(tests, [], 'the page made no Test connection');
    const status = await client(app.port).status();
    assert.equal(status.relay.targets[0]!.reach?.via, 'session');
    recordReliability({
      table: 'faults',
      name: 'settings page: live reachability dot',
      tried: 'the settings page open in chromium while a viewer connected to Xvnc, then Xvnc stopped',
      outcome: 'the dot turned "Reachable HH:MM (viewer session)", then "Not reachable: connection refused, HH:MM" from the status polls, with no Test connection made',
    });
  });
});
