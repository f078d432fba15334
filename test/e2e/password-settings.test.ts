/**
 * The VNC password on the settings page with JavaScript (chromium): public/config.js sends
 * `password` only when one is typed and `null` when "Remove password" is ticked, empties the
 * field after saving, shows "Password set" from the answer, and shows errors next to the field.
 * No answer the page receives ever holds a password.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { serializeConfig } from '../../src/config/schema.js';
import { ADDRESS_CLEARS_PASSWORD, passwordsClearedText } from '../../src/common/form-rules.js';
import { config, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until } from '../helpers/browser.js';

const SECRET = 'Js-pw#3141';
const SECOND = 'noch1mal!';

describe('VNC password on the settings page (chromium)', () => {
  const browser = new BrowserHarness('e2e-password');
  let app: TestApp;
  const initial = config(target('press', 5900, '192.168.1.50', 'Press line'), target('weld', 5901, 'weld-hmi', 'Welder'));

  before(async () => {
    await browser.launch();
    app = await startTestApp({ initial: serializeConfig(initial) });
  });
  after(async () => {
    await Promise.allSettled([browser.close(), app?.close()]);
  });

  /** Opens the page with passwords reset; records the PUT bodies sent and every answer's text. */
  async function open(page: Page): Promise<{ puts: Record<string, unknown>[]; answers: string[] }> {
    await app.app.config.save(initial, new Map([['press', null], ['weld', null]]));
    const puts: Record<string, unknown>[] = [];
    const answers: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'PUT') puts.push(JSON.parse(r.postData() ?? '{}'));
    });
    page.on('response', (r) => {
      void r.text().then((t) => answers.push(t), () => {});
    });
    await page.goto(`${app.origin}/ctrlx-novnc/config/`);
    // The targets are one line each; "Edit" folds out a target's fields.
    for (const edit of await page.locator('[data-action="edit"]').all()) await edit.click();
    return { puts, answers };
  }

  const row = (page: Page, i: number) => page.locator('fieldset.target').nth(i);
  const save = async (page: Page, expect: RegExp = /^Saved\./): Promise<void> => {
    // Clear the previous message first: "Saved." from the last save must not count for this one.
    await page.locator('#message').evaluate((el) => (el.textContent = ''));
    await page.getByRole('button', { name: 'Save', exact: true }).last().click();
    await until(`the message ${expect}`, async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: expect.test(text), seen: text };
    });
  };
  const state = (page: Page, i: number) => row(page, i).locator('[data-field="passwordState"]').textContent();

  browser.test('sets a password, empties the field, keeps it on a later save, removes it with the tick', async ({ page }) => {
    const { puts, answers } = await open(page);
    assert.equal(await state(page, 0), 'No password stored');
    assert.equal(await row(page, 0).locator('[data-field="removePassword"]').isVisible(), false);

    await row(page, 0).locator('input[name="password"]').fill(SECRET);
    await save(page);
    assert.deepEqual((puts[0]!.targets as { password?: unknown }[]).map((x) => x.password), [SECRET, undefined]);
    assert.equal(app.app.config.passwordFor('press'), SECRET);
    assert.equal(await row(page, 0).locator('input[name="password"]').inputValue(), '', 'the field is empty again');
    assert.equal(await row(page, 0).locator('input[name="password"]').getAttribute('placeholder'), 'unchanged');
    assert.equal(await state(page, 0), 'Password set');
    assert.equal(await row(page, 0).locator('[data-field="removePassword"]').isVisible(), true);

    // A save without typing sends no password: the stored one stays.
    await row(page, 0).locator('input[name="name"]').fill('Press 2');
    await save(page);
    assert.equal('password' in (puts[1]!.targets as object[])[0]!, false);
    assert.equal(app.app.config.passwordFor('press'), SECRET);

    // Remove password.
    await row(page, 0).getByLabel('Remove password').check();
    await save(page);
    assert.equal((puts[2]!.targets as { password?: unknown }[])[0]!.password, null);
    assert.equal(app.app.config.hasPassword('press'), false);
    assert.equal(await state(page, 0), 'No password stored');
    assert.equal(await row(page, 0).locator('[data-field="removePassword"]').isVisible(), false);

    await until('every answer read', async () => ({ ok: answers.length >= 4, seen: String(answers.length) }));
    assert.ok(answers.every((a) => !a.includes(SECRET)), 'no answer holds the password');
  });

  browser.test('shows a refused password next to its field and a conflicting tick without sending anything', async ({ page }) => {
    const { puts } = await open(page);
    await row(page, 1).locator('input[name="password"]').fill('Pässwort€');
    await save(page, /^Not saved: Target 2 \(Welder\): VNC password: use only Latin-1/);
    assert.match((await row(page, 1).locator('.error[data-for="password"]').textContent()) ?? '', /Latin-1/);
    assert.equal(await row(page, 1).locator('input[name="password"]').getAttribute('aria-invalid'), 'true');
    assert.equal(app.app.config.hasPassword('weld'), false);

    await row(page, 1).locator('input[name="password"]').fill(SECOND);
    await save(page);
    const sent = puts.length;
    await row(page, 1).locator('input[name="password"]').fill(SECRET);
    await row(page, 1).getByLabel('Remove password').check();
    await save(page, /^Not saved: Target 2 \(Welder\): Type a new password or tick "Remove password", not both\.$/);
    assert.equal(puts.length, sent, 'nothing was sent');
    assert.equal(app.app.config.passwordFor('weld'), SECOND);
  });

  browser.test('a target added on the page starts without a password and can get one', async ({ page }) => {
    await open(page);
    await row(page, 0).locator('input[name="password"]').fill(SECRET);
    await save(page);
    await page.getByRole('button', { name: 'Add target' }).click();
    const added = row(page, 2);
    assert.equal(await added.locator('[data-field="passwordState"]').textContent(), 'No password stored');
    assert.equal(await added.locator('[data-field="removePassword"]').isVisible(), false);
    assert.equal(await added.locator('input[name="password"]').getAttribute('placeholder'), 'optional');
    await added.locator('input[name="name"]').fill('Robot');
    await added.locator('input[name="host"]').fill('10.1.1.9');
    await added.locator('input[name="password"]').fill(SECOND);
    await save(page);
    assert.equal(app.app.config.passwordFor('robot'), SECOND);
    assert.equal(app.app.config.passwordFor('press'), SECRET);
    assert.equal(await state(page, 2), 'Password set');
  });

  browser.test('says next to the address that changing it clears the password, and after a save which passwords it cleared', async ({ page }) => {
    await open(page);
    const hint = row(page, 0).locator('[data-field="addressHint"]');
    assert.equal(await hint.isVisible(), false, 'no password: no hint');
    await row(page, 0).locator('input[name="password"]').fill(SECRET);
    await save(page);
    assert.equal(await hint.isVisible(), true, 'shown once a password is stored');
    assert.equal(await hint.textContent(), ADDRESS_CLEARS_PASSWORD);

    await row(page, 0).locator('input[name="port"]').fill('5910');
    await save(page, /^Saved\..*cleared/);
    assert.equal(await page.locator('#message').textContent(), `Saved. New viewer sessions use these targets now. ${passwordsClearedText(['Press line'])}`);
    assert.equal(app.app.config.hasPassword('press'), false);
    assert.equal(await state(page, 0), 'No password stored');
    assert.equal(await hint.isVisible(), false);

    // Moved again with the password typed in the same save: kept, nothing said about clearing.
    await row(page, 0).locator('input[name="password"]').fill(SECRET);
    await save(page);
    await row(page, 0).locator('input[name="host"]').fill('192.168.1.51');
    await row(page, 0).locator('input[name="password"]').fill(SECOND);
    await save(page, /^Saved\. New viewer sessions use these targets now\.$/);
    assert.equal(app.app.config.passwordFor('press'), SECOND);
  });
});
