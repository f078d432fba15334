/**
 * @module
 * TCP targets for relay tests, all on 127.0.0.1 with a free port: echo, sink (counts and hashes
 * until FIN), burst-then-close, flood (writes until blocked), a stalled reader, a duplex
 * frame source/sink, a refused port and a listener whose connects hang.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { FrameSource, FrameVerifier } from './stream.js';

/** A queue of values that arrive over time, taken one by one with `next()`. */
export class Arrivals<T> {
  private readonly items: T[] = [];
  private readonly waiting: ((item: T) => void)[] = [];
  readonly all: T[] = [];

  push(item: T): void {
    this.all.push(item);
    const w = this.waiting.shift();
    if (w) w(item);
    else this.items.push(item);
  }

  next(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

export interface TcpTarget<C> {
  port: number;
  server: net.Server;
  /** One entry per accepted connection, in order. */
  connections: Arrivals<C>;
  /** Destroys every connection and closes the server. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0 and calls `onConnection` for each socket; `close()` tears all down. */
export async function startTarget<C>(onConnection: (socket: net.Socket, index: number) => C): Promise<TcpTarget<C>> {
  const sockets = new Set<net.Socket>();
  const connections = new Arrivals<C>();
  let index = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // resets are part of several tests
    connections.push(onConnection(socket, index++));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    server,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echoes every byte back; ends when the peer ends. */
export function startEcho(): Promise<TcpTarget<net.Socket>> {
  return startTarget((socket) => {
    socket.pipe(socket);
    return socket;
  });
}

export interface SinkResult {
  bytes: number;
  sha256: string;
  /** Every byte, when the sink was asked to keep them. */
  data: Buffer | undefined;
  /** True if the peer sent FIN ('end'), false if the connection was reset or destroyed. */
  ended: boolean;
}

export interface SinkConnection {
  socket: net.Socket;
  /** Bytes received so far. */
  readonly bytes: number;
  /** Resolves at 'close' with what was received before it. */
  done: Promise<SinkResult>;
}

/**
 * Reads and counts every byte until the peer's FIN, then closes. With `throttleMs`, it is a slow
 * reader: after each chunk it stops reading for that long, so the sender's buffers stay full.
 */
export function startSink(keep = false, throttleMs = 0): Promise<TcpTarget<SinkConnection>> {
  return startTarget((socket) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    let ended = false;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
      if (keep) chunks.push(chunk);
      if (throttleMs > 0) {
        socket.pause();
        setTimeout(() => socket.resume(), throttleMs);
      }
    });
    socket.on('end', () => {
      ended = true;
    });
    const done = new Promise<SinkResult>((resolve) =>
      socket.on('close', () =>
        resolve({ bytes, sha256: hash.digest('hex'), data: keep ? Buffer.concat(chunks) : undefined, ended }),
      ),
    );
    return {
      socket,
      get bytes() {
        return bytes;
      },
      done,
    };
  });
}

/** Sends `dataFor(index)` to connection `index` and closes (FIN) immediately after. */
export function startBurstClose(dataFor: (index: number) => Buffer): Promise<TcpTarget<net.Socket>> {
  return startTarget((socket, index) => {
    socket.end(dataFor(index));
    socket.resume();
    return socket;
  });
}

export interface FloodConnection {
  socket: net.Socket;
  /** Bytes handed to `socket.write()` so far. */
  readonly accepted: number;
  /** True while a write returned false and 'drain' has not come yet. */
  readonly blocked: boolean;
  /** SHA-256 of everything offered (resolves once all `total` bytes were written). */
  finished: Promise<string>;
}

/**
 * Writes `totalFor(index)` bytes to connection `index` in `chunk`-sized writes as fast as the
 * socket accepts them, waiting for 'drain' whenever `write()` returns false, then ends. Chunk `i` holds a
 * deterministic pattern stamped with `i`, so reordering or loss changes the hash.
 */
export function startFlood(
  totalFor: (index: number) => number,
  chunk = 64 * 1024,
): Promise<TcpTarget<FloodConnection>> {
  return startTarget((socket, index) => {
    const total = totalFor(index);
    let accepted = 0;
    let blocked = false;
    const hash = createHash('sha256');
    const pattern = Buffer.alloc(chunk);
    for (let i = 0; i < chunk; i++) pattern[i] = (i * 31 + 7) & 0xff;
    const finished = new Promise<string>((resolve) => {
      let i = 0;
      const pump = (): void => {
        blocked = false;
        while (accepted < total && !socket.destroyed) {
          const n = Math.min(chunk, total - accepted);
          const buf = Buffer.from(pattern.subarray(0, n));
          buf.writeUInt32BE(i++, 0);
          hash.update(buf);
          accepted += n;
          if (!socket.write(buf)) {
            blocked = true;
            socket.once('drain', pump);
            return;
          }
        }
        if (accepted >= total) {
          socket.end();
          resolve(hash.digest('hex'));
        }
      };
      pump();
    });
    socket.resume();
    return {
      socket,
      get accepted() {
        return accepted;
      },
      get blocked() {
        return blocked;
      },
      finished,
    };
  });
}

/** Accepts connections and never reads from them until `socket.resume()`. */
export function startStalled(): Promise<TcpTarget<net.Socket>> {
  return startTarget((socket) => {
    socket.pause();
    return socket;
  });
}

export interface DuplexConnection {
  socket: net.Socket;
  /** Checks the frames arriving from the browser. */
  verifier: FrameVerifier;
  /** Frames sent towards the browser. */
  source: FrameSource;
  /** Resolves when all `source` frames were written. */
  sent: Promise<void>;
  /** Resolves at the peer's FIN. */
  ended: Promise<void>;
}

/**
 * An independent source and sink: sends its own `count` frames (seed `seed + index`) while checking
 * the frames that arrive, so both directions carry different traffic at the same time.
 */
export function startDuplex(seed: number, count: number, maxFrame: number): Promise<TcpTarget<DuplexConnection>> {
  return startTarget((socket, index) => {
    const verifier = new FrameVerifier(maxFrame);
    const source = new FrameSource(seed + index, count, maxFrame);
    socket.on('data', (chunk: Buffer) => verifier.push(chunk));
    const ended = new Promise<void>((resolve) => socket.on('end', resolve));
    const sent = new Promise<void>((resolve) => {
      const pump = (): void => {
        for (let frame = source.next(); frame; frame = source.next()) {
          if (!socket.write(frame)) {
            socket.once('drain', pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    return { socket, verifier, source, sent, ended };
  });
}

/**
 * A port on 127.0.0.1 where nothing listens. Chosen below the kernel's ephemeral range, so no
 * `listen(0)` elsewhere (other tests run in parallel) can take it, and checked to refuse.
 */
export async function closedPort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the usual default
  }
  for (let port = Math.min(low, 32768) - 1; port > 1024; port -= 97) {
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (refused) return port;
  }
  throw new Error('no closed port found on 127.0.0.1');
}

/**
 * A loopback port that was free a moment ago, for a program that cannot listen on port 0 and say
 * where (bound once, then released).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface HangingTarget {
  port: number;
  close(): Promise<void>;
}

/**
 * A loopback listener whose connects never complete: a python3 process listens with backlog 0 and
 * never accepts; one connection fills the accept queue, after which the kernel drops further SYNs.
 * Returns `undefined` when python3 is not available.
 */
export async function startHanging(): Promise<HangingTarget | undefined> {
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
    "s.bind(('127.0.0.1', 0))",
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  let child: ChildProcess;
  try {
    child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  const port = await new Promise<number | undefined>((resolve) => {
    child.once('error', () => resolve(undefined));
    child.once('exit', () => resolve(undefined));
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  if (port === undefined) return undefined;
  // Fill the accept queue: this connection completes, the next SYNs are dropped.
  const filler = net.connect(port, '127.0.0.1');
  filler.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    filler.once('connect', resolve);
    filler.once('error', reject);
  });
  return {
    port,
    close: async () => {
      filler.destroy();
      child.stdin!.end();
      child.kill();
      await exited;
    },
  };
}
