/**
 * The settings page as a user meets it (chromium, public/config.js): messages in the field's own
 * words (no field paths, no RFC numbers), 192.168.1.300 refused before anything is sent, the
 * focus on the first field with an error after a failed save (the page's own check and the
 * server's), a prompt when leaving with unsaved edits, and a confirmation before "Remove".
 * "Test connection" against a real TigerVNC with a password: it says the server asks for one and
 * tells no, wrong and right passwords apart (results in role=status) without locking the server
 * out: a viewer logs in afterwards. Save warns when the last test of a target failed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import type { Config } from '../../src/config/schema.js';
import { client, PREFIX, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, waitForScreen } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';
import { startXvnc } from '../helpers/xvnc.js';

describe('settings page (chromium)', () => {
  const browser = new BrowserHarness('e2e-settings-page');
  let app: TestApp;
  const initial: Config = { version: 1, targets: [target('press', 5900, '192.168.1.50', 'Press line'), target('weld', 5901, 'weld-hmi', 'Welder')] };

  before(async () => {
    await browser.launch();
    app = await startTestApp({ initial });
  });
  after(async () => {
    await Promise.allSettled([browser.close(), app?.close()]);
  });

  /** Opens the page on the initial configuration; returns the PUT bodies the page sends. */
  async function open(page: Page): Promise<Record<string, unknown>[]> {
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    const puts: Record<string, unknown>[] = [];
    page.on('request', (r) => {
      if (r.method() === 'PUT') puts.push(JSON.parse(r.postData() ?? '{}'));
    });
    await page.goto(`${app.origin}${PREFIX}/config/`);
    // The targets are one line each; "Edit" folds out a target's fields.
    for (const edit of await page.locator('[data-action="edit"]').all()) await edit.click();
    return puts;
  }

  const row = (page: Page, i: number) => page.locator('fieldset.target').nth(i);
  const input = (page: Page, i: number, name: string) => row(page, i).locator(`input[name="${name}"]`);
  const message = async (page: Page): Promise<string> => (await page.locator('#message').textContent()) ?? '';
  const save = async (page: Page, expect: RegExp): Promise<void> => {
    await page.locator('#message').evaluate((el) => (el.textContent = ''));
    await page.getByRole('button', { name: 'Save', exact: true }).last().click();
    await until(`the message ${expect}`, async () => {
      const text = await message(page);
      return { ok: expect.test(text), seen: text };
    });
  };
  /** The name attribute and row of the focused element. */
  const focused = (page: Page) =>
    page.evaluate<{ name: string | null; row: number }>(`(() => {
      const el = document.activeElement;
      const fs = el && el.closest('fieldset.target');
      return { name: el ? el.getAttribute('name') : null, row: fs ? Number(fs.dataset.index) : -1 };
    })()`);

  browser.test('refuses 192.168.1.300 in the field\'s own words without sending anything, focus on the field', async ({ page }) => {
    const puts = await open(page);
    await input(page, 1, 'host').fill('192.168.1.300');
    await input(page, 1, 'port').fill('70000');
    await save(page, /^Not saved: Target 2 \(Welder\): Host: four numbers with dots must be an IPv4 address/);
    assert.equal(puts.length, 0, 'the page refused it itself');
    assert.equal(
      await row(page, 1).locator('.error[data-for="host"]').textContent(),
      'Host: four numbers with dots must be an IPv4 address, each number from 0 to 255, e.g. 192.168.1.20',
    );
    assert.equal(await row(page, 1).locator('.error[data-for="port"]').textContent(), 'Port: enter a number from 1 to 65535');
    assert.deepEqual(await focused(page), { name: 'host', row: 1 });
    const shown = await page.locator('main').innerText();
    assert.doesNotMatch(shown, /targets\[|RFC 1123|must be a number/, 'no developer text on the page');

    // The server refuses it too (a client without the page's check).
    const res = await client(app.port).put(`${PREFIX}/api/v1/config`, { targets: [{ id: 'x', name: 'X', host: '192.168.1.300', port: 5900 }] });
    assert.equal(res.status, 400);
    assert.equal(res.json().errors[0].field, 'targets[0].host', 'the API keeps the field path');
    assert.match(res.json().errors[0].message, /^Host: four numbers with dots/);

    // Fixed: saved, and the error is gone.
    await input(page, 1, 'host').fill('192.168.1.30');
    await input(page, 1, 'port').fill('5901');
    await save(page, /^Saved\./);
    assert.equal((await client(app.port).config()).targets[1]!.host, '192.168.1.30');
    recordReliability({
      table: 'inputs',
      name: 'settings page: invalid IPv4 and developer messages',
      tried: 'host 192.168.1.300 and port 70000 typed on the page; the same host by PUT api/v1/config',
      outcome: 'refused on the page before sending ("Host: four numbers with dots must be an IPv4 address…", "Port: enter a number from 1 to 65535"), focus on the host field; API 400 with field targets[0].host',
    });
  });

  browser.test('after a refusal from the server, the focus goes to the first field with an error', async ({ page }) => {
    const puts = await open(page);
    // Only the server knows the password rule: the page sends, the answer names the field.
    await input(page, 1, 'password').fill('Pässwort€');
    await input(page, 0, 'name').focus();
    await save(page, /^Not saved: Target 2 \(Welder\): VNC password: use only Latin-1 characters/);
    assert.equal(puts.length, 1);
    assert.deepEqual(await focused(page), { name: 'password', row: 1 });
    assert.equal(await input(page, 1, 'password').getAttribute('aria-invalid'), 'true');
  });

  browser.test('the form without JavaScript puts the focus on the first field with an error too', async ({ defer }) => {
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    const context = await browser.browser.newContext({ javaScriptEnabled: false });
    defer(() => context.close());
    const page = await context.newPage();
    await page.goto(`${app.origin}${PREFIX}/config/`);
    await input(page, 0, 'port').fill('0');
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Save', exact: true }).last().click(),
    ]);
    await page.waitForLoadState('load');
    assert.match(await message(page), /^Not saved: Target 1 \(Press line\): Port: enter a number from 1 to 65535$/);
    assert.deepEqual(await focused(page), { name: 'port', row: 0 });
  });

  browser.test('asks before leaving with unsaved edits, and not after saving', async ({ page }) => {
    await open(page);
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.type());
      void d.dismiss();
    });
    // No edits: leaving asks nothing.
    await page.reload();
    assert.equal(dialogs.length, 0);
    await row(page, 0).getByRole('button', { name: 'Edit' }).click();
    await input(page, 0, 'name').fill('Press line 2');
    // Leaving with the edit: the browser's "Leave site?" prompt; dismissed, the page stays.
    await page.close({ runBeforeUnload: true });
    await until('the beforeunload prompt', async () => ({ ok: dialogs.includes('beforeunload'), seen: dialogs.join(',') }));
    assert.equal(page.isClosed(), false);
    assert.equal(await input(page, 0, 'name').inputValue(), 'Press line 2');
    await save(page, /^Saved\./);
    dialogs.length = 0;
    await page.reload();
    assert.equal(dialogs.length, 0, 'nothing to lose after saving');
  });

  browser.test('asks before removing a target; cancelled, it stays', async ({ page }) => {
    await open(page);
    const asked: string[] = [];
    let accept = false;
    page.on('dialog', (d) => {
      asked.push(`${d.type()}: ${d.message()}`);
      void (accept ? d.accept() : d.dismiss());
    });
    await row(page, 1).getByRole('button', { name: 'Remove' }).click();
    assert.deepEqual(asked, ['confirm: Remove "Welder"? It is deleted from the controller when you save.']);
    assert.equal(await page.locator('fieldset.target').count(), 2, 'cancelled: the target stays');
    accept = true;
    await row(page, 1).getByRole('button', { name: 'Remove' }).click();
    assert.equal(await page.locator('fieldset.target').count(), 1);
    await save(page, /^Saved\./);
    assert.deepEqual((await client(app.port).config()).targets.map((t) => t.id), ['press']);
  });

  browser.test('Test connection with no, wrong and right password against Xvnc; the server stays open to a viewer', async ({ page, context, defer }) => {
    const PASSWORD = 'Hmi-2026';
    const GREEN = '#28a050';
    const x = await startXvnc({ password: PASSWORD, background: GREEN, desktop: 'e2e-settings' });
    defer(() => x.stop());
    const locked: Config = { version: 1, targets: [target('locked', x.port, '127.0.0.1', 'Locked HMI')] };
    await app.app.config.save(locked, new Map([['locked', null]]));
    await page.goto(`${app.origin}${PREFIX}/config/`);
    await row(page, 0).getByRole('button', { name: 'Edit' }).click();
    const result = row(page, 0).locator('[data-field="probe"]');
    assert.equal(await result.getAttribute('role'), 'status', 'the result is announced');
    const test = async (expect: RegExp): Promise<string> => {
      await result.evaluate((el) => (el.textContent = ''));
      await row(page, 0).getByRole('button', { name: 'Test connection' }).click();
      await until(`the test result ${expect}`, async () => {
        const text = (await result.textContent()) ?? '';
        return { ok: expect.test(text), seen: text };
      });
      return (await result.textContent()) ?? '';
    };

    // 1. Nothing typed or stored: the server asks for a password.
    await test(/^VNC server, RFB 003\.008\. It asks for a password: type it under "VNC password" and test again/);
    assert.equal(await result.getAttribute('class'), 'probe probe-bad');
    // 2. A wrong password: told apart from a missing one.
    await input(page, 0, 'password').fill('wrong-pw');
    await test(/^VNC server, RFB 003\.008\. It asks for a password: the typed password was not accepted \(wrong password\)\.$/);
    // Save warns, but saves.
    await save(page, /^Saved, but the last Test connection failed for Target 1 \(Locked HMI\): .*not accepted/);
    assert.equal(await page.locator('#message').getAttribute('class'), 'message message-warn');
    assert.equal(app.app.config.passwordFor('locked'), 'wrong-pw');
    // 3. The right password typed: accepted (a complete login, which the server does not count).
    await input(page, 0, 'password').fill(PASSWORD);
    await test(/^VNC server, RFB 003\.008\. It asks for a password: the typed password was accepted\.$/);
    await save(page, /^Saved\. New viewer sessions use these targets now\.$/);
    // 4. Nothing typed now: the stored password is tested.
    await test(/^VNC server, RFB 003\.008\. It asks for a password: the stored password was accepted\.$/);
    // Clicking on with a wrong one: one connection, then the answer comes from the cache.
    await input(page, 0, 'password').fill('wrong-pw');
    await test(/not accepted \(wrong password\)\.$/);
    const again = await test(/not accepted \(wrong password\)\. \(an earlier test's answer: so that the VNC server does not lock this controller out, the next test connects in \d+ s\)$/);
    assert.ok(again);

    // A viewer logs in with the stored (right) password: the server did not lock the controller out.
    const viewer = await context.newPage();
    await viewer.goto(`${app.origin}${PREFIX}/viewer/`);
    await waitForScreen(viewer, x, GREEN, 'e2e-settings');
    recordReliability({
      table: 'inputs',
      name: 'settings page: Test connection checks the VNC password',
      tried: 'Xvnc with VncAuth: Test connection with no password, a wrong one, the right one typed, the stored one, a wrong one twice',
      outcome: '"asks for a password", "not accepted (wrong password)", "accepted" told apart; the repeated wrong test answered from the cache; Save warned after a failed test; a viewer logged in afterwards (no lockout)',
    });
  });

  /** WCAG contrast ratio of two `rgb(r, g, b)` colours. */
  function contrast(a: string, b: string): number {
    const lum = (c: string): number => {
      const [r, g, bl] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
        const x = Number(v) / 255;
        return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
      }) as [number, number, number];
      return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
    };
    const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
    return (hi + 0.05) / (lo + 0.05);
  }

  browser.test('lists the targets one line each at 390 px (dot, name, address, Open, Edit); fields fold out', async ({ page }) => {
    await page.setViewportSize({ width: 390, height: 844 });
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    await page.goto(`${app.origin}${PREFIX}/config/`);
    const lines = page.locator('fieldset.target');
    assert.equal(await lines.count(), 2);
    for (const [i, [name, address, id]] of [['Press line', '192.168.1.50:5900', 'press'], ['Welder', 'weld-hmi:5901', 'weld']].entries()) {
      const line = lines.nth(i);
      assert.equal(await line.locator('[data-field="title"]').textContent(), name);
      assert.equal(await line.locator('[data-field="address"]').textContent(), address);
      assert.equal(await line.locator('[data-field="dot"]').getAttribute('aria-label'), 'Not checked yet');
      const open = line.getByRole('link', { name: 'Open' });
      assert.equal(await open.evaluate((a) => (a as unknown as { href: string }).href), `${app.origin}${PREFIX}/viewer/?target=${id}`);
      assert.equal(await line.locator('input[name="host"]').isVisible(), false, 'the fields are folded');
      const box = await line.boundingBox();
      assert.ok(box && box.height <= 80, `one line, not a card: ${box?.height} px high`);
      for (const b of [open, line.getByRole('button', { name: 'Edit' })]) {
        const r = await b.boundingBox();
        assert.ok(r && r.height >= 44, `touch target ${r?.height} px high`);
      }
    }
    const width = await page.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 390, `no sideways scrolling at 390 px: ${width}`);
    // Edit folds the fields out (and in again); the line follows what is typed.
    const edit = lines.nth(1).getByRole('button', { name: 'Edit' });
    await edit.click();
    assert.equal(await edit.getAttribute('aria-expanded'), 'true');
    assert.equal(await lines.nth(1).locator('input[name="host"]').isVisible(), true);
    await lines.nth(1).locator('input[name="host"]').fill('10.1.1.9');
    assert.equal(await lines.nth(1).locator('[data-field="address"]').textContent(), '10.1.1.9:5901');
    const hostBox = await lines.nth(1).locator('input[name="host"]').boundingBox();
    assert.ok(hostBox && hostBox.x + hostBox.width <= 390, 'the fields fit the screen');
    await edit.click();
    assert.equal(await lines.nth(1).locator('input[name="host"]').isVisible(), false);
    // Open goes to the viewer of that target.
    await lines.nth(0).getByRole('link', { name: 'Open' }).click();
    await page.waitForURL(/\/viewer\/\?target=press$/);
  });

  browser.test('the reachability dot shows the last Test connection, also after a reload', async ({ page }) => {
    const server = await (await import('../helpers/app.js')).tcpServer((socket) => {
      socket.write('RFB 003.008\n');
      let step = 0;
      socket.on('data', () => socket.write(step++ === 0 ? Buffer.from([1, 1]) : Buffer.alloc(4)));
    });
    try {
      const cfg: Config = { version: 1, targets: [target('hmi', server.port, '127.0.0.1', 'HMI')] };
      await app.app.config.save(cfg, new Map([['hmi', null]]));
      await page.goto(`${app.origin}${PREFIX}/config/`);
      const dot = row(page, 0).locator('[data-field="dot"]');
      assert.equal(await dot.getAttribute('class'), 'dot dot-unknown');
      await row(page, 0).getByRole('button', { name: 'Edit' }).click();
      await row(page, 0).getByRole('button', { name: 'Test connection' }).click();
      await until('the dot to turn green', async () => ({ ok: (await dot.getAttribute('class')) === 'dot dot-ok', seen: String(await dot.getAttribute('class')) }));
      assert.match((await dot.getAttribute('aria-label')) ?? '', /^Reachable \d\d:\d\d \(Test connection\)$/);
      await page.reload();
      assert.equal(await row(page, 0).locator('[data-field="dot"]').getAttribute('class'), 'dot dot-ok', 'the server remembers the last test');
      assert.match((await row(page, 0).locator('[data-field="dot"]').getAttribute('aria-label')) ?? '', /^Reachable \d\d:\d\d \(Test connection\)$/);
    } finally {
      await server.close();
    }
  });

  browser.test('input borders have at least 3:1 against their background, white on the orange badge 4.5:1', async ({ page }) => {
    await open(page);
    const colours = await page.evaluate<{ border: string; card: string; page: string; warn: string }>(`(() => {
      const input = document.querySelector('input[name="host"]');
      const card = input.closest('fieldset');
      const probe = document.createElement('span');
      probe.className = 'badge badge-restarting';
      document.body.appendChild(probe);
      const warn = getComputedStyle(probe).backgroundColor;
      probe.remove();
      return { border: getComputedStyle(input).borderTopColor, card: getComputedStyle(card).backgroundColor, page: getComputedStyle(document.body.parentElement).backgroundColor, warn };
    })()`);
    const inputOnCard = contrast(colours.border, colours.card);
    const inputOnPage = contrast(colours.border, colours.page);
    const badge = contrast('rgb(255, 255, 255)', colours.warn);
    assert.ok(inputOnCard >= 3 && inputOnPage >= 3, `input border ${inputOnCard.toFixed(2)}:1 on the card, ${inputOnPage.toFixed(2)}:1 on the page`);
    assert.ok(badge >= 4.5, `white on the orange badge ${badge.toFixed(2)}:1`);
    recordReliability({
      table: 'inputs',
      name: 'settings page: contrast of fields and badges',
      tried: 'computed colours in chromium: input border against card and page, white text on the orange badge',
      outcome: `input border ${inputOnCard.toFixed(2)}:1 (card) and ${inputOnPage.toFixed(2)}:1 (page), badge ${badge.toFixed(2)}:1 (before: 1.49:1 and 3.46:1)`,
    });
  });

  browser.test('an axe-core scan finds no serious or critical violation (list, open fields with errors, 390 px)', async ({ defer }) => {
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    const axe = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
    // The page's CSP allows no injected script: the scan runs in a context that bypasses it.
    const context = await browser.browser.newContext({ bypassCSP: true, viewport: { width: 390, height: 844 } });
    defer(() => context.close());
    const page = await context.newPage();
    await page.goto(`${app.origin}${PREFIX}/config/`);
    const scan = async (state: string): Promise<void> => {
      await page.evaluate(axe);
      const found = await page.evaluate<string[]>(`axe.run().then((r) => r.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => v.impact + ' ' + v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))`);
      assert.deepEqual(found, [], state);
    };
    await scan('the folded list');
    await row(page, 1).getByRole('button', { name: 'Edit' }).click();
    await input(page, 1, 'port').fill('0');
    await save(page, /^Not saved: Target 2/);
    await scan('the open fields with an error');
  });
});
