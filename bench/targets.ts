/**
 * @module
 * Child process: the TCP "VNC servers" the relays connect to, all on 127.0.0.1 with free ports.
 *
 * - flood: on connect, writes `floodBytes` as fast as the socket takes them, then waits for the
 *   client to hang up.
 * - echo: writes back whatever it reads.
 * - burst: on connect, writes `burstBytes` and closes at once (end(): data, then FIN).
 * - stall: on connect, waits for `stall-go`, then writes until `cap` bytes are offered
 *   (handed to the kernel) or `stall-stop`; `stall-stats` tells how far it got.
 */
import net from 'node:net';
import { serve } from './rpc.js';

const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);
let floodBytes = 1024 * 1024 * 1024;
let burstBytes = 8 * 1024 * 1024;
let burst = Buffer.alloc(burstBytes, 0xa5);

function listen(onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => {});
      onConnection(socket);
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Writes `total` bytes of {@link CHUNK} as fast as the socket takes them (honouring backpressure);
 * `before(n)` is called ahead of each write of n bytes and stops the pump by returning true.
 */
function pump(socket: net.Socket, total: number, before: (n: number) => boolean, done: () => void): void {
  let left = total;
  const step = (): void => {
    while (left > 0) {
      if (socket.destroyed) return;
      const n = Math.min(left, CHUNK.length);
      if (before(n)) return;
      left -= n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', step);
        return;
      }
    }
    done();
  };
  step();
}

interface Stall {
  socket: net.Socket;
  /** Bytes given to write() so far. */
  given: number;
  stopped: boolean;
  done: boolean;
}
let stall: Stall | undefined;

async function main(): Promise<void> {
  const flood = await listen((socket) => {
    // No FIN after the flood: the client hangs up once it has counted everything, so a relay
    // that drops the tail of a closing stream (see the burst test) cannot spoil this one.
    pump(socket, floodBytes, () => false, () => {});
    socket.on('end', () => socket.end());
  });
  const echo = await listen((socket) => {
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('end', () => socket.end());
  });
  const burstServer = await listen((socket) => {
    socket.end(burst);
  });
  const stallServer = await listen((socket) => {
    stall?.socket.destroy();
    stall = { socket, given: 0, stopped: false, done: false };
  });
  const port = (s: net.Server): number => (s.address() as net.AddressInfo).port;

  serve(async (req) => {
    switch (req.cmd) {
      case 'ports':
        return { flood: port(flood), echo: port(echo), burst: port(burstServer), stall: port(stallServer) };
      case 'config':
        if (typeof req.floodBytes === 'number') floodBytes = req.floodBytes;
        if (typeof req.burstBytes === 'number') {
          burstBytes = req.burstBytes;
          burst = Buffer.alloc(burstBytes, 0xa5);
        }
        return {};
      case 'stall-go': {
        const s = stall;
        if (!s) throw new Error('no stalled connection');
        pump(s.socket, Number(req.cap), (n) => {
          s.given += n;
          return s.stopped;
        }, () => {
          s.done = true;
        });
        return {};
      }
      case 'stall-stats': {
        // Offered = given to write() minus what still waits in Node's own queue: in the kernel or beyond.
        const s = stall;
        const offered = s ? s.given - (s.socket.destroyed ? 0 : s.socket.writableLength) : 0;
        return { offered, connected: s !== undefined && !s.socket.destroyed, done: s?.done ?? false };
      }
      case 'stall-stop':
        if (stall) {
          stall.stopped = true;
          stall.socket.destroy();
          stall = undefined;
        }
        return {};
      default:
        throw new Error(`unknown command ${req.cmd}`);
    }
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`targets: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
