/**
 * @module
 * The settings form's rules, one copy for both sides: the server applies them to a form posted
 * without JavaScript (src/web/routes/config-page.ts), the page applies them before its `PUT`
 * (public/config.js imports `../shared/form-rules.js`). They turn the rows as typed into the
 * targets to save; the configuration's own rules (src/config/schema.ts) then judge the result.
 *
 * Browser-safe: no imports, no Node APIs.
 */

/** The port of an empty port field. */
export const DEFAULT_VNC_PORT = 5900;

/** Shown next to a password field when a password was typed and "Remove password" is ticked. */
export const PASSWORD_AND_REMOVE = 'Type a new password or tick "Remove password", not both.';

/** Next to the address fields of a target with a stored password. */
export const ADDRESS_CLEARS_PASSWORD = 'Changing the address clears the stored password (unless you type a new one).';

/** What the page says after a save that cleared stored passwords because addresses changed (the targets' names). */
export function passwordsClearedText(names: readonly string[]): string {
  const list = names.map((n) => `"${n}"`).join(', ');
  return `The stored VNC password of ${list} was cleared because the address changed: enter it again if the server asks for one.`;
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
