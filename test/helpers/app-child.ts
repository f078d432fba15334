/**
 * @module
 * The real app as a child process (`ctrlx-novnc serve` over a temporary data root, optionally
 * behind a wrapper such as `unshare`, see namespace.ts) for the fault and soak tests; viewers that
 * check what they receive; VNC-looking targets that misbehave on purpose; and the leak checks
 * (no relay session open, the child's file descriptors back to where they were).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { WebSocket } from 'ws';
import { RELAY, client, configPaths, makeTempDir, removeDir, writeConfigFile } from './app.js';
import { fdCount, fdKinds } from './proc.js';
import { childEnv, spawnServe, type Exit, type ServeProcess, type SpawnCliOptions } from './cli.js';
import type { FrameVerifier } from './stream.js';
import { startTarget, type TcpTarget } from './targets.js';
import { settle, waitFor } from './wait.js';
import type { CloseEvent } from './ws-client.js';
import type { Config } from '../../src/config/schema.js';

/** The RFB ProtocolVersion greeting every fake VNC target here sends first. */
export const GREETING = 'RFB 003.008\n';

// ---- the app as a child process --------------------------------------------------------------

export interface AppChild {
  p: ServeProcess;
  pid: number;
  port: number;
  /** The temporary data root (`--data`). */
  root: string;
  /** `<root>/solutions` and the app's files under it, as paths in the app's mount namespace. */
  solutionsDir: string;
  dir: string;
  file: string;
  http: ReturnType<typeof client>;
  /** `ws://127.0.0.1:<port>/ctrlx-novnc/websockify?target=<id>` */
  relayUrl(targetId: string): string;
  /** SIGKILLs the app if it still runs and removes the data root. */
  cleanup(): Promise<void>;
}

export interface AppChildOptions extends Omit<SpawnCliOptions, 'env'> {
  /** config.json before start, written on the host (leave out when a wrapper provides the folder). */
  initial?: Config | string;
  /**
   * Extra environment for the child. A wrapper script also finds the data root in `$FAULT_ROOT`
   * and the solutions folder in `$FAULT_SOLUTIONS`.
   */
  env?: NodeJS.ProcessEnv;
  /** More `serve` flags (e.g. `--max-sessions 64`). */
  args?: string[];
  /** Called with the data root before the app starts (prepare folders, seed files). */
  prepare?: (root: string) => void;
}

/** Starts `ctrlx-novnc serve --listen 127.0.0.1:0 --data <fresh root>`. */
export async function startAppChild(options: AppChildOptions = {}): Promise<AppChild> {
  const root = await makeTempDir('fault');
  const solutionsDir = path.join(root, 'solutions');
  const { dir, file } = configPaths(solutionsDir);
  fs.mkdirSync(solutionsDir, { recursive: true });
  if (options.initial !== undefined) writeConfigFile(file, options.initial);
  options.prepare?.(root);
  let p: ServeProcess;
  try {
    const env = childEnv({ FAULT_ROOT: root, FAULT_SOLUTIONS: solutionsDir, ...options.env });
    p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, ...(options.args ?? [])], { ...options, env });
  } catch (err) {
    await removeDir(root);
    throw err;
  }
  return {
    p,
    pid: p.pid,
    port: p.port!,
    root,
    solutionsDir,
    dir,
    file,
    http: client(p.port!),
    relayUrl: (id) => `ws://127.0.0.1:${p.port}${RELAY}?target=${encodeURIComponent(id)}`,
    cleanup: async () => {
      await p.stop('SIGKILL');
      await removeDir(root);
    },
  };
}

/** Stops the app with SIGTERM and asserts a clean exit (code 0) within `ms`. */
export async function stopCleanly(app: AppChild, ms = 5000): Promise<{ exit: Exit; ms: number }> {
  const started = Date.now();
  let exit: Exit | undefined;
  void app.p.exited.then((e) => (exit = e));
  app.p.child.kill('SIGTERM');
  await waitFor(`the app to exit within ${ms} ms of SIGTERM`, () => exit !== undefined, { timeoutMs: ms });
  assert.deepEqual(exit, { code: 0, signal: null }, app.p.stderr.join('\n'));
  return { exit: exit!, ms: Date.now() - started };
}

// ---- leaks -----------------------------------------------------------------------------------

/** The child's descriptor count once it stopped moving (after start-up and a warm-up). */
export function fdBaseline(pid: number): Promise<number> {
  return settle(() => fdCount(pid), { intervalMs: 100, stable: 5 });
}

