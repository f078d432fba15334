/**
 * @module
 * The configuration service: the one way to change the VNC targets and their passwords, and to run
 * a ctrlX configuration load. The configuration store (config.json in the active configuration,
 * store.ts) and the password store (vnc-passwords.json in the app's private data, secrets.ts) are
 * its private parts: routes, the ctrlX callbacks and the app read through the service and change
 * only through it.
 *
 * What changes the configuration, and how:
 * - {@link ConfigService.save}: a save from the settings page or `PUT api/v1/config`, with the
 *   password changes typed there;
 * - the store's file watcher: a hand edit or a WebDAV copy of config.json;
 * - {@link ConfigService.load}: the phases of a ctrlX load (the new file takes effect at
 *   `activate`, an `abort` puts the previous configuration back), and {@link ConfigService.persist}
 *   for a ctrlX save.
 * Every change ends in one `change` event, after the passwords were brought in line with it.
 *
 * The password binding rule lives here and nowhere else ({@link bindPasswords},
 * {@link dropMovedPasswords}): a password belongs to the address (host, port) of its target when it
 * was entered. Every change that points a target at another host or port drops that target's
 * password, so a password is never sent to a server it was not entered for: a save from the page
 * or the API keeps it only if the same save sets a new one (and says which it cleared), a load or
 * a hand edit always drops it. Removing a target removes its password.
 */
import { EventEmitter } from 'node:events';
import { AppError, ERR_CONFIG_INVALID, ERR_CONFIG_UNAVAILABLE } from '../errors.js';
import { formatHostPort } from '../relay/address.js';
import { silentLogger, type Logger } from '../log.js';
import { emptyConfig, type Config } from './schema.js';
import { SecretStore, type SecretRecord } from './secrets.js';
import { ConfigStore, type ConfigStatus } from './store.js';

export { APP_DIR_NAME, CONFIG_FILE_NAME, type ConfigFileError, type ConfigState, type ConfigStatus } from './store.js';

/**
 * Password changes from the settings page or the API, by target id: a string sets (or replaces)
 * the password, `null` removes it. Targets not named keep theirs.
 */
export type PasswordChanges = ReadonlyMap<string, string | null>;

/** The phases of a ctrlX configuration load, in the order the Solutions app calls them. */
export const LOAD_PHASES = ['query', 'prepare', 'load', 'validate', 'activate', 'abort'] as const;
export type LoadPhase = (typeof LOAD_PHASES)[number];

/**
 * The store's status, whether a ctrlX load is in progress, and what is wrong with the passwords
 * file found at start (null: nothing; cleared when a save writes the file again).
 */
export type ConfigServiceStatus = ConfigStatus & { loading: boolean; passwordsError: { file: string; reason: string } | null };

export interface ConfigServiceOptions {
  /** The solutions root: `$SNAP_COMMON/solutions` on the device, `<data>/solutions` off it. */
  solutionsDir: string;
  /**
   * The app's private data folder (`$SNAP_COMMON/app`) for the VNC passwords, never archived by
   * ctrlX; null keeps them in memory only (tests of other parts).
   */
  appDataDir: string | null;
  /** Milliseconds between polls of config.json. Default 1000. */
  pollInterval?: number;
  /** Milliseconds to wait after a change of config.json is seen before reading it. Default 200. */
  debounce?: number;
  /** A load not finished within this many ms is given up and the watcher resumes. Default 5 min. */
  loadTimeout?: number;
  logger?: Logger;
}

export interface ConfigServiceEvents {
  /** The configuration in use changed (passwords already in line with it). */
  change: [config: Config, previous: Config];
  /** The status (file state, error, loading) changed. */
  status: [status: ConfigServiceStatus];
  /** Passwords were set, replaced or removed by a save: the ids concerned, never the passwords. */
  passwords: [targetIds: string[]];
}

interface LoadTransaction {
  id: string | undefined;
  previous: Config;
  pending: Config | null;
  timer: NodeJS.Timeout;
}

