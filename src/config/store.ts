/**
 * @module
 * The configuration store: `config.json` in the app's folder of the ctrlX active configuration.
 *
 * - Reads and validates the file (only a regular file, at most 1 MiB, without blocking: see
 *   read-bounded.ts); a corrupt or invalid file never replaces the last good
 *   configuration and is never overwritten behind the user's back: the error is kept for the
 *   page and the status instead.
 * - Writes only on a user action or a save phase, atomically (see atomic-write.ts).
 * - Watches the file (stat polling, debounced) so a configuration load or a WebDAV edit is applied,
 *   and notices when the active configuration folder appears (the snap plug connects late).
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type Message, render } from '../common/i18n/index.js';
import { AppError, ERR_CONFIG_UNAVAILABLE, ERR_CONFIG_WRITE } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { emptyConfig, serializeConfig, validateConfig, type Config } from './schema.js';
import { removeStaleTemps, writeFileAtomic } from './atomic-write.js';
import { findJsonSyntaxError, lineAndColumn } from './json-syntax.js';
import { readBounded } from './read-bounded.js';

export const APP_DIR_NAME = 'ctrlx-novnc';
export const CONFIG_FILE_NAME = 'config.json';


/**
 * - `ok`: running on the file's content (or on the empty configuration when there is no file yet);
 * - `unmounted`: the active configuration folder is not there yet (plug not connected);
 * - `invalid`: the file is corrupt or invalid; running on the last good configuration.
 */
export type ConfigState = 'ok' | 'unmounted' | 'invalid';

/** The reason shown when config.json disappears while the app runs. */
const DELETED = 'the file was deleted; the last good configuration stays in use until it is saved again or the file comes back';

/** What is wrong with the file on disk: where, and why. */
export interface ConfigFileError {
  file: string;
  line?: number;
  column?: number;
  field?: string;
  reason: string;
}

export interface ConfigStatus {
  state: ConfigState;
  file: string;
  /** True when config.json exists. */
  exists: boolean;
  error: ConfigFileError | null;
  /** When the configuration in use was last applied (ISO time). */
  appliedAt: string;
}

/** The result of reading the file without applying it (for the load phases). */
export type FileRead =
  | { kind: 'missing' }
  | { kind: 'unmounted' }
  | { kind: 'ok'; config: Config; text: string }
  | { kind: 'invalid'; error: ConfigFileError };

export interface ConfigStoreOptions {
  /** The solutions root: `$SNAP_COMMON/solutions` on the device, `<data>/solutions` off it. */
  solutionsDir: string;
  /** Milliseconds between stat polls of the file and the folder. Default 1000. */
  pollInterval?: number;
  /** Milliseconds to wait after a change is seen before reading (writers finish). Default 200. */
  debounce?: number;
  logger?: Logger;
}


/**
 * Finds the line of a validation error's field, best effort: for `targets[n].key` the n-th
 * `"key":` in the text, else the first.
 */
function locateField(text: string, field: string): number | undefined {
  const key = /([A-Za-z_$][\w$]*)$/.exec(field)?.[1];
  if (!key) return undefined;
  const nth = Number(/^targets\[(\d+)\]\./.exec(field)?.[1] ?? 0);
  const re = new RegExp(`"${key}"\\s*:`, 'g');
  let match: RegExpExecArray | null = null;
  for (let i = 0; i <= nth; i++) {
    match = re.exec(text);
    if (!match) return undefined;
  }
  return lineAndColumn(text, match!.index).line;
}

/**
 * What is at `file`, for change polling: the entry itself (lstat: a symlink made again is a new
 * inode, even to the same device) and what it leads to (stat: an edit of the file a symlink points
 * at). fs.watchFile sees only the second, so the same symlink to /dev/zero put back between two
 * polls after a save looked unchanged.
 */
export async function pathSignature(file: string): Promise<string> {
  const parts: string[] = [];
  for (const get of [fsp.lstat, fsp.stat]) {
    try {
      const s = await get(file, { bigint: true });
      parts.push(`${s.dev}:${s.ino}:${s.mode}:${s.rdev}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`);
    } catch (err) {
      parts.push((err as NodeJS.ErrnoException).code ?? 'error');
    }
  }
  return parts.join('|');
}

/** Parses and validates the text of a config file. */
export function parseConfigText(text: string, file: string): { config: Config } | { error: ConfigFileError } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the file, which may hold a password typed in by hand.
    const syntax = findJsonSyntaxError(text);
    if (!syntax) return { error: { file, reason: 'not valid JSON' } };
    return { error: { file, line: syntax.line, column: syntax.column, reason: `not valid JSON: ${syntax.reason}` } };
  }
  const result = validateConfig(raw);
  if (result.ok) return { config: result.config };
  const first = result.errors[0]!;
  const more = result.errors.length > 1 ? ` (and ${result.errors.length - 1} more)` : '';
  const line = locateField(text, first.field);
  return { error: { file, field: first.field, ...(line ? { line } : {}), reason: first.message + more } };
}

