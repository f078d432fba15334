/**
 * @module
 * Server-Sent Events to the viewer pages (`GET api/v1/events?viewer=<viewerId>`): what the relay's
 * control board says about a page's session (see relay/control.ts) reaches every stream the same
 * user opened with that viewer id. Each event is written (and so flushed) at once; a comment line
 * every 15 s keeps proxies (the ctrlX reverse proxy, Caddy) from closing an idle stream.
 */
import type { Response } from 'express';
import type { ViewerAddress, ViewerEventData, ViewerEventName } from '../relay/control.js';

/** Milliseconds between heartbeat comments. */
export const EVENTS_HEARTBEAT_MS = 15_000;
/** Streams per viewer id and in all; more are refused (the oldest of a viewer id is closed). */
const MAX_PER_VIEWER = 4;
const MAX_STREAMS = 256;

interface Stream {
  user: string;
  res: Response;
}

export class ViewerEventHub {
  private readonly streams = new Map<string, Set<Stream>>();
  private count = 0;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(heartbeatMs = EVENTS_HEARTBEAT_MS) {
    this.heartbeat = setInterval(() => {
      for (const set of this.streams.values()) for (const s of set) s.res.write(': keep-alive\n\n');
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  /** Open streams (for tests and status). */
  get size(): number {
    return this.count;
  }

  /**
   * Starts an event stream on `res` for `to`; it ends when the client goes. False (nothing sent)
   * when the app serves too many streams already.
   */
  open(to: ViewerAddress, res: Response): boolean {
    let set = this.streams.get(to.viewerId);
    if (this.count >= MAX_STREAMS && !set) return false;
    if (!set) {
      set = new Set();
      this.streams.set(to.viewerId, set);
    }
    if (set.size >= MAX_PER_VIEWER) {
      const oldest = set.values().next().value as Stream;
      this.drop(to.viewerId, oldest);
      oldest.res.end();
    }
    const stream: Stream = { user: to.user, res };
    set.add(stream);
    this.count++;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Accel-Buffering', 'no');
    res.setHeader('Connection', 'keep-alive');
    res.flushHeaders();
    // Tells the browser how long to wait before it reconnects on its own.
    res.write('retry: 3000\n\n');
    res.on('close', () => this.drop(to.viewerId, stream));
    return true;
  }

  /** Sends `event` to every stream of `to` (same viewer id and same user). */
  send<E extends ViewerEventName>(to: ViewerAddress, event: E, data: ViewerEventData[E]): void {
    const set = this.streams.get(to.viewerId);
    if (!set) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of set) if (s.user === to.user) s.res.write(frame);
  }

  /** Ends every stream (the app stops). */
  close(): void {
    clearInterval(this.heartbeat);
    for (const [id, set] of this.streams) {
      for (const s of set) {
        this.drop(id, s);
        s.res.end();
      }
    }
  }

  private drop(viewerId: string, stream: Stream): void {
    const set = this.streams.get(viewerId);
    if (!set?.delete(stream)) return;
    this.count--;
    if (set.size === 0) this.streams.delete(viewerId);
  }
}
