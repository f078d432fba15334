/**
 * The VNC password on the settings page without JavaScript: one empty password field per target
 * (never pre-filled, `autocomplete=new-password`), "Password set" and "Remove password" when one
 * is stored; a typed password is saved, an empty field keeps the stored one, the tick removes it;
 * errors appear next to the field of their row, and no page ever contains a password.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { API, PREFIX, client, config, csrfToken, startTestApp, target, type TestApp } from '../helpers/app.js';
import { rowsOf, errorOf } from '../helpers/form-page.js';
import { SECRETS_FILE_NAME } from '../../src/config/secrets.js';
import { serializeConfig } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';

const PAGE = `${PREFIX}/config/`;
const SECRET = 'Form-pw#77';
const SECOND = 'zweite$pw';

/** The password `<input>` tag of a row. */
function passwordInput(row: string): string {
  const m = /<input type="password"[^>]*>/.exec(row);
  assert.ok(m, 'the row has a password field');
  return m[0];
}

/** What a row says about its password, and its "Remove password" box. */
function passwordState(row: string): { state: string; removeShown: boolean; removeValue: string; checked: boolean; placeholder: string } {
  const state = /data-field="passwordState">([^<]*)</.exec(row)?.[1];
  const label = /<label class="check([^"]*)" data-field="removePassword">\s*<input type="checkbox" name="removePassword" value="([^"]*)"( checked)?>/.exec(row);
  assert.ok(state !== undefined && label, `row shows the password state: ${row}`);
  return {
    state,
    removeShown: !label[1]!.includes('hidden'),
    removeValue: label[2]!,
    checked: label[3] !== undefined,
    placeholder: /placeholder="([^"]*)"/.exec(passwordInput(row))![1]!,
  };
}

function messageOf(html: string): { kind: string; text: string } {
  const m = /<div id="message" class="message([^"]*)"[^>]*>([^<]*)<\/div>/.exec(html);
  assert.ok(m, 'page has a message box');
  return { kind: m[1]!.trim(), text: m[2]! };
}

type Row = { id?: string; name?: string; host?: string; port?: string; password?: string; remove?: boolean };

/** Form fields as the browser posts them: one value per row, a remove box only when ticked. */
function fields(token: string, rows: Row[], extra: [string, string][] = [['action', 'save']]): [string, string][] {
  const out: [string, string][] = [['_csrf', token]];
  for (const r of rows) {
    out.push(['id', r.id ?? ''], ['name', r.name ?? ''], ['host', r.host ?? ''], ['port', r.port ?? ''], ['password', r.password ?? '']);
    if (r.remove) out.push(['removePassword', r.id ?? '']);
  }
  return [...out, ...extra];
}

