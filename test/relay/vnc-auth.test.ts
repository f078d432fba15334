/**
 * The relay's own RFB security handshake for targets with a stored VNC password: the browser
 * (here a test RFB client over the WebSocket, speaking as noVNC does) is greeted with 3.8 and
 * offered only None, whatever the server speaks; the password never crosses the WebSocket.
 * Real demo servers for 3.3/3.7/3.8 with VNC Authentication, scripted fake servers for the
 * variants, unsupported types, refusals, garbage and truncated handshakes.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { startDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { RFB_VERSIONS, type RfbVersion } from '../../src/rfb/protocol.js';
import { checkVncAuthResponse, vncAuthChallenge } from '../../src/rfb/vnc-auth.js';
import type { HandshakeOutcome } from '../../src/rfb/security-proxy.js';
import type { RelayTarget } from '../../src/relay/relay.js';
import { linesOf, startRelay, type RelayHarness } from '../helpers/relay-harness.js';
import { ByteReader, RfbClient, RfbError } from '../helpers/rfb-client.js';
import { startTarget, type TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { collect, openClient, receiveBytes } from '../helpers/ws-client.js';
import type { CloseEvent } from '../helpers/ws-client.js';
import { FAILURES, type FailureKind } from '../../src/common/failures.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };
const PASSWORD = 'pa55word';

async function demo(t: TestContext, version: RfbVersion, password?: string): Promise<DemoServer> {
  const server = await startDemoServer({
    host: '127.0.0.1',
    port: 0,
    fps: 0,
    version,
    name: `demo ${version}`,
    width: 480,
    height: 400,
    ...(password === undefined ? {} : { password }),
  });
  t.after(() => server.close());
  return server;
}

/** A relay whose every session goes to `port` with `password`; handshake outcomes are collected. */
async function relayWithPassword(
  t: TestContext,
  port: number,
  password: string | undefined,
  connectTimeoutMs = 5000,
): Promise<RelayHarness & { outcomes: HandshakeOutcome[] }> {
  const outcomes: HandshakeOutcome[] = [];
  const target: RelayTarget = { host: '127.0.0.1', port, id: 'hmi' };
  const h = await startRelay(
    target,
    { requireRfb: true, connectTimeoutMs, onHandshake: (_t, o) => outcomes.push(o) },
    { password },
  );
  t.after(() => h.close());
  return Object.assign(h, { outcomes });
}

/** Connects like noVNC (no password) and expects the handshake to fail; returns the error and close. */
async function expectRefusal(url: string): Promise<{ error: RfbError; close: CloseEvent }> {
  try {
    const c = await RfbClient.connectWebSocket(url);
    await c.close();
  } catch (err) {
    assert.ok(err instanceof RfbError, `an RFB failure, got ${String(err)}`);
    return { error: err, close: (err as RfbError & { close: CloseEvent }).close };
  }
  assert.fail('the handshake should have failed');
}

