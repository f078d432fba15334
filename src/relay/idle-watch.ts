/**
 * @module
 * The idle-session timeout of one session: closes it (through `onIdle`) once `idleMs` have passed
 * without user input from the browser (keys, pointer, clipboard text; see rfb/input-watcher.ts).
 * One timer per session, re-armed only when it fires: input itself just notes the time.
 */
import { InputWatcher } from '../rfb/input-watcher.js';

export class IdleWatch {
  readonly idleMs: number;
  private readonly input: InputWatcher;
  private readonly onIdle: () => void;
  private lastInput = Date.now();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param idleMs milliseconds without input after which `onIdle` runs (once)
   * @param afterHandshake true when the relay does the VNC handshake itself (see {@link InputWatcher})
   */
  constructor(idleMs: number, afterHandshake: boolean, onIdle: () => void) {
    this.idleMs = idleMs;
    this.input = new InputWatcher(afterHandshake);
    this.onIdle = onIdle;
    this.timer = setTimeout(this.check, idleMs);
  }

  /** Bytes the browser sent towards the server. */
  browser(chunk: Buffer): void {
    if (this.input.browser(chunk)) this.lastInput = Date.now();
  }

  /** Bytes the server sent towards the browser (the watcher needs its greeting). */
  server(chunk: Buffer): void {
    this.input.server(chunk);
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
    if (left > 0) {
      this.timer = setTimeout(this.check, left);
      return;
    }
    this.timer = undefined;
    this.onIdle();
  };
}
