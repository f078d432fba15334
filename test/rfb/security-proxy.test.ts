/**
 * The two handshake machines the relay splices for a stored password, without sockets: the
 * same bytes cut at every possible point give the same output, and each version's rules
 * (3.3 imposed type, 3.7 no SecurityResult after None, 3.8 reasons) hold on both sides.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserHandshake, ServerHandshake, refusalAfterGreeting, type HandshakeOutcome, type HandshakeStep } from '../../src/rfb/security-proxy.js';
import { lengthPrefixed, u32 } from '../../src/rfb/protocol.js';
import { vncAuthResponse } from '../../src/rfb/vnc-auth.js';

const CHALLENGE = Buffer.from('0123456789abcdef');
const EXTRA = Buffer.from('after');

/**
 * Feeds the pieces until the machine is done; returns everything it sent, the outcome, and the
 * input left over after the end (which the relay passes on unchanged).
 */
function feed(push: (b: Buffer) => HandshakeStep, pieces: Buffer[]): { sent: Buffer; done: HandshakeOutcome | undefined; after: Buffer } {
  const sent: Buffer[] = [];
  const after: Buffer[] = [];
  let done: HandshakeOutcome | undefined;
  for (const p of pieces) {
    if (done) {
      after.push(p);
      continue;
    }
    const step = push(p);
    sent.push(...step.send);
    done = step.done;
  }
  return { sent: Buffer.concat(sent), done, after: Buffer.concat(after) };
}

/** Every way of cutting `bytes` in two, and one byte at a time. */
function cuts(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((b) => Buffer.from([b])));
  return out;
}

describe('ServerHandshake', () => {
  const cases: { name: string; server: Buffer; client: Buffer; version: string }[] = [
    {
      name: '3.8, VNC Authentication offered with others',
      server: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([3, 16, 2, 1]), CHALLENGE, u32(0), EXTRA]),
      client: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2]), vncAuthResponse('secret', CHALLENGE)]),
      version: '3.8',
    },
    {
      name: '3.7, VNC Authentication',
      server: Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([1, 2]), CHALLENGE, u32(0), EXTRA]),
      client: Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([2]), vncAuthResponse('secret', CHALLENGE)]),
      version: '3.7',
    },
    {
      name: '3.3, VNC Authentication imposed',
      server: Buffer.concat([Buffer.from('RFB 003.003\n'), u32(2), CHALLENGE, u32(0), EXTRA]),
      client: Buffer.concat([Buffer.from('RFB 003.003\n'), vncAuthResponse('secret', CHALLENGE)]),
      version: '3.3',
    },
    {
      name: '3.7, None only: no SecurityResult',
      server: Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([1, 1]), EXTRA]),
      client: Buffer.concat([Buffer.from('RFB 003.007\n'), Buffer.from([1])]),
      version: '3.7',
    },
    {
      name: '3.8, None only: a SecurityResult',
      server: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), u32(0), EXTRA]),
      client: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1])]),
      version: '3.8',
    },
  ];
  for (const c of cases) {
    it(`${c.name}: same output for every cut of the input`, () => {
      for (const pieces of cuts(c.server)) {
        const hs = new ServerHandshake('secret', 'hmi:5900');
        const r = feed((b) => hs.push(b), pieces);
        assert.deepEqual(r.sent, c.client);
        assert.ok(r.done?.ok, 'succeeds');
        if (r.done?.ok) {
          assert.equal(r.done.version, c.version);
          // Bytes after the SecurityResult: in `rest` when they came in the same read, else later.
          assert.deepEqual(Buffer.concat([r.done.rest, r.after]), EXTRA);
        }
      }
    });
  }

  it('a wrong password in 3.8: kind auth, with the server’s reason', () => {
    const hs = new ServerHandshake('secret', 'hmi:5900');
    const r = feed((b) => hs.push(b), [
      Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2]), CHALLENGE, u32(1), lengthPrefixed('Authentication failed')]),
    ]);
    assert.deepEqual(r.done, {
      ok: false,
      failure: {
        kind: 'auth',
        message: 'authentication failed: hmi:5900 did not accept the VNC password stored in the settings (server: Authentication failed)',
        detail: 'server said "Authentication failed"',
      },
    });
  });

  it('a 3.8 server failing the SecurityResult after None: refused, not a rejected password', () => {
    const hs = new ServerHandshake('secret', 'hmi:5900');
    const r = feed((b) => hs.push(b), [
      Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), u32(1), lengthPrefixed('Not now')]),
    ]);
    assert.equal(!r.done?.ok && r.done?.failure.kind, 'refused');
    assert.equal(!r.done?.ok && r.done?.failure.message, 'VNC server hmi:5900 refused the connection: Not now');
  });

  it('only the first 8 characters of the password matter (VNC truncates the DES key)', () => {
    const a = new ServerHandshake('12345678', 'x');
    const b = new ServerHandshake('12345678-and-more', 'x');
    const input = Buffer.concat([Buffer.from('RFB 003.003\n'), u32(2), CHALLENGE]);
    assert.deepEqual(feed((x) => a.push(x), [input]).sent, feed((x) => b.push(x), [input]).sent);
  });
});

