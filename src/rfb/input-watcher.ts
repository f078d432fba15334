/**
 * @module
 * Watches the browser's side of an RFB session for user input (keys, pointer, clipboard), for
 * the idle-session timeout. It only reads copies of the bytes the relay forwards anyway.
 *
 * The browser's messages start after its part of the handshake. When the relay did the security
 * handshake itself that point is known; when the handshake passes through, the watcher finds it
 * from the versions and the security type chosen (None or VNC Authentication). Whenever it cannot
 * follow the stream (another security type, an unknown message type), it fails open: every byte
 * from the browser then counts as input, so a session is never closed for idleness wrongly.
 */
import { CLIENT_MESSAGES } from './client-messages.js';
import { knownVersion, parseVersion, SECURITY_NONE, SECURITY_VNC_AUTH, VERSION_LENGTH } from './protocol.js';

/** Browser bytes kept while the handshake prefix is being worked out; more means give up. */
const MAX_HEAD = 64;

export class InputWatcher {
  /** Browser handshake bytes still to skip; undefined while unknown. */
  private skip: number | undefined;
  /** The stream could not be followed: every browser byte counts as input. */
  private lost = false;
  private serverHead = Buffer.alloc(0);
  private browserHead = Buffer.alloc(0);
  /** Bytes of an incomplete message (or of the handshake while the prefix is unknown). */
  private partial = Buffer.alloc(0);

  /**
   * @param afterHandshake true when the relay did the security handshake itself, so only the
   *   browser's ClientInit (1 byte) precedes its messages; false to work the handshake out from
   *   both directions.
   */
  constructor(afterHandshake: boolean) {
    if (afterHandshake) this.skip = 1;
  }

  /** True when the watcher has given up following the stream. */
  get failedOpen(): boolean {
    return this.lost;
  }

  /** Bytes from the server; only the first 16 matter (version and, for 3.3, the security type). */
  server(chunk: Buffer): void {
    if (this.skip !== undefined || this.lost || this.serverHead.length >= 16) return;
    this.serverHead = Buffer.concat([this.serverHead, chunk.subarray(0, 16 - this.serverHead.length)]);
    this.resolvePrefix();
  }

  /** Bytes from the browser; true when they carry user input (or the watcher fails open). */
  browser(chunk: Buffer): boolean {
    if (this.lost) return true;
    if (this.skip === undefined) {
      this.browserHead = Buffer.concat([this.browserHead, chunk]);
      if (this.browserHead.length > MAX_HEAD) return this.giveUp();
      this.resolvePrefix();
      if (this.lost) return true;
      if (this.skip === undefined) return false;
      chunk = this.browserHead;
      this.browserHead = Buffer.alloc(0);
    }
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      chunk = chunk.subarray(n);
    }
    return this.scan(chunk);
  }

  private giveUp(): boolean {
    this.lost = true;
    this.partial = Buffer.alloc(0);
    this.browserHead = Buffer.alloc(0);
    return true;
  }

  /** Works out the length of the browser's handshake once enough of both sides has arrived. */
  private resolvePrefix(): void {
    if (this.skip !== undefined || this.browserHead.length < VERSION_LENGTH) return;
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
    this.skip = VERSION_LENGTH + (version === '3.3' ? 0 : 1) + (type === SECURITY_VNC_AUTH ? 16 : 0) + 1;
    this.serverHead = Buffer.alloc(0);
  }

  /** Walks whole messages; true if any of them is user input. */
  private scan(chunk: Buffer): boolean {
    let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let input = false;
    while (buf.length > 0) {
      const spec = CLIENT_MESSAGES[buf[0]!];
      if (!spec) return this.giveUp();
      if (buf.length < spec.need) break;
      const size = spec.size(buf);
      if (size < 0) return this.giveUp();
      if (typeof spec.input === 'function' ? spec.input(buf) : spec.input) input = true;
      if (buf.length < size) {
        // Large clipboard texts are skipped as they stream, not buffered.
        if (buf[0] === 6 && buf.length >= 8) {
          this.skip = size - buf.length;
          this.partial = Buffer.alloc(0);
          return input;
        }
        break;
      }
      buf = buf.subarray(size);
    }
    this.partial = Buffer.from(buf);
    return input;
  }
}
