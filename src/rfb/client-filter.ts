/**
 * @module
 * The relay's filter on the browser's RFB messages: in `watch` mode it passes only what keeps the
 * picture coming (SetPixelFormat, SetEncodings, FramebufferUpdateRequest, EnableContinuousUpdates,
 * Fence) and drops keys, pointer, clipboard, xvp, gii, SetDesktopSize and QEMU key events; in
 * `control` mode it passes everything but SetDesktopSize, which needs the target's `allowResize`
 * and the viewer's announcement of the ExtendedDesktopSize encoding (TigerVNC 1.12 crashes on a
 * SetDesktopSize from a client that did not announce it). It also tells user input apart (for the
 * idle timeout) and counts the input it dropped.
 *
 * It walks the stream by the one table of message sizes (client-messages.ts), byte-exact across
 * any chunking, without buffering message bodies: a message's fate is decided by its type byte,
 * and the bytes passed are the chunk itself or slices of it. Nothing is allocated per message.
 *
 * The handshake before the messages is skipped as the idle watch always did: after a relay-side
 * handshake only ClientInit (1 byte) precedes them; when it passes through, its length follows from
 * the version and the security type (None or VNC Authentication). With any other security type the
 * stream cannot be followed (`lost`): a controlling session then passes everything (as before this
 * filter), a watching one must be ended by the caller, never passed unfiltered.
 */
import { CLIENT_MESSAGES, type ClientMessage } from './client-messages.js';
import {
  knownVersion,
  MSG_CLIENT_CUT_TEXT,
  MSG_FRAMEBUFFER_UPDATE_REQUEST,
  MSG_SET_ENCODINGS,
  MSG_SET_PIXEL_FORMAT,
  parseVersion,
  SECURITY_NONE,
  SECURITY_VNC_AUTH,
  VERSION_LENGTH,
} from './protocol.js';

/** The pseudo-encoding a client announces to be able to follow SetDesktopSize (rfbproto). */
export const ENCODING_EXTENDED_DESKTOP_SIZE = -308;
export const MSG_ENABLE_CONTINUOUS_UPDATES = 150;
export const MSG_FENCE = 248;
export const MSG_SET_DESKTOP_SIZE = 251;

/** Flags {@link ClientFilter.push} returns. */
export const FILTER_INPUT = 1;
/** A message type the relay does not know (or a form of one it cannot follow): end the session. */
export const FILTER_UNKNOWN = 2;
/** The handshake cannot be followed: a watching session must end. */
export const FILTER_LOST = 4;

export type FilterMode = 'watch' | 'control';

/** The types a watching session passes. */
const WATCH_PASSES = new Set([MSG_SET_PIXEL_FORMAT, MSG_SET_ENCODINGS, MSG_FRAMEBUFFER_UPDATE_REQUEST, MSG_ENABLE_CONTINUOUS_UPDATES, MSG_FENCE]);

/** Browser bytes kept while the handshake's length is being worked out; more means give up. */
const MAX_HEAD = 64;
/** 0xfffffecc: -308 as the unsigned 32-bit value read byte by byte. */
const EXTENDED_DESKTOP_SIZE_U32 = ENCODING_EXTENDED_DESKTOP_SIZE >>> 0;

export class ClientFilter {
  /** What passes: set by the session as control moves; applies from the next message on. */
  mode: FilterMode = 'watch';
  /** The target's `allowResize`. */
  allowResize = false;
  /** User input messages dropped (keys, pointer, clipboard text, xvp, QEMU keys, SetDesktopSize). */
  refused = 0;
  /** SetDesktopSize messages passed to the server (the session changed the remote size). */
  resizes = 0;
  /** The viewer's last SetEncodings announced ExtendedDesktopSize. */
  extendedDesktopSize = false;
  /** The type byte that was not understood, for the close reason; -1 when none. */
  unknownType = -1;

  /** Browser handshake bytes still to pass before the messages; undefined while unknown. */
  private skip: number | undefined;
  /** Browser handshake bytes passed (in earlier chunks) while the handshake's length was unknown. */
  private consumed = 0;
  private lost = false;
  private serverHead: Buffer = Buffer.alloc(0);
  private browserHead: Buffer = Buffer.alloc(0);

  // The message being walked.
  private spec: ClientMessage | undefined;
  private type = 0;
  /** The current message is passed. */
  private pass = true;
  /** Its first bytes, until its size is known (at most 9 are needed). */
  private readonly head = Buffer.alloc(16);
  private headLen = 0;
  /** Bytes of the current message after its head still to come; 0 between messages. */
  private remaining = 0;
  /** SetEncodings: encodings still to read, and the one being assembled. */
  private encodingsLeft = 0;
  private encoding = 0;
  private encodingBytes = 0;

