/**
 * @module
 * Helpers for the snap tests: the repository's paths, the stage script, a fake ctrlX identity
 * manager with ctrlX-shaped tokens, HTTP and WebSocket over the app's unix socket, a streaming
 * RFB viewer, an RSS sampler, and running the daemon of an unpacked snap the way snapd would.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';

/** The repository: build/test/snap → ../../.. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The official ctrlX schemas, copied into the repository (MIT, see its LICENSE). */
export const SCHEMAS = path.join(ROOT, 'test', 'snap', 'schemas');
export const MANIFEST_PATH = path.join(ROOT, 'configs', 'package-assets', 'ctrlx-novnc.package-manifest.json');

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

// ---- the stage script (plain .mjs, loaded at run time) ------------------------------------

export interface StageModule {
  buildSnaps(archs: string[], outDir: string, options?: { keep?: boolean }): { arch: string; file: string; bytes: number }[];
  snapYaml(arch: string, snapcraft?: any): string;
  readSnapcraft(): any;
  nodeVersion(): string;
  checkMetadata(snapcraft?: any, pkg?: any): { version: string; author: string; url: string; warning: string | undefined };
  nodePin(file?: string): NodePin;
  integrityOf(file: string): string;
  verifiedNodeTarball(arch: string, pin?: NodePin, cacheDir?: string): string;
}

/** snap/node.json: the bundled Node's version and, per snap architecture, its npm tarball's integrity. */
export interface NodePin {
  version: string;
  packages: Record<string, { name: string; integrity: string }>;
}

export async function stageModule(): Promise<StageModule> {
  return (await import(pathToFileURL(path.join(ROOT, 'scripts', 'stage.mjs')).href)) as StageModule;
}

/** True when `cmd --version` (or `cmd -version`) runs. */
export function hasCommand(cmd: string, arg = '--version'): boolean {
  const r = spawnSync(cmd, [arg], { stdio: 'ignore' });
  return !r.error;
}

// ---- fake identity manager: the shared one ------------------------------------------------

export { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';

export type Endpoint = { socketPath: string } | { port: number };

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(
  endpoint: Endpoint,
  method: string,
  urlPath: string,
  options: { token?: string; json?: unknown; timeout?: number } = {},
): Promise<Reply> {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...('socketPath' in endpoint ? { socketPath: endpoint.socketPath } : { host: '127.0.0.1', port: endpoint.port }),
        method,
        path: urlPath,
        headers: {
          Host: 'ctrlx.example',
          ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}),
          ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}),
        },
        timeout: options.timeout ?? 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens the relay WebSocket through the unix socket, the token in a subprotocol (as the viewer does). */
export function openRelay(socketPath: string, token: string, target?: string): Promise<WebSocket> {
  const query = target ? `?target=${encodeURIComponent(target)}` : '';
  const ws = new WebSocket(`ws+unix://${socketPath}:/ctrlx-novnc/websockify${query}`, ['binary', `ctrlx-novnc.bearer.${token}`], {
    perMessageDeflate: false,
    headers: { Host: 'ctrlx.example' },
  });
  ws.binaryType = 'nodebuffer';
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.removeListener('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => reject(new Error(`upgrade refused: HTTP ${res.statusCode} ${text}`)));
    });
  });
}

