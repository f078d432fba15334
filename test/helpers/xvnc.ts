/**
 * @module
 * A real VNC server for end-to-end tests: TigerVNC `Xvnc` on a free display and a free loopback
 * port, no authentication or VNC Authentication with a password file made by TigerVNC's own
 * `vncpasswd`, with a known background colour (`xsetroot -solid`), plus X clients on
 * that display (`xterm`, `xdotool`). Every process runs in its own process group and is killed with
 * its group on `stop()` and, as a last resort, when the test process exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './targets.js';
import { sleep, waitFor } from './wait.js';

export const XVNC = '/usr/bin/Xvnc';

/** Process groups still alive; killed synchronously if the test process exits without cleaning up. */
const live = new Set<number>();
process.on('exit', () => {
  for (const pid of live) killGroup(pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** A child in its own process group, tracked for cleanup, with its output kept (last 64 KiB). */
export interface Child {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far. */
  output(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** Signals the whole process group (default SIGTERM), SIGKILL after `graceMs`; resolves on exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const KEEP = 64 * 1024;

export function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  const keep = (chunk: Buffer, toStdout: boolean): void => {
    const s = chunk.toString('utf8');
    out = (out + s).slice(-KEEP);
    if (toStdout) stdout = (stdout + s).slice(-KEEP);
  };
  child.stdout!.on('data', (c: Buffer) => keep(c, true));
  child.stderr!.on('data', (c: Buffer) => keep(c, false));
  let running = child.pid !== undefined;
  const pid = child.pid ?? -1;
  if (running) live.add(pid);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null): void => {
      running = false;
      // The group may still hold children (xterm's shell): end them too.
      killGroup(pid, 'SIGKILL');
      live.delete(pid);
      resolve({ code, signal });
    };
    child.once('exit', done);
    child.once('error', (err) => {
      out += `\nspawn error: ${err.message}`;
      done(null, null);
    });
  });
  return {
    child,
    pid,
    output: () => out,
    stdout: () => stdout,
    exited,
    get running() {
      return running;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000) {
      if (!running) return;
      killGroup(pid, signal);
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs `command` to its end; rejects with its output on a non-zero exit. */
export async function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const c = spawnGroup(command, args, env);
  const { code, signal } = await c.exited;
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}: ${c.output().trim()}`);
  return c.stdout();
}

/** True if `port` can be bound on 127.0.0.1 now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function displayInUse(n: number): boolean {
  return fs.existsSync(`/tmp/.X11-unix/X${n}`) || fs.existsSync(`/tmp/.X${n}-lock`);
}

/** Resolves with the first 12 bytes a server at `port` sends, or null if it cannot be reached. */
function greeting(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    const done = (v: string | null): void => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(2000, () => done(null));
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 12) done(got.subarray(0, 12).toString('latin1'));
    });
    socket.on('error', () => done(null));
    socket.on('end', () => done(null));
  });
}

export interface XvncOptions {
  /** `WIDTHxHEIGHT`. Default 800x600. */
  geometry?: string;
  /** Background colour `#rrggbb` set with xsetroot once the server answers. */
  background?: string;
  /** Desktop name sent to viewers. Default `e2e-:N`. */
  desktop?: string;
  /** Use this RFB port (e.g. to bring a server back where one was). Default: a free one. */
  port?: number;
  /** Require VNC Authentication with this password (`-SecurityTypes VncAuth -PasswordFile`). */
  password?: string;
}

/** Writes a TigerVNC password file with `vncpasswd -f` (the password on stdin), mode 0600. */
function passwordFile(password: string): { file: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-xvnc-'));
  const file = path.join(dir, 'passwd');
  fs.writeFileSync(file, execFileSync('vncpasswd', ['-f'], { input: `${password}\n` }), { mode: 0o600 });
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface Xvnc {
  display: number;
  port: number;
  width: number;
  height: number;
  desktop: string;
  /** The environment for X clients on this display. */
  env: NodeJS.ProcessEnv;
  server: Child;
  readonly running: boolean;
  setBackground(colour: string): Promise<void>;
  /** Starts an X client on this display (stopped with the server). */
  client(command: string, args: string[]): Child;
  /** Runs `xdotool args…` on this display and returns its stdout, trimmed. */
  xdotool(...args: string[]): Promise<string>;
  /** The pointer position on the remote screen. */
  pointer(): Promise<{ x: number; y: number }>;
  /** Stops the clients and the server (SIGTERM to each process group, SIGKILL if it hangs). */
  stop(): Promise<void>;
}

/** Starts Xvnc on a free display and port and waits until it answers `RFB 003.008\n`. */
export async function startXvnc(options: XvncOptions = {}): Promise<Xvnc> {
  const geometry = options.geometry ?? '800x600';
  const [width, height] = geometry.split('x').map(Number) as [number, number];
  const secret = options.password === undefined ? undefined : passwordFile(options.password);
  const security = secret ? ['-SecurityTypes', 'VncAuth', '-PasswordFile', secret.file] : ['-SecurityTypes', 'None'];
  try {
    return await launch(options, geometry, width, height, security, () => secret?.remove());
  } catch (err) {
    secret?.remove();
    throw err;
  }
}

async function launch(
  options: XvncOptions,
  geometry: string,
  width: number,
  height: number,
  security: string[],
  cleanup: () => void,
): Promise<Xvnc> {
  let lastError = '';
  for (let attempt = 0; attempt < 8; attempt++) {
    let display = 20 + Math.floor(Math.random() * 400);
    while (displayInUse(display)) display++;
    const port = options.port ?? (await freePort());
    if (options.port !== undefined) {
      // The old server on this port may take a moment to let go of it.
      await waitFor(`port ${port} to be free`, () => portIsFree(port), { timeoutMs: 10_000, intervalMs: 50 });
    }
    const desktop = options.desktop ?? `e2e-:${display}`;
    const server = spawnGroup(XVNC, [
      `:${display}`,
      '-rfbport', String(port),
      ...security,
      '-geometry', geometry,
      '-depth', '24',
      '-localhost', 'yes',
      '-nolisten', 'tcp',
      '-desktop', desktop,
      '-AlwaysShared',
    ]);
    // Wait for the RFB greeting, or for the server to give up (display or port taken: try another).
    const deadline = Date.now() + 15_000;
    let banner: string | null = null;
    while (server.running && Date.now() < deadline) {
      banner = await greeting(port);
      if (banner !== null) break;
      await sleep(50);
    }
    if (banner === null || !server.running) {
      lastError = `Xvnc :${display} on port ${port} did not start: ${server.output().slice(-2000)}`;
      await server.stop('SIGKILL');
      removeStaleFiles(display, server.pid);
      continue;
    }
    if (banner !== 'RFB 003.008\n') {
      await server.stop('SIGKILL');
      throw new Error(`port ${port} answered ${JSON.stringify(banner)}, not Xvnc`);
    }
    const xvnc = makeXvnc(server, display, port, width, height, desktop, cleanup);
    if (options.background) await xvnc.setBackground(options.background);
    return xvnc;
  }
  throw new Error(lastError);
}

/** A killed server leaves its socket and lock file; remove them if they are its own. */
function removeStaleFiles(display: number, pid: number): void {
  try {
    const owner = Number(fs.readFileSync(`/tmp/.X${display}-lock`, 'utf8').trim());
    if (owner !== pid) return;
  } catch {
    return;
  }
  fs.rmSync(`/tmp/.X${display}-lock`, { force: true });
  fs.rmSync(`/tmp/.X11-unix/X${display}`, { force: true });
}

function makeXvnc(
  server: Child,
  display: number,
  port: number,
  width: number,
  height: number,
  desktop: string,
  cleanup: () => void,
): Xvnc {
  const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: `:${display}` };
  delete env.XAUTHORITY;
  const clients = new Set<Child>();
  const xdotool = async (...args: string[]): Promise<string> => (await run('xdotool', args, env)).trim();
  return {
    display,
    port,
    width,
    height,
    desktop,
    env,
    server,
    get running() {
      return server.running;
    },
    async setBackground(colour: string) {
      // The X socket is up once RFB answers, but be patient with a busy machine.
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await run('xsetroot', ['-solid', colour], env);
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await sleep(100);
        }
      }
    },
    client(command: string, args: string[]) {
      const c = spawnGroup(command, args, env);
      clients.add(c);
      void c.exited.then(() => clients.delete(c));
      return c;
    },
    xdotool,
    async pointer() {
      const out = await xdotool('getmouselocation', '--shell');
      const x = /^X=(\d+)$/m.exec(out);
      const y = /^Y=(\d+)$/m.exec(out);
      if (!x || !y) throw new Error(`unexpected xdotool output: ${out}`);
      return { x: Number(x[1]), y: Number(y[1]) };
    },
    async stop() {
      await Promise.all([...clients].map((c) => c.stop()));
      await server.stop();
      removeStaleFiles(display, server.pid);
      cleanup();
    },
  };
}
