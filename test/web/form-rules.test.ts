/**
 * One source for what the settings page and the server both need: the form's rules
 * (src/shared/form-rules.ts), applied by the form route and by public/config.js, and the status
 * panel, rendered only by views/partials/status.ejs (in the page, and alone for the page's live
 * updates). The browser half (config.js in chromium) is in settings-page-js.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/ctrlx/paths.js';
import { DEFAULT_VNC_PORT, PASSWORD_AND_REMOVE, rowFieldOf, targetIdFrom, targetsFromRows, type RowInput } from '../../src/shared/form-rules.js';
import { API, PREFIX, client, startTestApp, target, type TestApp } from '../helpers/app.js';

const ROOT = packageRoot();

const row = (fields: Partial<RowInput>): RowInput => ({ id: '', name: '', host: '', port: '', idleTimeout: '', control: '', allowResize: false, password: '', removePassword: false, ...fields });

describe('the form rules (src/shared/form-rules.ts)', () => {
  it('drops blank rows, names a target after its host, fills in port 5900, keeps mistyped numbers as typed', () => {
    const { targets, rowOf, conflicts } = targetsFromRows([
      row({ host: ' 10.0.0.1 ' }),
      row({ id: 'kept', removePassword: true }), // an id and a tick alone: blank
      row({ name: ' Press ', host: 'press-hmi', port: ' 5901 ', idleTimeout: ' 30 ' }),
      row({ name: 'Weld', host: 'weld-hmi', port: 'vnc', idleTimeout: 'soon' }),
    ]);
    assert.deepEqual(targets, [
      { id: '10-0-0-1', name: '10.0.0.1', host: '10.0.0.1', port: DEFAULT_VNC_PORT },
      { id: 'press', name: 'Press', host: 'press-hmi', port: 5901, idleTimeout: 30 },
      { id: 'weld', name: 'Weld', host: 'weld-hmi', port: 'vnc', idleTimeout: 'soon' },
    ]);
    assert.deepEqual(rowOf, [0, 2, 3]);
    assert.deepEqual(conflicts, []);
    assert.equal(DEFAULT_VNC_PORT, 5900);
  });

  it('gives new rows ids from their names that do not clash with the ids before them, without case', () => {
    const { targets } = targetsFromRows([
      row({ id: 'Press', name: 'Press', host: 'a' }),
      row({ name: 'Press', host: 'b' }),
      row({ name: 'press', host: 'c' }),
      row({ name: '!!!', host: 'd' }),
    ]);
    assert.deepEqual(targets.map((t) => t.id), ['Press', 'press-2', 'press-3', 'target']);
    assert.equal(targetIdFrom('A very long name for a machine screen', []), 'a-very-long-name-for-a-m');
  });

  it('sets, removes or keeps a password, and reports a row with both a password and "Remove password"', () => {
    const { targets, conflicts } = targetsFromRows([
      row({ id: 'a', host: 'a', password: 'pw' }),
      row({ id: 'b', host: 'b', removePassword: true }),
      row({ id: 'c', host: 'c' }),
      row({ id: 'd', host: 'd', password: 'pw', removePassword: true }),
    ]);
    assert.deepEqual(targets.map((t) => ('password' in t ? t.password : 'kept')), ['pw', null, 'kept', 'kept']);
    assert.deepEqual(conflicts, [3]);
    assert.match(PASSWORD_AND_REMOVE, /not both/);
  });

  it('maps an error field to its target and row field', () => {
    assert.deepEqual(rowFieldOf('targets[12].idleTimeout'), { target: 12, field: 'idleTimeout' });
    assert.equal(rowFieldOf('targets[0].unknown'), null);
    assert.equal(rowFieldOf('version'), null);
  });

  it('is browser-safe: the compiled module imports nothing', () => {
    const compiled = fs.readFileSync(new URL('../../src/shared/form-rules.js', import.meta.url), 'utf8');
    assert.doesNotMatch(compiled, /^\s*import\s/m);
    assert.doesNotMatch(compiled, /\brequire\(/);
  });

  it('is the only copy: public/config.js imports it and keeps none of the rules itself', () => {
    const script = fs.readFileSync(path.join(ROOT, 'public', 'config.js'), 'utf8');
    assert.match(script, /from '\.\.\/shared\/form-rules\.js'/);
    assert.doesNotMatch(script, /5900/, 'no default port of its own');
    assert.doesNotMatch(script, /toLowerCase\(\)\.replace/, 'no id rule of its own');
    assert.doesNotMatch(script, /targets\\\[/, 'no field pattern of its own');
    assert.doesNotMatch(script, /not both/, 'no message of its own');
  });
});

describe('the shared module and the status panel as the page loads them', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ initial: { version: 1, targets: [target('press', 5900, '192.168.1.50', 'Press <line>')] } });
  });
  after(() => t?.close());

  it('bundles src/shared/form-rules.ts into the script the settings page loads', async () => {
    const http = client(t.port);
    const page = (await http.get(`${PREFIX}/config/`)).text;
    const src = /<script src="\.\.\/static\/(config-[0-9a-f]{10}\.js)" type="module">/.exec(page)?.[1];
    assert.ok(src, 'the page loads its hashed script');
    const res = await http.get(`${PREFIX}/static/${src}`, { headers: { 'Accept-Encoding': 'identity' } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.ok(res.text.includes(PASSWORD_AND_REMOVE), 'the shared rule text is in the bundle');
    assert.doesNotMatch(res.text, /from\s*["']\.\.\/shared\//, 'no import left for the browser to fetch');
  });

  it('answers api/v1/status asked for HTML with the same panel the page was rendered with, and JSON otherwise', async () => {
    const http = client(t.port);
    const page = (await http.get(`${PREFIX}/config/`)).text;
    const panel = /<div id="status-body">([\s\S]*?)<\/div>\s*<\/section>/.exec(page)?.[1];
    assert.ok(panel, 'the page has the status panel');
    const fragment = await http.get(`${API}/status`, { headers: { Accept: 'text/html' } });
    assert.equal(fragment.status, 200);
    assert.match(String(fragment.headers['content-type']), /^text\/html/);
    assert.equal(fragment.text, panel);
    assert.match(fragment.text, /<li>Press &lt;line&gt; \(192\.168\.1\.50:5900\)<\/li>/, 'escaped by the template');
    const json = await http.get(`${API}/status`);
    assert.match(String(json.headers['content-type']), /^application\/json/);
    assert.equal(json.json().relay.targets[0].name, 'Press <line>');
  });
});
