/**
 * Fuzzing the relay's WebSocket with frames written by hand on a raw socket to a real `serve`
 * process: random opcodes (reserved ones too), RSV bits, masked and unmasked frames, 7-, 16- and
 * 64-bit lengths (non-minimal, and declared far beyond what is sent or allowed), fragmented
 * messages with control frames between the fragments, oversized and fragmented control frames,
 * pings and pongs with odd payloads, close frames with bad codes, bad lengths and invalid UTF-8,
 * text messages (valid and not), truncated frames. A model of the RFC 6455 receiver (as `ws`
 * applies it, 64 KiB message limit) predicts each session's end: the close code the server sends
 * (1002, 1007, 1009, the relay's 1003 for text, or the echo of the client's close), or no close
 * frame after a truncated one. The target, a VNC-like echo server, must receive exactly the bytes
 * of the valid binary messages (nothing of any other frame), the browser side must get the greeting
 * and a prefix of the echo as unmasked binary frames. After each batch no session is open and the
 * process has no more descriptors than before; it survives with bounded memory.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { API, RELAY } from '../helpers/app.js';
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
import { startTarget, type TcpTarget } from '../helpers/targets.js';
import { FrameParser, closePayload, handshake, parseResponseHead, type WsFrame } from '../helpers/ws-client.js';
import { FAILURES } from '../../src/common/failures.js';

const SEED = fuzzSeed();
const SESSIONS = fuzzBudget(0.5);
/** Sessions run side by side, each lane to its own target so bytes can be matched to sessions. */
const LANES = 3;
/** Sessions between two checks that nothing stays open. */
const BATCH = 30;
const MAX_PAYLOAD = 64 * 1024;
const GREETING = Buffer.from('RFB 003.008\n');
const RSS_GROWTH_KIB = 40 * 1024;

// ---- frames -----------------------------------------------------------------------------------

interface FrameSpec {
  fin: boolean;
  /** RSV1..3 as bits 2..0. */
  rsv: number;
  opcode: number;
  /** The masking key, or null for an unmasked frame. */
  mask: Buffer | null;
  payload: Buffer;
  /** The length encoding: 7-bit, 16-bit (126) or 64-bit (127). */
  form: 7 | 16 | 64;
  /** The length written in the header (default: the payload's). */
  declared: bigint;
  /** Payload bytes actually written (fewer than declared: a truncated frame). */
  send: number;
  /** For the failure message. */
  label: string;
}

