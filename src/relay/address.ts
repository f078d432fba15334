/**
 * @module
 * Parses `HOST:PORT` strings as given on the command line: IPv4, `[IPv6]`, or a host name.
 */
import net from 'node:net';
import { AppError, ERR_INVALID_ADDRESS } from '../errors.js';
import { isDottedNumbers } from '../common/form-rules.js';

export interface HostPort {
  host: string;
  port: number;
}

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 253 chars at most. */
const HOSTNAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * True for an IPv4 or IPv6 literal or an RFC 1123 host name; four dot-separated numbers are an
 * IPv4 address or nothing (`192.168.1.300` is not a host name).
 */
export function isValidHost(host: string): boolean {
  return net.isIP(host) !== 0 || (!isDottedNumbers(host) && HOSTNAME.test(host));
}

/** Parses a TCP port number, 1 to 65535 (0 too when `allowZero`, for "any free port"). */
export function parsePort(text: string, field = 'port', allowZero = false): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= (allowZero ? 0 : 1) && port <= 65535)) {
    throw new AppError(ERR_INVALID_ADDRESS, `${field}: "${text}" is not a port number (1-65535)`, {
      status: 400,
      field,
    });
  }
  return port;
}

/**
 * Parses `HOST:PORT`, `[IPV6]:PORT` or `:PORT`/`PORT` (host `defaultHost`).
 * @throws {AppError} ERR_INVALID_ADDRESS naming `field` and what is wrong.
 */
export function parseHostPort(text: string, field: string, defaultHost?: string, allowZero = false): HostPort {
  const bad = (why: string): AppError =>
    new AppError(ERR_INVALID_ADDRESS, `${field}: "${text}" ${why}`, { status: 400, field });
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2]!;
    if (net.isIPv6(host) === false) throw bad('has no valid IPv6 address in brackets');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1) {
      if (defaultHost === undefined) throw bad('must be HOST:PORT');
      host = defaultHost;
      portText = text;
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(':')) throw bad('is ambiguous: write IPv6 addresses in brackets, e.g. [::1]:5900');
      if (host === '') {
        if (defaultHost === undefined) throw bad('must be HOST:PORT');
        host = defaultHost;
      }
    }
    if (!isValidHost(host)) throw bad('has an invalid host name or IP address');
  }
  return { host, port: parsePort(portText, field, allowZero) };
}

/** Formats a host and port for logs and messages, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
