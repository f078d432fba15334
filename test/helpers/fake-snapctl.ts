/**
 * @module
 * A fake `snapctl` for tests: a shell script that records each call (its arguments, one line per
 * call, tab-separated) and succeeds, or fails with `fail` set. Put its folder first on PATH.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface FakeSnapctl {
  /** The folder holding `snapctl` (put it first on PATH). */
  dir: string;
  /** The script itself. */
  command: string;
  /** The calls so far, each as its argument list. */
  calls(): string[][];
}

/** Writes `dir/snapctl`, recording into `dir/snapctl.calls`. */
export function fakeSnapctl(dir: string, options: { fail?: boolean } = {}): FakeSnapctl {
  fs.mkdirSync(dir, { recursive: true });
  const command = path.join(dir, 'snapctl');
  const record = path.join(dir, 'snapctl.calls');
  const quoted = `'${record.replace(/'/g, `'\\''`)}'`;
  fs.writeFileSync(
    command,
    [
      '#!/bin/sh',
      `for a in "$@"; do printf '%s\\t' "$a"; done >> ${quoted}`,
      `printf '\\n' >> ${quoted}`,
      options.fail ? 'echo "error: cannot communicate with server" >&2; exit 1' : 'exit 0',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return {
    dir,
    command,
    calls: () =>
      fs.existsSync(record)
        ? fs
            .readFileSync(record, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => line.replace(/\t$/, '').split('\t'))
        : [],
  };
}
