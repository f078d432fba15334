/**
 * @module
 * What the audit trail records: one {@link AuditEvent} per session start and end, control taken,
 * released or taken over, and session ended by a manager. The relay and the supervisor report
 * events through an {@link AuditSink}; `audit-log.ts` is the sink that keeps them on disk and puts
 * them in the journal. An event never carries a token or a password.
 */

/** The kinds of audit events, in the order a session usually meets them. */
export const AUDIT_EVENTS = [
  'session-start',
  'session-end',
  'control-take',
  'control-release',
  'control-taken-over',
  'session-ended-by',
] as const;

export type AuditEventName = (typeof AUDIT_EVENTS)[number];

/** One audit entry. */
export interface AuditEvent {
  /** When it happened, ISO 8601 (the sink fills in "now" when it is empty). */
  time: string;
  event: AuditEventName;
  /** The user name from the ctrlX token ("local" with authentication off). */
  user: string;
  /** The target's id. */
  target: string;
  /** The target's display name. */
  targetName: string;
  /** The client address (on the device: the last `X-Forwarded-For` entry). */
  address: string;
  /** The relay session's id. */
  sessionId: string;
  /** session-end: how long the session lasted. */
  durationMs?: number;
  /**
   * Words for people, e.g. the refused input count at session-end, who took control over, the
   * manager who ended the session.
   */
  detail?: string;
}

/** Where the relay and the supervisor report audit events: a synchronous, non-failing call. */
export interface AuditSink {
  record(event: AuditEvent): void;
}

/** A sink that keeps nothing (the default where no audit log is wired). */
export const noAudit: AuditSink = { record() {} };
