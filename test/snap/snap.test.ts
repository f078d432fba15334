/**
 * Builds both snaps for real (`scripts/stage.mjs`, the code behind `npm run snap`), unpacks them
 * with unsquashfs and runs each one as snapd would: the daemon's command and environment from its
 * meta/snap.yaml, SNAP/SNAP_DATA/SNAP_COMMON/SNAP_NAME pointing at temporary folders, ctrlX
 * authentication on (against a fake identity manager), the arm64 one under qemu-aarch64-static.
 * Checks the socket, the bundled Node's version, the pages, the connect hook, the app health
 * reported through a fake `snapctl` on PATH, journal priorities on every log line (systemd's
 * JOURNAL_STREAM set), a configuration saved through the API landing in the active
 * configuration, and a relay session reaching the demo VNC server. On amd64 it also
 * measures the daemon's RSS idle and with 10 viewers streaming (ctrlX guideline: below 75 MB),
 * running it from the snap loop-mounted read-only (squashfs) as snapd does, where the test may mount.
 *
 * Needs Debian's snapd (snap pack), squashfs-tools, qemu-user-static, libc6-arm64-cross and
 * libstdc++6-arm64-cross (.ci/run installs them); skipped with a reason when they are missing.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { JOURNAL_PRIORITY, type LogLevel } from '../../src/log.js';
import { fakeSnapctl } from '../helpers/fake-snapctl.js';
import {
  MANIFEST_PATH,
  ROOT,
  StreamingViewer,
  expand,
  hasCommand,
  makeToken,
  openRelay,
  readBytes,
  readJson,
  request,
  rss,
  snapEnv,
  spawnDaemon,
  stageModule,
  startFakeIdm,
  type FakeIdm,
  type ViewerMode,
} from './helpers.js';
import { waitFor } from '../helpers/wait.js';

const ARCHES = ['amd64', 'arm64'] as const;
type Arch = (typeof ARCHES)[number];
const HOST_ARCH: Arch | undefined = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
const QEMU = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];
const MAX_SNAP_BYTES = 60 * 1024 * 1024;
/**
 * Memory regression guards, MB: the figures measured in December 2026 (README "Memory") plus a
 * small margin for the page cache's share of bin/node (RSS) and for a busy machine. ctrlX
 * guideline: 75 MB; issue 16's goals: idle 65, 10 viewers 72, the burst of their first full frames 80.
 * - `mounted`: the daemon runs from the snap's squashfs, loop-mounted as snapd mounts it (idle
 *   63.9, 21.3 private; 10 viewers 66.9-67.6; peaks 66.7-69.5, with issue 13's server side);
 * - `unpacked`: where no loop mount is possible (not root), from the unsquashfs copy on the test
 *   machine's disk, whose page cache holds bin/node in large folios: each page the daemon touches
 *   maps a larger block around it, about 5 MB more RSS than from squashfs (idle 68.5).
 */
const GUARD_MB = {
  mounted: { idlePrivate: 23, idle: 65, viewers: 69, peak: 72 },
  unpacked: { idlePrivate: 23, idle: 71, viewers: 72, peak: 76 },
};
const VIEWERS = 10;
const STREAM_SECONDS = 10;

function missingTools(): string | undefined {
  const missing = [
    ['snap', 'version'],
    ['unsquashfs', '-version'],
    ['qemu-aarch64-static', '--version'],
  ]
    .filter(([cmd, arg]) => !hasCommand(cmd!, arg))
    .map(([cmd]) => cmd);
  if (!fs.existsSync('/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1')) missing.push('libc6-arm64-cross');
  if (!fs.existsSync('/usr/aarch64-linux-gnu/lib/libstdc++.so.6')) missing.push('libstdc++6-arm64-cross');
  return missing.length ? `missing: ${missing.join(', ')} (see .ci/run)` : undefined;
}

const skip = HOST_ARCH ? missingTools() : `unsupported build machine ${process.arch}`;

