/**
 * @module
 * Who operates which screen: the relay's control board. Every session starts watching (the watch
 * filter drops its input); at most one session per target holds control. A session of a user with
 * the operate role takes control (from whoever had it, who goes back to watching and is told by
 * whom), releases it, or loses it when it ends; on an `immediate` target the first session of such
 * a user gets control on connect while nobody holds it; on a `watch-only` target nobody does.
 *
 * The board also tells each viewer page what concerns it (by the page's own `viewerId`, only to
 * the same user): its session, who else is on its target, its control changing, idle warnings,
 * its end; and reports the audit events (session start and end, control taken, released, taken
 * over, a session ended by a manager).
 */
import { randomBytes } from 'node:crypto';
import type { AuditEventName, AuditSink } from '../audit/events.js';
import type { RelaySession, RelayTarget, SessionOwner } from './relay.js';
import { formatHostPort } from './address.js';

export type SessionMode = 'watch' | 'control';
export type Role = SessionOwner['role'];

/** The events a viewer page gets (`GET api/v1/events`), with their data. */
export interface ViewerEventData {
  session: { id: string; mode: SessionMode; target: string };
  peers: { target: string; peers: { user: string; mode: SessionMode; since: string; own: boolean }[] };
  control: { mode: SessionMode; by?: string };
  'idle-warning': { secondsLeft: number };
  'idle-cleared': Record<string, never>;
  ended: { code: number; by?: string };
}
export type ViewerEventName = keyof ViewerEventData;

/** Whom an event is for: the viewer page's id, and its user (another user never gets it). */
export interface ViewerAddress {
  viewerId: string;
  user: string;
}

/** Delivers an event to the pages subscribed as `to`. */
export type ViewerEventSink = <E extends ViewerEventName>(to: ViewerAddress, event: E, data: ViewerEventData[E]) => void;

/** Who asks (the API's caller). */
export interface Caller {
  name: string;
  role: Role;
}

/** A session as `GET api/v1/sessions` lists it. */
export interface SessionView {
  id: string;
  target: string;
  targetName: string;
  user: string;
  mode: SessionMode;
  since: string;
  own: boolean;
  /** Only for the caller's own sessions. */
  viewerId?: string;
  /** Only for the manage role. */
  address?: string;
}

export type ControlResult = { ok: true; mode: SessionMode } | { ok: false; why: 'not-found' | 'watch-only' | 'forbidden' };

const ROLE_RANK: Record<Role, number> = { watch: 0, operate: 1, manage: 2 };

/** The key control is held under: the target's id, or its address for targets without one. */
export function targetKey(target: RelayTarget): string {
  return target.id ?? formatHostPort(target.host, target.port);
}

/** A fresh public session id: 16 URL-safe characters (96 random bits). */
export function newSessionId(): string {
  return randomBytes(12).toString('base64url');
}

export class ControlBoard {
  private readonly sessions = new Set<RelaySession>();
  /** Per target key: the session holding control. */
  private readonly holders = new Map<string, RelaySession>();
  /** Sessions ended by a manager: who, for their `ended` event. */
  private readonly endedBy = new WeakMap<RelaySession, string>();
  private readonly audit: AuditSink;
  private readonly events: ViewerEventSink;

  constructor(audit: AuditSink, events: ViewerEventSink) {
    this.audit = audit;
    this.events = events;
  }

  /** A new session: its id, its first mode, the start in the audit trail, the viewers told. */
  join(session: RelaySession): void {
    session.sessionId = newSessionId();
    this.sessions.add(session);
    session.hooks = {
      idleWarning: (s, secondsLeft) => this.tell(s, 'idle-warning', { secondsLeft }),
      idleCleared: (s) => this.tell(s, 'idle-cleared', {}),
    };
    const key = targetKey(session.target);
    this.record(session, 'session-start');
    if (session.target.control === undefined) {
      // A target from no configuration (the `relay` command, a bare Relay): no rules for
      // operating it, every session operates it, as before roles existed.
      session.setMode('control');
    } else if (session.target.control === 'immediate' && !this.holders.get(key)?.browserOpen && ROLE_RANK[session.owner.role] >= ROLE_RANK.operate) {
      // Nobody holds control (a holder whose viewer has left, still closing, does not count).
      this.holders.set(key, session);
      session.setMode('control');
      this.record(session, 'control-take', 'on connect (control: immediate)');
    }
    this.tell(session, 'session', { id: session.sessionId, mode: session.mode, target: key });
    this.peers(key);
  }

  /** A session ended: control is free again, the end is recorded, its viewer and peers are told. */
  leave(session: RelaySession, end: { code: number; durationMs: number }): void {
    if (!this.sessions.delete(session)) return;
    const key = targetKey(session.target);
    if (this.holders.get(key) === session) this.holders.delete(key);
    const by = this.endedBy.get(session);
    this.record(session, 'session-end', `code ${end.code}; refused input ${session.refusedInput}`, end.durationMs);
    this.tell(session, 'ended', by !== undefined ? { code: end.code, by } : { code: end.code });
    this.peers(key);
  }