function encode(f: FrameSpec): Buffer {
  const len7 = f.form === 7 ? Number(f.declared) : f.form === 16 ? 126 : 127;
  const head = Buffer.alloc(2 + (f.form === 16 ? 2 : f.form === 64 ? 8 : 0) + (f.mask ? 4 : 0));
  head[0] = (f.fin ? 0x80 : 0) | ((f.rsv & 7) << 4) | (f.opcode & 0x0f);
  head[1] = (f.mask ? 0x80 : 0) | len7;
  let at = 2;
  if (f.form === 16) {
    head.writeUInt16BE(Number(f.declared), at);
    at += 2;
  }
  if (f.form === 64) {
    head.writeBigUInt64BE(f.declared, at);
    at += 8;
  }
  const body = Buffer.from(f.payload.subarray(0, f.send));
  if (f.mask) {
    f.mask.copy(head, at);
    for (let i = 0; i < body.length; i++) body[i]! ^= f.mask[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

/** The close code RFC 6455 allows on the wire (as `ws` checks it). */
function validCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** How a session ends: the server's close code, or `none` (no close frame: the client hung up mid-frame). */
type End = { code: number; why: string } | { code: 'none'; why: string };

/**
 * The server's receiver, as RFC 6455 and `ws` define it (no extensions, 64 KiB messages), plus the
 * relay's rule that a text message closes with 1003. Feeds frames one by one.
 */
class ReceiverModel {
  private fragmented = 0;
  private total = 0;
  private parts: Buffer[] = [];
  /** Payloads of the complete binary messages, in order: all the target may ever see. */
  readonly delivered: Buffer[] = [];
  readonly pings: Buffer[] = [];

  /** Returns how the session ends with this frame, or null when it goes on. */
  feed(f: FrameSpec): End | null {
    const len7 = f.form === 7 ? Number(f.declared) : f.form === 16 ? 126 : 127;
    if (f.rsv & 0b011) return { code: 1002, why: 'RSV2/RSV3 set' };
    if (f.rsv & 0b100) return { code: 1002, why: 'RSV1 set without an extension' };
    const op = f.opcode;
    if (op === 0) {
      if (!this.fragmented) return { code: 1002, why: 'continuation without a message' };
    } else if (op === 1 || op === 2) {
      if (this.fragmented) return { code: 1002, why: 'new message inside a fragmented one' };
    } else if (op >= 8 && op <= 10) {
      if (!f.fin) return { code: 1002, why: 'fragmented control frame' };
      if (len7 > 125 || (op === 8 && len7 === 1)) return { code: 1002, why: 'control frame length' };
    } else return { code: 1002, why: `reserved opcode ${op}` };
    if (!f.mask) return { code: 1002, why: 'unmasked client frame' };
    if (f.form === 64 && f.declared >> 32n > 2n ** 21n - 1n) return { code: 1009, why: 'length > 2^53 - 1' };
    const length = Number(f.declared);
    if (length && op < 8) {
      this.total += length;
      if (this.total > MAX_PAYLOAD) return { code: 1009, why: 'message above 64 KiB' };
    }
    if (f.send < length) return { code: 'none', why: 'truncated frame, then FIN' };
    if (op >= 8) {
      if (op === 8) {
        if (length === 0) return { code: 1005, why: 'empty close, echoed' };
        const code = f.payload.readUInt16BE(0);
        if (!validCloseCode(code)) return { code: 1002, why: `close code ${code}` };
        if (!isUtf8(f.payload.subarray(2))) return { code: 1007, why: 'close reason not UTF-8' };
        return { code, why: 'close, echoed' };
      }
      if (op === 9) this.pings.push(f.payload);
      return null;
    }
    const dataOp = op === 0 ? this.fragmented : op;
    this.parts.push(f.payload);
    if (!f.fin) {
      this.fragmented = dataOp;
      return null;
    }
    const data = Buffer.concat(this.parts);
    this.fragmented = 0;
    this.total = 0;
    this.parts = [];
    if (dataOp === 2) {
      this.delivered.push(data);
      return null;
    }
    if (!isUtf8(data)) return { code: 1007, why: 'text not UTF-8' };
    return { code: FAILURES['text-message'].code, why: 'text message (the relay takes binary only)' };
  }
}

/** A frame with sensible defaults: FIN, no RSV, masked, minimal length, all sent. */
function frame(rng: Rng, opcode: number, payload: Buffer, over: Partial<FrameSpec> = {}): FrameSpec {
  const n = payload.length;
  const form: 7 | 16 | 64 = n < 126 ? 7 : n < 65536 ? 16 : 64;
  return {
    fin: true,
    rsv: 0,
    opcode,
    mask: rng.chance(0.05) ? Buffer.alloc(4) : rng.bytes(4),
    payload,
    form,
    declared: BigInt(n),
    send: n,
    label: `op${opcode}`,
    ...over,
  };
}

function payloadSize(rng: Rng): number {
  return rng.weighted<() => number>([
    [6, () => rng.int(0, 125)],
    [3, () => rng.int(126, 4000)],
    [1, () => rng.int(4000, MAX_PAYLOAD)],
  ])();
}

/** Valid UTF-8 text (maybe with multi-byte characters cut across fragments later). */
function utf8Text(rng: Rng, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => rng.pick(['a', 'é', '€', '😀', ' ', '\u0000'])).join(''));
}

interface Script {
  frames: FrameSpec[];
  /** How the model says the session ends. */
  end: End;
  model: ReceiverModel;
}

function describeScript(sc: Script): string {
  const frames = sc.frames.map((f) => `${f.label}[fin=${+f.fin} rsv=${f.rsv} op=${f.opcode} mask=${f.mask ? 1 : 0} len${f.form}=${f.declared} sent=${f.send}/${f.payload.length}]`);
  return `${frames.join(', ')} → expect ${sc.end.code} (${sc.end.why})`;
}

/** One session's frames, ending with the frame the model says ends it (or a valid close). */
function script(rng: Rng): Script {
  const model = new ReceiverModel();
  const frames: FrameSpec[] = [];
  const steps = rng.int(1, 16);
  const push = (f: FrameSpec): End | null => {
    frames.push(f);
    return model.feed(f);
  };
  for (let s = 0; s < steps; s++) {
    const action = rng.weighted<string>([
      [30, 'binary'],
      [10, 'control'],
      [10, 'random-frame'],
      [3, 'text'],
      [3, 'bad-text'],
      [5, 'close'],
      [3, 'huge-length'],
      [2, 'truncated'],
      [1, 'oversized'],
    ]);
    let end: End | null = null;
    switch (action) {
      case 'binary': {
        // A message in 1-10 fragments, control frames between them, length forms not always minimal.
        const k = rng.weighted<number>([
          [6, 1],
          [3, rng.int(2, 4)],
          [1, rng.int(5, 10)],
        ]);
        let budget = payloadSize(rng);
        for (let i = 0; i < k && !end; i++) {
          const size = i === k - 1 ? budget : rng.int(0, budget);
          budget -= size;
          const f = frame(rng, i === 0 ? 2 : 0, rng.bytes(size), { fin: i === k - 1, label: `binary ${i + 1}/${k}` });
          if (size < 126 && rng.chance(0.1)) f.form = rng.pick([16, 64] as const);
          else if (size < 65536 && size >= 126 && rng.chance(0.1)) f.form = 64;
          end = push(f);
          if (!end && i < k - 1 && rng.chance(0.3)) {
            end = push(frame(rng, rng.pick([9, 10]), rng.bytes(rng.int(0, 125)), { label: 'control between fragments' }));
          }
        }
        break;
      }
      case 'control':
        end = push(frame(rng, rng.pick([9, 10]), rng.bytes(rng.pick([0, 1, 2, 125, rng.int(0, 125)])), { label: 'control ping/pong' }));
        break;
      case 'random-frame': {
        // Every header field random, biased towards almost valid.
        const payload = rng.bytes(rng.chance(0.8) ? rng.int(0, 130) : rng.int(0, 3000));
        const f = frame(rng, rng.chance(0.5) ? rng.int(0, 15) : rng.pick([0, 1, 2, 8, 9, 10]), payload, {
          fin: rng.chance(0.7),
          rsv: rng.chance(0.6) ? 0 : rng.int(1, 7),
          label: 'random',
        });
        if (rng.chance(0.15)) f.mask = null;
        if (f.opcode === 8 && payload.length >= 2 && rng.chance(0.7)) {
          payload.writeUInt16BE(rng.pick([0, 999, 1000, 1001, 1004, 1005, 1006, 1011, 1014, 1015, 2999, 3000, 4999, 5000, 65535]), 0);
        }
        if (payload.length < 126 && rng.chance(0.1)) f.form = 16;
        end = push(f);
        break;
      }
      case 'text': {
        const k = rng.int(1, 3);
        const text = utf8Text(rng, rng.int(0, 200));
        const cut = [0, ...Array.from({ length: k - 1 }, () => rng.int(0, text.length)).sort((a, b) => a - b), text.length];
        for (let i = 0; i < k && !end; i++) end = push(frame(rng, i === 0 ? 1 : 0, text.subarray(cut[i], cut[i + 1]), { fin: i === k - 1, label: `text ${i + 1}/${k}` }));
        break;
      }
      case 'bad-text':
        end = push(frame(rng, 1, Buffer.concat([utf8Text(rng, rng.int(0, 20)), rng.pick([Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xc0, 0xaf])])]), { label: 'bad-text (invalid UTF-8)' }));
        break;
      case 'close': {
        const code = rng.pick([1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999, 0, 999, 1004, 1005, 1006, 1015, 2000, 5000]);
        const reason = rng.weighted<() => Buffer>([
          [4, () => Buffer.alloc(0)],
          [3, () => utf8Text(rng, rng.int(1, 30))],
          [1, () => Buffer.from([0xff, 0xfe])],
          [1, () => Buffer.alloc(rng.int(124, 200), 0x61)],
        ])();
        const p = rng.chance(0.1) ? rng.bytes(rng.int(0, 1)) : closePayload(code, reason);
        const f = frame(rng, 8, p, { label: `close ${code}` });
        end = push(f);
        break;
      }
      case 'huge-length': {
        // A header promising far more than any message may hold; nothing (or a little) follows.
        const declared = rng.pick([65537n, 1_000_000n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]);
        const f = frame(rng, rng.pick([2, 2, 1, 0]), rng.bytes(rng.int(0, 64)), { form: 64, declared, label: `huge-length ${declared}` });
        f.send = f.payload.length;
        end = push(f);
        break;
      }
      case 'truncated': {
        const size = rng.int(1, 3000);
        const f = frame(rng, rng.pick([2, 1, 9, 8]), rng.bytes(size), { label: 'truncated' });
        f.send = rng.int(0, size - 1);
        end = push(f);
        break;
      }
      case 'oversized': {
        // Exactly at the limit (delivered) or one byte over (1009), in one or two frames.
        const size = MAX_PAYLOAD + rng.int(0, 1);
        const first = rng.chance(0.5) ? size : rng.int(1, size - 1);
        end = push(frame(rng, 2, rng.bytes(first), { fin: first === size, label: `oversized ${size} bytes` }));
        if (!end && first < size) end = push(frame(rng, 0, rng.bytes(size - first), { label: `oversized ${size} bytes, last part` }));
        break;
      }
    }
    if (end) return { frames, end, model };
  }
  // Nothing ended it: a valid close does.
  const code = rng.pick([1000, 1001, 3000, 4999]);
  const end = push(frame(rng, 8, closePayload(code, utf8Text(rng, rng.int(0, 20))), { label: `close ${code}` }));
  assert.ok(end, 'a valid close ends the session');
  return { frames, end, model };
}

