/**
 * The app must not trip the VNC server's own lockout: TigerVNC blacklists a client address after
 * a few connections that close before authentication (5, then 10 s, doubling), and the
 * controller is one address for every viewer. Against a real `Xvnc -SecurityTypes VncAuth`, with
 * the password stored in the app and a proxy that delays every chunk by 40 ms (so a viewer can
 * be dropped mid-login reproducibly):
 * - "Test connection" logs in with the stored password and closes cleanly; without a stored
 *   password it reads the greeting only, at most 2 times per target in 5 minutes (cached 10 s);
 * - a viewer dropped during the login: the relay finishes the server's login before closing;
 * so a good login afterwards still gets in. A server that does lock the controller out is
 * reported as `server-lockout` (4009) by the relay, the probe and the status.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { API, RELAY, client, startTestApp, type TestApp } from '../helpers/app.js';
import { recordReliability } from '../helpers/reliability.js';
import { RfbClient, RfbError } from '../helpers/rfb-client.js';
import { startTarget, type TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { openClient, type CloseEvent } from '../helpers/ws-client.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';
import { FAILURES } from '../../src/common/failures.js';

const PASSWORD = 'Lock-2026';
const DELAY_MS = 40;
const CLICKS = 10;
const DROPS = 10;

/** Forwards to `port`, each chunk `DELAY_MS` late, in order, both ways; ends follow the data. */
function delayingProxy(port: number): Promise<TcpTarget<net.Socket>> {
  const forward = (from: net.Socket, to: net.Socket): void => {
    let last = 0;
    const later = (fn: () => void): void => {
      last = Math.max(Date.now() + DELAY_MS, last);
      setTimeout(fn, last - Date.now());
    };
    from.on('data', (chunk: Buffer) => later(() => to.destroyed || to.write(chunk)));
    from.on('end', () => later(() => to.destroyed || to.end()));
    from.on('close', () => later(() => to.destroy()));
  };
  return startTarget((socket) => {
    const upstream = net.connect({ host: '127.0.0.1', port });
    upstream.on('error', () => {});
    forward(socket, upstream);
    forward(upstream, socket);
    return socket;
  });
}

/** Opens a viewer through the relay and drops it (no close frame) once the relay greets it: mid-login. */
async function dropDuringLogin(url: string): Promise<void> {
  const ws = await openClient(url, ['binary']);
  await new Promise<void>((resolve) => {
    ws.once('message', () => resolve());
    ws.once('close', () => resolve());
  });
  ws.terminate();
}

/** A full login through the relay (the relay logs in with the stored password), then closes. */
async function goodLogin(url: string): Promise<string> {
  const c = await RfbClient.connectWebSocket(url);
  c.ws!.close();
  return c.name;
}

/** Raw connections straight to the server that read its greeting and hang up: what trips the lockout. */
async function badConnections(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('data', () => s.destroy());
      s.once('error', () => resolve());
      s.once('close', () => resolve());
    });
  }
}