  /** The open sessions (whose viewer is still there), as `caller` may see them. */
  list(caller: Caller): SessionView[] {
    const out: SessionView[] = [];
    for (const s of this.sessions) {
      if (!s.browserOpen) continue;
      const own = s.owner.user === caller.name;
      out.push({
        id: s.sessionId,
        target: targetKey(s.target),
        targetName: s.target.name ?? targetKey(s.target),
        user: s.owner.user,
        mode: s.mode,
        since: new Date(s.startedAt).toISOString(),
        own,
        ...(own && s.owner.viewerId !== undefined ? { viewerId: s.owner.viewerId } : {}),
        ...(caller.role === 'manage' ? { address: s.owner.address } : {}),
      });
    }
    return out;
  }

  /** Takes control for the caller's own session `id`; whoever held it goes back to watching. */
  take(id: string, caller: Caller): ControlResult {
    const s = this.own(id, caller);
    if (!s) return { ok: false, why: 'not-found' };
    if (ROLE_RANK[caller.role] < ROLE_RANK.operate || ROLE_RANK[s.owner.role] < ROLE_RANK.operate) return { ok: false, why: 'forbidden' };
    if (s.target.control === 'watch-only') return { ok: false, why: 'watch-only' };
    if (s.mode === 'control') return { ok: true, mode: 'control' };
    const key = targetKey(s.target);
    const previous = this.holders.get(key);
    if (previous && previous !== s) {
      previous.setMode('watch');
      this.tell(previous, 'control', { mode: 'watch', by: caller.name });
      this.record(previous, 'control-taken-over', `by ${caller.name}`);
    }
    this.holders.set(key, s);
    s.setMode('control');
    this.tell(s, 'control', { mode: 'control' });
    this.record(s, 'control-take', previous && previous !== s ? `from ${previous.owner.user}` : undefined);
    this.peers(key);
    return { ok: true, mode: 'control' };
  }

  /** Gives control back: the caller's own session `id` watches again. */
  release(id: string, caller: Caller): ControlResult {
    const s = this.own(id, caller);
    if (!s) return { ok: false, why: 'not-found' };
    if (s.mode === 'watch') return { ok: true, mode: 'watch' };
    const key = targetKey(s.target);
    if (this.holders.get(key) === s) this.holders.delete(key);
    s.setMode('watch');
    this.tell(s, 'control', { mode: 'watch' });
    this.record(s, 'control-release');
    this.peers(key);
    return { ok: true, mode: 'watch' };
  }

  /** Ends session `id` for a manager (4031, the reason names them); false when there is none. */
  end(id: string, manager: Caller): boolean {
    const s = this.find(id);
    if (!s) return false;
    this.endedBy.set(s, manager.name);
    this.record(s, 'session-ended-by', `by ${manager.name}`);
    s.close('ended-by-manager', `Disconnected by ${manager.name}`);
    return true;
  }

  /** What a page subscribing as `to` should know at once: its session and its peers, if it has a session. */
  replay(to: ViewerAddress): void {
    for (const s of this.sessions) {
      if (s.owner.viewerId !== to.viewerId || s.owner.user !== to.user || !s.browserOpen) continue;
      const key = targetKey(s.target);
      this.tell(s, 'session', { id: s.sessionId, mode: s.mode, target: key });
      this.tellPeers(s, key);
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private find(id: string): RelaySession | undefined {
    for (const s of this.sessions) if (s.sessionId === id && s.browserOpen) return s;
    return undefined;
  }

  private own(id: string, caller: Caller): RelaySession | undefined {
    const s = this.find(id);
    return s && s.owner.user === caller.name ? s : undefined;
  }

  private tell<E extends ViewerEventName>(s: RelaySession, event: E, data: ViewerEventData[E]): void {
    if (s.owner.viewerId === undefined) return;
    this.events({ viewerId: s.owner.viewerId, user: s.owner.user }, event, data);
  }

  /** Tells every session on target `key` who is there now. */
  private peers(key: string): void {
    for (const s of this.sessions) if (targetKey(s.target) === key) this.tellPeers(s, key);
  }

  private tellPeers(to: RelaySession, key: string): void {
    if (to.owner.viewerId === undefined) return;
    const peers: ViewerEventData['peers']['peers'] = [];
    for (const s of this.sessions) {
      if (targetKey(s.target) !== key || !s.browserOpen) continue;
      peers.push({ user: s.owner.user, mode: s.mode, since: new Date(s.startedAt).toISOString(), own: s === to });
    }
    this.tell(to, 'peers', { target: key, peers });
  }

  private record(s: RelaySession, event: AuditEventName, detail?: string, durationMs?: number): void {
    this.audit.record({
      time: new Date().toISOString(),
      event,
      user: s.owner.user,
      target: targetKey(s.target),
      targetName: s.target.name ?? targetKey(s.target),
      address: s.owner.address,
      sessionId: s.sessionId,
      ...(durationMs !== undefined ? { durationMs } : {}),
      ...(detail !== undefined ? { detail } : {}),
    });
  }
}
