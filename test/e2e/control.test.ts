/**
 * End to end, watching and operating (issue 13): TigerVNC with an xterm whose input goes to a file,
 * the app with ctrlX logins (fake identity manager), and chromium with one browser context per
 * user. Two users open the same screen and watch; what the watcher types never reaches the xterm;
 * one takes control (the other sees who operates), types, and is taken over by the other (who is
 * told); a manager ends a session from the settings page and that viewer says who did it and stays
 * disconnected. Also: the keyboard is not on the remote screen after connect, a watch-only screen
 * and a watch-only user get no "Take control".
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { SCOPE_MANAGE, SCOPE_OPERATE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { config, makeTempDir, removeDir, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, viewerState, type TestPages } from '../helpers/browser.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import type { WaitOptions } from '../helpers/wait.js';
import { startXvnc, type Child, type Xvnc } from '../helpers/xvnc.js';

/** What a test reads from the viewer page. */
interface ControlView {
  connected: boolean;
  mode: string | null;
  phase: string;
  retrying: boolean;
  closeCode: number | null;
  banner: string;
  bannerShown: boolean;
  notice: string;
  peers: string[];
  take: boolean;
  release: boolean;
  /** The keyboard focus is on the remote screen (noVNC's canvas or anything inside #screen). */
  focusOnScreen: boolean;
}

/** Read in the page (a string: the tests compile without the DOM's types). */
const CONTROL_VIEW = `(() => {
  const v = window.ctrlxViewer;
  const $ = (id) => document.getElementById(id);
  const shown = (id) => !$(id).classList.contains('hidden') && $(id).offsetParent !== null;
  return {
    connected: v.connected,
    mode: v.mode,
    phase: v.phase,
    retrying: v.retrying,
    closeCode: v.closeCode,
    banner: $('control-state').textContent || '',
    bannerShown: shown('control-banner'),
    notice: $('control-notice').textContent || '',
    peers: [...$('control-peers').querySelectorAll('li')].map((li) => li.textContent || ''),
    take: shown('take-control'),
    release: shown('release-control'),
    focusOnScreen: $('screen').contains(document.activeElement),
  };
})()`;

async function controlView(page: Page): Promise<ControlView> {
  return (await page.evaluate(CONTROL_VIEW)) as ControlView;
}

/** Waits until the page's view satisfies `ok`. */
async function waitView(page: Page, what: string, ok: (v: ControlView) => boolean, options: WaitOptions = {}): Promise<ControlView> {
  let last: ControlView | undefined;
  await until(
    what,
    async () => {
      last = await controlView(page);
      return { ok: ok(last), seen: JSON.stringify(last) };
    },
    options,
  );
  return last!;
}

