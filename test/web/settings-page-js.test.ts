/**
 * The settings page with JavaScript (chromium, public/config.js): the idle timeout goes into the
 * `PUT` only when filled in and comes back from the answer, a refused value is shown next to its
 * field; the live status panel lists the targets in the same words as the page the server
 * rendered; and a page whose login ended stops polling instead of piling up failed logins.
 * Timers in the page run on Playwright's clock, so polls happen when the test says so.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { SCOPE_MANAGE } from '../../src/ctrlx/auth.js';
import type { Config } from '../../src/config/schema.js';
import { API, PREFIX, client, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until } from '../helpers/browser.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';

/** Counts the page's calls of `api/v1/status` (in the page, so the count is exact when read). */
const COUNT_STATUS_CALLS = `
  window.__statusCalls = 0;
  const realFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    if (String(input instanceof Request ? input.url : input).includes('/api/v1/status')) window.__statusCalls++;
    return realFetch(input, init);
  };
`;

const statusCalls = (page: Page): Promise<number> => page.evaluate<number>('window.__statusCalls');

/** The status panel's "Targets" entry as it reads on the screen, white space collapsed. */
const targetsText = async (page: Page): Promise<string> => (await page.locator('[data-field="targets"]').innerText()).replace(/\s+/g, ' ').trim();

describe('settings page with JavaScript (chromium)', () => {
  const browser = new BrowserHarness('web-settings-js');
  let app: TestApp;
  const initial: Config = { version: 1, targets: [{ ...target('press', 5900, '192.168.1.50', 'Press line'), idleTimeout: 30 }, target('weld', 5901, 'weld-hmi', 'Welder')] };

  before(async () => {
    await browser.launch();
    app = await startTestApp({ initial });
  });
  after(async () => {
    await Promise.allSettled([browser.close(), app?.close()]);
  });

  async function open(page: Page): Promise<Record<string, any>[]> {
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    const puts: Record<string, any>[] = [];
    page.on('request', (r) => {
      if (r.method() === 'PUT') puts.push(JSON.parse(r.postData() ?? '{}'));
    });
    await page.clock.install();
    await page.addInitScript(COUNT_STATUS_CALLS);
    await page.goto(`${app.origin}${PREFIX}/config/`);
    // The targets are one line each; "Edit" folds out a target's fields.
    for (const edit of await page.locator('[data-action="edit"]').all()) await edit.click();
    return puts;
  }
  const row = (page: Page, i: number) => page.locator('fieldset.target').nth(i);
  const idle = (page: Page, i: number) => row(page, i).locator('input[name="idleTimeout"]');
  const save = async (page: Page, expect: RegExp): Promise<void> => {
    await page.locator('#message').evaluate((el) => (el.textContent = ''));
    await page.getByRole('button', { name: 'Save', exact: true }).last().click();
    await until(`the message ${expect}`, async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: expect.test(text), seen: text };
    });
  };

  browser.test('sends the idle timeout only when filled in, and shows what was stored', async ({ page }) => {
    const puts = await open(page);
    assert.equal(await idle(page, 0).inputValue(), '30');
    assert.equal(await idle(page, 0).getAttribute('placeholder'), 'never');

    await idle(page, 0).fill('');
    await idle(page, 1).fill(' 45 ');
    await save(page, /^Saved\./);
    assert.equal('idleTimeout' in puts.at(-1)!.targets[0], false);
    assert.equal(puts.at(-1)!.targets[1].idleTimeout, 45);
    assert.equal(await idle(page, 1).inputValue(), '45', 'the field shows the stored value');
    const stored = await client(app.port).config();
    assert.equal(stored.targets[0]!.idleTimeout, undefined);
    assert.equal(stored.targets[1]!.idleTimeout, 45);

    // A row added on the page starts with "never".
    await page.getByRole('button', { name: 'Add target' }).click();
    assert.equal(await idle(page, 2).inputValue(), '');
  });

  browser.test('shows a refused idle timeout next to its field, naming the target in words, nothing saved', async ({ page }) => {
    await open(page);
    await idle(page, 1).fill('1441');
    await save(page, /^Not saved: Target 2 \([^)]*\): Close idle sessions after: enter whole minutes from 1 to 1440/);
    assert.equal(
      await row(page, 1).locator('.error[data-for="idleTimeout"]').textContent(),
      'Close idle sessions after: enter whole minutes from 1 to 1440, or leave it empty to never close idle sessions',
    );
    assert.equal(await idle(page, 1).getAttribute('aria-invalid'), 'true');
    assert.equal(await row(page, 0).locator('.error[data-for="idleTimeout"]').textContent(), '');
    await idle(page, 1).fill('soon');
    await save(page, /^Not saved: Target 2 \([^)]*\): Close idle sessions after: /);
    assert.equal((await client(app.port).config()).targets[1]!.idleTimeout, undefined);
  });

  browser.test('renders the targets in the status panel as the server did, and updates them live', async ({ page }) => {
    await open(page);
    const served = await targetsText(page);
    assert.equal(served, 'Press line (192.168.1.50:5900) Welder (weld-hmi:5901)');
    // One poll: the live rendering replaces the served one with the same words.
    const calls = await statusCalls(page);
    await page.locator('[data-field="targets"]').evaluate((el) => (el.textContent = ''));
    await page.clock.runFor(2000);
    await until('the first poll rendered', async () => ({ ok: (await targetsText(page)) !== '', seen: await targetsText(page) }));
    assert.equal(await statusCalls(page), calls + 1);
    assert.equal(await targetsText(page), served);

    // A password stored elsewhere (the API) shows up with the next poll, in the server's words.
    const put = await client(app.port).put(`${API}/config`, { targets: [initial.targets[0], { ...initial.targets[1], password: 'pw-5678' }] });
    assert.equal(put.status, 200);
    await page.clock.runFor(2000);
    await until('the password note', async () => ({ ok: /VNC password stored/.test(await targetsText(page)), seen: await targetsText(page) }));
    const live = await page.locator('[data-field="targets"]').innerHTML();
    const rendered = (await client(app.port).get(`${PREFIX}/config/`)).text;
    assert.equal(await targetsText(page), 'Press line (192.168.1.50:5900) Welder (weld-hmi:5901) VNC password stored');
    assert.match(rendered, /<li>Welder \(weld-hmi:5901\) <span class="password-note">VNC password stored<\/span><\/li>/);
    assert.match(live, /<li>Welder \(weld-hmi:5901\) <span class="password-note">VNC password stored<\/span><\/li>/);
  });
});

