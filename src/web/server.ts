/**
 * @module
 * The HTTP server: the Express app for requests, the supervisor for WebSocket upgrades on
 * `/ctrlx-novnc/websockify`, on a unix socket (device) or a TCP address (off the device).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type express from 'express';
import { PREFIX } from '../ctrlx/paths.js';
import { formatHostPort, type HostPort } from '../relay/address.js';
import { rejectUpgrade } from '../relay/upgrade.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { isSameOrigin } from './security.js';

export const RELAY_PATH = `${PREFIX}/websockify`;

export type ListenAddress = { socket: string } | HostPort;

export interface ServerOptions {
  app: express.Express;
  supervisor: Supervisor;
  /** Extra origins allowed to open the relay WebSocket (besides the page's own). */
  allowedOrigins?: readonly string[];
  /** Checks the login of a relay upgrade; rejects with an error carrying `status` (401/403/503). */
  authorize?: (req: http.IncomingMessage) => Promise<void>;
}

/** Creates the server and routes upgrades; refusals are real HTTP responses. */
export function createServer(options: ServerOptions): http.Server {
  const server = http.createServer(options.app);
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      rejectUpgrade(socket, 400, 'Bad request URL.');
      return;
    }
    if (url.pathname !== RELAY_PATH && url.pathname !== RELAY_PATH + '/') {
      rejectUpgrade(socket, 404, 'No WebSocket endpoint here.');
      return;
    }
    if (!isSameOrigin(req, options.allowedOrigins)) {
      rejectUpgrade(socket, 403, 'Cross-origin WebSocket connections are not allowed.');
      return;
    }
    const target = url.searchParams.get('target');
    if (!options.authorize) {
      options.supervisor.handleUpgrade(req, socket, head, target);
      return;
    }
    options.authorize(req).then(
      () => {
        if (socket.writable) options.supervisor.handleUpgrade(req, socket, head, target);
        else socket.destroy();
      },
      (err: { status?: number; message?: string }) => {
        const status = err.status ?? 500;
        rejectUpgrade(socket, status, err.message ?? 'Not allowed.', status === 401 ? { 'WWW-Authenticate': 'Bearer realm="ctrlx-novnc"' } : {});
      },
    );
  });
  return server;
}

/** Human words for a listen error. */
function listenError(err: NodeJS.ErrnoException, where: string): Error {
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
