/**
 * @module
 * The idle-session timeout of one session: closes it (through `onIdle`) once `idleMs` have passed
 * without user input from the browser (keys, pointer, clipboard text, told apart by the watch
 * filter, rfb/client-filter.ts; input a watching session may not send counts too: someone is there).
 * A warning comes a minute before (half the time for timeouts of two minutes or less), and is
 * cleared by the next input. One timer per session, re-armed only when it fires: input itself just
 * notes the time.
 */

/** How long before the timeout the warning comes, at most. */
export const IDLE_WARNING_MS = 60_000;

export interface IdleWarnings {
  /** The time left is down to `secondsLeft`: say so. */
  warn(secondsLeft: number): void;
  /** Input came after a warning. */
  cleared(): void;
}

export class IdleWatch {
  readonly idleMs: number;
  private readonly onIdle: () => void;
  private readonly warnings: IdleWarnings | undefined;
  /** Milliseconds before the timeout at which the warning comes. */
  private readonly warnBefore: number;
  private lastInput = Date.now();
  private warned = false;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param idleMs milliseconds without input after which `onIdle` runs (once)
   * @param warnings told before the timeout and when input clears the warning
   */
  constructor(idleMs: number, onIdle: () => void, warnings?: IdleWarnings) {
    this.idleMs = idleMs;
    this.onIdle = onIdle;
    this.warnings = warnings;
    this.warnBefore = warnings ? Math.min(IDLE_WARNING_MS, idleMs / 2) : 0;
    this.timer = setTimeout(this.check, idleMs - this.warnBefore);
  }

  /** User input from the browser. */
  input(): void {
    this.lastInput = Date.now();
    if (this.warned) {
      this.warned = false;
      this.warnings?.cleared();
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The idle time in words for the close reason: `30 min`, or seconds when not whole minutes. */
  span(): string {
    const minutes = this.idleMs / 60_000;
    return Number.isInteger(minutes) ? `${minutes} min` : `${this.idleMs / 1000} s`;
  }

  private readonly check = (): void => {
    const left = this.lastInput + this.idleMs - Date.now();
    if (left <= 0) {
      this.timer = undefined;
      this.onIdle();
      return;
    }
    if (left > this.warnBefore) {
      this.timer = setTimeout(this.check, left - this.warnBefore);
      return;
    }
    if (!this.warned && this.warnings) {
      this.warned = true;
      this.warnings.warn(Math.ceil(left / 1000));
    }
    this.timer = setTimeout(this.check, left);
  };
}
