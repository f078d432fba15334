/**
 * @module
 * `npm run bench`: plain TCP vs Debian's websockify 0.10 vs our relay (Node's default flags, and
 * `ours-snap`: exactly the snap daemon's Node flags and environment from snap/snapcraft.yaml), same
 * work, three rounds; the table shows each metric's median over the rounds and each ratio's median
 * of the ratios taken within a round.
 *
 * Processes: this one only orchestrates and samples /proc; the TCP targets (flood, echo,
 * burst-close, stall) run in one child (targets.ts), the "browsers" in another (client.ts), and
 * each relay in a process of its own (websockify with its forks), so the relay's CPU and memory
 * are its own. Everything listens on 127.0.0.1; every process is killed at the end, on error
 * and on SIGINT/SIGTERM/SIGHUP.
 *
 * Flags (after `npm run bench --`): --quick (one round, smaller loads: a few minutes), --rounds N,
 * --bytes MiB, --runs N, --samples N, --sessions N, --duration SEC, --bursts N, --burst-kib KiB,
 * --stall-seconds SEC, --stall-cap MiB, --only tcp,websockify,ours,ours-snap,
 * --tests echo,downstream,burst,stall, --out FILE; or the same as BENCH_* environment variables
 * (BENCH_QUICK=1, BENCH_BYTES=512, BENCH_STALL_SECONDS=5, ...). BENCH_WEBSOCKIFY names another
 * websockify, BENCH_OURS_CLI another build of our cli.js, BENCH_OURS_NODE_ARGS adds node flags for
 * our relay (e.g. --cpu-prof), BENCH_SNAP_NODE the Node binary of the `ours-snap` column (e.g. the
 * snap's Node 24: bin/node of an unpacked snap; default: the Node running the bench).
 * Exit code 0 unless a test could not run: targets are reported, not enforced.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Child } from './rpc.js';
import { pssTree, readStat, sampleTree, CLK_TCK, type TreeSample } from './proc.js';
import { killAll, snapNode, startRelay, WEBSOCKIFY, type RelayName, type RelayProc } from './relays.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** build/bench -> <repo>/bench/results.md */
const DEFAULT_OUT = path.resolve(here, '..', '..', 'bench', 'results.md');

type Column = 'tcp' | RelayName;
const ALL_COLUMNS: Column[] = ['tcp', 'websockify', 'ours', 'ours-snap'];
/** The columns compared with websockify, each against its targets. */
const OURS: RelayName[] = ['ours', 'ours-snap'];
const MB = 1e6;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// ---- configuration ------------------------------------------------------------------------

interface Config {
  quick: boolean;
  /** Rounds of every test; the table shows medians over them. */
  rounds: number;
  /** Untimed round trips on every connection of the sessions test before it is timed. */
  loadWarmup: number;
  /** Bytes per downstream run. */
  bytes: number;
  runs: number;
  msgSize: number;
  warmup: number;
  samples: number;
  sessions: number;
  loadMs: number;
  burstBytes: number;
  bursts: number;
  stallMs: number;
  stallCap: number;
  /** Stop offering once the relay grew this much (websockify's queue has no limit). */
  stallGrowthLimit: number;
  columns: Column[];
  tests: Test[];
  out: string;
}

type Test = 'echo' | 'downstream' | 'burst' | 'stall';
const ALL_TESTS: Test[] = ['echo', 'downstream', 'burst', 'stall'];

