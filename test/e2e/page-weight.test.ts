/**
 * Page weight of the viewer in chromium with the built-in demo server: every request the page makes
 * (playwright's request events) and the bytes really transferred for it (response headers and
 * encoded body, `request.sizes()`), on a cold open (fresh profile) and a warm one (reload in the
 * same context). The WebSocket of the remote screen is not a request and is not counted; the
 * page's event stream (`api/v1/events`, open as long as the page) counts as a request, with the
 * bytes of its response headers only (its body never ends).
 * Budget (issue 14): a cold open under 200 KB in under 10 requests; warm, no request for a
 * hashed static file (immutable in the browser's cache). Chromium reports a file it takes from
 * its cache as a request with 0 bytes transferred (nothing reaches the server); a file that is
 * revalidated or fetched again has its headers' bytes at least.
 */
import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import type { Page, Request } from 'playwright-core';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { BrowserHarness, until, viewerState } from '../helpers/browser.js';
import { recordReliability } from '../helpers/reliability.js';

const FILE = 'e2e-page-weight';
const HASHED = /\/ctrlx-novnc\/static\/[a-z]+-[0-9a-f]{10}\.(js|css)$/;
/** The page's event stream: open as long as the page, so never "finished". */
const EVENTS = /\/ctrlx-novnc\/api\/v1\/events\?/;

interface Seen {
  url: string;
  status: number;
  encoding: string;
  bytes: number;
}

/** Records the requests of `page` from now on; `done()` waits for their sizes. */
function watchRequests(page: Page): { done: () => Promise<Seen[]> } {
  const requests: Request[] = [];
  const onRequest = (r: Request): void => void requests.push(r);
  page.on('request', onRequest);
  return {
    async done() {
      page.off('request', onRequest);
      return Promise.all(
        requests.map(async (r) => {
          const res = await r.response();
          if (EVENTS.test(r.url())) {
            const headers = await res?.headersArray();
            const headerBytes = (headers ?? []).reduce((sum, h) => sum + h.name.length + h.value.length + 4, 0);
            return { url: new URL(r.url()).pathname, status: res?.status() ?? 0, encoding: 'stream', bytes: headerBytes };
          }
          const sizes = await r.sizes();
          return {
            url: new URL(r.url()).pathname,
            status: res?.status() ?? 0,
            encoding: (await res?.headerValue('content-encoding')) ?? 'identity',
            bytes: sizes.responseHeadersSize + sizes.responseBodySize,
          };
        }),
      );
    },
  };
}

describe('page weight of the viewer (chromium, demo server)', () => {
  const browser = new BrowserHarness(FILE);
  let demo: DemoServer;
  let app: TestApp;

  before(async () => {
    const started = await Promise.allSettled([
      browser.launch(),
      startDemoServer({ host: '127.0.0.1', port: 0, width: 800, height: 600 }).then(async (d) => {
        demo = d;
        app = await startTestApp({ fallbackTarget: { id: 'demo', name: 'Demo', host: '127.0.0.1', port: d.port } });
      }),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
  });

  after(async () => {
    await Promise.allSettled([browser.close(), app?.close(), demo?.close()]);
  });

  async function openConnected(page: Page, open: () => Promise<unknown>): Promise<Seen[]> {
    const watch = watchRequests(page);
    await open();
    await until('the viewer connected to the demo', async () => {
      const state = await viewerState(page);
      return { ok: state.connected, seen: JSON.stringify(state) };
    });
    // The event stream stays open (no "network idle"): its first event says the page is settled.
    await until('the page to know its session from the event stream', async () => {
      const mode = await page.evaluate('window.ctrlxViewer.mode');
      return { ok: mode !== null, seen: String(mode) };
    });
    return watch.done();
  }

  const describeRequests = (seen: Seen[]): string => seen.map((s) => `${s.url} ${s.status} ${s.encoding} ${s.bytes} B`).join('\n');

  browser.test('a cold open transfers under 200 KB in under 10 requests; a warm open asks for no hashed file', async ({ page, context }) => {
    const url = `${app.origin}/ctrlx-novnc/viewer/`;
    const cold = await openConnected(page, () => page.goto(url));
    const coldBytes = cold.reduce((sum, s) => sum + s.bytes, 0);
    const list = describeRequests(cold);
    assert.ok(cold.length < 10, `cold: ${cold.length} requests\n${list}`);
    assert.ok(coldBytes < 200_000, `cold: ${coldBytes} B\n${list}`);
    const statics = cold.filter((s) => HASHED.test(s.url));
    assert.deepEqual(statics.map((s) => s.url.replace(/-[0-9a-f]{10}\./, '-<hash>.')).sort(), [
      '/ctrlx-novnc/static/viewer-<hash>.css',
      '/ctrlx-novnc/static/viewer-<hash>.js',
    ]);
    for (const s of statics) {
      assert.equal(s.status, 200, s.url);
      assert.notEqual(s.encoding, 'identity', `${s.url} is sent compressed`);
    }
    assert.ok(!cold.some((s) => /\/(novnc|shared)\//.test(s.url)), `no module fetched on its own\n${list}`);

    // Warm: the same context (its cache), reloaded and opened again by address.
    const reload = await openConnected(page, () => page.reload());
    const again = await context.newPage();
    const reopen = await openConnected(again, () => again.goto(url));
    for (const [what, warm] of [['reload', reload], ['second open', reopen]] as const) {
      const warmList = describeRequests(warm);
      const fetched = warm.filter((s) => HASHED.test(s.url) && s.bytes > 0);
      assert.deepEqual(fetched, [], `${what}: hashed files came from the network\n${warmList}`);
      assert.ok(warm.some((s) => s.url === '/ctrlx-novnc/viewer/' && s.status === 200 && s.bytes > 0), `${what}: the page itself is fetched anew\n${warmList}`);
    }
    const warmBytes = reload.reduce((sum, s) => sum + s.bytes, 0);
    const warmRequests = reload.filter((s) => s.bytes > 0).length;
    const encoding = statics.find((s) => s.url.endsWith('.js'))!.encoding;
    process.stdout.write(`# page weight: cold ${cold.length} requests ${coldBytes} B (${encoding}); warm ${warmRequests} requests ${warmBytes} B\n`);
    recordReliability({
      table: 'load',
      name: 'viewer page weight, cold and warm',
      tried: 'the viewer opened in chromium with the demo server: fresh profile, then reload and a second tab in the same context; requests counted from playwright events, bytes as transferred (headers + encoded body)',
      outcome: `cold ${cold.length} requests, ${(coldBytes / 1000).toFixed(1)} KB (scripts ${encoding}); warm ${warmRequests} requests, ${(warmBytes / 1000).toFixed(1)} KB, no hashed file from the network`,
    });
  });
});
