/**
 * @module
 * The settings form's rules, one copy for both sides: the server applies them to a form posted
 * without JavaScript (src/web/routes/config-page.ts), the page applies them before its `PUT`
 * (public/config.js imports `../common/form-rules.js`). They turn the rows as typed into the
 * targets to save; the configuration's own rules (src/config/schema.ts) then judge the result.
 *
 * Messages come from the catalogues (src/common/i18n/): the constants are the English texts (what
 * the API's `message` and the logs say); the functions take the page's language.
 *
 * Browser-safe: no Node APIs; imports only src/common/i18n/.
 */
import { DEFAULT_LANGUAGE, type Lang, type Message, type MessageKey, translate } from './i18n/index.js';

/** The port of an empty port field. */
export const DEFAULT_VNC_PORT = 5900;

/** Shown next to a password field when a password was typed and "Remove password" is ticked. */
export const PASSWORD_AND_REMOVE = translate('en', 'form.passwordAndRemove');

/** Next to the address fields of a target with a stored password. */
export const ADDRESS_CLEARS_PASSWORD = translate('en', 'form.addressClearsPassword');

/** What the page says after a save that cleared stored passwords because addresses changed (the targets' names). */
export function passwordsClearedText(names: readonly string[], lang: Lang = DEFAULT_LANGUAGE): string {
  const list = names.map((name) => translate(lang, 'form.quoted', { name })).join(', ');
  return translate(lang, 'form.passwordsCleared', { list });
}

/** The fields of a row that an error can be shown next to. */
export type RowField = 'id' | 'name' | 'host' | 'port' | 'password' | 'idleTimeout' | 'control' | 'allowResize';

/** One row of the form as typed. */
export interface RowInput {
  /** The target's id ('' for a row added on the page). */
  id: string;
  name: string;
  host: string;
  port: string;
  /** Minutes without input before a session is closed; '' for never. */
  idleTimeout: string;
  /** Who operates the screen: `on-request` ('' is the same), `immediate` or `watch-only`. */
  control: string;
  /** "Resize remote" is allowed. */
  allowResize: boolean;
  /** The password typed in this row ('' when none). */
  password: string;
  /** "Remove password" is ticked. */
  removePassword: boolean;
}

/** A target as `PUT api/v1/config` takes it; numbers the user mistyped stay text, for the message. */
export interface TargetInput {
  id: string;
  name: string;
  host: string;
  port: number | string;
  idleTimeout?: number | string;
  control?: string;
  allowResize?: boolean;
  /** A string sets the password, null removes it, absent keeps it. */
  password?: string | null;
}

