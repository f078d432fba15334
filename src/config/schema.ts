/**
 * @module
 * The configuration kept in the ctrlX active configuration (`config.json`): its type, its
 * validation, and the empty default. One validator for every caller: the page, the API, the file
 * on disk and the load callback. The page and the API may also send a target's VNC password
 * ({@link validateConfigInput}); it is split off here and kept by config/secrets.ts, never in the file.
 */
import type { FieldError } from '../errors.js';
import { isValidHost, parsePort } from '../relay/address.js';
import type { Message } from '../common/i18n/index.js';
import {
  duplicateId,
  duplicateIdMessage,
  HOST_MESSAGE,
  hostProblem,
  ID_MESSAGE,
  IDLE_MESSAGE,
  NAME_EMPTY_MESSAGE,
  NAME_LONG_MESSAGE,
  PASSWORD_EMPTY_MESSAGE,
  PASSWORD_LATIN1_MESSAGE,
  PASSWORD_LONG_MESSAGE,
  PORT_MESSAGE,
  targetIdFrom,
} from '../common/form-rules.js';

export type { FieldError } from '../errors.js';

export const CONFIG_VERSION = 1;
export const MAX_TARGETS = 32;
export const MAX_NAME_LENGTH = 64;
/** Longest idle time a target may set, in minutes (one day). */
export const MAX_IDLE_MINUTES = 1440;

/**
 * The message for a host, or null when it is valid: an IPv4 or IPv6 address or a host name; four
 * dot-separated numbers must be a valid IPv4 address (the form's rule, src/common/form-rules.ts).
 * Messages are in the field's own words (the settings page shows them as they are).
 */
export function hostMessage(host: string): string | null {
  return hostProblem(host) ?? (isValidHost(host) ? null : HOST_MESSAGE);
}

/** A target's `control` setting; the first is the default. */
export const CONTROL_MODES = ['on-request', 'immediate', 'watch-only'] as const;
export type ControlMode = (typeof CONTROL_MODES)[number];
const CONTROL_MESSAGE = `control must be one of ${CONTROL_MODES.join(', ')}`;

const ID = /^[a-z0-9](?:[a-z0-9_-]{0,31})$/i;

export interface Target {
  id: string;
  name: string;
  host: string;
  port: number;
  /**
   * Minutes without input (keys, pointer, clipboard from the viewer; screen updates do not count)
   * after which a session to this target is closed. Absent: never.
   */
  idleTimeout?: number | undefined;
  /**
   * Who operates this screen: `on-request` (the default: sessions start watching, a user with the
   * operate role takes control), `immediate` (the first session gets control when nobody holds
   * it), `watch-only` (nobody operates it remotely). Stored only when not the default.
   */
  control?: ControlMode | undefined;
  /**
   * Whether a controlling session may change the remote screen's size (SetDesktopSize); the relay
   * puts the size back when that session ends. Default false, stored only when true.
   */
  allowResize?: boolean | undefined;
}

export interface Config {
  version: number;
  targets: Target[];
}

export type Validation = { ok: true; config: Config } | { ok: false; errors: FieldError[] };

// ---- the checks ------------------------------------------------------------------------------
// Hand-written (zod's 3.5 MB of resident memory in the daemon bought only these few rules: README
// "Memory"), with the messages and their order as before: every field's problems in field order,
// then unknown fields, then the rules across targets (unique ids), which are skipped when a value
// has the wrong type or the list is too long. test/config/validation-parity.test.ts holds the
// zod schemas this replaced and compares both over random inputs.

type Path = (string | number)[];

/** One problem; `abort` (a wrong type or value, too many targets) skips the rules across targets. */
export interface Issue {
  path: Path;
  message: string;
  abort?: boolean;
  /** The message as a catalogue message, when it has placeholders (answers in other languages). */
  i18n?: Message;
}

/** What a check returns: the value to keep (trimmed strings) or `undefined` after an aborting issue. */
export type Check = (value: unknown, path: Path, issues: Issue[]) => unknown;

