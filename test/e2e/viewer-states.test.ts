/**
 * The viewer's states in chromium (issue 14): the empty state makes no connection attempt; the
 * built-in demo says it is a demo; users who may only view see no settings links; a connection
 * that was up leaves its last picture, greyed, with the time it was lost; a setup error (a port
 * that is not VNC) stops retrying; a login held back after rejected passwords shows one
 * countdown; a password typed wrong brings the dialog back with the error; F8 gives the keyboard
 * back to the page so Tab reaches the toolbar; Screenshot, the full-screen label, the toolbar's
 * icons and contrast.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { BAR_COLOURS, demoLayout } from '../../src/demo/scene.js';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { FAILURES } from '../../src/common/failures.js';
import { API, client, config, operated, sleep, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, decodePng, hex, near, overlayText, pixel, rgb, until, viewerState, waitForScreen } from '../helpers/browser.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { startBurstClose } from '../helpers/targets.js';
import { startXvnc } from '../helpers/xvnc.js';

const FILE = 'e2e-viewer-states';

interface Hook {
  connected: boolean;
  status: string;
  phase: string;
  retrying: boolean;
  closeCode: number | null;
}

async function hook(page: Page): Promise<Hook> {
  return page.evaluate(() => {
    const v = (globalThis as unknown as { ctrlxViewer?: Hook }).ctrlxViewer;
    return v
      ? { connected: v.connected, status: v.status, phase: v.phase, retrying: v.retrying, closeCode: v.closeCode }
      : { connected: false, status: '', phase: '', retrying: false, closeCode: null };
  });
}

async function waitForPhase(page: Page, phase: string): Promise<Hook> {
  let last: Hook | undefined;
  await until(`the viewer in phase ${phase}`, async () => {
    last = await hook(page);
    return { ok: last.phase === phase, seen: JSON.stringify(last) };
  });
  return last!;
}

/** Counts the WebSockets the page opens. */
function countSockets(page: Page): { readonly count: number } {
  let count = 0;
  page.on('websocket', () => count++);
  return {
    get count() {
      return count;
    },
  };
}

