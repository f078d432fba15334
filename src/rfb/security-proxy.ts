/**
 * @module
 * The RFB handshake spliced by the relay for a target with a stored VNC password, as two pure
 * state machines (bytes in, bytes out, no sockets):
 *
 * - {@link ServerHandshake} speaks to the VNC server as its client: ProtocolVersion (3.3, 3.7,
 *   3.8 and the variants that stand for them), the security types and, for VNC Authentication,
 *   the DES challenge-response with the stored password, up to the SecurityResult.
 * - {@link BrowserHandshake} speaks to the browser (stock noVNC) as its server: it always
 *   presents RFB 3.8 and offers exactly security type None. Once the server side succeeded it
 *   sends the SecurityResult the browser expects after None (synthesised, since 3.3 and 3.7
 *   servers send none for None); when it failed, the browser gets RFB's own failure message
 *   (no security types + reason), which noVNC shows as a security failure.
 *
 * After both are done, everything else (ClientInit, ServerInit, the session) is opaque bytes.
 * Both machines parse by exact byte counts: TCP and WebSocket re-chunk freely.
 */
import {
  SECURITY_INVALID,
  SECURITY_NONE,
  SECURITY_RESULT_OK,
  SECURITY_VNC_AUTH,
  VERSION_LENGTH,
  checkGreeting,
  formatVersion,
  knownVersion,
  lengthPrefixed,
  parseVersion,
  u32,
  type RfbVersion,
} from './protocol.js';
import { ByteQueue } from './byte-queue.js';
import { LOCKOUT_REASON } from '../common/failures.js';
import { VNC_AUTH_CHALLENGE_LENGTH, vncAuthResponse } from './vnc-auth.js';

/** What went wrong, in two registers: `message` for the browser, `detail` for the log. */
export interface HandshakeFailure {
  /**
   * - `not-rfb`: the target did not greet with a ProtocolVersion (not a VNC server);
   * - `version`: an RFB version the relay cannot speak;
   * - `refused`: the server refused the connection with a reason (no security types);
   * - `unsupported`: no security type the relay can do (it does None and VNC Authentication);
   * - `auth`: the server did not accept the stored password;
   * - `lockout`: the server refuses this client address after too many security failures
   *   (TigerVNC's blacklist: "Too many security failures");
   * - `protocol`: malformed bytes from either side.
   */
  kind: 'not-rfb' | 'version' | 'refused' | 'unsupported' | 'auth' | 'lockout' | 'protocol';
  message: string;
  detail: string;
}

export type HandshakeOutcome =
  | { ok: true; version: RfbVersion; securityType: number; rest: Buffer }
  | { ok: false; failure: HandshakeFailure };

/** The result of feeding bytes to a machine: bytes to send to that peer and, at the end, the outcome. */
export interface HandshakeStep {
  send: Buffer[];
  done?: HandshakeOutcome;
}

/** Longest reason string accepted from a server; RFB reasons are one sentence. */
export const MAX_REASON_LENGTH = 4096;

/** Names of the security types a user may meet, for messages. */
const SECURITY_TYPE_NAMES: Record<number, string> = {
  1: 'None',
  2: 'VNC Authentication',
  5: 'RA2',
  6: 'RA2ne',
  13: 'RSA-AES',
  16: 'Tight',
  18: 'TLS',
  19: 'VeNCrypt',
  20: 'SASL',
  22: 'xvp',
  30: 'Apple Remote Desktop',
  113: 'MSLogonII',
  129: 'Unix Login',
};

export function securityTypeName(type: number): string {
  const name = SECURITY_TYPE_NAMES[type];
  return name ? `${name} (${type})` : `type ${type}`;
}

const fail = (kind: HandshakeFailure['kind'], message: string, detail = message): HandshakeStep => ({
  send: [],
  done: { ok: false, failure: { kind, message, detail } },
});

/** Printable form of bytes that should have been a ProtocolVersion, for messages. */
function printable(bytes: Buffer): string {
  return JSON.stringify(bytes.toString('latin1')).slice(1, -1).slice(0, 40);
}

/**
 * What a server that refuses at once sends before the client speaks: an RFB 3.3 greeting, no
 * security type (0) and a reason (TigerVNC's answer to a locked-out address). Returns the reason
 * when `bytes` are exactly that, `wait` while they may still become it, null otherwise.
 */
