/**
 * @module
 * Waiting for conditions without asserting on time: poll until a condition holds, or until a
 * counter stops moving. The one wait helper of the suite: times are always named in an options
 * object (`{ timeoutMs, intervalMs }`), so no call can take a poll interval for a deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export interface WaitOptions {
  /**
   * When to give up (default 30 000 ms). Either a generous bound that only turns a hang into a
   * readable failure, or a requirement such as "within 2 s": the effect must arrive before it.
   */
  timeoutMs?: number;
  /** How often to poll (default 20 ms). */
  intervalMs?: number;
  /** What the failure message adds as the last state seen (e.g. the last status read). */
  seen?: () => string;
}

/**
 * Polls `check` every `intervalMs` until it returns a truthy value and returns that value; fails
 * after `timeoutMs` naming `what` (and what `seen` says). An exception from `check` fails at once.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, options: WaitOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = 30_000, intervalMs = 20, seen } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}${seen ? `; last seen: ${seen()}` : ''}`);
    await sleep(intervalMs);
  }
}

export interface SettleOptions {
  /** How often to read (default 100 ms). */
  intervalMs?: number;
  /** How many equal reads in a row count as settled (default 5). */
  stable?: number;
  /** When to give up (default 30 000 ms). */
  timeoutMs?: number;
}

/**
 * Reads `read` every `intervalMs` until it returns the same value `stable` times in a row
 * (e.g. bytes accepted by a blocked writer) and returns that value.
 */
export async function settle(read: () => number, options: SettleOptions = {}): Promise<number> {
  const { intervalMs = 100, stable = 5, timeoutMs = 30_000 } = options;
  const deadline = Date.now() + timeoutMs;
  let last = read();
  let same = 0;
  while (same < stable) {
    if (Date.now() > deadline) throw new Error(`value never settled (last ${last})`);
    await sleep(intervalMs);
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}
