/**
 * What the app lets slip, checked from outside (issue 12, item 9): raw control characters from an
 * unverified login in the log (a real `serve` child with ctrlX authentication and a fake identity
 * manager), caching of pages and API answers, a bearer token echoed as the WebSocket subprotocol,
 * addresses in the status for users who may only view, and the WebSocket versions accepted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API, PREFIX, client, config, makeTempDir, openSession, removeDir, request, startTestApp, staticPath, target, vncServer, type FakeServer, type HttpResponse, type TestApp } from '../helpers/app.js';
import { spawnServe, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { waitFor } from '../helpers/wait.js';
import { handshake, rawRequest } from '../helpers/ws-client.js';
import { BEARER_PROTOCOL_PREFIX, SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';

/** True when `line` holds a control character raw (C0, DEL, C1, U+2028, U+2029). */
function hasRawControl(line: string): boolean {
  return [...line].some((c) => {
    const n = c.codePointAt(0)!;
    return n < 0x20 || (n >= 0x7f && n <= 0x9f) || n === 0x2028 || n === 0x2029;
  });
}

describe('log lines from an unauthenticated login (serve child, ctrlX authentication)', () => {
  let idm: FakeIdm;
  let root: string;
  let p: ServeProcess | undefined;

  before(async () => {
    idm = await startFakeIdm();
    root = await makeTempDir('exposure');
  });
  after(async () => {
    await p?.stop('SIGKILL');
    await idm.close();
    await removeDir(root);
  });

  it('a JWT whose name holds ESC sequences and line breaks writes no raw control character to the log', async () => {
    p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, '--auth', 'ctrlx', '--idm-url', idm.url]);
    // Not signed by anyone the identity manager knows: it answers valid=false, and the app logs the
    // rejected user name taken from the token it could not trust.
    const name = '\x1b[2J\x1b[31mroot\x1b[0m\r\n2026-01-01T00:00:00.000Z info  web: forged line\x07\u2028\x9b';
    // And one without spaces: a value that needs no quotes must not pass raw either.
    for (const n of ['\x1b[31mroot\x1b[0m', name]) {
      const res = await request(p.port!, 'GET', `${API}/status`, { headers: { Authorization: `Bearer ${makeToken(n, [SCOPE_VIEW])}` } });
      assert.equal(res.status, 401);
    }
    const rejections = (): string[] => p!.stderr.filter((l) => l.includes('token rejected by the identity manager'));
    await waitFor('both rejections to be logged', () => rejections().length === 2);
    assert.match(rejections()[0]!, /user="\\x1b\[31mroot\\x1b\[0m"$/);
    assert.match(rejections()[1]!, /user="\\x1b\[2J\\x1b\[31mroot\\x1b\[0m\\x0d\\x0a2026-01-01T00:00:00\.000Z info {2}web: forged line\\x07\\u2028\\x9b"$/);
    const all = [...p.stdout, ...p.stderr];
    for (const line of all) assert.ok(!hasRawControl(line), JSON.stringify(line));
    assert.ok(!all.some((l) => /^2026-01-01T00:00:00\.000Z info {2}web: forged line/.test(l)), 'no line was forged');
    recordReliability({
      table: 'inputs',
      name: 'control characters in a logged login name',
      tried: 'an unverified ctrlX token whose name claim holds ESC sequences (clear screen, colours), CR LF with a forged log line, BEL, U+2028 and a C1 CSI, sent to api/v1/status of a serve child with ctrlX authentication (fake identity manager answers valid=false)',
      outcome: 'answered 401; the log line names the user with every control character escaped (\\x1b, \\x0d\\x0a, \\u2028, \\x9b); no raw control character and no forged line in stdout or stderr',
    });
  });
});

