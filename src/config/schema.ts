/**
 * @module
 * The configuration kept in the ctrlX active configuration (`config.json`): its type, its
 * validation, and the empty default. One validator for every caller: the page, the API, the file
 * on disk and the load callback. The page and the API may also send a target's VNC password
 * ({@link validateConfigInput}); it is split off here and kept by config/secrets.ts, never in the file.
 */
import { z } from 'zod';
import type { FieldError } from '../errors.js';
import { isValidHost, parsePort } from '../relay/address.js';
import { targetIdFrom } from '../shared/form-rules.js';

export type { FieldError } from '../errors.js';

export const CONFIG_VERSION = 1;
export const MAX_TARGETS = 32;
export const MAX_NAME_LENGTH = 64;
/** Longest idle time a target may set, in minutes (one day). */
export const MAX_IDLE_MINUTES = 1440;

const HOST_MESSAGE = 'host must be an IPv4 or IPv6 address or a host name (RFC 1123)';
const IDLE_MESSAGE = `idleTimeout must be a whole number of minutes from 1 to ${MAX_IDLE_MINUTES} (leave it out to never close idle sessions)`;

/** A target's `control` setting; the first is the default. */
export const CONTROL_MODES = ['on-request', 'immediate', 'watch-only'] as const;
export type ControlMode = (typeof CONTROL_MODES)[number];
const CONTROL_MESSAGE = `control must be one of ${CONTROL_MODES.join(', ')}`;

const ID = /^[a-z0-9](?:[a-z0-9_-]{0,31})$/i;

export const TargetSchema = z.strictObject({
  id: z
    .string({ error: 'id must be a string' })
    .regex(ID, { error: 'id must be 1-32 letters, digits, "-" or "_", starting with a letter or digit' }),
  name: z
    .string({ error: 'name must be a string' })
    .trim()
    .min(1, { error: 'name must not be empty' })
    .max(MAX_NAME_LENGTH, { error: `name must be at most ${MAX_NAME_LENGTH} characters` }),
  host: z
    .string({ error: 'host must be a string' })
    .trim()
    .min(1, { error: 'host must not be empty' })
    .refine(isValidHost, { error: HOST_MESSAGE }),
  port: z
    .number({ error: 'port must be a number' })
    .int({ error: 'port must be a whole number' })
    .min(1, { error: 'port must be between 1 and 65535' })
    .max(65535, { error: 'port must be between 1 and 65535' }),
  /**
   * Minutes without input (keys, pointer, clipboard from the viewer; screen updates do not count)
   * after which a session to this target is closed. Absent: never.
   */
  idleTimeout: z
    .number({ error: IDLE_MESSAGE })
    // One check, so a value wrong in several ways gets one message.
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_IDLE_MINUTES, { error: IDLE_MESSAGE })
    .optional(),
  /**
   * Who operates this screen: `on-request` (the default: sessions start watching, a user with the
   * operate role takes control), `immediate` (the first session gets control when nobody holds
   * it), `watch-only` (nobody operates it remotely). Stored only when not the default.
   */
  control: z.enum(CONTROL_MODES, { error: CONTROL_MESSAGE }).optional(),
  /**
   * Whether a controlling session may change the remote screen's size (SetDesktopSize); the relay
   * puts the size back when that session ends. Default false, stored only when true.
   */
  allowResize: z.boolean({ error: 'allowResize must be true or false' }).optional(),
});

/** Two targets may not share an id (compared without case: ids appear in URLs and file names). */
function uniqueIds(config: { targets: readonly { id: string }[] }, ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  config.targets.forEach((t, i) => {
    const first = seen.get(t.id.toLowerCase());
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['targets', i, 'id'],
        message: `id "${t.id}" is already used by targets[${first}]`,
      });
    } else seen.set(t.id.toLowerCase(), i);
  });
}