export function refusalAfterGreeting(bytes: Buffer): string | 'wait' | null {
  if (bytes.length < VERSION_LENGTH || bytes.toString('latin1', 0, VERSION_LENGTH) !== 'RFB 003.003\n') return null;
  if (bytes.length < VERSION_LENGTH + 8) {
    return bytes.subarray(VERSION_LENGTH).every((b, i) => i >= 4 || b === 0) ? 'wait' : null;
  }
  if (bytes.readUInt32BE(VERSION_LENGTH) !== SECURITY_INVALID) return null;
  const length = bytes.readUInt32BE(VERSION_LENGTH + 4);
  if (length > MAX_REASON_LENGTH) return null;
  if (bytes.length < VERSION_LENGTH + 8 + length) return 'wait';
  return bytes.toString('latin1', VERSION_LENGTH + 8, VERSION_LENGTH + 8 + length).replace(/[^\x20-\x7e]+/g, ' ').trim();
}

type ServerState =
  | 'version'
  | 'type33'
  | 'count'
  | 'types'
  | 'reasonLength'
  | 'reason'
  | 'challenge'
  | 'result'
  | 'done';

/**
 * The relay's side of the handshake with the VNC server. Feed it every byte from the server with
 * {@link push}; write what it returns in `send` to the server. `done` ends it: on success `rest`
 * holds server bytes that came after the SecurityResult (normally none: the server waits for
 * ClientInit).
 */
export class ServerHandshake {
  private readonly password: string | undefined;
  private readonly label: string;
  private readonly queue = new ByteQueue();
  private state: ServerState = 'version';
  private versionSeen = false;
  private version: RfbVersion = '3.8';
  private count = 0;
  private reasonLength = 0;
  /** What the reason being read explains. */
  private reasonFor: 'refused' | 'auth' = 'refused';
  private securityType = SECURITY_INVALID;
  private offeredTypes: number[] = [];

  /**
   * @param password the stored VNC password; without one only security type None is possible
   * @param label the target for messages, e.g. `10.0.0.5:5900`
   */
  constructor(password: string | undefined, label: string) {
    this.password = password;
    this.label = label;
  }

  /** True while the answer to the VNC Authentication challenge waits for its SecurityResult. */
  get awaitingResult(): boolean {
    return this.state === 'result' && this.securityType === SECURITY_VNC_AUTH;
  }

  /** The security types the server offered (3.7+) or imposed (3.3, one); empty before. */
  get offered(): readonly number[] {
    return this.offeredTypes;
  }

  /** True once the 12-byte ProtocolVersion has been read and understood. */
  get greeted(): boolean {
    return this.versionSeen;
  }

  push(chunk: Buffer): HandshakeStep {
    this.queue.push(chunk);
    const send: Buffer[] = [];
    for (;;) {
      const step = this.advance(send);
      if (step === 'wait') return { send };
      if (step.done) {
        this.state = 'done';
        return { send: [...send, ...step.send], done: step.done };
      }
    }
  }

