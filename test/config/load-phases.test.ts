/**
 * The ctrlX active-configuration callbacks (`POST api/v1/save`, `POST api/v1/load`) the way the
 * Solutions app drives them: query → prepare → load → validate → activate, or abort; the file
 * Solutions copies in takes effect at `activate`, never earlier; abort restores the previous
 * configuration in memory and on disk; save writes the configuration in use.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import {
  API,
  assertProblem,
  client,
  config,
  configPaths,
  editConfigFile,
  makeTempDir,
  removeDir,
  openSessionTo,
  sleep,
  startTestApp,
  target,
  vncServer,
  waitFor,
  writeConfigFile,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';
import { serializeConfig, type Config } from '../../src/config/schema.js';
import { ConfigService } from '../../src/config/service.js';

const CONFIG_PATH = 'solutions/DefaultSolution/configurations/appdata';

describe('active configuration callbacks', () => {
  const servers: Record<string, FakeServer> = {};
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let A: Config;
  let B: Config;

  before(async () => {
    for (const tag of ['A', 'B']) servers[tag] = await vncServer(tag);
    A = config(target('press', servers.A!.port, '127.0.0.1', 'Press'));
    B = config(target('weld', servers.B!.port, '127.0.0.1', 'Welder'), target('press', servers.A!.port, '127.0.0.1', 'Press'));
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.close();
  });
  beforeEach(async () => {
    t = await startTestApp({ initial: serializeConfig(A) });
    http = client(t.port);
  });
  afterEach(() => t.close());

  const load = (phase: string, id = 'load-1') => http.post(`${API}/load`, { configurationPath: CONFIG_PATH, id, phase });
  const expect204 = async (phase: string, id?: string): Promise<void> => {
    const res = await load(phase, id);
    assert.equal(res.status, 204, `${phase}: ${res.text}`);
    assert.equal(res.text, '');
  };
  /** Lets several poll intervals pass, long enough for the watcher to have applied a change. */
  const pollIntervals = () => sleep(400);

  it('loads a valid file through every phase; it takes effect at activate, not when copied in', async () => {
    const before = await openSessionTo(t.port, 'press', 'A');
    await expect204('query');
    await expect204('query'); // Solutions calls query twice
    assert.equal((await http.status()).config.loading, true);
    await expect204('prepare');

    // Solutions copies the archived folder in.
    editConfigFile(t.file, B);
    await pollIntervals();
    assert.deepEqual(await http.config(), A, 'not applied while the load is in progress');

    await expect204('load');
    await pollIntervals();
    assert.deepEqual(await http.config(), A, 'still not applied after load');
    await expect204('validate');
    assert.deepEqual(await http.config(), A, 'still not applied after validate');

    await expect204('activate');
    assert.deepEqual(await http.config(), B);
    const status = await http.status();
    assert.equal(status.config.loading, false);
    assert.deepEqual(
      status.relay.targets.map((x) => [x.id, x.target]),
      [
        ['weld', `127.0.0.1:${servers.B!.port}`],
        ['press', `127.0.0.1:${servers.A!.port}`],
      ],
    );
    // A real session to the loaded target reaches its server; the default is now its first target.
    const weld = await openSessionTo(t.port, 'weld', 'B');
    const byDefault = await openSessionTo(t.port, undefined, 'B');
    // The unchanged target's session survived.
    assert.equal(before.ws.readyState, before.ws.OPEN);
    for (const s of [weld, byDefault, before]) s.ws.close();

    // The file watcher is back: a later edit is applied again.
    editConfigFile(t.file, A);
    await waitFor('the watcher to apply a later edit', async () => (await http.config()).targets.length === 1);

    // The save that follows every completed load: 204, file holds the configuration in use.
    assert.equal((await http.post(`${API}/save`, { configurationPath: CONFIG_PATH, id: 'load-1', phase: 'save' })).status, 204);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(A));
  });

  it('answers load of an invalid file with 422 Problem JSON naming the problem; abort restores the previous configuration', async () => {
    await expect204('query');
    await expect204('prepare');
    const bad = '{\n  "version": 1,\n  "targets": [\n    { "id": "x", "name": "X", "host": "no such host!", "port": 5900 }\n  ]\n}\n';
    editConfigFile(t.file, bad);
    const res = await load('load');
    const p = assertProblem(res, 422, {
      type: 'urn:ctrlx-novnc:problem:validation-failed',
      field: 'targets[0].host',
      severity: 'Error',
    });
    // ctrlX OS reads 080F0100 as "Error in diagnostic system": no diagnosis code is sent.
    assert.equal('mainDiagnosisCode' in p, false);
    assert.match(p.detail, /config\.json \(line 4, targets\[0\]\.host\): Host: .* \[load-1\]$/);
    assert.match(p.dynamicDescription, /\[load-1\]$/);

    // validate says the same.
    assertProblem(await load('validate'), 422, { field: 'targets[0].host' });

    // A corrupt (non-JSON) file is named too.
    editConfigFile(t.file, '{"version": 1, "targets": [');
    const corrupt = assertProblem(await load('load'), 422);
    assert.match(corrupt.detail, /not valid JSON/);

    await expect204('abort');
    assert.deepEqual(await http.config(), A);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(A), 'the previous configuration is back on disk');
    const status = await http.status();
    assert.equal(status.config.loading, false);
    assert.equal(status.config.state, 'ok');
  });

  it('abort after a valid load restores the previous configuration in memory and on disk', async () => {
    await expect204('query');
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('load');
    await expect204('validate');
    await expect204('abort');
    assert.deepEqual(await http.config(), A);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(A), 'the previous configuration is back on disk');
    await pollIntervals();
    assert.deepEqual(await http.config(), A, 'and stays in use once the watcher resumes');
  });

  it('abort after activate is a no-op (nothing in progress)', async () => {
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('load');
    await expect204('activate');
    await expect204('abort');
    assert.deepEqual(await http.config(), B);
  });

  it('resets to no targets when the loaded configuration has no file for this app', async () => {
    const session = await openSessionTo(t.port, 'press', 'A');
    await expect204('query');
    await expect204('prepare');
    fs.rmSync(t.dir, { recursive: true });
    await expect204('load');
    await expect204('validate');
    assert.deepEqual(await http.config(), A);
    await expect204('activate');
    assert.deepEqual(await http.config(), config());
    const status = await http.status();
    assert.deepEqual(status.relay.targets, []);
    assert.deepEqual(await session.closed, { code: 4000, reason: 'target changed' });
  });

  it('activate of a valid file clears an earlier file error and reports the file as it is', async () => {
    editConfigFile(t.file, '{ not json');
    await waitFor('state invalid', async () => (await http.status()).config.state === 'invalid');
    await expect204('query');
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('load');
    await expect204('activate');
    assert.deepEqual(await http.config(), B);
    let status = await http.status();
    assert.equal(status.config.state, 'ok');
    assert.equal(status.config.error, null);
    const page = await http.get('/ctrlx-novnc/config/');
    assert.doesNotMatch(page.text, /id="file-error"/);

    // And a load without a file: afterwards the status says there is none.
    await expect204('prepare', 'load-2');
    fs.rmSync(t.file);
    await expect204('load', 'load-2');
    await expect204('activate', 'load-2');
    status = await http.status();
    assert.equal(status.config.exists, false);
    assert.equal(status.config.state, 'ok');
  });

  it('shows "Loading" on the page while a load is in progress', async () => {
    await expect204('prepare');
    const page = await http.get('/ctrlx-novnc/config/');
    assert.match(page.text, /badge-restarting">Loading</);
    await expect204('abort');
    assert.doesNotMatch((await http.get('/ctrlx-novnc/config/')).text, />Loading</);
  });

  it('activate without load/validate reads the file then', async () => {
    await expect204('query');
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('activate');
    assert.deepEqual(await http.config(), B);
  });

  it('answers unknown phases with 204 and changes nothing', async () => {
    await expect204('defrost');
    await expect204('post-activate');
    assert.equal((await http.status()).config.loading, false);
    assert.deepEqual(await http.config(), A);
  });

  it('save writes the configuration in use when there is no file yet', async () => {
    fs.rmSync(t.file);
    await waitFor('the missing file noticed', async () => !(await http.status()).config.exists);
    // A missing file is the initial state (no targets); save writes exactly that.
    const res = await http.post(`${API}/save`, { configurationPath: CONFIG_PATH, id: 's1', phase: 'save' });
    assert.equal(res.status, 204, res.text);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(await http.config()));
  });

  it('save rewrites a file changed behind the app so it holds the configuration in use', async () => {
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('abort'); // A in use, A on disk
    // While a (second) load is in progress, the file differs from what is in use.
    await expect204('prepare', 'load-2');
    editConfigFile(t.file, B);
    const res = await http.post(`${API}/save`, { configurationPath: CONFIG_PATH, id: 's2', phase: 'save' });
    assert.equal(res.status, 204, res.text);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(A));
    await expect204('abort', 'load-2');
  });

  it('after activate a user save of the previous content is written to disk', async () => {
    await expect204('prepare');
    editConfigFile(t.file, B);
    await expect204('load');
    await expect204('activate');
    const res = await http.put(`${API}/config`, A);
    assert.equal(res.status, 200, res.text);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(A));
  });

  it('answers a malformed callback body with 400 Problem JSON and a non-JSON body with 415', async () => {
    assertProblem(await http.post(`${API}/load`, { id: 'x' }), 400, { field: 'phase' });
    assertProblem(await http.post(`${API}/load`, { phase: 7 }), 400, { field: 'phase' });
    assertProblem(await http.post(`${API}/save`, '{', { headers: { 'Content-Type': 'application/json' } }), 400);
    assertProblem(await http.post(`${API}/load`, 'phase=load', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415);
  });

  it('answers 503 Problem JSON for load and save while the active configuration is unavailable', async () => {
    fs.rmSync(t.activeDir, { recursive: true });
    await expect204('query');
    const p = assertProblem(await load('load'), 503, { type: 'urn:ctrlx-novnc:problem:unavailable', severity: 'Error' });
    assert.equal('mainDiagnosisCode' in p, false);
    assert.match(p.detail, /not available.* \[load-1\]$/);
    assert.match(p.dynamicDescription, /\[load-1\]$/);
    const saved = assertProblem(await http.post(`${API}/save`, { configurationPath: CONFIG_PATH, id: 's', phase: 'save' }), 503, { severity: 'Error' });
    assert.match(saved.detail, / \[s\]$/);
    await expect204('abort');
  });
});

describe('a load that never finishes', () => {
  it('is given up after loadTimeout: the watcher resumes and applies the file', async () => {
    const root = await makeTempDir('loadtimeout');
    const solutionsDir = path.join(root, 'solutions');
    const { file } = configPaths(solutionsDir);
    writeConfigFile(file, config(target('a', 5900)));
    const service = new ConfigService({ solutionsDir, appDataDir: null, pollInterval: 20, debounce: 20, loadTimeout: 150 });
    await service.start();
    try {
      await service.load('prepare', 'stuck');
      assert.equal(service.loading, true);
      editConfigFile(file, config(target('b', 5901)));
      await waitFor('the load to be given up', () => !service.loading);
      await waitFor('the file applied once the watcher resumed', () => service.current.targets[0]?.id === 'b');
    } finally {
      service.stop();
      await removeDir(root);
    }
  });
});