/** Waits until the child holds no more descriptors than `baseline`; fails naming what is open. */
export async function assertFdsBackTo(pid: number, baseline: number, giveUpMs = 15_000): Promise<void> {
  try {
    await waitFor(`descriptors back to ${baseline}`, () => fdCount(pid) <= baseline, { intervalMs: 100, timeoutMs: giveUpMs });
  } catch {
    assert.fail(`the app holds ${fdCount(pid)} descriptors, ${baseline} before: ${JSON.stringify(fdKinds(pid))}`);
  }
}

/** Waits until the app reports no open relay session. */
export async function assertNoSessions(app: AppChild, giveUpMs = 15_000): Promise<void> {
  let open = -1;
  await waitFor(
    'sessionsOpen 0',
    async () => {
      open = (await app.http.status()).relay.totals.sessionsOpen;
      return open === 0;
    },
    { intervalMs: 100, timeoutMs: giveUpMs },
  ).catch(() => assert.fail(`sessionsOpen is ${open}, not 0`));
}

// ---- viewers ---------------------------------------------------------------------------------

export interface ViewerOptions {
  protocols?: string[];
  /** Keep every byte received (small sessions only). Default false. */
  keep?: boolean;
  /** Gets every byte after the 12-byte greeting. */
  verifier?: FrameVerifier;
  /** Answer pings (default true, as browsers do). */
  autoPong?: boolean;
}

export interface Viewer {
  ws: WebSocket;
  /** Bytes received so far, greeting included. */
  readonly received: number;
  /** Everything received, when `keep` was set. */
  data(): Buffer;
  /** Resolves with the first 12 bytes (the target's greeting). */
  greeting: Promise<string>;
  /** Resolves at the close, with when it came (ms since the epoch). */
  closed: Promise<CloseEvent & { at: number }>;
}

/** Opens a viewer (a WebSocket through the app's relay) and resolves once it is open. */
export function openViewer(url: string, options: ViewerOptions = {}): Promise<Viewer> {
  const { protocols = ['binary'], keep = false, verifier, autoPong = true } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, autoPong });
    const chunks: Buffer[] = [];
    let received = 0;
    let head = Buffer.alloc(0);
    let greeted: (s: string) => void = () => {};
    const greeting = new Promise<string>((res) => (greeted = res));
    ws.on('message', (data: Buffer) => {
      received += data.length;
      if (keep) chunks.push(data);
      if (head.length < GREETING.length) {
        head = Buffer.concat([head, data]);
        if (head.length < GREETING.length) return;
        greeted(head.subarray(0, GREETING.length).toString('latin1'));
        data = head.subarray(GREETING.length);
      }
      if (verifier && data.length) verifier.push(data);
    });
    const closed = new Promise<CloseEvent & { at: number }>((res) =>
      ws.once('close', (code: number, reason: Buffer) => res({ code, reason: reason.toString(), at: Date.now() })),
    );
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve({
        ws,
        get received() {
          return received;
        },
        data: () => Buffer.concat(chunks),
        greeting,
        closed,
      });
    });
    ws.once('error', reject);
    // A refused upgrade: fail with what the app said, not just the status.
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => reject(new Error(`upgrade refused with ${res.statusCode}: ${body.trim()}`)));
      ws.removeListener('error', reject);
      ws.on('error', () => {});
    });
  });
}

// ---- targets that misbehave ------------------------------------------------------------------

export interface CountingConnection {
  socket: net.Socket;
  /** Bytes received from the relay. */
  readonly bytesIn: number;
  /** Resolves when the relay's side of the connection is gone. */
  closed: Promise<void>;
}

/**
 * A target that accepts and reads but never writes (`greet`: after sending the RFB greeting):
 * a VNC server hung mid-session, or a service that is not VNC at all.
 */
export function startSilent(greet: boolean): Promise<TcpTarget<CountingConnection>> {
  return startTarget((socket) => {
    let bytesIn = 0;
    if (greet) socket.write(GREETING);
    socket.on('data', (c: Buffer) => (bytesIn += c.length));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return {
      socket,
      closed,
      get bytesIn() {
        return bytesIn;
      },
    };
  });
}

/** A VNC-looking echo target: the greeting, then every byte back. */
export function startVncEcho(): Promise<TcpTarget<net.Socket>> {
  return startTarget((socket) => {
    socket.write(GREETING);
    socket.pipe(socket);
    return socket;
  });
}
