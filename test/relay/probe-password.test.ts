/**
 * The settings page's "Test connection" (src/relay/probe.ts with `login`) against small RFB 3.8
 * servers on loopback: no password asked (a clean login with None), a password asked and none
 * given, a wrong and a right password, in the page's words (probeText of src/common/form-rules.ts);
 * and the limits that keep a VNC server from locking the controller out: one connection per
 * test, a cached answer reused only for the same password, at most 3 tests per target that end
 * before a login, a clean login clearing the count.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Prober, probeTarget } from '../../src/relay/probe.js';
import { vncAuthResponse } from '../../src/rfb/vnc-auth.js';
import { probeText } from '../../src/common/form-rules.js';
import { tcpServer, type FakeServer } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';

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

describe('Test connection with the VNC login (probe.ts, login)', () => {
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

  const login = (port: number, password?: string) => probeTarget('127.0.0.1', port, 2000, password, undefined, true);

  it('logs in with None where no password is asked, and says so', async () => {
    const r = await login(open.port);
    assert.equal(r.ok, true);
    assert.equal(r.asksPassword, false);
    assert.equal(r.login, 'none');
    assert.equal(probeText(r, false), 'VNC server, RFB 003.008. It asks for no password: viewers connect without one.');
    await waitFor('the server to see the probe close', () => open.sent.length === 1);
    assert.deepEqual([...open.sent[0]!.subarray(12)], [1], 'the client chose None: a complete login');
  });

  it('tells a missing, a wrong and a right password apart', async () => {
    const none = await login(locked.port);
    assert.deepEqual([none.ok, none.outcome, none.asksPassword], [false, 'security-unsupported', true]);
    assert.equal(probeText(none, false), 'VNC server, RFB 003.008. It asks for a password: type it under "VNC password" and test again (none is typed or stored).');
    const wrong = await login(locked.port, 'nope');
    assert.deepEqual([wrong.ok, wrong.outcome, wrong.asksPassword], [false, 'login-rejected', true]);
    assert.equal(probeText(wrong, true), 'VNC server, RFB 003.008. It asks for a password: the typed password was not accepted (wrong password).');
    const right = await login(locked.port, PASSWORD);
    assert.deepEqual([right.ok, right.outcome, right.login, right.asksPassword], [true, 'vnc', 'password', true]);
    assert.equal(probeText(right, false), 'VNC server, RFB 003.008. It asks for a password: the stored password was accepted.');
    assert.equal(JSON.stringify([none, wrong, right]).includes(PASSWORD), false, 'no answer holds the password');
    // Without `login` the probe still reads the greeting only and sends nothing.
    await waitFor('the server to see three probes close', () => locked.sent.length === 3);
    const greeting = await probeTarget('127.0.0.1', locked.port, 500);
    assert.equal(greeting.asksPassword, undefined);
    await waitFor('the server to see the fourth close', () => locked.sent.length === 4);
    assert.equal(locked.sent[3]!.length, 0, 'nothing sent');
  });

  it('makes one connection per test, caches tests that end before a login and limits them per target; a clean login clears the count', async () => {
    const server = await rfbServer(2);
    try {
      const prober = new Prober({ cacheMs: 60_000, windowMs: 60_000, maxUnclean: 3 });
      const probe = (pw?: string) => prober.probe('127.0.0.1', server.port, 2000, pw, undefined, true);
      // The same wrong password twice: the second answer is the first's.
      const first = await probe('wrong-1');
      const cached = await probe('wrong-1');
      assert.equal(server.accepted, 1);
      assert.equal(cached.outcome, 'login-rejected');
      assert.match(probeText(cached, true), /not accepted \(wrong password\)\. \(an earlier test's answer: so that the VNC server does not lock this controller out, the next test connects in \d+ s\)$/);
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
      const fresh = new Prober({ cacheMs: 60_000, windowMs: 60_000, maxUnclean: 2 });
      const [a, b] = await Promise.all([
        fresh.probe('127.0.0.1', server.port, 2000, PASSWORD, undefined, true),
        fresh.probe('127.0.0.1', server.port, 2000, PASSWORD, undefined, true),
      ]);
      assert.equal(server.accepted, 4);
      assert.deepEqual([a.login, b.login], ['password', 'password']);
      // A clean login clears the count: wrong, right, wrong, wrong all connect with a budget of 2.
      for (const pw of ['wrong-a', PASSWORD, 'wrong-b', 'wrong-c']) await fresh.probe('127.0.0.1', server.port, 2000, pw, undefined, true);
      assert.equal(server.accepted, 8);
      await fresh.probe('127.0.0.1', server.port, 2000, 'wrong-d', undefined, true);
      assert.equal(server.accepted, 8, 'two tests in a row ended before a login: the budget is spent');
      assert.equal(fresh.last('127.0.0.1', server.port)?.ok, false);
    } finally {
      await server.close();
    }
  });
});
