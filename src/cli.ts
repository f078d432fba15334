#!/usr/bin/env node
/**
 * @module
 * Command-line entry: parses flags, validates everything before listening (bad input prints
 * `Error: …` and exits 2), starts the chosen command and stops it cleanly on SIGTERM/SIGINT.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Relay } from './relay/relay-server.js';
import { formatHostPort, parseHostPort, type HostPort } from './relay/address.js';
import { createLogger, type Logger } from './log.js';
import { listen, listenError } from './listen.js';
import { AppError, ERR_INVALID_ARGUMENT } from './errors.js';
import { rejectUpgrade } from './relay/upgrade.js';
import { HostAllowList, parseAllowedHosts } from './web/hosts.js';
import { isSameOrigin, parseAllowedOrigins } from './web/security.js';

const USAGE = `Usage: ctrlx-novnc <command> [options]

Commands:
  serve        Run the app: settings page, viewer and relay (the default command)
  relay        Relay WebSocket connections on any path to one VNC server (websockify-style)
  demo-server  Run the built-in demo VNC server (RFB 3.8, no password)
  help         Show this help

serve options (off the device; as a snap it listens on $SNAP_DATA/package-run/ctrlx-novnc/ctrlx-novnc.web.sock):
  --listen HOST:PORT        where to serve pages, API and relay (default 127.0.0.1:6080)
  --data DIR                stands in for the snap's folders: DIR/solutions, DIR/app (default ./data)
  --demo                    start the demo VNC server on loopback and show it while no target is configured
  --auth ctrlx|off          check ctrlX logins (always on the device); off is allowed only explicitly or on loopback
  --idm-url URL             the identity manager's token validity endpoint (env CTRLX_IDM_URL;
                            default https://localhost/identity-manager/api/v2/auth/token/validity)
  --max-sessions N          open viewers allowed in total (default 32)
  --max-sessions-per-target N  open viewers allowed per VNC target (default 16)
  --api-rate N              API requests per minute per client (default 600)
  --change-rate N           saves and other changes (PUT/POST, form posts) per minute per client (default 60)
  --allowed-hosts LIST      host names browsers may use for this server besides loopback names, IP addresses
                            and the --listen host, comma-separated (*.domain for all names under it); others get 421

demo-server options:
  --listen HOST:PORT        where to accept VNC clients (default 127.0.0.1:5900)

relay options:
  --listen HOST:PORT        where to accept WebSocket connections (required; [::1]:PORT for IPv6)
  --target HOST:PORT        the VNC server to connect each session to (required)
  --max-payload BYTES       largest message accepted from a browser (default 65536)
  --connect-timeout SEC     TCP connect timeout to the target (default 5)
  --heartbeat SEC           ping browsers every SEC seconds, drop dead ones; 0 = off (default 20)
  --allowed-hosts LIST      host names browsers may use for this relay besides loopback names, IP addresses
                            and the --listen host, comma-separated (*.domain for all names under it); others get 421
  --allow-origin LIST       pages of these origins may connect too, comma-separated (https://hmi.example),
                            or * for any page; by default only pages of the relay's own origin (others get 403)

Environment: LOG_LEVEL=debug|info|warn|error (default info).
`;

/** Exit code for bad usage, as in BSD sysexits' spirit and easy-novnc: 2. */
const EXIT_USAGE = 2;

function usageError(message: string): AppError {
  return new AppError(ERR_INVALID_ARGUMENT, message, { status: 400 });
}

