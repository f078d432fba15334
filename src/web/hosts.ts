/**
 * @module
 * The `Host` allow-list of every TCP listener (`serve` and `relay`), against DNS rebinding: a page
 * of another site that points its own name at 127.0.0.1 makes the browser send that name in
 * `Host` (and in `Origin`, so the same-origin check alone passes). A name the app does not know
 * is answered 421 on every route and refused before any WebSocket upgrade.
 *
 * Allowed: loopback names (`localhost`, `*.localhost`, which browsers resolve themselves), any IP
 * literal (a rebinding attack needs a name: an address cannot be rebound), the listen host, and
 * what `--allowed-hosts` adds (names, or `*.domain` for every name under a domain). A request
 * without `Host` (HTTP/1.0 from a script) is not a browser page and passes. On the unix socket
 * (the device, behind the ctrlX reverse proxy) no allow-list is used.
 *
 * No Express here: the `relay` command uses it on a plain `http.Server`.
 */
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { problemOf } from '../ctrlx/problem.js';
import { AppError, ERR_INVALID_ARGUMENT, ERR_MISDIRECTED } from '../errors.js';
import { isValidHost } from '../relay/address.js';
import { rejectUpgrade } from '../relay/upgrade.js';

/** `name`, lower case, without a trailing dot. */
function normalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * The host part of a `Host` header (`name`, `name:port`, `1.2.3.4:port`, `[v6]`, `[v6]:port`),
 * lower case, without brackets or a trailing dot; undefined when it does not parse.
 */
export function hostOfHeader(header: string): string | undefined {
  const value = header.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) return net.isIPv6(bracketed[1]!) ? bracketed[1]!.toLowerCase() : undefined;
  const m = /^([^:[\]]+)(?::\d{1,5})?$/.exec(value);
  if (!m) return undefined;
  const host = normalName(m[1]!);
  return host && isValidHost(host) ? host : undefined;
}

/**
 * Parses `--allowed-hosts a,b,*.plant.example`: host names or IP addresses, or `*.` and a domain.
 * @throws {AppError} ERR_INVALID_ARGUMENT naming the entry at fault
 */
export function parseAllowedHosts(list: string, flag = '--allowed-hosts'): string[] {
  const out: string[] = [];
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    const name = entry.startsWith('*.') ? entry.slice(2) : entry;
    if (!name || !isValidHost(name) || (entry !== name && net.isIP(name) !== 0)) {
      throw new AppError(ERR_INVALID_ARGUMENT, `${flag}: "${entry}" is not a host name, an IP address or *.domain`, { status: 400 });
    }
    out.push(entry.startsWith('*.') ? `*.${normalName(name)}` : normalName(name));
  }
  return out;
}

/** The names one TCP listener answers to; see the module comment. */
export class HostAllowList {
  private readonly names = new Set<string>();
  private readonly suffixes: string[] = ['.localhost'];

  /**
   * @param listenHost the host of `--listen` (an address or a name)
   * @param extra the entries of `--allowed-hosts` (see {@link parseAllowedHosts})
   */
  constructor(listenHost: string, extra: readonly string[] = []) {
    this.names.add('localhost');
    this.names.add(normalName(listenHost));
    for (const e of extra) {
      if (e.startsWith('*.')) this.suffixes.push(e.slice(1));
      else this.names.add(normalName(e));
    }
  }

  /** True when a request with this `Host` header may be served. */
  allows(header: string | undefined): boolean {
    if (header === undefined) return true;
    const host = hostOfHeader(header);
    if (host === undefined) return false;
    if (net.isIP(host) !== 0) return true;
    return this.names.has(host) || this.suffixes.some((s) => host.endsWith(s));
  }

  /** The error a refused request gets. */
  static error(req: http.IncomingMessage): AppError {
    const shown = (req.headers.host ?? '').replace(/[^\x21-\x7e]/g, '?').slice(0, 100);
    return new AppError(
      ERR_MISDIRECTED,
      `This server does not answer to the host name "${shown}": use its address, or start it with --allowed-hosts naming it.`,
    );
  }

  /**
   * Answers a request with a foreign `Host` with 421 Problem JSON and returns false; returns true
   * (nothing written) for an allowed one.
   */
  admit(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.allows(req.headers.host)) return true;
    const err = HostAllowList.error(req);
    res.writeHead(err.status, {
      'Content-Type': 'application/problem+json',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      Connection: 'close',
    });
    res.end(JSON.stringify(problemOf(err)));
    return false;
  }

  /** Refuses an upgrade with a foreign `Host` (HTTP 421 on the socket) and returns false; true for an allowed one. */
  admitUpgrade(req: http.IncomingMessage, socket: Duplex): boolean {
    if (this.allows(req.headers.host)) return true;
    socket.on('error', () => socket.destroy());
    rejectUpgrade(socket, 421, HostAllowList.error(req).message);
    return false;
  }
}
