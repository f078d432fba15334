/**
 * @module
 * The VNC passwords of the targets, kept apart from the configuration: `vnc-passwords.json` in
 * the app's private data folder (`$SNAP_COMMON/app`), mode 0600, never in the ctrlX active
 * configuration (which ctrlX archives and exports).
 *
 * - Each record holds the address (host, port) its target had when the password was entered;
 *   which records to keep when the configuration changes is decided by the configuration service
 *   (service.ts), the only user of this store.
 * - Written atomically (see atomic-write.ts), and only when a record really changed.
 * - Read like config.json (only a regular file, at most 1 MiB, never blocking: read-bounded.ts).
 * - A corrupt or invalid file (or a FIFO, a folder, a device, a huge file in its place) is logged (never its content), treated as empty, and left on disk
 *   until the next real change replaces it.
 * - A password never appears in a log line, an error message or an event.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AppError, ERR_CONFIG_WRITE } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { isValidPassword } from './schema.js';
import { removeStaleTemps, writeFileAtomic } from './atomic-write.js';
import { readBounded } from './read-bounded.js';

export const SECRETS_FILE_NAME = 'vnc-passwords.json';
export const SECRETS_VERSION = 1;
/** Mode of the passwords file: read and write for the app's user only. */
export const SECRETS_FILE_MODE = 0o600;
/** Mode of the private folder when the store has to create it. */
export const SECRETS_DIR_MODE = 0o700;

/** Exactly `keys` as own fields, nothing more (missing ones are checked by the caller). */
function hasOnly(value: unknown, keys: readonly string[]): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).every((k) => keys.includes(k));
}

/** One record of the file: a host, a port and a valid password, nothing else. */
function isRecord(value: unknown): value is SecretRecord {
  return (
    hasOnly(value, ['host', 'port', 'password']) &&
    typeof value.host === 'string' &&
    value.host.length >= 1 &&
    typeof value.port === 'number' &&
    Number.isSafeInteger(value.port) &&
    value.port >= 1 &&
    value.port <= 65535 &&
    isValidPassword(value.password)
  );
}

/** One stored password and the address it was entered for. */
export interface SecretRecord {
  host: string;
  port: number;
  password: string;
}

export interface SecretStoreOptions {
  /**
   * The app's private data folder (`appDataDir`), created 0700 on the first write if missing;
   * null keeps the passwords in memory only (tests of other parts).
   */
  dir: string | null;
  logger?: Logger;
}

export class SecretStore {
  /** `<dir>/vnc-passwords.json`, or null when kept in memory only. */
  readonly file: string | null;
  private readonly dir: string | null;
  private readonly log: Logger;
  private byId = new Map<string, SecretRecord>();
  /** The file text last read or written; null when there is no file or it is unusable. */
  private lastText: string | null = null;
  /** Why the file found at start was not used (null: it was, or there was none); cleared by a write. */
  private problem: string | null = null;
  /** Serialises writes so they reach the disk in the order the changes were made. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SecretStoreOptions) {
    this.dir = options.dir;
    this.file = options.dir === null ? null : path.join(options.dir, SECRETS_FILE_NAME);
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Loads the file. A missing file means no passwords; an unreadable, corrupt or invalid one is
   * logged and treated as empty (and kept on disk until the next change). A file readable by
   * others is tightened to 0600.
   */
  async start(): Promise<void> {
    if (this.file === null) return;
    await removeStaleTemps(this.file);
    const read = await readBounded(this.file);
    if (read.kind === 'missing') return;
    if (read.kind === 'refused') {
      this.problem = `not read: ${read.reason}`;
      this.log.error('the VNC passwords file was not read; running without stored passwords until one is entered again', { file: this.file, reason: read.reason });
      return;
    }
    const { text } = read;
    await this.tighten(this.file);
    const records = parseSecrets(text);
    if (!records) {
      // Never log the content or the parser's message: both may quote a password.
      this.problem = 'corrupt or invalid';
      this.log.error('the VNC passwords file is corrupt or invalid; running without stored passwords until one is entered again', { file: this.file });
      return;
    }
    this.byId = records;
    this.lastText = text;
    this.log.info('VNC passwords loaded', { file: this.file, targets: records.size });
  }