function config(): Config {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      bytes: { type: 'string' },
      runs: { type: 'string' },
      samples: { type: 'string' },
      sessions: { type: 'string' },
      duration: { type: 'string' },
      bursts: { type: 'string' },
      'burst-kib': { type: 'string' },
      'stall-seconds': { type: 'string' },
      'stall-cap': { type: 'string' },
      only: { type: 'string' },
      tests: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  const env = (name: string): string | undefined => process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  const quick = values.quick === true || env('quick') === '1';
  const num = (name: keyof typeof values, full: number, fast: number): number => {
    const raw = (values[name] as string | undefined) ?? env(name);
    if (raw === undefined) return quick ? fast : full;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: "${raw}" must be a positive number`);
    return n;
  };
  const only = (values.only ?? env('only'))?.split(',').map((s) => s.trim()) ?? ALL_COLUMNS;
  for (const c of only) if (!ALL_COLUMNS.includes(c as Column)) throw new Error(`--only: unknown column "${c}"`);
  const tests = (values.tests ?? env('tests'))?.split(',').map((s) => s.trim()) ?? ALL_TESTS;
  for (const t of tests) if (!ALL_TESTS.includes(t as Test)) throw new Error(`--tests: unknown test "${t}"`);
  return {
    quick,
    rounds: Math.round(num('rounds', 3, 1)),
    loadWarmup: quick ? 200 : 2000,
    bytes: Math.round(num('bytes', 1024, 256) * MiB),
    runs: Math.round(num('runs', 5, 2)),
    msgSize: 64,
    warmup: 2000,
    samples: Math.round(num('samples', 20_000, 5_000)),
    sessions: Math.round(num('sessions', 100, 100)),
    loadMs: num('duration', 5, 3) * 1000,
    burstBytes: Math.round(num('burst-kib', 8192, 8192) * 1024),
    bursts: Math.round(num('bursts', 50, 20)),
    stallMs: num('stall-seconds', 10, 4) * 1000,
    stallCap: Math.round(num('stall-cap', 1024, 256) * MiB),
    stallGrowthLimit: GiB,
    columns: ALL_COLUMNS.filter((c) => only.includes(c)),
    tests: ALL_TESTS.filter((t) => tests.includes(t)),
    out: (values.out ?? env('out')) ? path.resolve(values.out ?? env('out')!) : DEFAULT_OUT,
  };
}

// ---- results ------------------------------------------------------------------------------

interface ColumnResult {
  mbps?: number;
  mbpsRuns?: number[];
  cpuRuns?: number[];
  cpuPerGiB?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  rtps?: number;
  rssIdle?: number;
  rssLoad?: number;
  pssLoad?: number;
  procsLoad?: number;
  cpuLoad?: number;
  /** Of cpuLoad: the relay's kernel (system) time, CPU s per s. */
  kernelLoad?: number;
  clientCpuLoad?: number;
  targetCpuLoad?: number;
  stallGrowth?: number;
  stallOffered?: number;
  stallSeconds?: number;
  burstLost?: number;
  burstRunsLost?: number;
  /** Of burstRunsLost, runs where the client paused before reading. */
  burstLostPaused?: number;
  burstRuns?: number;
  burstEndings?: string[];
  error?: string[];
}

/** How long the client of every other close-after-burst run waits before reading. */
const BURST_PAUSE_MS = 50;

const emptyResults = (): Record<Column, ColumnResult> => ({ tcp: {}, websockify: {}, ours: {}, 'ours-snap': {} });
/** The round running now. */
let results = emptyResults();
/** Every round's results, then {@link final}: their medians. */
const rounds: Record<Column, ColumnResult>[] = [];
let final = emptyResults();

/** Per column, the median of each number over the rounds; lists and errors of all rounds joined. */
function combine(all: Record<Column, ColumnResult>[]): Record<Column, ColumnResult> {
  const out = emptyResults();
  for (const col of ALL_COLUMNS) {
    const merged: Record<string, unknown> = {};
    const keys = new Set(all.flatMap((r) => Object.keys(r[col])));
    for (const key of keys) {
      const values = all.map((r) => (r[col] as Record<string, unknown>)[key]).filter((v) => v !== undefined);
      if (values.every((v) => typeof v === 'number')) merged[key] = median(values as number[]);
      else merged[key] = values.flatMap((v) => v as unknown[]);
    }
    out[col] = merged as ColumnResult;
  }
  return out;
}

function note(col: Column, what: string, err: unknown): void {
  const msg = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  results[col].error ??= [];
  results[col].error.push(msg);
  process.stderr.write(`  ! ${col} ${msg}\n`);
}

// ---- helpers ------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function sample(relay: RelayProc): TreeSample {
  const s = sampleTree(relay.pid, relay.tree);
  if (!s) throw new Error(`${relay.name} (pid ${relay.pid}) is gone:\n${relay.output()}`);
  return s;
}

/** CPU seconds (utime+stime) of a single process so far. */
function cpuOf(pid: number): number {
  const st = readStat(pid);
  return st ? st.self / CLK_TCK : 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

const CLIENT_JS = path.join(here, 'client.js');
let targets: Child;
let client: Child;
let ports: { flood: number; echo: number; burst: number; stall: number };

async function withRelay<T>(col: RelayName, targetPort: number, fn: (relay: RelayProc) => Promise<T>): Promise<T> {
  const relay = await startRelay(col, targetPort);
  try {
    return await fn(relay);
  } finally {
    await relay.stop();
  }
}

/** Runs `fn` for the plain TCP column (port = target) or with a fresh relay in front of the target. */
async function each(
  cfg: Config,
  what: string,
  targetPort: number,
  fn: (col: Column, kind: 'tcp' | 'ws', port: number, relay: RelayProc | undefined) => Promise<void>,
  columns: Column[] = cfg.columns,
): Promise<void> {
  for (const col of columns) {
    if (!cfg.columns.includes(col)) continue;
    log(`  ${what}: ${col}`);
    if (!client.alive) client = new Child(CLIENT_JS); // a crash in one test does not end the run
    try {
      if (col === 'tcp') await fn(col, 'tcp', targetPort, undefined);
      else await withRelay(col, targetPort, (relay) => fn(col, 'ws', relay.port, relay));
    } catch (err) {
      note(col, what, err);
    }
  }
}

// ---- the tests ----------------------------------------------------------------------------

/** Idle RSS, round-trip latency, then many concurrent sessions, on one relay per column. */
async function echoTests(cfg: Config): Promise<void> {
  await each(cfg, 'latency + sessions', ports.echo, async (col, kind, port, relay) => {
    const r = results[col];
    if (relay) {
      await sleep(1000);
      r.rssIdle = sample(relay).rss;
    }
    // The same connection does cfg.warmup untimed round trips first (bench/client.ts).
    const lat = await client.call<{ p50: number; p99: number; p999: number }>('latency', {
      kind,
      port,
      size: cfg.msgSize,
      warmup: cfg.warmup,
      samples: cfg.samples,
    });
    r.p50 = lat.p50;
    r.p99 = lat.p99;
    r.p999 = lat.p999;

    try {
      await loadTest(cfg, r, kind, port, relay);
    } finally {
      await client.call('load-close').catch(() => {});
    }
    await sleep(300);
  });
}

/** `cfg.sessions` sessions doing round trips for `cfg.loadMs`, the relay sampled meanwhile. */
async function loadTest(cfg: Config, r: ColumnResult, kind: 'tcp' | 'ws', port: number, relay: RelayProc | undefined): Promise<void> {
  await client.call('load-open', { kind, port, sessions: cfg.sessions, size: cfg.msgSize, batch: 10, warmup: cfg.loadWarmup });
  await sleep(500);
  const before = relay ? sample(relay) : undefined;
  const cli0 = cpuOf(client.pid);
  const tgt0 = cpuOf(targets.pid);
  let maxRss = before?.rss ?? 0;
  let maxProcs = before?.procs ?? 0;
  let pss: number | undefined;
  const sampler = relay
    ? setInterval(() => {
        const s = sampleTree(relay.pid, relay.tree);
        if (!s) return;
        maxRss = Math.max(maxRss, s.rss);
        maxProcs = Math.max(maxProcs, s.procs);
      }, 200)
    : undefined;
  const pssTimer = relay ? setTimeout(() => (pss = pssTree(relay.pid)), cfg.loadMs / 2) : undefined;
  const t0 = performance.now();
  let run: { count: number; seconds: number };
  try {
    run = await client.call<{ count: number; seconds: number }>('load-run', { durationMs: cfg.loadMs });
  } finally {
    clearInterval(sampler);
    clearTimeout(pssTimer);
  }
  const wall = (performance.now() - t0) / 1000;
  if (relay) {
    const after = sample(relay);
    maxRss = Math.max(maxRss, after.rss);
    r.rssLoad = maxRss;
    r.procsLoad = maxProcs;
    r.cpuLoad = (after.cpu - before!.cpu) / wall;
    r.kernelLoad = (after.kernel - before!.kernel) / wall;
    r.pssLoad = pss;
  }
  r.clientCpuLoad = (cpuOf(client.pid) - cli0) / wall;
  r.targetCpuLoad = (cpuOf(targets.pid) - tgt0) / wall;
  r.rtps = run.count / run.seconds;
}

async function throughputTests(cfg: Config): Promise<void> {
  const warmBytes = Math.min(256 * MiB, Math.ceil(cfg.bytes / 4));
  await each(cfg, 'downstream', ports.flood, async (col, kind, port, relay) => {
    const r = results[col];
    // One untimed transfer first: JIT and heap warm, as in a relay that has been running a while.
    await targets.call('config', { floodBytes: warmBytes });
    await client.call('throughput', { kind, port, bytes: warmBytes });
    await targets.call('config', { floodBytes: cfg.bytes });
    await sleep(200);
    const mbps: number[] = [];
    const cpuPerGiB: number[] = [];
    for (let i = 0; i < cfg.runs; i++) {
      const c0 = relay ? sample(relay) : undefined;
      const t = await client.call<{ bytes: number; seconds: number }>('throughput', { kind, port, bytes: cfg.bytes });
      const c1 = relay ? sample(relay) : undefined;
      mbps.push(t.bytes / MB / t.seconds);
      if (c0 && c1) cpuPerGiB.push((c1.cpu - c0.cpu) / (t.bytes / GiB));
      await sleep(200);
    }
    r.mbpsRuns = mbps;
    r.cpuRuns = cpuPerGiB;
    r.mbps = median(mbps);
    if (cpuPerGiB.length) r.cpuPerGiB = median(cpuPerGiB);
  });
}

async function burstTests(cfg: Config): Promise<void> {
  await targets.call('config', { burstBytes: cfg.burstBytes });
  await each(cfg, 'close-after-burst', ports.burst, async (col, kind, port) => {
    const b = await client.call<{ received: number[]; endings: string[] }>('burst', {
      kind,
      port,
      runs: cfg.bursts,
      expected: cfg.burstBytes,
      timeoutMs: 10_000,
      pauseMs: BURST_PAUSE_MS,
    });
    const r = results[col];
    r.burstRuns = b.received.length;
    r.burstLost = b.received.reduce((sum, got) => sum + Math.max(0, cfg.burstBytes - got), 0);
    r.burstRunsLost = b.received.filter((got) => got < cfg.burstBytes).length;
    r.burstLostPaused = b.received.filter((got, i) => i % 2 === 1 && got < cfg.burstBytes).length;
    const endings = new Map<string, number>();
    for (const e of b.endings) endings.set(e, (endings.get(e) ?? 0) + 1);
    r.burstEndings = [...endings].map(([e, n]) => `${e} ×${n}`);
  });
}

async function stallTests(cfg: Config): Promise<void> {
  await each(
    cfg,
    'stalled browser',
    ports.stall,
    async (col, kind, port, relay) => {
      if (!relay) return;
      await sleep(300);
      await client.call('stall-open', { kind, port });
      const connectBy = Date.now() + 5000;
      while (!(await targets.call<{ connected: boolean }>('stall-stats')).connected) {
        if (Date.now() > connectBy) throw new Error('relay never connected to the stall target');
        await sleep(50);
      }
      await sleep(500);
      const base = sample(relay);
      let maxRss = base.rss;
      await targets.call('stall-go', { cap: cfg.stallCap });
      const t0 = performance.now();
      let offered = 0;
      let doneAt = 0;
      try {
        while (performance.now() - t0 < cfg.stallMs) {
          await sleep(200);
          const s = sample(relay);
          maxRss = Math.max(maxRss, s.rss);
          const st = await targets.call<{ offered: number; done: boolean }>('stall-stats');
          offered = st.offered;
          if (maxRss - base.rss > cfg.stallGrowthLimit) break;
          if (st.done) {
            doneAt ||= performance.now();
            // Everything offered: give the relay a second to take in what the kernel holds.
            if (performance.now() - doneAt > 1000) break;
          }
        }
      } finally {
        await targets.call('stall-stop');
        await client.call('stall-close');
      }
      const r = results[col];
      r.stallGrowth = maxRss - base.rss;
      r.stallOffered = offered;
      r.stallSeconds = (performance.now() - t0) / 1000;
    },
    ['websockify', ...OURS],
  );
}

// ---- report -------------------------------------------------------------------------------

function sh(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function environment(): string[] {
  const load = os.loadavg()[0]!;
  const busy =
    load > 1
      ? [`- **The machine was busy at the start (load average ${load.toFixed(2)}): treat the numbers as indicative only.**`]
      : [];
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const wsVersion = !existsSync(WEBSOCKIFY)
    ? 'not installed'
    : (sh('dpkg-query', ['-W', '-f', '${Version}', 'websockify']) ??
      sh('python3', ['-c', 'import importlib.metadata as m; print(m.version("websockify"))']) ??
      'unknown version');
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Node ${process.version}; websockify ${wsVersion} (${WEBSOCKIFY}, Python ${sh('python3', ['-c', 'import sys; print(sys.version.split()[0])']) ?? '?'})`,
    `- CPU: ${cpu}, ${os.cpus().length} cores; Linux ${os.release()}; load average at start ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    ...busy,
  ];
}

type Fmt = (v: number) => string;
const f0: Fmt = (v) => v.toFixed(0);
const f3: Fmt = (v) => v.toFixed(3);
const mb: Fmt = (v) => (v / MB).toFixed(1);

interface Row {
  label: string;
  get: (r: ColumnResult) => number | undefined;
  fmt: Fmt;
  target: string;
  /** pass/fail from ours and websockify; undefined = no target */
  check?: (ours: number, ws: number | undefined) => boolean | undefined;
  /** Shown instead of a number, e.g. for metrics that do not apply. */
  text?: (col: Column, r: ColumnResult) => string | undefined;
}

const ROWS: Row[] = [
  {
    label: 'Downstream throughput (MB/s)',
    get: (r) => r.mbps,
    fmt: f0,
    target: '≥ 1× websockify',
    check: (o, w) => (w === undefined ? undefined : o >= w),
  },
  {
    label: 'Relay CPU per GiB relayed (CPU s/GiB)',
    get: (r) => r.cpuPerGiB,
    fmt: f3,
    target: '≤ 0.8× websockify',
    check: (o, w) => (w === undefined ? undefined : o <= 0.8 * w),
  },
  { label: 'Round trip p50, 64 B (ms)', get: (r) => r.p50, fmt: f3, target: '—' },
  {
    label: 'Round trip p99, 64 B (ms)',
    get: (r) => r.p99,
    fmt: f3,
    target: '≤ websockify',
    check: (o, w) => (w === undefined ? undefined : o <= w),
  },
  { label: 'Round trip p99.9, 64 B (ms)', get: (r) => r.p999, fmt: f3, target: '—' },
  {
    label: 'Round trips/s, 100 sessions',
    get: (r) => r.rtps,
    fmt: f0,
    target: '≥ 5× websockify',
    check: (o, w) => (w === undefined ? undefined : o >= 5 * w),
  },
  {
    label: 'Relay CPU per round trip, 100 sessions (µs)',
    get: (r) => (r.cpuLoad !== undefined && r.rtps ? (r.cpuLoad / r.rtps) * 1e6 : undefined),
    fmt: (v) => v.toFixed(1),
    target: '—',
  },
  {
    label: 'of it in the kernel (reads, writes, wake-ups; µs)',
    get: (r) => (r.kernelLoad !== undefined && r.rtps ? (r.kernelLoad / r.rtps) * 1e6 : undefined),
    fmt: (v) => v.toFixed(1),
    target: '—',
  },
  { label: 'Relay RSS idle (MB)', get: (r) => r.rssIdle, fmt: mb, target: '—' },
  {
    label: 'Relay RSS, 100 sessions under load (MB)',
    get: (r) => r.rssLoad,
    fmt: mb,
    target: '< 75 MB',
    check: (o) => o < 75 * MB,
  },
  {
    label: 'RSS growth, stalled browser (MB)',
    get: (r) => r.stallGrowth,
    fmt: mb,
    target: '≤ 8 MB',
    check: (o) => o <= 8 * MB,
    text: (col, r) =>
      col !== 'tcp' && r.stallGrowth !== undefined && r.stallOffered !== undefined
        ? `${mb(r.stallGrowth)} (of ${mb(r.stallOffered)} offered)`
        : undefined,
  },
  {
    label: 'Bytes lost, close after burst',
    get: (r) => r.burstLost,
    fmt: f0,
    target: '0',
    check: (o) => o === 0,
    text: (_col, r) =>
      r.burstLost !== undefined ? `${r.burstLost} (${r.burstRunsLost}/${r.burstRuns} runs)` : undefined,
  },
];

function table(cfg: Config): string[] {
  const head = ['Metric', 'plain TCP', 'websockify', 'ours', 'ours-snap', 'ours/websockify', 'ours-snap/websockify', 'target', 'pass (ours, ours-snap)'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_h, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
  for (const row of ROWS) {
    const cell = (col: Column): string => {
      if (!cfg.columns.includes(col)) return 'skipped';
      const r = final[col];
      const shown = row.text?.(col, r);
      if (shown !== undefined) return shown;
      const v = row.get(r);
      return v === undefined ? '—' : row.fmt(v);
    };
    // Each ratio is taken within one round (the same machine state), then the median of those.
    const ratio = (col: RelayName): string => {
      const per = rounds
        .map((r) => [row.get(r[col]), row.get(r.websockify)] as const)
        .filter((p): p is readonly [number, number] => p[0] !== undefined && p[1] !== undefined)
        .map(([o, w]) => (w === 0 ? (o === 0 ? 1 : Number.POSITIVE_INFINITY) : o / w));
      if (!per.length) return '—';
      const m = median(per);
      return Number.isFinite(m) ? `${m.toFixed(2)}×` : '∞';
    };
    const verdict = (col: RelayName): string => {
      const o = row.get(final[col]);
      const v = row.check && o !== undefined ? row.check(o, row.get(final.websockify)) : undefined;
      return v === undefined ? (row.check ? 'n/a' : '') : v ? '✅' : '❌';
    };
    const pass = row.check ? OURS.map(verdict).join(' ') : '';
    lines.push(
      `| ${row.label} | ${cell('tcp')} | ${cell('websockify')} | ${cell('ours')} | ${cell('ours-snap')} | ${ratio('ours')} | ${ratio('ours-snap')} | ${row.target} | ${pass} |`,
    );
  }
  return lines;
}

function details(cfg: Config): string[] {
  const pct = (v: number | undefined): string => (v === undefined ? '—' : `${(v * 100).toFixed(0)}%`);
  const out: string[] = [];
  for (const col of cfg.columns) {
    const r = final[col];
    const bits: string[] = [];
    if (rounds.length > 1 && rounds.some((x) => x[col].p99 !== undefined)) {
      bits.push(`round trip p99 by round ${rounds.map((x) => (x[col].p99 === undefined ? '—' : f3(x[col].p99))).join(', ')} ms`);
    }
    if (r.mbpsRuns) bits.push(`downstream runs ${r.mbpsRuns.map(f0).join(', ')} MB/s`);
    if (r.cpuRuns?.length) bits.push(`CPU ${r.cpuRuns.map(f3).join(', ')} s/GiB`);
    if (r.p999 !== undefined) bits.push(`round trip p99.9 ${f3(r.p999)} ms`);
    if (r.cpuLoad !== undefined) bits.push(`relay CPU under load ${pct(r.cpuLoad)} of a core`);
    if (r.procsLoad !== undefined) bits.push(`${r.procsLoad} process(es) under load`);
    if (r.pssLoad !== undefined) bits.push(`PSS under load ${mb(r.pssLoad)} MB`);
    if (r.clientCpuLoad !== undefined) bits.push(`load generator ${pct(r.clientCpuLoad)}, targets ${pct(r.targetCpuLoad)} of a core`);
    if (r.stallSeconds !== undefined) bits.push(`stall test ran ${r.stallSeconds.toFixed(1)} s`);
    if (r.burstEndings) {
      bits.push(
        `close after burst: ${r.burstRunsLost ?? 0} run(s) lost data, ${r.burstLostPaused ?? 0} of them with the ${BURST_PAUSE_MS} ms reading pause; endings: ${r.burstEndings.join(', ')}`,
      );
    }
    for (const e of r.error ?? []) bits.push(`**error** ${e}`);
    out.push(`- **${col}**: ${bits.join('; ')}`);
  }
  // The harness must not be the limit: straight TCP through the same client and targets has to be
  // well ahead of the best relay.
  const checks: [string, (r: ColumnResult) => number | undefined][] = [
    ['downstream', (r) => r.mbps],
    ['round trips/s', (r) => r.rtps],
  ];
  for (const [what, get] of checks) {
    const tcp = get(final.tcp);
    const best = Math.max(...(['websockify', ...OURS] as const).map((c) => get(final[c]) ?? 0));
    if (tcp === undefined || best === 0) continue;
    const ahead = tcp / best;
    out.push(
      `- Harness check, ${what}: plain TCP is ${ahead.toFixed(1)}× the best relay` +
        (ahead < 1.5
          ? ' — **too close: the client or targets may be the limit, numbers are suspect**'
          : ' (the client and targets are not the limit by themselves; they share the cores with the relay)'),
    );
  }
  out.push(...ceilingLines());
  return out;
}

/**
 * What the round trips/s with many sessions can reach on this machine at all. Every relay makes
 * the same socket calls per round trip (a read and a write each way); the kernel time they take
 * (the relay's system time) and the client's and targets' CPU per round trip are fixed costs on
 * the same cores. A relay with no user-space cost at all would still pay them:
 * ceiling = cores / (harness CPU + relay kernel CPU per round trip).
 */
function ceilingLines(): string[] {
  const out: string[] = [];
  const cores = os.cpus().length;
  const ws = final.websockify.rtps;
  for (const col of OURS) {
    const r = final[col];
    if (!r.rtps || r.kernelLoad === undefined || r.clientCpuLoad === undefined || r.targetCpuLoad === undefined) continue;
    const harness = (r.clientCpuLoad + r.targetCpuLoad) / r.rtps;
    const kernel = r.kernelLoad / r.rtps;
    const ceiling = cores / (harness + kernel);
    out.push(
      `- Round trips/s ceiling (${col}): client and targets ${(harness * 1e6).toFixed(1)} µs of CPU per round trip, the relay's kernel time ${(kernel * 1e6).toFixed(1)} µs; ` +
        `on ${cores} cores a relay with no user-space cost would reach at most ${ceiling.toFixed(0)}/s` +
        (ws ? ` = ${(ceiling / ws).toFixed(2)}× websockify (${col} reached ${(r.rtps / ws).toFixed(2)}×)` : ''),
    );
  }
  return out;
}

