/**
 * @module
 * Waiting for conditions without asserting on time: poll until true (with a generous give-up
 * bound that only turns a hang into a readable failure), or until a counter stops moving.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** Polls `condition` every `interval` ms until it holds; fails after `giveUpMs` naming `what`. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  interval = 20,
  giveUpMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + giveUpMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(interval);
  }
}

/**
 * Polls `read` every `interval` ms until it returns the same value `stable` times in a row
 * (e.g. bytes accepted by a blocked writer) and returns that value.
 */
export async function settle(read: () => number, interval = 100, stable = 5, giveUpMs = 30_000): Promise<number> {
  const deadline = Date.now() + giveUpMs;
  let last = read();
  let same = 0;
  while (same < stable) {
    if (Date.now() > deadline) throw new Error(`value never settled (last ${last})`);
    await sleep(interval);
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}
