/**
 * Fuzzing what a VNC target sends, through a real `serve` process: the configured target is a fake
 * TCP server playing a seeded script (random greetings, almost-valid `RFB 003.00x` variants,
 * wrong lengths, a valid greeting followed by garbage or by security lists and reason lengths that
 * promise gigabytes, megabytes of data, greetings cut short, slow trickles, silence), then closing,
 * resetting or staying open. A browser-like client (`ws`, subprotocol `binary`) connects through
 * the relay and sends its own version at once. Each session must end in one of two ways: the
 * greeting was valid, and every byte the server sent reaches the browser; or it was not, and the
 * browser gets 4002 "not a VNC server…" (the reset's own code for a reset), no byte of it, and the
 * server gets none of the browser's bytes. The relay's connect timeout bounds the silent cases.
 *
 * The runner takes the target as configured (`targetFor`) and the expectation (`expect`) as
 * arguments, so the same scripts can be played against a target with a stored password (the
 * relay's own RFB security handshake) by adding a second `it` with those two functions.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { API, RELAY } from '../helpers/app.js';
import { FAILURES, failureOf, type FailureKind } from '../../src/common/failures.js';
import {
  Histogram,
  Rng,
  fuzzBudget,
  fuzzSeed,
  giveUpAfter,
  iteration,
  mb,
  mix,
  rawHttp,
  replay,
  startFuzzServe,
  waitFdsBack,
  waitSessionsClosed,
  type FuzzServe,
} from '../helpers/fuzz.js';
import { recordReliability } from '../helpers/reliability.js';
import { collect, openClient, type Received } from '../helpers/ws-client.js';
import { checkGreeting, knownVersion, parseVersion } from '../../src/rfb/protocol.js';

const SEED = fuzzSeed();
const CASES = fuzzBudget(0.06);
/** Sessions at once, each to its own target (below the relay's 16 per target and 32 in all). */
const SLOTS = 12;
const RSS_GROWTH_KIB = 40 * 1024;
/** What the browser sends as soon as the WebSocket is open (a ClientProtocolVersion). */
const CLIENT_HELLO = Buffer.from('RFB 003.008\n');
const PASSWORD = 'fuzz-pw1';

// ---- the fake server's scripts ------------------------------------------------------------------

interface FakeScript {
  kind: string;
  /** Bytes to write, each after `delay` ms. */
  chunks: { delay: number; bytes: Buffer }[];
  /** Then: FIN, RST, or stay open until the relay hangs up. */
  ending: 'close' | 'reset' | 'stay';
}

function sentBytes(s: FakeScript): Buffer {
  return Buffer.concat(s.chunks.map((c) => c.bytes));
}

/** Cuts `bytes` into chunks of 1-`max` bytes, `delay` ms apart (a slow trickle). */
function trickle(rng: Rng, bytes: Buffer, max: number, delay: () => number): FakeScript['chunks'] {
  const out: FakeScript['chunks'] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = rng.int(1, max);
    out.push({ delay: delay(), bytes: bytes.subarray(i, i + n) });
    i += n;
  }
  return out;
}

const ALMOST = [
  'RFB 003.008', 'RFB 003.008\r\n', 'rfb 003.008\n', 'RFB 3.8\n', 'RFB 003.0089\n', 'RFB 003,008\n', ' RFB 003.008\n', 'RFB 003.008 \n',
  'RFB\u0000003.008\n', 'RFB 00a.008\n', 'RFB 003.00', 'RFB ', 'R', 'RFB 003.008\u0000', 'RFB  03.008\n', '\ufeffRFB 003.008\n',
  'SSH-2.0-OpenSSH_9.6\r\n', 'HTTP/1.1 400 Bad Request\r\n\r\n', '220 ftp ready\r\n', '\u0000'.repeat(12),
];

/** What follows a valid greeting: nothing, garbage, or security data whose lengths lie. */
function afterGreeting(rng: Rng, version: string): Buffer {
  return rng.weighted<() => Buffer>([
    [2, () => Buffer.alloc(0)],
    [3, () => rng.bytes(rng.int(1, 2000))],
    [
      2,
      () => {
        // 3.7/3.8: a list of security types claiming 255 entries (or 0 and a huge reason).
        if (rng.chance(0.5)) return Buffer.concat([Buffer.from([255]), rng.bytes(rng.int(0, 20))]);
        const len = Buffer.alloc(4);
        len.writeUInt32BE(rng.pick([0xffffffff, 0x7fffffff, 1 << 30]), 0);
        return Buffer.concat([Buffer.from([0]), len, Buffer.from('no')]);
      },
    ],
    [
      1,
      () => {
        // 3.3: security type 0 (failure), then a reason length of 4 GiB.
        const b = Buffer.alloc(8);
        b.writeUInt32BE(0, 0);
        b.writeUInt32BE(0xffffffff, 4);
        return Buffer.concat([b, Buffer.from(version)]);
      },
    ],
  ])();
}