describe('settings page with JavaScript, login ended (chromium)', () => {
  const browser = new BrowserHarness('web-settings-js-login');
  let idm: FakeIdm;
  let app: TestApp;
  const manager = makeToken('engineer', [SCOPE_MANAGE]);

  before(async () => {
    await browser.launch();
    idm = await startFakeIdm();
    idm.valid.add(manager);
    // No cache: the identity manager's answer counts from the next request on.
    app = await startTestApp({ initial: { version: 1, targets: [target('press', 5900, '192.168.1.50')] }, auth: { validityUrl: idm.url, cacheSeconds: 0 } });
  });
  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), idm?.close()]);
  });

  browser.test('stops polling the status after a 401 and says why', async ({ page }) => {
    await page.clock.install();
    await page.addInitScript(COUNT_STATUS_CALLS);
    await page.goto(`${app.origin}${PREFIX}/config/?token=${manager}`);
    // Emptied here, filled in again only by a poll's answer: then that answer has arrived.
    await page.locator('[data-field="sessions"]').evaluate((el) => (el.textContent = ''));
    await page.clock.runFor(2000);
    await until('a poll answered', async () => {
      const text = (await page.locator('[data-field="sessions"]').textContent()) ?? '';
      return { ok: text === '0', seen: `calls=${await statusCalls(page)} sessions="${text}"` };
    });
    assert.equal(await statusCalls(page), 1);

    idm.valid.delete(manager);
    await page.clock.runFor(2000);
    await until('the message about the ended login', async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: /login of this page has ended/.test(text), seen: text };
    });
    assert.equal(await statusCalls(page), 2);
    // Ten more poll intervals: no further request (each would be another failed login).
    await page.clock.runFor(20_000);
    assert.equal(await statusCalls(page), 2);
  });
});