describe('VNC password on the settings page (no JavaScript)', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let token: string;
  let secrets: string;
  const logs: string[] = [];
  const initial = config(target('press', 5900, '192.168.1.50', 'Press line'), target('weld', 5901, 'weld-hmi', 'Welder'));
  const press: Row = { id: 'press', name: 'Press line', host: '192.168.1.50', port: '5900' };
  const weld: Row = { id: 'weld', name: 'Welder', host: 'weld-hmi', port: '5901' };

  before(async () => {
    t = await startTestApp({
      initial: serializeConfig(initial),
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
    http = client(t.port);
    token = csrfToken((await http.get(PAGE)).text);
    secrets = path.join(t.root, 'app', SECRETS_FILE_NAME);
  });
  after(async () => {
    await t.close();
    for (const line of logs) assert.ok(!line.includes(SECRET) && !line.includes(SECOND), `a log line holds a password: ${line}`);
  });
  beforeEach(async () => {
    // Every test starts from the same targets without passwords.
    const res = await http.put(`${API}/config`, { targets: initial.targets.map((x) => ({ ...x, password: null })) });
    assert.equal(res.status, 200);
  });

  const post = (rows: Row[], extra?: [string, string][]) => http.form(PAGE, fields(token, rows, extra));
  const passwords = (): Record<string, string> =>
    fs.existsSync(secrets)
      ? Object.fromEntries(Object.entries(JSON.parse(fs.readFileSync(secrets, 'utf8')).targets as Record<string, { password: string }>).map(([k, v]) => [k, v.password]))
      : {};
  const page = async (): Promise<string> => {
    const res = await http.get(PAGE);
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes(SECRET) && !res.text.includes(SECOND), 'the page never holds a password');
    return res.text;
  };

  it('shows an empty password field per target, and no stored password', async () => {
    const rows = rowsOf(await page());
    assert.equal(rows.length, 2);
    for (const row of rows) {
      const input = passwordInput(row);
      assert.match(input, /name="password"/);
      assert.match(input, /autocomplete="new-password"/);
      assert.doesNotMatch(input, /\svalue=/, 'never pre-filled');
      assert.deepEqual(passwordState(row), { state: 'No password stored', removeShown: false, removeValue: row.includes('value="press"') ? 'press' : 'weld', checked: false, placeholder: 'optional' });
    }
    assert.match(rows[0]!, /VNC uses only the first 8 characters/);
  });

  it('saves a typed password, shows "Password set" with an empty field, and keeps it when the field stays empty', async () => {
    const res = await post([{ ...press, password: SECRET }, weld]);
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, './?m=saved');
    assert.deepEqual(passwords(), { press: SECRET });
    assert.ok(!fs.readFileSync(t.file, 'utf8').includes(SECRET), 'not in config.json');

    let rows = rowsOf(await page());
    assert.deepEqual(passwordState(rows[0]!), { state: 'Password set', removeShown: true, removeValue: 'press', checked: false, placeholder: 'unchanged' });
    assert.doesNotMatch(passwordInput(rows[0]!), /\svalue=/);
    assert.equal(passwordState(rows[1]!).state, 'No password stored');

    // Saved again with empty fields (and a new name): kept.
    assert.equal((await post([{ ...press, name: 'Press 2' }, weld])).status, 303);
    assert.deepEqual(passwords(), { press: SECRET });
    rows = rowsOf(await page());
    assert.equal(passwordState(rows[0]!).state, 'Password set');
  });

  it('removes a password when "Remove password" is ticked, and only that one', async () => {
    await post([{ ...press, password: SECRET }, { ...weld, password: SECOND }]);
    assert.deepEqual(passwords(), { press: SECRET, weld: SECOND });
    const res = await post([{ ...press, remove: true }, weld]);
    assert.equal(res.status, 303, res.text);
    assert.deepEqual(passwords(), { weld: SECOND });
    const rows = rowsOf(await page());
    assert.deepEqual(
      rows.map((r) => passwordState(r).state),
      ['No password stored', 'Password set'],
    );
  });

  it('keeps the password when the host is edited on the page with the password typed again, and removes it with its row', async () => {
    await post([{ ...press, password: SECRET }, { ...weld, password: SECOND }]);
    assert.equal((await post([{ ...press, host: '192.168.1.51', port: '5910', password: SECRET }, weld])).status, 303);
    const file = JSON.parse(fs.readFileSync(secrets, 'utf8'));
    assert.deepEqual(file.targets.press, { host: '192.168.1.51', port: 5910, password: SECRET });

    // "Remove" on the row re-renders without it; Save then drops the target and its password.
    const removed = await post([{ ...press, host: '192.168.1.51', port: '5910' }, weld], [['remove', '0']]);
    assert.equal(removed.status, 200);
    assert.equal(rowsOf(removed.text).length, 1);
    assert.deepEqual(passwords(), { press: SECRET, weld: SECOND }, 'nothing saved yet');
    assert.equal((await post([weld])).status, 303);
    assert.deepEqual(passwords(), { weld: SECOND });
  });

  it('gives a new target its password', async () => {
    const res = await post([press, weld, { name: 'Robot', host: '10.1.1.9', password: SECRET }]);
    assert.equal(res.status, 303, res.text);
    assert.deepEqual(passwords(), { robot: SECRET });
  });

  it('shows a password that is not Latin-1 as an error next to its field, saving nothing and not showing it', async () => {
    const typed = 'Pässwört€';
    const res = await post([{ ...press, name: 'Changed' }, { ...weld, password: typed }]);
    assert.equal(res.status, 400);
    assert.ok(!res.text.includes(typed) && !res.text.includes('Pässwört'), 'the typed password is not sent back');
    const rows = rowsOf(res.text);
    assert.equal(errorOf(rows[0]!, 'password'), '');
    assert.match(errorOf(rows[1]!, 'password'), /^VNC password: use only Latin-1 characters/);
    assert.match(passwordInput(rows[1]!), /aria-invalid="true"/);
    assert.doesNotMatch(passwordInput(rows[1]!), /\svalue=/);
    assert.match(messageOf(res.text).text, /^Not saved: Target 2( \([^)]*\))?: VNC password: use only Latin-1/);
    assert.deepEqual(passwords(), {});
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(initial));
  });

  it('asks to type a password again when the page comes back for another error', async () => {
    const res = await post([{ ...press, host: 'bad host!', password: SECRET }, weld]);
    assert.equal(res.status, 400);
    assert.ok(!res.text.includes(SECRET));
    const row = rowsOf(res.text)[0]!;
    assert.match(errorOf(row, 'host'), /^Host: /);
    assert.match(errorOf(row, 'password'), /type the password again/);
    assert.deepEqual(passwords(), {});

    // The same on "Add target" (the form is redrawn, nothing saved).
    const added = await post([{ ...press, password: SECRET }, weld], [['action', 'add']]);
    assert.equal(added.status, 200);
    assert.ok(!added.text.includes(SECRET));
    assert.match(errorOf(rowsOf(added.text)[0]!, 'password'), /type the password again/);
    assert.deepEqual(passwords(), {});
  });

  it('refuses a typed password together with "Remove password", naming the field', async () => {
    await post([{ ...press, password: SECRET }, weld]);
    const res = await post([{ ...press, password: SECOND, remove: true }, weld]);
    assert.equal(res.status, 400);
    const row = rowsOf(res.text)[0]!;
    assert.equal(errorOf(row, 'password'), 'Type a new password or tick &#34;Remove password&#34;, not both.');
    assert.equal(passwordState(row).checked, true, 'the tick is kept');
    assert.match(messageOf(res.text).text, /^Not saved: Target 1( \([^)]*\))?: /);
    assert.deepEqual(passwords(), { press: SECRET });
  });

  it('stores nothing from a post without a valid CSRF token', async () => {
    const res = await http.form(PAGE, fields('forged', [{ ...press, password: SECRET }, weld]));
    assert.equal(res.status, 403);
    assert.deepEqual(passwords(), {});
  });

  it('shows the password state the API set', async () => {
    await http.put(`${API}/config`, { targets: [initial.targets[0]!, { ...initial.targets[1]!, password: SECOND }] });
    const rows = rowsOf(await page());
    assert.deepEqual(
      rows.map((r) => passwordState(r)),
      [
        { state: 'No password stored', removeShown: false, removeValue: 'press', checked: false, placeholder: 'optional' },
        { state: 'Password set', removeShown: true, removeValue: 'weld', checked: false, placeholder: 'unchanged' },
      ],
    );
  });
});
