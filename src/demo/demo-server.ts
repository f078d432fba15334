/**
 * @module
 * The built-in demo VNC server: RFB 3.3/3.7/3.8 with no authentication or VNC Authentication, a
 * shared animated test screen (see {@link DemoScene}) and raw-encoded updates. It gives a new user
 * a working screen without a real VNC server, and the tests a well-behaved or deliberately broken
 * server (silent, garbage, slow, refusing) to point the relay at.
 *
 * @example
 * const demo = await startDemoServer({ host: '127.0.0.1', port: 5900 });
 * // … viewers connect to 127.0.0.1:5900 …
 * await demo.close();
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { silentLogger, type Logger } from '../log.js';
import { formatHostPort } from '../relay/address.js';
import { RFB_VERSIONS, type RfbVersion } from '../rfb/protocol.js';
import {
  DemoSession,
  type DemoGreeting,
  type SessionConfig,
  type SessionEnd,
  type SessionHost,
} from './demo-session.js';
import { DemoScene, MIN_HEIGHT, MIN_WIDTH } from './scene.js';

export { GARBAGE_BANNER, type DemoGreeting, type SessionEnd } from './demo-session.js';

export interface DemoServerOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** TCP port; 0 picks a free one (see {@link DemoServer.port}). Default 5900. */
  port?: number;
  /** Highest RFB version offered; clients may answer with an older one. Default `3.8`. */
  version?: RfbVersion;
  /** Require VNC Authentication with this password (only its first 8 characters count). Default: none. */
  password?: string;
  /** Screen width in pixels, 480 to 4096. Default 1024. */
  width?: number;
  /** Screen height in pixels, 400 to 4096. Default 640. */
  height?: number;
  /** Desktop name sent in ServerInit. Default `ctrlx-novnc demo`. */
  name?: string;
  /** Animation frames per second while a viewer is connected, 0 to 30; 0 = a still picture. Default 4. */
  fps?: number;
  /**
   * Test doubles: `silent` accepts and never sends a byte, `garbage` sends {@link GARBAGE_BANNER}
   * instead of a ProtocolVersion, `slow` sends every handshake byte `slowDelay` ms apart. Default `normal`.
   */
  greeting?: DemoGreeting;
  /** Milliseconds between handshake bytes with `greeting: 'slow'`. Default 50. */
  slowDelay?: number;
  /** Refuse every connection at the security step with this reason. Default: accept. */
  refuse?: string;
  /** Longest ClientCutText accepted, in bytes; longer closes the connection. Default 1 MiB. */
  maxCutText?: number;
  /**
   * Milliseconds a client gets to finish the handshake (a viewer may be prompting for the password);
   * 0 = no limit. Default 60000.
   */
  handshakeTimeout?: number;
  /** Clock for the time shown and the animation. Default `() => new Date()`. */
  now?: () => Date;
  logger?: Logger;
}

/** Information about a connection, as passed to the `connect` and `ready` events. */
export interface DemoClientInfo {
  id: number;
  peer: string;
  /** Agreed version (`ready` only). */
  version?: RfbVersion;
  /** Security used (`ready` only). */
  security?: 'none' | 'vnc-auth';
}

export interface DemoServerEvents {
  /** A TCP connection was accepted. */
  connect: [DemoClientInfo];
  /** A client finished the handshake (ServerInit sent). */
  ready: [DemoClientInfo];
  /** A connection closed. */
  disconnect: [SessionEnd];
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 5900,
  version: '3.8' as RfbVersion,
  width: 1024,
  height: 640,
  name: 'ctrlx-novnc demo',
  fps: 4,
  greeting: 'normal' as DemoGreeting,
  slowDelay: 50,
  maxCutText: 1024 * 1024,
  handshakeTimeout: 60_000,
};

const GREETINGS: readonly DemoGreeting[] = ['normal', 'silent', 'garbage', 'slow'];
const MAX_SIZE = 4096;
const MAX_FPS = 30;
/** Desktop names and refusal reasons are sent with a U32 length; keep them reasonable. */
const MAX_TEXT = 1024;

type Resolved = typeof DEFAULTS & Pick<DemoServerOptions, 'password' | 'refuse' | 'now' | 'logger'>;