function fakeScript(rng: Rng): FakeScript {
  const kind = rng.weighted<string>([
    [5, 'valid'],
    [2, 'valid-trickle'],
    [1, 'valid-big'],
    [4, 'garbage'],
    [5, 'almost'],
    [2, 'cut-short'],
    [2, 'nothing'],
  ]);
  const version = rng.weighted<() => string>([
    [3, () => 'RFB 003.008\n'],
    [1, () => 'RFB 003.003\n'],
    [1, () => 'RFB 003.007\n'],
    [1, () => `RFB ${rng.chars(3, '0123456789')}.${rng.chars(3, '0123456789')}\n`],
  ])();
  const fast = (): number => 0;
  switch (kind) {
    case 'valid': {
      const bytes = Buffer.concat([Buffer.from(version), afterGreeting(rng, version)]);
      const split = rng.int(0, bytes.length);
      return { kind, chunks: [{ delay: 0, bytes: bytes.subarray(0, split) }, { delay: rng.int(0, 20), bytes: bytes.subarray(split) }], ending: rng.chance(0.6) ? 'close' : 'stay' };
    }
    case 'valid-trickle': {
      const bytes = Buffer.concat([Buffer.from(version), afterGreeting(rng, version).subarray(0, 60)]);
      return { kind, chunks: trickle(rng, bytes, 3, () => rng.int(1, 40)), ending: rng.chance(0.5) ? 'close' : 'stay' };
    }
    case 'valid-big': {
      const bytes = Buffer.concat([Buffer.from(version), rng.bytes(rng.int(256 * 1024, 2 * 1024 * 1024))]);
      return { kind, chunks: [{ delay: 0, bytes }], ending: 'close' };
    }
    case 'garbage': {
      const bytes = rng.bytes(rng.int(1, 300));
      const chunks = rng.chance(0.3) ? trickle(rng, bytes, 4, () => rng.int(1, 30)) : trickle(rng, bytes, 300, fast);
      return { kind, chunks, ending: rng.pick(['close', 'reset', 'stay'] as const) };
    }
    case 'almost': {
      const text = Buffer.from(rng.pick(ALMOST), 'latin1');
      const bytes = rng.chance(0.5) ? Buffer.concat([text, rng.bytes(rng.int(0, 40))]) : text;
      const chunks = rng.chance(0.3) ? trickle(rng, bytes, 2, () => rng.int(1, 30)) : [{ delay: 0, bytes }];
      return { kind, chunks, ending: rng.pick(['close', 'reset', 'stay'] as const) };
    }
    case 'cut-short': {
      // A valid greeting cut before its newline.
      const bytes = Buffer.from(version.slice(0, rng.int(1, 11)));
      return { kind, chunks: trickle(rng, bytes, 4, () => rng.int(0, 20)), ending: rng.pick(['close', 'reset', 'stay'] as const) };
    }
    default:
      return { kind: 'nothing', chunks: [], ending: rng.pick(['close', 'reset', 'stay'] as const) };
  }
}

// ---- expectations ---------------------------------------------------------------------------------

/** What the browser must see for a script. */
type Expectation =
  | { outcome: 'relayed'; data: Buffer; why: string }
  /** Closed with the code of one of `kinds` (src/common/failures.ts). */
  | { outcome: 'refused'; kinds: FailureKind[]; why: string }
  /**
   * With a stored password the relay does the security handshake itself: a valid greeting of a
   * version it speaks is answered, and what follows decides (mostly a failure in words, rarely a
   * handshake that garbage happens to complete).
   */
  | { outcome: 'handshake'; why: string };

/** The failure kinds of a failed relay-side handshake (src/relay/vnc-login.ts). */
const HANDSHAKE_FAILURES: readonly FailureKind[] = [
  'login-rejected',
  'security-unsupported',
  'server-refused',
  'handshake-failed',
  'handshake-timeout',
  'viewer-handshake',
];
const HANDSHAKE_CODES = new Set<number>(HANDSHAKE_FAILURES.map((k) => FAILURES[k].code));


/**
 * Without a stored password the relay only checks the first 12 bytes (`RFB xxx.yyy\n`) and then
 * passes everything through.
 */
