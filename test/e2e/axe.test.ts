/**
 * An axe-core scan (WCAG 2.x rules, injected into chromium) of the viewer and the settings page,
 * in English and in German: the viewer connected to the demo server, disconnected, and with the
 * VNC password dialog open (a demo server that asks for a password), the empty state, and the
 * settings page (the list, and a target's fields open with an error). No violation of impact `serious` or `critical` may be found.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe } from 'node:test';
import type { Page } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { API, client, config, startTestApp, target, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';

const FILE = 'e2e-axe';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

interface Finding {
  impact: string;
  id: string;
  nodes: string[];
}

/** Injects axe-core into `page` and runs it; every violation with its impact, rule and nodes. */
async function scan(page: Page): Promise<Finding[]> {
  if (!(await page.evaluate('typeof axe !== "undefined"'))) await page.addScriptTag({ path: AXE });
  return page.evaluate<Finding[]>(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
    impact: v.impact || '', id: v.id, nodes: v.nodes.map((n) => n.target.join(' ')),
  })))`);
}

/** The serious and critical findings, one line each. */
const grave = (found: Finding[]): string[] =>
  found.filter((f) => f.impact === 'serious' || f.impact === 'critical').map((f) => `${f.impact} ${f.id}: ${f.nodes.join(', ')}`);

async function phase(page: Page): Promise<string> {
  return page.evaluate(() => (globalThis as unknown as { ctrlxViewer?: { phase: string } }).ctrlxViewer?.phase ?? '');
}

async function waitForPhase(page: Page, want: string): Promise<void> {
  await until(`the viewer in phase ${want}`, async () => {
    const seen = await phase(page);
    return { ok: seen === want, seen };
  });
}

describe('axe-core scan of the viewer and the settings page, English and German (chromium)', () => {
  const browser = new BrowserHarness(FILE);
  let app: TestApp;
  let empty: TestApp;
  let demo: DemoServer;
  let locked: DemoServer;
  /** Every scan: its name and the number of violations by impact. */
  const scans: string[] = [];

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 400 }).then((d) => (demo = d)),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 400, password: 'Geheim-1' }).then((d) => (locked = d)),
      startTestApp({ pollInterval: 50 }).then((x) => (app = x)),
      startTestApp({ pollInterval: 50 }).then((x) => (empty = x)),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const res = await client(app.port).put(`${API}/config`, config(target('press', demo.port, '127.0.0.1', 'Press'), target('locked', locked.port, '127.0.0.1', 'Locked')));
    assert.equal(res.status, 200, res.text);
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), empty?.close(), demo?.close(), locked?.close()]);
  });

  for (const locale of ['en-US', 'de-DE']) {
    const lang = locale.slice(0, 2);
    browser.test(`${lang}: the viewer connected, disconnected, with the password dialog open, and empty; the settings page`, async ({ defer }) => {
      // The pages' CSP allows no injected script: the scan runs in a context that bypasses it.
      const context = await browser.browser.newContext({ locale, bypassCSP: true, viewport: { width: 1280, height: 800 } });
      defer(() => context.close());
      const page = await context.newPage();
      const problems: string[] = [];
      const check = async (state: string): Promise<void> => {
        assert.equal(await page.locator('html').getAttribute('lang'), lang, `${state}: <html lang>`);
        const found = await scan(page);
        const counts = ['critical', 'serious', 'moderate', 'minor'].map((i) => `${found.filter((f) => f.impact === i).length} ${i}`).join(', ');
        scans.push(`${lang} ${state}: ${counts}`);
        for (const line of grave(found)) problems.push(`${state}: ${line}`);
      };

      await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=press`);
      await waitForPhase(page, 'connected');
      await check('viewer connected');
      // The scan really finds what it should: a button without a name is critical.
      await page.evaluate(`document.body.append(Object.assign(document.createElement('button'), { id: 'planted' }))`);
      assert.ok(grave(await scan(page)).some((l) => l.startsWith('critical button-name: #planted')), 'a planted nameless button is found');
      await page.evaluate(`document.getElementById('planted').remove()`);
      await page.locator('#disconnect').click();
      await waitForPhase(page, 'stopped');
      await check('viewer disconnected');

      await page.goto(`${app.origin}/ctrlx-novnc/viewer/?target=locked`);
      await page.locator('#password-dialog').waitFor({ state: 'visible' });
      await check('viewer with the password dialog');
      await page.locator('#password').fill('wrong-1');
      await page.locator('#password').press('Enter');
      await until('the dialog back with its error', async () => {
        const shown = await page.locator('#password-error').isVisible();
        return { ok: shown && (await page.locator('#password-dialog').isVisible()), seen: String(shown) };
      });
      await check('viewer with the password dialog and its error');

      await page.goto(`${empty.origin}/ctrlx-novnc/viewer/`);
      await waitForPhase(page, 'empty');
      await check('viewer empty state');

      await page.goto(`${app.origin}/ctrlx-novnc/config/`);
      await page.locator('form').first().waitFor();
      await check('settings page');
      // The fields of the first target open, with an error the page found.
      const first = page.locator('fieldset.target').first();
      await first.locator('[data-action="edit"]').click();
      await first.locator('input[name="port"]').fill('0');
      await page.locator('.form-actions [data-action="save"]').click();
      await until('the error next to the port', async () => {
        const text = (await first.locator('.error[data-for="port"]').textContent()) ?? '';
        return { ok: text.length > 0, seen: text };
      });
      await check('settings page with a field error');
      assert.deepEqual(problems, [], 'no serious or critical violation');
      process.stdout.write(`# axe ${scans.filter((l) => l.startsWith(lang)).join('; ')}\n`);
    });
  }

  after(() => {
    if (scans.length === 14) {
      recordReliability({
        table: 'inputs',
        name: 'axe-core scan of the pages',
        tried: 'axe-core in chromium, English and German: viewer connected, disconnected, password dialog (with and without its error), empty state; settings page (list, and a field error)',
        outcome: `no serious or critical violation in ${scans.length} scans`,
      });
    }
  });
});
