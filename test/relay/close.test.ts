/**
 * Black-box tests of how relay sessions end: every byte delivered before the close in both
 * directions, target failures reported with their own close code (src/common/failures.ts) and the cause, the heartbeat dropping dead
 * browsers only, and `Relay#close`/`#closeSessions`.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { linesOf, logFields, relayFor, startRelay, type RelayHarness } from '../helpers/relay-harness.js';
import { recordReliability } from '../helpers/reliability.js';
import { between, prng, randomBytes, sha256 } from '../helpers/stream.js';
import {
  closedPort,
  startBurstClose,
  startEcho,
  startHanging,
  startSink,
  startStalled,
  startTarget,
  type TcpTarget,
} from '../helpers/targets.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { FAILURES } from '../../src/common/failures.js';
import { collect, handshake, openClient, rawRequest, receiveBytes, sendAll, whenClosed } from '../helpers/ws-client.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('Relay close', () => {
  describe('when the target closes', () => {
    it('delivers every byte of a 1-4 MB burst before closing with 1000, 50 times over (seed 5)', LIMIT, async (t) => {
      const rand = prng(5);
      const pool = randomBytes(rand, 4 * MiB + 4096);
      const bursts: Buffer[] = [];
      const iterations = 50;
      for (let i = 0; i < iterations; i++) {
        const size = between(rand, 1 * MiB, 4 * MiB);
        const offset = between(rand, 0, 4096);
        const burst = Buffer.from(pool.subarray(offset, offset + size));
        burst.writeUInt32BE(i, 0); // no two bursts alike
        bursts.push(burst);
      }
      const target = await startBurstClose((i) => bursts[i]!);
      t.after(() => target.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: target.port });
      for (let i = 0; i < iterations; i++) {
        const ws = await openClient(h.url);
        const received = collect(ws);
        if (i % 2 === 1) {
          // Every other time the browser reads late, so the relay holds the target back while
          // the target has already closed: the tail must survive the pause too.
          ws.pause();
          await sleep(20);
          ws.resume();
        }
        const end = await received;
        const want = bursts[i]!;
        assert.equal(end.data.length, want.length, `iteration ${i}: bytes received`);
        assert.equal(sha256(end.data), sha256(want), `iteration ${i}: content`);
        assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1000, reason: 'target closed' }, `iteration ${i}`);
      }
      await h.relay.idle();
      const total = bursts.reduce((n, b) => n + b.length, 0);
      assert.equal(h.relay.stats().bytesDown, total);
      recordReliability({
        table: 'faults',
        name: 'VNC server closes right after a burst',
        tried: `${iterations} sessions whose server sends 1–4 MB and closes at once, every other browser reading late (seed 5)`,
        outcome: `all ${(total / MiB).toFixed(0)} MiB delivered byte-exact before each 1000 "target closed"`,
        bytesLost: 0,
      });
    });

    it('closes with 4014 (connection-reset) "ECONNRESET 127.0.0.1:<port>" when the target resets the connection', LIMIT, async (t) => {
      const target = await startTarget((socket) => {
        socket.on('data', () => socket.resetAndDestroy());
        return socket;
      });
      t.after(() => target.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: target.port });
      const ws = await openClient(h.url);
      const received = collect(ws);
      ws.send(Buffer.from('trigger'));
      const end = await received;
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: FAILURES['connection-reset'].code, reason: `ECONNRESET 127.0.0.1:${target.port}` });
    });
  });

  describe('when the browser closes', () => {
    it('delivers what the browser sent just before closing to the target before its FIN, 20 times over (seed 6)', LIMIT, async (t) => {
      const sink = await startSink();
      t.after(() => sink.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const rand = prng(6);
      for (let i = 0; i < 20; i++) {
        const size = between(rand, 256 * KiB, 1 * MiB);
        const data = randomBytes(rand, size);
        const ws = await openClient(h.url);
        const closed = whenClosed(ws);
        let offset = 0;
        await sendAll(ws, () => {
          if (offset >= size) return undefined;
          const n = between(rand, 1, 16 * KiB);
          const chunk = data.subarray(offset, offset + n);
          offset += n;
          return chunk;
        });
        ws.close(1000, 'bye');
        const result = await (await sink.connections.next()).done;
        assert.equal(result.ended, true, `iteration ${i}: the target got a FIN`);
        assert.equal(result.bytes, size, `iteration ${i}: bytes before the FIN`);
        assert.equal(result.sha256, sha256(data), `iteration ${i}: content`);
        assert.deepEqual(await closed, { code: 1000, reason: 'bye' });
      }
    });

    it('delivers bytes held back by a slow target before its FIN (seed 8)', LIMIT, async (t) => {
      // The target pauses 2 ms after every chunk it reads, so the relay has to hold the browser
      // back; what it holds must still reach the target before the FIN.
      const slow = await startSink(false, 2);
      t.after(() => slow.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: slow.port });
      const data = randomBytes(prng(8), 4 * MiB);
      const ws = await openClient(h.url);
      const closed = whenClosed(ws);
      for (let i = 0; i < data.length; i += 32 * KiB) ws.send(data.subarray(i, i + 32 * KiB));
      ws.close(1000);
      const result = await (await slow.connections.next()).done;
      assert.equal(result.ended, true, 'the target got a FIN');
      assert.equal(result.bytes, data.length);
      assert.equal(result.sha256, sha256(data));
      assert.equal((await closed).code, 1000);
    });
  });

  describe('when the target cannot be reached', () => {
    it('closes with 4010 (connection-refused) "ECONNREFUSED 127.0.0.1:<port>" when the target refuses', LIMIT, async (t) => {
      const port = await closedPort();
      const h = await relayFor(t, { host: '127.0.0.1', port });
      const ws = await openClient(h.url);
      const end = await collect(ws);
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: FAILURES['connection-refused'].code, reason: `ECONNREFUSED 127.0.0.1:${port}` });
      assert.equal(end.data.length, 0);
      await h.relay.idle();
      const [line] = linesOf(h.logs, 'session end');
      assert.equal(logFields(line!).code, String(FAILURES['connection-refused'].code));
      assert.equal(logFields(line!).kind, 'connection-refused');
      assert.equal(logFields(line!).reason, `ECONNREFUSED 127.0.0.1:${port}`);
    });

    it('names an IPv6 target in brackets: 4010 "ECONNREFUSED [::1]:<port>"', LIMIT, async (t) => {
      const probe = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        probe.once('error', () => resolve(false));
        probe.listen(0, '::1', () => resolve(true));
      });
      if (!ok) {
        t.skip('no IPv6 loopback on this machine');
        return;
      }
      const { port } = probe.address() as net.AddressInfo;
      await new Promise<void>((resolve) => probe.close(() => resolve()));
      const h = await relayFor(t, { host: '::1', port });
      const end = await collect(await openClient(h.url));
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: FAILURES['connection-refused'].code, reason: `ECONNREFUSED [::1]:${port}` });
      await h.relay.idle();
      assert.equal(logFields(linesOf(h.logs, 'session end')[0]!).target, `[::1]:${port}`);
    });

    it('closes with 4011 (connect-timeout) "ETIMEDOUT 127.0.0.1:<port>" when the connect does not complete within connectTimeoutMs', LIMIT, async (t) => {
      const hanging = await startHanging();
      if (!hanging) {
        t.skip('python3 is not available to make a loopback connect hang');
        return;
      }
      t.after(() => hanging.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: hanging.port }, { connectTimeoutMs: 300 });
      const ws = await openClient(h.url);
      const end = await collect(ws);
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: FAILURES['connect-timeout'].code, reason: `ETIMEDOUT 127.0.0.1:${hanging.port}` });
      await h.relay.idle();
      assert.equal(h.relay.stats().sessionsOpen, 0);
    });
  });

  describe('heartbeat', () => {
    let echo: TcpTarget<net.Socket>;
    let h: RelayHarness;
    before(async () => {
      echo = await startEcho();
      h = await startRelay({ host: '127.0.0.1', port: echo.port }, { heartbeatMs: 200 });
    });
    after(async () => {
      await h.close();
      await echo.close();
    });

    it('terminates a browser that does not answer pings after about two intervals', LIMIT, async () => {
      const ws = await openClient(h.url, [], { autoPong: false });
      let pings = 0;
      ws.on('ping', () => pings++);
      const end = await collect(ws);
      assert.equal(end.code, 1006, 'terminated: no close frame');
      assert.ok(pings >= 1, 'it was pinged before being dropped');
      await h.relay.idle();
      const line = linesOf(h.logs, 'session end').at(-1)!;
      assert.equal(logFields(line).code, '1006');
      assert.equal(logFields(line).reason, 'no pong from browser');
    });

    it('keeps a browser that answers pings connected', LIMIT, async () => {
      const ws = await openClient(h.url);
      let pings = 0;
      await new Promise<void>((resolve) => {
        ws.on('ping', () => {
          if (++pings === 5) resolve();
        });
        ws.once('close', () => resolve());
      });
      assert.equal(ws.readyState, ws.OPEN, `closed after ${pings} pings`);
      ws.send(Buffer.from('still here'));
      assert.equal(String(await receiveBytes(ws, 10)), 'still here');
      ws.close();
      await whenClosed(ws);
    });

    it('keeps a browser connected while the relay holds it back for a slow target', LIMIT, async (t) => {
      // The relay stops reading the browser (so it cannot see pongs) when the target is slow;
      // that silence is the relay's doing and must not count against the browser.
      const stalled = await startStalled();
      t.after(() => stalled.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: stalled.port }, { heartbeatMs: 200 });
      const ws = await openClient(r.url);
      const received = collect(ws);
      const data = randomBytes(prng(9), 8 * MiB);
      for (let i = 0; i < data.length; i += 64 * KiB) ws.send(data.subarray(i, i + 64 * KiB));
      const socket = await stalled.connections.next();
      let pings = 0;
      await new Promise<void>((resolve) => {
        ws.on('ping', () => {
          if (++pings === 4) resolve();
        });
        ws.once('close', () => resolve());
      });
      assert.equal(ws.readyState, ws.OPEN, `closed after ${pings} pings while the target was stalled`);
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise<void>((resolve) => socket.once('end', resolve));
      socket.resume();
      await waitFor('all bytes at the target', () => chunks.reduce((n, c) => n + c.length, 0) >= data.length);
      ws.close(1000);
      await ended;
      assert.equal(sha256(Buffer.concat(chunks)), sha256(data));
      assert.equal((await received).code, 1000);
    });
  });

  describe('#close()', () => {
    it('closes open sessions with 1001 and refuses new upgrades with HTTP 503', LIMIT, async (t) => {
      const echo = await startEcho();
      t.after(() => echo.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: echo.port });
      const clients = await Promise.all([openClient(h.url), openClient(h.url)]);
      const ends = clients.map((ws) => collect(ws));
      await waitFor('both sessions', () => h.relay.stats().sessionsOpen === 2);
      const closing = h.relay.close();
      const during = await rawRequest(h.port, handshake());
      await during.ended;
      assert.equal(during.response.statusLine, 'HTTP/1.1 503 Service Unavailable');
      assert.equal(during.response.headers['connection'], 'close');
      assert.equal(during.response.body, 'relay is shutting down\n');
      for (const end of await Promise.all(ends)) {
        assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1001, reason: 'server shutting down' });
      }
      await closing;
      assert.equal(h.relay.stats().sessionsOpen, 0);
      const afterwards = await rawRequest(h.port, handshake());
      await afterwards.ended;
      assert.equal(afterwards.response.status, 503);
    });
  });

  describe('#closeSessions()', () => {
    it('closes the selected sessions with the given code and reason, after the bytes already sent', LIMIT, async (t) => {
      const echo = await startEcho();
      t.after(() => echo.close());
      const h = await relayFor(t, { host: '127.0.0.1', port: echo.port });
      const a = await openClient(h.url);
      const b = await openClient(h.url);
      const endA = collect(a);
      a.send(Buffer.from('last words'));
      await receiveBytes(a, 10);
      await waitFor('both sessions', () => h.relay.stats().sessionsOpen === 2);
      const first = Math.min(...h.relay.sessionInfo().map((s) => s.id));
      assert.equal(h.relay.closeSessions((s) => s.id === first, 'target-changed', 'target changed'), 1);
      const end = await endA;
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: 4000, reason: 'target changed' });
      assert.equal(String(end.data), 'last words');
      assert.equal(b.readyState, b.OPEN, 'the other session is untouched');
      b.close();
      await whenClosed(b);
    });
  });
});