/** Parses a positive number flag (seconds or bytes). */
function numberFlag(value: string | undefined, name: string, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !allowZero)) {
    throw usageError(`--${name}: "${value}" must be a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return n;
}

/** Parses a whole positive number flag (a count), or undefined when not given. */
function intFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw usageError(`--${name}: "${value}" must be a whole number of at least 1`);
  }
  return n;
}

/** Runs `stop` on the first SIGTERM/SIGINT; a second signal exits at once. */
function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('stopping', { signal });
    // Whatever happens, the process is gone within 5 s of the signal.
    setTimeout(() => {
      log.warn('stop took too long, exiting');
      process.exit(1);
    }, 4500).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('error while stopping', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** `ctrlx-novnc relay`: the relay alone on a TCP port, accepting upgrades on any path. */
async function runRelay(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string' },
      target: { type: 'string' },
      'max-payload': { type: 'string' },
      'connect-timeout': { type: 'string' },
      heartbeat: { type: 'string' },
      'allowed-hosts': { type: 'string' },
      'allow-origin': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.listen) throw usageError('--listen HOST:PORT is required');
  if (!values.target) throw usageError('--target HOST:PORT is required');
  const listenAddr = parseHostPort(values.listen, '--listen', undefined, true);
  const target = parseHostPort(values.target, '--target');
  const hosts = new HostAllowList(listenAddr.host, values['allowed-hosts'] === undefined ? [] : parseAllowedHosts(values['allowed-hosts']));
  const origins = values['allow-origin'] === undefined ? [] : parseAllowedOrigins(values['allow-origin']);
  const log = createLogger().child('relay');
  const relay = new Relay({
    logger: log,
    maxPayload: numberFlag(values['max-payload'], 'max-payload', 64 * 1024),
    connectTimeoutMs: numberFlag(values['connect-timeout'], 'connect-timeout', 5) * 1000,
    heartbeatMs: numberFlag(values.heartbeat, 'heartbeat', 20, true) * 1000,
  });

  const server = http.createServer((req, res) => {
    if (!hosts.admit(req, res)) return;
    res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 426 : 405, {
      'Content-Type': 'text/plain; charset=utf-8',
      Upgrade: 'websocket',
      Connection: 'close',
    });
    res.end('This is a WebSocket-to-TCP relay: connect with a WebSocket client.\n');
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.on('upgrade', (req, socket, head) => {
    if (!hosts.admitUpgrade(req, socket)) return;
    // As serve does: pages of other origins are refused before the upgrade; no Origin (not a browser) passes.
    if (origins !== '*' && !isSameOrigin(req, origins)) {
      socket.on('error', () => socket.destroy());
      rejectUpgrade(socket, 403, 'Cross-origin WebSocket connections are not allowed (see --allow-origin).');
      return;
    }
    relay.handleUpgrade(req, socket, head, target);
  });

  const shown = await listen(server, listenAddr);
  log.info('listening', { listen: shown, target: formatHostPort(target.host, target.port) });
  if (!isLoopback(listenAddr.host)) {
    log.warn('listening on a non-loopback address: anyone who can reach it can open sessions to the target', { listen: shown });
  }
  if (origins === '*') log.warn('--allow-origin *: pages of any web site may connect through this relay');

  onShutdown(log, async () => {
    server.close();
    await relay.close();
  });
}

/** True for 127.0.0.0/8, ::1 and localhost. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Decides the authentication: on the device always ctrlX logins; off it, off by default on
 * loopback, and a non-loopback address needs an explicit `--auth` (never exposed by accident).
 */
function chooseAuth(
  mode: string | undefined,
  idmUrl: string | undefined,
  onDevice: boolean,
  listen: HostPort | { socket: string },
): { validityUrl?: string } | false {
  if (mode !== undefined && mode !== 'ctrlx' && mode !== 'off') throw usageError(`--auth: "${mode}" must be ctrlx or off`);
  if (onDevice && mode === 'off') throw usageError('--auth off is not allowed on the device');
  if (idmUrl !== undefined) {
    try {
      const u = new URL(idmUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw usageError(`--idm-url: "${idmUrl}" is not an http(s) URL`);
    }
  }
  const wanted = mode ?? (onDevice ? 'ctrlx' : undefined);
  if (wanted === 'ctrlx') return idmUrl ? { validityUrl: idmUrl } : {};
  if (wanted === 'off') return false;
  if ('host' in listen && !isLoopback(listen.host)) {
    throw usageError(
      `refusing to serve ${formatHostPort(listen.host, listen.port)} without authentication: ` +
        'use --auth ctrlx (with --idm-url) or, to accept the risk, --auth off',
    );
  }
  return false;
}

/** `ctrlx-novnc serve`: the whole app. */
async function runServe(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string' },
      data: { type: 'string' },
      demo: { type: 'boolean', default: false },
      auth: { type: 'string' },
      'idm-url': { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-sessions-per-target': { type: 'string' },
      'api-rate': { type: 'string' },
      'change-rate': { type: 'string' },
      'allowed-hosts': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const limits = {
    maxSessions: intFlag(values['max-sessions'], 'max-sessions'),
    maxSessionsPerTarget: intFlag(values['max-sessions-per-target'], 'max-sessions-per-target'),
  };
  const apiRate = intFlag(values['api-rate'], 'api-rate');
  const changeRate = intFlag(values['change-rate'], 'change-rate');
  const allowedHosts = values['allowed-hosts'] === undefined ? undefined : parseAllowedHosts(values['allowed-hosts']);
  const rateLimits = {
    ...(apiRate ? { api: { limit: apiRate, windowMs: 60_000 } } : {}),
    ...(changeRate ? { changes: { limit: changeRate, windowMs: 60_000 } } : {}),
  };
  // Loaded here, not at the top: `relay` runs without Express and friends (less memory).
  const { startApp } = await import('./app.js');
  const { runtimePaths } = await import('./ctrlx/paths.js');
  const { HealthReporter } = await import('./ctrlx/health.js');
  const paths = runtimePaths(process.env, values.data);
  if (paths.onDevice && values.listen) throw usageError('--listen is not used on the device (the app listens on its unix socket)');
  if (paths.onDevice && allowedHosts) throw usageError('--allowed-hosts is not used on the device (the ctrlX reverse proxy chooses the names)');
  const listenAddr = paths.socket ? { socket: paths.socket } : parseHostPort(values.listen ?? '127.0.0.1:6080', '--listen', undefined, true);
  const log = createLogger();
  // How often a relay session's login is asked again (default and at most every 5 minutes). Not a
  // flag: only the tests shorten it, through the environment.
  const loginCheck = process.env.CTRLX_NOVNC_LOGIN_CHECK_MS;
  const loginCheckMs = loginCheck === undefined ? undefined : Number(loginCheck);
  if (loginCheckMs !== undefined && !(Number.isInteger(loginCheckMs) && loginCheckMs >= 100 && loginCheckMs <= 300_000)) {
    throw usageError(`CTRLX_NOVNC_LOGIN_CHECK_MS: "${loginCheck}" must be a whole number of milliseconds from 100 to 300000`);
  }
  const auth = chooseAuth(values.auth, values['idm-url'] ?? process.env.CTRLX_IDM_URL, paths.onDevice, listenAddr);
  if (!auth) log.warn('authentication is OFF: anyone who can reach this address can see and operate the VNC screens', { listen: values.listen ?? '127.0.0.1:6080' });
  if (!paths.onDevice) {
    // Off the device the data folder stands in for the solutions mount: make it.
    fs.mkdirSync(path.join(paths.solutionsDir, 'activeConfiguration'), { recursive: true });
  }
  let demo: { port: number; close(): Promise<void> } | undefined;
  let app: { address: string; stop(): Promise<void> } | undefined;
  const started = (async () => {
    if (values.demo) {
      const { startDemoServer } = await import('./demo/demo-server.js');
      demo = await startDemoServer({ host: '127.0.0.1', port: 0, logger: log });
      log.info('demo VNC server started', { listen: `127.0.0.1:${demo.port}` });
    }
    app = await startApp({
      listen: listenAddr,
      solutionsDir: paths.solutionsDir,
      appDataDir: paths.appDataDir,
      logger: log,
      auth,
      limits,
      rateLimits,
      ...(allowedHosts ? { allowedHosts } : {}),
      ...(loginCheckMs ? { relay: { loginCheckMs } } : {}),
      // On the device: the app's health for ctrlX (snapctl set-health); off it nothing is called.
      ...(paths.onDevice ? { health: new HealthReporter({ logger: log.child('health') }) } : {}),
      ...(demo ? { fallbackTarget: { id: 'demo', name: 'ctrlx-novnc demo', host: '127.0.0.1', port: demo.port } } : {}),
    });
  })();
  // Installed before start-up finishes: a signal during start-up still stops cleanly (socket removed).
  onShutdown(log, async () => {
    await started.catch(() => {});
    await app?.stop();
    await demo?.close();
  });
  await started;
  if ('host' in listenAddr && !isLoopback(listenAddr.host)) {
    log.warn('listening on a non-loopback address: reachable from the network', { listen: app?.address });
  }
  if (!paths.onDevice && app) {
    const shown = 'socket' in listenAddr ? listenAddr.socket : app.address;
    log.info(`open http://${shown}/ctrlx-novnc/`);
  }
}