/** Reads exactly `n` bytes of binary messages from `ws`. */
export function readBytes(ws: WebSocket, n: number, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const timer = setTimeout(() => done(new Error(`timed out after ${have} of ${n} bytes`)), timeoutMs);
    const onMessage = (data: Buffer): void => {
      chunks.push(data);
      have += data.length;
      if (have >= n) done();
    };
    const onClose = (code: number, reason: Buffer): void => done(new Error(`closed ${code} ${reason.toString()} after ${have} bytes`));
    const done = (err?: Error): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

/**
 * A viewer that streams: RFB 3.8 handshake (security None, shared), raw encoding, then
 * framebuffer update requests until stopped, counting bytes and completed updates.
 * - `novnc`: like noVNC — one full update, then an incremental request after each update (the
 *   server answers when its screen changes; the demo animates at 4 fps).
 * - `stress`: one full (non-incremental) update after the other — the heaviest load a viewer can
 *   put on the relay (about 2.6 MB per update at 1024x640, as fast as the relay carries it).
 */
export type ViewerMode = 'novnc' | 'stress';

export class StreamingViewer {
  bytes = 0;
  frames = 0;
  private buffered: Buffer[] = [];
  private have = 0;
  private waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private stopped = false;
  private closed = false;
  readonly done: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly mode: ViewerMode = 'stress',
  ) {
    ws.on('message', (data: Buffer) => {
      this.bytes += data.length;
      this.buffered.push(data);
      this.have += data.length;
      this.pump();
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiting?.reject(new Error('closed'));
    });
    this.done = this.run().catch((err: unknown) => {
      if (!this.stopped) throw err;
    });
  }

  private pump(): void {
    if (!this.waiting || this.have < this.waiting.n) return;
    const all = Buffer.concat(this.buffered);
    const { n, resolve } = this.waiting;
    this.waiting = undefined;
    this.buffered = [all.subarray(n)];
    this.have = all.length - n;
    resolve(all.subarray(0, n));
  }

  private read(n: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('closed'));
    return new Promise((resolve, reject) => {
      this.waiting = { n, resolve, reject };
      this.pump();
    });
  }

  private async run(): Promise<void> {
    const version = (await this.read(12)).toString('latin1');
    if (!version.startsWith('RFB ')) throw new Error(`not RFB: ${JSON.stringify(version)}`);
    this.ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
    const count = (await this.read(1))[0]!;
    const types = [...(await this.read(count))];
    if (!types.includes(1)) throw new Error(`no security type None in ${types.join(',')}`);
    this.ws.send(Buffer.from([1]));
    const result = (await this.read(4)).readUInt32BE(0);
    if (result !== 0) throw new Error(`security result ${result}`);
    this.ws.send(Buffer.from([1])); // ClientInit: shared
    const init = await this.read(24);
    const width = init.readUInt16BE(0);
    const height = init.readUInt16BE(2);
    const bpp = init[4]! / 8;
    await this.read(init.readUInt32BE(20)); // desktop name
    // SetEncodings: raw only.
    this.ws.send(Buffer.from([2, 0, 0, 1, 0, 0, 0, 0]));
    const request = Buffer.alloc(10);
    request[0] = 3;
    request[1] = 0; // full update
    request.writeUInt16BE(width, 6);
    request.writeUInt16BE(height, 8);
    while (!this.stopped) {
      this.ws.send(request);
      if (this.mode === 'novnc') request[1] = 1; // incremental from the second request on
      // Read messages until a FramebufferUpdate is complete (skip bell / cut text / colour maps).
      for (;;) {
        const type = (await this.read(1))[0]!;
        if (type === 0) {
          const rects = (await this.read(3)).readUInt16BE(1);
          for (let i = 0; i < rects; i++) {
            const h = await this.read(12);
            const encoding = h.readInt32BE(8);
            if (encoding === 0) await this.read(h.readUInt16BE(4) * h.readUInt16BE(6) * bpp);
            else if (encoding === 1) await this.read(4); // CopyRect
            else if (encoding !== -223) throw new Error(`unexpected encoding ${encoding}`);
          }
          this.frames++;
          break;
        } else if (type === 2) {
          // Bell: nothing follows
        } else if (type === 3) {
          await this.read(3);
          await this.read((await this.read(4)).readUInt32BE(0));
        } else if (type === 1) {
          const n = (await this.read(5)).readUInt16BE(3);
          await this.read(n * 6);
        } else throw new Error(`unexpected server message ${type}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.ws.close(1000);
    this.waiting?.reject(new Error('stopped'));
    await this.done;
  }
}

// ---- processes -------------------------------------------------------------------------------

export interface Rss {
  /** VmRSS: everything resident, KiB. */
  total: number;
  /** RssAnon: private memory (V8 heap, buffers, malloc), KiB. */
  anon: number;
  /** RssFile: resident pages of mapped files, mostly the Node binary (clean, reclaimable), KiB. */
  file: number;
  /**
   * Pss (/proc/PID/smaps_rollup): each resident page divided by the number of processes mapping
   * it, KiB. Below RSS by the share of bin/node's pages another process of the same binary holds
   * (in the snap test: the demo VNC server, run with the snap's bin/node).
   */
  pss: number;
  /** Pss_File: the mapped-file part of `pss`, KiB. */
  pssFile: number;
}

/** Resident set of `pid` from /proc/PID/status and smaps_rollup (KiB), NaNs when it is gone. */
export function rss(pid: number): Rss {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8') + fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { total: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), pss: field('Pss'), pssFile: field('Pss_File') };
  } catch {
    return { total: NaN, anon: NaN, file: NaN, pss: NaN, pssFile: NaN };
  }
}

export interface Daemon {
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The snapd-style environment of the daemon of an unpacked snap. */
export function snapEnv(snapDir: string, dataDir: string, commonDir: string, arch: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  return {
    ...env,
    SNAP: snapDir,
    SNAP_DATA: dataDir,
    SNAP_COMMON: commonDir,
    SNAP_NAME: 'ctrlx-novnc',
    SNAP_INSTANCE_NAME: 'ctrlx-novnc',
    SNAP_ARCH: arch,
    SNAP_REVISION: 'x1',
    SNAP_VERSION: '',
    HOME: path.join(dataDir, 'home'),
    ...extra,
  };
}

/** Expands `$VAR` / `${VAR}` like snap-exec does in command arguments. */
export function expand(word: string, env: NodeJS.ProcessEnv): string {
  return word.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => env[name] ?? '');
}

/** Spawns `argv` (with an optional interpreter prefix, e.g. qemu) and collects its output. */
export function spawnDaemon(argv: string[], env: NodeJS.ProcessEnv, prefix: string[] = []): Daemon {
  const [cmd, ...args] = [...prefix, ...argv];
  const child = spawn(cmd!, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const collect = (chunk: Buffer): void => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
