/**
 * @module
 * Wires the configuration service, the supervisor (and its relay) and the web server into one
 * running app; `startApp()`/`stop()` are what the CLI and the tests use. A configuration change
 * goes one way: page, API, file or ctrlX load → configuration service → supervisor → relay.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { AuditLog } from './audit/audit-log.js';
import { ConfigService } from './config/service.js';
import type { Target } from './config/schema.js';
import { Authenticator, type AuthOptions } from './ctrlx/auth.js';
import { healthOf, type HealthReporter } from './ctrlx/health.js';
import { createGuard } from './web/access.js';
import { packageVersion } from './ctrlx/paths.js';
import { silentLogger, type Logger } from './log.js';
import type { RelayOptions } from './relay/relay-server.js';
import { Supervisor } from './supervisor/supervisor.js';
import { ViewerEventHub } from './web/events.js';
import { createWebApp, type AppStatus } from './web/app.js';
import { HostAllowList } from './web/hosts.js';
import { CsrfTokens } from './web/security.js';
import { createRateLimiters, type RateLimitOptions } from './web/rate-limit.js';
import { createServer, listen, type ListenAddress } from './web/server.js';

export interface AppOptions {
  listen: ListenAddress;
  /** The solutions root (`$SNAP_COMMON/solutions` on the device). */
  solutionsDir: string;
  /** Private app data (never archived by ctrlX): the targets' VNC passwords and the audit trail. */
  appDataDir: string;
  /** The target used while none is configured (the built-in demo server). */
  fallbackTarget?: Target;
  relay?: RelayOptions;
  /** Open viewer sessions allowed in total and per target (defaults 32 and 16). */
  limits?: { maxSessions?: number | undefined; maxSessionsPerTarget?: number | undefined };
  /** Milliseconds between polls of config.json. Default 1000. */
  pollInterval?: number;
  /** Milliseconds the "Test connection" probe waits. Default 3000. */
  probeTimeout?: number;
  /** Extra origins allowed to open the relay WebSocket. */
  allowedOrigins?: readonly string[];
  /**
   * `Host` names answered on TCP besides loopback names, IP addresses and the listen host (entries
   * as `parseAllowedHosts` returns them); any other gets 421. Not used on a unix socket.
   */
  allowedHosts?: readonly string[];
  /**
   * ctrlX token checks (identity manager URL, cache), or `false` (default) for none. The CLI
   * decides: on the device always on; off it, off only when bound to loopback.
   */
  auth?: AuthOptions | false;
  /**
   * Requests allowed per client, each `{ limit, windowMs }` (see web/rate-limit.ts): `api`, every
   * API request (default 600 a minute); `changes`, PUT/POST on the API and form posts (default 60 a
   * minute); `failedLogins`, 401s before a client is refused with 429 (default 10 in 5 minutes,
   * counted only with `auth`).
   */
  rateLimits?: RateLimitOptions;
  /** Where the app's health goes (`snapctl set-health`); the CLI passes one on the device only. */
  health?: HealthReporter;
  logger?: Logger;
}

export interface RunningApp {
  /** `127.0.0.1:6080` or the socket path. */
  address: string;
  server: http.Server;
  /** The configuration service: targets, passwords, ctrlX load and save. */
  config: ConfigService;
  supervisor: Supervisor;
  /** The audit trail (audit.log in `appDataDir`): the relay reports to it, `GET api/v1/audit` reads it. */
  audit: AuditLog;
  status(): AppStatus;
  /** Stops accepting, closes sessions with 1001, removes the socket. */
  stop(): Promise<void>;
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const log = options.logger ?? silentLogger;
  // Checked before anything starts: bad limits throw a TypeError naming the option.
  const rateLimits = createRateLimiters({
    limits: options.rateLimits ?? {},
    // On the unix socket only the ctrlX reverse proxy connects: it names the client.
    behindProxy: 'socket' in options.listen,
    authentication: Boolean(options.auth),
    logger: log.child('limits'),
  });
  const startedAt = new Date().toISOString();
  const version = packageVersion();

  // The passwords live apart from the configuration (in appDataDir): never in the active
  // configuration, which ctrlX archives and exports.
  const config = new ConfigService({
    solutionsDir: options.solutionsDir,
    appDataDir: options.appDataDir,
    logger: log,
    ...(options.pollInterval ? { pollInterval: options.pollInterval } : {}),
  });
  // Who watched or operated which screen: private app data too, written on events only.
  const audit = new AuditLog({ dir: options.appDataDir, logger: log });
  // What the relay says about a viewer's session reaches its page as Server-Sent Events.
  const events = new ViewerEventHub();
  const supervisor = new Supervisor({
    logger: log.child('relay'),
    viewerEvents: (to, event, data) => events.send(to, event, data),
    // Session starts and ends, control taken, released, taken over, sessions ended by a manager.
    audit,
    passwordFor: (id) => config.passwordFor(id),
    ...(options.relay ? { relay: options.relay } : {}),
    ...(options.limits?.maxSessions ? { maxSessions: options.limits.maxSessions } : {}),
    ...(options.limits?.maxSessionsPerTarget ? { maxSessionsPerTarget: options.limits.maxSessionsPerTarget } : {}),
    ...(options.fallbackTarget ? { fallbackTarget: options.fallbackTarget } : {}),
  });
  await config.start();
  supervisor.start(config.current);
  // The service brought the passwords in line with the change before announcing it.
  config.on('change', (next) => supervisor.apply(next));
  config.on('passwords', (ids) => {
    for (const id of ids) supervisor.resetAuthFailures(id);
  });
  let unmounted = config.status().state === 'unmounted';
  config.on('status', (s) => {
    if (s.state === 'unmounted' && !unmounted) log.warn('waiting for the active configuration folder', { dir: config.activeDir });
    unmounted = s.state === 'unmounted';
    options.health?.report(healthOf(s));
  });
  options.health?.report(healthOf(config.status()));
  if (unmounted) {
    log.warn('the active configuration is not available yet; starting with no targets', { dir: config.activeDir });
  }

  const status = (): AppStatus => ({ version, startedAt, config: config.status(), relay: supervisor.status() });
  const guard = createGuard(options.auth ? new Authenticator({ ...options.auth, logger: log.child('auth') }) : null, rateLimits.failedLogins);
  const app = createWebApp({
    guard,
    rateLimits,
    config,
    supervisor,
    audit,
    events,
    csrf: new CsrfTokens(),
    status,
    probeTimeout: options.probeTimeout ?? 3000,
    logger: log.child('web'),
  });
  const server = createServer({
    app,
    supervisor,
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
    ...(guard.enabled ? { authorize: guard.upgrade } : {}),
    // Behind the ctrlX proxy (unix socket) the proxy decides which names reach the app.
    ...('host' in options.listen ? { hosts: new HostAllowList(options.listen.host, options.allowedHosts) } : {}),
  });
  let address: string;
  try {
    address = await listen(server, options.listen);
  } catch (err) {
    config.stop();
    rateLimits.close();
    events.close();
    await supervisor.stop();
    await audit.flush();
    throw err;
  }
  log.info('listening', { address, solutions: options.solutionsDir, version });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      server.close();
      config.stop();
      rateLimits.close();
      await supervisor.stop();
      // The sessions' last events (their ends) reach the file before the process exits.
      await audit.flush();
      // After the sessions' ends went out to their pages.
      events.close();
      await options.health?.idle();
      server.closeAllConnections();
      if ('socket' in options.listen) fs.rmSync(options.listen.socket, { force: true });
    })());

  return { address, server, config, supervisor, audit, status, stop };
}
