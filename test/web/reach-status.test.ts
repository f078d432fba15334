/**
 * The status API's `reach` of each target (the settings page's live reachability dot): the
 * newest of how the last viewer session through the relay got on with the target's server and
 * the last Test connection of its address, with its time, and no connection made for it. Real
 * app, real sockets: a session that reaches a VNC server makes it ok; the server stops and the
 * next session fails with `connection-refused`; a port that is not VNC gives `not-vnc`; a rejected
 * stored password `login-rejected` and the right one ok (the relay's own login); a Test
 * connection after a session is the newer answer; a moved target forgets its sessions' outcome;
 * a user who may only view sees ok, kind and time without the address.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ReachStatus } from '../../src/supervisor/supervisor.js';
import { startDemoServer } from '../../src/demo/demo-server.js';
import { statusFor } from '../../src/web/status-view.js';
import { reachWords } from '../../src/common/reach.js';
import { API, client, config, openSession, openSessionTo, startTestApp, target, tcpServer, vncServer, waitFor, type FakeServer, type TestApp } from '../helpers/app.js';
import { recordReliability } from '../helpers/reliability.js';

describe('status: live reachability of each target', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let vnc: FakeServer | undefined;
  let web: FakeServer;
  let hmiPort = 0;

  before(async () => {
    vnc = await vncServer('hello');
    hmiPort = vnc.port;
    web = await tcpServer((s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    t = await startTestApp({ initial: config(target('hmi', hmiPort, '127.0.0.1', 'HMI'), target('web', web.port, '127.0.0.1', 'Web')) });
    http = client(t.port);
  });
  after(async () => {
    await Promise.allSettled([t?.close(), vnc?.close(), web?.close()]);
  });

  const reachOf = async (id: string): Promise<ReachStatus | null> => {
    const status = await http.status();
    const found = status.relay.targets.find((x) => x.id === id);
    assert.ok(found, `target ${id} in the status`);
    return found.reach;
  };

  it('is null before any session or test: no connection is made for it', async () => {
    assert.equal(await reachOf('hmi'), null);
    assert.equal(await reachOf('web'), null);
    assert.equal(vnc!.accepted, 0, 'the status made no connection to the VNC server');
    assert.equal(reachWords(null, 'en').text, 'Not checked yet');
  });

  it('a viewer session that reaches the server makes it ok; after the server stops, the next session makes it not ok with the kind', async () => {
    const s = await openSessionTo(t.port, 'hmi', 'hello');
    const ok = await waitFor('reach ok after the session', async () => {
      const r = await reachOf('hmi');
      return r?.ok ? r : undefined;
    });
    assert.deepEqual({ ...ok, at: undefined }, { ok: true, kind: null, at: undefined, via: 'session' });
    assert.match(reachWords(ok, 'en').text, /^Reachable \d\d:\d\d \(viewer session\)$/);
    assert.match(reachWords(ok, 'de').text, /^Erreichbar \d\d:\d\d \(Viewer-Sitzung\)$/);
    s.ws.close();
    await s.closed;

    await vnc!.close();
    vnc = undefined;
    const failed = await openSession(t.port, 'hmi');
    assert.equal((await failed.closed).code, 4010, 'the session fails: connection refused');
    const bad = await waitFor('reach not ok after the failed session', async () => {
      const r = await reachOf('hmi');
      return r && !r.ok ? r : undefined;
    });
    assert.equal(bad.kind, 'connection-refused');
    assert.equal(bad.via, 'session');
    assert.ok(Date.parse(bad.at) >= Date.parse(ok.at), 'the newer outcome');
    assert.match(reachWords(bad, 'en').text, /^Not reachable: connection refused, \d\d:\d\d$/);
    assert.match(reachWords(bad, 'de').text, /^Nicht erreichbar: Verbindung abgelehnt, \d\d:\d\d$/);

    // A user who may only view sees whether and when, without the address.
    const viewer = statusFor(await http.status(), false);
    const shown = viewer.relay.targets.find((x) => x.id === 'hmi')!;
    assert.deepEqual(shown.reach, { ok: false, kind: 'connection-refused', at: bad.at, via: 'session' });
    assert.equal('target' in shown, false, 'no address');
    recordReliability({
      table: 'faults',
      name: 'live reachability of a target',
      tried: 'a viewer session through the relay to a VNC server, then the server stopped and a new session opened',
      outcome: 'status reach ok (viewer session) after the first; not ok with kind connection-refused after the second, without any probe connection',
    });
  });

  it('a Test connection after a session is the newer answer', async () => {
    const res = await http.post(`${API}/targets/hmi/probe`);
    assert.equal(res.status, 200, res.text);
    const r = await reachOf('hmi');
    assert.equal(r?.via, 'test');
    assert.equal(r?.ok, false);
    assert.equal(r?.kind, 'connection-refused', 'the probe outcome "refused" as its failure kind');
  });

  it('a port that is not a VNC server: kind not-vnc', async () => {
    const s = await openSession(t.port, 'web');
    assert.equal((await s.closed).code, 4002);
    const r = await waitFor('reach of web', () => reachOf('web'));
    assert.deepEqual({ ok: r.ok, kind: r.kind, via: r.via }, { ok: false, kind: 'not-vnc', via: 'session' });
    assert.match(reachWords(r, 'en').text, /^Not reachable: not a VNC server, /);
  });

  it('with a stored password: a rejected one is login-rejected, the right one reaches the server', async () => {
    const demo = await startDemoServer({ host: '127.0.0.1', port: 0, width: 640, height: 480, password: 'secret' });
    try {
      const put = (password: string) =>
        http.put(`${API}/config`, config(target('hmi', hmiPort, '127.0.0.1', 'HMI'), target('web', web.port, '127.0.0.1', 'Web'), { ...target('locked', demo.port, '127.0.0.1', 'Locked'), password } as never));
      assert.equal((await put('wrong')).status, 200);
      const s = await openSession(t.port, 'locked');
      s.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
      assert.equal((await s.closed).code, 4003);
      const bad = await waitFor('reach after the rejected password', () => reachOf('locked'));
      assert.deepEqual({ ok: bad.ok, kind: bad.kind, via: bad.via }, { ok: false, kind: 'login-rejected', via: 'session' });

      assert.equal((await put('secret')).status, 200);
      const good = await openSession(t.port, 'locked');
      good.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
      const ok = await waitFor('reach ok with the right password', async () => {
        const r = await reachOf('locked');
        return r?.ok ? r : undefined;
      });
      assert.equal(ok.via, 'session');
      good.ws.close();
      await good.closed;
    } finally {
      await demo.close();
    }
  });

  it('a target moved to another address forgets its sessions\' outcome', async () => {
    const other = await vncServer('moved');
    try {
      const res = await http.put(`${API}/config`, config(target('hmi', hmiPort, '127.0.0.1', 'HMI'), target('web', other.port, '127.0.0.1', 'Web')));
      assert.equal(res.status, 200, res.text);
      assert.equal(await reachOf('web'), null, 'the not-vnc outcome was of the old address');
      const s = await openSessionTo(t.port, 'web', 'moved');
      const r = await waitFor('reach ok at the new address', async () => {
        const x = await reachOf('web');
        return x?.ok ? x : undefined;
      });
      assert.equal(r.via, 'session');
      s.ws.close();
      await s.closed;
    } finally {
      await other.close();
    }
  });
});
