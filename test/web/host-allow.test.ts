/**
 * DNS rebinding (issue 12, item 1): the real `serve` and `relay` children answer only `Host` names
 * they know (loopback names, IP literals, the listen host, `--allowed-hosts`). A page of another
 * site that rebinds its name to 127.0.0.1 sends its own name in `Host` and `Origin`: it gets 421
 * Problem JSON on every route (a change is not made) and its upgrades are refused before they start.
 * On the device's unix socket no such check applies (the ctrlX proxy chooses the names).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { API, RELAY, assertProblem, client, config, makeTempDir, removeDir, request, staticPath, target, vncServer, waitFor, writeConfigFile, type FakeServer } from '../helpers/app.js';
import { childEnv, runCli, spawnRelay, spawnServe, type RelayProcess, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { SCOPE_MANAGE } from '../../src/ctrlx/auth.js';
import { problemType } from '../../src/errors.js';

const MISDIRECTED = problemType('ERR_MISDIRECTED');

/**
 * Opens a WebSocket to `url` with `Host` set to `host`; resolves with the HTTP status of a refusal
 * (and its body), or 101 once it opened (then closes it).
 */
function upgradeWithHost(url: string, host: string | undefined, protocols: string[] = ['binary']): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, headers: host === undefined ? {} : { Host: host } });
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('Host allow-list (DNS rebinding)', () => {
  /** Tests that passed: the reliability row is recorded only when all did. */
  let passed = 0;
  const ALL = 7;
  let vnc: FakeServer;
  before(async () => {
    vnc = await vncServer('V');
  });
  after(() => vnc.close());

  describe('serve on TCP', () => {
    let root: string;
    let serve: ServeProcess;
    let port: number;
    before(async () => {
      root = await makeTempDir('host-allow');
      writeConfigFile(path.join(root, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config(target('v', vnc.port)));
      serve = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, '--allowed-hosts', 'hmi.plant.example,*.lab.example']);
      port = serve.port!;
    });
    after(async () => {
      await serve.stop();
      await removeDir(root);
    });

    it('refuses a rebinding page (foreign Host and Origin) with 421 on PUT config; the configuration is unchanged', async () => {
      const http = client(port);
      const before = await http.config();
      const evil = { Host: `evil.example:${port}`, Origin: `http://evil.example:${port}` };
      const res = await http.put(`${API}/config`, { targets: [target('evil', 22, '10.6.6.6')] }, { headers: evil });
      assertProblem(res, 421, { type: MISDIRECTED, title: 'Misdirected request' });
      assert.deepEqual(await http.config(), before);
      // The same request with an honest Host passes the Host check (403 from the origin check: the Origin is foreign).
      const honest = await http.put(`${API}/config`, { targets: [target('evil', 22, '10.6.6.6')] }, { headers: { Origin: `http://evil.example:${port}` } });
      assert.equal(honest.status, 403);
      assert.deepEqual(await http.config(), before);
      passed++;
    });

    it('answers 421 on every route: pages, API, static files, unknown paths, the preflight', async () => {
      const paths = [
        '/ctrlx-novnc/viewer/',
        '/ctrlx-novnc/config/',
        `${API}/status`,
        `${API}/config`,
        staticPath('viewer.js'),
        staticPath('style.css'),
        '/ctrlx-novnc/nothing-here',
        '/',
        `${RELAY}?target=v`,
      ];
      for (const p of paths) {
        for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', 'evil.example.', '127.0.0.1.nip.io']) {
          const res = await request(port, 'GET', p, { headers: { Host: host } });
          assertProblem(res, 421, { type: MISDIRECTED });
          assert.equal(res.headers['cache-control'], 'no-store');
        }
      }
      const post = await request(port, 'POST', `${API}/probe`, { headers: { Host: 'evil.example' }, body: { host: '127.0.0.1', port: vnc.port } });
      assertProblem(post, 421, { type: MISDIRECTED });
      passed++;
    });

    it('refuses an upgrade with a foreign Host with 421 before it starts; no session opens', async () => {
      const url = `ws://127.0.0.1:${port}${RELAY}?target=v`;
      for (const host of ['evil.example', `evil.example:${port}`]) {
        const r = await upgradeWithHost(url, host);
        assert.equal(r.status, 421, host);
        assert.match(r.body, /host name "evil\.example/);
      }
      const status = await client(port).status();
      assert.equal(status.relay.totals.sessionsTotal, 0);
      passed++;
    });

    it('serves loopback names, IP literals, the listen host and --allowed-hosts names', async () => {
      const allowed = [
        `127.0.0.1:${port}`,
        '127.0.0.1',
        `localhost:${port}`,
        'LOCALHOST',
        'localhost.',
        `app.localhost:${port}`,
        `127.8.9.10:${port}`,
        `[::1]:${port}`,
        '[::1]',
        `192.168.1.20:${port}`,
        `[fe80::1]:${port}`,
        `hmi.plant.example:${port}`,
        'HMI.Plant.Example',
        `a.lab.example:${port}`,
        'x.y.lab.example',
      ];
      for (const host of allowed) {
        const res = await request(port, 'GET', `${API}/status`, { headers: { Host: host } });
        assert.equal(res.status, 200, `${host}: ${res.text}`);
      }
      // A name the list does not cover.
      for (const host of ['plant.example', 'lab.example', 'other.plant.example', 'evil-lab.example']) {
        assertProblem(await request(port, 'GET', `${API}/status`, { headers: { Host: host } }), 421, { type: MISDIRECTED });
      }
      // An upgrade with an allowed name and its own origin relays.
      const url = `ws://127.0.0.1:${port}${RELAY}?target=v`;
      assert.equal((await upgradeWithHost(url, `localhost:${port}`)).status, 101);
      assert.equal((await upgradeWithHost(url, `hmi.plant.example:${port}`)).status, 101);
      passed++;
    });

    it('rejects a bad --allowed-hosts entry at start (exit 2, naming the flag)', async () => {
      for (const bad of ['evil_host', 'a,,b', '*.', '*.10.0.0.1', 'http://x']) {
        const r = await runCli(['serve', '--listen', '127.0.0.1:0', '--data', root, '--allowed-hosts', bad]);
        assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /^Error: --allowed-hosts: /);
      }
      passed++;
    });
  });

  describe('relay on TCP', () => {
    let relay: RelayProcess;
    before(async () => {
      relay = await spawnRelay(`127.0.0.1:${vnc.port}`, ['--allowed-hosts', 'kiosk.plant.example']);
    });
    after(() => relay.stop());

    it('refuses upgrades and plain requests with a foreign Host (421); loopback, IP literals and --allowed-hosts relay', async () => {
      const url = `ws://127.0.0.1:${relay.port}/websockify`;
      for (const host of ['evil.example', `evil.example:${relay.port}`, 'kiosk.plant.example.evil.example']) {
        assert.equal((await upgradeWithHost(url, host)).status, 421, host);
        const res = await request(relay.port, 'GET', '/', { headers: { Host: host } });
        assertProblem(res, 421, { type: MISDIRECTED });
      }
      for (const host of [`127.0.0.1:${relay.port}`, `localhost:${relay.port}`, `10.1.2.3:${relay.port}`, `[::1]:${relay.port}`, `kiosk.plant.example:${relay.port}`]) {
        assert.equal((await upgradeWithHost(url, host)).status, 101, host);
      }
      assert.equal((await request(relay.port, 'GET', '/', { headers: { Host: 'localhost' } })).status, 426);
      const opened = (): number => relay.stdout.filter((l) => / session start /.test(l)).length;
      await waitFor('5 session start lines', () => opened() >= 5);
      // The refused upgrades came first: had one opened a session, its line would be here too.
      assert.equal(opened(), 5, 'only the allowed upgrades opened a session');
      passed++;
    });
  });

  describe('serve on the unix socket (the device)', () => {
    let root: string;
    let idm: FakeIdm;
    let serve: ServeProcess;
    const token = makeToken('admin', [SCOPE_MANAGE]);
    before(async () => {
      idm = await startFakeIdm();
      idm.valid.add(token);
      root = await makeTempDir('host-allow-snap');
      const env = childEnv({
        SNAP: path.join(root, 'snap'),
        SNAP_DATA: path.join(root, 'data'),
        SNAP_COMMON: path.join(root, 'common'),
        CTRLX_IDM_URL: idm.url,
      });
      fs.mkdirSync(env.SNAP!, { recursive: true });
      writeConfigFile(path.join(env.SNAP_COMMON!, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config());
      serve = await spawnServe([], { env });
    });
    after(async () => {
      await serve.stop();
      await idm.close();
      await removeDir(root);
    });

    it('does not check Host there: the ctrlX proxy forwards the device name', async () => {
      const socketPath = serve.address;
      const http = client({ socketPath }, { Authorization: `Bearer ${token}`, Host: 'ctrlx-core.plant.example' });
      assert.equal((await http.get(`${API}/status`)).status, 200);
      const put = await http.put(`${API}/config`, config(target('v', vnc.port)), { headers: { Origin: 'https://ctrlx-core.plant.example' } });
      assert.equal(put.status, 200, put.text);
      assert.equal((await http.get(staticPath('viewer.js'))).status, 200);
      passed++;
    });
  });

  after(() => {
    if (passed !== ALL) return;
    recordReliability({
      table: 'inputs',
      name: 'DNS rebinding: a foreign Host on serve/relay',
      tried:
        'PUT config with Host and Origin evil.example (a rebound name) on the serve child; GET of pages, API, static and shared files, unknown paths and the preflight with 5 foreign Host forms; WebSocket upgrades with a foreign Host on serve and on the relay child',
      outcome:
        'every request 421 Problem JSON misdirected-request, config.json unchanged; every upgrade refused with 421 before it started, no session opened; loopback names, IP literals, the listen host and --allowed-hosts names (also *.domain) served; the unix socket unaffected',
    });
  });
});
