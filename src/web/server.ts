/**
 * @module
 * The HTTP server: the Express app for requests, the supervisor for WebSocket upgrades on
 * `/ctrlx-novnc/websockify`, on a unix socket (device) or a TCP address (off the device).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type express from 'express';
import { http } from '../builtins.js';
import { LOCAL_IDENTITY } from '../ctrlx/auth.js';
import { PREFIX } from '../ctrlx/paths.js';
import { AppError, ERR_BAD_REQUEST, ERR_FORBIDDEN, ERR_NOT_FOUND } from '../errors.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { refuseUpgrade, toAppError } from './respond.js';
import type { HostAllowList } from './hosts.js';
import { isSameOrigin } from './security.js';
import type { UpgradeLogin } from './access.js';

export const RELAY_PATH = `${PREFIX}/websockify`;

export { listen, type ListenAddress } from '../listen.js';

export interface ServerOptions {
  app: express.Express;
  supervisor: Supervisor;
  /** Extra origins allowed to open the relay WebSocket (besides the page's own). */
  allowedOrigins?: readonly string[];
  /**
   * Checks the login of a relay upgrade; rejects with an AppError (401/403/503, or 429 with
   * `retryAfter` seconds for a client with too many failed logins). Resolves with who it is and
   * the login the session must not outlive, if any.
   */
  authorize?: (req: IncomingMessage) => Promise<UpgradeLogin>;
  /**
   * The `Host` names answered (TCP only): any other gets 421 on every route and upgrade, before
   * anything else (DNS rebinding). None on the unix socket.
   */
  hosts?: HostAllowList;
}

/** Creates the server and routes upgrades; refusals are real HTTP responses. */
export function createServer(options: ServerOptions): Server {
  const { app, hosts } = options;
  const server = http.createServer((req, res) => {
    if (!hosts || hosts.admit(req, res)) app(req, res);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (options.hosts && !options.hosts.admitUpgrade(req, socket)) return;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      refuseUpgrade(socket, new AppError(ERR_BAD_REQUEST, 'Bad request URL.'));
      return;
    }
    if (url.pathname !== RELAY_PATH && url.pathname !== `${RELAY_PATH}/`) {
      refuseUpgrade(socket, new AppError(ERR_NOT_FOUND, 'No WebSocket endpoint here.'));
      return;
    }
    if (!isSameOrigin(req, options.allowedOrigins)) {
      refuseUpgrade(socket, new AppError(ERR_FORBIDDEN, 'Cross-origin WebSocket connections are not allowed.'));
      return;
    }
    const target = url.searchParams.get('target');
    // The viewer page's own random id, so that it can tell its session in the sessions list and events.
    const viewerId = url.searchParams.get('viewer') ?? undefined;
    if (!options.authorize) {
      options.supervisor.handleUpgrade(req, socket, head, target, { identity: LOCAL_IDENTITY, viewerId });
      return;
    }
    options.authorize(req).then(
      ({ identity, login }) => {
        if (socket.writable) options.supervisor.handleUpgrade(req, socket, head, target, { identity, viewerId, login });
        else socket.destroy();
      },
      (err: unknown) => refuseUpgrade(socket, toAppError(err)),
    );
  });
  return server;
}