/** Digits as a number; anything else as typed, so the configuration's message explains what is wanted. */
export function typedNumber(text: string): number | string {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/**
 * A fresh target id made from `name` (lowercase letters, digits and `-`, at most 24 characters;
 * `target` when nothing is left), with `-2`, `-3`, … when it is in `used` (compared without case,
 * as the configuration compares ids).
 */
export function targetIdFrom(name: string, used: Iterable<string>): string {
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 24) || 'target';
  const taken = new Set<string>();
  for (const id of used) taken.add(id.toLowerCase());
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** True for a row with nothing typed in it (an id and a ticked box alone do not count): it is dropped. */
export function isBlankRow(row: RowInput): boolean {
  return !row.host.trim() && !row.name.trim() && !row.port.trim() && !row.idleTimeout.trim() && !row.password;
}

/**
 * Turns the rows into the targets to save: blank rows are dropped; a blank name becomes the host, a
 * blank port {@link DEFAULT_VNC_PORT}, a blank idle timeout never, control `on-request` and no
 * resizing are left out (the defaults); a row without an id gets one
 * from its name, unique among the ids before it; a typed password sets it, a ticked "Remove
 * password" removes it, an empty field keeps it. A row with both is listed in `conflicts` and its
 * target carries no password change.
 * @returns the targets, the row index of each (`rowOf`), and the row indexes in conflict
 */
export function targetsFromRows(rows: readonly RowInput[]): { targets: TargetInput[]; rowOf: number[]; conflicts: number[] } {
  const targets: TargetInput[] = [];
  const rowOf: number[] = [];
  const conflicts: number[] = [];
  rows.forEach((row, i) => {
    if (isBlankRow(row)) return;
    const host = row.host.trim();
    const name = row.name.trim() || host;
    const portText = row.port.trim();
    const idleText = row.idleTimeout.trim();
    const id = row.id.trim() || targetIdFrom(name, targets.map((t) => t.id));
    const target: TargetInput = { id, name, host, port: portText === '' ? DEFAULT_VNC_PORT : typedNumber(portText) };
    if (idleText) target.idleTimeout = typedNumber(idleText);
    const control = row.control.trim();
    if (control && control !== 'on-request') target.control = control;
    if (row.allowResize) target.allowResize = true;
    if (row.password && row.removePassword) conflicts.push(i);
    else if (row.password) target.password = row.password;
    else if (row.removePassword) target.password = null;
    rowOf.push(i);
    targets.push(target);
  });
  return { targets, rowOf, conflicts };
}

/** The target and the row field an error's `field` names (`targets[2].host`), or null for others. */
export function rowFieldOf(field: string): { target: number; field: RowField } | null {
  const m = /^targets\[(\d+)\]\.(id|name|host|port|password|idleTimeout|control|allowResize)$/.exec(field);
  return m ? { target: Number(m[1]), field: m[2] as RowField } : null;
}

// ---- what the page says about a field ---------------------------------------------------------
// Messages in the field's own words, as the page labels it. The configuration's rules
// (src/config/schema.ts) use the same sentences, so the page, the form without JavaScript and the
// API's Problem `detail` agree; the API keeps the field's path (`targets[1].port`) in `field`.

export const MAX_NAME_CHARS = 64;
export const MAX_IDLE_MINUTES_TEXT = 1440;
/** The field messages as catalogue messages (the English constants below are their texts). */
const FIELD_MESSAGES = {
  id: { key: 'form.id' },
  nameEmpty: { key: 'form.nameEmpty' },
  nameLong: { key: 'form.nameLong', params: { max: MAX_NAME_CHARS } },
  host: { key: 'form.host' },
  hostIpv4: { key: 'form.hostIpv4' },
  port: { key: 'form.port' },
  idle: { key: 'form.idle', params: { max: MAX_IDLE_MINUTES_TEXT } },
  passwordEmpty: { key: 'form.passwordEmpty' },
  passwordLong: { key: 'form.passwordLong' },
  passwordLatin1: { key: 'form.passwordLatin1' },
  passwordAndRemove: { key: 'form.passwordAndRemove' },
} as const satisfies Record<string, Message>;

const english = (m: Message): string => translate('en', m.key, m.params);

export const ID_MESSAGE = english(FIELD_MESSAGES.id);
export const NAME_EMPTY_MESSAGE = english(FIELD_MESSAGES.nameEmpty);
export const NAME_LONG_MESSAGE = english(FIELD_MESSAGES.nameLong);
export const HOST_MESSAGE = english(FIELD_MESSAGES.host);
export const HOST_IPV4_MESSAGE = english(FIELD_MESSAGES.hostIpv4);
export const PORT_MESSAGE = english(FIELD_MESSAGES.port);
export const IDLE_MESSAGE = english(FIELD_MESSAGES.idle);
export const PASSWORD_EMPTY_MESSAGE = english(FIELD_MESSAGES.passwordEmpty);
export const PASSWORD_LONG_MESSAGE = english(FIELD_MESSAGES.passwordLong);
export const PASSWORD_LATIN1_MESSAGE = english(FIELD_MESSAGES.passwordLatin1);

/** English field message → its catalogue message (the constants above are the only texts). */
const BY_TEXT = new Map<string, Message>(Object.values(FIELD_MESSAGES).map((m) => [english(m), m]));

/**
 * The catalogue message of a field message made by these rules (one of the constants above), so
 * an answer can say it in the request's language; undefined for any other text.
 */
export function fieldMessageOf(message: string): Message | undefined {
  return BY_TEXT.get(message);
}

/** `message` (one of the constants above) in `lang`; any other text as it is. */
export function fieldMessageIn(message: string, lang: Lang): string {
  const m = BY_TEXT.get(message);
  return m ? translate(lang, m.key, m.params) : message;
}

/** The message when `id` is taken by the target at (0-based) `index`, as a catalogue message. */
export function duplicateId(id: string, index: number): Message {
  return { key: 'form.duplicateId', params: { id, n: index + 1 } };
}

/** The message when `id` is taken by the target at (0-based) `index`. */
export function duplicateIdMessage(id: string, index: number): string {
  return english(duplicateId(id, index));
}

/** Four dot-separated numbers: what a user means as an IPv4 address. */
export function isDottedNumbers(host: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(host);
}

/** A valid dotted IPv4 address: four numbers 0 to 255 without leading zeros. */
export function isIPv4(host: string): boolean {
  if (!isDottedNumbers(host)) return false;
  return host.split('.').every((part) => /^(0|[1-9]\d{0,2})$/.test(part) && Number(part) <= 255);
}

/**
 * What is wrong with a host as typed (trimmed), or null when the browser cannot tell (the server
 * decides the rest): empty, or four dot-separated numbers that are not a valid IPv4 address
 * (`192.168.1.300` is not a host name).
 */
export function hostProblem(host: string, lang: Lang = DEFAULT_LANGUAGE): string | null {
  const h = host.trim();
  if (!h) return fieldMessageIn(HOST_MESSAGE, lang);
  if (isDottedNumbers(h) && !isIPv4(h)) return fieldMessageIn(HOST_IPV4_MESSAGE, lang);
  return null;
}

/** What is wrong with a port (a number, or text as typed), or null. */
export function portProblem(port: number | string, lang: Lang = DEFAULT_LANGUAGE): string | null {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? null : fieldMessageIn(PORT_MESSAGE, lang);
}

/**
 * The problems the page can see in a target before sending it (the configuration's own rules
 * judge everything again): one per field, in the form's field order.
 */
export function targetProblems(t: TargetInput, lang: Lang = DEFAULT_LANGUAGE): { field: RowField; message: string }[] {
  const out: { field: RowField; message: string }[] = [];
  const say = (text: string): string => fieldMessageIn(text, lang);
  if (!t.name.trim()) out.push({ field: 'name', message: say(NAME_EMPTY_MESSAGE) });
  else if (t.name.trim().length > MAX_NAME_CHARS) out.push({ field: 'name', message: say(NAME_LONG_MESSAGE) });
  const host = hostProblem(t.host, lang);
  if (host) out.push({ field: 'host', message: host });
  const port = portProblem(t.port, lang);
  if (port) out.push({ field: 'port', message: port });
  if (t.idleTimeout !== undefined) {
    const n = t.idleTimeout;
    if (!(typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= MAX_IDLE_MINUTES_TEXT)) out.push({ field: 'idleTimeout', message: say(IDLE_MESSAGE) });
  }
  return out;
}

/** How the page names a target in a message: `Target 2 (Welder)`. */
export function targetLabel(index: number, name = '', lang: Lang = DEFAULT_LANGUAGE): string {
  const n = index + 1;
  return name.trim() ? translate(lang, 'form.targetLabelNamed', { n, name: name.trim() }) : translate(lang, 'form.targetLabel', { n });
}

/**
 * A field path (`targets[1].port`) in words for people (`Target 2`), or the path unchanged when it
 * is not a target's field. Messages already start with the field's label.
 */
export function fieldInWords(field: string, lang: Lang = DEFAULT_LANGUAGE): string {
  const at = rowFieldOf(field);
  return at ? targetLabel(at.target, '', lang) : field;
}

/** What a "Test connection" answer holds that the page words (relay/probe.ts's `ProbeResult`). */
export interface ProbeAnswer {
  ok: boolean;
  outcome: string;
  message: string;
  /** `host:port` as tested. */
  target?: string;
  version?: string;
  login?: 'password' | 'none';
  asksPassword?: boolean;
  nextTestIn?: number;
}

/**
 * A Test connection's answer in the page's words: whether the server asks for a password and how
 * the typed (`typed`) or stored password fared; other answers (not reachable, not a VNC server, a
 * lockout) as the probe says them. An answer from an earlier test says when the next one connects.
 */
/**
 * What a test found, in `lang`: in English the probe's own sentence (it has the most detail), in
 * other languages the sentence of its outcome.
 */
export function probeOutcomeText(r: Pick<ProbeAnswer, 'outcome' | 'message' | 'target' | 'version'>, lang: Lang = DEFAULT_LANGUAGE): string {
  if (lang === 'en') return r.message;
  return translate(lang, `probe.outcome.${r.outcome}` as MessageKey, { target: r.target ?? '', version: r.version ?? 'RFB' });
}

export function probeText(r: ProbeAnswer, typed: boolean, lang: Lang = DEFAULT_LANGUAGE): string {
  const t = (key: MessageKey, params?: Record<string, string | number>): string => translate(lang, key, params);
  const server = t('probe.server', { version: r.version ?? 'RFB' });
  let text: string | undefined;
  if (r.asksPassword === false && r.ok) {
    text = t(typed ? 'probe.noPasswordTyped' : 'probe.noPassword', { server });
  } else if (r.asksPassword === true) {
    if (r.ok) text = t(typed ? 'probe.acceptedTyped' : 'probe.acceptedStored', { server });
    else if (r.outcome === 'login-rejected') text = t(typed ? 'probe.rejectedTyped' : 'probe.rejectedStored', { server });
    else if (r.outcome === 'security-unsupported') text = t('probe.needsPassword', { server });
  } else if (r.nextTestIn !== undefined && lang === 'en') {
    return r.message; // the probe's own words already say when the next test connects
  }
  if (text === undefined) text = probeOutcomeText(r, lang);
  if (r.nextTestIn !== undefined) text = t('probe.earlier', { text, seconds: r.nextTestIn });
  return text;
}