/** `ctrlx-novnc demo-server`: the built-in demo VNC server alone. */
async function runDemoServer(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { listen: { type: 'string' } }, strict: true, allowPositionals: false });
  const addr = parseHostPort(values.listen ?? '127.0.0.1:5900', '--listen', undefined, true);
  const log = createLogger();
  const { startDemoServer } = await import('./demo/demo-server.js');
  let demo: Awaited<ReturnType<typeof startDemoServer>>;
  try {
    demo = await startDemoServer({ host: addr.host, port: addr.port, logger: log });
  } catch (err) {
    const cause = (err as Error).cause as NodeJS.ErrnoException | undefined;
    throw cause?.code ? listenError(cause, formatHostPort(addr.host, addr.port)) : err;
  }
  log.info('listening', { listen: formatHostPort(addr.host, demo.port) });
  onShutdown(log, () => demo.close());
}

/** Entry point: dispatches the command; returns the exit code for failures. */
export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'relay':
      return runRelay(rest);
    case undefined:
      return runServe([]);
    case 'serve':
      return runServe(rest);
    case 'demo-server':
      return runDemoServer(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw usageError(`unknown command "${command}" (see ctrlx-novnc --help)`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const usage = err instanceof AppError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  // One line: Node's parseArgs explains some mistakes over three ("--max-sessions -1").
  const message = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
  process.stderr.write(`Error: ${message}\n`);
  process.exit(usage ? EXIT_USAGE : 1);
});