describe('the VNC server lockout (TigerVNC, VNC password stored)', () => {
  let x: Xvnc;
  let withPassword: TcpTarget<net.Socket>;
  let withoutPassword: TcpTarget<net.Socket>;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  let url: string;

  before(async () => {
    x = await startXvnc({ password: PASSWORD, desktop: 'e2e-lockout' });
    withPassword = await delayingProxy(x.port);
    withoutPassword = await delayingProxy(x.port);
    app = await startTestApp({ probeTimeout: 3000 });
    http = client(app.port);
    const res = await http.put(`${API}/config`, {
      targets: [
        { id: 'hmi', name: 'Locked HMI', host: '127.0.0.1', port: withPassword.port, password: PASSWORD },
        { id: 'open', name: 'No password stored', host: '127.0.0.1', port: withoutPassword.port },
      ],
    });
    assert.equal(res.status, 200, res.text);
    url = `ws://127.0.0.1:${app.port}${RELAY}?target=hmi`;
  });

  after(async () => {
    await app?.close();
    await withPassword?.close();
    await withoutPassword?.close();
    await x?.stop();
  });

  it(`${CLICKS} Test-connection clicks with and ${CLICKS} without a stored password, then ${DROPS} viewers dropped mid-login: a good login still gets in`, async () => {
    const logins: string[] = [];
    for (let i = 0; i < CLICKS; i++) {
      const r = (await http.post(`${API}/targets/hmi/probe`)).json();
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.login, 'password');
      assert.equal(r.message, 'VNC server, RFB 003.008; logged in with the stored VNC password');
      logins.push(r.login);
    }
    const without: { message: string; testedAt?: string }[] = [];
    for (let i = 0; i < CLICKS; i++) {
      const r = (await http.post(`${API}/probe`, { host: '127.0.0.1', port: withoutPassword.port })).json();
      assert.equal(r.ok, true, JSON.stringify(r));
      without.push(r);
    }
    const real = without.filter((r) => r.testedAt === undefined).length;
    assert.equal(real, 1, 'one real test; the others within 10 s are answered from it');
    assert.match(without[1]!.message, /^VNC server, RFB 003\.008 \(tested \d+ s ago; to keep clear of the VNC server's lockout the next test connects in \d+ s\)$/);

    for (let i = 0; i < DROPS; i++) await dropDuringLogin(url);
    await waitFor('every dropped session to end', async () => (await http.status()).relay.totals.sessionsOpen === 0, { timeoutMs: 20_000 });

    // Straight to the server and through the relay: both get in.
    const direct = await RfbClient.connect({ port: x.port, password: PASSWORD });
    assert.equal(direct.name, 'e2e-lockout');
    direct.socket.destroy();
    assert.equal(await goodLogin(url), 'e2e-lockout');
    const status = (await http.status()).relay.targets.find((t: { id: string }) => t.id === 'hmi');
    assert.equal(status?.lockout, null);
    recordReliability({
      table: 'faults',
      name: "VNC server lockout: tests and dropped viewers do not trip it",
      tried: `TigerVNC (VncAuth, blacklist after 5 logins left unfinished) behind a ${DELAY_MS} ms proxy: ${CLICKS} "Test connection" with the stored password, ${CLICKS} without one, then ${DROPS} viewers dropped as soon as the relay greeted them (mid-login)`,
      outcome: `every test with the password logged in and closed cleanly; of the ${CLICKS} without, ${real} connected and ${CLICKS - real} were answered from it; the relay finished each dropped viewer's login first; a good login afterwards got in, directly and through the relay`,
    });
  });

  it('a server in lockout is reported as server-lockout (4009) by the relay, Test connection and the status', async () => {
    await badConnections(x.port, 6);
    // The server now answers every connection from this address with "Too many security failures".
    const probe = (await http.post(`${API}/targets/hmi/probe`)).json();
    assert.equal(probe.ok, false, JSON.stringify(probe));
    assert.deepEqual([probe.outcome, probe.kind, probe.code], ['server-lockout', 'server-lockout', 4009]);
    assert.match(probe.message, /locks this controller out for now: too many security failures/);

    let close: CloseEvent | undefined;
    try {
      await RfbClient.connectWebSocket(url);
      assert.fail('the login went through a locked-out server');
    } catch (err) {
      assert.ok(err instanceof RfbError, String(err));
      close = (err as RfbError & { close: CloseEvent }).close;
    }
    assert.equal(close!.code, FAILURES['server-lockout'].code);
    assert.equal(close!.code, 4009);
    assert.match(close!.reason, /locks this controller out for now: Too many security failures/);
    // Without a stored password the browser would do the login; the relay still says what it is.
    const open = await openClient(`ws://127.0.0.1:${app.port}${RELAY}?target=open`, ['binary']);
    const openClose = await new Promise<CloseEvent>((resolve) => open.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    assert.equal(openClose.code, 4009, openClose.reason);

    const target = (await http.status()).relay.targets.find((t: { id: string }) => t.id === 'hmi');
    assert.match(target?.lockout?.message ?? '', /Too many security failures|too many security failures/);
    const panel = await http.get(`${API}/status`, { headers: { Accept: 'text/html' } });
    assert.match(panel.text, /Locked HMI: the VNC server locks this controller out \(too many security failures\)/);
    recordReliability({
      table: 'faults',
      name: 'VNC server lockout reported as such',
      tried: 'TigerVNC put into its lockout by 6 raw connections that hang up after the greeting; then Test connection, a viewer and the status',
      outcome: `Test connection: server-lockout (4009) "${probe.message.slice(0, 60)}…"; the viewer closed with ${close!.code} "${close!.reason.slice(0, 50)}…" (${openClose.code} also for a target without a stored password); the status panel names the lockout`,
    });
  });
});
