/**
 * The supervisor through the real server: `/ctrlx-novnc/websockify?target=<id>` picks a configured
 * target (404/503 as real HTTP answers before the upgrade), configuration changes close only the
 * sessions whose target changed (4000 "target changed"), the status lists sessions with their
 * bytes, and a relay that cannot be created fails the start.
 */
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  API,
  PREFIX,
  client,
  closedPort,
  config,
  openSession,
  openSessionTo,
  refusedUpgrade,
  startTestApp,
  target,
  vncServer,
  waitFor,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { FAILURES } from '../../src/common/failures.js';

const servers: Record<string, FakeServer> = {};
before(async () => {
  for (const tag of ['A', 'B', 'C']) servers[tag] = await vncServer(tag);
});
after(async () => {
  for (const s of Object.values(servers)) await s.close();
});

describe('routing upgrades', () => {
  let t: TestApp;
  afterEach(() => t?.close());

  it('answers 503 with a clear reason before the upgrade when no target is configured', async () => {
    t = await startTestApp();
    const r = await refusedUpgrade(t.port, '');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'No VNC target is configured yet: add one on the settings page.\n');
    assert.equal((await refusedUpgrade(t.port, '?target=a')).status, 503);
    // The preflight names the failure kind, for the viewer to choose its message by.
    const preflight = JSON.parse((await client(t.port).get(`${PREFIX}/websockify`)).text);
    assert.deepEqual([preflight.status, preflight.kind, preflight.code], [503, 'no-target', FAILURES['no-target'].code]);
  });

  it('answers 404 for an unknown id and connects known ids; no parameter means the first target', async () => {
    t = await startTestApp({ initial: config(target('a', servers.A!.port), target('b', servers.B!.port)) });
    const unknown = await refusedUpgrade(t.port, '?target=nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, 'Unknown VNC target "nope".\n');
    const preflight = JSON.parse((await client(t.port).get(`${PREFIX}/websockify?target=nope`)).text);
    assert.deepEqual([preflight.status, preflight.kind, preflight.code], [404, 'unknown-target', FAILURES['unknown-target'].code]);
    // Ids are matched exactly; a long id is cut in the message.
    assert.equal((await refusedUpgrade(t.port, '?target=A')).status, 404);
    assert.equal((await refusedUpgrade(t.port, `?target=${'x'.repeat(500)}`)).body, `Unknown VNC target "${'x'.repeat(64)}".\n`);

    const sessions = [
      await openSessionTo(t.port, undefined, 'A'),
      await openSessionTo(t.port, '', 'A'),
      await openSessionTo(t.port, 'a', 'A'),
      await openSessionTo(t.port, 'b', 'B'),
    ];
    for (const s of sessions) s.ws.close();
  });

  it('refuses other paths with 404 and foreign origins with 403, before the upgrade', async () => {
    t = await startTestApp({ initial: config(target('a', servers.A!.port)) });
    const other = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${t.port}${PREFIX}/elsewhere`);
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('error', () => {});
    });
    assert.equal(other, 404);
    const foreign = await refusedUpgrade(t.port, '', { Origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    // The page's own origin is fine; so is no Origin at all (not a browser).
    const own = await openSessionTo(t.port, undefined, 'A');
    own.ws.close();
    const same = await openSession(t.port, 'a', { Origin: t.origin });
    same.ws.close();
  });

  it('uses the fallback (demo) target while none is configured, and drops it once one is', async () => {
    t = await startTestApp({ fallbackTarget: target('demo', servers.C!.port, '127.0.0.1', 'Demo') });
    const http = client(t.port);
    const status = await http.status();
    assert.deepEqual(status.relay.targets, [{ id: 'demo', name: 'Demo', target: `127.0.0.1:${servers.C!.port}`, demo: true, passwordSet: false, idleMinutes: null, control: null, auth: null, lockout: null, reach: null }]);
    const demo = await openSessionTo(t.port, undefined, 'C');
    assert.equal((await http.put(`${API}/config`, config(target('a', servers.A!.port)))).status, 200);
    assert.deepEqual(await demo.closed, { code: 4000, reason: 'target changed' });
    assert.equal((await http.status()).relay.targets[0]?.demo, false);
    const real = await openSessionTo(t.port, undefined, 'A');
    real.ws.close();
  });
});

describe('configuration changes', () => {
  let t: TestApp;
  after(() => t?.close());

  it('closes sessions to changed or removed targets with 4000 "target changed" and keeps the others', async () => {
    t = await startTestApp({
      initial: config(target('a', servers.A!.port), target('b', servers.B!.port), target('c', servers.C!.port)),
    });
    const http = client(t.port);
    const a = await openSessionTo(t.port, 'a', 'A');
    const b = await openSessionTo(t.port, 'b', 'B');
    const c = await openSessionTo(t.port, 'c', 'C');
    const b2 = await openSessionTo(t.port, 'b', 'B');

    // a: renamed only (kept); b: moved to C's server (closed); c: removed (closed).
    const next = config(target('a', servers.A!.port, '127.0.0.1', 'Renamed A'), target('b', servers.C!.port));
    assert.equal((await http.put(`${API}/config`, next)).status, 200);
    assert.deepEqual(await b.closed, { code: 4000, reason: 'target changed' });
    assert.deepEqual(await b2.closed, { code: 4000, reason: 'target changed' });
    assert.deepEqual(await c.closed, { code: 4000, reason: 'target changed' });
    assert.equal(a.ws.readyState, a.ws.OPEN);
    a.ws.send(Buffer.from('still here'));
    await waitFor('the echo on the kept session', () => a.received().endsWith('still here'));

    // New sessions use the new values.
    const nb = await openSessionTo(t.port, 'b', 'C');
    assert.equal((await refusedUpgrade(t.port, '?target=c')).status, 404);

    // Moving a target to the same address under another id closes its sessions too.
    assert.equal((await http.put(`${API}/config`, config(target('z', servers.A!.port), target('b', servers.C!.port)))).status, 200);
    assert.deepEqual(await a.closed, { code: 4000, reason: 'target changed' });
    assert.equal(nb.ws.readyState, nb.ws.OPEN);

    // Removing everything: existing sessions close, new ones get 503.
    assert.equal((await http.put(`${API}/config`, config())).status, 200);
    assert.deepEqual(await nb.closed, { code: 4000, reason: 'target changed' });
    assert.equal((await refusedUpgrade(t.port, '')).status, 503);
  });
});

describe('status', () => {
  let t: TestApp;
  after(() => t?.close());

  it('lists open sessions with target, start time and bytes, and keeps totals', async () => {
    t = await startTestApp({ initial: config(target('a', servers.A!.port), target('b', servers.B!.port)) });
    const http = client(t.port);
    const startedBefore = Date.now();
    const a = await openSessionTo(t.port, 'a', 'A');
    const b = await openSessionTo(t.port, 'b', 'B');
    a.ws.send(Buffer.from('0123456789'));
    await waitFor('the echo', () => a.received().endsWith('0123456789'));

    const status = await http.status();
    assert.equal(status.relay.state, 'running');
    assert.equal(status.relay.sessions.length, 2);
    const sa = status.relay.sessions.find((s) => s.targetId === 'a')!;
    assert.equal(sa.target, `127.0.0.1:${servers.A!.port}`);
    assert.match(sa.peer, /^127\.0\.0\.1:\d+$/);
    assert.ok(Date.parse(sa.startedAt) >= startedBefore - 1000 && Date.parse(sa.startedAt) <= Date.now());
    assert.equal(sa.bytesUp, 10);
    assert.equal(sa.bytesDown, 'RFB 003.008\nA'.length + 10);
    const sb = status.relay.sessions.find((s) => s.targetId === 'b')!;
    assert.equal(sb.bytesUp, 0);
    assert.equal(sb.bytesDown, 'RFB 003.008\nB'.length);
    assert.equal(status.relay.totals.sessionsOpen, 2);
    assert.equal(status.relay.totals.sessionsTotal, 2);

    a.ws.close(1000);
    assert.equal((await a.closed).code, 1000);
    await waitFor('the closed session gone from the status', async () => (await http.status()).relay.sessions.length === 1);
    const later = await http.status();
    assert.equal(later.relay.totals.sessionsOpen, 1);
    assert.equal(later.relay.totals.sessionsTotal, 2);
    assert.equal(later.relay.totals.bytesUp, 10);

    // The page shows the same.
    const page = await http.get(`${PREFIX}/config/`);
    assert.match(page.text, /<dd data-field="sessions">1<\/dd>/);
    assert.match(page.text, new RegExp(`<td>b \\(127\\.0\\.0\\.1:${servers.B!.port}\\)</td>`));
    b.ws.close();
  });
});

describe('a relay that cannot be created', () => {
  it('fails start() with the error, for the process to exit (snapd restarts it), and serves nothing', () => {
    const supervisor = new Supervisor({
      createRelay: () => {
        throw new RangeError('relay option maxPayload must be a positive number');
      },
    });
    assert.throws(() => supervisor.start(config(target('a', servers.A!.port))), /maxPayload must be a positive number/);
    assert.equal(supervisor.status().state, 'stopped');
    const refused = supervisor.admit('a');
    assert.ok('kind' in refused && refused.kind === 'relay-stopped' && refused.status === 503, JSON.stringify(refused));
  });
});

describe('relay to a target that is down', () => {
  let t: TestApp;
  after(() => t?.close());

  it('accepts the upgrade and closes the session with a reason, without touching the supervisor state', async () => {
    const dead = await closedPort();
    t = await startTestApp({ initial: config(target('off', dead)) });
    const s = await openSession(t.port, 'off');
    const end = await s.closed;
    assert.notEqual(end.code, 4000);
    assert.match(end.reason, /ECONNREFUSED|refused/i);
    const st = (await client(t.port).status()).relay;
    assert.equal(st.state, 'running');
  });
});
