/**
 * @module
 * The whole app in-process for HTTP-level tests: a fresh temporary data root, `startApp()` on
 * 127.0.0.1:0, a small HTTP client (TCP or unix socket, any header including `Origin`), WebSocket
 * sessions through the relay path, fake VNC/TCP servers on loopback, and (from wait.ts) the polling
 * helper that waits for an effect up to a deadline instead of asserting on time.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { startApp, type AppOptions, type RunningApp } from '../../src/app.js';
import { packageRoot } from '../../src/ctrlx/paths.js';
import type { AppStatus } from '../../src/web/app.js';
import type { Config } from '../../src/config/schema.js';
import { startTarget } from './targets.js';
import { waitFor } from './wait.js';

// The suite's one wait helper, re-exported so the tests that use this module need one import.
export { sleep, waitFor } from './wait.js';
export { closedPort } from './targets.js';

export const PREFIX = '/ctrlx-novnc';
export const API = `${PREFIX}/api/v1`;
export const RELAY = `${PREFIX}/websockify`;

/**
 * The URL path of a page's built static file (`viewer.js` → `/ctrlx-novnc/static/viewer-<hash>.js`),
 * from the manifest `npm run build` writes (scripts/bundle.mjs) and the server reads.
 */
export function staticPath(page: string): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'dist', 'static', 'manifest.json'), 'utf8')) as { files: Record<string, string> };
  const name = manifest.files[page];
  if (!name) throw new Error(`${page} is not in dist/static/manifest.json`);
  return `${PREFIX}/static/${name}`;
}

// ---- temporary folders ---------------------------------------------------------------------

/** A fresh folder under the OS temp dir; remove it with {@link removeDir}. */
export function makeTempDir(label: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `ctrlx-novnc-${label}-`));
}

export function removeDir(dir: string): Promise<void> {
  return fsp.rm(dir, { recursive: true, force: true });
}

/** Where the app's files live under a solutions root. */
export function configPaths(solutionsDir: string): { activeDir: string; dir: string; file: string } {
  const activeDir = path.join(solutionsDir, 'activeConfiguration');
  const dir = path.join(activeDir, 'ctrlx-novnc');
  return { activeDir, dir, file: path.join(dir, 'config.json') };
}

/** Writes `content` (a config object, stored as the app stores it, or raw text) to `file`. */
export function writeConfigFile(file: string, content: Config | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
}

/**
 * Replaces `file` the way an editor or a WebDAV client might and makes sure the change is
 * visible to stat polling even on file systems with coarse time stamps (the mtime is moved on).
 */
export function editConfigFile(file: string, content: Config | string): void {
  const before = fs.existsSync(file) ? fs.statSync(file).mtimeMs : 0;
  writeConfigFile(file, content);
  const after = fs.statSync(file).mtimeMs;
  if (after <= before) {
    const t = new Date(before + 2000);
    fs.utimesSync(file, t, t);
  }
}

/** A target object as the configuration holds it. */
export function target(id: string, port: number, host = '127.0.0.1', name = id): Config['targets'][number] {
  return { id, name, host, port };
}

/** `t` with control `immediate`: the first viewer (the "local" manager off the device) operates it. */
export function operated(t: Config['targets'][number]): Config['targets'][number] {
  return { ...t, control: 'immediate' };
}

/**
 * The browser's side of an RFB handshake with security None (version, the choice, ClientInit):
 * after it the relay's watch filter reads messages, so a watching session's bytes can be checked.
 */
export const VIEWER_HELLO = Buffer.from('RFB 003.008\n\x01\x01', 'latin1');

/**
 * `tag` inside a message a watching session may send (SetEncodings: its encodings are any 4-byte
 * values; padded with spaces in front to whole encodings), so the echo of it ends with `tag`.
 */
