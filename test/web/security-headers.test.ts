/**
 * Security headers on every response the app sends, whatever produced it: pages, the viewer,
 * static files, noVNC's modules, API answers, Problem JSON errors, 404s, redirects, 429s and
 * errors the body parser raises. The CSP allows only same-origin framing (the ctrlX UI embeds
 * the pages); test/e2e/framing.test.ts checks what chromium makes of it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API, PREFIX, client, startTestApp, staticPath, type HttpResponse, type TestApp } from '../helpers/app.js';

const CSP_DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "frame-ancestors 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
];

/** Asserts the headers every response must carry; `what` names the request in failures. */
function assertSecurityHeaders(res: HttpResponse, what: string): void {
  const csp = String(res.headers['content-security-policy'] ?? '');
  const directives = csp.split(';').map((d) => d.trim());
  for (const d of CSP_DIRECTIVES) assert.ok(directives.includes(d), `${what}: CSP lacks "${d}": ${csp}`);
  assert.ok(!/unsafe-inline|unsafe-eval|\*/.test(csp), `${what}: CSP allows too much: ${csp}`);
  assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${what}: X-Frame-Options`);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: X-Content-Type-Options`);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  assert.equal(res.headers['x-powered-by'], undefined, `${what}: X-Powered-By reveals the server`);
}

describe('security headers on every response', () => {
  let app: TestApp;
  let http: ReturnType<typeof client>;

  before(async () => {
    app = await startTestApp();
    http = client(app.port);
  });
  after(() => app?.close());

  const cases: [string, string, () => Promise<HttpResponse>][] = [
    ['viewer page', '200', () => http.get(`${PREFIX}/viewer/`)],
    ['settings page', '200', () => http.get(`${PREFIX}/config/`)],
    ['redirect to the viewer', '302', () => http.get(`${PREFIX}/`)],
    ['redirect to the slashed page', '301', () => http.get(`${PREFIX}/config`)],
    ['viewer script (bundled with noVNC)', '200', () => http.get(staticPath('viewer.js'))],
    ['style sheet', '200', () => http.get(staticPath('style.css'))],
    ['missing static file', '404', () => http.get(`${PREFIX}/static/nothing.js`)],
    ['API status', '200', () => http.get(`${API}/status`)],
    ['API config', '200', () => http.get(`${API}/config`)],
    ['unknown page', '404', () => http.get(`${PREFIX}/nothing`)],
    ['unknown API path', '404', () => http.get(`${API}/nothing`)],
    ['malformed JSON', '400', () => http.put(`${API}/config`, '{"targets": [', { headers: { 'Content-Type': 'application/json' } })],
    ['invalid configuration', '400', () => http.put(`${API}/config`, { targets: [{ id: 'a' }] })],
    ['wrong content type', '415', () => http.put(`${API}/config`, 'targets=1', { headers: { 'Content-Type': 'text/plain' } })],
    ['cross-origin change', '403', () => http.put(`${API}/config`, { targets: [] }, { headers: { Origin: 'https://evil.example' } })],
    ['body too large', '413', () => http.put(`${API}/config`, { targets: [], pad: 'x'.repeat(2 << 20) })],
    ['relay preflight with no target', '503', () => http.get(`${PREFIX}/websockify`)],
  ];

  for (const [what, status, send] of cases) {
    it(`${what} (${status})`, async () => {
      const res = await send();
      assert.equal(String(res.status), status, `${what}: ${res.text.slice(0, 200)}`);
      assertSecurityHeaders(res, what);
    });
  }

  it('a rate-limited change (429)', async () => {
    const limited = await startTestApp({ rateLimits: { changes: { limit: 1, windowMs: 60_000 } } });
    try {
      const lc = client(limited.port);
      assert.equal((await lc.put(`${API}/config`, { targets: [] })).status, 200);
      const res = await lc.put(`${API}/config`, { targets: [] });
      assert.equal(res.status, 429, res.text);
      assert.ok(Number(res.headers['retry-after']) >= 1);
      assertSecurityHeaders(res, 'rate-limited change');
    } finally {
      await limited.close();
    }
  });
});
