/**
 * @module
 * ctrlX save/load of the active configuration (package-manifest `commands.activeConfiguration`).
 *
 * Save: write the configuration in use to config.json (204).
 * Load: `query` → (Solutions copies the archived folder in) → `prepare` → `load` (read and validate
 * the file; Problem JSON if invalid) → `validate` → `activate` (the relay now runs with it) or
 * `abort` (back to the previous configuration). Unknown phases: 204. While a load is in progress
 * the file watcher is held back, so the new file takes effect at `activate`, not when it is copied.
 */
import { z } from 'zod';
import { AppError, ERR_CONFIG_UNAVAILABLE } from '../errors.js';
import { emptyConfig, type Config } from '../config/schema.js';
import type { ConfigStore } from '../config/store.js';
import { silentLogger, type Logger } from '../log.js';
import { PROBLEM_TYPES, problem, type Problem } from './problem.js';

export const CallbackBody = z.object({
  configurationPath: z.string().max(4096).optional(),
  id: z.string().max(256).optional(),
  phase: z.string({ error: 'phase must be a string' }).min(1, { error: 'phase is required' }).max(64),
});
export type CallbackBody = z.infer<typeof CallbackBody>;

/**
 * ctrlX wants a save/load failure's messages to end with the callback's operation id, `[<id>]`, so
 * the Solutions app can tie them to the operation. No `mainDiagnosisCode` is sent: the schema's
 * example value 080F0100 means "Error in diagnostic system" on ctrlX OS, and the app has no
 * diagnosis code of its own.
 */
export function withOperationId(text: string, id: string | undefined): string {
  return id ? `${text} [${id}]` : text;
}

export type CallbackResult = { status: 204 } | { status: number; problem: Problem };

interface LoadTransaction {
  id: string | undefined;
  previous: Config;
  pending: Config | null;
  timer: NodeJS.Timeout;
}

export interface ActiveConfigurationOptions {
  store: ConfigStore;
  /** A load not finished within this many ms is given up and the watcher resumes. Default 5 min. */
  loadTimeout?: number;
  logger?: Logger;
}

export class ActiveConfiguration {
  private readonly store: ConfigStore;
  private readonly loadTimeout: number;
  private readonly log: Logger;
  private tx: LoadTransaction | null = null;

  constructor(options: ActiveConfigurationOptions) {
    this.store = options.store;
    this.loadTimeout = options.loadTimeout ?? 5 * 60_000;
    this.log = options.logger ?? silentLogger;
  }

  /** True while a load is between `query`/`prepare` and `activate`/`abort`. */
  get loading(): boolean {
    return this.tx !== null;
  }

  async save(body: CallbackBody): Promise<CallbackResult> {
    try {
      await this.store.persist();
    } catch (err) {
      return this.failure(err, body, 'Saving the noVNC settings failed');
    }
    this.log.info('configuration save', { id: body.id, path: body.configurationPath });
    return { status: 204 };
  }

  async load(body: CallbackBody): Promise<CallbackResult> {
    this.log.info('configuration load', { phase: body.phase, id: body.id });
    switch (body.phase) {
      case 'query':
      case 'prepare':
        this.begin(body.id);
        return { status: 204 };
      case 'load':
      case 'validate': {
        this.begin(body.id);
        const read = await this.store.readFile();
        if (read.kind === 'invalid') {
          const e = read.error;
          const where = [e.line ? `line ${e.line}` : '', e.field ?? ''].filter(Boolean).join(', ');
          const detail = withOperationId(`${e.file}${where ? ` (${where})` : ''}: ${e.reason}`, body.id);
          return {
            status: 422,
            problem: problem(422, PROBLEM_TYPES.validation, 'The loaded noVNC settings are invalid', detail, {
              ...(e.field ? { field: e.field } : {}),
              dynamicDescription: detail,
              severity: 'Error',
            }),
          };
        }
        if (read.kind === 'unmounted') {
          return this.failure(
            new AppError(ERR_CONFIG_UNAVAILABLE, 'The active configuration folder is not available.', { status: 503 }),
            body,
            'Loading the noVNC settings failed',
          );
        }
        // No file in the loaded configuration: back to the initial state (no targets).
        this.tx!.pending = read.kind === 'ok' ? read.config : emptyConfig();
        return { status: 204 };
      }
      case 'activate': {
        const tx = this.tx;
        if (!tx) return { status: 204 };
        let next = tx.pending;
        if (!next) {
          const read = await this.store.readFile();
          next = read.kind === 'ok' ? read.config : read.kind === 'missing' ? emptyConfig() : null;
        }
        if (next) this.store.use(next);
        this.end();
        // The watcher was held back during the load: bring the file's status (state, error,
        // exists) up to date with what is on disk now; an unchanged file is not re-applied.
        await this.store.reload().catch((err: unknown) => this.log.warn('activate: re-reading the file failed', { error: String(err) }));
        return { status: 204 };
      }
      case 'abort': {
        const tx = this.tx;
        if (!tx) return { status: 204 };
        this.end();
        try {
          // Put the previous configuration back, in memory and on disk (save skips identical content).
          await this.store.save(tx.previous);
        } catch (err) {
          this.store.use(tx.previous);
          this.log.warn('abort: could not rewrite the previous configuration', { error: String(err) });
        }
        return { status: 204 };
      }
      default:
        return { status: 204 };
    }
  }

  private begin(id: string | undefined): void {
    if (this.tx) {
      this.tx.id ??= id;
      return;
    }
    this.store.suspendWatch();
    const timer = setTimeout(() => {
      this.log.warn('configuration load did not finish; watching the file again', { id });
      this.end();
      this.store.reload().catch(() => {});
    }, this.loadTimeout);
    timer.unref();
    this.tx = { id, previous: this.store.config, pending: null, timer };
  }

  private end(): void {
    if (!this.tx) return;
    clearTimeout(this.tx.timer);
    this.tx = null;
    this.store.resumeWatch();
  }

  private failure(err: unknown, body: CallbackBody, title: string): CallbackResult {
    const status = err instanceof AppError ? err.status : 500;
    const detail = withOperationId(err instanceof Error ? err.message : String(err), body.id);
    return {
      status,
      problem: problem(status, status === 503 ? PROBLEM_TYPES.unavailable : PROBLEM_TYPES.writeFailed, title, detail, {
        dynamicDescription: detail,
        severity: 'Error',
      }),
    };
  }
}