describe('BrowserHandshake', () => {
  const ok: HandshakeOutcome = { ok: true, version: '3.3', securityType: 2, rest: Buffer.alloc(0) };
  const failed: HandshakeOutcome = { ok: false, failure: { kind: 'auth', message: 'authentication failed: x', detail: 'd' } };

  const versions: { client: string; out: Buffer }[] = [
    { client: 'RFB 003.008\n', out: Buffer.concat([Buffer.from([1, 1]), u32(0)]) },
    { client: 'RFB 003.007\n', out: Buffer.from([1, 1]) },
    { client: 'RFB 003.003\n', out: u32(1) },
  ];
  for (const v of versions) {
    it(`a ${v.client.trim()} viewer: offered None, told OK as its version expects; the rest passes on`, () => {
      const input = Buffer.concat([Buffer.from(v.client), v.client.endsWith('3\n') ? Buffer.alloc(0) : Buffer.from([1]), Buffer.from([1]), EXTRA]);
      for (const pieces of cuts(input)) {
        for (const serverAt of [0, pieces.length]) {
          const hs = new BrowserHandshake();
          assert.equal(hs.greeting().toString(), 'RFB 003.008\n');
          const sent: Buffer[] = [];
          let done: HandshakeOutcome | undefined;
          let rest = Buffer.alloc(0);
          const take = (s: HandshakeStep): void => {
            sent.push(...s.send);
            if (s.done) done = s.done;
          };
          pieces.forEach((p, i) => {
            if (i === serverAt) take(hs.serverDone(ok));
            if (done) rest = Buffer.concat([rest, p]);
            else take(hs.push(p));
          });
          if (serverAt === pieces.length) take(hs.serverDone(ok));
          assert.deepEqual(Buffer.concat(sent), v.out);
          assert.ok(done?.ok);
          if (done?.ok) assert.deepEqual(Buffer.concat([done.rest, rest]), Buffer.concat([Buffer.from([1]), EXTRA]));
        }
      }
    });
  }

  it('a server failure reaches a 3.8 viewer as "no security types" + reason, a 3.3 viewer as type 0 + reason', () => {
    const a = new BrowserHandshake();
    a.push(Buffer.from('RFB 003.008\n'));
    const s38 = a.serverDone(failed);
    assert.deepEqual(Buffer.concat(s38.send), Buffer.concat([Buffer.from([0]), lengthPrefixed('authentication failed: x')]));
    assert.equal(s38.done, failed);
    const b = new BrowserHandshake();
    assert.deepEqual(b.serverDone(failed), { send: [] }, 'waits for the viewer’s version first');
    const s33 = b.push(Buffer.from('RFB 003.003\n'));
    assert.deepEqual(Buffer.concat(s33.send), Buffer.concat([u32(0), lengthPrefixed('authentication failed: x')]));
  });

  it('a viewer sending more than a handshake before the offer fails at 64 bytes (nothing is buffered without bound)', () => {
    const hs = new BrowserHandshake();
    assert.equal(hs.push(Buffer.from('RFB 003.008\n')).done, undefined);
    assert.equal(hs.push(Buffer.alloc(64)).done, undefined, '64 bytes waiting for the offer are held');
    const r = hs.push(Buffer.alloc(1));
    assert.equal(!r.done?.ok && r.done?.failure.message, 'the viewer sent data out of turn');
    assert.deepEqual(hs.push(Buffer.alloc(1_000_000)), { send: [] }, 'and it takes nothing after');
  });

  it('a viewer choosing anything but None, or sending no version, fails with kind protocol', () => {
    const a = new BrowserHandshake();
    a.serverDone(ok);
    const r = a.push(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2])]));
    assert.equal(r.done?.ok, false);
    assert.equal(!r.done?.ok && r.done?.failure.message, 'the viewer chose VNC Authentication (2), which was not offered');
    const b = new BrowserHandshake();
    const g = b.push(Buffer.from('HELLO WORLD!'));
    assert.equal(!g.done?.ok && g.done?.failure.kind, 'protocol');
  });
});

describe('refusalAfterGreeting (a locked-out address, before the client speaks)', () => {
  const V33 = Buffer.from('RFB 003.003\n');
  const refusal = Buffer.concat([V33, u32(0), lengthPrefixed('Too many security failures')]);
  it('reads TigerVNC\'s answer to a blacklisted address, whole or in parts', () => {
    assert.equal(refusalAfterGreeting(refusal), 'Too many security failures');
    for (const n of [12, 13, 16, 19, refusal.length - 1]) assert.equal(refusalAfterGreeting(refusal.subarray(0, n)), 'wait', `${n} bytes`);
  });
  it('is null for anything else: another version, a security type, a short read of other bytes', () => {
    assert.equal(refusalAfterGreeting(Buffer.from('RFB 003.008\n')), null);
    assert.equal(refusalAfterGreeting(Buffer.concat([Buffer.from('RFB 003.008\n'), u32(0), lengthPrefixed('x')])), null);
    assert.equal(refusalAfterGreeting(Buffer.concat([V33, u32(2)])), null);
    assert.equal(refusalAfterGreeting(Buffer.concat([V33, Buffer.from([0, 0, 1])])), null);
    assert.equal(refusalAfterGreeting(Buffer.concat([V33, u32(0), u32(1 << 30)])), null);
  });
  it('a ServerHandshake meeting the same answer ends with kind lockout', () => {
    const step = new ServerHandshake('pw', '10.0.0.5:5900').push(refusal);
    assert.equal(step.done?.ok, false);
    assert.equal(!step.done!.ok && step.done!.failure.kind, 'lockout');
  });
});