/** Where the viewer has the keyboard focus: `toolbar`, `screen` (the canvas) or the tag. */
async function focusIn(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    const el = document.activeElement;
    if (!el) return 'none';
    if (el.closest('#toolbar')) return 'toolbar:' + (el.id || el.tagName);
    if (el.closest('#screen')) return 'screen:' + el.tagName;
    return el.tagName;
  })()`);
}

describe('viewer states (chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let app: TestApp;
  let http: ReturnType<typeof client>;
  const remote = { width: 640, height: 400 };

  before(async () => {
    const started = await Promise.allSettled([browser.launch(), startTestApp({ pollInterval: 50 }).then((x) => (app = x))]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    http = client(app.port);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close()]);
  });

  async function configure(...targets: ReturnType<typeof target>[]): Promise<void> {
    const res = await http.put(`${API}/config`, config(...targets));
    assert.equal(res.status, 200, res.text);
  }

  /** A demo VNC server for one test, stopped after it. */
  async function demoFor(defer: (c: () => unknown) => void): Promise<DemoServer> {
    const demo = await startDemoServer({ host: '127.0.0.1', port: 0, ...remote });
    defer(() => demo.close());
    return demo;
  }

  const e2e = browser.test.bind(browser);

  e2e('with no target the viewer shows the empty state and makes no WebSocket attempt', async ({ page }) => {
    await configure();
    const sockets = countSockets(page);
    const preflights: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/websockify')) preflights.push(r.url());
    });
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await waitForPhase(page, 'empty');
    const add = page.getByRole('link', { name: 'Add VNC target' });
    assert.ok(await add.isVisible(), 'a primary "Add VNC target" for a user who may manage');
    assert.match((await add.getAttribute('class')) ?? '', /primary/);
    // Longer than the first two retry periods of the old loop (1 s, 2 s).
    await sleep(3500);
    assert.equal(sockets.count, 0, 'no WebSocket was opened');
    assert.deepEqual(preflights, [], 'no preflight either');
    const state = await hook(page);
    assert.deepEqual([state.phase, state.retrying], ['empty', false]);
    assert.equal(await page.locator('#connect').isVisible(), false, 'no "Connect now"');
    assert.equal(await page.locator('#disconnect').isVisible(), false, 'no "Disconnect"');
    assert.equal(await overlayText(page), null, 'no error overlay');
    await add.click();
    await page.waitForURL(`${app.origin}/ctrlx-novnc/config/`);
    recordReliability({
      table: 'inputs',
      name: 'viewer with no target configured',
      tried: 'chromium opened the viewer with an empty configuration and no demo, watched 3.5 s',
      outcome: 'empty state with "Add VNC target"; 0 WebSockets and 0 preflight requests; no retry scheduled',
    });
  });

  e2e('after a drop the last picture stays, greyed, with "Connection lost at HH:MM"; Cancel stops the retries', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(target('hmi', demo.port, '127.0.0.1', 'HMI'));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    assert.equal(await page.locator('#disconnect').isVisible(), true);
    await demo.close();
    await until('"Connection lost at"', async () => {
      const text = (await page.locator('#lost-at').isVisible()) ? await page.locator('#lost-at').textContent() : '';
      return { ok: /^Connection lost at \d\d:\d\d$/.test(text ?? ''), seen: String(text) };
    });
    // The kept picture is the demo screen: many colours, not a blank canvas.
    const colours = await page.evaluate(`(() => {
      const c = document.querySelector('#last-frame canvas');
      if (!c || c.width === 0) return 0;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return seen.size;
    })()`);
    assert.ok(Number(colours) >= 5, `the last picture keeps the demo screen (${colours} colours sampled)`);
    assert.ok(await page.locator('#last-frame').isVisible(), 'the last picture is shown');
    assert.match(String(await page.evaluate(`getComputedStyle(document.getElementById('last-frame')).filter`)), /grayscale/);
    await waitForPhase(page, 'retrying');
    // While retrying: "Connect now" and "Cancel", no "Disconnect".
    assert.equal(await page.locator('#disconnect').isVisible(), false);
    assert.equal(await page.locator('#connect').isVisible(), true);
    assert.equal(await page.locator('#cancel').isVisible(), true);
    // The countdown is outside the live region: the announced sentence has no number of seconds.
    const live = await page.locator('[role=status], [aria-live]').allTextContents();
    assert.ok(live.every((t) => !/Retrying in/.test(t)), `live regions: ${JSON.stringify(live)}`);
    await page.locator('#cancel').click();
    const s = await waitForPhase(page, 'stopped');
    assert.equal(s.retrying, false);
    assert.ok(await page.locator('#last-frame canvas').isVisible(), 'the picture stays after Cancel');
    recordReliability({
      table: 'faults',
      name: 'viewer keeps the last picture after a drop',
      tried: 'chromium connected to a demo VNC server, then the server was stopped',
      outcome: `the last picture stayed (greyed, ${colours} colours sampled) with "Connection lost at HH:MM"; Connect now/Cancel instead of Disconnect`,
    });
  });

  e2e('a port that is not a VNC server is a setup error: one attempt, no retry loop, says what to fix', async ({ page, defer }) => {
    const http400 = await startBurstClose(() => Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    defer(() => http400.close());
    await configure(target('web', http400.port, '127.0.0.1', 'Web server'));
    const sockets = countSockets(page);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    const state = await waitForPhase(page, 'stopped');
    assert.equal(state.closeCode, FAILURES['not-vnc'].code, 'the relay closed with 4002 not-vnc');
    assert.equal(state.retrying, false);
    assert.match((await overlayText(page)) ?? '', /not a VNC server.*Check the port in the settings/);
    assert.ok(await page.locator('#overlay-settings').isVisible(), 'the settings are offered');
    // Several periods of the backoff (1 s, 2 s): still the one WebSocket.
    await sleep(3500);
    assert.equal(sockets.count, 1, 'no second WebSocket');
    assert.equal((await hook(page)).phase, 'stopped');
    recordReliability({
      table: 'inputs',
      name: 'viewer on a port that is not VNC',
      tried: 'chromium viewer on a target that answers HTTP/1.1 400 (not RFB), watched 3.5 s after the failure',
      outcome: 'closed with 4002 not-vnc; 1 WebSocket in total, no retry; the message says to check the port in the settings',
    });
  });

  e2e('a wrong password in the browser dialog brings the dialog back with the error; the right one connects', async ({ page, defer }) => {
    const x = await startXvnc({ background: '#28a050', desktop: 'e2e-dialog', password: 'Right-42' });
    defer(() => x.stop());
    await configure(target('locked', x.port, '127.0.0.1', 'Locked'));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    const dialog = page.locator('#password-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#password').fill('wrong-1');
    await page.locator('#password').press('Enter');
    await until('the dialog back with the error', async () => {
      const open = await dialog.isVisible();
      const error = open ? ((await page.locator('#password-error').textContent()) ?? '') : '';
      return { ok: open && /did not accept the password/.test(error), seen: `open=${open} error=${JSON.stringify(error)} ${JSON.stringify(await hook(page))}` };
    });
    assert.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'password', 'the password field has the focus');
    await page.locator('#password').fill('Right-42');
    await page.locator('#password').press('Enter');
    await waitForScreen(page, x, '#28a050', 'e2e-dialog');
  });

  e2e('when the last target is removed while connected, the viewer goes to the empty state and stops connecting', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(target('hmi', demo.port, '127.0.0.1', 'HMI'));
    const sockets = countSockets(page);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    await configure();
    await waitForPhase(page, 'empty');
    const opened = sockets.count;
    await sleep(3500);
    assert.equal(sockets.count, opened, 'no WebSocket after the empty state');
    assert.ok(await page.locator('#empty-state').isVisible());
    // A target saved (e.g. in another tab): back in this tab the viewer looks again and connects.
    await configure(target('hmi', demo.port, '127.0.0.1', 'HMI'));
    await page.evaluate(`window.dispatchEvent(new Event('focus'))`);
    await until('the viewer connected again', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
  });

  e2e('a login held back after rejected passwords shows one countdown, to the relay’s Retry-After', async ({ page, defer }) => {
    const x = await startXvnc({ background: '#28a050', desktop: 'e2e-held', password: 'Right-42' });
    defer(() => x.stop());
    const res = await http.put(`${API}/config`, { targets: [{ id: 'held', name: 'Held', host: '127.0.0.1', port: x.port, password: 'wrong-pw' }] });
    assert.equal(res.status, 200, res.text);
    const sockets = countSockets(page);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    // Rejected passwords are setup errors: the viewer stops after each; the user tries 3 times.
    for (let n = 1; n <= 3; n++) {
      await until(`attempt ${n} rejected`, async () => {
        const h = await hook(page);
        return { ok: sockets.count === n && h.phase === 'stopped' && h.closeCode === FAILURES['login-rejected'].code, seen: `${sockets.count} sockets ${JSON.stringify(h)}` };
      });
      if (n < 3) await page.locator('#overlay-retry').click();
    }
    await page.locator('#overlay-retry').click();
    await waitForPhase(page, 'retrying');
    const text = (await overlayText(page)) ?? '';
    assert.match(text, /to avoid its lockout the next attempt waits/);
    assert.doesNotMatch(text, /\d+ s\b/, 'the sentence has no countdown of its own');
    const countdowns = (await page.locator('#overlay').innerText()).match(/\d+ s\b/g) ?? [];
    assert.equal(countdowns.length, 1, `one countdown: ${JSON.stringify(await page.locator('#overlay').innerText())}`);
    const seconds = Number(/Retrying in (\d+) s/.exec(await page.locator('#overlay-countdown').innerText())?.[1]);
    assert.ok(seconds > 5, `it counts down to the relay's Retry-After (${seconds} s), not the 1 s backoff`);
    await page.locator('#cancel').click();
    await waitForPhase(page, 'stopped');
    recordReliability({
      table: 'inputs',
      name: 'viewer countdown while a VNC login is held back',
      tried: 'chromium viewer on Xvnc with a wrong stored password: 3 attempts (each 4003, no retry), then a 4th held back by the relay (503, Retry-After)',
      outcome: `one countdown (${seconds} s, the relay's Retry-After) beside a sentence without numbers; Cancel stopped it`,
    });
  });

  e2e('Screenshot saves the remote screen as <target>-<YYYYMMDD-HHMMSS>.png', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(target('press-2', demo.port, '127.0.0.1', 'Press 2'));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    const button = page.getByRole('button', { name: 'Screenshot' });
    await until('the screenshot button enabled', async () => ({ ok: await button.isEnabled(), seen: 'disabled' }));
    const [download] = await Promise.all([page.waitForEvent('download'), button.click()]);
    assert.match(download.suggestedFilename(), /^press-2-\d{8}-\d{6}\.png$/);
    const file = await download.path();
    const png = decodePng(fs.readFileSync(file));
    assert.deepEqual([png.width, png.height], [remote.width, remote.height], 'the whole remote screen, at its own size');
    // The demo's colour bars are in the picture where the demo draws them.
    const { bars } = demoLayout(remote.width, remote.height);
    const w = bars.w / BAR_COLOURS.length;
    const seen = BAR_COLOURS.map((_, i) => pixel(png, Math.floor(bars.x + w * (i + 0.5)), Math.floor(bars.y + bars.h / 2)));
    assert.ok(seen.every((c, i) => near(c, rgb(BAR_COLOURS[i]!))), `bars ${seen.map(hex).join(',')}`);
  });

  e2e('Full screen becomes Exit full screen and back', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(target('hmi', demo.port, '127.0.0.1', 'HMI'));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    const button = page.locator('#fullscreen');
    assert.equal((await button.innerText()).trim(), 'Full screen');
    await button.click();
    await until('the label "Exit full screen"', async () => {
      const t = (await button.innerText()).trim();
      return { ok: t === 'Exit full screen', seen: t };
    });
    assert.equal(await button.getAttribute('aria-pressed'), 'true');
    await button.click();
    await until('the label "Full screen" again', async () => {
      const t = (await button.innerText()).trim();
      return { ok: t === 'Full screen', seen: t };
    });
  });

  e2e('toolbar controls: an icon and a label each, borders at least 3:1 and text at least 4.5:1 against their background', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(target('hmi', demo.port, '127.0.0.1', 'HMI'));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
    const report = (await page.evaluate(`(() => {
      const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const ratio = (a, b) => { const x = lum(parse(a)), y = lum(parse(b)); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
      const out = [];
      for (const el of document.querySelectorAll('#toolbar button, #toolbar a.tb')) {
        if (el.offsetParent === null) continue;
        const s = getComputedStyle(el);
        out.push({ id: el.id, icon: !!el.querySelector('svg.icon'), label: (el.querySelector('.label') || {}).textContent || '',
          border: ratio(s.borderTopColor, 'rgb(255, 255, 255)'), text: ratio(s.color, s.backgroundColor) });
      }
      return out;
    })()`)) as { id: string; icon: boolean; label: string; border: number; text: number }[];
    assert.ok(report.length >= 6, JSON.stringify(report));
    for (const r of report) {
      assert.ok(r.icon && r.label.trim(), `${r.id}: icon and label`);
      assert.ok(r.border >= 3, `${r.id}: border ${r.border.toFixed(2)}:1`);
      assert.ok(r.text >= 4.5, `${r.id}: text ${r.text.toFixed(2)}:1`);
    }
  });

  e2e('F8 takes the keyboard from the remote screen; Tab and Shift+Tab then move through the toolbar', async ({ page, defer }) => {
    const demo = await demoFor(defer);
    await configure(operated(target('hmi', demo.port, '127.0.0.1', 'HMI')));
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/`);
    await until('the viewer connected and operating', async () => {
      const s = await viewerState(page);
      const mode = await page.evaluate('window.ctrlxViewer.mode');
      return { ok: s.connected && mode === 'control', seen: `${s.status} mode=${mode}` };
    });
    // The keyboard stays with the page until the user clicks the screen (issue 13).
    assert.notEqual(await focusIn(page), 'screen:CANVAS', 'no focus on the remote screen after connect');
    await page.locator('#screen canvas').click();
    // Clicked: the remote screen has the keyboard, Tab goes to the machine.
    await until('the canvas to have the focus', async () => {
      const f = await focusIn(page);
      return { ok: f === 'screen:CANVAS', seen: f };
    });
    await page.keyboard.press('Tab');
    assert.equal(await focusIn(page), 'screen:CANVAS', 'Tab goes to the machine while the screen has the keyboard');
    const outline = await page.evaluate(`getComputedStyle(document.getElementById('screen'), '::after').borderTopStyle`);
    assert.equal(outline, 'solid', 'a visible focus outline on the remote screen');
    await page.keyboard.press('F8');
    const first = await focusIn(page);
    assert.match(first, /^toolbar:/, 'F8 moved the focus to the toolbar');
    await page.keyboard.press('Tab');
    const second = await focusIn(page);
    assert.match(second, /^toolbar:/);
    assert.notEqual(second, first, 'Tab moved within the toolbar');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focusIn(page), first, 'Shift+Tab moved back');
    // The key is documented where the user looks: a tooltip on the status line.
    assert.match((await page.locator('#f8-hint').getAttribute('title')) ?? '', /Press F8/);
    await page.keyboard.press('Escape');
    assert.equal(await focusIn(page), 'screen:CANVAS', 'Esc in the toolbar gives the keyboard back to the machine');
    recordReliability({
      table: 'inputs',
      name: 'keyboard release with F8',
      tried: 'chromium viewer connected, the remote screen has the keyboard; Tab, then F8, Tab, Shift+Tab, Esc',
      outcome: 'Tab stayed with the machine; F8 moved the focus to the toolbar, Tab/Shift+Tab moved through it, Esc returned to the screen',
    });
  });
});

describe('viewer states by role (chromium, fake identity manager, demo fallback)', () => {
  const browser = new BrowserHarness(`${FILE}-roles`);
  let demo: DemoServer;
  let idm: FakeIdm;
  let app: TestApp;
  const manager = makeToken('engineer', [SCOPE_MANAGE]);
  const watcher = makeToken('operator', [SCOPE_VIEW]);

  before(async () => {
    await browser.launch();
    idm = await startFakeIdm();
    idm.valid.add(manager);
    idm.valid.add(watcher);
    demo = await startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 400 });
    app = await startTestApp({
      auth: { validityUrl: idm.url },
      fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: demo.port },
    });
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close(), idm?.close()]);
  });

  async function connected(page: Page): Promise<void> {
    await until('the viewer connected', async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
  }

  browser.test('on the demo a manager sees the "Demo screen" banner with a link to add a real machine, and the settings link', async ({ page }) => {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?token=${manager}`);
    await connected(page);
    const banner = page.locator('#demo-banner');
    assert.ok(await banner.isVisible(), 'the demo banner is shown');
    assert.match(await banner.innerText(), /Demo screen/);
    const add = banner.getByRole('link', { name: 'Add a real machine' });
    assert.equal(await add.getAttribute('href'), '../config/');
    assert.ok(await page.getByRole('link', { name: 'Settings' }).isVisible());
  });

  browser.test('a user who may only view sees no settings link; the demo banner names the permission instead', async ({ page }) => {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?token=${watcher}`);
    await connected(page);
    assert.equal(await page.locator('a[href*="config"]').count(), 0, 'no link to the settings anywhere in the page');
    const banner = page.locator('#demo-banner');
    assert.ok(await banner.isVisible());
    assert.match(await banner.innerText(), /“Manage remote screens”/);
    assert.doesNotMatch(await page.locator('body').innerText(), /web\.all\.rw/, 'no scope strings');
    recordReliability({
      table: 'inputs',
      name: 'viewer settings links by role',
      tried: 'chromium viewer opened with a view-only and with a manage ctrlX login (fake identity manager), demo fallback',
      outcome: 'view-only: 0 links to the settings, the banner names "Manage remote screens"; manage: Settings and "Add a real machine" links',
    });
  });
});
