/**
 * The login probe behind the settings page's "Test connection" (src/relay/probe-login.ts) against
 * small RFB 3.8 servers on loopback: no password asked (a clean login with None), a password
 * asked and none given, a wrong and a right password; and the limits that keep a VNC server from
 * locking the controller out: one connection per test, tests that end before a login cached and
 * counted per target, a clean login clearing the count.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LoginProber, probeLogin } from '../../src/relay/probe-login.js';
import { vncAuthResponse } from '../../src/rfb/vnc-auth.js';
import { tcpServer, type FakeServer } from '../helpers/app.js';

const PASSWORD = 'Hmi-2026';

/** An RFB 3.8 server offering `type` (1 None, 2 VNC Authentication with {@link PASSWORD}); it records what each client sent. */
function rfbServer(type: 1 | 2): Promise<FakeServer & { sent: Buffer[] }> {
  const sent: Buffer[] = [];
  return tcpServer((socket) => {
    let got = Buffer.alloc(0);
    let step = 0;
    const challenge = randomBytes(16);
    socket.write('RFB 003.008\n');
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (step === 0 && got.length >= 12) {
        step = 1;
        socket.write(Buffer.from([1, type]));
      }
      if (step === 1 && got.length >= 13) {
        step = 2;
        if (got[12] === 1) socket.write(Buffer.alloc(4));
        else if (got[12] === 2) socket.write(challenge);
      }
      if (step === 2 && got[12] === 2 && got.length >= 29) {
        step = 3;
        const ok = got.subarray(13, 29).equals(vncAuthResponse(PASSWORD, challenge));
        const reason = Buffer.from('Authentication failure');
        const len = Buffer.alloc(4);
        len.writeUInt32BE(reason.length);
        socket.write(ok ? Buffer.alloc(4) : Buffer.concat([Buffer.from([0, 0, 0, 1]), len, reason]));
      }
    });
    socket.on('close', () => sent.push(got));
  }).then((s) => Object.assign(s, { sent }));
}

describe('Test connection with the VNC login (probe-login.ts)', () => {
  let open: FakeServer & { sent: Buffer[] };
  let locked: FakeServer & { sent: Buffer[] };
  before(async () => {
    open = await rfbServer(1);
    locked = await rfbServer(2);
  });
  after(async () => {
    await open.close();
    await locked.close();
  });

  it('logs in with None where no password is asked, and says so', async () => {
    const r = await probeLogin('127.0.0.1', open.port, 2000);
    assert.equal(r.ok, true);
    assert.equal(r.asksPassword, false);
    assert.equal(r.passwordCheck, 'none-needed');
    assert.equal(r.message, 'VNC server, RFB 003.008. It asks for no password: viewers connect without one.');
  });

  it('tells a missing, a wrong and a right password apart', async () => {
    const none = await probeLogin('127.0.0.1', locked.port, 2000);
    assert.deepEqual([none.ok, none.outcome, none.asksPassword, none.passwordCheck], [false, 'password-needed', true, 'missing']);
    const wrong = await probeLogin('127.0.0.1', locked.port, 2000, 'nope');
    assert.deepEqual([wrong.ok, wrong.outcome, wrong.passwordCheck], [false, 'login-rejected', 'rejected']);
    assert.match(wrong.message, /not accepted \(wrong password\)/);
    const right = await probeLogin('127.0.0.1', locked.port, 2000, PASSWORD);
    assert.deepEqual([right.ok, right.outcome, right.passwordCheck], [true, 'vnc', 'accepted']);
    assert.equal(JSON.stringify([none, wrong, right]).includes(PASSWORD), false, 'no answer holds the password');
  });

  it('makes one connection per test, caches tests that end before a login and limits them per target; a clean login clears the count', async () => {
    const server = await rfbServer(2);
    try {
      const prober = new LoginProber({ cacheMs: 60_000, windowMs: 60_000, maxUnclean: 3 });
      const probe = (pw?: string) => prober.probe('127.0.0.1', server.port, 2000, pw, pw === undefined ? undefined : 'typed');
      // The same wrong password twice: the second answer is the first's.
      const first = await probe('wrong-1');
      const cached = await probe('wrong-1');
      assert.equal(server.accepted, 1);
      assert.equal(cached.passwordCheck, 'rejected');
      assert.match(cached.message, /\(tested \d+ s ago; so that the VNC server does not lock this controller out, the next test connects in \d+ s\)$/);
      assert.equal(cached.testedAt !== undefined && first.testedAt === undefined, true);
      // Other passwords connect again, up to 3 tests that end before a login…
      await probe('wrong-2');
      await probe(undefined);
      assert.equal(server.accepted, 3);
      // …then no more connections, whatever is typed, until the window has passed.
      const spent = await probe(PASSWORD);
      assert.equal(server.accepted, 3, 'no fourth connection');
      assert.equal(typeof spent.nextTestIn, 'number');
      // Overlapping tests of one target share one connection.
      const fresh = new LoginProber({ cacheMs: 60_000, windowMs: 60_000, maxUnclean: 2 });
      const [a, b] = await Promise.all([
        fresh.probe('127.0.0.1', server.port, 2000, PASSWORD),
        fresh.probe('127.0.0.1', server.port, 2000, PASSWORD),
      ]);
      assert.equal(server.accepted, 4);
      assert.deepEqual([a.passwordCheck, b.passwordCheck], ['accepted', 'accepted']);
      // A clean login clears the count: wrong, right, wrong, wrong all connect with a budget of 2.
      for (const pw of ['wrong-a', PASSWORD, 'wrong-b', 'wrong-c']) await fresh.probe('127.0.0.1', server.port, 2000, pw);
      assert.equal(server.accepted, 8);
      await fresh.probe('127.0.0.1', server.port, 2000, 'wrong-d');
      assert.equal(server.accepted, 8, 'two tests in a row ended before a login: the budget is spent');
      assert.equal(fresh.last('127.0.0.1', server.port)?.ok, false);
    } finally {
      await server.close();
    }
  });
});