export function watchable(tag: string | Buffer): Buffer {
  const body = Buffer.isBuffer(tag) ? tag : Buffer.from(tag, 'latin1');
  const pad = (4 - (body.length % 4)) % 4;
  const head = Buffer.from([2, 0, 0, 0]);
  head.writeUInt16BE((body.length + pad) / 4, 2);
  return Buffer.concat([head, Buffer.alloc(pad, 0x20), body]);
}

export function config(...targets: Config['targets']): Config {
  return { version: 1, targets };
}

// ---- the app -------------------------------------------------------------------------------

export interface TestApp {
  app: RunningApp;
  /** The temporary data root (removed by {@link TestApp.close}). */
  root: string;
  solutionsDir: string;
  activeDir: string;
  dir: string;
  file: string;
  port: number;
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Stops the app and removes the data root. */
  close(): Promise<void>;
}

export interface TestAppOptions extends Partial<Omit<AppOptions, 'listen' | 'solutionsDir' | 'appDataDir'>> {
  /** Create `activeConfiguration/` before starting (the plug is connected). Default true. */
  mounted?: boolean;
  /** Content of config.json before starting (implies `mounted`). */
  initial?: Config | string;
}

/** Starts the app on 127.0.0.1:0 over a fresh temporary data root. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const { mounted = true, initial, ...rest } = options;
  const root = await makeTempDir('app');
  const solutionsDir = path.join(root, 'solutions');
  fs.mkdirSync(solutionsDir, { recursive: true });
  const paths = configPaths(solutionsDir);
  if (mounted || initial !== undefined) fs.mkdirSync(paths.activeDir, { recursive: true });
  if (initial !== undefined) writeConfigFile(paths.file, initial);
  let app: RunningApp;
  try {
    app = await startApp({
      pollInterval: 50,
      probeTimeout: 1000,
      ...rest,
      listen: { host: '127.0.0.1', port: 0 },
      solutionsDir,
      appDataDir: path.join(root, 'app'),
    });
  } catch (err) {
    await removeDir(root);
    throw err;
  }
  const port = (app.server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    app,
    root,
    solutionsDir,
    ...paths,
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      (closing ??= (async () => {
        await app.stop();
        await removeDir(root);
      })()),
  };
}

// ---- HTTP ----------------------------------------------------------------------------------

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body's bytes as received (not decoded: a `Content-Encoding` stays applied). */
  body: Buffer;
  /** The body parsed as JSON (throws if it is not). */
  json<T = any>(): T;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** Sent as is (string/Buffer) or, for an object, as JSON with `Content-Type: application/json`. */
  body?: unknown;
}

/** Where to send requests: a TCP port on 127.0.0.1 or a unix socket. */
export type Endpoint = number | { socketPath: string };

/** One HTTP request on a fresh connection. */
export function request(endpoint: Endpoint, method: string, urlPath: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const headers: Record<string, string> = { ...options.headers };
  let payload: Buffer | undefined;
  if (options.body !== undefined) {
    if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) payload = Buffer.from(options.body);
    else {
      payload = Buffer.from(JSON.stringify(options.body));
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    }
    headers['Content-Length'] = String(payload.length);
  }
  const where = typeof endpoint === 'number' ? { host: '127.0.0.1', port: endpoint } : { socketPath: endpoint.socketPath };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, method, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          body,
          json: () => JSON.parse(text),
        });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Shorthands bound to one endpoint; `headers` go with every request (e.g. `Authorization`). */
export function client(endpoint: Endpoint, headers: Record<string, string> = {}) {
  const send = (method: string, p: string, o: RequestOptions = {}) => request(endpoint, method, p, { ...o, headers: { ...headers, ...o.headers } });
  return {
    get: (p: string, o?: RequestOptions) => send('GET', p, o),
    head: (p: string, o?: RequestOptions) => send('HEAD', p, o),
    put: (p: string, body?: unknown, o?: RequestOptions) => send('PUT', p, { ...o, body }),
    post: (p: string, body?: unknown, o?: RequestOptions) => send('POST', p, { ...o, body }),
    /** POSTs an urlencoded form built from `fields` (repeated keys allowed). */
    form: (p: string, fields: [string, string][], o?: RequestOptions) =>
      send('POST', p, {
        ...o,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...o?.headers },
        body: new URLSearchParams(fields).toString(),
      }),
    status: async (): Promise<AppStatus> => (await send('GET', `${API}/status`)).json<AppStatus>(),
    /** `GET api/v1/config` as the file holds it: each target's `passwordSet` flag left out. */
    config: async (): Promise<Config> => withoutPasswordFlags((await send('GET', `${API}/config`)).json<Config>()),
  };
}

