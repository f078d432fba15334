/**
 * A target's VNC password through the real app (`PUT`/`GET api/v1/config`): stored in the private
 * data folder (0600), never in config.json, never in any response or log line; kept, replaced or
 * removed as the API says; bound to the target's address, so a page edit keeps it while a hand
 * edit of config.json or a ctrlX load that moves the target drops it; a corrupt passwords file
 * leaves the app running without stored passwords.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import {
  API,
  PREFIX,
  assertProblem,
  client,
  config,
  editConfigFile,
  startTestApp,
  target,
  waitFor,
  type TestApp,
  type TestAppOptions,
} from '../helpers/app.js';
import { SECRETS_FILE_NAME } from '../../src/config/secrets.js';
import { startDemoServer } from '../../src/demo/demo-server.js';
import { RfbClient } from '../helpers/rfb-client.js';
import { serializeConfig, type Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';

const SECRET = 'Hmi#pw-42x';
const SECOND = 'ändern!9';
const LOAD_PATH = 'solutions/DefaultSolution/configurations/appdata';

type Stored = { version: number; targets: Record<string, { host: string; port: number; password: string }> };

describe('VNC passwords through the API', () => {
  let t: TestApp | undefined;
  let logs: string[] = [];

  async function start(options: TestAppOptions = {}): Promise<{ t: TestApp; http: ReturnType<typeof client>; secrets: string }> {
    logs = [];
    t = await startTestApp({ logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }), ...options });
    return { t, http: client(t.port), secrets: path.join(t.root, 'app', SECRETS_FILE_NAME) };
  }
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const line of logs) {
      assert.ok(!line.includes(SECRET) && !line.includes(SECOND), `a log line holds a password: ${line}`);
    }
  });

  const stored = (file: string): Stored => JSON.parse(fs.readFileSync(file, 'utf8'));
  const press = target('press', 5900, '10.0.0.5', 'Press');
  const weld = target('weld', 5901, '10.0.0.6', 'Welder');

  /** Every read-only answer the app gives about its configuration, as text. */
  async function everything(http: ReturnType<typeof client>): Promise<string> {
    const answers = await Promise.all([
      http.get(`${API}/config`),
      http.get(`${API}/status`),
      http.get(`${PREFIX}/config/`),
      http.get(`${PREFIX}/viewer/`),
      http.post(`${API}/targets/press/probe`),
      http.post(`${API}/save`, { configurationPath: LOAD_PATH, id: 's', phase: 'save' }),
    ]);
    return answers.map((r) => `${r.status} ${JSON.stringify(r.headers)} ${r.text}`).join('\n');
  }

  it('stores a password in the private folder (0600), never in config.json, and never answers it', async () => {
    const { t, http, secrets } = await start({ initial: serializeConfig(config(press, weld)) });
    const res = await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, weld] });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), { version: 1, targets: [{ ...press, passwordSet: true }, { ...weld, passwordSet: false }], passwordsCleared: [] });
    assert.ok(!res.text.includes(SECRET));

    assert.equal(fs.statSync(secrets).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(secrets)).mode & 0o777, 0o700);
    assert.deepEqual(stored(secrets), { version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: SECRET } } });
    assert.ok(!path.dirname(secrets).startsWith(t.solutionsDir), 'not in the solutions (archived) tree');
    const config_ = fs.readFileSync(t.file, 'utf8');
    assert.equal(config_, serializeConfig(config(press, weld)));
    assert.ok(!config_.includes(SECRET));
    for (const f of fs.readdirSync(t.dir)) assert.ok(!fs.readFileSync(path.join(t.dir, f), 'utf8').includes(SECRET), f);

    const answers = await everything(http);
    assert.ok(!answers.includes(SECRET), 'no answer holds the password');
    assert.deepEqual((await http.get(`${API}/config`)).json().targets.map((x: { passwordSet: boolean }) => x.passwordSet), [true, false]);
    assert.equal(t.app.config.passwordFor('press'), SECRET, 'the relay can have it');
  });

  it('keeps the password when the field is absent, replaces it with a string, removes it with null', async () => {
    const { http, secrets } = await start({ initial: serializeConfig(config(press, weld)) });
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }] })).status, 200);

    // A GET sent back as it is (with passwordSet) keeps both.
    const view = (await http.get(`${API}/config`)).json();
    const again = await http.put(`${API}/config`, view);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(stored(secrets).targets.press?.password, SECRET);
    assert.deepEqual(stored(secrets).targets.weld?.password, SECOND);

    // Absent keeps, a string replaces, null removes.
    const res = await http.put(`${API}/config`, { targets: [{ ...press, password: SECOND }, { ...weld, password: null }] });
    assert.deepEqual(res.json().targets.map((x: { passwordSet: boolean }) => x.passwordSet), [true, false]);
    assert.deepEqual(stored(secrets).targets, { press: { host: '10.0.0.5', port: 5900, password: SECOND } });
    // passwordSet: false from an old GET does not remove anything.
    assert.equal((await http.put(`${API}/config`, { targets: [{ ...press, passwordSet: false }, weld] })).status, 200);
    assert.deepEqual(Object.keys(stored(secrets).targets), ['press']);
  });

  it('removes the password with its target', async () => {
    const { http, secrets } = await start({ initial: serializeConfig(config(press, weld)) });
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }] });
    const res = await http.put(`${API}/config`, { targets: [weld] });
    assert.equal(res.status, 200);
    assert.deepEqual(stored(secrets).targets, { weld: { host: '10.0.0.6', port: 5901, password: SECOND } });
    // A new target with the old id starts without a password.
    await http.put(`${API}/config`, { targets: [press, weld] });
    assert.deepEqual((await http.get(`${API}/config`)).json().targets.map((x: { passwordSet: boolean }) => x.passwordSet), [false, true]);
    assert.ok(!fs.readFileSync(secrets, 'utf8').includes(SECRET));
  });

  it('refuses an invalid password naming the field, storing nothing, quoting nothing', async () => {
    const { t, http, secrets } = await start({ initial: serializeConfig(config(press)) });
    for (const [password, message] of [
      ['geheim€', /Latin-1/],
      ['x'.repeat(65), /at most 64 characters/],
      ['', /must not be empty/],
      [42, /must be a string/],
    ] as const) {
      const res = await http.put(`${API}/config`, { targets: [{ ...press, name: 'Changed', password }] });
      const p = assertProblem(res, 400, { type: 'urn:ctrlx-novnc:problem:validation-failed', field: 'targets[0].password' });
      assert.match(p.detail, /^The configuration is invalid: targets\[0\]\.password: /);
      assert.match(p.errors[0].message, message);
      if (typeof password === 'string' && password) assert.ok(!res.text.includes(password), 'the answer does not quote the password');
    }
    assert.equal(fs.existsSync(secrets), false, 'nothing stored');
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(config(press)), 'nothing saved');
  });

  it('does not echo a password from a malformed JSON body', async () => {
    const { http } = await start();
    const res = await http.put(`${API}/config`, `{"targets": [{"id": "press", "password": "${SECRET}" oops}]}`, {
      headers: { 'Content-Type': 'application/json' },
    });
    const p = assertProblem(res, 400, { detail: /^The body is not valid JSON( \(at position \d+\))?\.$/ });
    assert.ok(!JSON.stringify(p).includes(SECRET));
  });

  it('clears the password when the page (API) moves the target without a new one, keeps a new one given with the move, drops it when a hand edit of config.json moves it', async () => {
    const { t, http, secrets } = await start({ initial: serializeConfig(config(press, weld)) });
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }] });

    // Edited on the page: new host and port with the password typed again: bound to the new address.
    const moved = { ...press, host: 'hmi-2.plant.example', port: 5910 };
    const retyped = await http.put(`${API}/config`, { targets: [{ ...moved, password: SECRET }, weld] });
    assert.equal(retyped.status, 200);
    assert.deepEqual(retyped.json().passwordsCleared, []);
    assert.deepEqual(stored(secrets).targets.press, { host: 'hmi-2.plant.example', port: 5910, password: SECRET });
    // Moved again without a password: cleared, and the answer says so.
    const away = await http.put(`${API}/config`, { targets: [{ ...moved, port: 5911 }, weld] });
    assert.equal(away.status, 200);
    assert.deepEqual(away.json().passwordsCleared, ['press']);
    assert.deepEqual(away.json().targets.map((x: { passwordSet: boolean }) => x.passwordSet), [false, true]);
    assert.equal(stored(secrets).targets.press, undefined);
    assert.match(logs.find((l) => /VNC password cleared/.test(l)) ?? '', /^warn .*target=press was=hmi-2\.plant\.example:5910 now=hmi-2\.plant\.example:5911/);
    await http.put(`${API}/config`, { targets: [{ ...moved, password: SECRET }, weld] });

    // Edited by hand: weld renamed (kept), press pointed at another host (dropped).
    editConfigFile(t.file, config({ ...moved, host: '10.9.9.9' }, { ...weld, name: 'Welder 2' }));
    await waitFor('the hand edit to drop the password of the moved target', () => !fs.readFileSync(secrets, 'utf8').includes(SECRET));
    assert.deepEqual(stored(secrets).targets, { weld: { host: '10.0.0.6', port: 5901, password: SECOND } });
    assert.deepEqual((await http.get(`${API}/config`)).json().targets.map((x: { passwordSet: boolean }) => x.passwordSet), [false, true]);
    assert.equal(t.app.config.passwordFor('press'), undefined, 'the relay no longer gets it');
    const warning = logs.find((l) => /VNC password dropped/.test(l));
    assert.ok(warning, logs.join('\n'));
    assert.match(warning, /^warn .*target=press was=hmi-2\.plant\.example:5910 now=10\.9\.9\.9:5910/);

    // A port change by hand drops it too.
    editConfigFile(t.file, config({ ...moved, host: '10.9.9.9' }, { ...weld, port: 6000 }));
    await waitFor('the port edit to drop the other password', () => Object.keys(stored(secrets).targets).length === 0);
  });

  it('a ctrlX load from elsewhere keeps the passwords of unchanged targets and drops the others', async () => {
    const third = target('third', 5902, '10.0.0.7', 'Third');
    const { t, http, secrets } = await start({ initial: serializeConfig(config(press, weld, third)) });
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }, { ...third, password: SECOND }] });
    const load = async (phase: string): Promise<void> => {
      const res = await http.post(`${API}/load`, { configurationPath: LOAD_PATH, id: 'load-1', phase });
      assert.equal(res.status, 204, `${phase}: ${res.text}`);
    };

    await load('query');
    await load('prepare');
    // The archived configuration, from another device: press unchanged (renamed), weld on another
    // address, third missing, a new target.
    const other: Config = config({ ...press, name: 'Press (line 2)' }, { ...weld, host: '192.168.7.6' }, target('new', 5900, '10.0.0.8'));
    editConfigFile(t.file, other);
    await load('load');
    await load('validate');
    assert.equal(Object.keys(stored(secrets).targets).length, 3, 'nothing dropped before activate');
    await load('activate');
    assert.deepEqual(['press', 'weld', 'third', 'new'].map((id) => t.app.config.hasPassword(id)), [true, false, false, false], 'in use at once');
    await waitFor('the passwords file to follow', () => Object.keys(stored(secrets).targets).length === 1);
    assert.deepEqual(stored(secrets).targets, { press: { host: '10.0.0.5', port: 5900, password: SECRET } });
    const view = (await http.get(`${API}/config`)).json();
    assert.deepEqual(view.targets.map((x: { id: string; passwordSet: boolean }) => [x.id, x.passwordSet]), [['press', true], ['weld', false], ['new', false]]);
    assert.ok(logs.some((l) => /VNC password dropped.*target=weld/.test(l)), logs.join('\n'));
    // The save that follows writes config.json without any password.
    assert.equal((await http.post(`${API}/save`, { configurationPath: LOAD_PATH, id: 'load-1', phase: 'save' })).status, 204);
    assert.ok(!fs.readFileSync(t.file, 'utf8').includes('password'));
  });

  it('a corrupt passwords file: the app runs without stored passwords and the file is left until one is entered', async () => {
    // The file exists before the app starts: startTestApp's data root is made by the helper, so
    // start once to learn it, stop, corrupt the file, start again over the same root.
    const first = await start({ initial: serializeConfig(config(press)) });
    await first.http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }] });
    const corrupt = `{"version": 1, "targets": {"press": {"host": "10.0.0.5", "port": 5900, "password": "${SECRET}"`;
    fs.writeFileSync(first.secrets, corrupt);
    await first.t.app.stop();
    const { startApp } = await import('../../src/app.js');
    logs = [];
    const app = await startApp({
      listen: { host: '127.0.0.1', port: 0 },
      solutionsDir: first.t.solutionsDir,
      appDataDir: path.dirname(first.secrets),
      pollInterval: 50,
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
    try {
      const http = client((app.server.address() as { port: number }).port);
      assert.equal((await http.get(`${API}/status`)).status, 200, 'the app runs');
      assert.deepEqual((await http.get(`${API}/config`)).json().targets, [{ ...press, passwordSet: false }]);
      assert.equal(app.config.passwordFor('press'), undefined);
      assert.ok(logs.some((l) => /^error .*VNC passwords file is corrupt or invalid/.test(l)), logs.join('\n'));
      // A save that changes no password leaves the file alone.
      assert.equal((await http.put(`${API}/config`, { targets: [{ ...press, name: 'Renamed' }] })).status, 200);
      assert.equal(fs.readFileSync(first.secrets, 'utf8'), corrupt);
      // Entering the password again replaces it.
      assert.equal((await http.put(`${API}/config`, { targets: [{ ...press, password: SECOND }] })).status, 200);
      assert.deepEqual(stored(first.secrets).targets, { press: { host: '10.0.0.5', port: 5900, password: SECOND } });
    } finally {
      await app.stop();
    }
  });

  it('the relay answers the VNC server with the stored password; without one the browser is asked', async (c) => {
    const demo = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, password: SECRET });
    c.after(() => demo.close());
    const hmi = target('hmi', demo.port, '127.0.0.1', 'HMI');
    const { t, http } = await start({ initial: serializeConfig(config(hmi)) });
    const url = `ws://127.0.0.1:${t.port}${PREFIX}/websockify?target=hmi`;

    // No password stored: the server's own authentication reaches the viewer.
    const asked = await RfbClient.connectWebSocket(url, { password: SECRET });
    assert.deepEqual(asked.securityTypes, [2], 'VNC authentication, passed through');
    await asked.close();

    await http.put(`${API}/config`, { targets: [{ ...hmi, password: SECRET }] });
    const relayed = await RfbClient.connectWebSocket(url);
    assert.deepEqual(relayed.securityTypes, [1], 'no authentication left for the viewer');
    await relayed.close();
  });

  it('forgets rejected passwords of a target when its password is set, changed or removed', async () => {
    const { t, http } = await start({ initial: serializeConfig(config(press, weld)) });
    const reset: string[] = [];
    const original = t.app.supervisor.resetAuthFailures.bind(t.app.supervisor);
    t.app.supervisor.resetAuthFailures = (id: string) => {
      reset.push(id);
      original(id);
    };
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }] });
    assert.deepEqual(reset.splice(0), ['press', 'weld'], 'set');
    await http.put(`${API}/config`, { targets: [press, weld] });
    assert.deepEqual(reset.splice(0), [], 'kept');
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECOND }, { ...weld, password: null }] });
    assert.deepEqual(reset.splice(0), ['press', 'weld'], 'changed and removed');
    await http.put(`${API}/config`, { targets: [{ ...press, password: SECOND }, { ...weld, password: null }] });
    assert.deepEqual(reset.splice(0), ['press'], 'the same password entered again; nothing to remove');
    await http.put(`${API}/config`, { targets: [{ ...press, password: 'x' }, { ...weld, host: 'bad host!' }] });
    assert.deepEqual(reset, [], 'refused');
  });

  it('starts with the passwords of a previous run and drops those a hand edit made while it was stopped', async () => {
    const first = await start({ initial: serializeConfig(config(press, weld)) });
    await first.http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }, { ...weld, password: SECOND }] });
    await first.t.app.stop();
    editConfigFile(first.t.file, config(press, { ...weld, host: '10.0.0.66' }));
    const { startApp } = await import('../../src/app.js');
    logs = [];
    const app = await startApp({
      listen: { host: '127.0.0.1', port: 0 },
      solutionsDir: first.t.solutionsDir,
      appDataDir: path.dirname(first.secrets),
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
    try {
      assert.equal(app.config.passwordFor('press'), SECRET);
      assert.equal(app.config.passwordFor('weld'), undefined);
      assert.deepEqual(Object.keys(stored(first.secrets).targets), ['press']);
    } finally {
      await app.stop();
    }
  });

  it('keeps the passwords while the configuration file is invalid at start', async () => {
    const first = await start({ initial: serializeConfig(config(press)) });
    await first.http.put(`${API}/config`, { targets: [{ ...press, password: SECRET }] });
    await first.t.app.stop();
    editConfigFile(first.t.file, '{"version": 1, "targets": [');
    const { startApp } = await import('../../src/app.js');
    const app = await startApp({ listen: { host: '127.0.0.1', port: 0 }, solutionsDir: first.t.solutionsDir, appDataDir: path.dirname(first.secrets) });
    try {
      assert.equal(app.config.status().state, 'invalid');
      assert.equal(app.config.passwordFor('press'), SECRET, 'not dropped because of the empty stand-in configuration');
      assert.equal(stored(first.secrets).targets.press?.password, SECRET);
    } finally {
      await app.stop();
    }
  });
});
