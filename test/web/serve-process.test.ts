/**
 * `ctrlx-novnc serve` as a process: SIGTERM with a session open closes it with 1001 and exits 0
 * within 5 s; on the device (SNAP, SNAP_DATA, SNAP_COMMON set) it listens on
 * `$SNAP_DATA/package-run/ctrlx-novnc/ctrlx-novnc.web.sock` (a stale socket is removed first, the socket is
 * removed on exit) and uses `$SNAP_COMMON/solutions`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { API, RELAY, client, config, csrfToken, makeTempDir, removeDir, request, target, vncServer, waitFor, writeConfigFile, type FakeServer } from '../helpers/app.js';
import { childEnv, runCli, spawnServe, type Exit, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { BEARER_PROTOCOL_PREFIX, SCOPE_MANAGE } from '../../src/ctrlx/auth.js';

/** Resolves with the exit, failing if it does not come within `ms` (the "exits within 5 s" rule). */
async function exitWithin(p: ServeProcess, ms: number): Promise<Exit> {
  let done: Exit | undefined;
  void p.exited.then((e) => (done = e));
  await waitFor(`the process to exit within ${ms} ms`, () => done !== undefined, { timeoutMs: ms });
  return done!;
}

/** Opens a relay session via `url` (with a login token if given) and waits for the target's greeting and `tag`. */
function session(url: string, tag: string, token?: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, token ? ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`] : ['binary']);
    let data = '';
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('message', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data === `RFB 003.008\n${tag}`) resolve({ ws, closed });
    });
    ws.once('error', reject);
  });
}

describe('serve process', () => {
  let vnc: FakeServer;
  let root: string;
  const running = new Set<ServeProcess>();

  before(async () => {
    vnc = await vncServer('V');
  });
  after(() => vnc.close());
  afterEach(async () => {
    for (const p of running) await p.stop('SIGKILL');
    running.clear();
    if (root) await removeDir(root);
  });

  it('on SIGTERM closes open sessions with 1001 and exits 0 within 5 s', async () => {
    root = await makeTempDir('serve');
    const p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root]);
    running.add(p);
    assert.match(p.address, /^127\.0\.0\.1:\d+$/);
    // Off the device the data folder stands in for the solutions mount.
    assert.ok(fs.existsSync(path.join(root, 'solutions', 'activeConfiguration')));
    const http = client(p.port!);
    assert.equal((await http.put(`${API}/config`, { targets: [target('v', vnc.port)] })).status, 200);
    const s = await session(`ws://127.0.0.1:${p.port}${RELAY}?target=v`, 'V');
    assert.equal((await http.status()).relay.totals.sessionsOpen, 1);

    p.child.kill('SIGTERM');
    const exit = await exitWithin(p, 5000);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.deepEqual(await s.closed, { code: 1001, reason: 'server shutting down' });
    assert.ok(p.stdout.some((l) => /stopping signal=SIGTERM/.test(l)), p.stdout.join('\n'));
    running.delete(p);
  });

  it('exits 0 on SIGTERM with nothing open', async () => {
    root = await makeTempDir('serve');
    const p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root]);
    running.add(p);
    // One request first: the CLI installs its SIGTERM handler only after logging `listening`, so
    // a signal sent on that line alone can meet the default action; an answer proves start-up is over.
    assert.equal((await request(p.port!, 'GET', `${API}/status`)).status, 200);
    p.child.kill('SIGTERM');
    assert.deepEqual(await exitWithin(p, 5000), { code: 0, signal: null });
    running.delete(p);
  });

  describe('on the device', () => {
    let env: NodeJS.ProcessEnv;
    let socket: string;
    let solutions: string;
    // Authentication is always on on the device: a fake identity manager vouches for this token.
    let idm: FakeIdm;
    const token = makeToken('tester', [SCOPE_MANAGE]);
    const auth = { Authorization: `Bearer ${token}` };
    before(async () => {
      idm = await startFakeIdm();
      idm.valid.add(token);
    });
    after(() => idm.close());

    const setUp = async (): Promise<void> => {
      root = await makeTempDir('snap');
      env = childEnv({
        SNAP: path.join(root, 'snap'),
        SNAP_DATA: path.join(root, 'data'),
        SNAP_COMMON: path.join(root, 'common'),
        CTRLX_IDM_URL: idm.url,
      });
      fs.mkdirSync(env.SNAP!, { recursive: true });
      socket = path.join(env.SNAP_DATA!, 'package-run', 'ctrlx-novnc', 'ctrlx-novnc.web.sock');
      solutions = path.join(env.SNAP_COMMON!, 'solutions');
    };

    /** Leaves a stale socket file at `file`: a process bound it and was killed. */
    const staleSocket = async (file: string): Promise<void> => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      await new Promise((resolve) => child.once('exit', resolve));
      assert.ok(fs.lstatSync(file).isSocket(), 'a stale socket file is there');
    };

    it('listens on $SNAP_DATA/package-run/ctrlx-novnc/ctrlx-novnc.web.sock (removing a stale one), uses $SNAP_COMMON/solutions and removes the socket on exit', async () => {
      await setUp();
      await staleSocket(socket);
      writeConfigFile(path.join(solutions, 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config(target('v', vnc.port)));

      const p = await spawnServe([], { env });
      running.add(p);
      assert.equal(p.address, socket);
      assert.ok(fs.lstatSync(socket).isSocket());

      assert.equal((await request({ socketPath: socket }, 'GET', `${API}/status`)).status, 401, 'a login is required');
      const http = client({ socketPath: socket }, auth);
      const status = await http.status();
      assert.equal(status.config.file, path.join(solutions, 'activeConfiguration', 'ctrlx-novnc', 'config.json'));
      assert.equal(status.config.state, 'ok');
      assert.deepEqual(await http.config(), config(target('v', vnc.port)));
      const page = await http.get('/ctrlx-novnc/config/');
      assert.equal(page.status, 200);
      assert.equal(fs.existsSync(path.join(root, 'solutions')), false, 'nothing made outside the snap folders');

      // A relay session over the unix socket, then SIGTERM.
      const s = await session(`ws+unix://${socket}:${RELAY}?target=v`, 'V', token);
      p.child.kill('SIGTERM');
      assert.deepEqual(await exitWithin(p, 5000), { code: 0, signal: null });
      running.delete(p);
      assert.equal((await s.closed).code, 1001);
      assert.equal(fs.existsSync(socket), false, 'the socket is removed on exit');
    });

    it('refuses pages of another origin before anything happens: relay upgrade, API change, form post (403), with a valid token', async () => {
      await setUp();
      writeConfigFile(path.join(solutions, 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config(target('v', vnc.port)));
      const p = await spawnServe([], { env });
      running.add(p);
      // As the ctrlX reverse proxy forwards a browser's request: the device's host name and the page's Origin.
      const device = { Host: 'ctrlx-core.local', 'X-Forwarded-For': '192.168.1.20' };
      const same = { ...device, Origin: 'https://ctrlx-core.local' };
      const evil = { ...device, Origin: 'https://evil.example' };
      const http = client({ socketPath: socket }, auth);
      const changed = config(target('v', vnc.port), target('w', vnc.port));
      const csrf = csrfToken((await http.get('/ctrlx-novnc/config/', { headers: same })).text);
      const form = (host: string): [string, string][] => [
        ['_csrf', csrf],
        ['_token', token],
        ['id', 'v'],
        ['name', 'v'],
        ['host', host],
        ['port', String(vnc.port)],
        ['action', 'save'],
      ];
      for (const [what, send] of [
        ['PUT config', (h: Record<string, string>) => http.put(`${API}/config`, changed, { headers: h })],
        ['POST probe', (h: Record<string, string>) => http.post(`${API}/probe`, { host: '127.0.0.1', port: vnc.port }, { headers: h })],
        ['form post', (h: Record<string, string>) => http.form('/ctrlx-novnc/config/', form('10.0.0.1'), { headers: h })],
      ] as const) {
        const res = await send(evil);
        assert.equal(res.status, 403, `${what} from another origin: ${res.text.slice(0, 200)}`);
      }
      assert.deepEqual(await http.config(), config(target('v', vnc.port)), 'nothing was saved');
      const upgrade = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws+unix://${socket}:${RELAY}?target=v`, ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`], { headers: evil });
        ws.once('open', () => {
          ws.terminate();
          reject(new Error('a cross-origin upgrade was accepted'));
        });
        ws.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        ws.once('error', () => {});
      });
      assert.equal(upgrade, 403);
      // The same requests from the device's own origin pass.
      assert.equal((await http.form('/ctrlx-novnc/config/', form('127.0.0.1'), { headers: same })).status, 303);
      assert.equal((await http.put(`${API}/config`, changed, { headers: same })).status, 200);
      const s = await new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws+unix://${socket}:${RELAY}?target=v`, ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`], { headers: same });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
      s.close();
      p.child.kill('SIGTERM');
      assert.equal((await exitWithin(p, 5000)).code, 0);
      running.delete(p);
    });

    it('waits for the active configuration instead of creating it', async () => {
      await setUp();
      const p = await spawnServe([], { env });
      running.add(p);
      const http = client({ socketPath: socket }, auth);
      assert.equal((await http.status()).config.state, 'unmounted');
      assert.equal(fs.existsSync(path.join(solutions, 'activeConfiguration')), false);
      assert.ok(p.stderr.some((l) => /active configuration/.test(l)), 'a warning says what it waits for');
      p.child.kill('SIGTERM');
      assert.equal((await exitWithin(p, 5000)).code, 0);
      running.delete(p);
    });

    it('refuses --listen with exit code 2', async () => {
      await setUp();
      const { code, stderr } = await runCli(['serve', '--listen', '127.0.0.1:0'], { env });
      assert.equal(code, 2);
      assert.match(stderr, /^Error: --listen is not used on the device/);
      assert.equal(fs.existsSync(socket), false);
    });
  });
});