/**
 * The rule for a save from the page or the API: a password stays bound to the address (host,
 * port) it was entered for. A string in `changes` sets one, bound to its target's address in
 * `config`; `null` removes one; a target whose host or port changed loses its stored password
 * unless the same save sets a new one (`cleared`: those ids, the address it was for and the new
 * one); targets not in `config` lose theirs. `touched`: the ids whose password was set (even to
 * the same value: the user retries after a rejection), removed (only if there was one) or cleared.
 */
export function bindPasswords(
  records: ReadonlyMap<string, SecretRecord>,
  config: Config,
  changes: PasswordChanges,
): { next: Map<string, SecretRecord>; touched: string[]; cleared: ClearedPassword[] } {
  const next = new Map<string, SecretRecord>();
  const touched: string[] = [];
  const cleared: ClearedPassword[] = [];
  for (const t of config.targets) {
    const change = changes.get(t.id);
    const record = records.get(t.id);
    if (typeof change === 'string') {
      touched.push(t.id);
      next.set(t.id, { host: t.host, port: t.port, password: change });
    } else if (change === null) {
      if (record) touched.push(t.id);
    } else if (record) {
      if (record.host === t.host && record.port === t.port) next.set(t.id, record);
      else {
        touched.push(t.id);
        cleared.push({ id: t.id, was: formatHostPort(record.host, record.port), now: formatHostPort(t.host, t.port) });
      }
    }
  }
  return { next, touched, cleared };
}

/** A password a save cleared because its target's address changed. */
export interface ClearedPassword {
  id: string;
  /** The address the password was entered for, `host:port`. */
  was: string;
  /** The target's new address. */
  now: string;
}

/** What a save did besides saving: the targets whose stored password it cleared. */
export interface SaveResult {
  passwordsCleared: string[];
}

/** Why a password was dropped by {@link dropMovedPasswords}. */
export type DroppedPassword = { id: string; reason: 'gone' } | { id: string; reason: 'moved'; was: string; now: string };

/**
 * The rule for every other change (a load, a hand edit): the passwords of targets that are gone,
 * or that now point at another address than the one the password was entered for, are dropped.
 */
export function dropMovedPasswords(
  records: ReadonlyMap<string, SecretRecord>,
  config: Config,
): { next: Map<string, SecretRecord>; dropped: DroppedPassword[] } {
  const byId = new Map(config.targets.map((t) => [t.id, t]));
  const next = new Map<string, SecretRecord>();
  const dropped: DroppedPassword[] = [];
  for (const [id, record] of records) {
    const t = byId.get(id);
    if (!t) dropped.push({ id, reason: 'gone' });
    else if (t.host !== record.host || t.port !== record.port) {
      dropped.push({ id, reason: 'moved', was: formatHostPort(record.host, record.port), now: formatHostPort(t.host, t.port) });
    } else next.set(id, record);
  }
  return { next, dropped };
}

export class ConfigService extends EventEmitter<ConfigServiceEvents> {
  private readonly store: ConfigStore;
  private readonly secrets: SecretStore;
  /** `solutions`: the ctrlX load and save; `secrets`: the passwords. */
  private readonly log: { solutions: Logger; secrets: Logger };
  private readonly loadTimeout: number;
  private tx: LoadTransaction | null = null;
  /** Serialises saves, so a rollback never undoes another request's change. */
  private saves: Promise<unknown> = Promise.resolve();
  /** The last write of passwords dropped by a change (awaited by the load phases). */
  private dropWrite: Promise<void> = Promise.resolve();

  constructor(options: ConfigServiceOptions) {
    super();
    const log = options.logger ?? silentLogger;
    this.log = { solutions: log.child('solutions'), secrets: log.child('secrets') };
    this.loadTimeout = options.loadTimeout ?? 5 * 60_000;
    this.store = new ConfigStore({
      solutionsDir: options.solutionsDir,
      logger: log.child('config'),
      ...(options.pollInterval ? { pollInterval: options.pollInterval } : {}),
      ...(options.debounce ? { debounce: options.debounce } : {}),
    });
    this.secrets = new SecretStore({ dir: options.appDataDir, logger: this.log.secrets });
  }

  // ---- reading -----------------------------------------------------------------------------

