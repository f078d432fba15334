/**
 * The supervisor through the real server: `/ctrlx-novnc/websockify?target=<id>` picks a configured
 * target (404/503 as real HTTP answers before the upgrade), configuration changes close only the
 * sessions whose target changed (4000 "target changed"), the status lists sessions with their
 * bytes, and a failing relay is restarted with backoff while the status reports it.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import path from 'node:path';
import { WebSocket } from 'ws';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  API,
  PREFIX,
  client,
  closedPort,
  config,
  makeTempDir,
  openSession,
  openSessionTo,
  refusedUpgrade,
  removeDir,
  startTestApp,
  target,
  vncServer,
  waitFor,
  writeConfigFile,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';
import { ConfigStore } from '../../src/config/store.js';
import { ActiveConfiguration } from '../../src/ctrlx/active-configuration.js';
import { Relay, type RelayOptions } from '../../src/relay/relay-server.js';
import { Supervisor, type SupervisorOptions } from '../../src/supervisor/supervisor.js';
import { createWebApp } from '../../src/web/app.js';
import { createServer, listen } from '../../src/web/server.js';
import { CsrfTokens } from '../../src/web/security.js';
import { silentLogger } from '../../src/log.js';

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
  });

  it('answers 404 for an unknown id and connects known ids; no parameter means the first target', async () => {
    t = await startTestApp({ initial: config(target('a', servers.A!.port), target('b', servers.B!.port)) });
    const unknown = await refusedUpgrade(t.port, '?target=nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, 'Unknown VNC target "nope".\n');
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
    assert.deepEqual(status.relay.targets, [{ id: 'demo', name: 'Demo', target: `127.0.0.1:${servers.C!.port}`, demo: true, passwordSet: false, auth: null }]);
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

/** The app wired by hand so the supervisor's options (createRelay, backoff) can be set. */
async function startWithSupervisor(options: SupervisorOptions, initial = config(target('a', servers.A!.port))) {
  const root = await makeTempDir('sup');
  const solutionsDir = path.join(root, 'solutions');
  writeConfigFile(path.join(solutionsDir, 'activeConfiguration', 'ctrlx-novnc', 'config.json'), initial);
  const store = new ConfigStore({ solutionsDir, pollInterval: 50 });
  await store.start();
  const supervisor = new Supervisor(options);
  supervisor.start(store.config);
  store.on('change', (c) => supervisor.apply(c));
  const activeConfiguration = new ActiveConfiguration({ store });
  const status = () => ({
    version: 'test',
    startedAt: new Date().toISOString(),
    config: { ...store.status(), loading: activeConfiguration.loading },
    relay: supervisor.status(),
  });
  const app = createWebApp({ store, supervisor, activeConfiguration, csrf: new CsrfTokens(), status, probeTimeout: 500, logger: silentLogger });
  const server = createServer({ app, supervisor });
  await listen(server, { host: '127.0.0.1', port: 0 });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    supervisor,
    close: async () => {
      server.close();
      store.stop();
      await supervisor.stop();
      server.closeAllConnections();
      await removeDir(root);
    },
  };
}

describe('restarting a failed relay', () => {
  it('retries the relay creation with backoff and reports state, restarts and lastError', async () => {
    let attempts = 0;
    const createRelay = (o: RelayOptions): Relay => {
      attempts++;
      if (attempts <= 3) throw new Error(`cannot create relay #${attempts}`);
      return new Relay(o);
    };
    const s = await startWithSupervisor({ createRelay, initialBackoff: 40, maxBackoff: 10_000 });
    try {
      const http = client(s.port);
      const first = (await http.status()).relay;
      assert.equal(first.state, 'restarting');
      assert.equal(first.lastError?.message, 'cannot create relay #1');
      assert.equal(first.restarts, 0);
      assert.equal(typeof first.retryIn, 'number');

      // While restarting, upgrades get 503 with Retry-After.
      const refused = await refusedUpgrade(s.port, '');
      assert.equal(refused.status, 503);
      assert.match(String(refused.headers['retry-after']), /^\d+$/);
      assert.match(refused.body, /^The relay is restarting; try again in \d+ s\.\n$/);

      await waitFor('the relay running', async () => (await http.status()).relay.state === 'running');
      const running = (await http.status()).relay;
      assert.equal(running.restarts, 3);
      assert.equal(attempts, 4);
      assert.equal(running.lastError?.message, 'cannot create relay #3', 'the last error stays visible');
      assert.equal(running.retryIn, null);
      const session = await openSessionTo(s.port, undefined, 'A');
      session.ws.close();

      const page = await http.get(`${PREFIX}/config/`);
      assert.match(page.text, /<dd data-field="restarts">3<\/dd>/);
      assert.match(page.text, /cannot create relay #3/);
    } finally {
      await s.close();
    }
  });

  it('doubles the delay per failure and reports "failed" once it reaches the cap', async () => {
    let failing = true;
    const starts: number[] = [];
    const createRelay = (o: RelayOptions): Relay => {
      starts.push(Date.now());
      if (failing) throw new Error('relay broken');
      return new Relay(o);
    };
    const s = await startWithSupervisor({ createRelay, initialBackoff: 10, maxBackoff: 80 });
    try {
      const http = client(s.port);
      await waitFor('state failed', async () => (await http.status()).relay.state === 'failed');
      const st = (await http.status()).relay;
      assert.ok(st.restarts >= 3, `restarts ${st.restarts}`);
      assert.equal(st.lastError?.message, 'relay broken');
      // Each delay at least as long as the backoff asked for: 10, 20, 40, 80, 80, ...
      const gaps = starts.slice(1).map((at, i) => at - starts[i]!);
      for (const [i, gap] of gaps.entries()) assert.ok(gap >= Math.min(10 * 2 ** i, 80) - 2, `gap ${i} was ${gap} ms`);
      failing = false;
      await waitFor('the relay running again', async () => (await http.status()).relay.state === 'running');
      const session = await openSessionTo(s.port, 'a', 'A');
      session.ws.close();
    } finally {
      await s.close();
    }
  });

  it('answers 500 when the relay throws on an upgrade, then replaces it', async () => {
    let created = 0;
    class Flaky extends Relay {
      override handleUpgrade(...args: Parameters<Relay['handleUpgrade']>): void {
        if (created === 1) throw new Error('upgrade exploded');
        super.handleUpgrade(...args);
      }
    }
    const s = await startWithSupervisor({ createRelay: (o) => {
        created++;
        return new Flaky(o);
      }, initialBackoff: 20 });
    try {
      const http = client(s.port);
      const r = await refusedUpgrade(s.port, '');
      assert.equal(r.status, 500);
      assert.equal(r.body, 'The relay failed; it is being restarted.\n');
      const st = (await http.status()).relay;
      assert.equal(st.lastError?.message, 'upgrade exploded');
      await waitFor('the replacement relay', async () => (await http.status()).relay.state === 'running');
      assert.equal(created, 2);
      assert.equal((await http.status()).relay.restarts, 1);
      const session = await openSessionTo(s.port, undefined, 'A');
      session.ws.close();
    } finally {
      await s.close();
    }
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
    assert.equal(st.restarts, 0);
    assert.equal(st.lastError, null);
  });
});