/** A configuration from the API without the `passwordSet` flag it shows per target. */
export function withoutPasswordFlags(body: Config): Config {
  if (!body || !Array.isArray(body.targets)) return body;
  return { ...body, targets: body.targets.map(({ passwordSet: _flag, ...t }: Config['targets'][number] & { passwordSet?: boolean }) => t) };
}

/** Asserts an RFC 9457 Problem JSON answer and returns its body. */
export function assertProblem(res: HttpResponse, status: number, fields: Record<string, unknown> = {}): Record<string, any> {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json();
  assert.equal(typeof body.type, 'string');
  assert.equal(typeof body.title, 'string');
  assert.equal(body.status, status);
  assert.equal(typeof body.detail, 'string');
  assert.ok(body.detail.length > 0);
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof RegExp) assert.match(String(body[k]), v, `problem.${k}`);
    else assert.deepEqual(body[k], v, `problem.${k}`);
  }
  return body;
}

/** The CSRF token from a rendered settings page. */
export function csrfToken(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  assert.ok(m, 'the page has a CSRF token field');
  return m[1]!;
}

// ---- fake TCP targets -----------------------------------------------------------------------

export interface FakeServer {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:0 and hands each connection to `onConnection` (startTarget of targets.ts). */
export async function tcpServer(onConnection: (socket: net.Socket) => void): Promise<FakeServer> {
  let accepted = 0;
  const target = await startTarget((socket) => {
    accepted++;
    onConnection(socket);
  });
  return {
    port: target.port,
    get accepted() {
      return accepted;
    },
    close: target.close,
  };
}

/** A VNC-looking target: greets with `RFB 003.008\n` then `tag` (so a test knows where it landed), and echoes. */
export function vncServer(tag = ''): Promise<FakeServer> {
  return tcpServer((socket) => {
    socket.write(`RFB 003.008\n${tag}`);
    socket.pipe(socket);
  });
}

// ---- WebSocket sessions through the relay ----------------------------------------------------

export interface Session {
  ws: WebSocket;
  /** Everything received so far, as latin1 text. */
  received(): string;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a relay session (`?target=` when `targetId` is given) and waits until it is open. */
export function openSession(port: number, targetId?: string, headers: Record<string, string> = {}): Promise<Session> {
  const url = `ws://127.0.0.1:${port}${RELAY}${targetId === undefined ? '' : `?target=${encodeURIComponent(targetId)}`}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { perMessageDeflate: false, headers });
    let data = '';
    ws.on('message', (chunk: Buffer) => (data += chunk.toString('latin1')));
    const closed = new Promise<{ code: number; reason: string }>((res) =>
      ws.once('close', (code: number, reason: Buffer) => res({ code, reason: reason.toString() })),
    );
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve({ ws, received: () => data, closed });
    });
    ws.once('error', reject);
  });
}

/** Opens a session and waits until the target's greeting (and `tag`) arrived. */
export async function openSessionTo(port: number, targetId: string | undefined, tag: string): Promise<Session> {
  const s = await openSession(port, targetId);
  await waitFor(`greeting "${tag}" through the relay`, () => s.received().includes(`RFB 003.008\n${tag}`));
  return s;
}

/** An upgrade that must be refused: resolves with the HTTP status and body sent before the upgrade. */
export function refusedUpgrade(
  port: number,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${RELAY}${query}`, { headers });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', () => {});
  });
}