describe('relay-side VNC authentication against the demo server', () => {
  for (const version of RFB_VERSIONS) {
    it(`RFB ${version} server with a password: the browser gets 3.8 and None, and a working session`, LIMIT, async (t) => {
      const server = await demo(t, version, PASSWORD);
      const h = await relayWithPassword(t, server.port, PASSWORD);
      const client = await RfbClient.connectWebSocket(h.url);
      t.after(() => client.close());
      assert.equal(client.serverVersion, 'RFB 003.008\n', 'the browser always meets 3.8');
      assert.deepEqual(client.securityTypes, [1], 'and is offered only None');
      assert.deepEqual([client.width, client.height, client.name], [480, 400, `demo ${version}`]);
      client.requestUpdate(false);
      const update = await client.nextUpdate();
      assert.ok(update.rects.length > 0, 'framebuffer updates flow after the spliced handshake');
      assert.deepEqual(
        h.outcomes.map((o) => (o.ok ? [o.version, o.securityType] : o.failure.kind)),
        [[version, 2]],
        'the relay used VNC Authentication at the server’s own version',
      );
      assert.equal(
        h.logs.some((l) => l.includes(PASSWORD)),
        false,
        'the password appears in no log line',
      );
    });

    it(`RFB ${version} server, wrong stored password: "authentication failed" as RFB reason and close reason`, LIMIT, async (t) => {
      const server = await demo(t, version, PASSWORD);
      const h = await relayWithPassword(t, server.port, 'wrong');
      const { error, close } = await expectRefusal(h.url);
      const reason = `authentication failed: 127.0.0.1:${server.port} did not accept the VNC password stored in the settings`;
      assert.equal(error.message.startsWith(`connection refused: ${reason}`), true, error.message);
      assert.equal(close.code, FAILURES['login-rejected'].code);
      assert.ok(close.reason.startsWith(reason), close.reason);
      assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['auth']);
      const [line] = linesOf(h.logs, 'vnc handshake failed');
      assert.match(line ?? '', /kind=auth/);
      assert.equal(h.logs.some((l) => l.includes('wrong')), false, 'the password appears in no log line');
      await waitFor('no open session', () => h.relay.sessions.size === 0);
    });
  }

  it('a password stored for a server that asks for none: None is used and the session works', LIMIT, async (t) => {
    const server = await demo(t, '3.8');
    const h = await relayWithPassword(t, server.port, PASSWORD);
    const client = await RfbClient.connectWebSocket(h.url);
    t.after(() => client.close());
    assert.equal(client.name, 'demo 3.8');
    assert.deepEqual(h.outcomes.map((o) => o.ok && o.securityType), [1]);
  });

  it('without a stored password the server’s own authentication passes through to the browser', LIMIT, async (t) => {
    const server = await demo(t, '3.8', PASSWORD);
    const h = await relayWithPassword(t, server.port, undefined);
    const client = await RfbClient.connectWebSocket(h.url, { password: PASSWORD });
    t.after(() => client.close());
    assert.deepEqual(client.securityTypes, [2], 'the browser sees the server’s VNC Authentication');
    assert.equal(h.outcomes.length, 0);
  });
});

// ---- scripted servers ------------------------------------------------------------------------

interface Scripted {
  socket: net.Socket;
  reader: ByteReader;
  /** Everything the relay sent, once the connection closed. */
  received: Promise<Buffer>;
}

function scripted(t: TestContext): Promise<TcpTarget<Scripted>> {
  return startTarget<Scripted>((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const received = new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
    return { socket, reader: new ByteReader(socket), received };
  }).then((target) => {
    t.after(() => target.close());
    return target;
  });
}

/** Writes `bytes` one byte at a time (worst-case chunking). */
async function trickle(socket: net.Socket, bytes: Buffer): Promise<void> {
  for (const b of bytes) {
    socket.write(Buffer.from([b]));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const reason = (text: string): Buffer => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text)]);
const SERVER_INIT = Buffer.concat([
  Buffer.from([0, 8, 0, 4]), // 8x4
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]),
  reason('scripted'),
]);

