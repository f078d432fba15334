/**
 * The configuration's checks are hand-written (src/config/schema.ts, secrets.ts, ctrlx/
 * active-configuration.ts) since zod left the daemon (3.5 MB of its resident memory: README
 * "Memory"). This test keeps the zod schemas they replaced, word for word, and compares both over
 * random and edge-case inputs: the same field errors in the same order, the same configuration
 * (trimmed) and passwords, the same stored password records, the same callback verdicts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import {
  CONFIG_VERSION,
  fieldName,
  isLatin1,
  MAX_IDLE_MINUTES,
  MAX_NAME_LENGTH,
  MAX_PASSWORD_LENGTH,
  MAX_TARGETS,
  storedTarget,
  validateConfig,
  validateConfigInput,
  type Target,
} from '../../src/config/schema.js';
import { parseSecrets, SECRETS_VERSION } from '../../src/config/secrets.js';
import { parseCallbackBody } from '../../src/ctrlx/active-configuration.js';
import { isValidHost } from '../../src/relay/address.js';
import {
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
} from '../../src/common/form-rules.js';
import { recordReliability } from '../helpers/reliability.js';
import { prng } from '../helpers/stream.js';

// ---- the zod schemas as they were (src/config/schema.ts, secrets.ts, active-configuration.ts), ----
// ---- with the messages in the field's own words (src/common/form-rules.ts)                       ----
const ID = /^[a-z0-9](?:[a-z0-9_-]{0,31})$/i;

const TargetSchema = z.strictObject({
  id: z.string({ error: 'id must be a string' }).regex(ID, { error: ID_MESSAGE }),
  name: z.string({ error: 'name must be a string' }).trim().min(1, { error: NAME_EMPTY_MESSAGE }).max(MAX_NAME_LENGTH, { error: NAME_LONG_MESSAGE }),
  host: z
    .string({ error: HOST_MESSAGE })
    .trim()
    .min(1, { error: HOST_MESSAGE })
    .superRefine((h, ctx) => {
      const message = hostProblem(h) ?? (isValidHost(h) ? null : HOST_MESSAGE);
      if (message) ctx.addIssue({ code: 'custom', message });
    }),
  port: z.number({ error: PORT_MESSAGE }).refine((n) => Number.isInteger(n) && n >= 1 && n <= 65535, { error: PORT_MESSAGE }),
  idleTimeout: z
    .number({ error: IDLE_MESSAGE })
    .refine((n) => Number.isInteger(n) && n >= 1 && n <= MAX_IDLE_MINUTES, { error: IDLE_MESSAGE })
    .optional(),
});

function uniqueIds(config: { targets: readonly { id: string }[] }, ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  config.targets.forEach((t, i) => {
    const first = seen.get(t.id.toLowerCase());
    if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['targets', i, 'id'], message: duplicateIdMessage(t.id, first) });
    else seen.set(t.id.toLowerCase(), i);
  });
}

function configSchemaOf<T extends z.ZodType<{ id: string }>>(target: T) {
  return z
    .strictObject({
      version: z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION}` }),
      targets: z.array(target, { error: 'targets must be a list' }).max(MAX_TARGETS, { error: `at most ${MAX_TARGETS} targets` }),
    })
    .superRefine(uniqueIds);
}

const ConfigSchema = configSchemaOf(TargetSchema);
const PasswordSchema = z
  .string({ error: 'password must be a string (or null to remove it)' })
  .min(1, { error: PASSWORD_EMPTY_MESSAGE })
  .max(MAX_PASSWORD_LENGTH, { error: PASSWORD_LONG_MESSAGE })
  .refine(isLatin1, { error: PASSWORD_LATIN1_MESSAGE });
const TargetInputSchema = z.strictObject({
  ...TargetSchema.shape,
  password: PasswordSchema.nullable().optional(),
  passwordSet: z.boolean({ error: 'passwordSet must be true or false (it is only informative)' }).optional(),
});
const ConfigInputSchema = configSchemaOf(TargetInputSchema);

const SecretsFileSchema = z.strictObject({
  version: z.literal(SECRETS_VERSION),
  targets: z.record(z.string(), z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535), password: PasswordSchema })),
});

const CallbackBodySchema = z.object({
  configurationPath: z.string().max(4096).optional(),
  id: z.string().max(256).optional(),
  phase: z.string({ error: 'phase must be a string' }).min(1, { error: 'phase is required' }).max(64),
});

function zodErrors(issues: readonly z.core.$ZodIssue[]): { field: string; message: string }[] {
  const errors: { field: string; message: string }[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) errors.push({ field: fieldName([...issue.path, key]), message: `unknown field "${key}"` });
    } else errors.push({ field: fieldName(issue.path) || '(root)', message: issue.message });
  }
  return errors;
}

// ---- random inputs, rich in edge cases -----------------------------------------------------

function generator(seed: number) {
  const next = prng(seed);
  const rand = (): number => next() / 2 ** 32;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const chance = (p: number): boolean => rand() < p;
  const strings = ['', ' ', 'a', 'A', 'press', 'Press 1', ' padded ', 'x'.repeat(32), 'x'.repeat(33), 'n'.repeat(64), 'n'.repeat(65), ' '.repeat(70),
    '-a', 'a-b_c', 'ü', 'é€', '\u0000', '192.168.1.50', '::1', '[::1]', 'fe80::1', 'host.example', '-bad-', 'a..b', '256.1.1.1', 'localhost', ' 10.0.0.1 ', 'x'.repeat(254)];
  const numbers = [0, 1, -1, 5900, 65535, 65536, 1.5, 0.5, -0.5, 1440, 1441, 30, 1e20, -1e20, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-9];
  const scalar = (): unknown => pick<() => unknown>([() => pick(strings), () => pick(numbers), () => null, () => true, () => false, () => [], () => ({}), () => [1], () => undefined])();
  const field = (good: () => unknown): unknown => (chance(0.7) ? good() : scalar());
  const target = (input: boolean): unknown => {
    if (chance(0.05)) return scalar();
    const t: Record<string, unknown> = {};
    const keys: [string, () => unknown][] = [
      ['id', () => pick(['a', 'A', 'b', 'press', 'a-b_c', 'x'.repeat(32), 'x'.repeat(33), '', '-a', 'ü'])],
      ['name', () => pick(strings)],
      ['host', () => pick(['192.168.1.50', '127.0.0.1', '::1', 'host.example', ' 10.0.0.1 ', '', ' ', '[::1]', 'bad host', 'x'.repeat(254)])],
      ['port', () => pick(numbers)],
      ['idleTimeout', () => pick(numbers)],
    ];
    if (input) {
      keys.push(['password', () => pick(['s3cret', '', 'x'.repeat(64), 'x'.repeat(65), 'é', '€', `${'x'.repeat(65)}€`, null])]);
      keys.push(['passwordSet', () => pick([true, false, 'yes', null, 1])]);
    }
    for (const [k, good] of keys) if (chance(k === 'idleTimeout' || k.startsWith('password') ? 0.4 : 0.9)) t[k] = field(good);
    if (chance(0.1)) t[pick(['extra', '', '__proto__', 'constructor', 'Port'])] = 1;
    return t;
  };
  const config = (input: boolean): unknown => {
    if (chance(0.05)) return scalar();
    const c: Record<string, unknown> = {};
    if (chance(0.85)) c.version = chance(0.85) ? 1 : pick([2, '1', 0, null, 1.0000001]);
    if (chance(0.95)) {
      c.targets = chance(0.05)
        ? scalar()
        : Array.from({ length: chance(0.05) ? 33 + Math.floor(rand() * 3) : Math.floor(rand() * 5) }, () => target(input));
    }
    if (chance(0.05)) c[pick(['x', 'targetz', ''])] = pick(strings);
    return c;
  };
  const secrets = (): unknown => {
    if (chance(0.05)) return scalar();
    const targets: Record<string, unknown> = {};
    const n = Math.floor(rand() * 4);
    for (let i = 0; i < n; i++) {
      const r: Record<string, unknown> = {};
      if (chance(0.95)) r.host = field(() => pick(['10.0.0.1', 'h', '']));
      if (chance(0.95)) r.port = field(() => pick(numbers));
      if (chance(0.95)) r.password = field(() => pick(['pw', '', 'x'.repeat(65), '€']));
      if (chance(0.05)) r.extra = 1;
      targets[pick(['a', 'b', 'c', '', '__proto__', 'toString'])] = chance(0.95) ? r : scalar();
    }
    const f: Record<string, unknown> = { version: chance(0.9) ? 1 : pick([2, '1', null]), targets: chance(0.95) ? targets : scalar() };
    if (chance(0.05)) f.extra = true;
    return f;
  };
  const callback = (): unknown => {
    if (chance(0.05)) return scalar();
    const b: Record<string, unknown> = {};
    if (chance(0.8)) b.configurationPath = field(() => pick(['solutions/DefaultSolution', '', 'x'.repeat(4097)]));
    if (chance(0.8)) b.id = field(() => pick(['op1', '', 'x'.repeat(257)]));
    if (chance(0.9)) b.phase = field(() => pick(['save', 'load', 'prepare', '', 'x'.repeat(65)]));
    if (chance(0.1)) b.other = 1;
    return b;
  };
  return { config, secrets, callback, rand };
}

const N = 20_000;

describe('configuration checks without zod: the same answers as the zod schemas they replaced', () => {
  const counts = { configs: 0, refused: 0, secrets: 0, callbacks: 0 };
  after(() => {
    if (counts.callbacks === 0) return; // a failure stopped the run: no row
    recordReliability({
      table: 'inputs',
      name: 'Configuration checks against the zod schemas they replaced',
      tried: `${counts.configs} random configurations (file and API forms, ${counts.refused} of them invalid), ${counts.secrets} passwords files, ${counts.callbacks} save/load callback bodies`,
      outcome: 'the same field errors in the same order, the same configuration and passwords, the same stored records and callback verdicts as zod in every case',
    });
  });

  it(`config.json and PUT api/v1/config: same field errors (order included), same configuration, same passwords (${N} inputs each)`, () => {
    const g = generator(16);
    let failures = 0;
    let oks = 0;
    for (let i = 0; i < N; i++) {
      for (const input of [false, true]) {
        const raw = g.config(input);
        const versionOptional = g.rand() < 0.5;
        const withVersion =
          versionOptional && raw && typeof raw === 'object' && !Array.isArray(raw) && !('version' in raw) ? { version: CONFIG_VERSION, ...raw } : raw;
        const ours = input ? validateConfigInput(raw, { versionOptional }) : validateConfig(raw, { versionOptional });
        const theirs = (input ? ConfigInputSchema : ConfigSchema).safeParse(withVersion);
        const show = JSON.stringify(raw, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
        counts.configs++;
        if (!theirs.success) {
          failures++;
          counts.refused++;
          assert.equal(ours.ok, false, `accepted what zod refused: ${show}`);
          if (!ours.ok) assert.deepEqual(ours.errors, zodErrors(theirs.error.issues), show);
          continue;
        }
        oks++;
        assert.ok(ours.ok, `refused what zod accepted: ${show} ${JSON.stringify(!ours.ok && ours.errors)}`);
        const data = theirs.data as { version: number; targets: (Target & { password?: string | null; passwordSet?: boolean })[] };
        if (input) {
          const passwords = new Map<string, string | null>();
          const targets = data.targets.map(({ password, passwordSet: _s, ...t }) => {
            if (password !== undefined) passwords.set(t.id, password);
            return storedTarget(t);
          });
          assert.deepEqual(ours.config, { version: data.version, targets }, show);
          assert.deepEqual((ours as unknown as { passwords: Map<string, string | null> }).passwords, passwords, show);
        } else {
          assert.deepEqual(ours.config, data, show);
        }
      }
    }
    // Both verdicts were exercised.
    assert.ok(failures > N / 10 && oks > N / 10, `${failures} refused, ${oks} accepted`);
  });

  it(`the VNC passwords file: the same records or the same refusal (${N} inputs)`, () => {
    const g = generator(61);
    let accepted = 0;
    for (let i = 0; i < N; i++) {
      const raw = g.secrets();
      counts.secrets++;
      const text = JSON.stringify(raw) ?? 'undefined';
      const theirs = SecretsFileSchema.safeParse(JSON.parse(text === 'undefined' ? 'null' : text));
      const ours = parseSecrets(text === 'undefined' ? 'null' : text);
      if (!theirs.success) assert.equal(ours, null, text);
      else {
        accepted++;
        assert.deepEqual(ours, new Map(Object.entries(theirs.data.targets)), text);
      }
    }
    assert.ok(accepted > N / 10, `${accepted} accepted`);
  });

  it(`the save/load callback body: the same verdict, fields and errors (${N} inputs)`, () => {
    const g = generator(77);
    for (let i = 0; i < N; i++) {
      const raw = g.callback();
      counts.callbacks++;
      const theirs = CallbackBodySchema.safeParse(raw ?? {});
      const ours = parseCallbackBody(raw ?? {});
      const show = JSON.stringify(raw);
      if (theirs.success) {
        assert.ok(ours.ok, show);
        assert.deepEqual(ours.ok && ours.body, theirs.data, show);
      } else {
        assert.ok(!ours.ok, show);
        assert.deepEqual(
          !ours.ok && ours.errors,
          theirs.error.issues.map((iss) => ({ field: iss.path.join('.') || '(root)', message: iss.message })),
          show,
        );
      }
    }
  });
});