  /** What is wrong with the passwords file found at start, until a write replaces it. */
  fileError(): { file: string; reason: string } | null {
    return this.file !== null && this.problem !== null ? { file: this.file, reason: this.problem } : null;
  }

  /** The password stored for target `id`, if any. */
  get(id: string): string | undefined {
    return this.byId.get(id)?.password;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Every stored record, by target id (a snapshot: {@link set} replaces it). */
  records(): ReadonlyMap<string, SecretRecord> {
    return this.byId;
  }

  /**
   * Replaces every record in memory (the relay sees them at once); {@link persist} writes them.
   * Which records to keep is the configuration service's rule, not the store's.
   */
  set(records: ReadonlyMap<string, SecretRecord>): void {
    this.byId = new Map(records);
  }

  /**
   * Writes the records if they differ from what the file holds (serialised, atomic, 0600).
   * @throws {AppError} ERR_CONFIG_WRITE when the file cannot be written (no password in the message)
   */
  persist(): Promise<void> {
    const run = this.queue.then(async () => {
      const { dir, file } = this;
      if (dir === null || file === null) return;
      const text = serializeSecrets(this.byId);
      if (text === this.lastText) return;
      // Nothing stored and no usable file: nothing to write (a corrupt file stays as it is).
      if (this.byId.size === 0 && this.lastText === null) return;
      try {
        await fsp.mkdir(dir, { recursive: true, mode: SECRETS_DIR_MODE });
        await writeFileAtomic(file, text, SECRETS_FILE_MODE);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.log.error('saving the VNC passwords failed', { file, error: code ?? 'unknown' });
        throw new AppError(ERR_CONFIG_WRITE, `Saving the VNC password failed (${code ?? 'write error'}). Nothing was changed.`, {
          i18n: { key: 'problem.passwordSaveFailed', params: { code: code ?? 'write error' } },
          status: code === 'ENOSPC' ? 507 : 500,
        });
      }
      this.lastText = text;
      this.problem = null;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Makes an existing file private if it was readable or writable by others. */
  private async tighten(file: string): Promise<void> {
    try {
      const { mode } = await fsp.stat(file);
      if ((mode & 0o077) !== 0) {
        await fsp.chmod(file, SECRETS_FILE_MODE);
        this.log.warn('the VNC passwords file was readable by others; made it private (0600)', {
          file,
          was: (mode & 0o777).toString(8),
        });
      }
    } catch (err) {
      this.log.warn('cannot make the VNC passwords file private', { file, error: (err as NodeJS.ErrnoException).code ?? 'unknown' });
    }
  }
}

/** Parses the file's text; null when it is not valid JSON or not a valid passwords file. */
export function parseSecrets(text: string): Map<string, SecretRecord> | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!hasOnly(raw, ['version', 'targets']) || raw.version !== SECRETS_VERSION) return null;
  const { targets } = raw;
  if (!hasOnly(targets, Object.keys(targets ?? {}))) return null;
  const records = new Map<string, SecretRecord>();
  for (const [id, r] of Object.entries(targets)) {
    if (id === '__proto__') continue; // never a target id (ids start with a letter or digit)
    if (!isRecord(r)) return null;
    records.set(id, { host: r.host, port: r.port, password: r.password });
  }
  return records;
}

/** The file's text: stable key order, two-space indent. */
export function serializeSecrets(records: ReadonlyMap<string, SecretRecord>): string {
  const targets: Record<string, SecretRecord> = {};
  for (const [id, { host, port, password }] of records) targets[id] = { host, port, password };
  return `${JSON.stringify({ version: SECRETS_VERSION, targets }, null, 2)}\n`;
}