// ---- server frames ----------------------------------------------------------------------------

interface RawSession {
  socket: net.Socket;
  status: number;
  /** Response headers, names lower-cased. */
  headers: Record<string, string>;
  /** Resolves when the connection is closed. */
  ended: Promise<void>;
  /** Bytes of an incomplete server frame still buffered. */
  leftover(): number;
}

/**
 * Opens a WebSocket (subprotocol `binary`) on a raw socket; every server frame after the 101 goes
 * to `onFrames` as soon as it is complete, none lost between the handshake and the caller.
 */
function openRaw(port: number, path: string, onFrames: (frames: WsFrame[], socket: net.Socket) => void): Promise<RawSession> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const parser = new FrameParser();
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    let head: Buffer | null = Buffer.alloc(0);
    socket.on('error', (err) => {
      if (head) reject(err);
    });
    socket.once('connect', () => socket.write(handshake({ 'Sec-WebSocket-Protocol': 'binary' }, path)));
    socket.on('data', (chunk: Buffer) => {
      if (!head) return onFrames(parser.push(chunk), socket);
      head = Buffer.concat([head, chunk]);
      const at = head.indexOf('\r\n\r\n');
      if (at === -1) return;
      const { status, headers } = parseResponseHead(head.subarray(0, at));
      const rest = head.subarray(at + 4);
      head = null;
      resolve({ socket, status, headers, ended, leftover: () => parser.leftover });
      if (rest.length) onFrames(parser.push(rest), socket);
    });
    socket.once('close', () => {
      if (head) reject(new Error('closed before the handshake answer'));
    });
  });
}