function report(cfg: Config, env: string[], seconds: number): string {
  const gib = (n: number): string => (n >= GiB ? `${(n / GiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(0)} MiB`);
  return [
    '# Relay benchmark: plain TCP vs websockify vs ours',
    '',
    `Written by \`npm run bench${cfg.quick ? ' -- --quick' : ''}\` (bench/bench.ts); overwritten on each run. ${cfg.rounds} round(s); each number is the median over the rounds, each ratio the median of the ratios within a round. Took ${seconds.toFixed(0)} s.`,
    '',
    ...env,
    '',
    ...table(cfg),
    '',
    '## Details',
    '',
    ...details(cfg),
    '',
    '## How it was measured',
    '',
    `- Same client for all columns (bench/client.ts, its own process): plain TCP straight to the target, WebSocket (subprotocol \`binary\`, masked client frames) to the relay. The TCP targets (bench/targets.ts) are another process; each relay runs in processes of its own, started fresh for each test: websockify as \`websockify 127.0.0.1:PORT 127.0.0.1:TARGET\`, ours as \`node build/src/cli.js relay --listen 127.0.0.1:0 --target 127.0.0.1:TARGET\` (defaults: 256 KiB high-water mark, heartbeat 20 s, info logging) with Node's default flags; ours-snap the same with the snap daemon's Node flags and environment read from snap/snapcraft.yaml: ${snapDescription()}.`,
    `- Downstream: the target writes ${gib(cfg.bytes)} as fast as the socket takes it to one session; MB/s = bytes / wall time from the 101 response to the last byte (MB = 10^6 bytes); median of ${cfg.runs} run(s), after one untimed warm-up transfer of ${gib(Math.min(256 * MiB, Math.ceil(cfg.bytes / 4)))} on the same relay.`,
    `- Relay CPU = utime+stime from /proc/PID/stat, ticks of 1/${CLK_TCK} s. websockify forks one process per connection, so its CPU is the whole process tree: the listener's utime+stime+cutime+cstime (reaped children land in cutime/cstime) plus utime+stime+cutime+cstime of every live or zombie descendant found by scanning /proc; a snapshot is retaken if a child was reaped while it was taken. CPU s/GiB = CPU delta over a downstream run / GiB moved (median of runs). The kernel share is stime (+cstime) alone: the system calls every relay makes the same way (a read and a write per message each way, the wake-ups of the other side), which no relay code can avoid.`,
    `- Round trip: one session, ${cfg.msgSize}-byte messages to an echo target, one at a time, ${cfg.warmup} warm-up round trips on the same connection, then ${cfg.samples} timed; p50/p99/p99.9 by nearest rank.`,
    `- Round trips/s: ${cfg.sessions} sessions opened (10 at a time) to the echo target, ${cfg.loadWarmup} untimed round trips on each, then each doing sequential ${cfg.msgSize}-byte round trips for ${(cfg.loadMs / 1000).toFixed(0)} s; total completed / time.`,
    '- RSS: field 24 of /proc/PID/stat × page size. For websockify the **sum over its processes** (the listener and one fork per session): that is its real footprint, though forks share some pages copy-on-write (PSS, which splits shared pages, is under Details). "Idle" is 1 s after the relay started, no session; "under load" the largest 200 ms sample during the round-trips/s test.',
    `- Stalled browser: one session whose client stops reading right after the handshake; the target then writes as fast as it is let, up to ${gib(cfg.stallCap)} offered (handed to the kernel) or ${(cfg.stallMs / 1000).toFixed(0)} s, stopping early once the relay grew by 1 GiB. Growth = largest RSS sample − RSS with the session open just before the flood. websockify 0.10 queues without limit while the browser socket is not writable, then blocks in a blocking send() once it is handed its queue, so its growth is whatever it read before that: it varies a lot from run to run.`,
    `- Close after burst: the target writes ${(cfg.burstBytes / 1024).toFixed(0)} KiB (about one full-screen raw update: 1920×1080×4 B is 8.3 MB) and closes at once (data, then FIN); ${cfg.bursts} sessions one after another, every other one with a browser that starts reading only ${BURST_PAUSE_MS} ms after the handshake (busy tab), so the relay still holds data when the FIN comes; lost = bytes expected − bytes received before the close frame / end.`,
    '- Nothing is pinned to a core: the relay shares the machine with the client, the targets and whatever else runs (see the load average above), so numbers are only as quiet as the machine. The plain TCP column shows the harness limit; the load generator and target CPU shares under Details show whether they, not the relay, were the bottleneck. Relay CPU per round trip depends less on other load than round trips/s does.',
    '',
  ].join('\n');
}

