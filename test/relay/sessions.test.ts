/**
 * Black-box tests of many sessions at once and of what the relay reports about them: counters,
 * session snapshots and one log line per session start and end, never with payload in it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { linesOf, logFields, relayFor } from '../helpers/relay-harness.js';
import { recordReliability } from '../helpers/reliability.js';
import { prng, randomBytes } from '../helpers/stream.js';
import { startEcho } from '../helpers/targets.js';
import { openClient, receiveBytes, whenClosed } from '../helpers/ws-client.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };
const MARKER = 'PAYLOAD-MARKER-5f1d9c-do-not-log';

describe('Relay sessions', () => {
  it('runs 200 concurrent sessions that each echo a unique payload, counted by stats() and sessionInfo()', LIMIT, async (t) => {
    const echo = await startEcho();
    t.after(() => echo.close());
    const h = await relayFor(t, { host: '127.0.0.1', port: echo.port, id: 'echo' });
    const n = 200;
    const rand = prng(200);
    // Unique lengths tie each session snapshot to its client.
    const payloads = Array.from({ length: n }, (_, i) =>
      Buffer.concat([Buffer.from(`${MARKER}:${i}:`), randomBytes(rand, 1000 + i * 37)]),
    );
    const clients = await Promise.all(payloads.map(() => openClient(h.url)));
    const echoed = await Promise.all(
      clients.map((ws, i) => {
        const back = receiveBytes(ws, payloads[i]!.length);
        ws.send(payloads[i]!);
        return back;
      }),
    );
    for (const [i, got] of echoed.entries()) assert.ok(got.equals(payloads[i]!), `session ${i} got its own payload back`);

    const stats = h.relay.stats();
    assert.equal(stats.sessionsOpen, n);
    assert.equal(stats.sessionsTotal, n);
    const infos = h.relay.sessionInfo();
    assert.equal(infos.length, n);
    assert.equal(new Set(infos.map((s) => s.id)).size, n, 'session ids are unique');
    for (const s of infos) {
      assert.equal(s.connected, true);
      assert.deepEqual(s.target, { host: '127.0.0.1', port: echo.port, id: 'echo' });
      assert.match(s.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(s.bytesDown, s.bytesUp, `session ${s.id}: echoed everything`);
    }
    assert.deepEqual(
      infos.map((s) => s.bytesUp).sort((a, b) => a - b),
      payloads.map((p) => p.length).sort((a, b) => a - b),
    );

    await Promise.all(
      clients.map((ws) => {
        const closed = whenClosed(ws);
        ws.close(1000);
        return closed;
      }),
    );
    await h.relay.idle();
    const sent = payloads.reduce((sum, p) => sum + p.length, 0);
    assert.deepEqual(h.relay.stats(), { sessionsOpen: 0, sessionsTotal: n, bytesUp: sent, bytesDown: sent });
    assert.deepEqual(h.relay.sessionInfo(), []);
    recordReliability({
      table: 'load',
      name: '200 concurrent relay sessions',
      tried: `${n} sessions open at once through one relay to an echo server, each echoing its own 1–8 KB payload (seed 200)`,
      outcome: `every session got exactly its own payload back; counters and snapshots right (${n} open, then 0)`,
      bytesLost: 0,
    });
  });

  it('logs one "session start" and one "session end" line per session, with target, duration, bytes and code, and never the payload', LIMIT, async (t) => {
    const echo = await startEcho();
    t.after(() => echo.close());
    const h = await relayFor(t, { host: '127.0.0.1', port: echo.port });
    const sizes = [1, 500, 70_000];
    for (const [i, size] of sizes.entries()) {
      const ws = await openClient(h.url);
      const payload = Buffer.alloc(size, MARKER);
      // Several messages, all carrying the marker.
      for (let off = 0; off < size; off += 60_000) ws.send(payload.subarray(off, off + 60_000));
      assert.ok((await receiveBytes(ws, size)).equals(payload));
      const closed = whenClosed(ws);
      ws.close(i === 2 ? 4001 : 1000, 'user left');
      await closed;
    }
    await h.relay.idle();

    const starts = linesOf(h.logs, 'session start');
    const ends = linesOf(h.logs, 'session end');
    assert.equal(starts.length, sizes.length);
    assert.equal(ends.length, sizes.length);
    for (const [i, size] of sizes.entries()) {
      const start = logFields(starts[i]!);
      const end = logFields(ends.find((l) => logFields(l).id === start.id)!);
      assert.match(starts[i]!, /^info {2}relay: session start /);
      assert.equal(start.target, `127.0.0.1:${echo.port}`);
      assert.match(start.peer!, /^127\.0\.0\.1:\d+$/);
      assert.equal(end.target, `127.0.0.1:${echo.port}`);
      assert.match(end.duration!, /^\d+\.\d{3}s$/);
      assert.equal(end.up, String(size));
      assert.equal(end.down, String(size));
      assert.equal(end.code, i === 2 ? '4001' : '1000');
      assert.equal(end.reason, 'user left');
    }
    const all = h.logs.join('\n');
    assert.ok(!all.includes(MARKER.slice(0, 14)), 'no payload in the log');
    assert.ok(!all.includes(Buffer.from(MARKER).toString('base64').slice(0, 16)), 'no payload in the log, not even encoded');
    assert.ok(!all.includes(Buffer.from(MARKER).toString('hex').slice(0, 16)), 'no payload in the log, not even hex');
  });
});
