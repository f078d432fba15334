/**
 * @module
 * Wires the configuration store, the supervisor (and its relay) and the web server into one
 * running app; `startApp()`/`stop()` are what the CLI and the tests use.
 */
import fs from 'node:fs';
import type http from 'node:http';
import { ConfigStore } from './config/store.js';
import type { Target } from './config/schema.js';
import { ActiveConfiguration } from './ctrlx/active-configuration.js';
import { Authenticator, type AuthOptions } from './ctrlx/auth.js';
import { createGuard } from './web/access.js';
import { packageVersion } from './ctrlx/paths.js';
import { silentLogger, type Logger } from './log.js';
import type { RelayOptions } from './relay/relay-server.js';
import { Supervisor } from './supervisor/supervisor.js';
import { createWebApp, type AppStatus } from './web/app.js';
import { CsrfTokens } from './web/security.js';
import { createServer, listen, type ListenAddress } from './web/server.js';

export interface AppOptions {
  listen: ListenAddress;
  /** The solutions root (`$SNAP_COMMON/solutions` on the device). */
  solutionsDir: string;
  /** Private app data (never archived by ctrlX). */
  appDataDir: string;
  /** The target used while none is configured (the built-in demo server). */
  fallbackTarget?: Target;
  relay?: RelayOptions;
  /** Milliseconds between polls of config.json. Default 1000. */
  pollInterval?: number;
  /** Milliseconds the "Test connection" probe waits. Default 3000. */
  probeTimeout?: number;
  /** Extra origins allowed to open the relay WebSocket. */
  allowedOrigins?: readonly string[];
  /**
   * ctrlX token checks (identity manager URL, cache), or `false` (default) for none. The CLI
   * decides: on the device always on; off it, off only when bound to loopback.
   */
  auth?: AuthOptions | false;
  logger?: Logger;
}

export interface RunningApp {
  /** `127.0.0.1:6080` or the socket path. */
  address: string;
  server: http.Server;
  store: ConfigStore;
  supervisor: Supervisor;
  status(): AppStatus;
  /** Stops accepting, closes sessions with 1001, removes the socket. */
  stop(): Promise<void>;
}

export async function startApp(options: AppOptions): Promise<RunningApp> {
  const log = options.logger ?? silentLogger;
  const startedAt = new Date().toISOString();
  const version = packageVersion();

  const store = new ConfigStore({
    solutionsDir: options.solutionsDir,
    logger: log.child('config'),
    ...(options.pollInterval ? { pollInterval: options.pollInterval } : {}),
  });
  const supervisor = new Supervisor({
    logger: log.child('relay'),
    ...(options.relay ? { relay: options.relay } : {}),
    ...(options.fallbackTarget ? { fallbackTarget: options.fallbackTarget } : {}),
  });
  const activeConfiguration = new ActiveConfiguration({ store, logger: log.child('solutions') });

  await store.start();
  supervisor.start(store.config);
  store.on('change', (config) => supervisor.apply(config));
  store.on('status', (s) => {
    if (s.state === 'unmounted') log.warn('waiting for the active configuration folder', { dir: store.activeDir });
  });
  if (store.status().state === 'unmounted') {
    log.warn('the active configuration is not available yet; starting with no targets', { dir: store.activeDir });
  }

  const status = (): AppStatus => ({
    version,
    startedAt,
    config: { ...store.status(), loading: activeConfiguration.loading },
    relay: supervisor.status(),
  });
  const guard = createGuard(options.auth ? new Authenticator({ ...options.auth, logger: log.child('auth') }) : null);
  const app = createWebApp({
    guard,
    store,
    supervisor,
    activeConfiguration,
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
  });
  let address: string;
  try {
    address = await listen(server, options.listen);
  } catch (err) {
    store.stop();
    await supervisor.stop();
    throw err;
  }
  log.info('listening', { address, solutions: options.solutionsDir, version });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      server.close();
      store.stop();
      await supervisor.stop();
      server.closeAllConnections();
      if ('socket' in options.listen) fs.rmSync(options.listen.socket, { force: true });
    })());

  return { address, server, store, supervisor, status, stop };
}
