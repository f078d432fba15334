/**
 * config.json as a file other programs touch: external edits (WebDAV, a configuration load) are
 * applied to new sessions and close sessions to changed targets with 4000; a corrupt or invalid
 * file keeps the last good configuration and shows the error; the active configuration folder
 * may appear after start; the app never writes the file on its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  API,
  PREFIX,
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
import { serializeConfig } from '../../src/config/schema.js';
import { startApp } from '../../src/app.js';
import { ConfigStore } from '../../src/config/store.js';

describe('config.json edited from outside', () => {
  const servers: Record<string, FakeServer> = {};
  let t: TestApp;

  before(async () => {
    for (const tag of ['A', 'B', 'C']) servers[tag] = await vncServer(tag);
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.close();
  });
  afterEach(() => t?.close());

  it('applies the edit with the default polling: sessions to the changed target get 4000, others survive, new sessions use the new target', async () => {
    // Default poll interval and debounce, as shipped.
    t = await startTestApp({ pollInterval: undefined, initial: config(target('a', servers.A!.port), target('b', servers.B!.port)) });
    const http = client(t.port);
    const toA = await openSessionTo(t.port, 'a', 'A');
    const toB = await openSessionTo(t.port, 'b', 'B');

    editConfigFile(t.file, config(target('a', servers.C!.port), target('b', servers.B!.port)));

    let closed: { code: number; reason: string } | undefined;
    void toA.closed.then((c) => (closed = c));
    // No time limit asserted (behaviour, not speed): the wait's own guard only stops a hang.
    await waitFor('the session to the changed target to close', () => closed !== undefined);
    assert.deepEqual(closed, { code: 4000, reason: 'target changed' });
    await waitFor('the new configuration in the status', async () => (await http.status()).relay.targets[0]?.target === `127.0.0.1:${servers.C!.port}`);

    const again = await openSessionTo(t.port, 'a', 'C');
    assert.equal(again.received(), 'RFB 003.008\nC');

    // The session to the unchanged target is still open and relaying.
    assert.equal(toB.ws.readyState, toB.ws.OPEN);
    toB.ws.send(Buffer.from('ping'));
    await waitFor('the echo through the surviving session', () => toB.received().endsWith('ping'));

    assert.deepEqual(await http.config(), config(target('a', servers.C!.port), target('b', servers.B!.port)));
    const status = await http.status();
    assert.equal(status.config.state, 'ok');
    assert.deepEqual(status.relay.sessions.map((s) => s.targetId).sort(), ['a', 'b']);
    again.ws.close();
    toB.ws.close();
  });

  it('closes sessions to a removed target and renames without closing', async () => {
    t = await startTestApp({ initial: config(target('a', servers.A!.port), target('b', servers.B!.port)) });
    const toA = await openSessionTo(t.port, 'a', 'A');
    const toB = await openSessionTo(t.port, 'b', 'B');
    // b removed; a only renamed (same host and port).
    editConfigFile(t.file, config(target('a', servers.A!.port, '127.0.0.1', 'Renamed')));
    assert.deepEqual(await toB.closed, { code: 4000, reason: 'target changed' });
    await waitFor('the rename', async () => (await client(t.port).status()).relay.targets[0]?.name === 'Renamed');
    assert.equal(toA.ws.readyState, toA.ws.OPEN);
    toA.ws.close();
  });

  it('keeps the last good configuration when the file is corrupt, shows the error, and never rewrites the file', async () => {
    const good = config(target('a', servers.A!.port));
    t = await startTestApp({ initial: good });
    const http = client(t.port);
    const session = await openSessionTo(t.port, 'a', 'A');

    const corrupt = '{\n  "version": 1,\n  "targets": [\n    { "id": "a", \n';
    editConfigFile(t.file, corrupt);
    await waitFor('state invalid', async () => (await http.status()).config.state === 'invalid');
    const status = await http.status();
    assert.equal(status.config.error?.file, t.file);
    assert.match(status.config.error!.reason, /not valid JSON/);
    assert.equal(typeof status.config.error!.line, 'number');
    assert.deepEqual(await http.config(), good, 'the last good configuration stays in use');
    assert.equal(status.relay.targets[0]?.target, `127.0.0.1:${servers.A!.port}`);
    assert.equal(session.ws.readyState, session.ws.OPEN, 'sessions are not disturbed');

    const page = await http.get(`${PREFIX}/config/`);
    assert.equal(page.status, 200);
    assert.match(page.text, /id="file-error"/);
    assert.match(page.text, /The configuration file is invalid/);
    assert.match(page.text, /not valid JSON/);
    assert.ok(page.text.includes(t.file), 'the page names the file');

    // New sessions still go to the last good target.
    const more = await openSessionTo(t.port, 'a', 'A');
    more.ws.close();

    // Several poll intervals later the file is still what the user wrote.
    await sleep(300);
    assert.equal(fs.readFileSync(t.file, 'utf8'), corrupt);

    // Valid JSON that fails validation: the error names the field and its line.
    editConfigFile(t.file, '{\n  "version": 1,\n  "targets": [\n    { "id": "a", "name": "A", "host": "127.0.0.1", "port": 70000 }\n  ]\n}\n');
    await waitFor('the validation error', async () => (await http.status()).config.error?.field === 'targets[0].port');
    const invalid = (await http.status()).config.error!;
    assert.equal(invalid.line, 4);
    assert.match(invalid.reason, /^Port: enter a number from 1 to 65535$/);
    assert.deepEqual(await http.config(), good);
    const page2 = await http.get(`${PREFIX}/config/`);
    assert.match(page2.text, /line \d+, Target 1: Port: enter a number from 1 to 65535/);

    // Fixing the file applies it and clears the error.
    editConfigFile(t.file, config(target('a', servers.B!.port)));
    await waitFor('state ok again', async () => (await http.status()).config.state === 'ok');
    assert.equal((await http.status()).config.error, null);
    assert.deepEqual(await http.config(), config(target('a', servers.B!.port)));
    assert.deepEqual(await session.closed, { code: 4000, reason: 'target changed' });
  });

  it('starts on an invalid file with no targets and reports the error; a save from the user replaces it', async () => {
    t = await startTestApp({ initial: '{"version": 1, "targets": "nope"}' });
    const http = client(t.port);
    const status = await http.status();
    assert.equal(status.config.state, 'invalid');
    assert.equal(status.config.error?.field, 'targets');
    assert.deepEqual(await http.config(), config());
    const res = await http.put(`${API}/config`, { targets: [target('a', servers.A!.port)] });
    assert.equal(res.status, 200, res.text);
    assert.equal((await http.status()).config.state, 'ok');
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(config(target('a', servers.A!.port))));
  });

  it('removes temporary files a killed writer left behind, and only those', async () => {
    const root = await makeTempDir('stale');
    const { dir, file } = configPaths(path.join(root, 'solutions'));
    writeConfigFile(file, config(target('a', 5900)));
    fs.writeFileSync(path.join(dir, '.config.json.4242.0badf00d.tmp'), '{"version": 1, "tar');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me');
    const app = await startApp({ listen: { host: '127.0.0.1', port: 0 }, solutionsDir: path.join(root, 'solutions'), appDataDir: path.join(root, 'app') });
    try {
      assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'notes.txt']);
      assert.deepEqual(app.config.current, config(target('a', 5900)));
    } finally {
      await app.stop();
      await removeDir(root);
    }
  });
});

describe('a change right after start', () => {
  it('is noticed even when made before the watcher took its first look (30 starts)', async () => {
    const root = await makeTempDir('early');
    try {
      for (let i = 0; i < 30; i++) {
        const solutionsDir = path.join(root, String(i));
        const { file } = configPaths(solutionsDir);
        writeConfigFile(file, config(target('a', 5900)));
        const store = new ConfigStore({ solutionsDir, pollInterval: 20, debounce: 10 });
        await store.start();
        try {
          editConfigFile(file, config(target('b', 5901)));
          await waitFor(`start ${i}: the edit applied`, () => store.config.targets[0]?.id === 'b', { timeoutMs: 2000 });
        } finally {
          store.stop();
        }
      }
    } finally {
      await removeDir(root);
    }
  });
});

describe('the active configuration folder appears after start', () => {
  let t: TestApp;
  afterEach(() => t?.close());

  it('reports unmounted, refuses saves with 503, then applies the folder and its config.json once it appears', async () => {
    const a = await vncServer('A');
    try {
      t = await startTestApp({ mounted: false });
      const http = client(t.port);
      const status = await http.status();
      assert.equal(status.config.state, 'unmounted');
      assert.deepEqual(status.relay.targets, []);

      const res = await http.put(`${API}/config`, { targets: [target('a', a.port)] });
      const p = assertProblem(res, 503, { type: 'urn:ctrlx-novnc:problem:unavailable' });
      assert.match(p.detail, /active configuration is not available/);
      assert.match(p.detail, /nothing was saved/);
      assert.equal(fs.existsSync(t.activeDir), false, 'nothing was created');

      const page = await http.get(`${PREFIX}/config/`);
      assert.match(page.text, /not available yet/);

      // The no-JS form gets the same answer.
      const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
      const form = await http.form(`${PREFIX}/config/`, [['_csrf', token], ['id', ''], ['name', 'A'], ['host', '127.0.0.1'], ['port', String(a.port)], ['action', 'save']]);
      assert.equal(form.status, 503);
      assert.match(form.text, /not available yet/);

      // The plug connects: the folder appears with a configuration in it.
      writeConfigFile(t.file, config(target('a', a.port)));
      await waitFor('state ok', async () => (await http.status()).config.state === 'ok');
      await waitFor('the targets applied', async () => (await http.status()).relay.targets.length === 1);
      assert.deepEqual(await http.config(), config(target('a', a.port)));
      const s = await openSessionTo(t.port, undefined, 'A');
      s.ws.close();

      // Saves work now.
      const saved = await http.put(`${API}/config`, { targets: [target('b', a.port)] });
      assert.equal(saved.status, 200, saved.text);
      assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(config(target('b', a.port))));
    } finally {
      await a.close();
    }
  });

  it('goes to ok with no targets when an empty folder appears, and saving creates the app folder', async () => {
    t = await startTestApp({ mounted: false });
    const http = client(t.port);
    fs.mkdirSync(t.activeDir);
    await waitFor('state ok', async () => (await http.status()).config.state === 'ok');
    const status = await http.status();
    assert.equal(status.config.exists, false);
    const res = await http.put(`${API}/config`, { targets: [target('a', 5900)] });
    assert.equal(res.status, 200, res.text);
    assert.ok(fs.existsSync(t.file));
  });

  it('goes back to unmounted when the folder disappears, keeping the configuration in use', async () => {
    t = await startTestApp({ initial: config(target('a', 5900)) });
    const http = client(t.port);
    fs.rmSync(t.activeDir, { recursive: true });
    await waitFor('state unmounted', async () => (await http.status()).config.state === 'unmounted');
    assert.deepEqual(await http.config(), config(target('a', 5900)));
    assertProblem(await http.put(`${API}/config`, config()), 503);
  });
});

describe('writes happen only on a user action or a save phase', () => {
  let t: TestApp;
  after(() => t?.close());

  it('leaves the file alone while polling, serving pages, after identical saves and after a save phase', async () => {
    const initial = config(target('a', 5900), target('b', 5901, '::1'));
    t = await startTestApp({ initial: serializeConfig(initial) });
    const http = client(t.port);
    // Back-date the file so any rewrite, even within the same second, shows up in its mtime.
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(t.file, old, old);
    const before = fs.statSync(t.file);
    const unchanged = (what: string): void => {
      const now = fs.statSync(t.file);
      assert.equal(now.ino, before.ino, `inode unchanged ${what}`);
      assert.equal(now.mtimeMs, before.mtimeMs, `mtime unchanged ${what}`);
      assert.deepEqual(fs.readdirSync(t.dir), ['config.json'], `no other files ${what}`);
    };

    await sleep(500); // ten poll intervals
    unchanged('over several poll intervals');

    await http.get(`${PREFIX}/config/`);
    await http.get(`${API}/status`);
    await http.get(`${API}/config`);
    unchanged('after reads');

    assert.equal((await http.post(`${API}/save`, { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 's1', phase: 'save' })).status, 204);
    unchanged('after a save phase with unchanged content');

    assert.equal((await http.put(`${API}/config`, initial)).status, 200);
    unchanged('after a PUT of the same configuration');

    await sleep(300);
    unchanged('after more poll intervals');

    // A real change is written (new inode: written beside and renamed over).
    assert.equal((await http.put(`${API}/config`, config(target('a', 5902)))).status, 200);
    const after = fs.statSync(t.file);
    assert.notEqual(after.ino, before.ino);
    assert.equal(fs.readFileSync(t.file, 'utf8'), serializeConfig(config(target('a', 5902))));
    assert.deepEqual(fs.readdirSync(t.dir), ['config.json']);
  });
});
