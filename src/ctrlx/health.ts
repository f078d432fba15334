/**
 * @module
 * The app's health as ctrlX OS shows it (Diagnostics, Data Layer `system/health/apps`), reported
 * to snapd with `snapctl set-health`:
 * - `waiting` while the Solutions folder (active-solution plug) is not connected;
 * - `error`, naming the file, line and field, while the configuration file is invalid;
 * - `okay` otherwise.
 * Fed by the configuration's status; snapctl runs only when the health changes, never on a timer,
 * and only on the device (the CLI creates a reporter only when `$SNAP` is set).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { silentLogger, type Logger } from '../log.js';

export type HealthStatus = 'okay' | 'waiting' | 'blocked' | 'error';

export interface Health {
  status: HealthStatus;
  /** What is wrong, 7 to 70 characters (snapd's limits); none for `okay`. */
  message?: string;
  /** A stable code: lowercase letters, digits and single dashes, at most 30 characters. */
  code?: string;
}

/** What the health is derived from: the configuration's state and the file's error. */
export interface ConfigHealthInput {
  state: 'ok' | 'unmounted' | 'invalid';
  error: { file: string; line?: number | undefined; field?: string | undefined; reason: string } | null;
}

export const OKAY: Health = { status: 'okay' };
/** snapd's limits for the message (in characters). */
export const MESSAGE_MIN = 7;
export const MESSAGE_MAX = 70;

/** `text` cut to `MESSAGE_MAX` characters (an ellipsis marks the cut). */
function fitMessage(text: string): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  const fitted = chars.length <= MESSAGE_MAX ? chars.join('') : `${chars.slice(0, MESSAGE_MAX - 1).join('')}…`;
  return fitted.length >= MESSAGE_MIN ? fitted : fitted.padEnd(MESSAGE_MIN, '.');
}

/** The health for a configuration status. */
export function healthOf(config: ConfigHealthInput): Health {
  if (config.state === 'unmounted') {
    return { status: 'waiting', code: 'solutions-not-connected', message: fitMessage('waiting for the Solutions folder (active-solution plug)') };
  }
  if (config.state === 'invalid') {
    const e = config.error;
    const where = e ? [path.basename(e.file) + (e.line ? ` line ${e.line}` : ''), e.field].filter(Boolean).join(' ') : 'config.json';
    return { status: 'error', code: 'config-invalid', message: fitMessage(`${where}: ${e?.reason ?? 'invalid'}`) };
  }
  return OKAY;
}

/** The `snapctl` arguments that set `health`. */
export function snapctlArgs(health: Health): string[] {
  if (health.status === 'okay') return ['set-health', 'okay'];
  return ['set-health', ...(health.code ? [`--code=${health.code}`] : []), health.status, health.message ?? health.status];
}

export interface HealthReporterOptions {
  /** The snapctl program. Default `snapctl` (found on PATH; snapd provides it in the snap's environment). */
  command?: string;
  logger?: Logger;
}

/**
 * Reports health changes to snapd. `report()` may be called as often as the status changes: a
 * health equal to the last one reported is not sent again, calls never overlap, and while one
 * runs only the newest health waits (older ones are skipped). A failed call is logged; the next
 * change tries again.
 */
export class HealthReporter {
  private readonly command: string;
  private readonly log: Logger;
  /** The health snapd has (as far as we know), as its snapctl arguments. */
  private sent: string | undefined;
  private wanted: Health | undefined;
  private running: Promise<void> | undefined;

  constructor(options: HealthReporterOptions = {}) {
    this.command = options.command ?? 'snapctl';
    this.log = options.logger ?? silentLogger;
  }

  /** Asks for `health` to be reported; returns at once. */
  report(health: Health): void {
    this.wanted = health;
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves when no report is running or waiting (for stop and tests). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.wanted) {
      const health = this.wanted;
      this.wanted = undefined;
      const args = snapctlArgs(health);
      const key = JSON.stringify(args);
      if (key === this.sent) continue;
      try {
        await run(this.command, args);
        this.sent = key;
        const fields = { status: health.status, code: health.code, message: health.message };
        if (health.status === 'okay') this.log.notice('app health', fields);
        else if (health.status === 'error') this.log.error('app health', fields);
        else this.log.warn('app health', fields);
      } catch (err) {
        this.log.warn('could not report the app health', { status: health.status, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args[0]}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
