/**
 * The per-target settings of issue 13: `control` (on-request, the default; immediate; watch-only)
 * and `allowResize` (default off). Validated with the field named, stored only when not the
 * default, taken by the API and by the settings form without JavaScript (selects, so one value
 * per row is always posted).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { storedTarget, validateConfig, CONTROL_MODES } from '../../src/config/schema.js';
import { targetsFromRows, rowFieldOf } from '../../src/common/form-rules.js';
import type { Config } from '../../src/config/schema.js';
import { API, PREFIX, client, csrfToken, openSessionTo, startTestApp, target, type TestApp } from '../helpers/app.js';
import { FAILURES } from '../../src/common/failures.js';
import { startVncEcho } from '../helpers/app-child.js';
import { rowsOf } from '../helpers/form-page.js';

const base = { id: 'press', name: 'Press', host: '10.0.0.5', port: 5900 };

describe('control and allowResize in the configuration', () => {
  it('accepts the three control modes and a boolean allowResize', () => {
    assert.deepEqual([...CONTROL_MODES], ['on-request', 'immediate', 'watch-only']);
    for (const control of CONTROL_MODES) {
      const v = validateConfig({ version: 1, targets: [{ ...base, control, allowResize: true }] });
      assert.ok(v.ok, JSON.stringify(v));
      assert.equal(v.config.targets[0]!.control, control);
    }
  });

  it('refuses other values, naming the field', () => {
    const bad = validateConfig({ version: 1, targets: [{ ...base, control: 'always' }] });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map((e) => e.field), ['targets[0].control']);
    assert.match(bad.errors[0]!.message, /on-request, immediate, watch-only/);
    const resize = validateConfig({ version: 1, targets: [{ ...base, allowResize: 'yes' }] });
    assert.ok(!resize.ok);
    assert.deepEqual(resize.errors.map((e) => e.field), ['targets[0].allowResize']);
  });

  it('stores them only when not the default, after the other keys', () => {
    assert.deepEqual(storedTarget({ ...base, control: 'on-request', allowResize: false }), base);
    assert.deepEqual(Object.keys(storedTarget({ ...base, allowResize: true, control: 'watch-only', idleTimeout: 5 })), ['id', 'name', 'host', 'port', 'idleTimeout', 'control', 'allowResize']);
  });

  it('the form rules leave defaults out and name the fields of errors', () => {
    const row = { id: '', name: 'A', host: 'a', port: '', idleTimeout: '', password: '', removePassword: false };
    const { targets } = targetsFromRows([
      { ...row, control: '', allowResize: false },
      { ...row, name: 'B', control: 'on-request', allowResize: false },
      { ...row, name: 'C', control: 'immediate', allowResize: true },
    ]);
    assert.equal('control' in targets[0]! || 'allowResize' in targets[0]!, false);
    assert.equal('control' in targets[1]!, false);
    assert.deepEqual([targets[2]!.control, targets[2]!.allowResize], ['immediate', true]);
    assert.deepEqual(rowFieldOf('targets[1].control'), { target: 1, field: 'control' });
    assert.deepEqual(rowFieldOf('targets[0].allowResize'), { target: 0, field: 'allowResize' });
  });
});

describe('control and allowResize through the API and the settings form', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  const initial: Config = { version: 1, targets: [target('press', 5900, '10.0.0.5', 'Press'), target('weld', 5901, '10.0.0.6', 'Weld')] };

  before(async () => {
    t = await startTestApp({ initial, rateLimits: { changes: { limit: 1000 } } });
    http = client(t.port);
  });
  after(() => t.close());

  it('PUT api/v1/config keeps them and answers 400 naming the field for a bad one', async () => {
    const res = await http.put(`${API}/config`, { targets: [{ ...initial.targets[0], control: 'watch-only', allowResize: true }, initial.targets[1]] });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().targets[0].control, 'watch-only');
    assert.equal(res.json().targets[0].allowResize, true);
    const file = JSON.parse(fs.readFileSync(t.file, 'utf8')) as Config;
    assert.equal(file.targets[0]!.control, 'watch-only');
    assert.equal('control' in file.targets[1]!, false);
    const bad = await http.put(`${API}/config`, { targets: [{ ...initial.targets[0], control: 'sometimes' }] });
    assert.equal(bad.status, 400);
    assert.ok(bad.json().errors.some((e: { field: string }) => e.field === 'targets[0].control'));
  });

  it('a change of control or allowResize ends the target\'s sessions (4000: the viewer reconnects under the new rules), not others\'', async (ctx) => {
    const echo = await startVncEcho();
    ctx.after(() => echo.close());
    const targets = [target('a', echo.port, '127.0.0.1', 'A'), target('b', echo.port, '127.0.0.1', 'B')];
    assert.equal((await http.put(`${API}/config`, { targets })).status, 200);
    const a = await openSessionTo(t.port, 'a', '');
    const b = await openSessionTo(t.port, 'b', '');
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...targets[0], control: 'watch-only' }, targets[1]] })).status, 200);
    assert.equal((await a.closed).code, FAILURES['target-changed'].code);
    const c = await openSessionTo(t.port, 'a', '');
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...targets[0], control: 'watch-only', allowResize: true }, targets[1]] })).status, 200);
    assert.equal((await c.closed).code, FAILURES['target-changed'].code);
    assert.equal(b.ws.readyState, b.ws.OPEN, 'the other target\'s session stays');
    b.ws.close();
  });

  it('the page shows them as selects and saves what is chosen per row', async () => {
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...initial.targets[0], control: 'immediate' }, initial.targets[1]] })).status, 200);
    const page = await http.get(`${PREFIX}/config/`);
    const rows = rowsOf(page.text);
    assert.match(rows[0]!, /<option value="immediate" selected>/);
    assert.match(rows[1]!, /<option value="on-request" selected>/);
    assert.match(rows[1]!, /<select name="allowResize"[^>]*>\s*<option value="" selected>Not allowed/);
    const token = csrfToken(page.text);
    const fields: [string, string][] = [['_csrf', token]];
    for (const [tg, control, resize] of [[initial.targets[0]!, 'on-request', ''], [initial.targets[1]!, 'watch-only', 'on']] as const) {
      fields.push(['id', tg.id], ['name', tg.name], ['host', tg.host], ['port', String(tg.port)], ['control', control], ['allowResize', resize]);
    }
    const res = await http.form(`${PREFIX}/config/`, [...fields, ['action', 'save']]);
    assert.equal(res.status, 303, res.text);
    const file = JSON.parse(fs.readFileSync(t.file, 'utf8')) as Config;
    assert.equal('control' in file.targets[0]!, false);
    assert.deepEqual([file.targets[1]!.control, file.targets[1]!.allowResize], ['watch-only', true]);
  });
});
