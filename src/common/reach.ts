/**
 * @module
 * The settings page's reachability dot in words: whether a target's VNC server was reached, by
 * what (a viewer session or Test connection), when, and if not, why (a failure kind). The status
 * API carries the facts (`reach` of each target, see src/supervisor/supervisor.ts); the page's
 * server rendering and its script say them with this one function.
 *
 * Browser-safe: no Node imports, bundled into the settings page's script.
 */
import type { FailureKind } from './failures.js';
import { CATALOGUES, type Lang, type MessageKey, translate } from './i18n/index.js';

/** A target's `reach` as the status API gives it. */
export interface Reach {
  ok: boolean;
  /** The failure kind (src/common/failures.ts) when not ok. */
  kind: string | null;
  /** ISO time of the outcome. */
  at: string;
  via: 'session' | 'test';
}

export type ReachState = 'ok' | 'bad' | 'unknown';

/**
 * The failure kind of a Test connection outcome that failed before any login (a failed login
 * carries its kind itself): what a viewer would meet at that address.
 */
export const PROBE_OUTCOME_KINDS = {
  'not-vnc': 'not-vnc',
  refused: 'connection-refused',
  timeout: 'connect-timeout',
  'not-found': 'host-not-found',
  unreachable: 'host-unreachable',
  error: 'target-error',
} as const satisfies Record<string, FailureKind>;

/** `at` as the clock shows it ("08:10"), with the day in front when it is not `now`'s. */
function clock(at: Date, lang: Lang, now: Date): string {
  const time = at.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  if (at.toDateString() === now.toDateString()) return time;
  return `${at.toLocaleDateString(lang, { day: 'numeric', month: 'short' })} ${time}`;
}

/** Why a target was not reached, in a few words (a kind without its own text: "connection failed"). */
function why(kind: string | null, lang: Lang): string {
  const key = `reach.kind.${kind}`;
  return translate(lang, (Object.hasOwn(CATALOGUES.en, key) ? key : 'reach.kind.target-error') as MessageKey);
}

/**
 * The dot's state and its words: "Reachable 08:10 (viewer session)", "Not reachable: connection
 * refused, 08:12", or "Not checked yet" without a reach.
 */
export function reachWords(reach: Reach | null | undefined, lang: Lang, now: Date = new Date()): { state: ReachState; text: string } {
  if (!reach) return { state: 'unknown', text: translate(lang, 'reach.none') };
  const at = new Date(reach.at);
  const time = Number.isNaN(at.getTime()) ? '' : clock(at, lang, now);
  if (reach.ok) return { state: 'ok', text: translate(lang, 'reach.ok', { time, via: translate(lang, reach.via === 'session' ? 'reach.via.session' : 'reach.via.test') }) };
  return { state: 'bad', text: translate(lang, 'reach.bad', { why: why(reach.kind, lang), time }) };
}
