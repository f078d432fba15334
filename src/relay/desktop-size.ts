/**
 * @module
 * The remote screen's size through a short extra RFB connection of the relay's own (shared, so it
 * disconnects nobody): {@link readDesktopSize} reads it from ServerInit, {@link restoreDesktopSize}
 * puts it back with SetDesktopSize after a viewer with `allowResize` changed it. The screen layout
 * sent back keeps the server's first screen (its id and flags) at the original size: TigerVNC
 * refuses layouts with unknown screen ids.
 *
 * Security types: None, or VNC Authentication with the target's stored password.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ByteQueue } from '../rfb/byte-queue.js';
import { ENCODING_EXTENDED_DESKTOP_SIZE, MSG_SET_DESKTOP_SIZE } from '../rfb/client-filter.js';
import { knownVersion, parseVersion, SECURITY_NONE, SECURITY_VNC_AUTH } from '../rfb/protocol.js';
import { vncAuthResponse } from '../rfb/vnc-auth.js';

export interface DesktopSize {
  width: number;
  height: number;
}

export interface SizeTarget {
  host: string;
  port: number;
  password?: string | undefined;
  /** Milliseconds for the whole exchange. Default 5000. */
  timeoutMs?: number;
}

/** A socket read as "give me n bytes". */
class Reader {
  private readonly queue = new ByteQueue();
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;

  constructor(socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      this.serve();
    });
    const gone = (err?: Error): void => {
      this.failure ??= err ?? new Error('the VNC server closed the connection');
      this.serve();
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.serve();
    });
  }

  private serve(): void {
    const w = this.want;
    if (!w) return;
    if (this.queue.length >= w.n) {
      this.want = null;
      w.resolve(this.queue.take(w.n)!);
    } else if (this.failure) {
      this.want = null;
      w.reject(this.failure);
    }
  }
}

interface Opened {
  socket: Duplex;
  reader: Reader;
  size: DesktopSize;
  bytesPerPixel: number;
}

/** Connects, does the handshake (None or VNC Authentication) and reads ServerInit. */
function open(target: SizeTarget): Promise<Opened> {
  return handshake(net.connect({ host: target.host, port: target.port, noDelay: true }), target.password);
}