export interface ConfigStoreEvents {
  /** The configuration in use changed. */
  change: [config: Config, previous: Config];
  /** The store's status (state, error) changed. */
  status: [status: ConfigStatus];
}

export class ConfigStore extends EventEmitter<ConfigStoreEvents> {
  readonly solutionsDir: string;
  /** `<solutions>/activeConfiguration` */
  readonly activeDir: string;
  /** `<solutions>/activeConfiguration/ctrlx-novnc` */
  readonly dir: string;
  /** `<solutions>/activeConfiguration/ctrlx-novnc/config.json` */
  readonly file: string;

  private readonly log: Logger;
  private readonly pollInterval: number;
  private readonly debounceMs: number;
  private current: Config = emptyConfig();
  /** The file text last read or written by us; an unchanged file is not re-applied. */
  private lastText: string | null = null;
  private state: ConfigState = 'unmounted';
  private exists = false;
  /** A valid file was read or written since start: its deletion is then a fault, not a reset. */
  private hadFile = false;
  private error: ConfigFileError | null = null;
  private appliedAt = new Date();
  private debounceTimer: NodeJS.Timeout | undefined;
  private watching = false;
  /** Polls config.json (see {@link pathSignature}); the folder is watched with fs.watchFile. */
  private filePoll: NodeJS.Timeout | undefined;
  private fileSignature = '';
  private polling = false;
  private suspended = 0;
  /** Serialises reads and writes so a save and a watcher read never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: ConfigStoreOptions) {
    super();
    this.solutionsDir = options.solutionsDir;
    this.activeDir = path.join(options.solutionsDir, 'activeConfiguration');
    this.dir = path.join(this.activeDir, APP_DIR_NAME);
    this.file = path.join(this.dir, CONFIG_FILE_NAME);
    this.pollInterval = options.pollInterval ?? 1000;
    this.debounceMs = options.debounce ?? 200;
    this.log = options.logger ?? silentLogger;
  }

  /** The configuration in use (the last good one). */
  get config(): Config {
    return this.current;
  }

  status(): ConfigStatus {
    return {
      state: this.state,
      file: this.file,
      exists: this.exists,
      error: this.error,
      appliedAt: this.appliedAt.toISOString(),
    };
  }

  /** Loads the file once and starts watching it. */
  async start(): Promise<void> {
    await removeStaleTemps(this.file);
    // Watch first, then read: the watcher's first stat is only its baseline, so a change made
    // between a first read and that stat would never be noticed.
    this.watching = true;
    this.fileSignature = await pathSignature(this.file);
    this.filePoll = setInterval(this.pollFile, this.pollInterval);
    this.filePoll.unref();
    fs.watchFile(this.activeDir, { interval: this.pollInterval, persistent: false }, this.onStat);
    await this.reload();
  }

  stop(): void {
    this.watching = false;
    clearTimeout(this.debounceTimer);
    clearInterval(this.filePoll);
    fs.unwatchFile(this.activeDir, this.onStat);
  }

  /**
   * Stops applying file changes until {@link resumeWatch} (during a configuration load, whose
   * phases decide when the new file takes effect). Calls nest.
   */
  suspendWatch(): void {
    this.suspended++;
  }

  resumeWatch(): void {
    if (this.suspended > 0) this.suspended--;
  }

  /** Reads and validates the file without applying it. */
  async readFile(): Promise<FileRead> {
    if (!(await this.isMounted())) return { kind: 'unmounted' };
    const read = await readBounded(this.file);
    if (read.kind === 'missing') return { kind: 'missing' };
    if (read.kind === 'refused') return { kind: 'invalid', error: { file: this.file, reason: `not read: ${read.reason}` } };
    const { text } = read;
    const parsed = parseConfigText(text, this.file);
    return 'config' in parsed ? { kind: 'ok', config: parsed.config, text } : { kind: 'invalid', error: parsed.error };
  }

