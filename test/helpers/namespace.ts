/**
 * @module
 * Real file-system faults without touching the host: a child runs in its own user and mount
 * namespace (`unshare -rm`), where a setup script may mount a tiny tmpfs (fills up: ENOSPC) or a
 * bind mount (disappears: the snap's content plug disconnected) before it execs the app. The
 * test then changes those mounts from outside with `nsenter` (remount read-only, unmount, mount
 * again) and reads the files as the child sees them through `/proc/<pid>/root`. Every mount
 * lives only in the child's namespace and vanishes with it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Runs `command` to its end; rejects with its stderr on failure. */
function exec(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: 10_000 }, (err, stdout, stderr) => {
      const why = stderr.trim().split('\n')[0] || String((err as NodeJS.ErrnoException | null)?.code ?? err?.message);
      if (err) reject(new Error(`${command}: ${why}`));
      else resolve(stdout);
    });
  });
}

let checked: Promise<string | null> | undefined;

/**
 * Why user+mount namespaces cannot be used here (no `unshare`, no `nsenter`, or the kernel or a
 * container forbids them), or null when they can: a tmpfs is mounted, remounted read-only and
 * seen from outside, as the tests will do.
 */
export function namespacesUnavailable(): Promise<string | null> {
  checked ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-ns-check-'));
    try {
      await exec('unshare', ['-rm', 'sh', '-ec', 'mount -t tmpfs -o size=16k tmpfs "$1"; echo x > "$1/f"; mount -o remount,ro "$1"; ! echo y 2>/dev/null > "$1/f"', 'sh', dir]);
      await exec('nsenter', ['--version']);
      return null;
    } catch (err) {
      return `user and mount namespaces are not available here (${(err as Error).message})`;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })();
  return checked;
}

/**
 * The command prefix that runs `setup` (POSIX sh, `set -e`) in a fresh user+mount namespace and
 * then execs the rest of the command line (so the app keeps the pid). Pass values to `setup` in
 * the environment, not by splicing them into the script.
 */
export function unshareWrapper(setup: string): string[] {
  return ['unshare', '-rm', 'sh', '-ec', `${setup}\nexec "$@"`, 'sh'];
}

/** Runs `command` in the mount namespace of `pid`, e.g. `['mount', '-o', 'remount,ro', dir]`. */
export async function inMountNamespace(pid: number, command: string[]): Promise<void> {
  // Root on the host may enter the mount namespace directly; anyone else goes through the
  // child's user namespace, where they are root.
  const join = process.getuid?.() === 0 ? ['-m'] : ['-U', '-m', '--preserve-credentials'];
  await exec('nsenter', ['-t', String(pid), ...join, '--', ...command]);
}

/** `file` as process `pid` sees it (through its mount namespace). */
export function seenBy(pid: number, file: string): string {
  return path.join(`/proc/${pid}/root`, file);
}