  /**
   * @param afterHandshake true when the relay did the security handshake itself, so only the
   *   browser's ClientInit (1 byte) precedes its messages; false to work the handshake out from
   *   both directions.
   */
  constructor(afterHandshake: boolean) {
    if (afterHandshake) this.skip = 1;
  }

  /** True when the stream cannot be followed (a security type other than None or VNC Authentication). */
  get failedOpen(): boolean {
    return this.lost;
  }

  /** True while the server's first bytes are still read ({@link server}); false for good after. */
  get wantsServer(): boolean {
    return this.skip === undefined && !this.lost && this.serverHead.length < 16;
  }

  /** Bytes from the server; only the first 16 matter (version and, for 3.3, the security type). */

  server(chunk: Buffer): void {
    if (!this.wantsServer) return;
    this.serverHead = Buffer.concat([this.serverHead, chunk.subarray(0, 16 - this.serverHead.length)]);
    this.resolvePrefix();
  }

  /**
   * Walks `chunk` from the browser and hands `out` what passes, in order (the chunk itself when
   * all of it does). Returns {@link FILTER_INPUT} when it carried user input (passed or not),
   * {@link FILTER_UNKNOWN} for a message type the relay does not know (nothing after it is
   * passed), {@link FILTER_LOST} when the stream cannot be followed: then a controlling session
   * gets everything passed (and counted as input), a watching one nothing.
   */
  push(chunk: Buffer, out: (bytes: Buffer) => void): number {
    if (this.lost) return this.passLost(chunk, out);
    let i = 0;
    if (this.skip === undefined) {
      // The version and the security type choice are all that is read of it.
      const wanted = VERSION_LENGTH + 1 - this.browserHead.length;
      if (wanted > 0) this.browserHead = Buffer.concat([this.browserHead, chunk.subarray(0, wanted)]);
      this.resolvePrefix();
      if (this.skip === undefined && this.consumed + chunk.length > MAX_HEAD) this.giveUp();
      if (this.lost) return this.passLost(chunk, out);
      if (this.skip === undefined) {
        // The handshake, still: the server waits for these bytes, so they pass while its length is worked out.
        out(chunk);
        this.consumed += chunk.length;
        return 0;
      }
      // Worked out: `skip` bytes of this chunk end the handshake, messages may follow them.
    }
    let flags = 0;
    // Where the bytes to pass start in this chunk; -1 while in a message that is dropped.
    let runStart = (this.spec !== undefined || this.remaining > 0) && !this.pass ? -1 : 0;
    if (this.skip > 0) {
      i = Math.min(this.skip, chunk.length);
      this.skip -= i;
      runStart = 0;
    }
    const n = chunk.length;
    while (i < n) {
      if (this.spec === undefined && this.remaining === 0) {
        // A message starts: its type decides whether it passes.
        const type = chunk[i]!;
        const spec = CLIENT_MESSAGES[type];
        if (spec === undefined) {
          this.unknownType = type;
          this.emit(chunk, runStart, i, out);
          this.lost = true;
          return flags | FILTER_UNKNOWN;
        }
        this.spec = spec;
        this.type = type;
        this.headLen = 0;
        this.pass = this.passes(type);
        if (this.pass) {
          if (runStart === -1) runStart = i;
        } else if (runStart !== -1) {
          this.emit(chunk, runStart, i, out);
          runStart = -1;
        }
      }
      if (this.spec !== undefined) {
        // Collecting the head, until the message's size is known.
        const spec = this.spec;
        while (i < n && this.headLen < spec.need) this.head[this.headLen++] = chunk[i++]!;
        if (this.headLen < spec.need) break;
        const size = spec.size(this.head);
        if (size < 0) {
          this.unknownType = this.type;
          // Nothing of it passes (its head bytes in this chunk are left out).
          this.emit(chunk, runStart, Math.max(runStart, i - this.headLen), out);
          this.lost = true;
          return flags | FILTER_UNKNOWN;
        }
        const input = typeof spec.input === 'function' ? spec.input(this.head) : spec.input;
        if (input || this.type === MSG_SET_DESKTOP_SIZE) {
          flags |= FILTER_INPUT;
          if (!this.pass) this.refused++;
        }
        if (this.type === MSG_SET_DESKTOP_SIZE && this.pass) this.resizes++;
        if (this.type === MSG_SET_ENCODINGS) {
          this.encodingsLeft = this.head.readUInt16BE(2);
          this.encodingBytes = 0;
          this.extendedDesktopSize = false;
        }
        this.remaining = size - this.headLen;
        this.spec = undefined;
        continue;
      }
      // The body: passed or dropped as a whole, read only for SetEncodings.
      const take = Math.min(this.remaining, n - i);
      if (this.type === MSG_SET_ENCODINGS && this.encodingsLeft > 0) this.readEncodings(chunk, i, i + take);
      i += take;
      this.remaining -= take;
    }
    this.emit(chunk, runStart, n, out);
    return flags;
  }

