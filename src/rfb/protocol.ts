/**
 * @module
 * RFB (VNC) protocol numbers and the ProtocolVersion handshake, after rfbproto (the maintained
 * RFC 6143 superset). Shared by the demo server, the test client and the relay.
 */

/** The three published protocol versions. */
export type RfbVersion = '3.3' | '3.7' | '3.8';

export const RFB_VERSIONS: readonly RfbVersion[] = ['3.3', '3.7', '3.8'];

/** Length of a ProtocolVersion message: `RFB xxx.yyy\n`. */
export const VERSION_LENGTH = 12;

export const SECURITY_INVALID = 0;
export const SECURITY_NONE = 1;
export const SECURITY_VNC_AUTH = 2;

export const SECURITY_RESULT_OK = 0;
export const SECURITY_RESULT_FAILED = 1;

// Client-to-server message types.
export const MSG_SET_PIXEL_FORMAT = 0;
export const MSG_SET_ENCODINGS = 2;
export const MSG_FRAMEBUFFER_UPDATE_REQUEST = 3;
export const MSG_KEY_EVENT = 4;
export const MSG_POINTER_EVENT = 5;
export const MSG_CLIENT_CUT_TEXT = 6;

// Server-to-client message types.
export const MSG_FRAMEBUFFER_UPDATE = 0;
export const MSG_SET_COLOUR_MAP_ENTRIES = 1;
export const MSG_BELL = 2;
export const MSG_SERVER_CUT_TEXT = 3;

// Encodings and pseudo-encodings.
export const ENCODING_RAW = 0;
export const ENCODING_COPY_RECT = 1;
export const ENCODING_DESKTOP_SIZE = -223;

/** The 12-byte ProtocolVersion message for `version`. */
export function formatVersion(version: RfbVersion): Buffer {
  const minor = version.slice(2);
  return Buffer.from(`RFB 003.00${minor}\n`, 'latin1');
}

/** A parsed ProtocolVersion message: the numbers as sent. */
export interface VersionNumbers {
  major: number;
  minor: number;
}

/** The shape of a ProtocolVersion message; `0` stands for any digit. */
const GREETING_SHAPE = 'RFB 000.000\n';

/**
 * Checks the first bytes of a peer against `RFB xxx.yyy\n` (the one greeting check of the
 * project): `complete` when the first 12 bytes are one, `partial` when fewer than 12 have arrived
 * and they can still become one, `invalid` otherwise. Bytes after the 12th are not looked at.
 */
export function checkGreeting(bytes: Uint8Array): 'complete' | 'partial' | 'invalid' {
  const n = Math.min(bytes.length, VERSION_LENGTH);
  for (let i = 0; i < n; i++) {
    const c = bytes[i]!;
    const want = GREETING_SHAPE.charCodeAt(i);
    if (want === 0x30 ? c < 0x30 || c > 0x39 : c !== want) return 'invalid';
  }
  return n === VERSION_LENGTH ? 'complete' : 'partial';
}

/**
 * Collects a peer's first bytes until they are a complete greeting: `push` answers `wait` (a
 * prefix of one so far), `invalid`, or every byte received so far once the first 12 are one.
 */
export class GreetingWait {
  private got: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): 'wait' | 'invalid' | Buffer {
    this.got = this.got.length ? Buffer.concat([this.got, chunk]) : Buffer.from(chunk);
    const check = checkGreeting(this.got);
    return check === 'complete' ? this.got : check === 'partial' ? 'wait' : 'invalid';
  }
}

/** Parses `RFB xxx.yyy\n`; undefined when the 12 bytes are not a ProtocolVersion message. */
export function parseVersion(bytes: Uint8Array): VersionNumbers | undefined {
  if (bytes.length !== VERSION_LENGTH || checkGreeting(bytes) !== 'complete') return undefined;
  const digits = (from: number): number => (bytes[from]! - 0x30) * 100 + (bytes[from + 1]! - 0x30) * 10 + (bytes[from + 2]! - 0x30);
  return { major: digits(4), minor: digits(8) };
}

/** `RFB 003.008` for a ProtocolVersion message (without the newline), for messages. */
export function versionText(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, VERSION_LENGTH - 1)).toString('latin1');
}

/**
 * The published version a peer's numbers stand for, as servers and noVNC read them: 3.3 to 3.6
 * (3.5 was sent by some clients) mean 3.3, 3.7 is 3.7, 3.8 and later 3.x (Apple's 3.889) mean 3.8,
 * 4.x and 5.x (RealVNC, UltraVNC) behave as 3.8. Anything else is undefined.
 */
export function knownVersion({ major, minor }: VersionNumbers): RfbVersion | undefined {
  if (major === 3) {
    if (minor < 3) return undefined;
    if (minor < 7) return '3.3';
    return minor === 7 ? '3.7' : '3.8';
  }
  return major === 4 || major === 5 ? '3.8' : undefined;
}

/** Orders versions: negative when `a` is older than `b`. */
export function compareVersions(a: RfbVersion, b: RfbVersion): number {
  return RFB_VERSIONS.indexOf(a) - RFB_VERSIONS.indexOf(b);
}

/** A U32 length followed by that many bytes: the reason strings of the handshake. */
export function lengthPrefixed(text: string, encoding: BufferEncoding = 'utf8'): Buffer {
  const body = Buffer.from(text, encoding);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** A big-endian U32, as in the SecurityResult and the 3.3 security type. */
export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}
