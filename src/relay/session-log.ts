/**
 * @module
 * The relay's session lines, bounded under churn. Each session has a start and an end line (and
 * a warning when the relay's own VNC login fails); a
 * client that opens and drops upgrades in a loop would otherwise write two lines per session. Per
 * interval (default 10 s) the first `burst` lines of a kind (starts to one target, or ends of one
 * kind at one target) are written in full; the rest are counted and written as one line at the
 * end of the interval, e.g. `sessions ended count=12 target=10.0.0.5:5900 kind=viewer-gone`, or
 * as soon as `maxCount` of them have accumulated. The log therefore grows with time and with the
 * number of targets and end kinds, not with the number of sessions.
 */
import type { LogFields, Logger } from '../log.js';

export interface SessionLogOptions {
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
  level: 'info' | 'warn';
  written: number;
  counted: number;
}

export class SessionLog {
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly maxCount: number;
  private readonly tallies = new Map<string, Tally>();
  private timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, options: SessionLogOptions = {}) {
    this.log = log;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.burst = options.burst ?? 10;
    this.maxCount = options.maxCount ?? 1000;
  }

  /** A session started (to `target`, as `host:port`). */
  start(target: string, fields: LogFields): void {
    this.line(`start\0${target}`, 'session start', fields, 'sessions started', { target });
  }

  /** A session to `target` ended with `kind`. */
  end(target: string, kind: string, fields: LogFields): void {
    this.line(`end\0${target}\0${kind}`, 'session end', fields, 'sessions ended', { target, kind });
  }

  /** The relay's own VNC login with `target` failed with `kind` (a warning). */
  handshakeFailed(target: string, kind: string, fields: LogFields): void {
    this.line(`handshake\0${target}\0${kind}`, 'vnc handshake failed', fields, 'vnc handshakes failed', { target, kind }, 'warn');
  }

  /** Writes the counted lines now and ends the interval (at shutdown). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const tally of this.tallies.values()) this.summary(tally);
    this.tallies.clear();
  }

  private line(key: string, msg: string, fields: LogFields, summaryMsg: string, shared: LogFields, level: 'info' | 'warn' = 'info'): void {
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

  private summary(tally: Tally): void {
    if (tally.counted === 0) return;
    this.log[tally.level](tally.msg, { count: tally.counted, ...tally.fields, within: `${this.intervalMs / 1000}s` });
    tally.counted = 0;
  }
}