/** `null`, `array`, `NaN`, `Infinity` or the `typeof` of a value, as the messages name it. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return typeof value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Characters as people count them: a surrogate pair is one. */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export interface StringRules {
  type: string;
  trim?: boolean;
  min?: [number, string];
  max?: [number, string];
  regex?: [RegExp, string];
  refine?: [(s: string) => boolean, string];
}

/**
 * A string. A value of another type is named as such; when it has a `length` (a list) the length
 * rules are still applied to it, so a wrong value gets every message that fits it (as before).
 */
export function string(rules: StringRules): Check {
  const lengths = (length: unknown, path: Path, issues: Issue[]): void => {
    if (rules.min && !((length as number) >= rules.min[0])) issues.push({ path, message: rules.min[1] });
    if (rules.max && !((length as number) <= rules.max[0])) issues.push({ path, message: rules.max[1] });
  };
  return (value, path, issues) => {
    if (typeof value !== 'string') {
      issues.push({ path, message: rules.type, abort: true });
      const length = value === null || value === undefined ? undefined : (value as { length?: unknown }).length;
      if (length !== undefined) lengths(length, path, issues);
      return undefined;
    }
    const s = rules.trim ? value.trim() : value;
    if (rules.regex && !rules.regex[0].test(s)) issues.push({ path, message: rules.regex[1] });
    lengths(codePoints(s), path, issues);
    if (rules.refine && !rules.refine[0](s)) issues.push({ path, message: rules.refine[1] });
    return s;
  };
}

/** A TCP port: a whole number from 1 to 65535; one message for every way of being wrong. */
const port: Check = (value, path, issues) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.push({ path, message: PORT_MESSAGE, abort: true });
    return undefined;
  }
  if (!(Number.isInteger(value) && value >= 1 && value <= 65535)) issues.push({ path, message: PORT_MESSAGE });
  return value;
};

/** Minutes from 1 to MAX_IDLE_MINUTES; one message for every way of being wrong. */
const idleTimeout: Check = (value, path, issues) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.push({ path, message: IDLE_MESSAGE, abort: true });
    return undefined;
  }
  if (!(Number.isInteger(value) && value >= 1 && value <= MAX_IDLE_MINUTES)) issues.push({ path, message: IDLE_MESSAGE });
  return value;
};

/** One of `values` (exactly); one message for every other value. */
function oneOf(values: readonly string[], message: string): Check {
  return (value, path, issues) => {
    if (typeof value !== 'string' || !values.includes(value)) {
      issues.push({ path, message, abort: true });
      return undefined;
    }
    return value;
  };
}

/** true or false. */
function boolean(message: string): Check {
  return (value, path, issues) => {
    if (typeof value !== 'boolean') {
      issues.push({ path, message, abort: true });
      return undefined;
    }
    return value;
  };
}

/** `check`, or nothing when the field is absent. */
function optional(check: Check): Check {
  return (value, path, issues) => (value === undefined ? undefined : check(value, path, issues));
}

/** An object with exactly `fields`: each checked in order, then one problem per unknown field. */
function strictObject(fields: Record<string, Check>): Check {
  return (value, path, issues) => {
    if (!isObject(value)) {
      issues.push({ path, message: `Invalid input: expected object, received ${typeName(value)}`, abort: true });
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(fields)) {
      const v = check(value[key], [...path, key], issues);
      if (v !== undefined || (key in value && value[key] !== undefined)) out[key] = v;
    }
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(fields, key)) issues.push({ path: [...path, key], message: `unknown field "${key}"` });
    }
    return out;
  };
}

const hostText = string({ type: HOST_MESSAGE, trim: true, min: [1, HOST_MESSAGE] });

/** A host: IP address or host name, with the message that says what is wrong in the field's words. */
const host: Check = (value, path, issues) => {
  const h = hostText(value, path, issues);
  if (typeof h === 'string') {
    const message = hostMessage(h);
    if (message) issues.push({ path, message });
  }
  return h;
};

const TARGET_FIELDS: Record<string, Check> = {
  id: string({ type: 'id must be a string', regex: [ID, ID_MESSAGE] }),
  name: string({
    type: 'name must be a string',
    trim: true,
    min: [1, NAME_EMPTY_MESSAGE],
    max: [MAX_NAME_LENGTH, NAME_LONG_MESSAGE],
  }),
  host,
  port,
  idleTimeout: optional(idleTimeout),
  control: optional(oneOf(CONTROL_MODES, CONTROL_MESSAGE)),
  allowResize: optional(boolean('allowResize must be true or false')),
};