describe('with ctrlX authentication (in-process app, fake identity manager)', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  const viewer = makeToken('operator', [SCOPE_VIEW]);
  const manager = makeToken('engineer', [SCOPE_MANAGE]);
  const bearer = (token: string): { headers: Record<string, string> } => ({ headers: { Authorization: `Bearer ${token}` } });

  before(async () => {
    idm = await startFakeIdm();
    idm.valid.add(viewer);
    idm.valid.add(manager);
    vnc = await vncServer('X');
    app = await startTestApp({ initial: config(target('hmi', vnc.port, '127.0.0.1', 'Press line')), auth: { validityUrl: idm.url } });
    http = client(app.port);
  });
  after(async () => {
    await app?.close();
    await vnc?.close();
    await idm?.close();
  });

  describe('caching', () => {
    const noStore: [string, number, () => Promise<HttpResponse>][] = [
      ['viewer page with ?token=', 200, () => http.get(`${PREFIX}/viewer/?token=${viewer}`)],
      ['settings page with ?token=', 200, () => http.get(`${PREFIX}/config/?token=${manager}`)],
      ['redirect carrying ?token=', 302, () => http.get(`${PREFIX}/?token=${viewer}`)],
      ['login page', 401, () => http.get(`${PREFIX}/viewer/`)],
      ['refused page', 403, () => http.get(`${PREFIX}/config/?token=${viewer}`)],
      ['API status', 200, () => http.get(`${API}/status`, bearer(viewer))],
      ['API configuration', 200, () => http.get(`${API}/config`, bearer(manager))],
      ['API status as HTML', 200, () => http.get(`${API}/status`, { headers: { ...bearer(manager).headers, Accept: 'text/html' } })],
      ['API 401', 401, () => http.get(`${API}/status`)],
      ['relay preflight', 426, () => http.get(`${PREFIX}/websockify?target=hmi`, bearer(viewer))],
      ['unknown page', 404, () => http.get(`${PREFIX}/nothing`)],
    ];
    for (const [what, status, send] of noStore) {
      it(`${what} (${status}): Cache-Control no-store`, async () => {
        const res = await send();
        assert.equal(res.status, status, res.text.slice(0, 200));
        assert.equal(res.headers['cache-control'], 'no-store', what);
      });
    }

    it('static files keep their own caching (hashed names, immutable)', async () => {
      for (const file of [staticPath('viewer.js'), staticPath('config.js'), staticPath('style.css')]) {
        const res = await http.get(file);
        assert.equal(res.status, 200, file);
        assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', file);
      }
      recordReliability({
        table: 'inputs',
        name: 'caching of pages and answers that carry a login',
        tried: '11 kinds of answer with ctrlX authentication on: viewer and settings pages opened with ?token=, the redirect carrying it, login and refusal pages, API status (JSON and HTML), configuration, 401, relay preflight, 404; and 3 static files (content-hashed bundles)',
        outcome: 'every page and API answer says Cache-Control: no-store; the content-hashed static bundles (scripts with noVNC and the shared modules, styles) are immutable',
      });
    });
  });

  describe('the subprotocol that carries the login', () => {
    const cases: [string, (bearer: string) => string, string | undefined][] = [
      ['binary and the bearer', (b) => `binary, ${b}`, 'binary'],
      ['the bearer first, then binary', (b) => `${b}, binary`, 'binary'],
      ['the bearer alone', (b) => b, undefined],
      ['the bearer and another', (b) => `${b}, chat`, undefined],
    ];
    for (const [what, offer, chosen] of cases) {
      it(`offered ${what}: the upgrade (101) echoes ${chosen ?? 'no subprotocol'}, never the token`, async () => {
        const protocol = `${BEARER_PROTOCOL_PREFIX}${viewer}`;
        const { socket, response } = await rawRequest(app.port, handshake({ 'Sec-WebSocket-Protocol': offer(protocol) }, `${PREFIX}/websockify?target=hmi`));
        socket.destroy();
        assert.equal(response.status, 101, response.statusLine);
        assert.equal(response.headers['sec-websocket-protocol'], chosen);
        assert.ok(!JSON.stringify(response.headers).includes(viewer.split('.')[2]!), 'the token is not in the answer');
      });
    }
    it('records the row', () => {
      recordReliability({
        table: 'inputs',
        name: 'bearer token offered as a WebSocket subprotocol',
        tried: 'relay upgrades with ctrlX authentication offering "binary, ctrlx-novnc.bearer.<jwt>", the bearer first, the bearer alone, and the bearer with another subprotocol (raw sockets)',
        outcome: 'all upgraded (101); the answer echoes binary when offered and no subprotocol otherwise; the token never appears in the response headers',
      });
    });
  });

  describe('WebSocket versions (as the README says: 13 and 8)', () => {
    const versions: [string, number][] = [
      ['13', 101],
      ['8', 101],
      ['7', 400],
      ['12', 400],
    ];
    for (const [version, status] of versions) {
      it(`Sec-WebSocket-Version ${version}: ${status}`, async () => {
        const headers = { 'Sec-WebSocket-Version': version, 'Sec-WebSocket-Protocol': `binary, ${BEARER_PROTOCOL_PREFIX}${viewer}` };
        const { socket, response, ended } = await rawRequest(app.port, handshake(headers, `${PREFIX}/websockify?target=hmi`));
        if (status === 101) socket.destroy();
        else await ended;
        assert.equal(response.status, status, response.statusLine);
        if (status === 400) assert.equal(response.headers['sec-websocket-version'], '13, 8');
      });
    }
    it('records the row', () => {
      recordReliability({
        table: 'inputs',
        name: 'WebSocket versions of a relay upgrade',
        tried: 'authenticated relay upgrades with Sec-WebSocket-Version 13, 8, 7 and 12 (raw sockets)',
        outcome: '13 and 8 upgraded (101); 7 and 12 answered HTTP 400 with Sec-WebSocket-Version: 13, 8, as the README says',
      });
    });
  });

  describe('the status by role', () => {
    /** What must not reach a user who may only view: addresses, ports, paths, viewers' addresses. */
    const secrets = (): string[] => ['127.0.0.1', String(vnc.port), app.root, 'activeConfiguration', 'solutions/'];

    it('a view-only user sees target names and ids, no addresses, ports, paths or viewers (JSON, HTML partial, viewer page)', async () => {
      const other = await openSession(app.port, 'hmi', { Authorization: `Bearer ${manager}` });
      try {
        await waitFor('the session to show', async () => (await http.get(`${API}/status`, bearer(manager))).json<{ relay: { sessions: unknown[] } }>().relay.sessions.length === 1);
        const json = await http.get(`${API}/status`, bearer(viewer));
        const html = await http.get(`${API}/status`, { headers: { ...bearer(viewer).headers, Accept: 'text/html' } });
        const page = await http.get(`${PREFIX}/viewer/?token=${viewer}`);
        for (const [what, res] of [['JSON', json], ['HTML', html], ['viewer page', page]] as const) {
          assert.equal(res.status, 200, what);
          for (const secret of secrets()) assert.ok(!res.text.includes(secret), `${what} shows ${secret}: ${res.text.slice(0, 2000)}`);
        }
        const body = json.json<{ relay: { targets: { id: string; name: string }[]; sessions: { targetId: string }[]; totals: { sessionsOpen: number } } }>();
        assert.deepEqual(body.relay.targets.map((t) => [t.id, t.name]), [['hmi', 'Press line']]);
        assert.deepEqual(body.relay.sessions.map((s) => s.targetId), ['hmi']);
        assert.equal(body.relay.totals.sessionsOpen, 1);
        assert.match(html.text, /Press line/);
        assert.ok(!/<th>Viewer<\/th>/.test(html.text), 'no viewer column');
        assert.match(page.text, /<option value="hmi" data-idle-minutes="" data-control="on-request">Press line<\/option>/);
        assert.ok(!page.text.includes('data-address'), 'no data-address on the viewer page');

        // A manager keeps the full detail.
        const full = await http.get(`${API}/status`, bearer(manager));
        const fullHtml = await http.get(`${API}/status`, { headers: { ...bearer(manager).headers, Accept: 'text/html' } });
        const fullPage = await http.get(`${PREFIX}/viewer/?token=${manager}`);
        const f = full.json<{ config: { file: string }; relay: { targets: { target: string }[]; sessions: { peer: string; target: string }[] } }>();
        assert.equal(f.relay.targets[0]!.target, `127.0.0.1:${vnc.port}`);
        assert.match(f.relay.sessions[0]!.peer, /^127\.0\.0\.1:\d+$/);
        assert.ok(f.config.file.startsWith(app.root), f.config.file);
        assert.ok(fullHtml.text.includes(`(127.0.0.1:${vnc.port})`) && /<th>Viewer<\/th>/.test(fullHtml.text), fullHtml.text);
        assert.ok(fullPage.text.includes(`data-address="127.0.0.1:${vnc.port}"`));
      } finally {
        const closed = other.closed;
        other.ws.close();
        await closed;
      }
      recordReliability({
        table: 'inputs',
        name: 'status detail for view-only users',
        tried: 'api/v1/status (JSON and the HTML partial) and the viewer page requested with a view-scope token and with a manage-scope token while another viewer has a session open (fake identity manager)',
        outcome: 'the view-only user sees target names, ids and counters, and no host, port, file path or viewer address (no data-address on the page); the manager sees all of them',
      });
    });
  });
});
