/**
 * @module
 * "Resize remote" changes a machine's real screen; the relay puts it back. For a target with
 * `allowResize`, a session may resize only once the relay knows the screen's size before any
 * viewer changed it (read through a short extra connection when the session starts, while no
 * session on the target has resized); when the session that resized ends and no other open
 * session on the target has resized since, that size is restored (desktop-size.ts).
 */
import type { Logger } from '../log.js';
import { readDesktopSize, restoreDesktopSize, type DesktopSize, type SizeTarget } from './desktop-size.js';
import { targetKey } from './control.js';
import type { RelaySession } from './relay.js';

export interface SizeIo {
  read(target: SizeTarget): Promise<DesktopSize>;
  restore(target: SizeTarget, size: DesktopSize): Promise<DesktopSize>;
}

const REAL_IO: SizeIo = { read: readDesktopSize, restore: restoreDesktopSize };

export class ResizeGuard {
  /** Per target key: the size before any open session resized it. */
  private readonly originals = new Map<string, DesktopSize>();
  private readonly passwords = new WeakMap<RelaySession, string | undefined>();
  private readonly log: Logger;
  private readonly io: SizeIo;
  /** Restores under way (tests wait for them). */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(log: Logger, io: SizeIo = REAL_IO) {
    this.log = log;
    this.io = io;
  }

  /** A session starts: on an `allowResize` target it may resize once the original size is known. */
  join(session: RelaySession, password: string | undefined, live: Iterable<RelaySession>): void {
    if (!session.target.allowResize) return;
    this.passwords.set(session, password);
    session.filter.allowResize = false;
    const key = targetKey(session.target);
    if (this.resizedBy(key, live, session) && this.originals.has(key)) {
      session.filter.allowResize = true;
      return;
    }
    const { host, port } = session.target;
    this.track(
      this.io.read({ host, port, password }).then(
        (size) => {
          if (!this.resizedBy(key, live, session)) this.originals.set(key, size);
          session.filter.allowResize = this.originals.has(key);
        },
        (err: Error) => this.log.warn('cannot read the remote screen size; resizing stays off for this session', { targetId: key, error: err.message }),
      ),
    );
  }

  /** A session ended: when it resized the screen and no other open session did, the size goes back. */
  leave(session: RelaySession, live: Iterable<RelaySession>): void {
    if (!session.target.allowResize || session.filter.resizes === 0) return;
    const key = targetKey(session.target);
    if (this.resizedBy(key, live, session)) return; // a later resize is that session's to undo
    const original = this.originals.get(key);
    if (!original) return;
    const { host, port } = session.target;
    const to = `${original.width}x${original.height}`;
    this.track(
      this.io.restore({ host, port, password: this.passwords.get(session) }, original).then(
        (before) => this.log.info('remote screen size restored', { targetId: key, from: `${before.width}x${before.height}`, to }),
        (err: Error) => this.log.warn('cannot restore the remote screen size', { targetId: key, to, error: err.message }),
      ),
    );
  }

  /** Resolves once the reads and restores under way are done. */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /** True when an open session on `key` other than `except` has resized the screen. */
  private resizedBy(key: string, live: Iterable<RelaySession>, except: RelaySession): boolean {
    for (const s of live) if (s !== except && s.browserOpen && targetKey(s.target) === key && s.filter.resizes > 0) return true;
    return false;
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}