  /** The configuration in use (the last good one). */
  get current(): Config {
    return this.store.config;
  }

  status(): ConfigServiceStatus {
    return { ...this.store.status(), loading: this.loading, passwordsError: this.secrets.fileError() };
  }

  /** True while a ctrlX load is between `query`/`prepare` and `activate`/`abort`. */
  get loading(): boolean {
    return this.tx !== null;
  }

  /** `<solutions>/activeConfiguration`, for messages. */
  get activeDir(): string {
    return this.store.activeDir;
  }

  /** The stored VNC password of target `id`, for the relay's VNC login only. */
  passwordFor(id: string): string | undefined {
    return this.secrets.get(id);
  }

  hasPassword(id: string): boolean {
    return this.secrets.has(id);
  }

  // ---- life cycle --------------------------------------------------------------------------

  /** Loads the passwords and the configuration, and starts watching config.json. */
  async start(): Promise<void> {
    await this.secrets.start();
    await this.store.start();
    // A hand edit or a load while the app was down may have moved a target: drop its password.
    // Not while the file is unusable: the configuration in memory is then the empty one.
    if (this.store.status().state === 'ok') {
      this.dropPasswordsNotFor(this.store.config);
      await this.dropWrite;
    }
    this.store.on('change', (config, previous) => {
      // Passwords first: a target moved by a load or a hand edit must not get its old password.
      this.dropPasswordsNotFor(config);
      this.emit('change', config, previous);
    });
    this.store.on('status', () => this.emit('status', this.status()));
  }

  stop(): void {
    if (this.tx) clearTimeout(this.tx.timer);
    this.store.stop();
  }

  // ---- changing ----------------------------------------------------------------------------

  /**
   * Saves `config` from the settings page or the API with its password changes: the passwords
   * are written first (bound to the addresses in `config`; a moved target's is cleared unless a
   * new one is set), then config.json; if either write
   * fails, the previous passwords are put back and the error is thrown. On success `passwords` is
   * emitted with the ids whose password was set or removed.
   * @throws {AppError} ERR_CONFIG_UNAVAILABLE (503), ERR_CONFIG_WRITE (507/500); never with a password in it
   */
  save(config: Config, changes: PasswordChanges = new Map()): Promise<SaveResult> {
    const run = this.saves.then(() => this.saveLocked(config, changes));
    this.saves = run.catch(() => {});
    return run;
  }

  private async saveLocked(config: Config, changes: PasswordChanges): Promise<SaveResult> {
    const previous = this.secrets.records();
    const { next, touched, cleared } = bindPasswords(previous, config, changes);
    this.secrets.set(next);
    try {
      await this.secrets.persist();
    } catch (err) {
      this.secrets.set(previous);
      throw err;
    }
    try {
      // Rebound before the store announces the change, so the drop rule keeps them.
      await this.store.save(config);
    } catch (err) {
      this.secrets.set(previous);
      await this.secrets.persist().catch(() => {});
      throw err;
    }
    const clearedIds = new Set(cleared.map((c) => c.id));
    for (const id of touched) {
      if (!clearedIds.has(id)) this.log.secrets.info(next.has(id) ? 'VNC password set' : 'VNC password removed', { target: id });
    }
    for (const c of cleared) {
      this.log.secrets.warn('VNC password cleared: the target\'s address changed and no new password was given', { target: c.id, was: c.was, now: c.now });
    }
    if (touched.length) this.emit('passwords', touched);
    return { passwordsCleared: cleared.map((c) => c.id) };
  }

  /**
   * A ctrlX save (`id`: the operation's, for the log): writes the configuration in use to config.json (skipped when the file already
   * holds it). No change in memory.
   * @throws {AppError} ERR_CONFIG_UNAVAILABLE (503), ERR_CONFIG_WRITE (507/500)
   */
  async persist(id?: string): Promise<void> {
    await this.store.persist();
    this.log.solutions.info('configuration save', { id });
  }