describe('relay-side VNC authentication against scripted servers', () => {
  const variants: [greeting: string, reply: string, version: RfbVersion][] = [
    ['RFB 003.003\n', 'RFB 003.003\n', '3.3'],
    ['RFB 003.006\n', 'RFB 003.003\n', '3.3'], // UltraVNC
    ['RFB 003.007\n', 'RFB 003.007\n', '3.7'],
    ['RFB 003.008\n', 'RFB 003.008\n', '3.8'],
    ['RFB 003.889\n', 'RFB 003.008\n', '3.8'], // Apple Remote Desktop
    ['RFB 004.001\n', 'RFB 003.008\n', '3.8'], // RealVNC 4.6
    ['RFB 005.000\n', 'RFB 003.008\n', '3.8'], // RealVNC 5.3
  ];
  for (const [greeting, reply, version] of variants) {
    it(`${JSON.stringify(greeting)}: answers ${JSON.stringify(reply)}, authenticates byte by byte, then relays`, LIMIT, async (t) => {
      const target = await scripted(t);
      const h = await relayWithPassword(t, target.port, PASSWORD);
      const connecting = RfbClient.connectWebSocket(h.url);
      const conn = await target.connections.next();
      await trickle(conn.socket, Buffer.from(greeting, 'latin1'));
      assert.equal((await conn.reader.read(12)).toString('latin1'), reply);
      if (version === '3.3') await trickle(conn.socket, u32(2));
      else {
        await trickle(conn.socket, Buffer.from([3, 16, 2, 1])); // Tight, VNC auth, None
        assert.deepEqual([...(await conn.reader.read(1))], [2], 'VNC Authentication is chosen');
      }
      const challenge = vncAuthChallenge();
      await trickle(conn.socket, challenge);
      assert.ok(checkVncAuthResponse(PASSWORD, challenge, await conn.reader.read(16)), 'the DES response is right');
      await trickle(conn.socket, u32(0));
      assert.deepEqual([...(await conn.reader.read(1))], [1], 'the browser’s ClientInit (shared) reaches the server');
      await trickle(conn.socket, SERVER_INIT);
      const client = await connecting;
      t.after(() => client.close());
      assert.deepEqual([client.width, client.height, client.name], [8, 4, 'scripted']);
      // After the handshake messages pass unchanged both ways (SetEncodings [raw] came first; a
      // target from no configuration is operated: a key event passes too).
      assert.deepEqual([...(await conn.reader.read(8))], [2, 0, 0, 1, 0, 0, 0, 0]);
      const key = Buffer.from([4, 1, 0, 0, 0, 0, 0xff, 0x0d]);
      client.sendRaw(key);
      assert.deepEqual(await conn.reader.read(8), key);
      conn.socket.write(Buffer.from([2])); // Bell
      await waitFor('the bell', () => client.bells === 1);
    });
  }

  it('a server offering only types the relay cannot do: "security type not supported", naming them', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const refusal = expectRefusal(h.url);
    const conn = await target.connections.next();
    conn.socket.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2, 18, 19])]));
    const { error, close } = await refusal;
    const text = `security type not supported: VNC server 127.0.0.1:${target.port} offers only TLS (18), VeNCrypt (19); the relay can do None or VNC Authentication`;
    assert.equal(error.reason, text);
    assert.deepEqual([close.code, close.reason.slice(0, 40)], [FAILURES['security-unsupported'].code, text.slice(0, 40)]);
    const sent = await conn.received;
    assert.deepEqual([...sent], [...Buffer.from('RFB 003.008\n'), 0], 'the server is told Invalid (0), nothing else');
    assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['unsupported']);
  });

  it('a 3.3 server imposing another type: "security type not supported"', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const refusal = expectRefusal(h.url);
    const conn = await target.connections.next();
    conn.socket.write(Buffer.concat([Buffer.from('RFB 003.003\n'), u32(16)]));
    const { error } = await refusal;
    assert.equal(error.reason, `security type not supported: VNC server 127.0.0.1:${target.port} requires Tight (16)`);
  });

  for (const version of ['3.3', '3.8'] as const) {
    it(`a ${version} server refusing with a reason: the browser is told the server's reason`, LIMIT, async (t) => {
      const target = await scripted(t);
      const h = await relayWithPassword(t, target.port, PASSWORD);
      const refusal = expectRefusal(h.url);
      const conn = await target.connections.next();
      const refuse = version === '3.3' ? u32(0) : Buffer.from([0]);
      conn.socket.write(Buffer.concat([Buffer.from(`RFB 003.00${version.at(-1)}\n`), refuse, reason('Maximum number of clients reached')]));
      const { error, close } = await refusal;
      const text = `VNC server 127.0.0.1:${target.port} refused the connection: Maximum number of clients reached`;
      assert.equal(error.reason, text);
      assert.deepEqual([close.code, close.reason], [FAILURES['server-refused'].code, text]);
      assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['refused']);
    });

    it(`a ${version} server refusing with "Too many security failures": server-lockout (4009), said as such`, LIMIT, async (t) => {
      const target = await scripted(t);
      const h = await relayWithPassword(t, target.port, PASSWORD);
      const refusal = expectRefusal(h.url);
      const conn = await target.connections.next();
      const refuse = version === '3.3' ? u32(0) : Buffer.from([0]);
      conn.socket.write(Buffer.concat([Buffer.from(`RFB 003.00${version.at(-1)}\n`), refuse, reason('Too many security failures')]));
      const { error, close } = await refusal;
      const text = `VNC server 127.0.0.1:${target.port} locks this controller out for now: Too many security failures`;
      assert.equal(error.reason, text);
      assert.deepEqual([close.code, close.reason], [FAILURES['server-lockout'].code, text]);
      assert.equal(close.code, 4009);
      assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['lockout']);
    });
  }

  it('a 3.8 server rejecting the password with a reason: the reason is passed on, shortened', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const refusal = expectRefusal(h.url);
    const conn = await target.connections.next();
    conn.socket.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2])]));
    await conn.reader.read(12 + 1);
    conn.socket.write(vncAuthChallenge());
    await conn.reader.read(16);
    conn.socket.write(Buffer.concat([u32(1), reason('Authentication failure')]));
    const { error } = await refusal;
    assert.equal(
      error.reason,
      `authentication failed: 127.0.0.1:${target.port} did not accept the VNC password stored in the settings (server: Authentication failure)`,
    );
  });

  it('a 3.7 server that just closes after the response: "authentication failed"', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const refusal = expectRefusal(h.url);
    const conn = await target.connections.next();
    conn.socket.write(Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([1, 2])]));
    await conn.reader.read(12 + 1);
    conn.socket.write(vncAuthChallenge());
    await conn.reader.read(16);
    conn.socket.end();
    const { error, close } = await refusal;
    assert.match(error.reason ?? '', /^authentication failed: .* \(it closed the connection\)$/);
    assert.equal(close.code, FAILURES['login-rejected'].code);
    assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['auth']);
  });
});