/** The production packages of package-lock.json (what must be in the snap, and only those). */
function productionPackages(): string[] {
  const lock = readJson(path.join(ROOT, 'package-lock.json'));
  return Object.entries(lock.packages as Record<string, { dev?: boolean }>)
    .filter(([k, v]) => k.startsWith('node_modules/') && !v.dev)
    .map(([k]) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length))
    .sort();
}

/** Files below `dir` whose relative path matches `re`. */
function findFiles(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (re.test(path.relative(dir, p))) out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

/** ELF e_machine of a binary: 62 x86-64, 183 AArch64. */
/** The hashed name under which an unpacked snap's app serves a page's static file. */
function staticName(dir: string, page: string): string {
  const name = readJson(path.join(dir, 'app', 'dist', 'static', 'manifest.json')).files[page];
  assert.ok(name, `${page} in the static manifest`);
  return name;
}

function elfMachine(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(20);
    fs.readSync(fd, head, 0, 20, 0);
    assert.equal(head.subarray(0, 4).toString('latin1'), '\x7fELF');
    return head.readUInt16LE(18);
  } finally {
    fs.closeSync(fd);
  }
}

interface Unpacked {
  arch: Arch;
  file: string;
  bytes: number;
  dir: string;
  /** Where the snap is loop-mounted read-only (squashfs), as snapd mounts it; unset when not possible. */
  mounted?: string;
}

/**
 * Loop-mounts `file` (squashfs) read-only at `dir`, as snapd mounts a snap under /snap; false
 * (and why, through `note`) when this machine does not allow it (not root, no loop devices).
 */
function mountSnap(file: string, dir: string, note: (msg: string) => void): boolean {
  if (process.getuid?.() !== 0) {
    note('not root: no loop mount');
    return false;
  }
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'squashfs', '-o', 'loop,ro,nodev,nosuid', file, dir], { encoding: 'utf8' });
  if (r.status !== 0) note(`mount -t squashfs failed: ${(r.stderr || String(r.error)).trim()}`);
  return r.status === 0;
}

function unmountSnap(dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}

