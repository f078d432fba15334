/**
 * @module
 * The status as each user may see it. A manager (manage scope, or authentication off) sees all of
 * it. A user who may only view sees the targets by name and id, the relay's state and counters,
 * and nothing that maps the network or the device: no host addresses or ports, no file paths or
 * file errors, no other viewers' addresses, no VNC server messages.
 */
import type { AppStatus } from './deps.js';

/** What a view-only user gets from `GET api/v1/status` (and the status partial). */
export interface ViewerStatus {
  version: string;
  startedAt: string;
  config: { state: AppStatus['config']['state']; exists: boolean; loading: boolean; appliedAt: string };
  relay: {
    state: AppStatus['relay']['state'];
    since: string;
    targets: {
      id: string;
      name: string;
      demo: boolean;
      passwordSet: boolean;
      idleMinutes: number | null;
      control: AppStatus['relay']['targets'][number]['control'];
      /** Rejected stored passwords in a row and the hold-back, without the server's message. */
      auth: { failures: number; retryIn: number | null } | null;
      /** Since when the VNC server locks the controller out, without the server's message. */
      lockout: { at: string } | null;
      /** Whether its VNC server was reached lately: the outcome's kind and time, without the address. */
      reach: { ok: boolean; kind: string | null; at: string; via: 'session' | 'test' } | null;
    }[];
    sessions: { id: number; targetId: string | undefined; startedAt: string; bytesUp: number; bytesDown: number }[];
    totals: AppStatus['relay']['totals'];
    limits: AppStatus['relay']['limits'];
  };
}

/** `status` for a user who may manage (everything), or one who may only view (see the module). */
export function statusFor(status: AppStatus, manage: boolean): AppStatus | ViewerStatus {
  if (manage) return status;
  const { config: c, relay: r } = status;
  return {
    version: status.version,
    startedAt: status.startedAt,
    config: { state: c.state, exists: c.exists, loading: c.loading, appliedAt: c.appliedAt },
    relay: {
      state: r.state,
      since: r.since,
      targets: r.targets.map((t) => ({
        id: t.id,
        name: t.name,
        demo: t.demo,
        passwordSet: t.passwordSet,
        idleMinutes: t.idleMinutes,
        control: t.control,
        auth: t.auth ? { failures: t.auth.failures, retryIn: t.auth.retryIn } : null,
        lockout: t.lockout ? { at: t.lockout.at } : null,
        reach: t.reach ? { ok: t.reach.ok, kind: t.reach.kind, at: t.reach.at, via: t.reach.via } : null,
      })),
      sessions: r.sessions.map((s) => ({ id: s.id, targetId: s.targetId, startedAt: s.startedAt, bytesUp: s.bytesUp, bytesDown: s.bytesDown })),
      totals: r.totals,
      limits: r.limits,
    },
  };
}
