/**
 * @module
 * The VNC passwords of the targets, kept apart from the configuration: `vnc-passwords.json` in
 * the app's private data folder (`$SNAP_COMMON/app`), mode 0600, never in the ctrlX active
 * configuration (which ctrlX archives and exports).
 *
 * - Each record is bound to the address (host, port) its target had when the password was
 *   entered. A configuration that points the id at another address without going through the
 *   settings page (a ctrlX load, a hand edit of config.json) loses the password: it must never be
 *   sent to a server it was not entered for.
 * - Written atomically (see atomic-write.ts), and only when a record really changed.
 * - A corrupt or invalid file is logged (never its content), treated as empty, and left on disk
 *   until the next real change replaces it.
 * - A password never appears in a log line, an error message or an event.
 */
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { AppError, ERR_CONFIG_WRITE } from '../errors.js';
import { formatHostPort } from '../relay/address.js';
import { silentLogger, type Logger } from '../log.js';
import { PasswordSchema, type Config } from './schema.js';
import { removeStaleTemps, writeFileAtomic } from './atomic-write.js';

export const SECRETS_FILE_NAME = 'vnc-passwords.json';
export const SECRETS_VERSION = 1;
/** Mode of the passwords file: read and write for the app's user only. */
export const SECRETS_FILE_MODE = 0o600;
/** Mode of the private folder when the store has to create it. */
export const SECRETS_DIR_MODE = 0o700;

const RecordSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  password: PasswordSchema,
});

const FileSchema = z.strictObject({
  version: z.literal(SECRETS_VERSION),
  targets: z.record(z.string(), RecordSchema),
});

/** One stored password and the address it was entered for. */
export interface SecretRecord {
  host: string;
  port: number;
  password: string;
}

/**
 * Password changes from the settings page or the API, by target id: a string sets (or replaces)
 * the password, `null` removes it. Targets not named keep theirs.
 */
export type PasswordChanges = ReadonlyMap<string, string | null>;

export interface SecretStoreOptions {
  /**
   * The app's private data folder (`appDataDir`), created 0700 on the first write if missing;
   * null keeps the passwords in memory only (tests of other parts).
   */
  dir: string | null;
  logger?: Logger;
}

export interface SecretStoreEvents {
  /**
   * Passwords were set, replaced or removed from the settings page or the API (after the
   * configuration was saved): the ids concerned, never the passwords.
   */
  changed: [targetIds: string[]];
}

export class SecretStore extends EventEmitter<SecretStoreEvents> {
  /** `<dir>/vnc-passwords.json`, or null when kept in memory only. */
  readonly file: string | null;
  private readonly dir: string | null;
  private readonly log: Logger;
  private records = new Map<string, SecretRecord>();
  /** The file text last read or written; null when there is no file or it is unusable. */
  private lastText: string | null = null;
  /** Serialises writes so they reach the disk in the order the changes were made. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Serialises updates, so a rollback never undoes another request's change. */
  private updates: Promise<unknown> = Promise.resolve();

