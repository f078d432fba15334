/**
 * @module
 * The compiled CLI (`build/src/cli.js`) as a child process: the one way the tests start it.
 * `spawnCli` starts any command and collects its output line by line; `spawnServe` and
 * `spawnRelay` start `serve` / `relay` and resolve once it logged where it listens; `runCli` runs
 * a command to its exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { rssKiB } from './proc.js';
import { wsUrl } from './ws-client.js';

/** The compiled CLI, next to the compiled tests: build/test/helpers → build/src/cli.js. */
export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The environment for a CLI child: no test-runner or snap variables, info logging, plus `extra`. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info' };
  delete env.INVOCATION_ID;
  delete env.JOURNAL_STREAM; // a run under systemd: the child's lines stay unprefixed
  delete env.NODE_TEST_CONTEXT; // the child is not a test file
  delete env.NODE_OPTIONS;
  for (const key of ['SNAP', 'SNAP_DATA', 'SNAP_COMMON', 'CTRLX_IDM_URL', 'CTRLX_NOVNC_LOGIN_CHECK_MS']) delete env[key];
  return { ...env, ...extra };
}

/** Collects `stream` line by line into `into`, calling `onLine` for each. */
export function splitLines(stream: NodeJS.ReadableStream, into: string[], onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    rest += chunk;
    for (let nl = rest.indexOf('\n'); nl !== -1; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      into.push(line);
      onLine(line);
    }
  });
  stream.on('end', () => {
    if (rest === '') return;
    into.push(rest); // a last line without a newline
    onLine(rest);
  });
}

export interface SpawnCliOptions {
  /** The whole environment (default {@link childEnv}()). */
  env?: NodeJS.ProcessEnv;
  /**
   * A command that ends by exec'ing its arguments, put in front of `node cli.js …`, e.g.
   * `['unshare', '-rm', 'sh', '-ec', 'mount …; exec "$@"', 'sh']`; the app keeps the child's pid.
   */
  wrapper?: string[];
  /** Flags for node itself, e.g. the snap's `--no-opt --optimize-for-size`. */
  nodeArgs?: string[];
}

export interface CliProcess {
  child: ChildProcess;
  /** The app's process id (also when started through a wrapper that execs it, such as `unshare`). */
  pid: number;
  /** Complete stdout/stderr lines so far. */
  stdout: string[];
  stderr: string[];
  exited: Promise<Exit>;
  /**
   * Resolves with the first stdout line (past or future) matching `re`; rejects, with the output,
   * if the process exits before one came.
   */
  waitForLine(re: RegExp): Promise<string>;
  /** Sends `signal` (default SIGTERM) unless the process ended, and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

/** Starts `node cli.js <args>` with its output collected line by line. */
export function spawnCli(args: string[], options: SpawnCliOptions = {}): CliProcess {
  const { env = childEnv(), wrapper = [], nodeArgs = [] } = options;
  const command = [...wrapper, process.execPath, ...nodeArgs, CLI, ...args];
  const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const output = (): string => `${stdout.join('\n')}\n${stderr.join('\n')}`;
  const waitForLine = (re: RegExp): Promise<string> => {
    const seen = stdout.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return Promise.race([
      new Promise<string>((resolve) => watchers.push({ re, resolve })),
      exited.then((e) => {
        // Lines written just before the exit may be the ones asked for.
        const late = stdout.find((l) => re.test(l));
        if (late !== undefined) return late;
        throw new Error(`${args[0] ?? 'cli.js'} exited (${e.code ?? e.signal}) before printing ${re}\n${output()}`);
      }),
    ]);
  };
  return {
    child,
    pid: child.pid!,
    stdout,
    stderr,
    exited,
    waitForLine,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits for `line`, killing `p` and failing with its output if it does not come within `timeoutMs`. */
async function lineWithin(p: CliProcess, line: RegExp, timeoutMs: number, what: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${what} did not listen within ${timeoutMs} ms\n${p.stdout.join('\n')}\n${p.stderr.join('\n')}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.waitForLine(line), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface ServeProcess extends CliProcess {
  /** What the `listening` line reported: `127.0.0.1:PORT` or the socket path. */
  address: string;
  /** The TCP port, when listening on TCP. */
  port: number | undefined;
}

export interface SpawnServeOptions extends SpawnCliOptions {
  /** Give up (SIGKILL, reject with the output) when it does not listen within this (default 20 000 ms). */
  timeoutMs?: number;
}

/**
 * Starts `cli.js serve <args>` and resolves once it logged `listening address=…`; rejects (with
 * its output) if it exits first or does not listen within `timeoutMs`.
 */
export async function spawnServe(args: string[], options: SpawnServeOptions = {}): Promise<ServeProcess> {
  const p = spawnCli(['serve', ...args], options);
  const line = await lineWithin(p, /\blistening address=(\S+)/, options.timeoutMs ?? 20_000, 'serve');
  const address = /\blistening address=(\S+)/.exec(line)![1]!.replace(/^"|"$/g, '');
  const port = /:(\d+)$/.exec(address);
  return { ...p, address, port: port && !address.startsWith('/') ? Number(port[1]) : undefined };
}

export interface RelayProcess extends CliProcess {
  port: number;
  url: string;
  /** Resident set size in KiB (VmRSS from /proc/<pid>/status). */
  rssKiB(): Promise<number>;
}

/** Starts `cli.js relay --listen 127.0.0.1:0 --target …` plus `args`; resolves once it listens. */
export async function spawnRelay(target: string, args: string[] = []): Promise<RelayProcess> {
  const p = spawnCli(['relay', '--listen', '127.0.0.1:0', '--target', target, ...args]);
  const line = await lineWithin(p, / relay: listening /, 20_000, 'relay');
  const port = Number(/ listen=127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
  return { ...p, port, url: wsUrl(port), rssKiB: async () => rssKiB(p.pid) };
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `cli.js …args` to its exit. */
export async function runCli(args: string[], options: SpawnCliOptions = {}): Promise<CliResult> {
  const p = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  p.child.stdout!.on('data', (d: string) => (stdout += d));
  p.child.stderr!.on('data', (d: string) => (stderr += d));
  // 'close' (not 'exit'): the output is complete.
  const exit = await new Promise<Exit>((resolve, reject) => {
    p.child.once('error', reject);
    p.child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { ...exit, stdout, stderr };
}
