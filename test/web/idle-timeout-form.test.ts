/**
 * The settings page without JavaScript: "Close idle sessions after N minutes" per target (empty:
 * never) is shown from the configuration, saved from the form, and refused next to its field with
 * the typed value kept and nothing saved; the status panel lists the targets and says which have
 * a stored VNC password.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { API, PREFIX, client, csrfToken, startTestApp, target, type TestApp } from '../helpers/app.js';
import { rowsOf, fieldValue, errorOf } from '../helpers/form-page.js';
import type { Config } from '../../src/config/schema.js';

const PAGE = `${PREFIX}/config/`;

function messageOf(html: string): string {
  const m = /<div id="message" class="message[^"]*"[^>]*>([^<]*)<\/div>/.exec(html);
  assert.ok(m, 'page has a message box');
  return m[1]!;
}

/** The status panel's "Targets" entry as text, white space collapsed. */
function targetsText(html: string): string {
  const m = /<dd data-field="targets">([\s\S]*?)<\/dd>/.exec(html);
  assert.ok(m, 'the status lists the targets');
  return m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

type Row = { id: string; name: string; host: string; port: string; idleTimeout?: string };

function fields(token: string, rows: Row[]): [string, string][] {
  const out: [string, string][] = [['_csrf', token]];
  for (const r of rows) {
    out.push(['id', r.id], ['name', r.name], ['host', r.host], ['port', r.port]);
    if (r.idleTimeout !== undefined) out.push(['idleTimeout', r.idleTimeout]);
  }
  return [...out, ['action', 'save']];
}

describe('idle timeout on the settings page (no JavaScript)', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let token: string;
  const initial: Config = { version: 1, targets: [{ ...target('press', 5900, '192.168.1.50', 'Press line'), idleTimeout: 30 }, target('weld', 5901, 'weld-hmi', 'Welder')] };
  const press: Row = { id: 'press', name: 'Press line', host: '192.168.1.50', port: '5900' };
  const weld: Row = { id: 'weld', name: 'Welder', host: 'weld-hmi', port: '5901' };

  before(async () => {
    t = await startTestApp({ initial, rateLimits: { changes: { limit: 1000 } } });
    http = client(t.port);
    token = csrfToken((await http.get(PAGE)).text);
  });
  after(() => t.close());
  beforeEach(async () => {
    assert.equal((await http.put(`${API}/config`, initial)).status, 200);
  });
  const saved = (): Config => JSON.parse(fs.readFileSync(t.file, 'utf8'));

  it('shows the minutes of each target, empty (placeholder "never") where sessions are never closed', async () => {
    const page = await http.get(PAGE);
    const rows = rowsOf(page.text);
    assert.deepEqual(rows.map((r) => fieldValue(r, 'idleTimeout')), ['30', '']);
    assert.match(rows[0]!, /<label class="field field-idle">Close idle sessions after\s*<span class="with-unit"><input name="idleTimeout"[^>]*placeholder="never"[^>]*> minutes<\/span>/);
    assert.match(rows[0]!, /Idle means no keys, pointer or clipboard from the viewer; screen updates do not count\./);
  });

  it('saves minutes typed in, and never for an empty field', async () => {
    const res = await http.form(PAGE, fields(token, [{ ...press, idleTimeout: '' }, { ...weld, idleTimeout: ' 90 ' }]));
    assert.equal(res.status, 303, res.text);
    const file = saved();
    assert.equal('idleTimeout' in file.targets[0]!, false);
    assert.equal(file.targets[1]!.idleTimeout, 90);
    assert.deepEqual(rowsOf((await http.get(PAGE)).text).map((r) => fieldValue(r, 'idleTimeout')), ['', '90']);
  });

  it('treats a post without the field (a page from before it existed) as never', async () => {
    const res = await http.form(PAGE, fields(token, [press, weld]));
    assert.equal(res.status, 303);
    assert.equal(saved().targets.some((x) => 'idleTimeout' in x), false);
  });

  for (const [what, typed] of [['0', '0'], ['1441', '1441'], ['a word', 'soon'], ['a fraction', '2.5'], ['a negative number', '-5']]) {
    it(`refuses ${what} next to the field of its row, keeps what was typed, saves nothing`, async () => {
      const before = fs.readFileSync(t.file, 'utf8');
      const res = await http.form(PAGE, fields(token, [{ ...press, idleTimeout: '30' }, { ...weld, idleTimeout: typed }]));
      assert.equal(res.status, 400);
      const rows = rowsOf(res.text);
      assert.equal(errorOf(rows[1]!, 'idleTimeout'), 'Close idle sessions after: enter whole minutes from 1 to 1440, or leave it empty to never close idle sessions');
      assert.match(rows[1]!, /name="idleTimeout" value="[^"]*"[^>]*aria-invalid="true"/);
      assert.equal(fieldValue(rows[1]!, 'idleTimeout'), typed);
      assert.equal(errorOf(rows[0]!, 'idleTimeout'), '');
      assert.equal(fieldValue(rows[0]!, 'idleTimeout'), '30');
      assert.match(messageOf(res.text), /^Not saved: Target 2( \([^)]*\))?: Close idle sessions after: enter whole minutes from 1 to 1440/);
      assert.equal(fs.readFileSync(t.file, 'utf8'), before);
    });
  }

  it('keeps the typed minutes when a row is added or removed', async () => {
    const add = await http.form(PAGE, [...fields(token, [{ ...press, idleTimeout: '12' }]).slice(0, -1), ['action', 'add']]);
    assert.equal(add.status, 200);
    assert.deepEqual(rowsOf(add.text).map((r) => fieldValue(r, 'idleTimeout')), ['12', '']);
    const remove = await http.form(PAGE, [...fields(token, [{ ...press, idleTimeout: '12' }, { ...weld, idleTimeout: '7' }]).slice(0, -1), ['remove', '0']]);
    assert.deepEqual(rowsOf(remove.text).map((r) => fieldValue(r, 'idleTimeout')), ['7']);
  });

  it('lists the targets in the status panel and says which have a stored VNC password', async () => {
    assert.equal(targetsText((await http.get(PAGE)).text), 'Press line (192.168.1.50:5900) Welder (weld-hmi:5901)');
    const put = await http.put(`${API}/config`, { targets: [{ ...initial.targets[0], password: 'pw-1234' }, initial.targets[1]] });
    assert.equal(put.status, 200);
    const page = await http.get(PAGE);
    assert.equal(targetsText(page.text), 'Press line (192.168.1.50:5900) VNC password stored Welder (weld-hmi:5901)');
    assert.match(page.text, /<li>Press line \(192\.168\.1\.50:5900\) <span class="password-note">VNC password stored<\/span><\/li>/);
    assert.ok(!page.text.includes('pw-1234'));
    await http.put(`${API}/config`, { targets: [{ ...initial.targets[0], password: null }, initial.targets[1]] });
    assert.equal(targetsText((await http.get(PAGE)).text), 'Press line (192.168.1.50:5900) Welder (weld-hmi:5901)');
  });

  it('says "none configured" without targets, and marks the demo target', async () => {
    assert.equal((await http.put(`${API}/config`, { targets: [] })).status, 200);
    assert.equal(targetsText((await http.get(PAGE)).text), 'none configured');
    const demo = await startTestApp({ fallbackTarget: target('demo', 5999, '127.0.0.1', 'ctrlx-novnc demo') });
    try {
      assert.equal(targetsText((await client(demo.port).get(PAGE)).text), 'ctrlx-novnc demo (127.0.0.1:5999, demo)');
    } finally {
      await demo.close();
    }
  });
});