  /** Reads the file and applies it if it is valid and changed. */
  reload(): Promise<void> {
    return this.serialise(async () => {
      const read = await this.readFile();
      this.exists = read.kind === 'ok' || read.kind === 'invalid';
      switch (read.kind) {
        case 'unmounted':
          if (this.state !== 'unmounted') this.log.warn('active configuration folder is gone', { dir: this.activeDir });
          this.setStatus('unmounted', null);
          break;
        case 'missing':
          if (this.hadFile) {
            // Deleted while running (a mistaken rm, a WebDAV client): keep the last good
            // configuration, as for a damaged file. Loads that clear it call use() themselves.
            if (this.state !== 'invalid' || this.error?.reason !== DELETED) {
              this.log.warn('configuration file deleted, keeping the last good configuration', { file: this.file });
            }
            this.lastText = null;
            this.setStatus('invalid', { file: this.file, reason: DELETED });
            break;
          }
          // No file yet (first start): the initial state.
          this.lastText = null;
          this.setStatus('ok', null);
          this.apply(emptyConfig());
          break;
        case 'invalid':
          this.log.warn('configuration file rejected, keeping the last good configuration', {
            file: read.error.file,
            line: read.error.line,
            field: read.error.field,
            reason: read.error.reason,
          });
          this.lastText = null;
          this.setStatus('invalid', read.error);
          break;
        case 'ok':
          this.hadFile = true;
          this.lastText = read.text;
          this.setStatus('ok', null);
          this.apply(read.config);
          break;
      }
    });
  }

  /**
   * Makes `config` the configuration in use and writes it to the file (atomically; skipped when
   * the file already holds exactly this content, so repeated saves do not wear the flash).
   * @throws {AppError} 503 when the active configuration is not available; 507/500 on write errors
   */
  save(config: Config): Promise<void> {
    return this.serialise(async () => {
      await this.writeLocked(config);
      this.apply(config);
    });
  }

  /** Writes the configuration in use to the file (the save phase); no change in memory. */
  persist(): Promise<void> {
    return this.serialise(() => this.writeLocked(this.current));
  }

  /** Applies `config` in memory only (load phases: activate/abort). */
  use(config: Config): void {
    // Set from outside (a ctrlX load): what is on disk now is the truth, also no file at all.
    this.hadFile = false;
    this.apply(config);
  }

  // ---- internals ---------------------------------------------------------------------------

  private async writeLocked(config: Config): Promise<void> {
    const text = serializeConfig(config);
    if (!(await this.isMounted())) {
      throw new AppError(
        ERR_CONFIG_UNAVAILABLE,
        'The ctrlX active configuration is not available yet (is the active-solution interface connected?); nothing was saved.',
        { status: 503, i18n: { key: 'problem.notMounted' } },
      );
    }
    // Skip only when the file really holds this content: while a load is in progress the
    // watcher is held back, so the file may differ from what was last read or written.
    if (text === this.lastText && this.state === 'ok' && (await this.fileText()) === text) return;
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      await writeFileAtomic(this.file, text);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why: Message =
        code === 'ENOSPC'
          ? { key: 'problem.why.diskFull' }
          : code === 'EROFS'
            ? { key: 'problem.why.readOnly' }
            : code === 'EACCES' || code === 'EPERM'
              ? { key: 'problem.why.permission' }
              : code === 'EISDIR'
                ? { key: 'problem.why.isFolder', params: { file: this.file } }
                : { key: 'problem.why.other', params: { code: code ?? (err as Error).message } };
      this.log.error('saving the configuration failed', { file: this.file, error: code ?? String(err) });
      const message: Message = { key: 'problem.saveFailed', parts: { why } };
      throw new AppError(ERR_CONFIG_WRITE, render('en', message), {
        status: code === 'ENOSPC' ? 507 : 500,
        cause: err,
        i18n: message,
      });
    }
    this.lastText = text;
    this.exists = true;
    this.hadFile = true;
    this.setStatus('ok', null);
    this.log.info('configuration saved', { file: this.file, targets: config.targets.length });
  }

  private apply(config: Config): void {
    const previous = this.current;
    if (serializeConfig(previous) === serializeConfig(config)) return;
    this.current = config;
    this.appliedAt = new Date();
    this.emit('change', config, previous);
  }

  private setStatus(state: ConfigState, error: ConfigFileError | null): void {
    const changed = state !== this.state || JSON.stringify(error) !== JSON.stringify(this.error);
    this.state = state;
    this.error = error;
    if (changed) this.emit('status', this.status());
  }

  /** The file's current content, or null when it cannot be read. */
  private async fileText(): Promise<string | null> {
    const read = await readBounded(this.file);
    return read.kind === 'ok' ? read.text : null;
  }

  private async isMounted(): Promise<boolean> {
    try {
      return (await fsp.stat(this.activeDir)).isDirectory();
    } catch {
      return false;
    }
  }

  private readonly pollFile = (): void => {
    if (!this.watching || this.polling) return;
    this.polling = true;
    pathSignature(this.file)
      .then((signature) => {
        if (signature === this.fileSignature) return;
        this.fileSignature = signature;
        this.onStat();
      })
      .catch(() => {})
      .finally(() => (this.polling = false));
  };

  private readonly onStat = (): void => {
    if (!this.watching) return;
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      if (!this.watching || this.suspended > 0) return;
      this.reload().catch((err: unknown) => this.log.error('reloading the configuration failed', { error: String(err) }));
    }, this.debounceMs);
  };

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}