  /** One state transition: 'wait' for more bytes, or a final step; `send` collects output. */
  private advance(send: Buffer[]): 'wait' | HandshakeStep {
    switch (this.state) {
      case 'version': {
        const head = this.queue.take(VERSION_LENGTH);
        if (!head) return this.checkPartialGreeting();
        const numbers = parseVersion(head);
        if (!numbers) {
          return fail('not-rfb', `not a VNC server: ${this.label} sent no RFB greeting`, `greeting "${printable(head)}"`);
        }
        const version = knownVersion(numbers);
        if (!version) {
          const text = head.toString('latin1').trim();
          return fail('version', `VNC server ${this.label} speaks an unsupported RFB version (${text})`);
        }
        this.version = version;
        this.versionSeen = true;
        send.push(formatVersion(version));
        this.state = version === '3.3' ? 'type33' : 'count';
        return { send: [] };
      }
      case 'type33': {
        const b = this.queue.take(4);
        if (!b) return 'wait';
        const type = b.readUInt32BE(0);
        if (type === SECURITY_INVALID) return this.readReason('refused');
        this.offeredTypes = [type];
        return this.begin(type);
      }
      case 'count': {
        const b = this.queue.take(1);
        if (!b) return 'wait';
        this.count = b[0]!;
        if (this.count === 0) return this.readReason('refused');
        this.state = 'types';
        return { send: [] };
      }
      case 'types': {
        const types = this.queue.take(this.count);
        if (!types) return 'wait';
        const offered = [...types];
        this.offeredTypes = offered;
        const choice = this.choose(offered);
        if (choice === undefined) {
          const names = offered.map(securityTypeName).join(', ');
          const message =
            offered.includes(SECURITY_VNC_AUTH) || offered.includes(SECURITY_NONE)
              ? `security type not supported: VNC server ${this.label} needs a password, and none is stored`
              : `security type not supported: VNC server ${this.label} offers only ${names}; the relay can do None or VNC Authentication`;
          send.push(Buffer.from([SECURITY_INVALID]));
          return fail('unsupported', message, `offered ${names}`);
        }
        send.push(Buffer.from([choice]));
        return this.begin(choice);
      }
      case 'challenge': {
        const challenge = this.queue.take(VNC_AUTH_CHALLENGE_LENGTH);
        if (!challenge) return 'wait';
        send.push(vncAuthResponse(this.password ?? '', challenge));
        this.state = 'result';
        return { send: [] };
      }
      case 'result': {
        const b = this.queue.take(4);
        if (!b) return 'wait';
        const result = b.readUInt32BE(0);
        if (result === SECURITY_RESULT_OK) return this.succeed();
        // After None no password was sent: the server refuses for its own reasons.
        const reasonFor = this.securityType === SECURITY_VNC_AUTH ? 'auth' : 'refused';
        // 3.8 explains a failure; 3.3 and 3.7 just close.
        if (this.version === '3.8') return this.readReason(reasonFor);
        if (reasonFor === 'refused') {
          return fail('refused', `VNC server ${this.label} refused the connection`, `SecurityResult ${result} after None`);
        }
        return this.authFailed(`SecurityResult ${result}`);
      }
      case 'reasonLength': {
        const b = this.queue.take(4);
        if (!b) return 'wait';
        this.reasonLength = b.readUInt32BE(0);
        if (this.reasonLength > MAX_REASON_LENGTH) {
          return fail(
            'protocol',
            `VNC handshake with ${this.label} failed: invalid failure reason`,
            `reason length ${this.reasonLength} > ${MAX_REASON_LENGTH}`,
          );
        }
        this.state = 'reason';
        return { send: [] };
      }
      case 'reason': {
        const b = this.queue.take(this.reasonLength);
        if (!b) return 'wait';
        // Reasons are ASCII in practice; keep them printable and short for a close frame.
        const reason = b.toString('latin1').replace(/[^\x20-\x7e]+/g, ' ').trim();
        if (LOCKOUT_REASON.test(reason)) {
          return fail(
            'lockout',
            `VNC server ${this.label} locks this controller out for now: ${reason.slice(0, 60)}`,
            `server reason "${reason}"`,
          );
        }
        if (this.reasonFor === 'auth') return this.authFailed(reason ? `server said "${reason}"` : 'no reason given', reason);
        return fail(
          'refused',
          `VNC server ${this.label} refused the connection${reason ? `: ${reason.slice(0, 60)}` : ''}`,
          `server reason "${reason}"`,
        );
      }
      case 'done':
        return 'wait';
    }
  }

  /** Rejects a partial greeting that can no longer become `RFB xxx.yyy\n`. */
  private checkPartialGreeting(): 'wait' | HandshakeStep {
    const partial = this.queue.peek();
    if (checkGreeting(partial) === 'invalid') {
      return fail('not-rfb', `not a VNC server: ${this.label} sent no RFB greeting`, `greeting "${printable(partial)}"`);
    }
    return 'wait';
  }

  /** Picks a security type: VNC Authentication when a password is stored, else None. */
  private choose(offered: number[]): number | undefined {
    if (this.password !== undefined && offered.includes(SECURITY_VNC_AUTH)) return SECURITY_VNC_AUTH;
    if (offered.includes(SECURITY_NONE)) return SECURITY_NONE;
    return undefined;
  }

  /** Starts the chosen (3.7+) or imposed (3.3) security type. */
  private begin(type: number): HandshakeStep {
    this.securityType = type;
    if (type === SECURITY_VNC_AUTH) {
      if (this.password === undefined) {
        return fail('unsupported', `security type not supported: VNC server ${this.label} needs a password, and none is stored`);
      }
      this.state = 'challenge';
      return { send: [] };
    }
    if (type === SECURITY_NONE) {
      // None: 3.8 still sends a SecurityResult; 3.3 and 3.7 go straight to ClientInit.
      if (this.version === '3.8') {
        this.state = 'result';
        return { send: [] };
      }
      return this.succeed();
    }
    // Only a 3.3 server imposes a type; 1 and 2 are the only ones it may send.
    return fail(
      'unsupported',
      `security type not supported: VNC server ${this.label} requires ${securityTypeName(type)}`,
      `RFB 3.3 server sent security type ${type}`,
    );
  }

