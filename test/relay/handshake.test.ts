/**
 * Black-box tests of the relay's WebSocket handshake, over raw sockets: what is accepted, what gets
 * a real HTTP error response, and which subprotocol is echoed.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startRelay, type RelayHarness } from '../helpers/relay-harness.js';
import { startEcho, type TcpTarget } from '../helpers/targets.js';
import {
  OP_BINARY,
  OP_CLOSE,
  SAMPLE_ACCEPT,
  closePayload,
  encodeWsFrame,
  handshake,
  openClient,
  parseClose,
  rawRequest,
  receiveBytes,
  whenClosed,
} from '../helpers/ws-client.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('Relay handshake', () => {
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

  it('accepts version 13 with a 101 carrying the Sec-WebSocket-Accept of a known key (RFC 6455 §1.3)', LIMIT, async () => {
    const { socket, response, frames } = await rawRequest(h.port, handshake());
    try {
      assert.equal(response.statusLine, 'HTTP/1.1 101 Switching Protocols');
      assert.equal(response.headers['upgrade'], 'websocket');
      assert.equal(response.headers['connection'], 'Upgrade');
      assert.equal(response.headers['sec-websocket-accept'], SAMPLE_ACCEPT);
      assert.equal(response.headers['sec-websocket-extensions'], undefined, 'no compression is negotiated');
      // The connection is live: a masked binary frame comes back (echo target) as an unmasked one.
      const payload = Buffer.from('hello through a raw socket');
      socket.write(encodeWsFrame(OP_BINARY, payload));
      const frame = await frames.next();
      assert.deepEqual({ opcode: frame.opcode, fin: frame.fin, masked: frame.masked }, { opcode: OP_BINARY, fin: true, masked: false });
      assert.deepEqual(frame.payload, payload);
      socket.write(encodeWsFrame(OP_CLOSE, closePayload(1000, 'bye')));
      const { frame: close } = await frames.until(OP_CLOSE);
      assert.deepEqual(parseClose(close.payload), { code: 1000, reason: 'bye' });
    } finally {
      socket.destroy();
    }
  });

  const badHandshakes: { name: string; headers: Record<string, string | undefined>; body: string }[] = [
    { name: 'no Sec-WebSocket-Version', headers: { 'Sec-WebSocket-Version': undefined }, body: 'Missing or invalid Sec-WebSocket-Version header' },
    { name: 'an empty Sec-WebSocket-Version', headers: { 'Sec-WebSocket-Version': '' }, body: 'Missing or invalid Sec-WebSocket-Version header' },
    { name: 'Sec-WebSocket-Version 5', headers: { 'Sec-WebSocket-Version': '5' }, body: 'Missing or invalid Sec-WebSocket-Version header' },
    { name: 'Sec-WebSocket-Version 20', headers: { 'Sec-WebSocket-Version': '20' }, body: 'Missing or invalid Sec-WebSocket-Version header' },
    { name: 'a wrong Upgrade header (h2c)', headers: { Upgrade: 'h2c' }, body: 'Invalid Upgrade header' },
    { name: 'no Sec-WebSocket-Key', headers: { 'Sec-WebSocket-Key': undefined }, body: 'Missing or invalid Sec-WebSocket-Key header' },
    { name: 'a malformed Sec-WebSocket-Key', headers: { 'Sec-WebSocket-Key': 'not-a-key' }, body: 'Missing or invalid Sec-WebSocket-Key header' },
  ];

  for (const bad of badHandshakes) {
    it(`answers a handshake with ${bad.name} with HTTP 400 and hangs up`, LIMIT, async () => {
      const before = h.relay.stats().sessionsTotal;
      const { response, ended } = await rawRequest(h.port, handshake(bad.headers));
      await ended; // the server closed the connection after answering
      assert.equal(response.statusLine, 'HTTP/1.1 400 Bad Request');
      assert.equal(response.headers['connection'], 'close');
      assert.equal(response.body, bad.body);
      if (bad.body.includes('Version')) assert.equal(response.headers['sec-websocket-version'], '13, 8');
      assert.equal(h.relay.stats().sessionsTotal, before, 'no session was started');
    });
  }

  it('answers a GET with WebSocket headers but no Upgrade header with 426 Upgrade Required', LIMIT, async () => {
    // Without an Upgrade header this is not an upgrade request at all: the HTTP handler answers it.
    const { response, ended } = await rawRequest(h.port, handshake({ Upgrade: undefined }));
    await ended;
    assert.equal(response.statusLine, 'HTTP/1.1 426 Upgrade Required');
    assert.equal(response.headers['upgrade'], 'websocket');
    assert.equal(response.headers['connection'], 'close');
  });

  it('answers an upgrade without "Connection: Upgrade" with 426 Upgrade Required', LIMIT, async () => {
    const { response, ended } = await rawRequest(h.port, handshake({ Connection: undefined }));
    await ended;
    assert.equal(response.statusLine, 'HTTP/1.1 426 Upgrade Required');
  });

  it('answers an upgrade with a method other than GET with 405', LIMIT, async () => {
    const req = handshake().replace(/^GET /, 'POST ');
    const { response, ended } = await rawRequest(h.port, req);
    await ended;
    assert.equal(response.statusLine, 'HTTP/1.1 405 Method Not Allowed');
    assert.equal(response.body, 'Invalid HTTP method');
  });

  it('answers bytes that are not HTTP with 400 and hangs up', LIMIT, async () => {
    const { response, ended } = await rawRequest(h.port, 'hello relay\r\n\r\n');
    await ended;
    assert.equal(response.statusLine, 'HTTP/1.1 400 Bad Request');
  });

  describe('subprotocols', () => {
    const cases: { offered: string | undefined; chosen: string | undefined }[] = [
      { offered: undefined, chosen: undefined },
      { offered: 'binary', chosen: 'binary' },
      { offered: 'foo, binary', chosen: 'binary' },
      { offered: 'binary, foo', chosen: 'binary' },
      // Only `binary` is ever echoed (a token-carrying subprotocol must never come back).
      { offered: 'foo', chosen: undefined },
      { offered: 'foo, bar', chosen: undefined },
      { offered: 'ctrlx-novnc.bearer.abc', chosen: undefined },
    ];
    for (const { offered, chosen } of cases) {
      const title =
        offered === undefined
          ? 'sends no Sec-WebSocket-Protocol when none is offered'
          : `answers "${offered}" with ${chosen}`;
      it(title, LIMIT, async () => {
        const { socket, response } = await rawRequest(h.port, handshake({ 'Sec-WebSocket-Protocol': offered }));
        socket.destroy();
        assert.equal(response.status, 101);
        assert.equal(response.headers['sec-websocket-protocol'], chosen);
      });
    }

    for (const protocols of [[], ['binary'], ['foo', 'binary']]) {
      it(`relays data for a ws client offering [${protocols.join(', ')}]`, LIMIT, async () => {
        const ws = await openClient(h.url, protocols);
        try {
          assert.equal(ws.protocol, protocols.includes('binary') ? 'binary' : '');
          const payload = Buffer.from(`protocols: ${protocols.join(',')}`);
          ws.send(payload);
          assert.deepEqual(await receiveBytes(ws, payload.length), payload);
        } finally {
          const closed = whenClosed(ws);
          ws.close();
          await closed;
        }
      });
    }
  });
});
