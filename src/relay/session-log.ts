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
import { LineLimiter, type LineLimitOptions } from '../log-limit.js';
import type { LogFields, Logger } from '../log.js';

export type SessionLogOptions = LineLimitOptions;

export class SessionLog {
  private readonly lines: LineLimiter;

  constructor(log: Logger, options: SessionLogOptions = {}) {
    this.lines = new LineLimiter(log, options);
  }

  /** A session started (to `target`, as `host:port`). */
  start(target: string, fields: LogFields): void {
    this.lines.line(`start\0${target}`, 'info', 'session start', fields, 'sessions started', { target });
  }

  /** A session to `target` ended with `kind`. */
  end(target: string, kind: string, fields: LogFields): void {
    this.lines.line(`end\0${target}\0${kind}`, 'info', 'session end', fields, 'sessions ended', { target, kind });
  }

  /** The relay's own VNC login with `target` failed with `kind` (a warning). */
  handshakeFailed(target: string, kind: string, fields: LogFields): void {
    this.lines.line(`handshake\0${target}\0${kind}`, 'warn', 'vnc handshake failed', fields, 'vnc handshakes failed', { target, kind });
  }

  /** Writes the counted lines now and ends the interval (at shutdown). */
  flush(): void {
    this.lines.flush();
  }
}
