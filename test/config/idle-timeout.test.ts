/**
 * A target's `idleTimeout` (whole minutes 1-1440; absent = never) in the one validator, in
 * config.json (stored after `port`, only when set, and read back the same) and through
 * `PUT`/`GET api/v1/config`, with errors naming `targets[n].idleTimeout`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { MAX_IDLE_MINUTES, serializeConfig, validateConfig, validateConfigInput, type Config } from '../../src/config/schema.js';
import { parseConfigText } from '../../src/config/store.js';
import { API, PREFIX, assertProblem, client, config, editConfigFile, startTestApp, target, waitFor, type TestApp } from '../helpers/app.js';

const IDLE_MESSAGE = /^Close idle sessions after: enter whole minutes from 1 to 1440, or leave it empty to never close idle sessions$/;
const press = target('press', 5900, '192.168.1.50', 'Press');
const withIdle = (minutes: unknown): Record<string, unknown> => ({ ...press, idleTimeout: minutes });

describe('idleTimeout in the schema', () => {
  it('is never by default: a target without it is valid and stays without it', () => {
    const result = validateConfig(config(press));
    assert.ok(result.ok);
    assert.equal('idleTimeout' in result.config.targets[0]!, false);
  });

  for (const minutes of [1, 30, 60, MAX_IDLE_MINUTES]) {
    it(`accepts ${minutes} minutes, from the file and from the API`, () => {
      const file = validateConfig({ version: 1, targets: [withIdle(minutes)] });
      assert.ok(file.ok);
      assert.equal(file.config.targets[0]!.idleTimeout, minutes);
      const input = validateConfigInput({ targets: [{ ...withIdle(minutes), password: 'pw', passwordSet: false }] }, { versionOptional: true });
      assert.ok(input.ok);
      assert.deepEqual(input.config.targets[0], { ...press, idleTimeout: minutes });
    });
  }

  const bad: [string, unknown][] = [
    ['0', 0],
    ['1441 (more than a day)', 1441],
    ['negative', -5],
    ['a fraction', 2.5],
    ['a string', '30'],
    ['an empty string', ''],
    ['null', null],
    ['true', true],
    ['a list', [30]],
    ['too large to be exact', 2 ** 60],
  ];
  for (const [what, value] of bad) {
    it(`refuses ${what}, naming targets[n].idleTimeout`, () => {
      const result = validateConfig({ version: 1, targets: [press, { ...withIdle(value), id: 'weld' }] });
      assert.equal(result.ok, false);
      assert.ok(!result.ok);
      assert.deepEqual(
        result.errors.map((e) => e.field),
        ['targets[1].idleTimeout'],
      );
      assert.match(result.errors[0]!.message, IDLE_MESSAGE);
      const input = validateConfigInput({ targets: [withIdle(value)] }, { versionOptional: true });
      assert.ok(!input.ok);
      assert.equal(input.errors[0]!.field, 'targets[0].idleTimeout');
    });
  }
});

describe('idleTimeout in config.json', () => {
  it('is stored after port, and only when set', () => {
    const text = serializeConfig({ version: 1, targets: [{ ...press, idleTimeout: 15 }, target('weld', 5901, 'weld-hmi')] });
    const stored = JSON.parse(text) as Config;
    assert.deepEqual(Object.keys(stored.targets[0]!), ['id', 'name', 'host', 'port', 'idleTimeout']);
    assert.deepEqual(Object.keys(stored.targets[1]!), ['id', 'name', 'host', 'port']);
    assert.match(text, /"port": 5900,\n {6}"idleTimeout": 15\n/);
  });

  it('puts the keys of a hand-written file in the stored order', () => {
    const hand = '{"targets": [{"idleTimeout": 5, "port": 5900, "host": "192.168.1.50", "name": "Press", "id": "press"}], "version": 1}';
    const parsed = parseConfigText(hand, 'config.json');
    assert.ok('config' in parsed);
    assert.deepEqual(Object.keys(parsed.config.targets[0]!), ['id', 'name', 'host', 'port', 'idleTimeout']);
  });

  it('reads back what it wrote (round trip), with and without the field', () => {
    const original: Config = { version: 1, targets: [{ ...press, idleTimeout: MAX_IDLE_MINUTES }, target('weld', 5901, 'weld-hmi'), { ...target('mill', 5902, '10.0.0.9'), idleTimeout: 1 }] };
    const text = serializeConfig(original);
    const parsed = parseConfigText(text, 'config.json');
    assert.ok('config' in parsed);
    assert.deepEqual(parsed.config, original);
    assert.equal(serializeConfig(parsed.config), text);
  });

  it('reports an invalid value in the file with its field and line', () => {
    const text = serializeConfig(config(press)).replace('"port": 5900', '"port": 5900,\n      "idleTimeout": 0');
    const parsed = parseConfigText(text, 'config.json');
    assert.ok('error' in parsed);
    assert.equal(parsed.error.field, 'targets[0].idleTimeout');
    assert.equal(parsed.error.line, 9);
    assert.match(parsed.error.reason, IDLE_MESSAGE);
  });
});

describe('idleTimeout through the app', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  before(async () => {
    t = await startTestApp({ initial: { version: 1, targets: [{ ...press, idleTimeout: 20 }] } });
    http = client(t.port);
  });
  after(() => t.close());
  afterEach(async () => {
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...press, idleTimeout: 20 }] })).status, 200);
  });

  it('reads the file and shows the value in GET config and to the relay supervisor', async () => {
    const got = (await http.get(`${API}/config`)).json();
    assert.deepEqual(got.targets[0], { ...press, idleTimeout: 20, passwordSet: false });
    assert.equal(t.app.config.current.targets[0]!.idleTimeout, 20);
  });

  it('sets, changes and removes it with PUT (absent = never), storing it after port', async () => {
    const set = await http.put(`${API}/config`, { targets: [{ ...press, idleTimeout: 45 }] });
    assert.equal(set.status, 200, set.text);
    assert.equal(set.json().targets[0].idleTimeout, 45);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(t.file, 'utf8')).targets[0]), ['id', 'name', 'host', 'port', 'idleTimeout']);
    assert.equal(JSON.parse(fs.readFileSync(t.file, 'utf8')).targets[0].idleTimeout, 45);

    const cleared = await http.put(`${API}/config`, { targets: [press] });
    assert.equal(cleared.status, 200);
    assert.equal('idleTimeout' in cleared.json().targets[0], false);
    assert.equal('idleTimeout' in JSON.parse(fs.readFileSync(t.file, 'utf8')).targets[0], false);
    assert.equal(t.app.config.current.targets[0]!.idleTimeout, undefined);
  });

  it('accepts what GET answered, sent back as it is', async () => {
    const got = (await http.get(`${API}/config`)).json();
    const res = await http.put(`${API}/config`, got);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().targets[0].idleTimeout, 20);
  });

  for (const [what, value] of [['0', 0], ['1441', 1441], ['a string', '10'], ['null', null], ['a fraction', 0.5]] as const) {
    it(`answers ${what} with 400 Problem JSON naming targets[0].idleTimeout, nothing saved`, async () => {
      const before = fs.readFileSync(t.file, 'utf8');
      const res = await http.put(`${API}/config`, { targets: [{ ...press, idleTimeout: value }] });
      const p = assertProblem(res, 400, { field: 'targets[0].idleTimeout', detail: /^The configuration is invalid: targets\[0\]\.idleTimeout: Close idle sessions after: enter whole minutes from 1 to 1440/ });
      assert.match(p.errors[0].message, IDLE_MESSAGE);
      assert.equal(fs.readFileSync(t.file, 'utf8'), before);
    });
  }

  it('keeps the last good configuration when a hand edit sets an invalid value, and says which field', async () => {
    editConfigFile(t.file, serializeConfig(config(press)).replace('"port": 5900', '"port": 5900, "idleTimeout": 99999'));
    await waitFor('the file error', async () => (await http.status()).config.error?.field === 'targets[0].idleTimeout');
    assert.equal(t.app.config.current.targets[0]!.idleTimeout, 20);
    const page = await http.get(`${PREFIX}/config/`);
    assert.match(page.text, /Target 1: Close idle sessions after: enter whole minutes from 1 to 1440/);
  });
});
