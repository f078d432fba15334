/**
 * @module
 * The configuration kept in the ctrlX active configuration (`config.json`): its type, its
 * validation, and the empty default. One validator for every caller: the page, the API, the file
 * on disk and the load callback.
 */
import { z } from 'zod';
import { isValidHost } from '../relay/address.js';

export const CONFIG_VERSION = 1;
export const MAX_TARGETS = 32;
export const MAX_NAME_LENGTH = 64;

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
    .refine(isValidHost, { error: 'host must be an IPv4 or IPv6 address or a host name (RFC 1123)' }),
  port: z
    .number({ error: 'port must be a number' })
    .int({ error: 'port must be a whole number' })
    .min(1, { error: 'port must be between 1 and 65535' })
    .max(65535, { error: 'port must be between 1 and 65535' }),
});

export const ConfigSchema = z
  .strictObject({
    version: z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION}` }),
    targets: z
      .array(TargetSchema, { error: 'targets must be a list' })
      .max(MAX_TARGETS, { error: `at most ${MAX_TARGETS} targets` }),
  })
  .superRefine((config, ctx) => {
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
  });

export type Target = z.infer<typeof TargetSchema>;
export type Config = z.infer<typeof ConfigSchema>;

/** One problem with an input, naming the field (`targets[0].host`) it concerns. */
export interface FieldError {
  field: string;
  message: string;
}

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
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/**
 * Validates any value as a configuration.
 * @param raw parsed JSON (from the file, the API or the form)
 * @param options.versionOptional accept a missing `version` (API PUT and form posts)
 */
export function validateConfig(raw: unknown, options: { versionOptional?: boolean } = {}): Validation {
  let input = raw;
  if (options.versionOptional && raw && typeof raw === 'object' && !Array.isArray(raw) && !('version' in raw)) {
    input = { version: CONFIG_VERSION, ...raw };
  }
  const result = ConfigSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  const errors: FieldError[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        errors.push({ field: fieldName([...issue.path, key]), message: `unknown field "${key}"` });
      }
    } else {
      const field = fieldName(issue.path);
      errors.push({ field: field || '(root)', message: issue.message });
    }
  }
  return { ok: false, errors };
}

/** A fresh target id not used in `config`, derived from `name` where possible. */
export function newTargetId(config: Config, name = ''): string {
  const base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 24) || 'target';
  const used = new Set(config.targets.map((t) => t.id.toLowerCase()));
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** Serialises a configuration the way it is stored: stable key order, two-space indent. */
export function serializeConfig(config: Config): string {
  return (
    JSON.stringify(
      { version: config.version, targets: config.targets.map(({ id, name, host, port }) => ({ id, name, host, port })) },
      null,
      2,
    ) + '\n'
  );
}
