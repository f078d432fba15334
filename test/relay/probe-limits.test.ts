/**
 * "Test connection" and the VNC server's lockout, against fake servers that count connections:
 * a test that can only read the greeting (no stored password) costs the server a connection
 * closed before a login, so such tests are answered from a cache for a while and limited per
 * target; a test with the password logs in (VNC Authentication, right response) and closes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Prober, probeTarget } from '../../src/relay/probe.js';
import { lengthPrefixed, u32 } from '../../src/rfb/protocol.js';
import { checkVncAuthResponse } from '../../src/rfb/vnc-auth.js';
import type { HandshakeOutcome } from '../../src/rfb/security-proxy.js';
import { startTarget } from '../helpers/targets.js';
import { sleep } from '../helpers/wait.js';

/** A 3.8 server with VNC Authentication for `password`; counts connections and finished logins. */
async function vncAuthServer(password: string) {
  const counts = { connections: 0, logins: 0, rejected: 0 };
  const challenge = Buffer.alloc(16, 7);
  const t = await startTarget((socket) => {
    counts.connections++;
    socket.write('RFB 003.008\n');
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length === 12) socket.write(Buffer.from([1, 2]));
      if (got.length === 13) socket.write(challenge);
      if (got.length === 29) {
        if (checkVncAuthResponse(password, challenge, got.subarray(13))) {
          counts.logins++;
          socket.write(u32(0));
        } else {
          counts.rejected++;
          socket.end(Buffer.concat([u32(1), lengthPrefixed('Authentication failure')]));
        }
      }
    });
  });
  return { ...t, counts };
}

describe('Test connection and the server lockout', () => {
  it('without a password: one connection per 10 s (cache), at most 2 in the window; the rest answered with when the next may go', async (t) => {
    const vnc = await vncAuthServer('pw');
    t.after(() => vnc.close());
    const prober = new Prober({ cacheMs: 200, windowMs: 60_000, maxUnclean: 2 });
    const first = await Promise.all(Array.from({ length: 5 }, () => prober.probe('127.0.0.1', vnc.port, 2000)));
    assert.equal(vnc.counts.connections, 1, 'five overlapping tests share one connection');
    for (const r of first) assert.deepEqual([r.ok, r.message.startsWith('VNC server, RFB 003.008')], [true, true]);
    const cached = await prober.probe('127.0.0.1', vnc.port, 2000);
    assert.equal(vnc.counts.connections, 1);
    assert.equal(typeof cached.testedAt, 'string');
    assert.ok(cached.nextTestIn! >= 1);
    await sleep(250);
    assert.equal((await prober.probe('127.0.0.1', vnc.port, 2000)).testedAt, undefined, 'after the cache: a new test');
    assert.equal(vnc.counts.connections, 2);
    await sleep(250);
    const limited = await prober.probe('127.0.0.1', vnc.port, 2000);
    assert.equal(vnc.counts.connections, 2, 'the third test in the window does not connect');
    assert.match(limited.message, /\(tested 0 s ago; to keep clear of the VNC server's lockout the next test connects in \d+ s\)$/);
    assert.ok(limited.nextTestIn! > 30 && limited.nextTestIn! <= 60, `the window of 60 s from the first test: ${limited.nextTestIn}`);
    // Another target has its own allowance.
    const other = await vncAuthServer('pw');
    t.after(() => other.close());
    await prober.probe('127.0.0.1', other.port, 2000);
    assert.equal(other.counts.connections, 1);
  });

  it('with the password: logs in every time (no cache, no limit), closes cleanly; a rejected one is limited like a greeting', async (t) => {
    const vnc = await vncAuthServer('right');
    t.after(() => vnc.close());
    const prober = new Prober({ cacheMs: 0, windowMs: 60_000, maxUnclean: 2 });
    const outcomes: HandshakeOutcome[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await prober.probe('127.0.0.1', vnc.port, 2000, 'right', (o) => outcomes.push(o));
      assert.deepEqual([r.ok, r.login, r.message], [true, 'password', 'VNC server, RFB 003.008; logged in with the stored VNC password']);
    }
    assert.deepEqual([vnc.counts.connections, vnc.counts.logins], [5, 5]);
    assert.deepEqual(outcomes.map((o) => o.ok), [true, true, true, true, true]);
    for (let i = 0; i < 4; i++) {
      const r = await prober.probe('127.0.0.1', vnc.port, 2000, 'wrong', (o) => outcomes.push(o));
      assert.deepEqual([r.ok, r.outcome, r.code], [false, 'login-rejected', 4003]);
    }
    assert.equal(vnc.counts.rejected, 2, 'two rejected logins, then the answer is the last one');
  });

  it('reports a server that answers "Too many security failures" as server-lockout (4009), with or without a password', async (t) => {
    const locked = await startTarget((socket) => {
      socket.end(Buffer.concat([Buffer.from('RFB 003.003\n'), u32(0), lengthPrefixed('Too many security failures')]));
    });
    t.after(() => locked.close());
    for (const password of [undefined, 'pw']) {
      const r = await probeTarget('127.0.0.1', locked.port, 2000, password);
      assert.deepEqual([r.ok, r.outcome, r.kind, r.code, r.version], [false, 'server-lockout', 'server-lockout', 4009, 'RFB 003.003'], JSON.stringify(r));
      assert.match(r.message, /locks this controller out for now: too many security failures/);
    }
    // A 3.3 server that just waits for the client is a VNC server, found in a moment.
    const plain33 = await startTarget((socket) => socket.write('RFB 003.003\n'));
    t.after(() => plain33.close());
    const r = await probeTarget('127.0.0.1', plain33.port, 2000);
    assert.deepEqual([r.ok, r.message], [true, 'VNC server, RFB 003.003']);
  });
});
