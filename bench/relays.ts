/**
 * @module
 * Starting and stopping the relays under test. They stay in the benchmark's process group, so a
 * Ctrl-C or a kill of the whole group takes them (and websockify's forks) along; stopping one
 * signals its root and then every descendant found in /proc. Every relay started is remembered
 * and killed, tree and all, by {@link killAll} (on exit, error and signals).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { descendants, isListening } from './proc.js';
import { freePort } from '../test/helpers/targets.js';

/** `ours-snap`: our relay with the snap daemon's Node flags and environment (snap/snapcraft.yaml). */
export type RelayName = 'websockify' | 'ours' | 'ours-snap';

export interface RelayProc {
  name: RelayName;
  /** The root process: websockify's listener, or our node process. */
  pid: number;
  /** Where it accepts WebSocket connections on 127.0.0.1. */
  port: number;
  /** Whether its footprint is a process tree (websockify forks per session). */
  tree: boolean;
  /** Last lines it printed, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export const WEBSOCKIFY = process.env.BENCH_WEBSOCKIFY ?? '/usr/bin/websockify';
const here = path.dirname(fileURLToPath(import.meta.url));
/** build/bench/ -> build/src/cli.js; BENCH_OURS_CLI points elsewhere, e.g. to a patched build. */
export const OUR_CLI = process.env.BENCH_OURS_CLI ?? path.resolve(here, '..', 'src', 'cli.js');

/** The repository: build/bench -> ../.. */
const ROOT = path.resolve(here, '..', '..');

export interface SnapNode {
  /** The Node binary: BENCH_SNAP_NODE (e.g. the snap's Node 24), else the one running the bench. */
  node: string;
  /** The flags between `bin/node` and the script in the daemon's `command`. */
  args: string[];
  /** The daemon's `environment` (NODE_OPTIONS, malloc settings, NODE_ENV). */
  env: Record<string, string>;
}

/** The snap daemon's Node flags and environment, read from snap/snapcraft.yaml (apps.web). */
export function snapNode(file = path.join(ROOT, 'snap', 'snapcraft.yaml')): SnapNode {
  const web = parseYaml(readFileSync(file, 'utf8')).apps.web as { command: string; environment?: Record<string, unknown> };
  const words = String(web.command).trim().split(/\s+/);
  const script = words.findIndex((w) => w.endsWith('cli.js'));
  if (!/(^|\/)node$/.test(words[0] ?? '') || script < 1) throw new Error(`snapcraft.yaml: unexpected daemon command "${web.command}"`);
  const env = Object.fromEntries(Object.entries(web.environment ?? {}).map(([k, v]) => [k, String(v)]));
  return { node: process.env.BENCH_SNAP_NODE ?? process.execPath, args: words.slice(1, script), env };
}

const roots = new Set<number>();

/** Sends `signal` to `root` and all its descendants (children first found, then the root). */
function signalTree(root: number, signal: NodeJS.Signals): void {
  let pids: number[] = [];
  try {
    pids = descendants(root).map((d) => d.pid);
  } catch {
    // /proc unreadable: the root at least
  }
  for (const pid of [root, ...pids]) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs every relay started here that may still be alive, with its descendants. Synchronous. */
export function killAll(): void {
  for (const root of roots) signalTree(root, 'SIGKILL');
  roots.clear();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function launch(name: RelayName, cmd: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  roots.add(child.pid);
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
  return { child, output: () => tail };
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    const pid = child.pid!;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    // Forks are listed before the root goes: once it exits they are re-parented and lost to us.
    const forks = descendants(pid).map((d) => d.pid);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
    await Promise.race([exited, sleep(3000)]);
    // Whatever is left (a stuck root, forks that outlived it) goes now.
    signalTree(pid, 'SIGKILL');
    for (const fork of forks) {
      try {
        process.kill(fork, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await Promise.race([exited, sleep(1000)]);
    roots.delete(pid);
  };
}

/** `websockify 127.0.0.1:PORT 127.0.0.1:TARGET`, ready once its port is in LISTEN state. */
export async function startWebsockify(target: number): Promise<RelayProc> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const { child, output } = launch('websockify', WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${target}`]);
    const stop = stopper(child);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && child.exitCode === null && !isListening(port)) await sleep(25);
    if (child.exitCode === null && isListening(port)) {
      return { name: 'websockify', pid: child.pid!, port, tree: true, output, stop };
    }
    await stop();
    if (attempt >= 2) throw new Error(`websockify did not start listening:\n${output()}`);
  }
}

/**
 * `node build/src/cli.js relay --listen 127.0.0.1:0 --target 127.0.0.1:TARGET`; port from its
 * `listening` line. `ours-snap`: with the snap daemon's node, flags and environment.
 */
export async function startOurs(target: number, name: 'ours' | 'ours-snap' = 'ours'): Promise<RelayProc> {
  // BENCH_OURS_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", to look inside our relay.
  const nodeArgs = (process.env.BENCH_OURS_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const snap = name === 'ours-snap' ? snapNode() : undefined;
  // The bench's own NODE_OPTIONS never reach the relay; the snap's replace them.
  const env: Record<string, string> = { NODE_OPTIONS: '', ...snap?.env };
  const { child, output } = launch(name, snap?.node ?? process.execPath, [
    ...(snap?.args ?? []),
    ...nodeArgs,
    OUR_CLI,
    'relay',
    '--listen',
    '127.0.0.1:0',
    '--target',
    `127.0.0.1:${target}`,
  ], env);
  const stop = stopper(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`our relay did not log "listening" in 15 s:\n${output()}`)), 15_000);
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      const m = /listening listen=127\.0\.0\.1:(\d+)/.exec(seen);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.removeListener('data', onData);
      resolve(Number(m[1]));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`our relay exited (code ${code}) before listening:\n${output()}`));
    });
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { name, pid: child.pid!, port, tree: false, output, stop };
}

export function startRelay(name: RelayName, target: number): Promise<RelayProc> {
  return name === 'websockify' ? startWebsockify(target) : startOurs(target, name);
}
