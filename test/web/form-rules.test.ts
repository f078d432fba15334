/**
 * One source for what the settings page and the server both need: the form's rules
 * (src/common/form-rules.ts), applied by the form route and by public/config.js, and the status
 * panel, rendered only by views/partials/status.ejs (in the page, and alone for the page's live
 * updates). The browser half (config.js in chromium) is in settings-page-js.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/ctrlx/paths.js';
import {
  DEFAULT_VNC_PORT,
  fieldInWords,
  HOST_IPV4_MESSAGE,
  HOST_MESSAGE,
  hostProblem,
  isIPv4,
  PASSWORD_AND_REMOVE,
  PORT_MESSAGE,
  rowFieldOf,
  targetIdFrom,
  targetProblems,
  targetsFromRows,
  type RowInput,
} from '../../src/common/form-rules.js';
import { validateConfigInput, validateProbeTarget } from '../../src/config/schema.js';
import { isValidHost } from '../../src/relay/address.js';
import { API, PREFIX, client, startTestApp, target, type TestApp } from '../helpers/app.js';

const ROOT = packageRoot();

const row = (fields: Partial<RowInput>): RowInput => ({ id: '', name: '', host: '', port: '', idleTimeout: '', control: '', allowResize: false, password: '', removePassword: false, ...fields });

describe('the form rules (src/common/form-rules.ts)', () => {
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

  it('takes four dot-separated numbers as an IPv4 address or refuses them, in the form rules and the schema alike', () => {
    for (const good of ['192.168.1.20', '0.0.0.0', '255.255.255.255', '10.0.0.1']) {
      assert.equal(isIPv4(good), true, good);
      assert.equal(hostProblem(good), null, good);
      assert.equal(isValidHost(good), true, good);
      assert.equal(validateConfigInput({ targets: [{ id: 'a', name: 'A', host: good, port: 5900 }] }, { versionOptional: true }).ok, true, good);
    }
    for (const bad of ['192.168.1.300', '256.0.0.1', '1.2.3.4444', '10.0.0.01', ' 192.168.1.300 ']) {
      assert.equal(isIPv4(bad.trim()), false, bad);
      assert.equal(hostProblem(bad), HOST_IPV4_MESSAGE, bad);
      assert.equal(isValidHost(bad.trim()), false, bad);
      const v = validateConfigInput({ targets: [{ id: 'a', name: 'A', host: bad, port: 5900 }] }, { versionOptional: true });
      assert.deepEqual(v.ok ? [] : v.errors, [{ field: 'targets[0].host', message: HOST_IPV4_MESSAGE }], bad);
      const probe = validateProbeTarget(bad, 5900);
      assert.deepEqual(probe.ok ? [] : probe.errors, [{ field: 'host', message: HOST_IPV4_MESSAGE }], bad);
    }
    // Host names with digits stay host names; three or five numbers are not an IPv4 address either way.
    for (const name of ['hmi-press-2', 'press01.plant', '1.2.3', '1.2.3.4.5']) assert.equal(hostProblem(name), null, name);
    assert.equal(hostProblem('  '), HOST_MESSAGE);
  });

  it('says what is wrong in the field\'s own words, without field paths or RFC numbers', () => {
    assert.deepEqual(targetProblems({ id: '', name: 'Weld', host: '192.168.1.300', port: 70000, idleTimeout: 0 }), [
      { field: 'host', message: 'Host: four numbers with dots must be an IPv4 address, each number from 0 to 255, e.g. 192.168.1.20' },
      { field: 'port', message: 'Port: enter a number from 1 to 65535' },
      { field: 'idleTimeout', message: 'Close idle sessions after: enter whole minutes from 1 to 1440, or leave it empty to never close idle sessions' },
    ]);
    assert.deepEqual(targetProblems({ id: '', name: 'Weld', host: 'weld-hmi', port: 'vnc' }), [{ field: 'port', message: PORT_MESSAGE }]);
    assert.deepEqual(targetProblems({ id: '', name: 'Weld', host: 'weld-hmi', port: 5901 }), []);
    assert.equal(HOST_MESSAGE, 'Host: enter an IP address or a host name, e.g. 192.168.1.20 or hmi-press-2');
    assert.equal(fieldInWords('targets[1].port'), 'Target 2');
    // The schema's messages for every field a user types in: no path, no RFC.
    const v = validateConfigInput(
      { targets: [{ id: 'a b', name: '', host: 'my host', port: 0, idleTimeout: 5000, password: 'Pässwort€' }] },
      { versionOptional: true },
    );
    assert.equal(v.ok, false);
    for (const e of v.ok ? [] : v.errors) {
      assert.match(e.field, /^targets\[0\]\./, 'the API keeps the field path');
      assert.match(e.message, /^(ID|Name|Host|Port|Close idle sessions after|VNC password): /, e.message);
      assert.doesNotMatch(e.message, /RFC|targets\[/, e.message);
    }
  });

  it('is browser-safe: the compiled module imports only the message catalogues (src/common/i18n/), which import nothing else', () => {
    const compiled = fs.readFileSync(new URL('../../src/common/form-rules.js', import.meta.url), 'utf8');
    const imports = [...compiled.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ['./i18n/index.js']);
    assert.doesNotMatch(compiled, /\brequire\(/);
    for (const file of ['index.js', 'en.js', 'de.js']) {
      const source = fs.readFileSync(new URL(`../../src/common/i18n/${file}`, import.meta.url), 'utf8');
      for (const m of source.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)) assert.match(m[1]!, /^\.\/(en|de)\.js$/, `${file} imports ${m[1]}`);
      assert.doesNotMatch(source, /\brequire\(/);
    }
  });

  it('is the only copy: public/config.js imports it and keeps none of the rules itself', () => {
    const script = fs.readFileSync(path.join(ROOT, 'public', 'config.js'), 'utf8');
    assert.match(script, /from '\.\.\/common\/form-rules\.js'/);
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

  it('bundles src/common/form-rules.ts into the script the settings page loads', async () => {
    const http = client(t.port);
    const page = (await http.get(`${PREFIX}/config/`)).text;
    const src = /<script src="\.\.\/static\/(config-[0-9a-f]{10}\.js)" type="module">/.exec(page)?.[1];
    assert.ok(src, 'the page loads its hashed script');
    const res = await http.get(`${PREFIX}/static/${src}`, { headers: { 'Accept-Encoding': 'identity' } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /javascript/);
    assert.ok(res.text.includes(PASSWORD_AND_REMOVE), 'the shared rule text is in the bundle');
    assert.doesNotMatch(res.text, /from\s*["']\.\.\/common\//, 'no import left for the browser to fetch');
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
