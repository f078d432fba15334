/**
 * A stored VNC password is bound to the address it was entered for (issue 12, finding 2): a manage
 * user who points a target at another host or port must not get the relay to answer that server's
 * challenge with the stored password. On every path that changes the configuration (the API, the
 * settings form, a hand edit of config.json, a ctrlX load through the callbacks) a change of host
 * or port drops the password unless the same request sets a new one. Proven through the relay:
 * two real VNC servers (the demo server, VNC authentication with the same password); a viewer
 * through the relay sees no authentication left (1, None) when the relay logged in with a stored
 * password, and the server's own VNC authentication (2) when the relay sent nothing.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { API, PREFIX, client, config, csrfToken, editConfigFile, startTestApp, target, waitFor, type TestApp } from '../helpers/app.js';
import { recordReliability } from '../helpers/reliability.js';
import { startDemoServer } from '../../src/demo/demo-server.js';
import { serializeConfig } from '../../src/config/schema.js';
import { ADDRESS_CLEARS_PASSWORD, passwordsClearedText } from '../../src/common/form-rules.js';

const SECRET = 'Bound#pw1';
const LOAD_PATH = 'solutions/DefaultSolution/configurations/appdata';
const NONE = 1;
const VNC_AUTH = 2;

type Demo = Awaited<ReturnType<typeof startDemoServer>>;

describe('a stored VNC password stays with the address it was entered for', () => {
  let A: Demo;
  let B: Demo;
  let t: TestApp;
  let http: ReturnType<typeof client>;
  const paths: string[] = [];

  before(async () => {
    A = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, password: SECRET });
    B = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, password: SECRET });
  });
  after(async () => {
    await A.close();
    await B.close();
    recordReliability({
      table: 'inputs',
      name: 'stored password redirected to a new address',
      tried: `a target with a stored VNC password moved to another VNC server (host or port changed, no new password) through ${paths.join('; ')}; then the viewer opened`,
      outcome: 'the password was dropped on every path (API answer passwordsCleared, a notice on the page, a warning in the log); the relay sent nothing to the new server and the viewer got the server\'s own VNC authentication; a password given with the move is kept and used',
    });
  });

  const hmiAt = (port: number, host = '127.0.0.1') => target('hmi', port, host, 'Line HMI');
  beforeEach(async () => {
    t = await startTestApp({ initial: serializeConfig(config(hmiAt(A.port))) });
    http = client(t.port);
    const set = await http.put(`${API}/config`, { targets: [{ ...hmiAt(A.port), password: SECRET }] });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(await securityTypes(), [NONE], 'the relay logs in to A with the stored password');
  });
  afterEach(() => t.close());

  /**
   * The security types a viewer through the relay is offered for target hmi: the greeting, the
   * viewer's version, the list; then the viewer leaves (no failed login is left behind).
   */
  async function securityTypes(): Promise<number[]> {
    const ws = new WebSocket(`ws://127.0.0.1:${t.port}${PREFIX}/websockify?target=hmi`, ['binary'], { perMessageDeflate: false });
    let got = Buffer.alloc(0);
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
        ws.on('message', (data: Buffer) => {
          const before = got.length;
          got = Buffer.concat([got, data]);
          if (before < 12 && got.length >= 12) ws.send(Buffer.from('RFB 003.008\n', 'latin1'));
          if (got.length > 12 && got.length >= 13 + got[12]!) resolve();
        });
      });
    } finally {
      ws.terminate();
    }
    assert.equal(got.subarray(0, 12).toString('latin1'), 'RFB 003.008\n');
    return [...got.subarray(13, 13 + got[12]!)];
  }

  const passwordSet = async (): Promise<boolean> => (await http.get(`${API}/config`)).json().targets[0].passwordSet;

  it('API: a new port or a new host without a password clears it (and the answer says so); with a new one it is kept', async () => {
    const moved = await http.put(`${API}/config`, { targets: [hmiAt(B.port)] });
    assert.equal(moved.status, 200, moved.text);
    assert.deepEqual(moved.json().passwordsCleared, ['hmi']);
    assert.equal(moved.json().targets[0].passwordSet, false);
    assert.deepEqual(await securityTypes(), [VNC_AUTH], 'nothing sent to B: the viewer is asked');

    // Another name for the same server is another address too.
    await http.put(`${API}/config`, { targets: [{ ...hmiAt(A.port), password: SECRET }] });
    const renamedHost = await http.put(`${API}/config`, { targets: [hmiAt(A.port, 'localhost')] });
    assert.deepEqual(renamedHost.json().passwordsCleared, ['hmi']);
    assert.equal(await passwordSet(), false);

    // Moved with the password typed again: kept, bound to the new address, used there.
    const withPassword = await http.put(`${API}/config`, { targets: [{ ...hmiAt(B.port), password: SECRET }] });
    assert.deepEqual(withPassword.json().passwordsCleared, []);
    assert.deepEqual(await securityTypes(), [NONE]);
    // A change of anything else (the name) keeps it.
    const renamed = await http.put(`${API}/config`, { targets: [{ ...hmiAt(B.port), name: 'Renamed' }] });
    assert.deepEqual(renamed.json().passwordsCleared, []);
    assert.equal(await passwordSet(), true);
    paths.push('PUT api/v1/config');
  });

  it('settings form: the address fields say so; a save that moves the target clears it and the page tells', async () => {
    const page = await http.get(`${PREFIX}/config/`);
    const hint = /<span class="hint address-hint([^"]*)" data-field="addressHint">([^<]*)<\/span>/.exec(page.text);
    assert.ok(hint, 'a hint next to the address fields');
    assert.equal(hint[1], '', 'shown: a password is stored');
    assert.equal(hint[2], ADDRESS_CLEARS_PASSWORD);
    const fields: [string, string][] = [
      ['_csrf', csrfToken(page.text)],
      ['id', 'hmi'],
      ['name', 'Line HMI'],
      ['host', '127.0.0.1'],
      ['port', String(B.port)],
      ['password', ''],
      ['idleTimeout', ''],
      ['action', 'save'],
    ];
    const saved = await http.form(`${PREFIX}/config/`, fields);
    assert.equal(saved.status, 303, saved.text);
    assert.equal(saved.headers.location, './?m=saved&cleared=hmi');
    const after = await http.get(`${PREFIX}/config/?m=saved&cleared=hmi`);
    assert.ok(after.text.includes(passwordsClearedText(['Line HMI']).replaceAll('"', '&#34;')), 'the notice names the target');
    assert.match(after.text, /class="hint address-hint hidden" data-field="addressHint"/, 'no password left: the hint is hidden');
    assert.equal(await passwordSet(), false);
    assert.deepEqual(await securityTypes(), [VNC_AUTH], 'nothing sent to B');
    // An unknown id in the query is not echoed.
    const forged = await http.get(`${PREFIX}/config/?m=saved&cleared=${encodeURIComponent('<b>x</b>')}`);
    assert.ok(!forged.text.includes('<b>x</b>') && !forged.text.includes('was cleared'));
    paths.push('the settings form');
  });

  it('hand edit of config.json: a moved target loses its password', async () => {
    editConfigFile(t.file, config(hmiAt(B.port)));
    await waitFor('the edit applied', async () => (await http.status()).relay.targets[0]?.target === `127.0.0.1:${B.port}`);
    assert.equal(await passwordSet(), false);
    assert.deepEqual(await securityTypes(), [VNC_AUTH], 'nothing sent to B');
    paths.push('a hand edit of config.json');
  });

  it('ctrlX load through the callbacks: a moved target loses its password at activate', async () => {
    const load = async (phase: string): Promise<void> => {
      const res = await http.post(`${API}/load`, { configurationPath: LOAD_PATH, id: 'load-1', phase });
      assert.equal(res.status, 204, `${phase}: ${res.text}`);
    };
    await load('query');
    await load('prepare');
    editConfigFile(t.file, config(hmiAt(B.port)));
    await load('load');
    await load('validate');
    assert.equal(await passwordSet(), true, 'nothing changes before activate');
    await load('activate');
    assert.equal(await passwordSet(), false);
    assert.deepEqual(await securityTypes(), [VNC_AUTH], 'nothing sent to B');
    paths.push('a ctrlX load (query, prepare, load, validate, activate)');
  });
});