  private readReason(reasonFor: 'refused' | 'auth'): HandshakeStep {
    this.reasonFor = reasonFor;
    this.state = 'reasonLength';
    return { send: [] };
  }

  private authFailed(detail: string, reason = ''): HandshakeStep {
    const said = reason ? ` (server: ${reason.slice(0, 40)})` : '';
    return fail(
      'auth',
      `authentication failed: ${this.label} did not accept the VNC password stored in the settings${said}`,
      detail,
    );
  }

  private succeed(): HandshakeStep {
    return { send: [], done: { ok: true, version: this.version, securityType: this.securityType, rest: this.queue.rest() } };
  }
}

type BrowserState = 'version' | 'waiting' | 'choice' | 'done';

/**
 * Browser bytes held before the offer: a viewer sends its 12-byte version, its choice and the
 * 1-byte ClientInit (and nothing else before ServerInit); more is out of turn.
 */
export const MAX_EARLY_BROWSER_BYTES = 64;

/**
 * The relay's side of the handshake with the browser: greets with RFB 3.8 (send
 * {@link BrowserHandshake.greeting} first), reads the browser's version, then waits for
 * {@link serverDone} to offer None or report the failure. Feed it every browser byte with
 * {@link push} until `done`; on success `rest` holds the browser's bytes after the handshake
 * (ClientInit onwards), to be forwarded to the server.
 */
export class BrowserHandshake {
  private readonly queue = new ByteQueue();
  private state: BrowserState = 'version';
  private version: RfbVersion = '3.8';
  private server: HandshakeOutcome | undefined;

  /** The ProtocolVersion the browser is greeted with. */
  greeting(): Buffer {
    return formatVersion('3.8');
  }

  push(chunk: Buffer): HandshakeStep {
    if (this.state === 'done') return { send: [] };
    this.queue.push(chunk);
    if (this.queue.length > MAX_EARLY_BROWSER_BYTES) {
      this.state = 'done';
      return fail('protocol', 'the viewer sent data out of turn', `${this.queue.length} bytes before the handshake ended`);
    }
    return this.run();
  }

  /** Reports how the server side ended; returns what to send to the browser now. */
  serverDone(outcome: HandshakeOutcome): HandshakeStep {
    this.server = outcome;
    return this.run();
  }

  private run(): HandshakeStep {
    if (this.state === 'version') {
      const head = this.queue.take(VERSION_LENGTH);
      if (!head) return { send: [] };
      const numbers = parseVersion(head);
      const version = numbers && knownVersion(numbers);
      if (!version) {
        this.state = 'done';
        return fail('protocol', 'the viewer sent an invalid RFB version', `browser version "${printable(head)}"`);
      }
      this.version = version;
      this.state = 'waiting';
    }
    if (this.state === 'waiting') {
      if (!this.server) return { send: [] };
      if (!this.server.ok) {
        this.state = 'done';
        const reason = lengthPrefixed(this.server.failure.message);
        // 3.7+: zero security types + reason; 3.3: security type 0 (Invalid) + reason.
        const head = this.version === '3.3' ? u32(SECURITY_INVALID) : Buffer.from([0]);
        return { send: [head, reason], done: this.server };
      }
      if (this.version === '3.3') return this.finish([u32(SECURITY_NONE)]);
      this.state = 'choice';
      const offer = Buffer.from([1, SECURITY_NONE]);
      const step = this.readChoice();
      return { ...step, send: [offer, ...step.send] };
    }
    if (this.state === 'choice') return this.readChoice();
    return { send: [] };
  }

  private readChoice(): HandshakeStep {
    const b = this.queue.take(1);
    if (!b) return { send: [] };
    if (b[0] !== SECURITY_NONE) {
      this.state = 'done';
      return fail('protocol', `the viewer chose ${securityTypeName(b[0]!)}, which was not offered`);
    }
    // The SecurityResult after None exists in 3.8 only.
    return this.finish(this.version === '3.8' ? [u32(SECURITY_RESULT_OK)] : []);
  }

  private finish(send: Buffer[]): HandshakeStep {
    this.state = 'done';
    return { send, done: { ok: true, version: this.version, securityType: SECURITY_NONE, rest: this.queue.rest() } };
  }
}
