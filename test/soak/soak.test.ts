/**
 * Soak: 50 viewers at once through the real app (`ctrlx-novnc serve`, a child process started
 * with the snap's Node flags and malloc settings) to a VNC-looking echo server, for
 * `SOAK_SECONDS` (default 60) of traffic. Each viewer sends bursts of seeded frames of random
 * size (12 B to 64 KiB, checksummed and numbered) and waits for them to come back, pausing
 * between bursts and reconnecting every 5–20 s, so sessions open and close all the time.
 *
 * Asserted: not one byte lost, altered or reordered (every frame's sequence number and checksum
 * checked on the way back); the relay's byte counters match what the viewers sent exactly; after
 * the last viewer leaves, no session is open and the app holds exactly as many file descriptors
 * as before the soak; and its resident memory shows no growth trend.
 *
 * The memory rule: RSS is read from /proc/<pid>/status every 2 s while the viewers run. The first
 * third of the samples is warm-up (heap and allocator settling on their working size) and is not
 * judged. A leak makes RSS climb steadily with time (the load is steady), so the mean of the last
 * third would sit above the mean of the middle third by a third of what leaked over the run; GC
 * and allocator noise go up and down and do not. The rule allows the last third to be at most
 * max(8 MiB, 10 % of the middle third) above it: over 60 s that catches a leak of about 24 MiB a
 * minute or more, over `SOAK_SECONDS=600` one of about 2.5 MiB a minute. The descriptor and
 * session counts are exact checks; the memory rule is deliberately coarse, to stay quiet on a busy
 * machine.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { VIEWER_HELLO, config, target, watchable } from '../helpers/app.js';
import { rssKiB } from '../helpers/proc.js';
import { recordReliability } from '../helpers/reliability.js';
import { FrameSource, FrameVerifier, between, prng } from '../helpers/stream.js';
import type { TcpTarget } from '../helpers/targets.js';
import { sleep } from '../helpers/wait.js';
import {
  GREETING,
  assertFdsBackTo,
  assertNoSessions,
  fdBaseline,
  openViewer,
  startAppChild,
  startVncEcho,
  stopCleanly,
  type AppChild,
} from '../helpers/app-child.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const VIEWERS = 50;
const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 60);
const SEED = 0x50a6;
const SAMPLE_MS = 2000;
/** The snap's daemon command line and environment (snap/snapcraft.yaml `apps.ctrlx-novnc`). */
const SNAP_NODE_ARGS = ['--no-icu-timezone-data', '--no-opt', '--no-maglev', '--optimize-for-size'];
const SNAP_ENV = {
  NODE_OPTIONS: '--max-old-space-size=32 --max-semi-space-size=1',
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
/** How long one burst may take to come back before the soak calls the relay stuck. */
const STALL_MS = 30_000;

// The memory rule needs at least 9 samples, 2 s apart.
if (!(SECONDS >= 20)) throw new RangeError(`SOAK_SECONDS must be at least 20 (seconds), not ${process.env['SOAK_SECONDS']}`);

interface Totals {
  sessions: number;
  frames: number;
  bytes: number;
  bytesLost: number;
  /** Bytes of the RFB wrapping around the frames (handshake, message headers), each way. */
  wrapping: number;
}

/**
 * Sessions to a configured target watch, so the relay checks their messages: each viewer opens
 * with an RFB handshake and sends each frame inside a message a watcher may send (watchable()).
 * The echo comes back the same way; this takes the wrapping off again, in the order it was put
 * on, and hands the verifier the frames alone.
 */
class Unwrap {
  private readonly parts: { skip: number; pass: number }[] = [];
  /** Bytes of wrapping put on so far. */
  added = 0;
  private readonly verifier: FrameVerifier;

  constructor(verifier: FrameVerifier) {
    this.verifier = verifier;
  }

  /** Wraps `frame` to send, noting what to take off its echo. */
  wrap(frame: Buffer): Buffer {
    const wrapped = watchable(frame);
    this.parts.push({ skip: wrapped.length - frame.length, pass: frame.length });
    this.added += wrapped.length - frame.length;
    return wrapped;
  }

  /** The handshake bytes sent first: all taken off. */
  hello(): Buffer {
    this.parts.push({ skip: VIEWER_HELLO.length, pass: 0 });
    this.added += VIEWER_HELLO.length;
    return VIEWER_HELLO;
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length && this.parts.length) {
      const part = this.parts[0]!;
      if (part.skip > 0) {
        const n = Math.min(part.skip, chunk.length - i);
        part.skip -= n;
        i += n;
      } else {
        const n = Math.min(part.pass, chunk.length - i);
        if (n) this.verifier.push(chunk.subarray(i, i + n));
        part.pass -= n;
        i += n;
      }
      if (part.skip === 0 && part.pass === 0) this.parts.shift();
    }
  }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * One viewer: sessions of 5–20 s back to back until `deadline`; in each, bursts of 1–6 frames
 * sent, all echoed back and checked, then a pause of 50–500 ms.
 */
async function viewer(app: AppChild, index: number, deadline: number, totals: Totals): Promise<void> {
  const rand = prng(SEED + index);
  for (let session = 0; Date.now() < deadline; session++) {
    const verifier = new FrameVerifier(64 * KiB);
    // A few bytes under the 64 KiB message limit: the wrapping adds up to 7.
    const source = new FrameSource((SEED << 8) + index * 1000 + session, Number.MAX_SAFE_INTEGER, 64 * KiB - 8);
    const unwrap = new Unwrap(verifier);
    const v = await openViewer(app.relayUrl('echo'), { verifier: unwrap as unknown as FrameVerifier });
    const label = `viewer ${index} session ${session}`;
    let closed = false;
    void v.closed.then(() => (closed = true));
    assert.equal(await v.greeting, GREETING, label);
    v.ws.send(unwrap.hello());
    let wake: () => void = () => {};
    v.ws.on('message', () => {
      if (verifier.frames >= source.produced || verifier.errors.length) wake();
    });
    const ends = Math.min(deadline, Date.now() + between(rand, 5000, 20_000));
    while (Date.now() < ends) {
      const burst = between(rand, 1, 6);
      for (let i = 0; i < burst; i++) v.ws.send(unwrap.wrap(source.next()!));
      if (verifier.frames < source.produced) {
        let timer: NodeJS.Timeout | undefined;
        const back = new Promise<void>((resolve) => (wake = resolve));
        const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), STALL_MS)));
        const r = await Promise.race([back, stalled, v.closed]);
        clearTimeout(timer);
        assert.notEqual(r, 'stalled', `${label}: echo stalled at frame ${verifier.frames} of ${source.produced}`);
      }
      assert.equal(closed, false, `${label}: closed by the app`);
      assert.deepEqual(verifier.errors, [], label);
      await sleep(between(rand, 50, 500));
    }
    v.ws.close(1000);
    const end = await v.closed;
    assert.equal(end.code, 1000, `${label}: closed with ${end.code} ${end.reason}`);
    assert.deepEqual(verifier.errors, [], label);
    assert.equal(verifier.frames, source.produced, `${label}: frames back`);
    assert.equal(verifier.partial, 0, `${label}: no half frame`);
    totals.bytesLost += source.bytes - verifier.bytes;
    totals.wrapping += unwrap.added;
    totals.sessions++;
    totals.frames += verifier.frames;
    totals.bytes += source.bytes;
  }
}

