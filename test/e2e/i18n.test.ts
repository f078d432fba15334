/**
 * The pages in German, in chromium: a browser set to German (`locale: 'de-DE'`, which sends
 * `Accept-Language: de-DE`) gets the viewer in German (toolbar, states, failure messages, the
 * password dialog and its error), and `?lang=de` does the same in an English browser and is kept
 * in the link to the settings; an English browser gets English.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { API, client, config, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, overlayText, until } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';
import { startBurstClose } from '../helpers/targets.js';

const FILE = 'e2e-i18n';

interface Hook {
  connected: boolean;
  status: string;
  phase: string;
}

async function hook(page: Page): Promise<Hook> {
  return page.evaluate(() => {
    const v = (globalThis as unknown as { ctrlxViewer?: Hook }).ctrlxViewer;
    return v ? { connected: v.connected, status: v.status, phase: v.phase } : { connected: false, status: '', phase: '' };
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

/** The visible label of a toolbar button. */
async function label(page: Page, id: string): Promise<string> {
  return ((await page.locator(`#${id} .label`).textContent()) ?? '').trim();
}

describe('the pages in German (chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let app: TestApp;
  let demo: DemoServer;
  let locked: DemoServer;
  let http: ReturnType<typeof client>;

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 400 }).then((d) => (demo = d)),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 400, password: 'Geheim-1' }).then((d) => (locked = d)),
      startTestApp({ pollInterval: 50 }).then((x) => (app = x)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    http = client(app.port);
    const res = await http.put(`${API}/config`, config(target('presse', demo.port, '127.0.0.1', 'Presse'), target('gesperrt', locked.port, '127.0.0.1', 'Gesperrt')));
    assert.equal(res.status, 200, res.text);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close(), locked?.close()]);
  });

  const e2e = browser.test.bind(browser);

  /** A page in a browser context with `locale` (chromium then sends it as Accept-Language). */
  async function pageIn(locale: string, defer: (c: () => unknown) => void): Promise<Page> {
    const context: BrowserContext = await browser.browser.newContext({ locale, viewport: { width: 1280, height: 800 } });
    defer(() => context.close());
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    defer(() => assert.deepEqual(errors, [], 'no uncaught errors in the page'));
    return page;
  }

  e2e('a German browser (locale de-DE) gets the viewer in German: toolbar, status, html lang', async ({ defer }) => {
    const page = await pageIn('de-DE', defer);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=presse`);
    const state = await waitForPhase(page, 'connected');
    assert.match(state.status, /^Verbunden mit Presse — /);
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    assert.equal(await page.title(), 'Fernbildschirm');
    assert.equal(await label(page, 'disconnect'), 'Trennen');
    assert.equal(await label(page, 'fullscreen'), 'Vollbild');
    assert.equal(await label(page, 'screenshot'), 'Bildschirmfoto');
    assert.equal(await label(page, 'settings-link'), 'Einstellungen');
    assert.equal(await page.locator('#scaling option[value="fit"]').textContent(), 'An Fenster anpassen');
    assert.equal(await page.locator('#keys option[value="ctrl-alt-del"]').textContent(), 'Strg+Alt+Entf');
    assert.equal(await page.getByRole('toolbar', { name: 'Bedienleiste' }).count(), 1);
    // A state the script writes: Disconnect, then the overlay in German.
    await page.locator('#disconnect').click();
    await waitForPhase(page, 'stopped');
    assert.equal(await overlayText(page), 'Getrennt. Mit „Jetzt verbinden“ stellen Sie die Verbindung wieder her.');
    assert.match((await page.locator('#lost-at').textContent()) ?? '', /^Getrennt um \d\d:\d\d$/);
    assert.equal(await label(page, 'connect'), 'Jetzt verbinden');
  });

  e2e('a failure message in German: a port that is not a VNC server', async ({ defer }) => {
    const http400 = await startBurstClose(() => Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    defer(() => http400.close());
    const res = await http.put(
      `${API}/config`,
      config(target('presse', demo.port, '127.0.0.1', 'Presse'), target('gesperrt', locked.port, '127.0.0.1', 'Gesperrt'), target('web', http400.port, '127.0.0.1', 'Webserver')),
    );
    assert.equal(res.status, 200, res.text);
    const page = await pageIn('de-AT', defer);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=web`);
    await waitForPhase(page, 'stopped');
    assert.match((await overlayText(page)) ?? '', /^Webserver ist erreichbar, aber kein VNC-Server.*Prüfen Sie den Port in den Einstellungen\.$/);
    assert.equal(((await page.locator('#overlay-settings').textContent()) ?? '').trim(), 'Einstellungen öffnen');
  });

  e2e('the password dialog and a rejected password in German', async ({ defer }) => {
    const page = await pageIn('de-DE', defer);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=gesperrt`);
    const dialog = page.locator('#password-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#password-title').textContent(), 'Passwort erforderlich');
    assert.equal(await page.getByLabel('Passwort', { exact: true }).count(), 1);
    await page.locator('#password').fill('falsch-1');
    await page.locator('#password').press('Enter');
    await until('the dialog back with the German error', async () => {
      const error = (await page.locator('#password-error').textContent()) ?? '';
      return { ok: (await dialog.isVisible()) && error.startsWith('Gesperrt hat das Passwort nicht angenommen'), seen: error };
    });
    await page.locator('#password').fill('Geheim-1');
    await page.locator('#password').press('Enter');
    const state = await waitForPhase(page, 'connected');
    assert.match(state.status, /^Verbunden mit Gesperrt/);
  });

  e2e('a German browser gets the settings page in German: labels, a field error from the page, Test connection, Save', async ({ defer }) => {
    const page = await pageIn('de-DE', defer);
    await page.goto(`${app.origin}/ctrlx-novnc/config/`);
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    assert.equal(await page.title(), 'Einstellungen · Fernbildschirm');
    assert.equal(await page.locator('h1').textContent(), 'VNC-Ziele');
    const first = page.locator('fieldset.target').first();
    await first.getByRole('button', { name: 'Presse bearbeiten' }).click();
    assert.equal(await first.getByLabel('IP-Adresse oder Hostname').count(), 1);
    assert.equal(await first.getByRole('button', { name: 'Verbindung testen' }).count(), 1);
    // Test connection on the demo server (no password): the answer in German.
    await first.getByRole('button', { name: 'Verbindung testen' }).click();
    await until('the German test result', async () => {
      const text = (await first.locator('[data-field="probe"]').textContent()) ?? '';
      return { ok: /^VNC-Server, RFB 003\.008\. Er verlangt kein Passwort: Viewer verbinden sich ohne Passwort\.$/.test(text), seen: text };
    });
    assert.match((await first.locator('[data-field="dot"]').getAttribute('aria-label')) ?? '', /^Erreichbar \d\d:\d\d \(Verbindung testen\)$/);
    // A port the page itself refuses: the message in German, next to the field and at the top.
    await first.locator('input[name="port"]').fill('0');
    await page.getByRole('button', { name: 'Speichern', exact: true }).click();
    await until('the German error', async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: text === 'Nicht gespeichert: Ziel 1 (Presse): Port: Geben Sie eine Zahl von 1 bis 65535 ein', seen: text };
    });
    assert.equal(await first.locator('.error[data-for="port"]').textContent(), 'Port: Geben Sie eine Zahl von 1 bis 65535 ein');
    await first.locator('input[name="port"]').fill(String(demo.port));
    await page.getByRole('button', { name: 'Speichern', exact: true }).click();
    await until('saved, in German', async () => {
      const text = (await page.locator('#message').textContent()) ?? '';
      return { ok: text.startsWith('Gespeichert'), seen: text };
    });
    // The live status panel is fetched again in the page's language.
    await until('the status panel in German', async () => {
      const text = (await page.locator('#status-body').textContent()) ?? '';
      return { ok: text.includes('Offene Sitzungen') && text.includes('Ziele'), seen: text.slice(0, 120) };
    });
  });

  e2e('?lang=de in an English browser: German, and kept in the link to the settings; without it English', async ({ defer }) => {
    const page = await pageIn('en-US', defer);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=presse&lang=de`);
    const state = await waitForPhase(page, 'connected');
    assert.match(state.status, /^Verbunden mit Presse/);
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    const href = (await page.locator('#settings-link').getAttribute('href')) ?? '';
    assert.equal(href, '../config/?lang=de');
    // Into the settings and back: German all the way (the token module keeps ?lang= in the link).
    await page.locator('#settings-link').click();
    await page.waitForURL(/\/config\/\?lang=de/);
    assert.equal(await page.locator('h1').textContent(), 'VNC-Ziele');
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    await page.getByRole('link', { name: 'Viewer öffnen' }).click();
    await page.waitForURL(/\/viewer\/\?lang=de/);
    assert.match((await waitForPhase(page, 'connected')).status, /^Verbunden mit/);
    await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=presse`);
    const english = await waitForPhase(page, 'connected');
    assert.match(english.status, /^Connected to Presse/);
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await label(page, 'disconnect'), 'Disconnect');
    recordReliability({
      table: 'inputs',
      name: 'viewer in German',
      tried: 'chromium with locale de-DE and de-AT, and en-US with ?lang=de: viewer (connect, disconnect, a port that is not VNC, the password dialog with a wrong then the right password) and settings page (labels, Test connection, a field error, Save, live status)',
      outcome: 'every text German, <html lang="de">; ?lang=de kept from viewer to settings and back; en-US without it English',
    });
  });
});
