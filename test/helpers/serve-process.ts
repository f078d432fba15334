/**
 * @module
 * Runs `ctrlx-novnc serve` (the compiled CLI, `build/src/cli.js`) as a child process and waits for
 * its `listening address=…` log line, so tests can kill it, signal it or talk to it over TCP or
 * its unix socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv, splitLines } from './relay-process.js';

/** The compiled CLI: build/test/helpers → build/src/cli.js. */
export const SERVE_CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface ServeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServeProcess {
  child: ChildProcess;
  /** The app's process id (also when started through a wrapper that execs it, such as `unshare`). */
  pid: number;
  /** What the `listening` line reported: `127.0.0.1:PORT` or the socket path. */
  address: string;
  /** The TCP port, when listening on TCP. */
  port: number | undefined;
  stdout: string[];
  stderr: string[];
  exited: Promise<ServeExit>;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<ServeExit>;
}

/** The environment for a child: no test-runner variables, quiet unless asked. */
export function serveEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...childEnv(), ...extra };
}

export interface SpawnServeOptions {
  /**
   * A command that ends by exec'ing its arguments, put in front of `node cli.js serve …`, e.g.
   * `['unshare', '-rm', 'sh', '-ec', 'mount …; exec "$@"', 'sh']`; the app keeps the child's pid.
   */
  wrapper?: string[];
  /** Flags for node itself, e.g. the snap's `--no-opt --optimize-for-size`. */
  nodeArgs?: string[];
}

/**
 * Starts `cli.js serve <args>` and resolves once it logged `listening address=…`; rejects (with
 * its output) if it exits first or does not listen within `giveUpMs`.
 */
export function spawnServe(
  args: string[],
  env: NodeJS.ProcessEnv = serveEnv(),
  giveUpMs = 20_000,
  options: SpawnServeOptions = {},
): Promise<ServeProcess> {
  const { wrapper = [], nodeArgs = [] } = options;
  const command = [...wrapper, process.execPath, ...nodeArgs, SERVE_CLI, 'serve', ...args];
  const child = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<ServeExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not listen within ${giveUpMs} ms\n${stdout.join('\n')}\n${stderr.join('\n')}`));
    }, giveUpMs);
    const onLine = (line: string): void => {
      const m = /\blistening address=(\S+)/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const address = m[1]!.replace(/^"|"$/g, '');
      const port = /:(\d+)$/.exec(address);
      resolve({
        child,
        pid: child.pid!,
        address,
        port: port && !address.startsWith('/') ? Number(port[1]) : undefined,
        stdout,
        stderr,
        exited,
        stop: (signal: NodeJS.Signals = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    splitLines(child.stdout!, stdout, onLine);
    splitLines(child.stderr!, stderr, () => {});
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${e.code ?? e.signal}) before listening\n${stdout.join('\n')}\n${stderr.join('\n')}`));
    });
  });
}
