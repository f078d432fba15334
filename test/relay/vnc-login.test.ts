/**
 * The relay-side VNC login (src/relay/vnc-login.ts) without sockets: what it sends each way, when
 * it greets the browser, and how each end is reported to the session (through, or a failure with
 * its kind from the failure table), fed byte by byte as TCP and WebSocket may chunk.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VncLogin, type LoginFailure, type LoginPorts } from '../../src/relay/vnc-login.js';
import type { HandshakeOutcome } from '../../src/rfb/security-proxy.js';
import { lengthPrefixed, u32 } from '../../src/rfb/protocol.js';
import { vncAuthResponse } from '../../src/rfb/vnc-auth.js';

const CHALLENGE = Buffer.from('0123456789abcdef');
const V38 = Buffer.from('RFB 003.008\n');

/** A login whose ports record every call. */
function login(password = 'secret') {
  const seen = {
    toServer: [] as Buffer[],
    toBrowser: [] as Buffer[],
    greeted: 0,
    outcomes: [] as HandshakeOutcome[],
    serverFailed: [] as LoginFailure[],
    through: [] as { up: Buffer; down: Buffer | null }[],
    failed: [] as LoginFailure[],
  };
  const ports: LoginPorts = {
    toServer: (b) => seen.toServer.push(b),
    toBrowser: (b) => seen.toBrowser.push(b),
    browserGreeted: () => seen.greeted++,
    serverOutcome: (o) => seen.outcomes.push(o),
    serverFailed: (f) => seen.serverFailed.push(f),
    through: (up, down) => seen.through.push({ up, down }),
    failed: (f) => seen.failed.push(f),
  };
  return { login: new VncLogin(password, 'hmi:5900', ports), seen };
}

/** Feeds `bytes` one byte at a time. */
function byteByByte(push: (b: Buffer) => void, bytes: Buffer): void {
  for (let i = 0; i < bytes.length; i++) push(bytes.subarray(i, i + 1));
}

describe('VncLogin', () => {
  it('logs in with VNC Authentication, greets the browser once the server greeted, and hands over both rests', () => {
    const { login: l, seen } = login();
    byteByByte((b) => l.fromServer(b), Buffer.concat([V38, Buffer.from([1, 2])]));
    assert.equal(seen.greeted, 1, 'the browser is greeted once the server proved to be VNC');
    assert.deepEqual(Buffer.concat(seen.toBrowser), V38);
    assert.equal(l.state, 'server');
    assert.equal(l.authenticating, true);
    l.fromServer(CHALLENGE);
    assert.deepEqual(Buffer.concat(seen.toServer), Buffer.concat([V38, Buffer.from([2]), vncAuthResponse('secret', CHALLENGE)]));
    l.fromServer(u32(0));
    assert.equal(l.state, 'browser');
    assert.equal(l.authenticating, false);
    assert.equal(seen.outcomes.length, 1);
    assert.equal(seen.outcomes[0]!.ok, true);
    // The browser: its version byte by byte, then its choice of None with ClientInit and a first message.
    byteByByte((b) => l.fromBrowser(b), V38);
    l.fromBrowser(Buffer.from([1, 1, 3, 0, 0]));
    assert.equal(l.state, 'through');
    assert.deepEqual(Buffer.concat(seen.toBrowser), Buffer.concat([V38, Buffer.from([1, 1]), u32(0)]), 'offered None, then OK');
    assert.deepEqual(seen.through, [{ up: Buffer.from([1, 3, 0, 0]), down: null }], 'the browser’s bytes after the handshake go to the server');
    assert.equal(seen.failed.length, 0);
  });

  it('a rejected password: the server connection ends at once, the browser is told after its version, kind login-rejected', () => {
    const { login: l, seen } = login();
    l.fromServer(Buffer.concat([V38, Buffer.from([1, 2]), CHALLENGE]));
    l.fromServer(Buffer.concat([u32(1), lengthPrefixed('Authentication failure')]));
    assert.equal(l.state, 'refusing');
    assert.deepEqual(seen.serverFailed.map((f) => f.kind), ['login-rejected']);
    assert.equal(seen.failed.length, 0, 'the browser has not sent its version yet');
    l.fromBrowser(V38);
    assert.equal(l.state, 'failed');
    assert.deepEqual(seen.failed.map((f) => f.kind), ['login-rejected']);
    // RFB's own failure message: no security types, then the reason.
    const told = Buffer.concat(seen.toBrowser).subarray(12);
    assert.equal(told[0], 0);
    assert.equal(told.subarray(5).toString(), seen.failed[0]!.message);
  });

  it('a server that closes while the password is checked has rejected it; a reset or teardown has not', () => {
    const byFin = login();
    byFin.login.fromServer(Buffer.concat([V38, Buffer.from([1, 2]), CHALLENGE]));
    assert.equal(byFin.login.serverGone(true), null, 'reported through the ports');
    assert.deepEqual(byFin.seen.serverFailed.map((f) => f.kind), ['login-rejected']);

    const byReset = login();
    byReset.login.fromServer(Buffer.concat([V38, Buffer.from([1, 2]), CHALLENGE]));
    byReset.login.serverGone(false);
    assert.deepEqual(byReset.seen.serverFailed.map((f) => f.kind), ['handshake-failed']);
  });

  it('not a VNC server: fails at once, before the browser hears anything', () => {
    const { login: l, seen } = login();
    l.fromServer(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'));
    assert.deepEqual(seen.failed.map((f) => f.kind), ['not-vnc']);
    assert.equal(seen.greeted, 0);
    assert.deepEqual(seen.toBrowser, []);
  });

  it('a viewer that breaks the handshake: kind viewer-handshake', () => {
    const { login: l, seen } = login();
    l.fromServer(V38);
    l.fromBrowser(Buffer.from('GET / HTTP/1.1\r\n'));
    assert.deepEqual(seen.failed.map((f) => [f.kind, f.message]), [['viewer-handshake', 'the viewer sent an invalid RFB version']]);
  });

  it('at the deadline: what was missing decides the kind', () => {
    assert.equal(login().login.timedOut().kind, 'not-vnc');
    const greeted = login();
    greeted.login.fromServer(V38);
    assert.equal(greeted.login.timedOut().kind, 'handshake-timeout');
    const accepted = login();
    accepted.login.fromServer(Buffer.concat([V38, Buffer.from([1, 2]), CHALLENGE, u32(0)]));
    assert.equal(accepted.login.timedOut().kind, 'viewer-handshake');
    const refused = login();
    refused.login.fromServer(Buffer.concat([V38, Buffer.from([0]), lengthPrefixed('Maximum number of clients reached')]));
    assert.equal(refused.login.timedOut().kind, 'server-refused');
    const lockedOut = login();
    lockedOut.login.fromServer(Buffer.concat([V38, Buffer.from([0]), lengthPrefixed('Too many security failures')]));
    assert.equal(lockedOut.login.timedOut().kind, 'server-lockout');
  });

  it('a server that talks out of turn after accepting is dropped, not buffered without end', () => {
    const { login: l, seen } = login();
    l.fromServer(Buffer.concat([V38, Buffer.from([1, 2]), CHALLENGE, u32(0)]));
    l.fromServer(Buffer.alloc(64 * 1024 + 1));
    assert.deepEqual(seen.failed.map((f) => [f.kind, f.drop]), [['handshake-failed', true]]);
  });
});
