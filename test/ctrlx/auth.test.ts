import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { WebSocket } from 'ws';
import { createLogger } from '../../src/log.js';
import { LOCAL_IDENTITY, SCOPE_ADMIN, SCOPE_MANAGE, SCOPE_OPERATE, SCOPE_VIEW, roleAtLeast, roleOf } from '../../src/ctrlx/auth.js';
import { API, PREFIX, RELAY, assertProblem, client, config, csrfToken, startTestApp, target, vncServer, type FakeServer, type TestApp } from '../helpers/app.js';
import { runCli } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';

const bearer = (token: string): { headers: Record<string, string> } => ({ headers: { Authorization: `Bearer ${token}` } });

/** Opens the relay WebSocket with `protocols`; resolves with the HTTP status (101 when upgraded). */
function upgrade(port: number, protocols: string[], headers: Record<string, string> = {}, query = ''): Promise<{ status: number; protocol: string; body: string; greeting: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${RELAY}${query}`, protocols, { headers, perMessageDeflate: false });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, protocol: '', body, greeting: '' }));
    });
    ws.on('message', (data: Buffer) => {
      resolve({ status: 101, protocol: ws.protocol, body: '', greeting: data.toString('latin1') });
      ws.close();
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('Authentication (ctrlX bearer tokens, fake identity manager)', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  const logs: string[] = [];
  const viewer = makeToken('operator', [SCOPE_VIEW]);
  const operator = makeToken('shiftlead', [SCOPE_OPERATE]);
  const manager = makeToken('engineer', [SCOPE_MANAGE]);
  const admin = makeToken('admin', [SCOPE_ADMIN]);
  const other = makeToken('someone', ['rexroth-solutions.web.all.r']);
  const forged = makeToken('mallory', [SCOPE_ADMIN]);
  const expired = makeToken('engineer', [SCOPE_MANAGE], -3600);

  before(async () => {
    idm = await startFakeIdm();
    for (const t of [viewer, operator, manager, admin, other, expired]) idm.valid.add(t);
    vnc = await vncServer('auth');
    app = await startTestApp({
      initial: config(target('hmi', vnc.port)),
      auth: { validityUrl: idm.url, cacheSeconds: 60 },
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
    http = client(app.port);
  });
  after(async () => {
    await app.close();
    await vnc.close();
    await idm.close();
  });

  it('answers an API call without a token with 401 Problem JSON and WWW-Authenticate', async () => {
    const res = await http.get(`${API}/status`);
    assertProblem(res, 401, { detail: /ctrlX login is required/ });
    assert.match(String(res.headers['www-authenticate']), /^Bearer/);
  });

  it('shows a login page (401) for a page opened without a token', async () => {
    const res = await http.get(`${PREFIX}/viewer/`);
    assert.equal(res.status, 401);
    assert.match(res.text, /Open <strong>Remote screen<\/strong> from the ctrlX sidebar/);
    assert.match(res.text, /static\/login-[0-9a-f]{10}\.js/);
  });

  it('lets the view scope open the viewer and the status, but not the settings', async () => {
    assert.equal((await http.get(`${PREFIX}/viewer/?token=${viewer}`)).status, 200);
    assert.equal((await http.get(`${API}/status`, bearer(viewer))).status, 200);
    const page = await http.get(`${PREFIX}/config/?token=${viewer}`);
    assert.equal(page.status, 403);
    assert.match(page.text, /may not change the remote screen settings/);
    assertProblem(await http.put(`${API}/config`, { targets: [] }, bearer(viewer)), 403, { detail: new RegExp(SCOPE_MANAGE.replace(/\./g, '\\.')) });
    assertProblem(await http.post(`${API}/save`, { phase: 'save', id: 'x' }, bearer(viewer)), 403);
    assertProblem(await http.get(`${API}/config`, bearer(viewer)), 403);
    assertProblem(await http.get(`${API}/config`), 401);
  });

  it('lets the manage scope and the admin scope change the configuration and run the callbacks', async () => {
    for (const token of [manager, admin]) {
      const put = await http.put(`${API}/config`, config(target('hmi', vnc.port)), bearer(token));
      assert.equal(put.status, 200, put.text);
      assert.equal((await http.post(`${API}/save`, { phase: 'save', id: 'op1' }, bearer(token))).status, 204);
      assert.equal((await http.post(`${API}/load`, { phase: 'query', id: 'op2' }, bearer(token))).status, 204);
      assert.equal((await http.post(`${API}/load`, { phase: 'abort', id: 'op2' }, bearer(token))).status, 204);
    }
  });

  it('lets the operate scope open the viewer and the status, but not the settings', async () => {
    assert.equal((await http.get(`${PREFIX}/viewer/?token=${operator}`)).status, 200);
    assert.equal((await http.get(`${API}/status`, bearer(operator))).status, 200);
    const page = await http.get(`${PREFIX}/config/?token=${operator}`);
    assert.equal(page.status, 403);
    assertProblem(await http.put(`${API}/config`, { targets: [] }, bearer(operator)), 403, { detail: new RegExp(SCOPE_MANAGE.replace(/\./g, '\\.')) });
  });

  it('refuses a token without any of the app scopes with 403', async () => {
    assertProblem(await http.get(`${API}/status`, bearer(other)), 403, { detail: /may not view the remote screen/ });
  });

  it('refuses an expired token locally, without asking the identity manager', async () => {
    const before = idm.requests.length;
    assertProblem(await http.get(`${API}/status`, bearer(expired)), 401, { detail: /expired/ });
    assert.equal(idm.requests.length, before);
  });

  it('refuses a token the identity manager does not confirm (forged signature)', async () => {
    assertProblem(await http.get(`${API}/status`, bearer(forged)), 401, { detail: /not valid/ });
    assert.ok(idm.requests.includes(forged));
  });

  it('refuses garbage in the Authorization header', async () => {
    assertProblem(await http.get(`${API}/status`, bearer('not-a-jwt')), 401, { detail: /malformed/ });
  });

  it('asks the identity manager once per token within the cache time', async () => {
    const fresh = makeToken('cached', [SCOPE_VIEW]);
    idm.valid.add(fresh);
    for (let i = 0; i < 3; i++) assert.equal((await http.get(`${API}/status`, bearer(fresh))).status, 200);
    assert.equal(idm.requests.filter((t) => t === fresh).length, 1);
  });

  it('accepts the settings form with the token in its hidden field (no JavaScript)', async () => {
    const page = await http.get(`${PREFIX}/config/?access_token=${manager}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /name="_token"/);
    const res = await http.form(`${PREFIX}/config/`, [
      ['_csrf', csrfToken(page.text)],
      ['_token', manager],
      ['id', 'hmi'],
      ['name', 'Press HMI'],
      ['host', '127.0.0.1'],
      ['port', String(vnc.port)],
      ['action', 'save'],
    ]);
    assert.equal(res.status, 303, res.text);
    const missing = await http.form(`${PREFIX}/config/`, [['_csrf', csrfToken(page.text)], ['action', 'save']]);
    assert.equal(missing.status, 401);
  });

  it('refuses a relay upgrade without a token with 401 before the upgrade', async () => {
    const res = await upgrade(app.port, ['binary']);
    assert.equal(res.status, 401);
    assert.match(res.body, /ctrlX login is required/);
  });

  it('relays with the token in a subprotocol and echoes binary, never the token', async () => {
    const res = await upgrade(app.port, ['binary', `ctrlx-novnc.bearer.${viewer}`]);
    assert.equal(res.status, 101);
    assert.equal(res.protocol, 'binary');
    assert.match(res.greeting, /^RFB 003\.008\n/);
  });

  it('refuses a cross-origin upgrade even with a valid token', async () => {
    const res = await upgrade(app.port, ['binary', `ctrlx-novnc.bearer.${viewer}`], { Origin: 'http://evil.example' });
    assert.equal(res.status, 403);
  });

  it('refuses an upgrade whose token lacks the scopes with 403', async () => {
    const res = await upgrade(app.port, ['binary', `ctrlx-novnc.bearer.${other}`]);
    assert.equal(res.status, 403);
  });

  it('never writes a token into the log', () => {
    assert.ok(logs.length > 0);
    for (const token of [viewer, manager, admin, other, forged, expired]) {
      assert.ok(!logs.some((line) => line.includes(token)), 'a token appeared in the log');
    }
  });

  it('answers 503 while the identity manager cannot be reached', async () => {
    const down = await startFakeIdm();
    const url = down.url;
    await down.close();
    const app2 = await startTestApp({ auth: { validityUrl: url, timeout: 1000 } });
    try {
      const res = await client(app2.port).get(`${API}/status`, bearer(viewer));
      assertProblem(res, 503, { detail: /identity manager cannot be reached/ });
    } finally {
      await app2.close();
    }
  });
});

