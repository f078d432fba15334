/**
 * "Test connection" over the API: `POST api/v1/probe` (values typed on the page) and
 * `POST api/v1/targets/:id/probe` (a saved target), against fake servers on loopback. Name
 * resolution is stubbed so nothing leaves the machine.
 */
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { after, before, describe, it } from 'node:test';
import { API, assertProblem, client, closedPort, config, startTestApp, target, tcpServer, vncServer, type FakeServer, type TestApp } from '../helpers/app.js';

const PROBE_TIMEOUT = 300;

describe('probe API', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  const servers: Record<string, FakeServer> = {};
  const receivedByVnc: Buffer[] = [];
  let dead: number;

  before(async () => {
    servers.vnc = await vncServer();
    servers.vnc33 = await tcpServer((s) => s.write('RFB 003.003\n'));
    servers.split = await tcpServer((s) => {
      s.write('RFB 00');
      setTimeout(() => s.write('3.008\n'), 30);
    });
    servers.http = await tcpServer((s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    servers.ssh = await tcpServer((s) => s.write('SSH-2.0-OpenSSH_9.6\r\n'));
    servers.silent = await tcpServer(() => {});
    servers.hangup = await tcpServer((s) => s.end());
    servers.recording = await tcpServer((s) => {
      s.write('RFB 003.008\n');
      s.on('data', (d: Buffer) => receivedByVnc.push(d));
    });
    dead = await closedPort();
    t = await startTestApp({
      probeTimeout: PROBE_TIMEOUT,
      initial: config(target('vnc', servers.vnc.port), target('web', servers.http.port), target('off', dead)),
    });
    http = client(t.port);
  });
  after(async () => {
    await t.close();
    for (const s of Object.values(servers)) await s.close();
  });

  const probe = async (host: unknown, port: unknown) => {
    const res = await http.post(`${API}/probe`, { host, port });
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    return res.json();
  };

  it('recognises a VNC server by its greeting', async () => {
    const r = await probe('127.0.0.1', servers.vnc!.port);
    assert.equal(r.ok, true);
    assert.equal(r.outcome, 'vnc');
    assert.equal(r.message, 'VNC server, RFB 003.008');
    assert.equal(r.version, 'RFB 003.008');
    assert.equal(r.target, `127.0.0.1:${servers.vnc!.port}`);
    assert.equal(typeof r.elapsedMs, 'number');
  });

  it('reports the protocol version of older servers and reassembles a split greeting', async () => {
    assert.equal((await probe('127.0.0.1', servers.vnc33!.port)).message, 'VNC server, RFB 003.003');
    assert.equal((await probe('127.0.0.1', servers.split!.port)).message, 'VNC server, RFB 003.008');
  });

  it('accepts the port as a string (as typed) and trims the host', async () => {
    assert.equal((await probe(' 127.0.0.1 ', String(servers.vnc!.port))).ok, true);
  });

  it('sends nothing to the target', async () => {
    assert.equal((await probe('127.0.0.1', servers.recording!.port)).ok, true);
    assert.deepEqual(receivedByVnc, []);
  });

  it('says "port open but not a VNC server" for an HTTP or SSH server', async () => {
    for (const name of ['http', 'ssh']) {
      const r = await probe('127.0.0.1', servers[name]!.port);
      assert.equal(r.ok, false);
      assert.equal(r.outcome, 'not-vnc');
      assert.match(r.message, /^port open but not a VNC server: 127\.0\.0\.1:\d+ does not speak RFB$/);
    }
  });

  it('says "port open but not a VNC server … within" for a server that stays silent', async () => {
    const r = await probe('127.0.0.1', servers.silent!.port);
    assert.equal(r.outcome, 'not-vnc');
    assert.match(r.message, /^port open but not a VNC server: .* sent no RFB greeting within 0\.3 s$/);
  });

  it('says so when the server hangs up without a greeting', async () => {
    const r = await probe('127.0.0.1', servers.hangup!.port);
    assert.equal(r.outcome, 'not-vnc');
    assert.match(r.message, /closed the connection without an RFB greeting/);
  });

  it('says "connection refused" for a closed port', async () => {
    const r = await probe('127.0.0.1', dead);
    assert.equal(r.ok, false);
    assert.equal(r.outcome, 'refused');
    assert.match(r.message, /^connection refused: nothing listens on 127\.0\.0\.1:\d+$/);
  });

  it('says "host not found" for a name that does not resolve (resolution stubbed: no network)', async () => {
    const original = dns.lookup;
    const asked: string[] = [];
    (dns as { lookup: unknown }).lookup = (hostname: string, options: unknown, callback?: unknown) => {
      const cb = (typeof options === 'function' ? options : callback) as (err: NodeJS.ErrnoException) => void;
      asked.push(hostname);
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      process.nextTick(cb, err);
    };
    try {
      const r = await probe('nonexistent.invalid', 5900);
      assert.deepEqual(asked, ['nonexistent.invalid']);
      assert.equal(r.ok, false);
      assert.equal(r.outcome, 'not-found');
      assert.equal(r.message, 'host not found: nonexistent.invalid');
    } finally {
      (dns as { lookup: unknown }).lookup = original;
    }
  });

  const invalid: [string, unknown, unknown, string][] = [
    ['a host with a space', 'my host', 5900, 'host'],
    ['a missing host', undefined, 5900, 'host'],
    ['a URL as host', 'http://10.0.0.1/', 5900, 'host'],
    ['port 0', '127.0.0.1', 0, 'port'],
    ['port 65536', '127.0.0.1', 65536, 'port'],
    ['a port that is not a number', '127.0.0.1', 'vnc', 'port'],
    ['a missing port', '127.0.0.1', undefined, 'port'],
  ];
  for (const [what, host, port, field] of invalid) {
    it(`answers 400 Problem JSON for ${what}`, async () => {
      const res = await http.post(`${API}/probe`, { host, port });
      const p = assertProblem(res, 400, { type: 'urn:ctrlx-novnc:problem:validation-failed', field });
      assert.match(p.detail, /^Cannot test this target: /);
    });
  }

  it('answers 415 for a non-JSON probe and 403 for a cross-origin one', async () => {
    assertProblem(await http.post(`${API}/probe`, 'host=127.0.0.1&port=5900', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415);
    assertProblem(await http.post(`${API}/probe`, { host: '127.0.0.1', port: servers.vnc!.port }, { headers: { Origin: 'https://evil.example' } }), 403);
  });

  describe('POST targets/:id/probe', () => {
    it('probes a saved target', async () => {
      const ok = await http.post(`${API}/targets/vnc/probe`);
      assert.equal(ok.status, 200);
      // Tested a moment ago through POST probe: the answer comes from then (no new pre-login close).
      assert.match(ok.json().message, /^VNC server, RFB 003\.008 \(tested \d+ s ago; to keep clear of the VNC server's lockout the next test connects in \d+ s\)$/);
      assert.equal(typeof ok.json().testedAt, 'string');
      assert.match((await http.post(`${API}/targets/web/probe`)).json().message, /^port open but not a VNC server/);
      assert.equal((await http.post(`${API}/targets/off/probe`)).json().outcome, 'refused');
    });

    it('answers 404 Problem JSON for an unknown id', async () => {
      const p = assertProblem(await http.post(`${API}/targets/nope/probe`), 404, { type: 'urn:ctrlx-novnc:problem:not-found' });
      assert.match(p.detail, /Unknown VNC target "nope"/);
    });
  });
});