/** Longest VNC password accepted (VNC authentication itself uses only the first 8 characters). */
export const MAX_PASSWORD_LENGTH = 64;

/** True when every character is Latin-1 (U+0000 to U+00FF), one byte each in VNC authentication. */
export function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

/** A target's VNC password: 1-64 Latin-1 characters. Messages never quote the value. */
const password = string({
  type: 'password must be a string (or null to remove it)',
  min: [1, PASSWORD_EMPTY_MESSAGE],
  max: [MAX_PASSWORD_LENGTH, PASSWORD_LONG_MESSAGE],
  refine: [isLatin1, PASSWORD_LATIN1_MESSAGE],
});

/** True for a valid VNC password (the rules of the settings page and the API). */
export function isValidPassword(value: unknown): value is string {
  const issues: Issue[] = [];
  password(value, [], issues);
  return issues.length === 0;
}

/** What is wrong with a VNC password, in the field's words, or null when it is valid. */
export function passwordProblem(value: unknown): string | null {
  const issues: Issue[] = [];
  password(value, [], issues);
  return issues[0]?.message ?? null;
}

/**
 * A target as the settings page and `PUT api/v1/config` send it: the stored fields plus
 * `password` (string: set, null: remove, absent: keep). `passwordSet`, which `GET` shows, is
 * accepted and ignored, so a configuration read from the API can be sent back as it is.
 */
const INPUT_TARGET_FIELDS: Record<string, Check> = {
  ...TARGET_FIELDS,
  password: (value, path, issues) => (value === undefined || value === null ? value : password(value, path, issues)),
  passwordSet: optional((value, path, issues) => {
    if (typeof value === 'boolean') return value;
    issues.push({ path, message: 'passwordSet must be true or false (it is only informative)', abort: true });
    return undefined;
  }),
};

/** A configuration whose targets have `fields`: the file's, or the API's with passwords. */
function checkConfig(raw: unknown, fields: Record<string, Check>): { value: unknown; issues: Issue[] } {
  const issues: Issue[] = [];
  const target = strictObject(fields);
  const value = strictObject({
    version: (v, path, out) => {
      if (v === CONFIG_VERSION) return v;
      out.push({ path, message: `version must be ${CONFIG_VERSION}`, abort: true });
      return undefined;
    },
    targets: (v, path, out) => {
      if (!Array.isArray(v)) {
        out.push({ path, message: 'targets must be a list', abort: true });
        const length = v === null || v === undefined ? undefined : (v as { length?: unknown }).length;
        if (length !== undefined && !((length as number) <= MAX_TARGETS)) out.push({ path, message: `at most ${MAX_TARGETS} targets`, abort: true });
        return undefined;
      }
      // Too many: said once, and the targets themselves are not looked at.
      if (v.length > MAX_TARGETS) {
        out.push({ path, message: `at most ${MAX_TARGETS} targets`, abort: true });
        return undefined;
      }
      return v.map((t, i) => target(t, [...path, i], out));
    },
  })(raw, [], issues);
  // Two targets may not share an id (compared without case: ids appear in URLs and file names).
  if (!issues.some((i) => i.abort)) {
    const seen = new Map<string, number>();
    (value as { targets: { id: string }[] }).targets.forEach((t, i) => {
      const first = seen.get(t.id.toLowerCase());
      if (first !== undefined) issues.push({ path: ['targets', i, 'id'], message: duplicateIdMessage(t.id, first), i18n: duplicateId(t.id, first) });
      else seen.set(t.id.toLowerCase(), i);
    });
  }
  return { value, issues };
}

/** The initial state: no targets. */
export function emptyConfig(): Config {
  return { version: CONFIG_VERSION, targets: [] };
}