describe(`soak: ${VIEWERS} viewers through the app for ${SECONDS} s`, () => {
  let echo: TcpTarget<net.Socket>;
  let app: AppChild;
  before(async () => {
    echo = await startVncEcho();
    app = await startAppChild({
      initial: config(target('echo', echo.port)),
      // Above the default limits (32 viewers, 16 per target): this is about endurance, not limits.
      // Twice the viewers: a session the browser has left still counts until the server's side
      // has closed too, and viewers reconnect at once.
      args: ['--max-sessions', String(2 * VIEWERS), '--max-sessions-per-target', String(2 * VIEWERS)],
      nodeArgs: SNAP_NODE_ARGS,
      env: SNAP_ENV,
    });
  });
  after(async () => {
    await app?.cleanup();
    await echo?.close();
  });

  it('loses no byte, leaks no descriptor or session, and shows no memory growth trend', { timeout: (SECONDS + 120) * 1000 }, async (t) => {
    // Warm-up: one viewer for 2 s, then the baselines.
    const warm: Totals = { sessions: 0, frames: 0, bytes: 0, bytesLost: 0, wrapping: 0 };
    await viewer(app, VIEWERS, Date.now() + 2000, warm);
    assert.equal(warm.sessions, 1);
    await assertNoSessions(app);
    const fdsBefore = await fdBaseline(app.pid);
    const rssBefore = rssKiB(app.pid);

    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssKiB(app.pid)), SAMPLE_MS);
    const totals: Totals = { sessions: 0, frames: 0, bytes: 0, bytesLost: 0, wrapping: 0 };
    const started = Date.now();
    try {
      const deadline = started + SECONDS * 1000;
      await Promise.all(Array.from({ length: VIEWERS }, (_, i) => viewer(app, i, deadline, totals)));
    } finally {
      clearInterval(sampler);
    }
    const ranMs = Date.now() - started;

    // Every byte back, in order, checked frame by frame (in viewer()); and counted by the relay.
    assert.equal(totals.bytesLost, 0);
    await assertNoSessions(app);
    const status = await app.http.status();
    const sent = totals.bytes + warm.bytes + totals.wrapping + warm.wrapping;
    const sessions = totals.sessions + warm.sessions;
    assert.equal(status.relay.totals.sessionsTotal, sessions, 'sessions counted by the relay');
    assert.equal(status.relay.totals.bytesUp, sent, 'bytes from the viewers, as the relay counted them');
    assert.equal(status.relay.totals.bytesDown, sent + GREETING.length * sessions, 'bytes to the viewers: the echo plus one greeting per session');

    // Descriptors back to where they were.
    await assertFdsBackTo(app.pid, fdsBefore);

    // Memory: no growth trend (see the rule at the top of the file).
    assert.ok(samples.length >= 9, `only ${samples.length} RSS samples in ${ranMs} ms`);
    const third = Math.floor(samples.length / 3);
    const middle = mean(samples.slice(third, 2 * third));
    const last = mean(samples.slice(2 * third));
    const allowed = Math.max(8 * 1024, middle * 0.1);
    const peak = Math.max(...samples);
    const rssAfter = rssKiB(app.pid);
    t.diagnostic(
      `${totals.sessions} sessions, ${totals.frames} frames, ${(totals.bytes / MiB).toFixed(0)} MiB each way in ${(ranMs / 1000).toFixed(0)} s; ` +
        `RSS ${(rssBefore / 1024).toFixed(1)} MiB before, middle third ${(middle / 1024).toFixed(1)}, last third ${(last / 1024).toFixed(1)}, peak ${(peak / 1024).toFixed(1)}, after ${(rssAfter / 1024).toFixed(1)} MiB; ` +
        `samples ${samples.map((s) => (s / 1024).toFixed(0)).join(' ')}`,
    );
    assert.ok(last - middle <= allowed, `RSS grew from ${(middle / 1024).toFixed(1)} MiB (middle third) to ${(last / 1024).toFixed(1)} MiB (last third), more than ${(allowed / 1024).toFixed(1)} MiB`);

    await stopCleanly(app);
    recordReliability({
      table: 'load',
      name: `${VIEWERS} viewers soak through the app`,
      tried: `${VIEWERS} concurrent viewers × ${SECONDS} s, bursts of 1–6 checksummed frames of 12 B–64 KiB echoed back, reconnecting every 5–20 s; app with the snap's Node flags, session limits raised to ${2 * VIEWERS}`,
      outcome: `${totals.sessions} sessions, ${totals.frames} frames, ${(totals.bytes / MiB).toFixed(0)} MiB each way, all intact and in order; relay byte counters exact; RSS middle/last third ${(middle / 1024).toFixed(0)}/${(last / 1024).toFixed(0)} MiB (peak ${(peak / 1024).toFixed(0)}); sessions 0 and descriptors back to ${fdsBefore} afterwards`,
      bytesLost: totals.bytesLost,
    });
  });
});
