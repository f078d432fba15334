/**
 * @module
 * Reading a file of the configuration without trusting what is at its path: whoever can write the
 * active configuration (a ctrlX load, WebDAV) or the app's data can put there a huge file, a FIFO,
 * a folder or a symlink to a device such as /dev/zero.
 *
 * - Opened read-only and non-blocking (a FIFO never hangs the open or the read); a symlink is
 *   followed as before, but what it points at is checked like the file itself.
 * - Only a regular file is read (checked with fstat on the open descriptor, so nothing can be
 *   swapped in between the check and the read); anything else is refused without reading.
 * - Never more than `cap` bytes (default {@link READ_CAP}): a larger file is refused from its size,
 *   and a file that grows while it is read is refused once it passes the cap.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';

/** The most any configuration file may hold: 1 MiB (a config.json of 100 targets is about 20 KiB). */
export const READ_CAP = 1024 * 1024;

export type BoundedRead =
  | { kind: 'ok'; text: string }
  | { kind: 'missing' }
  /** Not read: `reason` says why, for people (no content of the file in it). */
  | { kind: 'refused'; reason: string; code: string };

/** What a non-regular file is, in words. */
function describeKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * Reads `file` as UTF-8 if it is a regular file of at most `cap` bytes; never blocks on what is at
 * the path and never reads more than `cap + 1` bytes.
 */
export async function readBounded(file: string, cap = READ_CAP): Promise<BoundedRead> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return { kind: 'missing' };
    return { kind: 'refused', code, reason: `cannot open it (${code})` };
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      return { kind: 'refused', code: 'ENOTREG', reason: `it is ${describeKind(st)}, not a regular file; only a regular file is read` };
    }
    if (st.size > cap) {
      return { kind: 'refused', code: 'EFBIG', reason: `it is too big (${mib(st.size)}; at most ${mib(cap)} is read)` };
    }
    // Room for what fstat said plus a little: a file that grows while it is read gets more room,
    // never beyond cap + 1 bytes (one more than allowed is how "too big" is seen).
    let buf = Buffer.alloc(Math.min(cap + 1, st.size + 4096));
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > cap) break;
        const bigger = Buffer.alloc(Math.min(cap + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > cap) return { kind: 'refused', code: 'EFBIG', reason: `it is too big (more than ${mib(cap)})` };
    return { kind: 'ok', text: buf.toString('utf8', 0, length) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { kind: 'refused', code, reason: `cannot read it (${code})` };
  } finally {
    await handle.close().catch(() => {});
  }
}
