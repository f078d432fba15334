/**
 * @module
 * "Test connection": opens a TCP connection to a VNC target, reads the 12-byte RFB
 * ProtocolVersion greeting and closes. Nothing is sent to the target.
 */
import net from 'node:net';
import { formatHostPort } from './address.js';
import { checkGreeting, VERSION_LENGTH, versionText } from '../rfb/protocol.js';

export type ProbeOutcome = 'vnc' | 'not-vnc' | 'refused' | 'timeout' | 'not-found' | 'unreachable' | 'error';

export interface ProbeResult {
  ok: boolean;
  outcome: ProbeOutcome;
  /** A sentence for the user, e.g. "VNC server, RFB 003.008". */
  message: string;
  /** `RFB 003.008` when the target answered with a greeting. */
  version?: string;
  target: string;
  /** Milliseconds from connect to result. */
  elapsedMs: number;
  /** Whether the server asks for a VNC password, when the probe got as far as its security types. */
  asksPassword?: boolean;
}

/** Probes `host:port`; never throws. */
export function probeTarget(host: string, port: number, timeoutMs = 3000): Promise<ProbeResult> {
  const target = formatHostPort(host, port);
  const started = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    const socket = net.connect({ host, port });
    const done = (outcome: ProbeOutcome, message: string, version?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: outcome === 'vnc', outcome, message, target, elapsedMs: Date.now() - started, ...(version ? { version } : {}) });
    };
    const timer = setTimeout(() => {
      if (socket.connecting) done('timeout', `timed out: no answer from ${target} within ${timeoutMs / 1000} s`);
      else done('not-vnc', `port open but not a VNC server: ${target} sent no RFB greeting within ${timeoutMs / 1000} s`);
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      // The first 12 bytes every VNC server sends: `RFB xxx.yyy\n`.
      const check = checkGreeting(received);
      if (check === 'invalid') done('not-vnc', `port open but not a VNC server: ${target} does not speak RFB`);
      else if (check === 'complete') {
        const version = versionText(received.subarray(0, VERSION_LENGTH));
        done('vnc', `VNC server, ${version}`, version);
      }
    });
    socket.on('end', () => done('not-vnc', `port open but not a VNC server: ${target} closed the connection without an RFB greeting`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      switch (err.code) {
        case 'ECONNREFUSED':
          return done('refused', `connection refused: nothing listens on ${target}`);
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
        case 'EAI_NONAME':
          return done('not-found', `host not found: ${host}`);
        case 'EHOSTUNREACH':
        case 'ENETUNREACH':
          return done('unreachable', `no route to ${target} (${err.code})`);
        case 'ETIMEDOUT':
          return done('timeout', `timed out connecting to ${target}`);
        default:
          return done('error', `${err.code ?? err.message} ${target}`);
      }
    });
  });
}