describe('watching and operating end to end (Xvnc + xterm + chromium, two users)', () => {
  const browser = new BrowserHarness('e2e-control');
  let x: Xvnc;
  let app: TestApp;
  let idm: FakeIdm;
  let dir: string;
  let typed: string;
  let xterm: Child;
  const alice = makeToken('alice', [SCOPE_OPERATE]);
  const bob = makeToken('bob', [SCOPE_OPERATE]);
  const carol = makeToken('carol', [SCOPE_VIEW]);
  const boss = makeToken('boss', [SCOPE_MANAGE]);

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startXvnc({ background: '#2864c8', desktop: 'e2e-control' }).then((s) => (x = s)),
      startFakeIdm().then((s) => (idm = s)),
      makeTempDir('e2e-control').then((d) => (dir = d)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    for (const token of [alice, bob, carol, boss]) idm.valid.add(token);
    typed = path.join(dir, 'typed.txt');
    // A terminal over the whole screen whose input goes to a file: what reaches the X server is read back.
    xterm = x.client('xterm', ['-geometry', '200x80+0+0', '-title', 'e2e-control', '-e', 'sh', '-c', 'cat > "$0"', typed]);
    await until('the xterm window to be mapped', async () => {
      const win = await x.xdotool('search', '--onlyvisible', '--name', '^e2e-control$').catch(() => '');
      return { ok: /^\d+$/.test(win) && fs.existsSync(typed), seen: `window=${win} running=${xterm.running} ${xterm.output()}` };
    });
    app = await startTestApp({
      auth: { validityUrl: idm.url },
      initial: config(
        target('press', x.port, '127.0.0.1', 'Press'),
        { ...target('panel', x.port, '127.0.0.1', 'Panel'), control: 'watch-only' },
        // Closed after a minute without input: the warning comes half way (30 s before).
        { ...target('idle', x.port, '127.0.0.1', 'Idle'), control: 'immediate', idleTimeout: 1 },
      ),
    });
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), xterm?.stop(), x?.stop(), idm?.close()]);
    if (dir) await removeDir(dir);
  });

  /** A second browser context (another user) for this test, closed with it. */
  async function another(t: TestPages): Promise<Page> {
    const { context, page } = await browser.open();
    t.defer(() => context.close());
    return page;
  }

  async function openViewer(page: Page, token: string, targetId: string): Promise<void> {
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=${targetId}&token=${token}`);
    await until(`the viewer of ${targetId} connected`, async () => {
      const s = await viewerState(page);
      return { ok: s.connected, seen: s.status };
    });
  }

  /** Clicks the middle of the remote screen (over the xterm) and types `text` and Enter. */
  async function typeOnScreen(page: Page, text: string): Promise<void> {
    await page.locator('#screen canvas').click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  }

  const read = (): string => fs.readFileSync(typed, 'utf8');

  browser.test('two users watch; only the one in control reaches the xterm; taking over tells the other; a manager ends a session', async (t) => {
    const pageA = t.page;
    const pageB = await another(t);
    const sockets = { a: 0 };
    pageA.on('websocket', () => sockets.a++);

    await openViewer(pageA, alice, 'press');
    await openViewer(pageB, bob, 'press');
    // Both watch: the banner says so, the keyboard is not on the remote screen, each sees the other.
    for (const [page, other] of [[pageA, 'bob'], [pageB, 'alice']] as const) {
      const v = await waitView(page, `${other}'s peer to show while watching`, (v) => v.mode === 'watch' && v.peers.some((p) => p.startsWith(`${other} is watching`)));
      assert.equal(v.banner, 'Watching Press');
      assert.ok(v.bannerShown && v.take && !v.release, JSON.stringify(v));
      assert.equal(v.focusOnScreen, false, 'the keyboard is not on the remote screen after connect');
    }

    // The watcher clicks the screen and types: nothing may reach the xterm.
    const watcherText = 'watcher keys';
    await typeOnScreen(pageB, watcherText);
    assert.equal((await controlView(pageB)).focusOnScreen, false, 'a click does not give a watcher the keyboard');

    // alice takes control: her banner, bob sees that she operates.
    await pageA.getByRole('button', { name: 'Take control' }).click();
    const a1 = await waitView(pageA, 'alice operating', (v) => v.mode === 'control' && v.release && !v.take);
    assert.match(a1.banner, /^You are operating Press/);
    assert.equal(a1.focusOnScreen, false, 'taking control does not move the keyboard to the screen');
    const b1 = await waitView(pageB, 'bob to see alice operating', (v) => v.peers.some((p) => p.startsWith('alice is operating')));
    assert.equal(b1.banner, 'Watching Press');

    await typeOnScreen(pageA, 'from alice');
    await until('alice\'s line in the xterm', async () => ({ ok: read() === 'from alice\n', seen: JSON.stringify(read()) }));

    // bob takes over: alice is told and watches again; her keys stop reaching the xterm.
    await pageB.getByRole('button', { name: 'Take control' }).click();
    await waitView(pageB, 'bob operating', (v) => v.mode === 'control');
    const a2 = await waitView(pageA, 'alice told that bob took control', (v) => v.mode === 'watch' && v.notice === 'bob took control.');
    assert.equal(a2.banner, 'Watching Press');
    assert.ok(a2.take && !a2.release && !a2.focusOnScreen, JSON.stringify(a2));
    const watcherText2 = 'alice again';
    await typeOnScreen(pageA, watcherText2);
    await typeOnScreen(pageB, 'from bob');
    await until('bob\'s line in the xterm', async () => ({ ok: read().includes('from bob\n'), seen: JSON.stringify(read()) }));
    assert.equal(read(), 'from alice\nfrom bob\n', 'only the lines of the session in control reached the xterm');

    // bob releases: he watches again.
    await pageB.getByRole('button', { name: 'Release' }).click();
    await waitView(pageB, 'bob watching after Release', (v) => v.mode === 'watch' && v.take);
    await waitView(pageA, 'alice to see bob watching', (v) => v.peers.some((p) => p.startsWith('bob is watching')));

    // The manager ends alice's session on the settings page.
    const pageM = await another(t);
    await pageM.goto(`${app.origin}/ctrlx-novnc/config/?token=${boss}`);
    const end = pageM.getByRole('button', { name: 'End session of alice on Press' });
    await end.waitFor();
    const rows = await pageM.locator('#sessions-body tr').allInnerTexts();
    assert.equal(rows.length, 2, rows.join(' | '));
    assert.ok(rows.some((r) => /Press\s+bob\s+watching/.test(r)), rows.join(' | '));
    assert.ok(rows.every((r) => r.includes('127.0.0.1')), 'the manager sees the client addresses');
    pageM.once('dialog', (d) => void d.accept());
    await end.click();
    const a3 = await waitView(pageA, 'alice disconnected by boss', (v) => v.phase === 'stopped');
    assert.equal(a3.closeCode, 4031);
    assert.equal(a3.retrying, false, 'no reconnection after a manager ended the session');
    assert.match((await pageA.locator('#overlay-text').textContent()) ?? '', /^Disconnected by boss \(Press\)/);
    // The settings page shows what happened, newest first.
    await until('the activity list to show the ended session', async () => {
      const text = await pageM.locator('#audit-body').innerText();
      return { ok: /Session ended by a manager\s+alice\s+Press/.test(text), seen: text };
    });
    await until('the sessions list without alice', async () => {
      const list = await pageM.locator('#sessions-body tr').allInnerTexts();
      return { ok: list.length === 1 && /bob/.test(list[0]!), seen: list.join(' | ') };
    });
    assert.equal(sockets.a, 1, 'alice\'s page opened no second WebSocket');
    // Download CSV: the whole trail through the API with the page's login.
    const [download] = await Promise.all([pageM.waitForEvent('download'), pageM.getByRole('link', { name: 'Download CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^audit-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = fs.readFileSync((await download.path())!, 'utf8');
    assert.equal(csv.split(/\r?\n/)[0], 'time,event,user,target,targetName,address,sessionId,durationMs,detail');
    for (const event of ['session-start', 'control-take', 'control-taken-over', 'control-release', 'session-ended-by']) assert.match(csv, new RegExp(`,${event},`), event);
    assert.ok(!csv.includes(alice) && !csv.includes(boss), 'no token in the trail');
    assert.equal(read(), 'from alice\nfrom bob\n');

    recordReliability({
      table: 'inputs',
      name: 'keys typed by a watching viewer (chromium, TigerVNC xterm)',
      tried: `two users in two browser contexts on one screen: ${watcherText.length + watcherText2.length + 2} keys and 2 clicks from whichever watched (before any control, and after control was taken over), control taken, taken over and released, the session ended by a manager`,
      outcome: 'watcher keys that reached the xterm: 0; the controlling session\'s lines arrived whole (2 of 2); the ended viewer said "Disconnected by boss" (4031) and opened no second WebSocket',
    });
  });

  browser.test('a watch-only screen and a watch-only user get no Take control', async (t) => {
    const pageC = await another(t);
    await openViewer(t.page, alice, 'panel');
    const a = await waitView(t.page, 'alice watching the watch-only panel', (v) => v.mode === 'watch' && v.bannerShown);
    assert.match(a.banner, /^Watching Panel \(watch only/);
    assert.equal(a.take, false, 'no Take control on a watch-only target');
    await openViewer(pageC, carol, 'press');
    const c = await waitView(pageC, 'carol watching', (v) => v.mode === 'watch' && v.bannerShown);
    assert.equal(c.banner, 'Watching Press');
    assert.equal(c.take, false, 'no Take control for the watch role');
    assert.equal(c.focusOnScreen, false);
  });

  browser.test('the event stream is opened again after it drops: the page still learns its mode and its peers', async (t) => {
    let streams = 0;
    t.page.on('request', (r) => {
      if (r.url().includes('/api/v1/events')) streams++;
    });
    // The first stream ends at once, before any event (a proxy that closed it).
    await t.page.route('**/api/v1/events?*', (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: ': dropped\n\n' }), { times: 1 });
    await openViewer(t.page, alice, 'press');
    const v = await waitView(t.page, 'the mode from the second stream', (v) => v.mode === 'watch' && v.bannerShown);
    assert.equal(v.banner, 'Watching Press');
    assert.ok(streams >= 2, `event streams opened: ${streams}`);
    // Live on the new stream: another user arrives and shows up.
    const pageB = await another(t);
    await openViewer(pageB, bob, 'press');
    await waitView(t.page, 'bob in the peers', (v) => v.peers.some((p) => p.startsWith('bob is watching')));
  });

  browser.test('a minute without input: the warning is announced once, the seconds tick outside the live region, input clears it', async (t) => {
    await openViewer(t.page, alice, 'idle');
    await waitView(t.page, 'alice operating the idle target (control: immediate)', (v) => v.mode === 'control');
    const warned = await waitView(t.page, 'the idle warning', (v) => v.notice !== '', { timeoutMs: 45_000 });
    assert.equal(warned.notice, 'Disconnecting in 30 s without input.');
    const live = await t.page.evaluate(`(() => {
      const left = document.getElementById('idle-left');
      return { text: left.textContent, inLive: Boolean(left.closest('[aria-live], [role=status], [role=alert]')) };
    })()`) as { text: string; inLive: boolean };
    assert.equal(live.inLive, false, 'the ticking seconds are not in a live region');
    await until('the seconds to tick', async () => {
      const text = await t.page.locator('#idle-left').textContent();
      return { ok: text !== live.text && /^\d+ s left$/.test(text ?? ''), seen: `${text} (first ${live.text})` };
    });
    assert.equal((await controlView(t.page)).notice, warned.notice, 'the announced sentence did not change while the seconds ticked');
    // Input from the page clears the warning (a click on the screen is pointer input).
    await t.page.locator('#screen canvas').click();
    const cleared = await waitView(t.page, 'the warning cleared', (v) => v.notice === '');
    assert.equal(cleared.connected, true);
    assert.equal(await t.page.locator('#idle-left').textContent(), '');
  });

  browser.test('in German: Zuschauen, Steuerung übernehmen, Sie bedienen', async (t) => {
    await t.page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=press&lang=de&token=${alice}`);
    const v = await waitView(t.page, 'watching in German', (v) => v.connected && v.mode === 'watch' && v.bannerShown);
    assert.equal(v.banner, 'Zuschauen: Press');
    assert.deepEqual(v.peers, ['Sonst ist niemand verbunden.']);
    await t.page.getByRole('button', { name: 'Steuerung übernehmen' }).click();
    const c = await waitView(t.page, 'operating in German', (v) => v.mode === 'control');
    assert.match(c.banner, /^Sie bedienen Press/);
    await t.page.getByRole('button', { name: 'Freigeben' }).waitFor();
  });
});
