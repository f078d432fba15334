/**
 * Black-box tests of what the relay carries: exact bytes both ways as binary messages, text and
 * oversized messages refused with the right close codes, every WebSocket length encoding,
 * fragmentation, masking, ping/pong, and seeded soaks with sequence numbers and checksums.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { relayFor, startRelay, type RelayHarness } from '../helpers/relay-harness.js';
import { recordReliability } from '../helpers/reliability.js';
import { echoSoak } from '../helpers/soak.js';
import { FrameSource, FrameVerifier, prng, randomBytes } from '../helpers/stream.js';
import { startDuplex, startEcho, startSink, startTarget, type TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import {
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  closePayload,
  collect,
  decodeFrameHeader,
  encodeWsFrame,
  handshake,
  openClient,
  parseClose,
  rawRequest,
  receiveBytes,
  sendAll,
  whenClosed,
} from '../helpers/ws-client.js';

const KiB = 1024;
/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('Relay data', () => {
  let echo: TcpTarget<net.Socket>;
  let h: RelayHarness;

  before(async () => {
    echo = await startEcho();
    h = await startRelay({ host: '127.0.0.1', port: echo.port });
  });
  after(async () => {
    await h.close();
    await echo.close();
  });

  it('carries bytes exactly in both directions, as binary messages', LIMIT, async (t) => {
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const up = Buffer.concat([every, randomBytes(prng(11), 100_000), every]);
    const down = Buffer.concat([every.reverse(), randomBytes(prng(12), 150_000)]);
    // The target sends at once, and closes once it has everything the browser sends.
    const target = await startTarget((socket) => {
      const chunks: Buffer[] = [];
      let n = 0;
      socket.write(down);
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        if (n >= up.length) socket.end();
      });
      return { got: new Promise<Buffer>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks)))) };
    });
    t.after(() => target.close());
    const r = await relayFor(t, { host: '127.0.0.1', port: target.port });
    const ws = await openClient(r.url);
    const received = collect(ws);
    for (let i = 0; i < up.length; i += 7000) ws.send(up.subarray(i, i + 7000));
    const conn = await target.connections.next();
    const got = await conn.got;
    const end = await received;
    assert.ok(got.equals(up), 'the target received exactly what the browser sent');
    assert.ok(end.data.equals(down), 'the browser received exactly what the target sent');
    assert.equal(end.textMessages, 0, 'only binary messages');
    assert.ok(end.messages > 0);
    assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1000, reason: 'target closed' });
  });

  it('closes with 1003 on a text message and passes none of it to the target', LIMIT, async (t) => {
    const sink = await startSink(true);
    t.after(() => sink.close());
    const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
    const ws = await openClient(r.url);
    const received = collect(ws);
    ws.send(Buffer.from('before'));
    ws.send('this is text');
    const conn = await sink.connections.next();
    // A relay that passed the text on would not close: fail on the leak rather than wait.
    const leaked = new Promise<never>((_, reject) => {
      const poll = setInterval(() => {
        if (conn.bytes > 'before'.length) reject(new Error(`the target received ${conn.bytes} bytes, text included`));
      }, 20);
      void received.finally(() => clearInterval(poll));
    });
    const end = await Promise.race([received, leaked]);
    assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1003, reason: 'text frames are not supported' });
    const result = await conn.done;
    assert.equal(String(result.data), 'before');
    assert.equal(result.ended, true, 'the target got a FIN');
  });

  describe('maxPayload', () => {
    it('closes with 1009 on a browser message one byte over 64 KiB (the default)', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      assert.equal(r.relay.options.maxPayload, 64 * KiB);
      const ws = await openClient(r.url);
      const received = collect(ws);
      ws.send(Buffer.from('ok'));
      ws.send(Buffer.alloc(64 * KiB + 1, 1));
      const end = await received;
      assert.equal(end.code, 1009);
      const result = await (await sink.connections.next()).done;
      assert.equal(String(result.data), 'ok', 'none of the oversized message reached the target');
    });

    it('passes a message of exactly 64 KiB', LIMIT, async () => {
      const ws = await openClient(h.url);
      try {
        const payload = randomBytes(prng(64), 64 * KiB);
        ws.send(payload);
        assert.deepEqual(await receiveBytes(ws, payload.length), payload);
        assert.equal(ws.readyState, ws.OPEN);
      } finally {
        ws.close();
        await whenClosed(ws);
      }
    });

    it('enforces a configured maxPayload', LIMIT, async (t) => {
      const r = await relayFor(t, { host: '127.0.0.1', port: echo.port }, { maxPayload: 1000 });
      const ws = await openClient(r.url);
      const received = collect(ws);
      ws.send(Buffer.alloc(1000, 2));
      await receiveBytes(ws, 1000);
      ws.send(Buffer.alloc(1001, 3));
      const end = await received;
      assert.equal(end.code, 1009);
      assert.deepEqual(end.data, Buffer.alloc(1000, 2));
    });
  });

  describe('framing', () => {
    it('accepts 7-bit, 16-bit and 64-bit frame lengths (0, 125, 126, 65535, 65536 bytes)', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const { socket, response, frames } = await rawRequest(r.port, handshake());
      assert.equal(response.status, 101);
      const rand = prng(7);
      const payloads = [0, 125, 126, 65535, 65536].map((n) => randomBytes(rand, n));
      for (const p of payloads) socket.write(encodeWsFrame(OP_BINARY, p));
      socket.write(encodeWsFrame(OP_CLOSE, closePayload(1000)));
      const { frame } = await frames.until(OP_CLOSE);
      assert.equal(parseClose(frame.payload).code, 1000);
      socket.destroy();
      const result = await (await sink.connections.next()).done;
      assert.deepEqual(result.data, Buffer.concat(payloads));
    });

    it('closes with 1002 on an unmasked frame from the browser', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const { socket, frames } = await rawRequest(r.port, handshake());
      socket.write(encodeWsFrame(OP_BINARY, Buffer.from('masked')));
      socket.write(encodeWsFrame(OP_BINARY, Buffer.from('unmasked'), { mask: false }));
      const { frame } = await frames.until(OP_CLOSE);
      assert.equal(parseClose(frame.payload).code, 1002);
      socket.destroy();
      const result = await (await sink.connections.next()).done;
      assert.equal(String(result.data), 'masked');
    });

    it('reassembles fragmented binary messages and delivers them in order', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const ws = await openClient(r.url);
      const closed = whenClosed(ws);
      const parts = ['A1-', 'A2-', 'A3|', 'B|', 'C1-', 'C2|'].map((s) => Buffer.from(s));
      ws.send(parts[0]!, { binary: true, fin: false });
      ws.send(parts[1]!, { fin: false });
      ws.send(parts[2]!, { fin: true });
      ws.send(parts[3]!, { binary: true });
      ws.send(parts[4]!, { binary: true, fin: false });
      ws.send(Buffer.alloc(0), { fin: false });
      ws.send(parts[5]!, { fin: true });
      ws.close(1000);
      await closed;
      const result = await (await sink.connections.next()).done;
      assert.equal(String(result.data), 'A1-A2-A3|B|C1-C2|');
    });

    it('answers a ping sent between fragments and still reassembles the message', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const { socket, frames } = await rawRequest(r.port, handshake());
      socket.write(encodeWsFrame(OP_BINARY, Buffer.from('frag1,'), { fin: false }));
      socket.write(encodeWsFrame(OP_PING, Buffer.from('in between')));
      socket.write(encodeWsFrame(OP_CONTINUATION, Buffer.from('frag2,'), { fin: false }));
      socket.write(encodeWsFrame(OP_CONTINUATION, Buffer.from('frag3'), { fin: true }));
      const pong = await frames.next();
      assert.equal(pong.opcode, OP_PONG);
      assert.equal(String(pong.payload), 'in between');
      socket.write(encodeWsFrame(OP_CLOSE, closePayload(1000)));
      await frames.until(OP_CLOSE);
      socket.destroy();
      const result = await (await sink.connections.next()).done;
      assert.equal(String(result.data), 'frag1,frag2,frag3');
    });

    it('closes with 1002 on a text fragment continued by a binary frame', LIMIT, async () => {
      const { socket, frames } = await rawRequest(h.port, handshake());
      try {
        socket.write(encodeWsFrame(OP_TEXT, Buffer.from('a'), { fin: false }));
        socket.write(encodeWsFrame(OP_BINARY, Buffer.from('b')));
        const { frame } = await frames.until(OP_CLOSE);
        assert.equal(parseClose(frame.payload).code, 1002);
      } finally {
        socket.destroy();
      }
    });

    it('passes empty binary messages without closing', LIMIT, async (t) => {
      const sink = await startSink(true);
      t.after(() => sink.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: sink.port });
      const ws = await openClient(r.url);
      const closed = whenClosed(ws);
      ws.send(Buffer.alloc(0));
      ws.send(Buffer.from('x'));
      ws.send(Buffer.alloc(0));
      ws.send(Buffer.from('y'));
      ws.close(1000, 'done');
      assert.deepEqual(await closed, { code: 1000, reason: 'done' });
      const result = await (await sink.connections.next()).done;
      assert.equal(String(result.data), 'xy');
    });
  });

  describe('frames to the browser', () => {
    it('sends what the target sends as unmasked binary frames with the shortest length form, small and large reads mixed, in order', LIMIT, async (t) => {
      const target = await startTarget((socket) => socket);
      t.after(() => target.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: target.port });
      const { socket } = await rawRequest(r.port, handshake());
      const raw: Buffer[] = [];
      let have = 0;
      let want = 0;
      let wake: (() => void) | undefined;
      socket.on('data', (c: Buffer) => {
        raw.push(c);
        have += c.length;
        if (wake && have >= want) wake();
      });
      const server = await target.connections.next();
      const rand = prng(21);
      // Around the relay's own framing of small reads (up to 4 KiB) and the 7/16/64-bit lengths.
      const sizes = [1, 125, 126, 127, 4095, 4096, 4097, 2, 65535, 65536, 70_000, 3, 0x3ff];
      const sent: Buffer[] = [];
      for (const n of sizes) {
        const chunk = randomBytes(rand, n);
        sent.push(chunk);
        // One target write at a time, each once the previous one has arrived in full (frame
        // headers included: at least its payload more).
        want = have + n;
        const arrived = new Promise<void>((resolve) => (wake = resolve));
        server.write(chunk);
        await arrived;
      }
      await waitFor('all frames', () => {
        const all = Buffer.concat(raw);
        let at = 0;
        let payload = 0;
        for (;;) {
          const h = decodeFrameHeader(all, at);
          if (!h || all.length - at < h.size + h.length) break;
          payload += h.length;
          at += h.size + h.length;
        }
        return payload === sent.reduce((a, b) => a + b.length, 0) && at === all.length;
      });
      const all = Buffer.concat(raw);
      const payloads: Buffer[] = [];
      for (let at = 0; at < all.length; ) {
        const h = decodeFrameHeader(all, at)!;
        assert.deepEqual({ fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked: h.masked }, { fin: true, rsv: 0, opcode: OP_BINARY, masked: false }, `frame at ${at}`);
        assert.equal(h.size, h.length < 126 ? 2 : h.length < 65536 ? 4 : 10, `shortest length form for ${h.length} bytes`);
        payloads.push(all.subarray(at + h.size, at + h.size + h.length));
        at += h.size + h.length;
      }
      assert.ok(Buffer.concat(payloads).equals(Buffer.concat(sent)), 'the bytes arrive exactly and in order');
      socket.destroy();
    });
  });

  describe('ping', () => {
    for (const payload of [Buffer.alloc(0), Buffer.from('ping payload \x00\xff'), randomBytes(prng(125), 125)]) {
      it(`answers a ping with a pong carrying the same ${payload.length}-byte payload`, LIMIT, async () => {
        const ws = await openClient(h.url);
        try {
          const pong = new Promise<Buffer>((resolve) => ws.once('pong', resolve));
          ws.ping(payload);
          assert.deepEqual(await pong, payload);
        } finally {
          ws.close();
          await whenClosed(ws);
        }
      });
    }
  });

  describe('soak', () => {
    it('keeps 400 random-size frames byte-exact and in order through an echo target (seed 1)', LIMIT, async () => {
      await echoSoak(h.url, 1, 400);
    });

    it('keeps 300 frames each way byte-exact with an independent source/sink target, both directions at once (seeds 2, 1000)', LIMIT, async (t) => {
      const count = 300;
      const duplex = await startDuplex(1000, count, 64 * KiB);
      t.after(() => duplex.close());
      const r = await relayFor(t, { host: '127.0.0.1', port: duplex.port });
      const ws = await openClient(r.url);
      const down = new FrameVerifier(64 * KiB);
      const downHash = createHash('sha256');
      const allDown = new Promise<void>((resolve, reject) => {
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          if (!isBinary) reject(new Error('text message from the relay'));
          downHash.update(data);
          down.push(data);
          if (down.frames >= count || down.errors.length) resolve();
        });
        ws.once('close', (code: number) => reject(new Error(`closed with ${code} after ${down.frames} frames`)));
      });
      const source = new FrameSource(2, count);
      const [conn] = await Promise.all([duplex.connections.next(), sendAll(ws, () => source.next())]);
      await allDown;
      await conn.sent;
      await waitFor('all frames at the target', () => conn.verifier.frames >= count || conn.verifier.errors.length > 0);
      const closed = whenClosed(ws);
      ws.close(1000);
      await closed;
      await conn.ended;
      assert.deepEqual(down.errors, [], 'frames towards the browser');
      assert.deepEqual(conn.verifier.errors, [], 'frames towards the target');
      assert.equal(down.frames, count);
      assert.equal(down.bytes, conn.source.bytes);
      assert.equal(conn.verifier.frames, count);
      assert.equal(conn.verifier.bytes, source.bytes);
      recordReliability({
        table: 'load',
        name: 'both directions at full speed at once',
        tried: `${count} checksummed frames of 12 B–64 KiB each way simultaneously, independent streams (seeds 2, 1000)`,
        outcome: `${((source.bytes + conn.source.bytes) / 1024 / 1024).toFixed(1)} MiB, every frame intact and in order both ways`,
        bytesLost: 0,
      });
    });
  });
});