function expectWithoutPassword(s: FakeScript): Expectation {
  const sent = sentBytes(s);
  const greeting = checkGreeting(sent);
  if (greeting === 'complete') return { outcome: 'relayed', data: sent, why: 'valid greeting' };
  // A reset can overtake the bytes before it: then the cause is the reset (a TCP error).
  if (s.ending === 'reset') return { outcome: 'refused', kinds: ['not-vnc', 'connection-reset'], why: 'no full greeting, then a reset' };
  if (greeting === 'invalid') return { outcome: 'refused', kinds: ['not-vnc'], why: 'no RFB greeting' };
  // A (possibly empty) beginning of a greeting, then:
  if (s.ending === 'stay') return { outcome: 'refused', kinds: ['not-vnc'], why: 'greeting never completed' };
  return { outcome: 'refused', kinds: ['not-vnc'], why: 'FIN before a full greeting' };
}

/**
 * With a stored password: no full greeting is refused as without one; a greeting of an unknown
 * version is refused before the browser is greeted; a known version starts the relay's handshake.
 */
function expectWithPassword(s: FakeScript): Expectation {
  const sent = sentBytes(s);
  const head = sent.subarray(0, 12);
  if (checkGreeting(sent) !== 'complete') return expectWithoutPassword(s);
  const numbers = parseVersion(head);
  if (!numbers || !knownVersion(numbers)) {
    return { outcome: 'refused', kinds: ['handshake-failed'], why: 'unknown version' };
  }
  return { outcome: 'handshake', why: 'the relay negotiates security itself' };
}

// ---- the fake server ------------------------------------------------------------------------------

interface FakeServer {
  port: number;
  /** Bytes the relay sent to it. */
  received(): Buffer;
  /** Resolves when its connection has closed (the relay hung up, or the script did). */
  done: Promise<void>;
  close(): Promise<void>;
}