/** Does the client's handshake on `socket` (None, or VNC Authentication with `password`) up to ServerInit. */
async function handshake(socket: Duplex, password: string | undefined): Promise<Opened> {
  const reader = new Reader(socket);
  const target = { password };
  try {
    const greeting = await reader.read(12);
    const numbers = parseVersion(greeting);
    const version = numbers && knownVersion(numbers);
    if (!version) throw new Error('not an RFB greeting');
    const answer = version === '3.3' ? 'RFB 003.003\n' : version === '3.7' ? 'RFB 003.007\n' : 'RFB 003.008\n';
    socket.write(answer);
    let type: number;
    if (version === '3.3') {
      type = (await reader.read(4)).readUInt32BE(0);
    } else {
      const n = (await reader.read(1))[0]!;
      if (n === 0) throw new Error('the VNC server refused the connection');
      const types = [...(await reader.read(n))];
      type = types.includes(SECURITY_NONE) && target.password === undefined ? SECURITY_NONE : SECURITY_VNC_AUTH;
      if (!types.includes(type)) throw new Error(`no usable security type (offered ${types.join(', ')})`);
      socket.write(Buffer.from([type]));
    }
    if (type === SECURITY_VNC_AUTH) {
      if (target.password === undefined) throw new Error('the VNC server needs a password and none is stored');
      socket.write(vncAuthResponse(target.password, await reader.read(16)));
    } else if (type !== SECURITY_NONE) {
      throw new Error(`unsupported security type ${type}`);
    }
    if (type === SECURITY_VNC_AUTH || version === '3.8') {
      if ((await reader.read(4)).readUInt32BE(0) !== 0) throw new Error('the VNC server rejected the login');
    }
    socket.write(Buffer.from([1])); // ClientInit: shared
    const init = await reader.read(24);
    await reader.read(init.readUInt32BE(20)); // the desktop name
    return { socket, reader, size: { width: init.readUInt16BE(0), height: init.readUInt16BE(2) }, bytesPerPixel: init[4]! / 8 };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** Bounds `work` by the target's timeout; the socket is destroyed either way. */
async function bounded<T>(target: SizeTarget, work: (o: Opened) => Promise<T>): Promise<T> {
  let opened: Opened | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => {
      opened?.socket.destroy();
      reject(new Error('the VNC server did not answer in time'));
    }, target.timeoutMs ?? 5000);
  });
  try {
    return await Promise.race([
      (async () => {
        opened = await open(target);
        return await work(opened);
      })(),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
    opened?.socket.destroy();
  }
}

/** The remote screen's size now (ServerInit of a fresh shared connection). */
export function readDesktopSize(target: SizeTarget): Promise<DesktopSize> {
  return bounded(target, async (o) => o.size);
}

/** One screen of an ExtendedDesktopSize layout. */
interface Screen {
  id: number;
  flags: number;
}

/** What an ExtendedDesktopSize rectangle says. */
interface Layout {
  /** Its y: the result of a client's request (0 = done). */
  status: number;
  /** Its x: 0 = the server changed the size, 1 = this client asked, 2 = another client asked. */
  reason: number;
  width: number;
  height: number;
  screen: Screen | undefined;
}

/** FramebufferUpdateRequest, not incremental, for the top left pixel. */
const UPDATE_REQUEST = Buffer.from([3, 0, 0, 0, 0, 0, 0, 1, 0, 1]);

/**
 * Reads framebuffer updates until the ExtendedDesktopSize rectangle, asking for the next update
 * after each one without it; returns its status (the rectangle's y: 0 = done), its reason (x:
 * 1 = this client's request) and its first screen. Raw rectangles are skipped.
 */
async function readLayout(o: Opened): Promise<Layout> {
  for (;; o.socket.write(UPDATE_REQUEST)) {
    const type = (await o.reader.read(1))[0]!;
    if (type === 2) continue; // Bell
    if (type === 3) {
      const len = (await o.reader.read(7)).readUInt32BE(3);
      await o.reader.read(len);
      continue;
    }
    if (type !== 0) throw new Error(`unexpected server message ${type}`);
    const count = (await o.reader.read(3)).readUInt16BE(1);
    // The whole update is read, whatever follows the layout in it.
    let layout: Layout | undefined;
    for (let i = 0; i < count; i++) {
      const rect = await o.reader.read(12);
      const [x, y, w, h] = [rect.readUInt16BE(0), rect.readUInt16BE(2), rect.readUInt16BE(4), rect.readUInt16BE(6)];
      const encoding = rect.readInt32BE(8);
      if (encoding === ENCODING_EXTENDED_DESKTOP_SIZE) {
        const screens = (await o.reader.read(4))[0]!;
        let first: Screen | undefined;
        for (let s = 0; s < screens; s++) {
          const b = await o.reader.read(16);
          first ??= { id: b.readUInt32BE(0), flags: b.readUInt32BE(12) };
        }
        layout = { status: y, reason: x, width: w, height: h, screen: first };
        continue;
      }
      if (encoding === 0) await o.reader.read(w * h * o.bytesPerPixel);
      else if (encoding !== -223) throw new Error(`unexpected encoding ${encoding}`);
    }
    if (layout) return layout;
  }
}

/**
 * Puts the remote screen back to `size` (when it is not that size already). Resolves with the size
 * it had before; rejects when the server refuses or cannot be asked.
 */
export function restoreDesktopSize(target: SizeTarget, size: DesktopSize): Promise<DesktopSize> {
  return bounded(target, (o) => requestSize(o, size));
}

/**
 * Asks for `size` as a viewer does, on a stream that is at the start of an RFB session (e.g. a
 * WebSocket through the relay); resolves with the size before, once the server has answered.
 */
export async function requestDesktopSize(stream: Duplex, size: DesktopSize, password?: string): Promise<DesktopSize> {
  return requestSize(await handshake(stream, password), size);
}

async function requestSize(o: Opened, size: DesktopSize): Promise<DesktopSize> {
  const before = o.size;
  if (before.width === size.width && before.height === size.height) return before;
  // Announce ExtendedDesktopSize (and raw), ask for a 1×1 update: the server answers with its layout.
  const encodings = Buffer.alloc(4 + 8);
  encodings[0] = 2;
  encodings.writeUInt16BE(2, 2);
  encodings.writeInt32BE(0, 4);
  encodings.writeInt32BE(ENCODING_EXTENDED_DESKTOP_SIZE, 8);
  o.socket.write(Buffer.concat([encodings, UPDATE_REQUEST]));
  const layout = await readLayout(o);
  const screen = layout.screen ?? { id: 0, flags: 0 };
  const msg = Buffer.alloc(8 + 16);
  msg[0] = MSG_SET_DESKTOP_SIZE;
  msg.writeUInt16BE(size.width, 2);
  msg.writeUInt16BE(size.height, 4);
  msg[6] = 1;
  msg.writeUInt32BE(screen.id, 8);
  msg.writeUInt16BE(size.width, 16);
  msg.writeUInt16BE(size.height, 18);
  msg.writeUInt32BE(screen.flags, 20);
  o.socket.write(Buffer.concat([msg, UPDATE_REQUEST]));
  // The answer: a refusal (reason 1, a status other than 0), or a layout of the size asked for
  // (TigerVNC reports the change with reason 0 as well).
  for (;;) {
    const answer = await readLayout(o);
    if (answer.reason === 1 && answer.status !== 0) throw new Error(`the VNC server refused the size ${size.width}x${size.height} (status ${answer.status})`);
    if (answer.width === size.width && answer.height === size.height) return before;
    o.socket.write(UPDATE_REQUEST);
  }
}
