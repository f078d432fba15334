/**
 * @module
 * Child process: the load generator ("browsers"). Talks plain TCP to a target or WebSocket to a
 * relay, one command at a time, as asked by bench.ts over IPC.
 */
import { connect, type Conn, type Kind } from './wsclient.js';
import { serve, type Request } from './rpc.js';

type Opened = Conn & { ready(): void };

function kindOf(req: Request): Kind {
  if (req.kind !== 'tcp' && req.kind !== 'ws') throw new Error(`bad kind ${String(req.kind)}`);
  return req.kind;
}

/** Resolves when `conn` ends; rejects after `ms`. */
function endOf(conn: Conn, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms);
    conn.onEnd = (why) => {
      clearTimeout(timer);
      resolve(why);
    };
  });
}

/** Downstream: count `bytes` arriving from a flood target; wall time from open to the last byte. */
async function throughput(kind: Kind, port: number, bytes: number): Promise<Record<string, unknown>> {
  const conn = await connect(kind, port);
  const t0 = performance.now();
  let got = 0;
  let tLast = t0;
  const all = new Promise<void>((resolve, reject) => {
    conn.onData = (chunk) => {
      got += chunk.length;
      if (got < bytes) return;
      tLast = performance.now();
      conn.onData = () => {};
      resolve();
    };
    conn.onEnd = (why) => reject(new Error(`throughput: ended after ${got} of ${bytes} bytes (${why})`));
  });
  conn.ready();
  await all;
  conn.onEnd = () => {};
  conn.close();
  return { bytes: got, seconds: (tLast - t0) / 1000 };
}

/** Runs sequential round trips of `payload` on `conn` until `stop()`; `onRtt(ms)` after each. */
function roundTrips(conn: Conn, payload: Buffer, stop: () => boolean, onRtt: (ms: number) => void): Promise<void> {
  const wire = conn.wire(payload);
  const size = payload.length;
  return new Promise((resolve, reject) => {
    let got = 0;
    let t0 = 0;
    const next = (): void => {
      if (stop()) {
        resolve();
        return;
      }
      got = 0;
      t0 = performance.now();
      conn.socket.write(wire);
    };
    conn.onData = (chunk) => {
      got += chunk.length;
      if (got < size) return;
      if (got > size) {
        reject(new Error(`echo returned ${got} bytes for ${size}`));
        return;
      }
      onRtt(performance.now() - t0);
      next();
    };
    conn.onEnd = (why) => reject(new Error(`connection ended during round trips: ${why}`));
    next();
  });
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

async function latency(kind: Kind, port: number, size: number, warmup: number, samples: number): Promise<Record<string, unknown>> {
  const conn = await connect(kind, port);
  conn.ready();
  const payload = Buffer.alloc(size, 0x42);
  let n = 0;
  await roundTrips(conn, payload, () => n >= warmup, () => n++);
  const times = new Float64Array(samples);
  n = 0;
  await roundTrips(conn, payload, () => n >= samples, (ms) => (times[n++] = ms));
  conn.onEnd = () => {};
  conn.close();
  times.sort();
  let sum = 0;
  for (const t of times) sum += t;
  return {
    samples,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    p999: percentile(times, 0.999),
    mean: sum / samples,
    max: times[samples - 1],
  };
}

// ---- many sessions --------------------------------------------------------------------------

let sessions: Opened[] = [];
let loadPayload = Buffer.alloc(0);

/** Opens `count` sessions, then `warmup` untimed round trips on each (all at once) before any timing. */
async function loadOpen(kind: Kind, port: number, count: number, size: number, batch: number, warmup: number): Promise<Record<string, unknown>> {
  loadPayload = Buffer.alloc(size, 0x43);
  sessions = [];
  for (let i = 0; i < count; i += batch) {
    const group = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, () => connect(kind, port)));
    for (const conn of group) conn.ready();
    // One round trip each: the relay's connection to the target is up before timing starts.
    await Promise.all(group.map((conn) => {
      let done = false;
      return roundTrips(conn, loadPayload, () => done, () => (done = true));
    }));
    sessions.push(...group);
  }
  await Promise.all(sessions.map((conn) => {
    let n = 1;
    return roundTrips(conn, loadPayload, () => n >= warmup, () => n++);
  }));
  return { sessions: sessions.length };
}

async function loadRun(durationMs: number): Promise<Record<string, unknown>> {
  let count = 0;
  let stopping = false;
  const t0 = performance.now();
  const timer = setTimeout(() => (stopping = true), durationMs);
  let tEnd = 0;
  // Round trips that finish after the deadline are not counted; the window ends at the deadline.
  await Promise.all(sessions.map((conn) => roundTrips(conn, loadPayload, () => stopping, () => {
    if (!stopping) count++;
  })));
  tEnd = Math.min(performance.now(), t0 + durationMs);
  clearTimeout(timer);
  return { count, seconds: (tEnd - t0) / 1000 };
}

function loadClose(): Record<string, unknown> {
  for (const conn of sessions) {
    conn.onEnd = () => {};
    conn.close();
  }
  sessions = [];
  return {};
}

// ---- close after burst ----------------------------------------------------------------------

/**
 * `runs` sessions one after another, each counting what arrives before the end. Odd runs play a
 * browser that is busy for `pauseMs` after the handshake (rendering, a GC pause) and only then
 * reads: the relay then holds queued data when the target's FIN arrives.
 */
async function burst(kind: Kind, port: number, runs: number, expected: number, timeoutMs: number, pauseMs: number): Promise<Record<string, unknown>> {
  const received: number[] = [];
  const endings: string[] = [];
  for (let i = 0; i < runs; i++) {
    const conn = await connect(kind, port);
    let got = 0;
    conn.onData = (chunk) => (got += chunk.length);
    const ended = endOf(conn, timeoutMs, 'burst').catch((err: Error) => err.message);
    if (i % 2 === 1) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    conn.ready();
    endings.push(await ended);
    conn.socket.destroy();
    received.push(got);
  }
  return { received, endings, expected };
}

// ---- stalled browser ------------------------------------------------------------------------

let stalled: Opened | undefined;

async function stallOpen(kind: Kind, port: number): Promise<Record<string, unknown>> {
  stalled = await connect(kind, port);
  stalled.onEnd = () => {};
  stalled.ready();
  // A browser tab that froze: nothing is read from now on, the kernel buffers fill up.
  stalled.socket.pause();
  return {};
}

function stallClose(): Record<string, unknown> {
  stalled?.socket.destroy();
  stalled = undefined;
  return {};
}

serve(async (req) => {
  switch (req.cmd) {
    case 'throughput':
      return throughput(kindOf(req), Number(req.port), Number(req.bytes));
    case 'latency':
      return latency(kindOf(req), Number(req.port), Number(req.size), Number(req.warmup), Number(req.samples));
    case 'load-open':
      return loadOpen(kindOf(req), Number(req.port), Number(req.sessions), Number(req.size), Number(req.batch ?? 10), Number(req.warmup ?? 1));
    case 'load-run':
      return loadRun(Number(req.durationMs));
    case 'load-close':
      return loadClose();
    case 'burst':
      return burst(kindOf(req), Number(req.port), Number(req.runs), Number(req.expected), Number(req.timeoutMs), Number(req.pauseMs ?? 0));
    case 'stall-open':
      return stallOpen(kindOf(req), Number(req.port));
    case 'stall-close':
      return stallClose();
    default:
      throw new Error(`unknown command ${req.cmd}`);
  }
});
