#!/usr/bin/env node
/**
 * Start-up time of the snap's daemon: from process start to its first HTTP answer on the unix
 * socket, for the amd64 snap natively and the arm64 one under qemu-aarch64-static (a relative
 * figure: qemu emulates every instruction, so only the ratio to amd64 says something).
 *
 *   node scripts/startup.mjs [--snaps DIR] [--runs N] [--arch amd64,arm64]
 *
 * Builds the snaps with scripts/stage.mjs (or takes ctrlx-novnc_*_<arch>.snap from --snaps DIR),
 * unpacks each with unsquashfs and runs its daemon as snapd would: meta/snap.yaml's command and
 * environment, SNAP/SNAP_DATA/SNAP_COMMON in a temporary folder, ctrlX authentication on (an
 * unauthenticated GET answered 401 is the first answer; no identity manager is needed for it).
 * Each run starts from a fresh data folder; the first run of each snap is a warm-up (page cache)
 * and not counted. Prints the median and the range of the runs, and arm64/amd64.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { buildSnaps, ROOT } from './stage.mjs';

const QEMU = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];
const HOST = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;

const { values } = parseArgs({
  options: { snaps: { type: 'string' }, runs: { type: 'string', default: '5' }, arch: { type: 'string', default: 'amd64,arm64' } },
  strict: true,
});
const runs = Number(values.runs);
const arches = values.arch.split(',');

/** One GET on the socket; resolves with the status, rejects when nobody answers. */
function get(socketPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: '/ctrlx-novnc/api/v1/status', headers: { Host: 'ctrlx.example' }, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const expand = (word, env) => word.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name) => env[name] ?? '');

/** Starts the daemon of the unpacked snap in `dir`; milliseconds until its first answer. */
async function startOnce(dir, arch, tmp) {
  const web = parseYaml(fs.readFileSync(path.join(dir, 'meta', 'snap.yaml'), 'utf8')).apps.web;
  const data = fs.mkdtempSync(path.join(tmp, 'data-'));
  const common = fs.mkdtempSync(path.join(tmp, 'common-'));
  const base = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    LANG: 'C.UTF-8',
    SNAP: dir,
    SNAP_DATA: data,
    SNAP_COMMON: common,
    SNAP_NAME: 'ctrlx-novnc',
    SNAP_INSTANCE_NAME: 'ctrlx-novnc',
    SNAP_ARCH: arch,
    HOME: path.join(data, 'home'),
    CTRLX_IDM_URL: 'http://127.0.0.1:9/identity-manager/api/v2/auth/token/validity',
  };
  const env = { ...base };
  for (const [k, v] of Object.entries(web.environment ?? {})) env[k] = expand(String(v), base);
  const argv = String(web.command).split(/\s+/).map((w, i) => (i === 0 ? path.join(dir, w) : expand(w, env)));
  const [cmd, ...args] = [...(arch === HOST ? [] : QEMU), ...argv];
  const socketPath = path.join(data, 'package-run', 'ctrlx-novnc', 'ctrlx-novnc.web.sock');
  const t0 = performance.now();
  const child = spawn(cmd, args, { env, stdio: 'ignore' });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${arch}: the daemon exited with ${child.exitCode}`);
      if (performance.now() - t0 > 120_000) throw new Error(`${arch}: no answer in 120 s`);
      if (fs.existsSync(socketPath)) {
        const status = await get(socketPath).catch(() => undefined);
        if (status !== undefined) return performance.now() - t0;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-startup-'));
try {
  const files = new Map();
  if (values.snaps) {
    for (const f of fs.readdirSync(values.snaps)) {
      const m = /_(amd64|arm64)\.snap$/.exec(f);
      if (m) files.set(m[1], path.join(values.snaps, f));
    }
  } else {
    for (const b of buildSnaps(arches, path.join(tmp, 'dist'))) files.set(b.arch, b.file);
  }
  const results = {};
  for (const arch of arches) {
    const file = files.get(arch);
    if (!file) throw new Error(`no ${arch} snap`);
    const dir = path.join(tmp, `unpacked-${arch}`);
    const r = spawnSync('unsquashfs', ['-q', '-n', '-d', dir, file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`unsquashfs: ${r.stderr}`);
    await startOnce(dir, arch, tmp); // warm-up: bin/node and the app into the page cache
    const ms = [];
    for (let i = 0; i < runs; i++) ms.push(await startOnce(dir, arch, tmp));
    results[arch] = ms;
    const how = arch === HOST ? 'native' : 'under qemu-aarch64-static';
    console.log(`${arch} (${how}): median ${median(ms).toFixed(0)} ms from process start to the first answer on the socket (${runs} runs, ${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)} ms)`);
  }
  if (results.amd64 && results.arm64) {
    console.log(`arm64 under qemu / amd64: ${(median(results.arm64) / median(results.amd64)).toFixed(1)}×`);
  }
  console.log(`machine: ${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; ${path.relative(ROOT, process.argv[1])}`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
