/**
 * `validateConfigInput` (src/config/schema.ts): the configuration as the page and the API send it,
 * where a target may carry `password`. Table tests of what is accepted and what each refusal
 * says; the file's own schema still refuses a password.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig, validateConfigInput } from '../../src/config/schema.js';

const base = { id: 'press', name: 'Press', host: '10.0.0.5', port: 5900 };
const input = (extra: Record<string, unknown>) => ({ targets: [{ ...base, ...extra }] });

describe('validateConfigInput', () => {
  const accepted: [string, Record<string, unknown>, string | null | undefined][] = [
    ['no password field: keep', {}, undefined],
    ['null: remove', { password: null }, null],
    ['one character', { password: 'x' }, 'x'],
    ['64 characters', { password: 'p'.repeat(64) }, 'p'.repeat(64)],
    ['Latin-1 letters and symbols', { password: 'Grüße§ÿ' }, 'Grüße§ÿ'],
    ['spaces kept as typed', { password: ' a b ' }, ' a b '],
    ['passwordSet from a GET is ignored', { passwordSet: true }, undefined],
  ];
  for (const [label, extra, expected] of accepted) {
    it(`accepts ${label}`, () => {
      const result = validateConfigInput(input(extra), { versionOptional: true });
      assert.ok(result.ok, JSON.stringify(result));
      assert.deepEqual(result.config, { version: 1, targets: [base] }, 'the configuration never holds a password');
      assert.deepEqual([...result.passwords], expected === undefined ? [] : [['press', expected]]);
    });
  }

  const refused: [string, Record<string, unknown>, string, RegExp][] = [
    ['an empty password', { password: '' }, 'targets[0].password', /^VNC password: must not be empty/],
    ['65 characters', { password: 'p'.repeat(65) }, 'targets[0].password', /^VNC password: use at most 64 characters$/],
    ['a character outside Latin-1', { password: 'secret€' }, 'targets[0].password', /^VNC password: use only Latin-1 characters/],
    ['an emoji', { password: 'pw😀' }, 'targets[0].password', /Latin-1/],
    ['a number', { password: 1234 }, 'targets[0].password', /^password must be a string \(or null to remove it\)$/],
    ['a non-boolean passwordSet', { passwordSet: 'yes' }, 'targets[0].passwordSet', /true or false/],
    ['an unknown field', { secret: 'x' }, 'targets[0].secret', /^unknown field "secret"$/],
  ];
  for (const [label, extra, field, message] of refused) {
    it(`refuses ${label}, naming ${field}`, () => {
      const result = validateConfigInput(input(extra), { versionOptional: true });
      assert.equal(result.ok, false);
      if (result.ok) return;
      const mine = result.errors.find((e) => e.field === field);
      assert.ok(mine, JSON.stringify(result.errors));
      assert.match(mine.message, message);
      if (typeof extra.password === 'string' && extra.password !== '') assert.ok(!mine.message.includes(extra.password), 'the message does not quote the password');
    });
  }

  it('checks the rest of the target as before', () => {
    const result = validateConfigInput({ targets: [{ ...base, password: 'ok' }, { ...base, host: 'bad host!' }] }, { versionOptional: true });
    assert.equal(result.ok, false);
    assert.deepEqual(
      !result.ok && result.errors.map((e) => e.field),
      ['targets[1].host', 'targets[1].id'],
    );
  });

  it('leaves the file schema strict: config.json never holds a password', () => {
    const result = validateConfig({ version: 1, targets: [{ ...base, password: 'x' }] });
    assert.deepEqual(result, { ok: false, errors: [{ field: 'targets[0].password', message: 'unknown field "password"' }] });
    const flagged = validateConfig({ version: 1, targets: [{ ...base, passwordSet: false }] });
    assert.equal(flagged.ok, false);
  });
});