/** A configuration whose targets follow `target`: the file's, or the API's with passwords. */
function configSchemaOf<T extends z.ZodType<{ id: string }>>(target: T) {
  return z
    .strictObject({
      version: z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION}` }),
      targets: z.array(target, { error: 'targets must be a list' }).max(MAX_TARGETS, { error: `at most ${MAX_TARGETS} targets` }),
    })
    .superRefine(uniqueIds);
}

/** The configuration as config.json holds it: never a password. */
export const ConfigSchema = configSchemaOf(TargetSchema);

/** Longest VNC password accepted (VNC authentication itself uses only the first 8 characters). */
export const MAX_PASSWORD_LENGTH = 64;

/** True when every character is Latin-1 (U+0000 to U+00FF), one byte each in VNC authentication. */
export function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

/** A target's VNC password: 1-64 Latin-1 characters. Messages never quote the value. */
export const PasswordSchema = z
  .string({ error: 'password must be a string (or null to remove it)' })
  .min(1, { error: 'password must not be empty (leave the field out to keep the stored one, or send null to remove it)' })
  .max(MAX_PASSWORD_LENGTH, { error: `password must be at most ${MAX_PASSWORD_LENGTH} characters` })
  .refine(isLatin1, { error: 'password may only use Latin-1 characters (letters, digits and symbols of Western European keyboards)' });

/**
 * A target as the settings page and `PUT api/v1/config` send it: the stored fields plus
 * `password` (string: set, null: remove, absent: keep). `passwordSet`, which `GET` shows, is
 * accepted and ignored, so a configuration read from the API can be sent back as it is.
 */
export const TargetInputSchema = z.strictObject({
  ...TargetSchema.shape,
  password: PasswordSchema.nullable().optional(),
  passwordSet: z.boolean({ error: 'passwordSet must be true or false (it is only informative)' }).optional(),
});

export const ConfigInputSchema = configSchemaOf(TargetInputSchema);

export type Target = z.infer<typeof TargetSchema>;
export type Config = z.infer<typeof ConfigSchema>;

export type Validation = { ok: true; config: Config } | { ok: false; errors: FieldError[] };

/** The initial state: no targets. */
export function emptyConfig(): Config {
  return { version: CONFIG_VERSION, targets: [] };
}

/** Renders a zod path as `targets[0].host`. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (part === '') out += '[""]'; // an empty key still names a field
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Turns zod issues into field errors (`targets[0].host`), one per unknown key. */
function fieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  const errors: FieldError[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        errors.push({ field: fieldName([...issue.path, key]), message: `unknown field "${key}"` });
      }
    } else {
      const field = fieldName(issue.path);
      errors.push({ field: field || '(root)', message: issue.message });
    }
  }
  return errors;
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
  const result = ConfigSchema.safeParse(withVersion(raw, options.versionOptional));
  if (result.success) return { ok: true, config: result.data };
  return { ok: false, errors: fieldErrors(result.error.issues) };
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
  const result = ConfigInputSchema.safeParse(withVersion(raw, options.versionOptional));
  if (!result.success) return { ok: false, errors: fieldErrors(result.error.issues) };
  const passwords = new Map<string, string | null>();
  const targets = result.data.targets.map(({ password, passwordSet: _shown, ...target }) => {
    if (password !== undefined) passwords.set(target.id, password);
    return storedTarget(target);
  });
  return { ok: true, config: { version: result.data.version, targets }, passwords };
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
 * fills an empty port with the default first (`DEFAULT_VNC_PORT`, src/shared/form-rules.ts).
 */
export function validateProbeTarget(host: unknown, port: unknown): { ok: true; host: string; port: number } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const h = typeof host === 'string' ? host.trim() : '';
  if (!isValidHost(h)) errors.push({ field: 'host', message: HOST_MESSAGE });
  let p = 0;
  if (typeof port !== 'number' && typeof port !== 'string') {
    errors.push({ field: 'port', message: 'port must be a number' });
  } else {
    try {
      p = parsePort(String(port), 'port');
    } catch (err) {
      errors.push({ field: 'port', message: (err as Error).message });
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, host: h, port: p };
}
