/**
 * Cross-site failed logins (issue 12, item 5): any web page can make a browser send GETs such as
 * `<img src=".../viewer/?token=x1">`; requests the browser marks `Sec-Fetch-Site: cross-site` must
 * neither log in with a token in the URL or a form nor count as failed logins, so such a page
 * cannot lock users out. Same-site, same-origin, `none` and requests without the header are
 * checked and counted as before. Against the real `serve` child with ctrlX logins (fake identity
 * manager), at the default limit of 10 failed logins in 5 minutes.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API, config, csrfToken, makeTempDir, removeDir, request, target, writeConfigFile } from '../helpers/app.js';
import { spawnServe, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';

const VIEWER = '/ctrlx-novnc/viewer/';
const SETTINGS = '/ctrlx-novnc/config/';

describe('cross-site requests and the failed-login budget (serve, ctrlX logins)', () => {
  let idm: FakeIdm;
  let root: string;
  let serve: ServeProcess;
  let port: number;
  const good = makeToken('operator', [SCOPE_VIEW, SCOPE_MANAGE]);
  /** Well-formed, unexpired tokens the identity manager does not know: real guesses. */
  const bad = (i: number): string => makeToken(`guess${i}`, [SCOPE_VIEW]);

  before(async () => {
    idm = await startFakeIdm();
    idm.valid.add(good);
    root = await makeTempDir('cross-site');
    writeConfigFile(path.join(root, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config(target('v', 5900)));
    serve = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, '--auth', 'ctrlx', '--idm-url', idm.url]);
    port = serve.port!;
  });
  after(async () => {
    await serve.stop();
    await idm.close();
    await removeDir(root);
  });

  it('50 cross-site requests with a bad token get 401 and cost nothing; then a good token still works and bad same-origin tokens are still counted', async () => {
    const asked = idm.requests.length;
    const crossSite = { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors', 'Sec-Fetch-Dest': 'image' };
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const query = i % 2 === 0 ? `?token=${bad(i)}` : `?access_token=${bad(i)}`;
      statuses.push((await request(port, 'GET', `${VIEWER}${query}`, { headers: crossSite })).status);
    }
    assert.deepEqual(new Set(statuses), new Set([401]), `all 50 answered 401: ${statuses.join(',')}`);
    // A cross-site form post carrying its token in a field: refused the same way, before the CSRF check.
    const form = await request(port, 'POST', SETTINGS, {
      headers: { 'Sec-Fetch-Site': 'cross-site', Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['_token', bad(99)], ['action', 'save']]).toString(),
    });
    assert.equal(form.status, 401);
    // Never logs in from the URL either, even with a valid token.
    assert.equal((await request(port, 'GET', `${VIEWER}?token=${good}`, { headers: { 'Sec-Fetch-Site': 'CROSS-SITE' } })).status, 401);
    assert.equal(idm.requests.length, asked, 'the identity manager was not asked for any cross-site token');

    // The budget is untouched: same-origin with the good token works.
    const page = await request(port, 'GET', `${VIEWER}?token=${good}`, { headers: { 'Sec-Fetch-Site': 'same-origin' } });
    assert.equal(page.status, 200);
    const settings = await request(port, 'GET', `${SETTINGS}?token=${good}`, { headers: { 'Sec-Fetch-Site': 'same-origin' } });
    assert.equal(settings.status, 200);
    assert.ok(csrfToken(settings.text));
    // A header token from a cross-site request still logs in (a browser sends one only where CORS allows).
    const api = await request(port, 'GET', `${API}/status`, { headers: { 'Sec-Fetch-Site': 'cross-site', Authorization: `Bearer ${good}` } });
    assert.equal(api.status, 200);

    // Bad tokens from the app's own pages (and typed, same-site, or from clients without the header) still count: 10, then 429.
    const kinds = ['same-origin', 'same-origin', 'same-origin', 'same-site', 'same-site', 'none', 'none', undefined, undefined, 'same-origin'];
    for (const [i, kind] of kinds.entries()) {
      const res = await request(port, 'GET', `${VIEWER}?token=${bad(100 + i)}`, { headers: kind ? { 'Sec-Fetch-Site': kind } : {} });
      assert.equal(res.status, 401, `bad token ${i + 1} (${kind ?? 'no Sec-Fetch-Site'})`);
    }
    const locked = await request(port, 'GET', `${VIEWER}?token=${good}`, { headers: { 'Sec-Fetch-Site': 'same-origin' } });
    assert.equal(locked.status, 429, 'the 10 same-origin failures locked the client out');
    assert.match(String(locked.headers['retry-after']), /^\d+$/);

    recordReliability({
      table: 'inputs',
      name: 'cross-site failed logins cannot lock users out',
      tried:
        '50 cross-site GETs of the viewer with unknown ?token=/?access_token= (as <img> tags on another site send them), a cross-site form post with a _token field and a cross-site GET with a valid ?token=, against serve with ctrlX logins (fake identity manager, default 10 failed logins in 5 minutes)',
      outcome: `all 52 answered 401 without asking the identity manager or counting; the valid token then still opened viewer and settings (200); 10 bad same-origin/same-site/none/headerless tokens were counted as before and the next request got 429 with Retry-After`,
    });
  });
});