// ---- a VNC-like echo target that keeps what each connection received --------------------------

interface EchoConnection {
  socket: net.Socket;
  received: Buffer[];
  closed: Promise<void>;
}

function startVncEcho(): Promise<TcpTarget<EchoConnection>> {
  return startTarget((socket) => {
    const received: Buffer[] = [];
    socket.write(GREETING);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      socket.write(chunk);
    });
    socket.on('end', () => socket.end());
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    return { socket, received, closed };
  });
}

// ---- the test ---------------------------------------------------------------------------------

describe(`fuzz: WebSocket frames from a raw client (${replay(SEED)}, ${SESSIONS} sessions)`, () => {
  let serve: FuzzServe;
  const targets: TcpTarget<EchoConnection>[] = [];
  let fdBase = 0;
  let rssWarm = 0;
  const ends = new Histogram();
  const kinds = new Histogram();
  let frameCount = 0;
  let bytesDelivered = 0;

  before(async () => {
    serve = await startFuzzServe('ws');
    for (let i = 0; i < LANES; i++) targets.push(await startVncEcho());
    const put = await rawHttp(serve.port, {
      method: 'PUT',
      path: `${API}/config`,
      headers: { 'Content-Type': 'application/json' },
      // Operated by their viewer (control: immediate; one session per lane at a time): the frames carry bytes that are not RFB.
      body: JSON.stringify({ targets: targets.map((t, i) => ({ id: `lane${i}`, name: `Lane ${i}`, host: '127.0.0.1', port: t.port, control: 'immediate' })) }),
    });
    assert.equal(put.status, 200, put.text);
  });
  after(async () => {
    await serve?.close();
    for (const t of targets) await t.close();
  });

  /** Runs `sc` as one session on `lane` and checks both ends against the model. */
  async function session(lane: number, rng: Rng, sc: Script): Promise<void> {
    const { frames, end, model } = sc;
    frameCount += frames.length;
    for (const f of frames) kinds.add(f.label.replace(/ .*/, ''));
    const target = targets[lane]!;
    const got: WsFrame[] = [];
    // The last frame is a close: the server's close answers it, no need to send another.
    const sentClose = frames[frames.length - 1]!.opcode === 8;
    let answered = false;
    const conn = await openRaw(serve.port, `${RELAY}?target=lane${lane}`, (list, socket) => {
      for (const f of list) {
        got.push(f);
        if (f.opcode === 8 && !answered) {
          // Answer the server's close (after its own 1003 it waits for one), then hang up.
          answered = true;
          if (!sentClose && socket.writable) socket.write(encode(frame(rng, 8, closePayload(1000, Buffer.alloc(0)))));
          socket.end();
        }
      }
    });
    assert.equal(conn.status, 101);
    assert.equal(conn.headers['sec-websocket-protocol'], 'binary');
    const targetConn = await giveUpAfter(target.connections.next(), 10_000, 'the relay connecting to the target');
    const bytes = Buffer.concat(frames.map(encode));
    // Written in a few pieces, cut anywhere.
    const cuts = [0, ...Array.from({ length: rng.int(0, 4) }, () => rng.int(0, bytes.length)).sort((a, b) => a - b), bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) if (cuts[i + 1]! > cuts[i]!) conn.socket.write(bytes.subarray(cuts[i], cuts[i + 1]));
    if (end.code === 'none') conn.socket.end();
    await giveUpAfter(conn.ended, 20_000, 'the server ending the connection');
    await giveUpAfter(targetConn.closed, 20_000, 'the relay closing the target connection');

    // The server's side: unmasked frames, no RSV, binary/close/ping/pong only; the close as predicted.
    for (const f of got) {
      assert.ok(!f.masked, 'server frames are not masked');
      assert.equal(f.rsv, 0, 'no RSV bits from the server');
      assert.ok([2, 8, 9, 10].includes(f.opcode), `server opcode ${f.opcode}`);
    }
    assert.equal(conn.leftover(), 0, 'no partial frame from the server');
    const close = got.find((f) => f.opcode === 8);
    const code = close ? (close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005) : 'none';
    ends.add(code);
    assert.equal(code, end.code, `close code (${end.why})`);
    const pongs = got.filter((f) => f.opcode === 10).map((f) => f.payload.toString('hex'));
    const pings = model.pings.map((p) => p.toString('hex'));
    assert.deepEqual(pongs, pings.slice(0, pongs.length), 'pongs answer the pings, in order');

    // Bytes: the target got exactly the valid binary messages; the browser the greeting, then echo.
    const delivered = Buffer.concat(model.delivered);
    bytesDelivered += delivered.length;
    const atTarget = Buffer.concat(targetConn.received);
    assert.equal(atTarget.length, delivered.length, 'bytes at the target');
    assert.ok(atTarget.equals(delivered), 'the target received the binary messages, nothing else');
    const down = Buffer.concat(got.filter((f) => f.opcode === 2).map((f) => f.payload));
    const wanted = Buffer.concat([GREETING, delivered]);
    assert.ok(wanted.subarray(0, down.length).equals(down), `the browser got the greeting and a prefix of the echo (${down.length} bytes)`);
  }

  it('warms up with a valid session', async () => {
    const rng = new Rng(mix(SEED, 'ws-warm'));
    const conn = await openRaw(serve.port, `${RELAY}?target=lane0`, () => {});
    assert.equal(conn.status, 101);
    const targetConn = await targets[0]!.connections.next();
    conn.socket.write(encode(frame(rng, 2, Buffer.from('hello'))));
    conn.socket.write(encode(frame(rng, 8, closePayload(1000, Buffer.alloc(0)))));
    await giveUpAfter(conn.ended, 20_000, 'warm-up session end');
    await targetConn.closed;
    assert.equal(Buffer.concat(targetConn.received).toString(), 'hello');
    await waitSessionsClosed(serve);
    await new Promise((r) => setTimeout(r, 200));
    fdBase = serve.vitals().fds;
    rssWarm = serve.vitals().rssKiB;
  });

  it('closes each session as the protocol says, relays only valid binary messages, leaks nothing', { timeout: 900_000 }, async () => {
    for (let start = 0; start < SESSIONS; start += BATCH) {
      const count = Math.min(BATCH, SESSIONS - start);
      await Promise.all(
        Array.from({ length: LANES }, async (_, lane) => {
          for (let i = start + lane; i < start + count; i += LANES) {
            const rng = new Rng(mix(SEED, 'ws', i));
            const sc = script(rng);
            await iteration(SEED, i, () => `lane ${lane}: ${describeScript(sc)}`, () => session(lane, rng, sc));
          }
        }),
      );
      await waitSessionsClosed(serve);
      await waitFdsBack(serve, fdBase);
      assert.ok(serve.alive(), `serve is running\n${serve.tail()}`);
    }
  });

  it('keeps serving with bounded memory and no session or descriptor left', async () => {
    const status = await serve.assertServing();
    assert.equal(status.relay.totals.sessionsOpen, 0);
    const fds = await waitFdsBack(serve, fdBase);
    const rss = serve.vitals().rssKiB;
    assert.ok(rss - rssWarm < RSS_GROWTH_KIB, `RSS grew from ${mb(rssWarm)} to ${mb(rss)}`);
    recordReliability({
      table: 'inputs',
      name: 'WebSocket frames from a raw client',
      tried: `${ends.total} sessions, ${frameCount} hand-made frames (${kinds}), ${LANES} at a time; ${replay(SEED)}`,
      outcome:
        `server close codes as the RFC 6455 model predicts (${ends}); the targets received exactly the ${bytesDelivered} bytes of valid binary messages, nothing of other frames; ` +
        `sessions open 0 and descriptors ${fds}/${fdBase} after every batch of ${BATCH}; RSS ${mb(rssWarm)} → ${mb(rss)}; crashes 0`,
    });
  });
});