  constructor(options: SecretStoreOptions) {
    super();
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
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.log.error('cannot read the VNC passwords file; running without stored passwords', { file: this.file, error: code ?? 'unknown' });
      return;
    }
    await this.tighten(this.file);
    const records = parseSecrets(text);
    if (!records) {
      // Never log the content or the parser's message: both may quote a password.
      this.log.error('the VNC passwords file is corrupt or invalid; running without stored passwords until one is entered again', { file: this.file });
      return;
    }
    this.records = records;
    this.lastText = text;
    this.log.info('VNC passwords loaded', { file: this.file, targets: records.size });
  }

  /** The password stored for target `id`, if any. */
  get(id: string): string | undefined {
    return this.records.get(id)?.password;
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  /**
   * Applies password changes for the configuration `config` the user is saving, then runs
   * `commit` (the save of that configuration). Every kept record is bound to its target's address
   * in `config` (an address edited on the page keeps its password); records of targets not in
   * `config` are removed. One atomic write if anything changed. If the write or `commit` fails,
   * the previous passwords are put back and the error is rethrown; on success `changed` is emitted
   * with the ids whose password was set (even to the same value) or removed.
   *
   * Call it instead of saving the configuration directly: the records are rebound before the
   * configuration store announces the change, so {@link reconcile} keeps them.
   * @throws {AppError} when the file cannot be written (no password in the message)
   */
  update(config: Config, changes: PasswordChanges, commit: () => Promise<void> = async () => {}): Promise<void> {
    const run = this.updates.then(() => this.updateLocked(config, changes, commit));
    this.updates = run.catch(() => {});
    return run;
  }

  private async updateLocked(config: Config, changes: PasswordChanges, commit: () => Promise<void>): Promise<void> {
    const previous = this.records;
    const next = new Map<string, SecretRecord>();
    const touched: string[] = [];
    for (const t of config.targets) {
      const change = changes.get(t.id);
      // Entering the same password again counts (the user retries after a rejection); removing
      // a password that is not there does not.
      if (typeof change === 'string' || (change === null && previous.has(t.id))) touched.push(t.id);
      const password = change === undefined ? previous.get(t.id)?.password : (change ?? undefined);
      if (password !== undefined) next.set(t.id, { host: t.host, port: t.port, password });
    }
    this.records = next;
    try {
      await this.persist();
    } catch (err) {
      this.records = previous;
      throw err;
    }
    try {
      await commit();
    } catch (err) {
      this.records = previous;
      await this.persist().catch(() => {});
      throw err;
    }
    for (const id of touched) {
      this.log.info(next.has(id) ? 'VNC password set' : 'VNC password removed', { target: id });
    }
    if (touched.length) this.emit('changed', touched);
  }

  /**
   * Brings the records in line with the configuration now in use (after any change: page save,
   * ctrlX load, hand edit): removes records of targets that are gone and of targets whose address
   * differs from the one the password was entered for. Writes only if something was removed.
   */
  async reconcile(config: Config): Promise<void> {
    const byId = new Map(config.targets.map((t) => [t.id, t]));
    let dropped = 0;
    for (const [id, record] of [...this.records]) {
      const t = byId.get(id);
      if (!t) {
        this.records.delete(id);
        dropped++;
        this.log.info('VNC password removed with its target', { target: id });
      } else if (t.host !== record.host || t.port !== record.port) {
        this.records.delete(id);
        dropped++;
        this.log.warn('VNC password dropped: the target now points at another address (changed outside the settings page); enter the password again on the settings page', {
          target: id,
          was: formatHostPort(record.host, record.port),
          now: formatHostPort(t.host, t.port),
        });
      }
    }
    if (dropped) await this.persist();
  }

  // ---- internals ---------------------------------------------------------------------------

  /** Writes the records if they differ from what the file holds (serialised, atomic, 0600). */
  private persist(): Promise<void> {
    const run = this.queue.then(async () => {
      const { dir, file } = this;
      if (dir === null || file === null) return;
      const text = serializeSecrets(this.records);
      if (text === this.lastText) return;
      // Nothing stored and no usable file: nothing to write (a corrupt file stays as it is).
      if (this.records.size === 0 && this.lastText === null) return;
      try {
        await fsp.mkdir(dir, { recursive: true, mode: SECRETS_DIR_MODE });
        await writeFileAtomic(file, text, SECRETS_FILE_MODE);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.log.error('saving the VNC passwords failed', { file, error: code ?? 'unknown' });
        throw new AppError(ERR_CONFIG_WRITE, `Saving the VNC password failed (${code ?? 'write error'}). Nothing was changed.`, {
          status: code === 'ENOSPC' ? 507 : 500,
        });
      }
      this.lastText = text;
    });
    this.queue = run.catch(() => {});
    return run;
  }

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
  const result = FileSchema.safeParse(raw);
  if (!result.success) return null;
  return new Map(Object.entries(result.data.targets));
}

/** The file's text: stable key order, two-space indent. */
export function serializeSecrets(records: ReadonlyMap<string, SecretRecord>): string {
  const targets: Record<string, SecretRecord> = {};
  for (const [id, { host, port, password }] of records) targets[id] = { host, port, password };
  return JSON.stringify({ version: SECRETS_VERSION, targets }, null, 2) + '\n';
}
