/**
 * @module
 * Listening with clear errors: on a unix socket (its folder made, a stale socket removed first)
 * or a TCP address; EADDRINUSE and friends become one sentence naming the address.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { formatHostPort, type HostPort } from './relay/address.js';

export type ListenAddress = { socket: string } | HostPort;

/** Human words for a listen error. */
export function listenError(err: NodeJS.ErrnoException, where: string): Error {
  const why =
    err.code === 'EADDRINUSE'
      ? 'the address is already in use'
      : err.code === 'EACCES'
        ? 'permission denied'
        : err.code === 'EADDRNOTAVAIL'
          ? 'the address is not available on this machine'
          : err.message;
  return new Error(`cannot listen on ${where}: ${why}`, { cause: err });
}

/**
 * Listens on a unix socket (its folder is made, a stale socket removed first) or a TCP address.
 * Returns a printable address.
 */
export async function listen(server: http.Server, address: ListenAddress): Promise<string> {
  const where = 'socket' in address ? address.socket : formatHostPort(address.host, address.port);
  if ('socket' in address) {
    fs.mkdirSync(path.dirname(address.socket), { recursive: true });
    try {
      if (fs.lstatSync(address.socket).isSocket()) fs.unlinkSync(address.socket);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, where));
    server.once('error', onError);
    const done = (): void => {
      server.removeListener('error', onError);
      resolve();
    };
    if ('socket' in address) server.listen(address.socket, done);
    else server.listen(address.port, address.host, done);
  });
  const bound = server.address();
  if (bound && typeof bound === 'object') return formatHostPort(bound.address, bound.port);
  return where;
}
