/**
 * Black-box tests of the relay's flow control, run against the CLI as a child process so its
 * memory can be read from /proc: a stalled reader on either side must pause the other side, and
 * the relay's resident memory must not grow with the bytes offered.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type net from 'node:net';
import { describe, it } from 'node:test';
import { recordReliability } from '../helpers/reliability.js';
import { spawnRelay } from '../helpers/cli.js';
import { startFlood, startTarget } from '../helpers/targets.js';
import { settle, sleep, waitFor } from '../helpers/wait.js';
import { openClient, receiveBytes, sendAll, whenClosed } from '../helpers/ws-client.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const OFFERED = 200 * MiB;
const WARM_UP = 32 * MiB;
/** Allowed growth of the relay's RSS while a peer is stalled and the other side offers OFFERED bytes. */
const MAX_GROWTH_KIB = 8 * 1024;

/** A 64 KiB block stamped with its index: loss, duplication or reordering changes the hash. */
function block(pattern: Buffer, index: number): Buffer {
  const b = Buffer.from(pattern);
  b.writeUInt32BE(index, 0);
  return b;
}

function makePattern(): Buffer {
  const p = Buffer.alloc(64 * KiB);
  for (let i = 0; i < p.length; i++) p[i] = (i * 131 + 17) & 0xff;
  return p;
}

/**
 * The relay's RSS once the flood is held: the smallest of five samples 200 ms apart. Read buffers
 * already dropped but not yet collected (a busy machine delays the relay's GC) go within that
 * time; bytes the relay really buffers stay in every sample.
 */
async function heldRssKiB(relay: { rssKiB(): Promise<number> }): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(200);
    least = Math.min(least, await relay.rssKiB());
  }
  return least;
}

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 120_000 };

describe('Relay backpressure (CLI child process)', () => {
  it('pauses a flooding target while the browser does not read, with bounded memory, and loses nothing', LIMIT, async (t) => {
    // Connection 0 warms the relay up with a normal transfer; connection 1 floods a stalled browser.
    const flood = await startFlood((i) => (i === 0 ? WARM_UP : OFFERED));
    t.after(() => flood.close());
    const relay = await spawnRelay(`127.0.0.1:${flood.port}`, ['--heartbeat', '0']);
    t.after(() => relay.stop('SIGKILL'));

    const warm = await openClient(relay.url);
    await receiveBytes(warm, WARM_UP);
    await whenClosed(warm);
    await flood.connections.next();
    const before = await relay.rssKiB();

    const ws = await openClient(relay.url);
    ws.pause(); // stop reading the socket: the browser is stalled
    const conn = await flood.connections.next();
    const accepted = await settle(() => conn.accepted);
    const after = await heldRssKiB(relay);

    t.diagnostic(`target accepted ${(accepted / MiB).toFixed(1)} MiB of ${OFFERED / MiB} MiB; relay RSS ${before} KiB → ${after} KiB`);
    assert.equal(conn.blocked, true, 'the target is waiting for drain');
    assert.ok(accepted < OFFERED / 4, `the target was paused: ${accepted} of ${OFFERED} bytes accepted`);
    assert.ok(after - before <= MAX_GROWTH_KIB, `relay RSS grew by ${after - before} KiB (limit ${MAX_GROWTH_KIB} KiB)`);

    // Reading again, the browser gets every byte in order, then the close.
    const hash = createHash('sha256');
    let received = 0;
    ws.on('message', (data: Buffer) => {
      received += data.length;
      hash.update(data);
    });
    const closed = whenClosed(ws);
    ws.resume();
    const sent = await conn.finished;
    const { code, reason } = await closed;
    assert.equal(received, OFFERED);
    assert.equal(hash.digest('hex'), sent);
    assert.deepEqual({ code, reason }, { code: 1000, reason: 'target closed' });
    recordReliability({
      table: 'load',
      name: 'browser stalls while the VNC server floods',
      tried: `server offers ${OFFERED / MiB} MiB as fast as it can while the browser reads nothing, then reads again (relay CLI child)`,
      outcome: `server paused after ${(accepted / MiB).toFixed(1)} MiB; relay RSS +${((after - before) / 1024).toFixed(1)} MiB (limit ${MAX_GROWTH_KIB / 1024}); all ${OFFERED / MiB} MiB delivered in order afterwards`,
      bytesLost: 0,
    });
  });

  it('pauses a flooding browser while the target does not read, with bounded memory, and loses nothing', LIMIT, async (t) => {
    // Connection 0 reads normally (warm-up); connection 1 does not read until told to.
    const target = await startTarget((socket: net.Socket, index) => {
      const hash = createHash('sha256');
      let bytes = 0;
      socket.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      if (index > 0) socket.pause();
      const ended = new Promise<void>((resolve) => socket.on('end', resolve));
      return {
        socket,
        ended,
        get bytes() {
          return bytes;
        },
        digest: () => hash.digest('hex'),
      };
    });
    t.after(() => target.close());
    const relay = await spawnRelay(`127.0.0.1:${target.port}`, ['--heartbeat', '0']);
    t.after(() => relay.stop('SIGKILL'));
    const pattern = makePattern();

    const warm = await openClient(relay.url);
    let w = 0;
    await sendAll(warm, () => (w < WARM_UP / pattern.length ? block(pattern, w++) : undefined));
    const warmConn = await target.connections.next();
    await waitFor('the warm-up bytes at the target', () => warmConn.bytes === WARM_UP);
    warm.close();
    await whenClosed(warm);
    const before = await relay.rssKiB();

    const ws = await openClient(relay.url);
    const hash = createHash('sha256');
    let offered = 0;
    let index = 0;
    const sending = sendAll(ws, () => {
      if (offered >= OFFERED) return undefined;
      const b = block(pattern, index++);
      offered += b.length;
      hash.update(b);
      return b;
    });
    const conn = await target.connections.next();
    const stuck = await settle(() => offered);
    const after = await heldRssKiB(relay);

    t.diagnostic(`browser got ${(stuck / MiB).toFixed(1)} MiB of ${OFFERED / MiB} MiB out; relay RSS ${before} KiB → ${after} KiB`);
    assert.ok(stuck < OFFERED / 4, `the browser was paused: ${stuck} of ${OFFERED} bytes sent`);
    assert.ok(after - before <= MAX_GROWTH_KIB, `relay RSS grew by ${after - before} KiB (limit ${MAX_GROWTH_KIB} KiB)`);

    // Reading again, the target gets every byte in order, then FIN after the browser closes.
    conn.socket.resume();
    await sending;
    const closed = whenClosed(ws);
    ws.close(1000);
    await conn.ended;
    assert.equal(conn.bytes, OFFERED);
    assert.equal(conn.digest(), hash.digest('hex'));
    assert.equal((await closed).code, 1000);
    recordReliability({
      table: 'load',
      name: 'VNC server stalls while the browser floods',
      tried: `browser offers ${OFFERED / MiB} MiB while the server reads nothing, then reads again (relay CLI child)`,
      outcome: `browser paused after ${(stuck / MiB).toFixed(1)} MiB; relay RSS +${((after - before) / 1024).toFixed(1)} MiB (limit ${MAX_GROWTH_KIB / 1024}); all ${OFFERED / MiB} MiB delivered in order afterwards`,
      bytesLost: 0,
    });
  });
});