describe('roles from scopes', () => {
  it('maps each scope to its role, the highest wins, order watch < operate < manage', () => {
    assert.equal(roleOf([SCOPE_VIEW]), 'watch');
    assert.equal(roleOf([SCOPE_OPERATE]), 'operate');
    assert.equal(roleOf([SCOPE_MANAGE]), 'manage');
    assert.equal(roleOf([SCOPE_ADMIN]), 'manage');
    assert.equal(roleOf([SCOPE_VIEW, SCOPE_OPERATE]), 'operate');
    assert.equal(roleOf(['rexroth-solutions.web.all.r', 'ctrlx-novnc.web.screens.r']), null);
    assert.equal(SCOPE_OPERATE, 'ctrlx-novnc.web.screens.rw');
    assert.ok(roleAtLeast('manage', 'operate') && roleAtLeast('operate', 'watch') && roleAtLeast('watch', 'watch'));
    assert.ok(!roleAtLeast('watch', 'operate') && !roleAtLeast('operate', 'manage'));
    assert.deepEqual({ ...LOCAL_IDENTITY }, { name: 'local', role: 'manage' });
  });
});

describe('an identity manager that breaks off mid-answer', () => {
  const viewer = makeToken('operator', [SCOPE_VIEW]);
  /** A TCP server that answers every HTTP request with `reply` and then does `then` with the socket. */
  async function brokenIdm(reply: string, then: 'close' | 'stall'): Promise<{ url: string; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(reply);
        if (then === 'close') socket.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/identity-manager/api/v2/auth/token/validity`,
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    };
  }

  for (const [what, reply, then] of [
    ['closes the connection in the middle of the body', 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"val', 'close'],
    ['sends the headers, then nothing', 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"val', 'stall'],
    ['sends half a status line, then nothing', 'HTTP/1.1 2', 'stall'],
  ] as const) {
    it(`answers 503 when it ${what}, and keeps answering (no login check left hanging)`, async () => {
      const idm = await brokenIdm(reply, then);
      // The failed-login limit of 2: were hanging checks holding their places, the third request would wait for ever.
      const app = await startTestApp({ auth: { validityUrl: idm.url, timeout: 500 }, rateLimits: { failedLogins: { limit: 2 } } });
      try {
        const http = client(app.port);
        const answers = await Promise.all(Array.from({ length: 4 }, () => http.get(`${API}/status`, bearer(viewer))));
        for (const res of answers) assertProblem(res, 503, { detail: /identity manager cannot be reached/ });
        assertProblem(await http.get(`${API}/status`, bearer(viewer)), 503);
      } finally {
        await app.close();
        await idm.close();
      }
    });
  }
});

describe('CLI authentication choices', () => {
  it('refuses to serve a non-loopback address without an explicit --auth', async () => {
    const res = await runCli(['serve', '--listen', '0.0.0.0:0', '--data', '/nonexistent-ctrlx-novnc']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /without authentication: use --auth ctrlx/);
  });

  it('rejects an unknown --auth mode and a bad --idm-url', async () => {
    const a = await runCli(['serve', '--auth', 'maybe']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /--auth: "maybe" must be ctrlx or off/);
    const b = await runCli(['serve', '--auth', 'ctrlx', '--idm-url', 'ftp://x']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--idm-url/);
  });
});