describe('garbage and truncated handshakes (no crash, a clear close)', () => {
  /** Each case: what the server sends, then it closes (or stays silent); the failure kind and close reason expected. */
  const cases: { name: string; bytes: (port: number) => Buffer; close: boolean; kind: FailureKind; reason: (port: number) => RegExp }[] = [
    { name: 'an SSH banner', bytes: () => Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'), close: false, kind: 'not-vnc', reason: (p) => new RegExp(`^not a VNC server: 127.0.0.1:${p} sent no RFB greeting$`) },
    { name: 'half a greeting, then close', bytes: () => Buffer.from('RFB 003'), close: true, kind: 'not-vnc', reason: (p) => new RegExp(`^not a VNC server: 127.0.0.1:${p} closed without an RFB greeting$`) },
    { name: 'an unknown version', bytes: () => Buffer.from('RFB 002.000\n'), close: false, kind: 'handshake-failed', reason: (p) => new RegExp(`^VNC server 127.0.0.1:${p} speaks an unsupported RFB version \\(RFB 002.000\\)$`) },
    { name: 'a greeting, then close', bytes: () => Buffer.from('RFB 003.008\n'), close: true, kind: 'handshake-failed', reason: () => /^VNC handshake with .* failed: the server closed the connection$/ },
    { name: 'a type list cut short', bytes: () => Buffer.from('RFB 003.008\n\x05\x02'), close: true, kind: 'handshake-failed', reason: () => /^VNC handshake with .* failed: the server closed the connection$/ },
    { name: 'a refusal with a 4 GiB reason', bytes: () => Buffer.concat([Buffer.from('RFB 003.008\n\x00'), u32(0xffffffff)]), close: false, kind: 'handshake-failed', reason: () => /^VNC handshake with .* failed: invalid failure reason$/ },
    { name: 'a refusal reason cut short', bytes: () => Buffer.concat([Buffer.from('RFB 003.008\n\x00'), u32(100), Buffer.from('Too')]), close: true, kind: 'handshake-failed', reason: () => /^VNC handshake with .* failed: the server closed the connection$/ },
    { name: 'a challenge cut short', bytes: () => Buffer.from('RFB 003.008\n\x01\x02' + '12345678'), close: true, kind: 'handshake-failed', reason: () => /^VNC handshake with .* failed: the server closed the connection$/ },
    { name: 'silence after the greeting', bytes: () => Buffer.from('RFB 003.008\n'), close: false, kind: 'handshake-timeout', reason: () => /^VNC handshake with .* timed out$/ },
    { name: 'binary noise', bytes: () => Buffer.from([0, 0xff, 0x13, 0x37, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]), close: false, kind: 'not-vnc', reason: () => /^not a VNC server/ },
  ];
  for (const c of cases) {
    it(`${c.name}`, LIMIT, async (t) => {
      const target = await scripted(t);
      const h = await relayWithPassword(t, target.port, PASSWORD, 500);
      const ws = await openClient(h.url);
      const received = collect(ws);
      const conn = await target.connections.next();
      conn.socket.write(c.bytes(target.port));
      if (c.close) conn.socket.end();
      const end = await received;
      assert.equal(end.code, FAILURES[c.kind].code);
      assert.match(end.reason, c.reason(target.port));
      await waitFor('no open session', () => h.relay.sessions.size === 0);
      assert.equal(h.logs.some((l) => l.includes(PASSWORD)), false);
    });
  }

  it('a browser that answers with garbage instead of a version: closed, the server gets nothing of it', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const ws = await openClient(h.url);
    const received = collect(ws);
    const greeting = receiveBytes(ws, 12);
    const conn = await target.connections.next();
    conn.socket.write('RFB 003.008\n');
    assert.equal(String(await greeting), 'RFB 003.008\n');
    ws.send(Buffer.from('GET / HTTP/1.1\r\n'));
    const end = await received;
    assert.deepEqual([end.code, end.reason], [FAILURES['viewer-handshake'].code, 'the viewer sent an invalid RFB version']);
    const sent = await conn.received;
    assert.equal(sent.toString('latin1'), 'RFB 003.008\n', 'the server got only the relay’s own version');
  });

  it('a browser that closes mid-handshake: the server connection is dropped at once', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const ws = await openClient(h.url);
    const greeting = receiveBytes(ws, 12);
    const conn = await target.connections.next();
    conn.socket.write('RFB 003.008\n');
    await greeting;
    ws.close(1000);
    await conn.received; // resolves only when the relay drops the server socket
    await waitFor('no open session', () => h.relay.sessions.size === 0);
  });

  it('a browser that leaves while the relay waits for the SecurityResult is not counted as a rejected password', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const ws = await openClient(h.url);
    const greeting = receiveBytes(ws, 12);
    const conn = await target.connections.next();
    conn.socket.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2]), vncAuthChallenge()]));
    await greeting;
    await conn.reader.read(12 + 1 + 16); // version, choice, response: now waiting for the result
    ws.close(1000);
    await conn.received;
    await waitFor('no open session', () => h.relay.sessions.size === 0);
    assert.deepEqual(h.outcomes.map((o) => !o.ok && o.failure.kind), ['protocol']);
    assert.equal(linesOf(h.logs, 'vnc handshake failed').some((l) => /kind=auth/.test(l)), false);
  });

  it('a browser that floods the relay during the handshake is closed, not buffered', LIMIT, async (t) => {
    const target = await scripted(t);
    const h = await relayWithPassword(t, target.port, PASSWORD);
    const ws = await openClient(h.url);
    const received = collect(ws);
    const greeting = receiveBytes(ws, 12);
    const conn = await target.connections.next();
    conn.socket.write('RFB 003.008\n');
    await greeting;
    ws.send(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.alloc(60_000)]));
    const end = await received;
    assert.deepEqual([end.code, end.reason], [FAILURES['viewer-handshake'].code, 'the viewer sent data out of turn']);
  });

  it('a browser that sends its whole handshake and ClientInit in one message', LIMIT, async (t) => {
    const server = await demo(t, '3.7', PASSWORD);
    const h = await relayWithPassword(t, server.port, PASSWORD);
    const ws = await openClient(h.url);
    const head = receiveBytes(ws, 12 + 2 + 4 + 24 + Buffer.byteLength('demo 3.7'));
    // Version, choice None, ClientInit: all before the relay has offered anything.
    ws.send(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1])]));
    const got = await head;
    assert.equal(got.subarray(0, 12).toString(), 'RFB 003.008\n');
    assert.deepEqual([...got.subarray(12, 18)], [1, 1, 0, 0, 0, 0], 'offer [None], SecurityResult OK');
    assert.deepEqual([got.readUInt16BE(18), got.readUInt16BE(20)], [480, 400], 'ServerInit follows');
    assert.equal(got.subarray(18 + 24).toString(), 'demo 3.7');
    ws.close();
  });
});