async function startFake(s: FakeScript): Promise<FakeServer> {
  const received: Buffer[] = [];
  let markDone: () => void = () => {};
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer(async (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('close', () => {
      sockets.delete(socket);
      markDone();
    });
    for (const chunk of s.chunks) {
      if (chunk.delay) await new Promise((r) => setTimeout(r, chunk.delay));
      if (socket.destroyed) return;
      if (chunk.bytes.length) socket.write(chunk.bytes);
    }
    if (s.ending === 'close') socket.end();
    else if (s.ending === 'reset') socket.resetAndDestroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => Buffer.concat(received),
    done,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- the runner -----------------------------------------------------------------------------------

interface FakeTargetRun {
  /** Cases played. */
  cases: number;
  outcomes: Histogram;
  closes: Histogram;
  bytesRelayed: number;
}

/**
 * Plays `count` seeded scripts, `SLOTS` at a time, each against its own fake server configured as
 * `targetFor(id, port)`, and checks each session against `expect`.
 */
async function runFakeTargets(
  serve: FuzzServe,
  label: string,
  count: number,
  targetFor: (id: string, port: number) => Record<string, unknown>,
  expect: (s: FakeScript) => Expectation,
  scriptFor: (rng: Rng) => FakeScript = fakeScript,
): Promise<FakeTargetRun> {
  const run: FakeTargetRun = { cases: 0, outcomes: new Histogram(), closes: new Histogram(), bytesRelayed: 0 };
  const ports: (number | null)[] = Array.from({ length: SLOTS }, () => null);
  // Configuration changes one at a time; a slot's change leaves the other slots' sessions alone.
  let configuring: Promise<unknown> = Promise.resolve();
  const configure = (): Promise<void> => {
    const body = JSON.stringify({
      targets: ports.flatMap((port, slot) => (port === null ? [] : [{ name: `Slot ${slot}`, ...targetFor(`s${slot}`, port) }])),
    });
    const next = configuring.then(async () => {
      const res = await rawHttp(serve.port, { method: 'PUT', path: `${API}/config`, headers: { 'Content-Type': 'application/json' }, body });
      assert.equal(res.status, 200, res.text);
    });
    configuring = next.catch(() => {});
    return next;
  };

  const play = async (slot: number, i: number): Promise<void> => {
    const rng = new Rng(mix(SEED, label, i));
    const script = scriptFor(rng);
    const want = expect(script);
    const describeCase = (): string =>
      `${script.kind}: ${JSON.stringify(sentBytes(script).subarray(0, 80).toString('latin1'))} (${sentBytes(script).length} bytes in ${script.chunks.length} chunks), then ${script.ending} → expect ${want.outcome} (${want.why})`;
    await iteration(SEED, i, describeCase, async () => {
      const fake = await startFake(script);
      try {
        ports[slot] = fake.port;
        await configure();
        const ws = await openClient(`ws://127.0.0.1:${serve.port}${RELAY}?target=s${slot}`, ['binary']);
        const got = collect(ws);
        ws.send(CLIENT_HELLO);
        let end: Received;
        if (want.outcome === 'handshake') {
          // Should garbage complete the handshake, the session is up: end it.
          ws.on('message', (d: Buffer) => {
            if (d.length && d[0] !== 0 && !d.equals(CLIENT_HELLO) && ws.readyState === ws.OPEN) ws.close(1000, 'done');
          });
        }
        if (want.outcome === 'relayed' && script.ending === 'stay') {
          // The server stays: close once everything it sent has arrived.
          const total = want.data.length;
          let seen = 0;
          ws.on('message', (d: Buffer) => {
            seen += d.length;
            if (seen >= total) ws.close(1000, 'done');
          });
        }
        end = await giveUpAfter(got, 30_000, 'the session ending');
        await giveUpAfter(fake.done, 30_000, 'the relay hanging up on the fake server');
        run.cases++;
        run.closes.add(end.code);
        assert.equal(end.error, undefined, `no client error: ${end.error?.message}`);
        assert.equal(end.textMessages, 0, 'no text messages');
        switch (want.outcome) {
          case 'relayed':
            run.outcomes.add('relayed');
            run.bytesRelayed += end.data.length;
            assert.equal(end.data.length, want.data.length, 'every byte of the server reached the browser');
            assert.ok(end.data.equals(want.data), 'the bytes, unchanged');
            assert.equal(end.code, 1000, `closed normally: ${end.code} ${end.reason}`);
            if (script.ending === 'stay') assert.ok(fake.received().equals(CLIENT_HELLO), 'the server got the browser bytes');
            break;
          case 'handshake': {
            // The browser sees only what the relay says: its 3.8 greeting, then a failure
            // ("no security types" + reason) or the offer of None; never the server's bytes.
            assert.ok(end.data.subarray(0, 12).equals(CLIENT_HELLO), `greeted with 3.8: ${JSON.stringify(end.data.subarray(0, 12).toString('latin1'))}`);
            const rest = end.data.subarray(12);
            if (end.code !== 1000) {
              run.outcomes.add('handshake refused');
              assert.ok(HANDSHAKE_CODES.has(end.code), `a handshake failure (${HANDSHAKE_FAILURES.join(', ')}), got ${end.code} (${failureOf(end.code)}) "${end.reason}"`);
              if (rest.length) {
                assert.equal(rest[0], 0, 'an RFB failure: no security types');
                assert.equal(rest.readUInt32BE(1), rest.length - 5, 'then exactly the reason');
              }
            } else {
              run.outcomes.add('handshake completed');
              assert.deepEqual([...rest.subarray(0, 2)], [1, 1], 'None offered');
            }
            // The server got the relay's version answer first, never the browser's own bytes.
            const got = fake.received();
            if (got.length) assert.match(got.subarray(0, 12).toString('latin1'), /^RFB 003\.00[378]\n$/);
            break;
          }
          case 'refused':
            assert.equal(end.data.length, 0, 'no byte of a non-VNC server reaches the browser');
            assert.equal(fake.received().length, 0, 'no browser byte reaches a non-VNC server');
            run.outcomes.add('refused');
            assert.ok(
              want.kinds.some((k) => FAILURES[k].code === end.code),
              `${want.kinds.join(' or ')}, got ${end.code} (${failureOf(end.code)}) "${end.reason}"`,
            );
            break;
        }
      } finally {
        await fake.close();
      }
    });
  };

  let next = 0;
  await Promise.all(
    Array.from({ length: SLOTS }, async (_, slot) => {
      for (let i = next++; i < count; i = next++) await play(slot, i);
    }),
  );
  return run;
}

// ---- the test -------------------------------------------------------------------------------------

describe(`fuzz: bytes from a fake VNC server (${replay(SEED)}, ${CASES} targets)`, () => {
  let serve: FuzzServe;
  let fdBase = 0;
  let rssWarm = 0;

  before(async () => {
    serve = await startFuzzServe('vnc');
  });
  after(() => serve?.close());

  it('warms up with a valid target', async () => {
    const run = await runFakeTargets(
      serve,
      'vnc-warm',
      3,
      (id, port) => ({ id, host: '127.0.0.1', port }),
      expectWithoutPassword,
      () => ({ kind: 'valid', chunks: [{ delay: 0, bytes: Buffer.from('RFB 003.008\n') }], ending: 'close' }),
    );
    assert.equal(run.cases, 3);
    await waitSessionsClosed(serve);
    await new Promise((r) => setTimeout(r, 200));
    fdBase = serve.vitals().fds;
    rssWarm = serve.vitals().rssKiB;
  });

  it('relays a valid greeting and all that follows, or refuses with 4002 "not a VNC server" (no password)', { timeout: 900_000 }, async () => {
    const run = await runFakeTargets(serve, 'vnc', CASES, (id, port) => ({ id, host: '127.0.0.1', port }), expectWithoutPassword);
    await waitSessionsClosed(serve);
    const fds = await waitFdsBack(serve, fdBase);
    const status = await serve.assertServing();
    assert.equal(status.relay.totals.sessionsOpen, 0);
    const rss = serve.vitals().rssKiB;
    assert.ok(rss - rssWarm < RSS_GROWTH_KIB, `RSS grew from ${mb(rssWarm)} to ${mb(rss)}`);
    recordReliability({
      table: 'inputs',
      name: 'Bytes from a fake VNC server (no password)',
      tried: `${run.cases} fake targets: random and almost-valid greetings, garbage after a valid one, lying security lengths, up to 2 MB, cut short, trickled, silent; then FIN, RST or open; ${SLOTS} at a time; ${replay(SEED)}`,
      outcome:
        `sessions ${run.outcomes}; browser close codes ${run.closes}; ${run.bytesRelayed} bytes relayed unchanged; no byte crossed to or from a non-VNC server` +
        `; sessions open 0, descriptors ${fds}/${fdBase}; RSS ${mb(rssWarm)} → ${mb(rss)}; crashes 0`,
    });
  });

  it('with a stored password: greets the browser itself and fails in words, never relaying server garbage', { timeout: 900_000 }, async () => {
    const run = await runFakeTargets(
      serve,
      'vnc-password',
      CASES,
      (id, port) => ({ id, host: '127.0.0.1', port, password: PASSWORD }),
      expectWithPassword,
    );
    await waitSessionsClosed(serve);
    const fds = await waitFdsBack(serve, fdBase);
    await serve.assertServing();
    const rss = serve.vitals().rssKiB;
    assert.ok(rss - rssWarm < RSS_GROWTH_KIB, `RSS grew from ${mb(rssWarm)} to ${mb(rss)}`);
    const logs = [...serve.proc.stdout, ...serve.proc.stderr].join('\n');
    assert.match(logs, /vnc handshake failed/, 'the failures were logged');
    assert.equal(logs.includes(PASSWORD), false, 'the password is in no log line');
    recordReliability({
      table: 'inputs',
      name: 'Bytes from a fake VNC server (stored password, relay-side handshake)',
      tried: `${run.cases} fake targets with a stored VNC password, same scripts (garbage, almost-valid and unknown versions, lying type counts and reason lengths, cut short, trickled, silent); ${SLOTS} at a time; ${replay(SEED)}`,
      outcome: `sessions ${run.outcomes}; browser close codes ${run.closes}; the browser saw only the relay's greeting and failure messages; sessions open 0, descriptors ${fds}/${fdBase}; RSS ${mb(rssWarm)} → ${mb(rss)}; crashes 0`,
    });
  });

  it(
    'refuses a target that closes before a full greeting with 4002 "not a VNC server"',
    { timeout: 120_000 },
    async () => {
      for (const bytes of ['', 'RFB 003.0']) {
        const script: FakeScript = { kind: 'cut-short', chunks: [{ delay: 0, bytes: Buffer.from(bytes) }], ending: 'close' };
        const fake = await startFake(script);
        try {
          const put = await rawHttp(serve.port, {
            method: 'PUT',
            path: `${API}/config`,
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ targets: [{ id: 'cut', name: 'Cut', host: '127.0.0.1', port: fake.port }] }),
          });
          assert.equal(put.status, 200);
          const ws = await openClient(`ws://127.0.0.1:${serve.port}${RELAY}?target=cut`, ['binary']);
          const end = await giveUpAfter(collect(ws), 30_000, 'the session ending');
          assert.equal(end.code, FAILURES['not-vnc'].code, `sent ${JSON.stringify(bytes)} then FIN: got ${end.code} "${end.reason}"`);
        } finally {
          await fake.close();
        }
      }
    },
  );
});
