/**
 * Black-box tests of `ctrlx-novnc relay` as a process: help, argument errors (exit 2 naming the
 * flag), a taken port, plain HTTP answers, flags reaching the relay, log lines and SIGTERM.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { logFields } from '../helpers/relay-harness.js';
import { runCli, spawnRelay, type RelayProcess } from '../helpers/cli.js';
import { startEcho, startHanging, type TcpTarget } from '../helpers/targets.js';
import { collect, handshake, openClient, rawRequest, receiveBytes, whenClosed, wsUrl } from '../helpers/ws-client.js';
import { FAILURES } from '../../src/common/failures.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('ctrlx-novnc relay (CLI)', () => {
  let echo: TcpTarget<net.Socket>;
  before(async () => {
    echo = await startEcho();
  });
  after(() => echo.close());

  // Each case is a process of its own: run a few at a time.
  describe('usage', { concurrency: 4 }, () => {
    it('lists the commands and the relay options with --help, help and -h', LIMIT, async () => {
      const outputs: string[] = [];
      for (const arg of ['--help', 'help', '-h']) {
        const r = await runCli([arg]);
        assert.equal(r.code, 0, arg);
        assert.equal(r.stderr, '', arg);
        outputs.push(r.stdout);
      }
      const [help] = outputs;
      assert.match(help!, /^Usage: ctrlx-novnc <command> \[options\]$/m);
      assert.match(help!, /^ {2}relay +Relay WebSocket connections/m);
      assert.match(help!, /^ {2}help +Show this help$/m);
      for (const flag of ['--listen HOST:PORT', '--target HOST:PORT', '--max-payload BYTES', '--connect-timeout SEC', '--heartbeat SEC', '--allowed-hosts LIST', '--allow-origin LIST']) {
        assert.ok(help!.includes(flag), `help mentions ${flag}`);
      }
      assert.equal(outputs[1], help);
      assert.equal(outputs[2], help);
    });

    const target = '127.0.0.1:5900';
    const bad: { args: string[]; names: string }[] = [
      { args: ['relay', '--target', target], names: '--listen' },
      { args: ['relay', '--listen', '127.0.0.1:0'], names: '--target' },
      { args: ['relay', '--listen', 'nonsense', '--target', target], names: '--listen' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', '127.0.0.1:70000'], names: '--target' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', 'bad_host!:5900'], names: '--target' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', '::1:5900'], names: '--target' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, '--max-payload=abc'], names: '--max-payload' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, '--max-payload=0'], names: '--max-payload' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, '--connect-timeout=0'], names: '--connect-timeout' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, '--heartbeat=-1'], names: '--heartbeat' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, '--bogus'], names: '--bogus' },
      { args: ['relay', '--listen', '127.0.0.1:0', '--target', target, 'stray'], names: 'stray' },
      { args: ['frobnicate'], names: 'frobnicate' },
      { args: ['serve', '--listen', '127.0.0.1:0', '--max-sessions', '0'], names: '--max-sessions' },
      { args: ['serve', '--listen', '127.0.0.1:0', '--max-sessions-per-target', '2.5'], names: '--max-sessions-per-target' },
      { args: ['serve', '--listen', '127.0.0.1:0', '--change-rate', '-1'], names: '--change-rate' },
    ];
    for (const { args, names } of bad) {
      it(`exits 2 naming ${names} for: ${args.join(' ')}`, LIMIT, async () => {
        const r = await runCli(args);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^Error: /);
        assert.ok(r.stderr.includes(names), `stderr names ${names}: ${r.stderr}`);
        assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, 'one line');
        assert.ok(!r.stdout.includes('listening'), 'it did not start');
      });
    }

    it('exits 1 with "already in use" when the listen port is taken', LIMIT, async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = taken.address() as net.AddressInfo;
        const r = await runCli(['relay', '--listen', `127.0.0.1:${port}`, '--target', target]);
        assert.equal(r.code, 1);
        assert.equal(r.stderr, `Error: cannot listen on 127.0.0.1:${port}: the address is already in use\n`);
      } finally {
        await new Promise<void>((resolve) => taken.close(() => resolve()));
      }
    });
  });

  describe('running', () => {
    let relay: RelayProcess;
    before(async () => {
      relay = await spawnRelay(`127.0.0.1:${echo.port}`);
    });
    after(() => relay.stop('SIGKILL'));

    it('logs "listening" with the bound address and the target', LIMIT, () => {
      const line = relay.stdout.find((l) => l.includes(' relay: listening '))!;
      assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}relay: listening /);
      assert.deepEqual(logFields(line), { listen: `127.0.0.1:${relay.port}`, target: `127.0.0.1:${echo.port}` });
    });

    it('answers a plain GET or HEAD with 426 and other methods with 405', LIMIT, async () => {
      for (const [method, status] of [['GET', 426], ['HEAD', 426], ['POST', 405], ['DELETE', 405]] as const) {
        const { response, ended } = await rawRequest(relay.port, `${method} / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        await ended;
        assert.equal(response.status, status, method);
        assert.equal(response.headers['upgrade'], 'websocket', method);
        assert.equal(response.headers['connection'], 'close', method);
      }
    });

    it('refuses a bad handshake with 400', LIMIT, async () => {
      const { response, ended } = await rawRequest(relay.port, handshake({ 'Sec-WebSocket-Version': '20' }));
      await ended;
      assert.equal(response.statusLine, 'HTTP/1.1 400 Bad Request');
    });

    it('relays on any path', LIMIT, async () => {
      for (const path of ['/', '/websockify', '/a/b?token=x']) {
        const ws = await openClient(wsUrl(relay.port, path));
        ws.send(Buffer.from(path));
        assert.equal(String(await receiveBytes(ws, path.length)), path);
        ws.close();
        await whenClosed(ws);
      }
    });

    it('logs session start and end on stdout, with sizes and code but no payload', LIMIT, async () => {
      const marker = 'CLI-PAYLOAD-MARKER-77aa';
      const ws = await openClient(relay.url);
      ws.send(Buffer.from(marker));
      await receiveBytes(ws, marker.length);
      ws.close(1000);
      await whenClosed(ws);
      const end = await relay.waitForLine(new RegExp(` relay: session end .*up=${marker.length} `));
      const id = logFields(end).id;
      const start = await relay.waitForLine(new RegExp(` relay: session start id=${id} `));
      assert.equal(logFields(start).target, `127.0.0.1:${echo.port}`);
      assert.deepEqual(
        { target: logFields(end).target, up: logFields(end).up, down: logFields(end).down, code: logFields(end).code },
        { target: `127.0.0.1:${echo.port}`, up: String(marker.length), down: String(marker.length), code: '1000' },
      );
      assert.match(logFields(end).duration!, /^\d+\.\d{3}s$/);
      assert.ok(!relay.stdout.join('\n').includes(marker) && !relay.stderr.join('\n').includes(marker), 'no payload logged');
    });
  });

  describe('flags', () => {
    it('--max-payload sets the largest browser message (1009 above it)', LIMIT, async (t) => {
      const relay = await spawnRelay(`127.0.0.1:${echo.port}`, ['--max-payload', '1000']);
      t.after(() => relay.stop('SIGKILL'));
      const ws = await openClient(relay.url);
      const received = collect(ws);
      ws.send(Buffer.alloc(1000, 1));
      await receiveBytes(ws, 1000);
      ws.send(Buffer.alloc(1001, 1));
      const end = await received;
      assert.equal(end.code, 1009);
      assert.equal(end.data.length, 1000);
    });

    it('--connect-timeout bounds the connect to the target (4011 ETIMEDOUT)', LIMIT, async (t) => {
      const hanging = await startHanging();
      if (!hanging) {
        t.skip('python3 is not available to make a loopback connect hang');
        return;
      }
      t.after(() => hanging.close());
      const relay = await spawnRelay(`127.0.0.1:${hanging.port}`, ['--connect-timeout', '0.3']);
      t.after(() => relay.stop('SIGKILL'));
      const end = await collect(await openClient(relay.url));
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: FAILURES['connect-timeout'].code, reason: `ETIMEDOUT 127.0.0.1:${hanging.port}` });
    });
  });

  describe('SIGTERM', () => {
    it('closes every open session with 1001 and exits 0', LIMIT, async (t) => {
      const relay = await spawnRelay(`127.0.0.1:${echo.port}`);
      t.after(() => relay.stop('SIGKILL'));
      const clients = await Promise.all([1, 2, 3].map(() => openClient(relay.url)));
      const ends = clients.map((ws) => collect(ws));
      for (const [i, ws] of clients.entries()) {
        ws.send(Buffer.from(`client ${i}`));
        await receiveBytes(ws, 8);
      }
      const exit = await relay.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null });
      for (const [i, end] of (await Promise.all(ends)).entries()) {
        assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1001, reason: 'server shutting down' }, `client ${i}`);
        assert.equal(String(end.data), `client ${i}`);
      }
      assert.ok(relay.stdout.some((l) => / relay: stopping signal=SIGTERM$/.test(l)), 'logs the signal');
      const sessionEnds = relay.stdout.filter((l) => l.includes(' relay: session end '));
      assert.equal(sessionEnds.length, 3);
      for (const l of sessionEnds) assert.equal(logFields(l).code, '1001');
    });
  });
});