  /** Whether a message of `type` passes in the current mode. */
  private passes(type: number): boolean {
    if (this.mode === 'watch') return WATCH_PASSES.has(type);
    if (type === MSG_SET_DESKTOP_SIZE) return this.allowResize && this.extendedDesktopSize;
    return true;
  }

  private readEncodings(chunk: Buffer, from: number, to: number): void {
    for (let j = from; j < to && this.encodingsLeft > 0; j++) {
      this.encoding = ((this.encoding << 8) | chunk[j]!) >>> 0;
      if (++this.encodingBytes < 4) continue;
      if (this.encoding === EXTENDED_DESKTOP_SIZE_U32) this.extendedDesktopSize = true;
      this.encoding = 0;
      this.encodingBytes = 0;
      this.encodingsLeft--;
    }
  }

  private emit(chunk: Buffer, from: number, to: number, out: (bytes: Buffer) => void): void {
    if (from === -1 || to <= from) return;
    out(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
  }

  private passLost(chunk: Buffer, out: (bytes: Buffer) => void): number {
    if (this.unknownType !== -1) return FILTER_UNKNOWN;
    if (this.mode === 'watch') return FILTER_LOST | FILTER_INPUT;
    out(chunk);
    return FILTER_LOST | FILTER_INPUT;
  }

  private giveUp(): void {
    this.lost = true;
    this.browserHead = Buffer.alloc(0);
    this.serverHead = Buffer.alloc(0);
  }

  /** Works out the length of the browser's handshake once enough of both sides has arrived. */
  private resolvePrefix(): void {
    if (this.skip !== undefined || this.lost || this.browserHead.length < VERSION_LENGTH) return;
    const numbers = parseVersion(this.browserHead.subarray(0, VERSION_LENGTH));
    const version = numbers && knownVersion(numbers);
    if (!version) {
      this.giveUp();
      return;
    }
    let type: number;
    if (version === '3.3') {
      // The server imposes the type: a U32 after its greeting.
      if (this.serverHead.length < 16) return;
      type = this.serverHead.readUInt32BE(12);
    } else {
      if (this.browserHead.length < VERSION_LENGTH + 1) return;
      type = this.browserHead[VERSION_LENGTH]!;
    }
    if (type !== SECURITY_NONE && type !== SECURITY_VNC_AUTH) {
      this.giveUp();
      return;
    }
    // Version, the choice (3.7+), the 16-byte VNC auth response, ClientInit.
    const prefix = VERSION_LENGTH + (version === '3.3' ? 0 : 1) + (type === SECURITY_VNC_AUTH ? 16 : 0) + 1;
    const extra = this.consumed - prefix;
    if (extra > 0) {
      // Messages sent before the handshake was over already passed: nothing can be vouched for.
      this.giveUp();
      return;
    }
    this.skip = -extra;
    this.browserHead = Buffer.alloc(0);
    this.serverHead = Buffer.alloc(0);
  }
}

/** For tests and logs: the message types by name. */
export const CLIENT_MESSAGE_NAMES: Readonly<Record<number, string>> = {
  [MSG_SET_PIXEL_FORMAT]: 'SetPixelFormat',
  [MSG_SET_ENCODINGS]: 'SetEncodings',
  [MSG_FRAMEBUFFER_UPDATE_REQUEST]: 'FramebufferUpdateRequest',
  4: 'KeyEvent',
  5: 'PointerEvent',
  [MSG_CLIENT_CUT_TEXT]: 'ClientCutText',
  [MSG_ENABLE_CONTINUOUS_UPDATES]: 'EnableContinuousUpdates',
  [MSG_FENCE]: 'Fence',
  250: 'xvp',
  [MSG_SET_DESKTOP_SIZE]: 'SetDesktopSize',
  253: 'gii',
  255: 'QEMU',
};