// ---- main ---------------------------------------------------------------------------------

/** How the ours-snap column runs, for the report. */
function snapDescription(): string {
  try {
    const snap = snapNode();
    const env = Object.entries(snap.env).map(([k, v]) => `${k}=${v}`).join(' ');
    const version = sh(snap.node, ['--version']) ?? '?';
    return `\`${env} ${snap.node === process.execPath ? 'node' : snap.node} ${snap.args.join(' ')}\` (Node ${version})`;
  } catch (err) {
    return `not readable: ${(err as Error).message}`;
  }
}

function cleanup(): void {
  killAll();
  client?.kill();
  targets?.kill();
}

async function main(): Promise<number> {
  const cfg = config();
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping all benchmark processes\n`);
      cleanup();
      process.exit(130);
    });
  }
  if (cfg.columns.includes('websockify') && !existsSync(WEBSOCKIFY)) {
    process.stderr.write(`${WEBSOCKIFY} not found (apt-get install websockify): skipping that column\n`);
    cfg.columns = cfg.columns.filter((c) => c !== 'websockify');
  }
  const env = environment();
  const started = performance.now();
  log(`relay benchmark${cfg.quick ? ' (quick)' : ''}: ${cfg.columns.join(', ')}`);
  targets = new Child(path.join(here, 'targets.js'));
  client = new Child(CLIENT_JS);
  ports = (await targets.call('ports')) as unknown as typeof ports;

  for (let round = 1; round <= cfg.rounds; round++) {
    if (cfg.rounds > 1) log(`round ${round} of ${cfg.rounds}`);
    results = emptyResults();
    rounds.push(results);
    if (cfg.tests.includes('echo')) await echoTests(cfg);
    if (cfg.tests.includes('downstream')) await throughputTests(cfg);
    if (cfg.tests.includes('burst')) await burstTests(cfg);
    if (cfg.tests.includes('stall')) await stallTests(cfg);
  }
  final = combine(rounds);

  const text = report(cfg, env, (performance.now() - started) / 1000);
  writeFileSync(cfg.out, text);
  log('');
  log(text);
  log(`written to ${path.relative(process.cwd(), cfg.out) || cfg.out}`);
  cleanup();
  // Missed targets are reported, not failures; a test that could not run is.
  return cfg.columns.some((c) => final[c].error?.length) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    cleanup();
    process.exit(1);
  },
);