  /**
   * One phase of a ctrlX load: `query`/`prepare` start the transaction (the file watcher is held
   * back, so the file Solutions copies in does not take effect yet); `load`/`validate` read and
   * check the file; `activate` makes it the configuration in use (no file: no targets); `abort`
   * puts the previous configuration back, in memory and on disk. Unknown phases, and `activate` or
   * `abort` with nothing in progress, do nothing.
   * @throws {AppError} ERR_CONFIG_INVALID (422, naming file, line and field) from `load`/`validate`;
   *   ERR_CONFIG_UNAVAILABLE (503) when the active configuration folder is missing
   */
  async load(phase: string, id?: string): Promise<void> {
    this.log.solutions.info('configuration load', { phase, id });
    switch (phase as LoadPhase) {
      case 'query':
      case 'prepare':
        this.begin(id);
        return;
      case 'load':
      case 'validate': {
        this.begin(id);
        const read = await this.store.readFile();
        if (read.kind === 'invalid') {
          const e = read.error;
          const where = [e.line ? `line ${e.line}` : '', e.field ?? ''].filter(Boolean).join(', ');
          throw new AppError(ERR_CONFIG_INVALID, `${e.file}${where ? ` (${where})` : ''}: ${e.reason}`, {
            status: 422,
            ...(e.field ? { field: e.field } : {}),
          });
        }
        if (read.kind === 'unmounted') {
          throw new AppError(ERR_CONFIG_UNAVAILABLE, 'The active configuration folder is not available.', { status: 503, i18n: { key: 'problem.configUnavailable' } });
        }
        // No file in the loaded configuration: back to the initial state (no targets).
        this.tx!.pending = read.kind === 'ok' ? read.config : emptyConfig();
        return;
      }
      case 'activate': {
        const tx = this.tx;
        if (!tx) return;
        let next = tx.pending;
        if (!next) {
          const read = await this.store.readFile();
          next = read.kind === 'ok' ? read.config : read.kind === 'missing' ? emptyConfig() : null;
        }
        if (next) this.store.use(next);
        this.end();
        // The watcher was held back during the load: bring the file's status (state, error,
        // exists) up to date with what is on disk now; an unchanged file is not re-applied.
        await this.store.reload().catch((err: unknown) => this.log.solutions.warn('activate: re-reading the file failed', { error: String(err) }));
        await this.dropWrite;
        return;
      }
      case 'abort': {
        const tx = this.tx;
        if (!tx) return;
        this.end();
        try {
          // Put the previous configuration back, in memory and on disk (save skips identical content).
          await this.store.save(tx.previous);
        } catch (err) {
          this.store.use(tx.previous);
          this.log.solutions.warn('abort: could not rewrite the previous configuration', { error: String(err) });
        }
        await this.dropWrite;
        return;
      }
      default:
        return;
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * Applies {@link dropMovedPasswords} to the configuration now in use: in memory at once (the
   * relay must not use a dropped password), on disk in the background (a failed write is logged;
   * the memory is already right).
   */
  private dropPasswordsNotFor(config: Config): void {
    const { next, dropped } = dropMovedPasswords(this.secrets.records(), config);
    if (!dropped.length) return;
    const log = this.log.secrets;
    for (const d of dropped) {
      if (d.reason === 'gone') log.info('VNC password removed with its target', { target: d.id });
      else {
        log.warn('VNC password dropped: the target now points at another address (changed outside the settings page); enter the password again on the settings page', {
          target: d.id,
          was: d.was,
          now: d.now,
        });
      }
    }
    this.secrets.set(next);
    this.dropWrite = this.secrets.persist().catch(() => {});
  }

  private begin(id: string | undefined): void {
    if (this.tx) {
      this.tx.id ??= id;
      return;
    }
    this.store.suspendWatch();
    const timer = setTimeout(() => {
      this.log.solutions.warn('configuration load did not finish; watching the file again', { id });
      this.end();
      this.store.reload().catch(() => {});
    }, this.loadTimeout);
    timer.unref();
    this.tx = { id, previous: this.store.config, pending: null, timer };
    this.emit('status', this.status());
  }

  private end(): void {
    if (!this.tx) return;
    clearTimeout(this.tx.timer);
    this.tx = null;
    this.store.resumeWatch();
    this.emit('status', this.status());
  }
}
