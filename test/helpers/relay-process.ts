/**
 * @module
 * Runs the compiled CLI (`build/src/cli.js`) as a child process: `spawnRelay` starts
 * `ctrlx-novnc relay …` and waits for its `listening` log line; `runCli` runs a command to its exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { wsUrl } from './ws-client.js';

/** The compiled CLI, next to the compiled tests: build/test/helpers → build/src/cli.js. */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RelayProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  url: string;
  /** Complete stdout/stderr lines so far. */
  stdout: string[];
  stderr: string[];
  exited: Promise<Exit>;
  /** Resolves with the first stdout line (past or future) matching `re`. */
  waitForLine(re: RegExp): Promise<string>;
  /** Resident set size in KiB, from /proc/<pid>/status (VmRSS). */
  rssKiB(): Promise<number>;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

/** The environment for a CLI child: no test-runner or snap variables, info logging. */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
  delete env.INVOCATION_ID;
  delete env.JOURNAL_STREAM; // a run under systemd: the child's lines stay unprefixed
  delete env.NODE_TEST_CONTEXT; // the child is not a test file
  delete env.NODE_OPTIONS;
  for (const key of ['SNAP', 'SNAP_DATA', 'SNAP_COMMON', 'CTRLX_IDM_URL']) delete env[key];
  return env;
}

/** Collects `stream` line by line into `into`, calling `onLine` for each. */
export function splitLines(stream: NodeJS.ReadableStream, into: string[], onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf('\n')) !== -1) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      into.push(line);
      onLine(line);
    }
  });
}

/** Starts `cli.js relay --listen 127.0.0.1:0 --target …` plus `args`; resolves once it listens. */
export async function spawnRelay(target: string, args: string[] = []): Promise<RelayProcess> {
  const child = spawn(process.execPath, [CLI, 'relay', '--listen', '127.0.0.1:0', '--target', target, ...args], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const watchers: { re: RegExp; resolve: (line: string) => void }[] = [];
  splitLines(child.stdout!, stdout, (line) => {
    for (const w of [...watchers]) {
      if (w.re.test(line)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  splitLines(child.stderr!, stderr, () => {});
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const waitForLine = (re: RegExp): Promise<string> => {
    const seen = stdout.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => watchers.push({ re, resolve }));
  };
  const listening = await Promise.race([
    waitForLine(/ relay: listening /),
    exited.then((e) => {
      throw new Error(`relay exited (${e.code ?? e.signal}) before listening: ${stderr.join('\n')}`);
    }),
  ]);
  const port = Number(/ listen=127\.0\.0\.1:(\d+)/.exec(listening)?.[1]);
  const pid = child.pid!;
  return {
    child,
    pid,
    port,
    url: wsUrl(port),
    stdout,
    stderr,
    exited,
    waitForLine,
    rssKiB: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
      if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
      return Number(m[1]);
    },
    stop: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `cli.js …args` to its exit. */
export function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