describe('the snaps', { skip, timeout: 15 * 60_000 }, () => {
  let tmp: string;
  const snaps = new Map<Arch, Unpacked>();
  let idm: FakeIdm;
  const manage = makeToken('engineer', [SCOPE_MANAGE]);
  const view = makeToken('operator', [SCOPE_VIEW]);
  let buildSeconds = 0;
  let mountNote = '';

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-snap-'));
    const stage = await stageModule();
    const t0 = Date.now();
    const built = stage.buildSnaps([...ARCHES], path.join(tmp, 'dist'));
    buildSeconds = (Date.now() - t0) / 1000;
    for (const b of built) {
      const dir = path.join(tmp, `unpacked-${b.arch}`);
      const r = spawnSync('unsquashfs', ['-q', '-n', '-d', dir, b.file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const mounted = path.join(tmp, `mounted-${b.arch}`);
      const isMounted = b.arch === HOST_ARCH && mountSnap(b.file, mounted, (m) => (mountNote = m));
      snaps.set(b.arch as Arch, { arch: b.arch as Arch, file: b.file, bytes: b.bytes, dir, ...(isMounted ? { mounted } : {}) });
    }
    idm = await startFakeIdm();
    idm.valid.add(manage);
    idm.valid.add(view);
  });

  after(async () => {
    await idm?.close();
    for (const s of snaps.values()) if (s.mounted) unmountSnap(s.mounted);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('builds ctrlx-novnc_<version>_<arch>.snap for amd64 and arm64, each at most 60 MB', (t) => {
    const version = readJson(path.join(ROOT, 'package.json')).version;
    for (const arch of ARCHES) {
      const s = snaps.get(arch)!;
      assert.equal(path.basename(s.file), `ctrlx-novnc_${version}_${arch}.snap`);
      assert.ok(s.bytes <= MAX_SNAP_BYTES, `${arch}: ${(s.bytes / 1048576).toFixed(1)} MB`);
      t.diagnostic(`${path.basename(s.file)}: ${(s.bytes / 1048576).toFixed(1)} MB`);
    }
    t.diagnostic(`both snaps built in ${buildSeconds.toFixed(1)} s`);
  });

  it('each snap holds the daemon, the hook, the package assets and a lean production tree', async () => {
    const prod = productionPackages();
    for (const arch of ARCHES) {
      const { dir } = snaps.get(arch)!;
      const meta = parseYaml(fs.readFileSync(path.join(dir, 'meta', 'snap.yaml'), 'utf8'));
      assert.deepEqual(meta.architectures, [arch]);
      assert.equal(meta.confinement, 'strict');
      const hook = path.join(dir, 'meta', 'hooks', 'connect-plug-active-solution');
      assert.ok(fs.statSync(hook).mode & 0o111, 'hook executable');

      // Node 24 for the right CPU.
      assert.equal(elfMachine(path.join(dir, 'bin', 'node')), arch === 'amd64' ? 62 : 183);
      assert.ok(fs.statSync(path.join(dir, 'bin', 'node')).size < 115 * 1048576, 'node is stripped');

      // The app: package root marker, ESM, compiled JS, views, the pages' bundled static files
      // (not their sources: public/ and noVNC's modules are in the bundles).
      const pkg = readJson(path.join(dir, 'app', 'package.json'));
      assert.equal(pkg.type, 'module');
      assert.equal(pkg.devDependencies, undefined);
      for (const f of ['dist/cli.js', 'dist/app.js', 'views/viewer.ejs', 'views/config.ejs', 'dist/static/manifest.json']) {
        assert.ok(fs.existsSync(path.join(dir, 'app', f)), f);
      }
      const statics = readJson(path.join(dir, 'app', 'dist', 'static', 'manifest.json')).files as Record<string, string>;
      for (const page of ['viewer.js', 'viewer.css', 'config.js', 'login.js', 'style.css']) {
        const file = path.join(dir, 'app', 'dist', 'static', statics[page]!);
        for (const f of [file, `${file}.br`, `${file}.gz`]) assert.ok(fs.existsSync(f), `${page}: ${path.basename(f)}`);
      }
      assert.ok(!fs.existsSync(path.join(dir, 'app', 'public')), 'no page sources (public/)');
      assert.deepEqual(findFiles(path.join(dir, 'app', 'dist'), /\.ts$|\.map$/), []);

      // Exactly the production dependency closure, without docs, types, maps, tests, TS sources.
      const nm = path.join(dir, 'app', 'node_modules');
      const installed = findFiles(nm, /(^|\/)package\.json$/)
        .map((p) => path.dirname(p))
        .filter((p) => {
          const parts = p.split('/');
          // a package folder: name or @scope/name, possibly nested under node_modules
          const last = parts.lastIndexOf('node_modules');
          const rest = parts.slice(last + 1);
          return rest.length === 1 || (rest.length === 2 && rest[0]!.startsWith('@'));
        })
        .map((p) => {
          const i = p.lastIndexOf('node_modules/');
          return i === -1 ? p : p.slice(i + 'node_modules/'.length);
        })
        .sort();
      assert.deepEqual(installed, prod);
      assert.deepEqual(findFiles(nm, /\.(d\.[cm]?ts|ts|map|md)$/i).filter((f) => !/licen[cs]e/i.test(f)), []);
      assert.ok(!fs.existsSync(path.join(nm, 'zod')), 'zod is a dev dependency only (the validation parity test)');
      // The daemon's JavaScript without comments and ASCII-only (V8 holds every loaded source on
      // its heap, a non-ASCII one as UTF-16: scripts/stage.mjs minifyJs); dist/static and noVNC
      // are the browser's.
      const daemonJs = [
        ...findFiles(path.join(dir, 'app', 'dist'), /\.js$/)
          .filter((f) => !f.startsWith('static/'))
          .map((f) => path.join(dir, 'app', 'dist', f)),
        ...findFiles(nm, /\.[cm]?js$/).filter((f) => !f.startsWith('@novnc/')).map((f) => path.join(nm, f)),
      ];
      assert.ok(daemonJs.length > 100, `${daemonJs.length} daemon scripts`);
      for (const f of daemonJs) assert.ok(fs.readFileSync(f).every((b) => b < 0x80), `${path.relative(dir, f)}: ASCII only`);
      assert.ok(!fs.readFileSync(path.join(dir, 'app', 'dist', 'cli.js'), 'utf8').includes('/**'), 'dist/ without doc comments');
      // noVNC is in the viewer's bundle: only its licence texts stay (the FOSS list reads them).
      for (const f of ['LICENSE.txt', 'docs/LICENSE.MPL-2.0', 'vendor/pako/LICENSE']) {
        assert.ok(fs.existsSync(path.join(nm, '@novnc', 'novnc', f)), `noVNC ${f}`);
      }
      for (const f of ['core', 'vendor/pako/lib']) assert.ok(!fs.existsSync(path.join(nm, '@novnc', 'novnc', f)), `no noVNC ${f}`);

      // Package assets: the manifest as written, the FOSS list of everything bundled.
      const assets = path.join(dir, 'package-assets', 'ctrlx-novnc');
      assert.deepEqual(readJson(path.join(assets, 'ctrlx-novnc.package-manifest.json')), readJson(MANIFEST_PATH));
      // The language files of the manifest (configs/package-assets/i18n), as written.
      for (const lang of ['en', 'de']) {
        const name = `ctrlx-novnc.package-manifest.${lang}.json`;
        assert.deepEqual(readJson(path.join(assets, 'i18n', name)), readJson(path.join(path.dirname(MANIFEST_PATH), 'i18n', name)), `staged i18n/${name}`);
      }
      const foss = readJson(path.join(assets, 'ctrlx-novnc.fossinfo.json'));
      const names = foss.components.map((c: { name: string }) => c.name);
      for (const p of prod) assert.ok(names.includes(p), `fossinfo lists ${p}`);
      assert.ok(names.includes('Node.js'));
      for (const c of foss.components) {
        assert.ok(c.licenses.length > 0 && c.licenses.every((l: { name: string; text: string }) => l.name && l.text.length > 20), `${c.name}: licence text`);
      }
      const novnc = foss.components.find((c: { name: string }) => c.name === '@novnc/novnc');
      assert.equal(novnc.licenses[0].spdx, 'MPL-2.0');
      assert.match(novnc.licenses[0].text, /Mozilla Public License Version 2\.0/);
    }
  });

  it("the app's modules load no Node code they never run, under the bundled Node (no fetch/WebSocket client)", { skip: !HOST_ARCH }, () => {
    const { dir } = snaps.get(HOST_ARCH!)!;
    // An ES-module import of node:http reads Node 24's lazy http.WebSocket getters, which load
    // undici (~9 MB resident): src/builtins.ts takes node:http with process.getBuiltinModule.
    const script = [
      `for (const m of ['app.js', 'web/server.js', 'relay/index.js', 'ctrlx/auth.js', 'relay/upgrade.js'])`,
      `  await import(${JSON.stringify(`${path.join(dir, 'app', 'dist')}/`)} + m);`,
      `console.log(JSON.stringify(process.moduleLoadList));`,
    ].join('\n');
    const r = spawnSync(path.join(dir, 'bin', 'node'), ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as string[];
    assert.ok(loaded.some((m) => m.includes('_http_server')), 'node:http is loaded');
    assert.deepEqual(loaded.filter((m) => /undici/.test(m)), []);
  });

  /**
   * Runs the unpacked snap's daemon as snapd would and drives it through its socket. Returns the
   * memory figures when `measure` is set.
   */
  async function smoke(
    arch: Arch,
    diagnostic: (msg: string) => void,
    measure: boolean,
  ): Promise<void> {
    // The daemon, its hook and the demo server run from the squashfs mount when there is one (as
    // snapd runs them), else from the unpacked copy.
    const snap = snaps.get(arch)!;
    const dir = snap.mounted ?? snap.dir;
    diagnostic(`${arch}: running from ${snap.mounted ? 'the snap loop-mounted (squashfs, read-only)' : `the unpacked copy${mountNote ? ` (${mountNote})` : ''}`}`);
    const meta = parseYaml(fs.readFileSync(path.join(dir, 'meta', 'snap.yaml'), 'utf8'));
    const app = meta.apps.web;
    const data = fs.mkdtempSync(path.join(tmp, `data-${arch}-`));
    const common = fs.mkdtempSync(path.join(tmp, `common-${arch}-`));
    // As systemd starts a snap daemon: stdout/stderr to the journal (JOURNAL_STREAM, INVOCATION_ID),
    // snapctl on PATH (here a fake that records its calls).
    const snapctl = fakeSnapctl(fs.mkdtempSync(path.join(tmp, `snapctl-${arch}-`)));
    const base = snapEnv(dir, data, common, arch, {
      CTRLX_IDM_URL: idm.url,
      LOG_LEVEL: 'info',
      PATH: `${snapctl.dir}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      JOURNAL_STREAM: '8:4242',
      INVOCATION_ID: '0123456789abcdef0123456789abcdef',
    });
    const env: NodeJS.ProcessEnv = { ...base };
    for (const [k, v] of Object.entries(app.environment ?? {})) env[k] = expand(String(v), base);
    const argv = String(app.command).split(/\s+/).map((w, i) => (i === 0 ? path.join(dir, w) : expand(w, env)));
    const prefix = arch === HOST_ARCH ? [] : QEMU;
    const socketPath = path.join(data, 'package-run', 'ctrlx-novnc', 'ctrlx-novnc.web.sock');
    const endpoint = { socketPath };

    // The bundled Node is the pinned one, for this CPU.
    const pinned = readJson(path.join(ROOT, 'snap', 'node.json')).version;
    const [nodeCmd, ...nodeArgs] = [...prefix, path.join(dir, 'bin', 'node'), '--version'];
    const nodeV = spawnSync(nodeCmd!, nodeArgs, { encoding: 'utf8' });
    assert.equal(nodeV.stdout.trim(), `v${pinned}`, nodeV.stderr);

    const started = Date.now();
    const daemon = spawnDaemon(argv, env, prefix);
    let demo: ReturnType<typeof spawn> | undefined;
    try {
      const status = await waitFor(
        'the daemon to answer on package-run/ctrlx-novnc/ctrlx-novnc.web.sock',
        async () => {
          if (daemon.child.exitCode !== null) throw new Error(`daemon exited ${daemon.child.exitCode}: ${daemon.output.join('\n')}`);
          if (!fs.existsSync(socketPath)) return undefined;
          // The socket file appears at bind, a moment before the daemon accepts: a refused
          // connection then is not yet an answer.
          const r = await request(endpoint, 'GET', '/ctrlx-novnc/api/v1/status', { token: view }).catch(() => undefined);
          return r?.status === 200 ? JSON.parse(r.body) : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      diagnostic(`${arch}: answering on its socket ${((Date.now() - started) / 1000).toFixed(1)} s after start${prefix.length ? ' (under qemu)' : ''}`);
      assert.ok(fs.statSync(socketPath).isSocket());
      assert.equal(status.version, readJson(path.join(ROOT, 'package.json')).version);
      assert.equal(status.config.state, 'unmounted', 'no active configuration before the plug connects');
      // Health: waiting for the Solutions folder.
      const health = (): string[][] => snapctl.calls();
      await waitFor('the health "waiting"', () => health().length >= 1, { timeoutMs: 30_000, intervalMs: 100 });
      assert.deepEqual(health(), [['set-health', '--code=solutions-not-connected', 'waiting', 'waiting for the Solutions folder (active-solution plug)']]);

      // Authentication is on in the snap: no token, no page.
      assert.equal((await request(endpoint, 'GET', '/ctrlx-novnc/viewer/')).status, 401);

      // The plug connects: the Solutions folder appears (activeConfiguration is a symlink into
      // it, as on the device), the hook makes the app's folder, the running daemon picks it up.
      const appdata = path.join(common, 'solutions', 'DefaultSolution', 'configurations', 'appdata');
      fs.mkdirSync(appdata, { recursive: true });
      fs.symlinkSync(path.join('DefaultSolution', 'configurations', 'appdata'), path.join(common, 'solutions', 'activeConfiguration'));
      const hook = spawnSync(path.join(dir, 'meta', 'hooks', 'connect-plug-active-solution'), [], { env: base, encoding: 'utf8' });
      assert.equal(hook.status, 0, hook.stderr);
      assert.ok(fs.statSync(path.join(appdata, 'ctrlx-novnc')).isDirectory());
      await waitFor('the daemon to pick up the active configuration', async () => {
        const r = await request(endpoint, 'GET', '/ctrlx-novnc/api/v1/status', { token: view });
        return JSON.parse(r.body).config.state === 'ok';
      }, { timeoutMs: 30_000, intervalMs: 250 });
      await waitFor('the health "okay"', () => health().length >= 2, { timeoutMs: 30_000, intervalMs: 100 });
      assert.deepEqual(health()[1], ['set-health', 'okay']);

      // A hand edit breaks config.json: health error naming file, line and field; fixed: okay.
      const configFile = path.join(appdata, 'ctrlx-novnc', 'config.json');
      fs.writeFileSync(configFile, '{\n  "version": 1,\n  "targets": [\n    {"id": "x", "name": "X", "host": "10.0.0.9", "port": 0}\n  ]\n}\n');
      await waitFor('the health "error"', () => health().length >= 3, { timeoutMs: 30_000, intervalMs: 100 });
      assert.deepEqual(health()[2]!.slice(0, 3), ['set-health', '--code=config-invalid', 'error']);
      assert.match(health()[2]![3]!, /^config\.json line 4 targets\[0\]\.port: .{3,}/);
      fs.writeFileSync(configFile, '{"version": 1, "targets": []}\n');
      await waitFor('the health "okay" again', () => health().length >= 4, { timeoutMs: 30_000, intervalMs: 100 });
      assert.deepEqual(health()[3], ['set-health', 'okay']);
      diagnostic(`${arch}: health reported through snapctl: ${health().map((c) => c.slice(1).join(' ')).join(' → ')}`);

      // Pages and static files through the socket (the token as the menu link passes it).
      for (const [url, type, token] of [
        [`/ctrlx-novnc/viewer/?token=${view}`, /text\/html/, undefined],
        [`/ctrlx-novnc/config/?token=${manage}`, /text\/html/, undefined],
        [`/ctrlx-novnc/static/${staticName(dir, 'viewer.js')}`, /javascript/, view],
        [`/ctrlx-novnc/static/${staticName(dir, 'style.css')}`, /text\/css/, view],
      ] as const) {
        const r = await request(endpoint, 'GET', url, token ? { token } : {});
        assert.equal(r.status, 200, `${url.split('?')[0]}: ${r.status} ${r.body.slice(0, 200)}`);
        assert.match(String(r.headers['content-type']), type);
      }

      // The demo VNC server (from the snap's own app; with the snap's node where it runs natively).
      const demoNode = arch === HOST_ARCH ? path.join(dir, 'bin', 'node') : process.execPath;
      demo = spawn(demoNode, [path.join(dir, 'app', 'dist', 'cli.js'), 'demo-server', '--listen', '127.0.0.1:0'], {
        env: { PATH: process.env.PATH, LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const demoPort = await new Promise<number>((resolve, reject) => {
        let text = '';
        const onData = (c: Buffer): void => {
          text += c.toString();
          const m = /listening listen=127\.0\.0\.1:(\d+)/.exec(text);
          if (m) resolve(Number(m[1]));
        };
        demo!.stdout!.on('data', onData);
        demo!.stderr!.on('data', onData);
        demo!.once('exit', (code) => reject(new Error(`demo-server exited ${code}: ${text}`)));
      });

      // Configure it through the API: it lands in the active configuration.
      const put = await request(endpoint, 'PUT', '/ctrlx-novnc/api/v1/config', {
        token: manage,
        json: { targets: [{ id: 'demo-vnc', name: 'Demo screen', host: '127.0.0.1', port: demoPort }] },
      });
      assert.equal(put.status, 200, put.body);
      const file = path.join(common, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json');
      assert.deepEqual(readJson(file), { version: 1, targets: [{ id: 'demo-vnc', name: 'Demo screen', host: '127.0.0.1', port: demoPort }] });
      const save = await request(endpoint, 'POST', '/ctrlx-novnc/api/v1/save', {
        token: manage,
        json: { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'smoke1', phase: 'save' },
      });
      assert.equal(save.status, 204, save.body);

      // A WebSocket session through the socket reaches the demo server: its RFB greeting.
      const ws = await openRelay(socketPath, view, 'demo-vnc');
      assert.equal(ws.protocol, 'binary');
      const greeting = await readBytes(ws, 12);
      assert.equal(greeting.toString('latin1'), 'RFB 003.008\n');
      ws.close(1000);
      diagnostic(`${arch}: relay session through the socket got the greeting ${JSON.stringify(greeting.toString('latin1'))}`);

      if (measure) await measureMemory(daemon.child.pid!, socketPath, snap.mounted ? 'mounted' : 'unpacked', diagnostic);

      // SIGTERM (snapd's stop): exit 0 and the socket is gone.
      const exit = await daemon.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, daemon.output.join('\n'));
      assert.ok(!fs.existsSync(socketPath), 'the socket is removed on stop');
      assert.equal(health().length, 4, 'snapctl only on changes: nothing while idle or at stop');

      // Journal priorities: every line starts with the sd-daemon priority of its level.
      const levels = new Map<string, number>();
      for (const line of daemon.output) {
        const m = /^<([0-7])>(debug|info|notice|warn|error) /.exec(line);
        assert.ok(m, `no journal priority: ${line}`);
        assert.equal(Number(m[1]), JOURNAL_PRIORITY[m[2] as LogLevel], line);
        levels.set(m[2]!, (levels.get(m[2]!) ?? 0) + 1);
      }
      for (const level of ['info', 'notice', 'warn', 'error']) assert.ok(levels.get(level), `a ${level} line (the health changes give each)`);
      diagnostic(`${arch}: ${daemon.output.length} log lines, each with its priority: ${[...levels].map(([l, n]) => `${l} ${n}`).join(', ')}`);
    } catch (err) {
      diagnostic(`${arch} daemon output:\n${daemon.output.slice(-40).join('\n')}`);
      throw err;
    } finally {
      await daemon.stop();
      if (demo && demo.exitCode === null) {
        demo.kill('SIGTERM');
        await new Promise((r) => demo!.once('exit', r));
      }
    }
  }

  /**
   * The daemon's resident memory: idle, with 10 noVNC-like viewers (steady state and the peak while
   * their first full frames pass), and with 10 stress viewers. Figures go to the test's diagnostics
   * and test-artifacts/snap-memory.json (README "Memory"); the guards below catch regressions.
   */
  async function measureMemory(pid: number, socketPath: string, runFrom: keyof typeof GUARD_MB, diagnostic: (msg: string) => void): Promise<void> {
    const guard = GUARD_MB[runFrom];
    const mb = (kib: number): number => +(kib / 1024).toFixed(1);
    /**
     * RSS and PSS every 200 ms over `ms`: maxima overall and over the second half (steady state),
     * each with the PSS of the same sample, and the last sample.
     */
    const sample = async (ms: number) => {
      let max = 0;
      let maxPss = 0;
      let steady = 0;
      let steadyPss = 0;
      let last = rss(pid);
      const start = Date.now();
      while (Date.now() - start < ms) {
        last = rss(pid);
        if (last.total > max) [max, maxPss] = [last.total, last.pss];
        if (Date.now() - start >= ms / 2 && last.total > steady) [steady, steadyPss] = [last.total, last.pss];
        await new Promise((r) => setTimeout(r, 200));
      }
      return { max, maxPss, steady, steadyPss, last };
    };
    const stream = async (mode: ViewerMode) => {
      const viewers: StreamingViewer[] = [];
      for (let i = 0; i < VIEWERS; i++) viewers.push(new StreamingViewer(await openRelay(socketPath, view, 'demo-vnc'), mode));
      const t0 = Date.now();
      const busy = await sample(STREAM_SECONDS * 1000);
      const seconds = (Date.now() - t0) / 1000;
      const frames = viewers.reduce((n, v) => n + v.frames, 0);
      const bytes = viewers.reduce((n, v) => n + v.bytes, 0);
      await Promise.all(viewers.map((v) => v.stop()));
      const afterwards = await sample(3000);
      assert.ok(frames > VIEWERS, `${mode}: the viewers streamed (${frames} updates)`);
      return {
        steadyRssMB: mb(busy.steady),
        steadyPssMB: mb(busy.steadyPss),
        peakPssMB: mb(busy.maxPss),
        peakRssMB: mb(busy.max),
        afterRssMB: mb(afterwards.last.total),
        updatesPerSecond: +(frames / seconds).toFixed(1),
        throughputMBps: +(bytes / seconds / 1048576).toFixed(1),
      };
    };
    const idle = await sample(3000);
    const novnc = await stream('novnc');
    const stress = await stream('stress');
    const figures = {
      runFrom: runFrom === 'mounted' ? 'squashfs loop mount (as snapd)' : 'unpacked copy',
      viewers: VIEWERS,
      seconds: STREAM_SECONDS,
      idle: { rssMB: mb(idle.max), pssMB: mb(idle.maxPss), anonMB: mb(idle.last.anon), fileMB: mb(idle.last.file), pssFileMB: mb(idle.last.pssFile) },
      novnc,
      stress,
    };
    diagnostic(
      `amd64 (${figures.runFrom}) RSS idle ${figures.idle.rssMB} MB, PSS ${figures.idle.pssMB} MB (private ${figures.idle.anonMB} MB + ${figures.idle.fileMB} MB mapped files, mostly bin/node, ` +
        `${figures.idle.pssFileMB} MB of them in PSS: the demo server shares bin/node); ` +
        `${VIEWERS} noVNC-like viewers: ${novnc.steadyRssMB} MB steady (PSS ${novnc.steadyPssMB}), ${novnc.peakRssMB} MB peak (PSS ${novnc.peakPssMB}) while their first full frames pass ` +
        `(${novnc.updatesPerSecond} updates/s, ${novnc.throughputMBps} MB/s); ${VIEWERS} stress viewers (full raw frames back to back): ` +
        `${stress.steadyRssMB} MB steady (PSS ${stress.steadyPssMB}), ${stress.peakRssMB} MB peak (PSS ${stress.peakPssMB}; ${stress.throughputMBps} MB/s), ${stress.afterRssMB} MB after they left ` +
        `[ctrlX guideline: 75 MB]`,
    );
    const out = path.join(ROOT, 'test-artifacts');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'snap-memory.json'), `${JSON.stringify(figures, null, 2)}\n`);
    // Regression guards (the figures themselves are in README.md "Memory"): a few MB of margin
    // over what was measured, because the file-backed part depends on the page cache.
    assert.ok(figures.idle.anonMB < guard.idlePrivate, `idle private memory ${figures.idle.anonMB} MB (guard ${guard.idlePrivate} MB)`);
    assert.ok(figures.idle.rssMB < guard.idle, `idle RSS ${figures.idle.rssMB} MB (guard ${guard.idle} MB)`);
    assert.ok(novnc.steadyRssMB < guard.viewers, `RSS with ${VIEWERS} viewers ${novnc.steadyRssMB} MB (guard ${guard.viewers} MB)`);
    for (const [name, peak] of [['noVNC-like', novnc.peakRssMB], ['stress', stress.peakRssMB]] as const) {
      assert.ok(peak < guard.peak, `${name} peak RSS ${peak} MB (guard ${guard.peak} MB)`);
    }
  }

  it('amd64: runs as snapd would, serves on its socket, saves to the active configuration, relays to VNC; memory figures', async (t) => {
    await smoke('amd64', (m) => t.diagnostic(m), HOST_ARCH === 'amd64');
  });

  it('arm64: the same essentials under qemu-aarch64-static', async (t) => {
    await smoke('arm64', (m) => t.diagnostic(m), HOST_ARCH === 'arm64');
  });
});