/** Fills defaults and checks every option, throwing a TypeError or RangeError naming it. */
function resolveOptions(options: DemoServerOptions): Resolved {
  const o: Resolved = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  const int = (key: keyof typeof DEFAULTS, min: number, max: number): void => {
    const v = o[key];
    if (!(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
      throw new RangeError(`demo server option ${key} must be an integer from ${min} to ${max}, got ${String(v)}`);
    }
  };
  int('port', 0, 65535);
  int('width', MIN_WIDTH, MAX_SIZE);
  int('height', MIN_HEIGHT, MAX_SIZE);
  int('maxCutText', 0, 64 * 1024 * 1024);
  if (!(Number.isFinite(o.fps) && o.fps >= 0 && o.fps <= MAX_FPS)) {
    throw new RangeError(`demo server option fps must be from 0 to ${MAX_FPS}, got ${String(o.fps)}`);
  }
  for (const key of ['slowDelay', 'handshakeTimeout'] as const) {
    if (!(Number.isFinite(o[key]) && o[key] >= 0)) {
      throw new RangeError(`demo server option ${key} must be 0 or more milliseconds`);
    }
  }
  if (!RFB_VERSIONS.includes(o.version)) {
    throw new TypeError(
      `demo server option version must be one of ${RFB_VERSIONS.join(', ')}, got ${String(o.version)}`,
    );
  }
  if (!GREETINGS.includes(o.greeting)) {
    throw new TypeError(
      `demo server option greeting must be one of ${GREETINGS.join(', ')}, got ${String(o.greeting)}`,
    );
  }
  if (typeof o.host !== 'string' || o.host === '') {
    throw new TypeError('demo server option host must be a host name or address');
  }
  if (typeof o.name !== 'string' || Buffer.byteLength(o.name) > MAX_TEXT) {
    throw new TypeError(`demo server option name must be a string of at most ${MAX_TEXT} bytes`);
  }
  if (o.password !== undefined && (typeof o.password !== 'string' || o.password === '')) {
    throw new TypeError('demo server option password must be a non-empty string (leave it out for no authentication)');
  }
  if (o.refuse !== undefined && (typeof o.refuse !== 'string' || Buffer.byteLength(o.refuse) > MAX_TEXT)) {
    throw new TypeError(`demo server option refuse must be a reason of at most ${MAX_TEXT} bytes`);
  }
  return o;
}

/** A running demo server; see {@link startDemoServer}. */
export class DemoServer extends EventEmitter<DemoServerEvents> {
  readonly host: string;
  readonly port: number;
  /** The shared screen, for tests that want to know what should be on it. */
  readonly scene: DemoScene;
  private readonly server: net.Server;
  private readonly sessions = new Set<DemoSession>();
  private readonly fps: number;
  private readonly log: Logger;
  private readonly sessionHost: SessionHost;
  private readonly statusPrefix: string;
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  /** @private Use {@link startDemoServer}. */
  constructor(server: net.Server, scene: DemoScene, config: SessionConfig, fps: number, log: Logger) {
    super();
    this.server = server;
    this.scene = scene;
    this.fps = fps;
    this.log = log;
    const address = server.address() as net.AddressInfo;
    this.host = address.address;
    this.port = address.port;
    this.statusPrefix = `${config.name} - ${scene.fb.width}x${scene.fb.height} - RFB ${config.version}${
      config.password === undefined ? '' : ' - VNC password'
    }`;
    this.sessionHost = {
      scene,
      config,
      log,
      ready: (session) => this.onReady(session),
      closed: (session, end) => this.onClosed(session, end),
    };
    scene.onDirty = (rect) => {
      for (const s of this.sessions) s.markDirty(rect);
    };
    this.updateStatus();
    let nextId = 1;
    server.on('connection', (socket) => {
      const peer = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
      const session = new DemoSession(nextId++, socket, peer, this.sessionHost);
      this.sessions.add(session);
      this.log.info('demo client connected', { id: session.id, peer });
      this.emit('connect', { id: session.id, peer });
    });
    server.on('error', (err) => this.log.error('demo server error', { error: err.message }));
  }

  /** Open TCP connections, in any phase. */
  get clients(): number {
    return this.sessions.size;
  }

  /** True while the animation timer runs (only with a viewer connected and `fps` > 0). */
  get animating(): boolean {
    return this.timer !== undefined;
  }

  /** Stops listening, drops every client and the animation. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.stopAnimation();
      this.server.close(() => resolve());
      for (const s of this.sessions) s.destroy();
    });
    return this.closing;
  }

  private readyCount(): number {
    let n = 0;
    for (const s of this.sessions) if (s.isReady) n++;
    return n;
  }

  private onReady(session: DemoSession): void {
    this.log.info('demo client ready', { id: session.id, version: session.version, security: session.security });
    // Bring the clock and block up to date before this client's first update.
    this.scene.tick();
    this.updateStatus();
    if (this.fps > 0 && !this.timer) {
      this.timer = setInterval(() => this.scene.tick(), 1000 / this.fps);
    }
    this.emit('ready', { id: session.id, peer: session.peer, version: session.version!, security: session.security! });
  }

  private onClosed(session: DemoSession, end: SessionEnd): void {
    this.sessions.delete(session);
    this.log.info('demo client closed', { ...end });
    // No viewer, no drawing: the animation stops with the last client.
    if (this.readyCount() === 0) this.stopAnimation();
    if (!this.closing) this.updateStatus();
    this.emit('disconnect', end);
  }

  private stopAnimation(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private updateStatus(): void {
    const n = this.readyCount();
    this.scene.setStatus(`${this.statusPrefix} - ${n} viewer${n === 1 ? '' : 's'}`);
  }
}

/**
 * Starts the demo VNC server and resolves once it listens.
 * @throws {TypeError | RangeError} for an invalid option (before listening).
 * @throws {Error} `demo server cannot listen on HOST:PORT: why` when the address cannot be bound.
 */
export async function startDemoServer(options: DemoServerOptions = {}): Promise<DemoServer> {
  const o = resolveOptions(options);
  const log = (o.logger ?? silentLogger).child('demo');
  const scene = new DemoScene({ width: o.width, height: o.height, ...(o.now ? { now: o.now } : {}) });
  const config: SessionConfig = {
    version: o.version,
    password: o.password,
    name: o.name,
    greeting: o.greeting,
    slowDelay: o.slowDelay,
    refuse: o.refuse,
    maxCutText: o.maxCutText,
    handshakeTimeout: o.handshakeTimeout,
  };
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = formatHostPort(o.host, o.port);
      const why =
        err.code === 'EADDRINUSE'
          ? 'the address is already in use'
          : err.code === 'EACCES'
            ? 'permission denied'
            : err.message;
      reject(new Error(`demo server cannot listen on ${where}: ${why}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const demo = new DemoServer(server, scene, config, o.fps, log);
  log.info('demo VNC server listening', {
    address: formatHostPort(demo.host, demo.port),
    version: o.version,
    auth: o.password === undefined ? 'none' : 'vnc',
    size: `${o.width}x${o.height}`,
    greeting: o.greeting,
  });
  return demo;
}
