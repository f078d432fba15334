/**
 * @module
 * A relay session lasts no longer than the login that opened it. The login (a ctrlX token) is
 * checked at the upgrade; afterwards a {@link LoginWatch} ends the session with 4030
 * `login-expired` when the token expires (a timer at its `exp`), and asks the identity manager
 * again every `checkMs` (at most 5 minutes) whether the token still holds: a revoked token ends
 * the session the same way. When the identity manager cannot be reached the session goes on (a
 * restart of the identity manager must not drop every viewer), still bounded by the expiry.
 */
import type { Logger } from '../log.js';

/** The login behind a session, as the upgrade check found it. */
export interface SessionLogin {
  /** Who (from the token), for the log. */
  user: string;
  /** When the token expires, in ms since the epoch. */
  expiresAt: number;
  /**
   * Asks the identity manager whether the token still holds, bypassing any cache: resolves false
   * when it was revoked or has expired, rejects when the identity manager cannot be reached.
   */
  stillValid(): Promise<boolean>;
}

/** The longest interval between two checks with the identity manager: 5 minutes. */
export const MAX_LOGIN_CHECK_MS = 5 * 60_000;

/** setTimeout's limit (about 24.8 days); a later expiry is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Watches one session's login; `end` is called at most once, with the reason. */
export class LoginWatch {
  private expiry: NodeJS.Timeout | undefined;
  private readonly check: NodeJS.Timeout;
  private checking = false;
  private done = false;

  constructor(
    private readonly login: SessionLogin,
    checkMs: number,
    private readonly end: (reason: string) => void,
    private readonly log: Logger,
  ) {
    this.armExpiry();
    this.check = setInterval(this.recheck, Math.min(checkMs, MAX_LOGIN_CHECK_MS));
    this.check.unref();
  }

  /** Stops the timers (the session ended). */
  stop(): void {
    this.done = true;
    clearTimeout(this.expiry);
    clearInterval(this.check);
  }

  private armExpiry(): void {
    const left = this.login.expiresAt - Date.now();
    if (left <= 0) {
      // Already past `exp` (accepted within the clock-skew leeway): end on the next tick, once the
      // session is fully set up.
      this.expiry = setTimeout(() => this.finish('login expired'), 0);
      return;
    }
    this.expiry = setTimeout(() => this.armExpiry(), Math.min(left, MAX_TIMER_MS));
    this.expiry.unref();
  }

  private readonly recheck = (): void => {
    if (this.checking || this.done) return;
    this.checking = true;
    this.login.stillValid().then(
      (valid) => {
        this.checking = false;
        if (!valid) this.finish(Date.now() >= this.login.expiresAt ? 'login expired' : 'login revoked');
      },
      (err: unknown) => {
        this.checking = false;
        if (this.done) return;
        this.log.warn('cannot recheck the login of a session; it goes on until the token expires', {
          user: this.login.user,
          error: err instanceof Error ? err.message : String(err),
        });
      },
    );
  };

  private finish(reason: string): void {
    if (this.done) return;
    this.stop();
    this.end(reason);
  }
}
