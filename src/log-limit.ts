/**
 * @module
 * Log lines bounded under churn. Per interval (default 10 s) the first `burst` lines of a key are
 * written in full; the rest are counted and written as one summary line at the end of the
 * interval (e.g. `sessions ended count=12 target=10.0.0.5:5900 kind=viewer-gone within=10s`), or
 * as soon as `maxCount` of them have accumulated. The log then grows with time and with the number
 * of keys, not with the number of events. Used by the relay's session lines and by the audit
 * trail's journal lines (the audit file itself keeps every event).
 */
import type { LogFields, Logger, LogLevel } from './log.js';

export interface LineLimitOptions {
  /** Milliseconds of one counting interval. Default 10000. */
  intervalMs?: number;
  /** Lines of one key written in full per interval. Default 10. */
  burst?: number;
  /** Counted lines of one key after which the summary is written at once. Default 1000. */
  maxCount?: number;
}

interface Tally {
  /** The summary's message and the fields every counted line shared. */
  msg: string;
  fields: LogFields;
  level: Exclude<LogLevel, 'debug'>;
  written: number;
  counted: number;
}

export class LineLimiter {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly maxCount: number;
  private readonly tallies = new Map<string, Tally>();
  private timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, options: LineLimitOptions = {}) {
    this.log = log;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.burst = options.burst ?? 10;
    this.maxCount = options.maxCount ?? 1000;
  }

  /**
   * Writes `msg` with `fields` at `level`, unless `key` already had its burst in this interval;
   * then it is counted into one line `summaryMsg` with `shared` (what the counted lines share).
   */
  line(key: string, level: Tally['level'], msg: string, fields: LogFields, summaryMsg: string, shared: LogFields): void {
    let tally = this.tallies.get(key);
    if (!tally) {
      tally = { msg: summaryMsg, fields: shared, level, written: 0, counted: 0 };
      this.tallies.set(key, tally);
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.intervalMs);
      this.timer.unref();
    }
    if (tally.written < this.burst) {
      tally.written++;
      this.log[level](msg, fields);
      return;
    }
    tally.counted++;
    if (tally.counted >= this.maxCount) this.summary(tally);
  }

  /** Writes the counted lines now and ends the interval (at shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const tally of this.tallies.values()) this.summary(tally);
    this.tallies.clear();
  }

  private summary(tally: Tally): void {
    if (tally.counted === 0) return;
    this.log[tally.level](tally.msg, { count: tally.counted, ...tally.fields, within: `${this.intervalMs / 1000}s` });
    tally.counted = 0;
  }
}
