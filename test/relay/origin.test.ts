/**
 * `ctrlx-novnc relay` checks the Origin of each upgrade as `serve` does (issue 12, item 7): pages
 * of the relay's own origin, and clients without `Origin` (not a browser), connect; pages of other
 * origins get 403 before the upgrade unless `--allow-origin LIST` (or `*`) names them. A relay or
 * app listening on a non-loopback address says so in a warning at start. All with the real child.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { makeTempDir, removeDir, waitFor } from '../helpers/app.js';
import { runCli, spawnCli, spawnRelay, spawnServe, type CliProcess, type RelayProcess } from '../helpers/cli.js';
import { recordReliability } from '../helpers/reliability.js';
import { startEcho, type TcpTarget } from '../helpers/targets.js';
import { receiveBytes } from '../helpers/ws-client.js';

/** Opens a WebSocket to `port` with `origin` (none when undefined); resolves with the refusal's status or 101 after an echo. */
function connect(port: number, origin: string | undefined, path = '/websockify'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, ['binary'], { perMessageDeflate: false, ...(origin === undefined ? {} : { origin }) });
    ws.binaryType = 'nodebuffer';
    ws.once('open', () => {
      ws.send(Buffer.from('ping'));
      receiveBytes(ws, 4).then(
        (echoed) => {
          ws.terminate();
          resolve({ status: echoed.toString() === 'ping' ? 101 : -1, body: '' });
        },
        (err: unknown) => reject(err),
      );
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

const WARNING = / warn +relay: listening on a non-loopback address/;

describe('relay CLI: origin check and non-loopback warning', () => {
  let echo: TcpTarget<net.Socket>;
  const rows = new Map<string, { tried: string; outcome: string }>();
  before(async () => {
    echo = await startEcho();
  });
  after(async () => {
    await echo.close();
    for (const [name, row] of rows) recordReliability({ table: 'inputs', name, ...row });
  });

  describe('default: same origin only', () => {
    let relay: RelayProcess;
    before(async () => {
      relay = await spawnRelay(`127.0.0.1:${echo.port}`);
    });
    after(() => relay.stop());

    it('refuses pages of other origins with 403 before the upgrade; its own origin and clients without Origin relay', async () => {
      const foreign = ['http://evil.example', `http://evil.example:${relay.port}`, `http://127.0.0.1:${relay.port + 1}`, `https://127.0.0.1:${relay.port}x`, 'null', 'not a url'];
      for (const origin of foreign) {
        const r = await connect(relay.port, origin);
        assert.equal(r.status, 403, origin);
        assert.match(r.body, /^Cross-origin WebSocket connections are not allowed/);
      }
      for (const origin of [`http://127.0.0.1:${relay.port}`, undefined]) {
        assert.equal((await connect(relay.port, origin)).status, 101, String(origin));
      }
      const opened = (): number => relay.stdout.filter((l) => / session start /.test(l)).length;
      await waitFor('2 session start lines', () => opened() >= 2);
      assert.equal(opened(), 2, 'no refused upgrade opened a session');
      assert.ok(!relay.stderr.some((l) => WARNING.test(l)), 'no warning on loopback');
      rows.set('relay CLI: a page of another origin', {
        tried: `WebSocket upgrades to the relay child from ${foreign.length} foreign origins (other host, other port, null, malformed), its own origin and no Origin`,
        outcome: 'every foreign origin refused with 403 before the upgrade, no session opened; its own origin and the client without Origin relayed',
      });
    });
  });

  describe('--allow-origin', () => {
    let listed: RelayProcess;
    let any: RelayProcess;
    before(async () => {
      listed = await spawnRelay(`127.0.0.1:${echo.port}`, ['--allow-origin', 'https://HMI.plant.example, http://10.0.0.5:8080/']);
      any = await spawnRelay(`127.0.0.1:${echo.port}`, ['--allow-origin', '*']);
    });
    after(async () => {
      await listed.stop();
      await any.stop();
    });

    it('a list widens the check to its origins; * lets any page connect (with a warning)', async () => {
      for (const origin of ['https://hmi.plant.example', 'http://10.0.0.5:8080', `http://127.0.0.1:${listed.port}`, undefined]) {
        assert.equal((await connect(listed.port, origin)).status, 101, String(origin));
      }
      for (const origin of ['https://other.plant.example', 'http://hmi.plant.example', 'http://10.0.0.5:8081', 'http://evil.example']) {
        assert.equal((await connect(listed.port, origin)).status, 403, origin);
      }
      for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${any.port}`, undefined]) {
        assert.equal((await connect(any.port, origin)).status, 101, String(origin));
      }
      await waitFor('the --allow-origin * warning', () => any.stderr.some((l) => / warn +relay: --allow-origin \*: /.test(l)));
      assert.ok(!listed.stderr.some((l) => /--allow-origin \*/.test(l)));
      rows.set('relay CLI: --allow-origin list and *', {
        tried: 'relay child with --allow-origin https://HMI.plant.example,http://10.0.0.5:8080/ and another with --allow-origin *; upgrades from listed, unlisted, null and own origins',
        outcome: 'listed origins (normalised) and its own origin relayed, 4 others refused with 403; with * every origin relayed and a warning was logged at start',
      });
    });

    it('rejects a bad --allow-origin entry (exit 2, naming the flag)', async () => {
      for (const bad of ['evil.example', 'ftp://x.example', 'https://x.example/path', 'https://a.example,', '*,https://a.example']) {
        const r = await runCli(['relay', '--listen', '127.0.0.1:0', '--target', `127.0.0.1:${echo.port}`, '--allow-origin', bad]);
        assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
        assert.match(r.stderr, /^Error: --allow-origin: /);
      }
    });
  });

  describe('listening on a non-loopback address', () => {
    const running: CliProcess[] = [];
    let root: string | undefined;
    after(async () => {
      for (const p of running) await p.stop();
      if (root) await removeDir(root);
    });

    it('relay and serve warn at start when they listen on 0.0.0.0; connections still work', async () => {
      const relay = spawnCli(['relay', '--listen', '0.0.0.0:0', '--target', `127.0.0.1:${echo.port}`]);
      running.push(relay);
      const line = await relay.waitForLine(/ relay: listening /);
      const port = Number(/ listen=0\.0\.0\.0:(\d+)/.exec(line)?.[1]);
      assert.ok(port > 0, line);
      await waitFor('the non-loopback warning', () => relay.stderr.some((l) => WARNING.test(l)));
      assert.equal((await connect(port, undefined)).status, 101);
      assert.equal((await connect(port, 'http://evil.example')).status, 403);

      root = await makeTempDir('serve-warn');
      const serve = await spawnServe(['--listen', '0.0.0.0:0', '--auth', 'off', '--data', root]);
      running.push(serve);
      await waitFor('the serve non-loopback warning', () => serve.stderr.some((l) => / warn +listening on a non-loopback address: reachable from the network/.test(l)));
      rows.set('relay CLI: listening on 0.0.0.0', {
        tried: 'relay child and serve child started with --listen 0.0.0.0:0, connected through 127.0.0.1',
        outcome: 'both logged a warning that they listen on a non-loopback address; the relay relayed its own client and still refused a foreign origin with 403',
      });
    });
  });
});
