/**
 * Black-box tests of the relay's `requireRfb` option (easy-novnc's "is it really VNC?" check):
 * browser bytes are held until the target greets with `RFB xxx.yyy\n`; anything else, or silence,
 * closes with 4002 (not-vnc) and nothing from the browser reaches the target.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, it } from 'node:test';
import { startRelay } from '../helpers/relay-harness.js';
import { startTarget, type TcpTarget } from '../helpers/targets.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { collect, openClient, receiveBytes } from '../helpers/ws-client.js';
import { FAILURES } from '../../src/common/failures.js';

interface Scripted {
  socket: net.Socket;
  /** Bytes from the browser, as received. */
  received: () => Buffer;
}

/** A target that records what it receives and lets the test write to it. */
function startScripted(): Promise<TcpTarget<Scripted>> {
  return startTarget<Scripted>((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    return { socket, received: () => Buffer.concat(chunks) };
  });
}

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('Relay with requireRfb', () => {
  it('holds browser bytes until the target greets, then relays both ways', LIMIT, async (t) => {
    const target = await startScripted();
    t.after(() => target.close());
    const h = await startRelay({ host: '127.0.0.1', port: target.port }, { requireRfb: true });
    t.after(() => h.close());
    const ws = await openClient(h.url);
    ws.send(Buffer.from('RFB 003.008\n')); // the browser's answer, sent early
    const conn = await target.connections.next();
    await sleep(100); // time enough for the bytes to arrive, were they not held
    assert.equal(conn.received().length, 0, 'nothing reaches the target before its greeting');
    const greeting = receiveBytes(ws, 12);
    conn.socket.write('RFB 00');
    await sleep(20);
    conn.socket.write('3.008\n');
    assert.equal(String(await greeting), 'RFB 003.008\n', 'a split greeting arrives whole');
    await waitFor('the held bytes at the target', () => conn.received().length === 12);
    assert.equal(String(conn.received()), 'RFB 003.008\n');
    const more = receiveBytes(ws, 4);
    conn.socket.write(Buffer.from([0, 0, 0, 1]));
    assert.deepEqual(await more, Buffer.from([0, 0, 0, 1]));
    ws.close();
  });

  it('closes with 4002 "not a VNC server" when the target greets with something else, sending it nothing', LIMIT, async (t) => {
    const target = await startScripted();
    t.after(() => target.close());
    const h = await startRelay({ host: '127.0.0.1', port: target.port }, { requireRfb: true });
    t.after(() => h.close());
    const ws = await openClient(h.url);
    const received = collect(ws);
    ws.send(Buffer.from('secret'));
    const conn = await target.connections.next();
    const closed = new Promise<void>((resolve) => conn.socket.once('close', () => resolve()));
    conn.socket.write('SSH-2.0-OpenSSH_9.2\r\n');
    const end = await received;
    await closed;
    assert.deepEqual(
      { code: end.code, reason: end.reason },
      { code: FAILURES['not-vnc'].code, reason: `not a VNC server: 127.0.0.1:${target.port} sent no RFB greeting` },
    );
    assert.equal(end.data.length, 0, 'the browser got none of the foreign greeting');
    assert.equal(conn.received().length, 0, 'the target got none of the browser bytes');
  });

  it('closes with 4002 "not a VNC server" when the target stays silent for connectTimeoutMs', LIMIT, async (t) => {
    const target = await startScripted();
    t.after(() => target.close());
    const h = await startRelay({ host: '127.0.0.1', port: target.port }, { requireRfb: true, connectTimeoutMs: 300 });
    t.after(() => h.close());
    const ws = await openClient(h.url);
    const received = collect(ws);
    ws.send(Buffer.from('secret'));
    const conn = await target.connections.next();
    const end = await received;
    assert.deepEqual(
      { code: end.code, reason: end.reason },
      { code: FAILURES['not-vnc'].code, reason: `not a VNC server: no RFB greeting from 127.0.0.1:${target.port}` },
    );
    assert.equal(conn.received().length, 0);
  });
});