/** Renders a path as `targets[0].host`. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (part === '') out += '[""]'; // an empty key still names a field
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Problems as field errors (`targets[0].host`). */
function fieldErrors(issues: readonly Issue[]): FieldError[] {
  return issues.map((issue) => {
    const error: FieldError = { field: fieldName(issue.path) || '(root)', message: issue.message };
    // Not enumerable: never sent as such, and the error compares as { field, message }.
    if (issue.i18n) Object.defineProperty(error, 'i18n', { value: issue.i18n, enumerable: false });
    return error;
  });
}

/** `raw` with `version` filled in when it is an object without one. */
function withVersion(raw: unknown, versionOptional: boolean | undefined): unknown {
  if (versionOptional && raw && typeof raw === 'object' && !Array.isArray(raw) && !('version' in raw)) {
    return { version: CONFIG_VERSION, ...raw };
  }
  return raw;
}

/**
 * Validates any value as a configuration (the file's form: no passwords).
 * @param raw parsed JSON (from the file, the API or the form)
 * @param options.versionOptional accept a missing `version` (API PUT and form posts)
 */
export function validateConfig(raw: unknown, options: { versionOptional?: boolean } = {}): Validation {
  const { value, issues } = checkConfig(withVersion(raw, options.versionOptional), TARGET_FIELDS);
  if (issues.length) return { ok: false, errors: fieldErrors(issues) };
  return { ok: true, config: value as Config };
}

export type InputValidation =
  | { ok: true; config: Config; passwords: Map<string, string | null> }
  | { ok: false; errors: FieldError[] };

/**
 * Validates a configuration from the settings page or `PUT api/v1/config`, where each target may
 * carry `password` (string: set, null: remove, absent: keep the stored one).
 * @returns the configuration without passwords, and the password changes by target id
 */
export function validateConfigInput(raw: unknown, options: { versionOptional?: boolean } = {}): InputValidation {
  const { value, issues } = checkConfig(withVersion(raw, options.versionOptional), INPUT_TARGET_FIELDS);
  if (issues.length) return { ok: false, errors: fieldErrors(issues) };
  const input = value as { version: number; targets: (Target & { password?: string | null; passwordSet?: boolean })[] };
  const passwords = new Map<string, string | null>();
  const targets = input.targets.map(({ password: pw, passwordSet: _shown, ...target }) => {
    if (pw !== undefined) passwords.set(target.id, pw);
    return storedTarget(target);
  });
  return { ok: true, config: { version: input.version, targets }, passwords };
}

/** A fresh target id not used in `config`, derived from `name` where possible (the form's rule). */
export function newTargetId(config: Config, name = ''): string {
  return targetIdFrom(name, config.targets.map((t) => t.id));
}

/**
 * A target with its keys in the stored order (id, name, host, port, then idleTimeout, control and
 * allowResize when set and not the default).
 */
export function storedTarget(t: Target): Target {
  const { id, name, host, port, idleTimeout, control, allowResize } = t;
  const out: Target = { id, name, host, port };
  if (idleTimeout !== undefined) out.idleTimeout = idleTimeout;
  if (control !== undefined && control !== 'on-request') out.control = control;
  if (allowResize === true) out.allowResize = true;
  return out;
}

/** Serialises a configuration the way it is stored: stable key order, two-space indent. */
export function serializeConfig(config: Config): string {
  return `${JSON.stringify({ version: config.version, targets: config.targets.map(storedTarget) }, null, 2)}\n`;
}

/**
 * Checks the address of a "Test connection" (`POST api/v1/probe`, the form's Test button): a valid
 * host (trimmed) and a port from 1 to 65535, given as a number or as digits. The settings form
 * fills an empty port with the default first (`DEFAULT_VNC_PORT`, src/common/form-rules.ts).
 */
export function validateProbeTarget(host: unknown, port: unknown): { ok: true; host: string; port: number } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const h = typeof host === 'string' ? host.trim() : '';
  const hostError = hostMessage(h);
  if (hostError) errors.push({ field: 'host', message: hostError });
  let p = 0;
  if (typeof port !== 'number' && typeof port !== 'string') {
    errors.push({ field: 'port', message: PORT_MESSAGE });
  } else {
    try {
      p = parsePort(String(port), 'port');
    } catch {
      errors.push({ field: 'port', message: PORT_MESSAGE });
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, host: h, port: p };
}
