/**
 * @module
 * Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it
 * over the target, fsync the directory. After a crash or power loss the target holds either the
 * old or the new content, never a mix; a failed write (ENOSPC, EROFS) leaves the old file intact.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

const TMP_SUFFIX = '.tmp';

/** The temporary name used for `file`: hidden, unique, recognisable for clean-up. */
function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}${TMP_SUFFIX}`);
}

/**
 * Replaces `file` with `data` atomically and durably.
 * @param mode permissions of the new file (the temporary file is created with them, so the content
 *   is never readable more widely, even for a moment); the umask can only narrow them. Default 0644.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempName(file);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await renameOver(tmp, file);
  } catch (err) {
    await handle?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  // Make the rename itself durable.
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Renames `tmp` over `file`. Whatever is at `file` is replaced (a symlink, a FIFO, a device node),
 * except a folder: an empty one is removed first (it holds nothing), a folder with content is left
 * alone and the rename fails with EISDIR.
 */
async function renameOver(tmp: string, file: string): Promise<void> {
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
    try {
      await fs.rmdir(file);
    } catch {
      throw err;
    }
    await fs.rename(tmp, file);
  }
}

/** Removes temporary files a killed writer left beside `file`; returns how many. */
export async function removeStaleTemps(file: string): Promise<number> {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith(TMP_SUFFIX)) {
      await fs.rm(path.join(dir, name), { force: true }).catch(() => {});
      n++;
    }
  }
  return n;
}
