/**
 * What is read from the files of the configuration is bounded (issue 12, finding 6): whoever can
 * write the active configuration (a ctrlX load, WebDAV) or the app's data can put a 20 MB file, a
 * symlink to /dev/zero, a FIFO or a folder where config.json or vnc-passwords.json belongs. The
 * real `serve` child, for each of them at start and as an edit while it runs: it stays up with
 * bounded memory (RSS from /proc), reports the file and what is wrong with it, keeps the last good
 * configuration, picks up the next valid edit, saves over the thing (PUT api/v1/config), and
 * stops on SIGTERM through its normal stop path.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API, config, editConfigFile, target } from '../helpers/app.js';
import { startAppChild, startVncEcho, stopCleanly, type AppChild } from '../helpers/app-child.js';
import { rssKiB } from '../helpers/proc.js';
import { recordReliability } from '../helpers/reliability.js';
import type { TcpTarget } from '../helpers/targets.js';
import { settle, waitFor } from '../helpers/wait.js';
import { serializeConfig } from '../../src/config/schema.js';
import { SECRETS_FILE_NAME } from '../../src/config/secrets.js';
import type { AppStatus } from '../../src/web/app.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 120_000 };
/** The most the app's RSS may grow while refusing a thing: far below the 20 MB a full read takes. */
const GROWTH_KIB = 10 * 1024;

interface Thing {
  name: string;
  /** Puts the thing at `file` (whatever was there is removed first). */
  put(file: string): void;
  /** What the reported reason says. */
  reason: RegExp;
}

function clear(file: string): void {
  fs.rmSync(file, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(file), { recursive: true });
}

const THINGS: Thing[] = [
  {
    name: 'a 20 MB file',
    put: (f) => {
      clear(f);
      // Valid JSON start, then 20 MB of a string: a full read and parse needs far more than 10 MB.
      fs.writeFileSync(f, `{"version": 1, "targets": [], "x": "${'a'.repeat(20 * 1024 * 1024)}"}\n`);
    },
    reason: /too big \(20\.0 MiB; at most 1\.0 MiB is read\)/,
  },
  {
    name: 'a symlink to /dev/zero',
    put: (f) => {
      clear(f);
      fs.symlinkSync('/dev/zero', f);
    },
    reason: /character device, not a regular file/,
  },
  {
    name: 'a FIFO',
    put: (f) => {
      clear(f);
      execFileSync('mkfifo', [f]);
    },
    reason: /FIFO \(named pipe\), not a regular file/,
  },
  {
    name: 'an empty folder',
    put: (f) => {
      clear(f);
      fs.mkdirSync(f);
    },
    reason: /a folder, not a regular file/,
  },
];

function kindOf(file: string): string {
  const st = fs.lstatSync(file);
  return st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isDirectory() ? 'folder' : 'other';
}

async function statusUntil(app: AppChild, what: string, check: (s: AppStatus) => boolean): Promise<AppStatus> {
  let last: AppStatus | undefined;
  await waitFor(
    what,
    async () => {
      last = await app.http.status();
      return check(last);
    },
    { intervalMs: 50, timeoutMs: 15_000 },
  ).catch(() => assert.fail(`${what}; status: ${JSON.stringify(last?.config)}`));
  return last!;
}

function rssBaseline(pid: number): Promise<number> {
  return settle(() => Math.round(rssKiB(pid) / 256), { intervalMs: 100, stable: 5 }).then(() => rssKiB(pid));
}

describe('config.json: a huge file, a symlink to /dev/zero, a FIFO or a folder in its place', () => {
  let echo: TcpTarget<net.Socket>;
  before(async () => {
    echo = await startVncEcho();
  });
  after(async () => {
    await echo.close();
  });

  it(`at start: starts, reports the file as invalid, runs without targets, saves over it, stops on SIGTERM (${THINGS.length} kinds)`, LIMIT, async (t) => {
    // What the app holds after starting on a good file, to compare each start with.
    const control = await startAppChild({ initial: config(target('a', echo.port)) });
    t.after(() => control.cleanup());
    await statusUntil(control, 'the control app: state ok', (s) => s.config.state === 'ok');
    const base = await rssBaseline(control.pid);
    await stopCleanly(control);
    const growths: number[] = [];
    for (const thing of THINGS) {
      const app = await startAppChild({ prepare: (root) => thing.put(path.join(root, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json')) });
      t.after(() => app.cleanup());
      const status = await statusUntil(app, `${thing.name}: state invalid`, (s) => s.config.state === 'invalid');
      // Read at start: its RSS then, against the control's (a full read of 20 MB would add far more).
      const atStart = (await rssBaseline(app.pid)) - base;
      assert.ok(atStart < GROWTH_KIB, `${thing.name}: RSS after start ${atStart} KiB above a start on a good file`);
      assert.equal(status.config.error?.file, app.file, thing.name);
      assert.match(status.config.error!.reason, thing.reason, thing.name);
      assert.deepEqual((await app.http.config()).targets, [], `${thing.name}: no targets (there was no good configuration yet)`);
      const good = config(target('a', echo.port));
      const saved = await app.http.put(`${API}/config`, good);
      assert.equal(saved.status, 200, `${thing.name}: save: ${saved.text}`);
      assert.equal(kindOf(app.file), 'file', `${thing.name}: replaced by a regular file`);
      assert.equal(fs.readFileSync(app.file, 'utf8'), serializeConfig(good));
      await statusUntil(app, `${thing.name}: state ok after the save`, (s) => s.config.state === 'ok' && s.config.error === null);
      growths.push(atStart);
      await stopCleanly(app);
      await app.cleanup();
    }
    recordReliability({
      table: 'faults',
      name: 'config.json not a readable regular file at start',
      tried: `${THINGS.map((x) => x.name).join('; ')} in place of config.json before \`serve\` starts`,
      outcome: `starts every time; status "invalid" naming the file and the cause; no targets until a save, which replaces the thing with the file; RSS after start at most ${Math.max(...growths)} KiB above a start on a good file; SIGTERM exits 0`,
      bytesLost: 0,
    });
  });

  it(`as an edit while running: keeps the last good configuration with bounded memory, picks up the next valid edit, saves over it, stops on SIGTERM (${THINGS.length} kinds)`, LIMIT, async (t) => {
    let good = config(target('a', echo.port, '127.0.0.1', 'Good 0'));
    const app = await startAppChild({ initial: good });
    t.after(() => app.cleanup());
    await statusUntil(app, 'state ok', (s) => s.config.state === 'ok');
    let maxGrowth = 0;
    for (const [i, thing] of THINGS.entries()) {
      // An edit puts the thing in place of the file. The RSS is measured around its reading
      // only: saves and pages in between grow the heap a little on their own.
      const base = await rssBaseline(app.pid);
      thing.put(app.file);
      const status = await statusUntil(app, `${thing.name}: state invalid`, (s) => s.config.state === 'invalid');
      assert.equal(status.config.error?.file, app.file);
      assert.match(status.config.error!.reason, thing.reason, thing.name);
      assert.deepEqual(await app.http.config(), good, `${thing.name}: the last good configuration stays in use`);
      const page = await app.http.get('/ctrlx-novnc/config/');
      assert.match(page.text, /The configuration file is invalid/, thing.name);
      maxGrowth = Math.max(maxGrowth, rssKiB(app.pid) - base);
      assert.ok(rssKiB(app.pid) - base < GROWTH_KIB, `${thing.name}: RSS grew by ${rssKiB(app.pid) - base} KiB`);

      // A save from the page or the API replaces it.
      good = config(target('a', echo.port, '127.0.0.1', `Saved ${i}`));
      const saved = await app.http.put(`${API}/config`, good);
      assert.equal(saved.status, 200, `${thing.name}: save: ${saved.text}`);
      assert.equal(kindOf(app.file), 'file');
      assert.equal(fs.readFileSync(app.file, 'utf8'), serializeConfig(good));
      await statusUntil(app, `${thing.name}: state ok after the save`, (s) => s.config.state === 'ok');

      // Put there again at once (the same symlink to the same device is seen as a change too),
      // then a valid edit (the thing replaced by a file) is picked up.
      thing.put(app.file);
      await statusUntil(app, `${thing.name}: state invalid again`, (s) => s.config.state === 'invalid');
      clear(app.file);
      good = config(target('a', echo.port, '127.0.0.1', `Edited ${i}`));
      editConfigFile(app.file, good);
      await statusUntil(app, `${thing.name}: the valid edit picked up`, (s) => s.config.state === 'ok' && s.relay.targets[0]?.name === `Edited ${i}`);
      assert.deepEqual(await app.http.config(), good);
    }
    // Left in place at the stop: SIGTERM still stops the app.
    THINGS[2]!.put(app.file);
    await statusUntil(app, 'a FIFO: state invalid', (s) => s.config.state === 'invalid');
    await stopCleanly(app);
    recordReliability({
      table: 'faults',
      name: 'config.json replaced by a huge file, /dev/zero, a FIFO or a folder while running',
      tried: `${THINGS.map((x) => x.name).join('; ')} in place of config.json while running, each followed by a save (PUT api/v1/config), again, then a valid edit; SIGTERM with a FIFO in place`,
      outcome: `never read beyond 1 MiB nor blocked: status "invalid" naming the file and the cause, the last good targets kept, RSS growth at most ${maxGrowth} KiB; every save replaced the thing; every valid edit applied; SIGTERM exits 0`,
      bytesLost: 0,
    });
  });

  it('a ctrlX load that brings a FIFO or a symlink to /dev/zero: the load phase answers 422 with the cause, the abort keeps the last good configuration', LIMIT, async (t) => {
    const good = config(target('a', echo.port));
    const app = await startAppChild({ initial: good });
    t.after(() => app.cleanup());
    const load = (phase: string) => app.http.post(`${API}/load`, { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'l1', phase });
    for (const thing of [THINGS[1]!, THINGS[2]!]) {
      for (const phase of ['query', 'prepare']) assert.equal((await load(phase)).status, 204);
      thing.put(app.file);
      const res = await load('load');
      assert.equal(res.status, 422, `${thing.name}: ${res.text}`);
      assert.match(res.json().detail, thing.reason, thing.name);
      assert.ok(String(res.json().detail).startsWith(app.file), 'names the file');
      assert.equal((await load('abort')).status, 204);
      assert.equal(kindOf(app.file), 'file', `${thing.name}: abort rewrote the last good file`);
      assert.deepEqual(await app.http.config(), good);
    }
    await stopCleanly(app);
  });

  it('refuses to save over a folder that has content, with a clear error, and keeps running', LIMIT, async (t) => {
    const good = config(target('a', echo.port));
    const app = await startAppChild({ initial: good });
    t.after(() => app.cleanup());
    clear(app.file);
    fs.mkdirSync(app.file);
    fs.writeFileSync(path.join(app.file, 'keep.txt'), 'someone\'s data\n');
    await statusUntil(app, 'state invalid', (s) => s.config.state === 'invalid');
    const saved = await app.http.put(`${API}/config`, config(target('b', echo.port)));
    assert.equal(saved.status, 500, saved.text);
    assert.match(saved.text, /is a folder with content, not a file \(move it away\)/);
    assert.equal(fs.readFileSync(path.join(app.file, 'keep.txt'), 'utf8'), 'someone\'s data\n', 'the folder is left alone');
    assert.deepEqual(await app.http.config(), good);
    await stopCleanly(app);
  });
});

describe('vnc-passwords.json: a huge file, a symlink to /dev/zero, a FIFO or a folder in its place', () => {
  let echo: TcpTarget<net.Socket>;
  before(async () => {
    echo = await startVncEcho();
  });
  after(async () => {
    await echo.close();
  });

  const passwordsFile = (root: string): string => path.join(root, 'app', SECRETS_FILE_NAME);

  it(`at start and while running: starts, reports it, saves a password over it, stops on SIGTERM (${THINGS.length} kinds)`, LIMIT, async (t) => {
    const good = config(target('a', echo.port));
    // What the app holds after starting without a passwords file, to compare each start with.
    const control = await startAppChild({ initial: good });
    t.after(() => control.cleanup());
    const base = await rssBaseline(control.pid);
    await stopCleanly(control);
    let maxGrowth = 0;
    for (const thing of THINGS) {
      const app = await startAppChild({ initial: good, prepare: (root) => thing.put(passwordsFile(root)) });
      t.after(() => app.cleanup());
      const file = passwordsFile(app.root);
      maxGrowth = Math.max(maxGrowth, (await rssBaseline(app.pid)) - base);
      assert.ok(maxGrowth < GROWTH_KIB, `${thing.name}: RSS after start ${maxGrowth} KiB above a start without the file`);
      const status = await app.http.status();
      assert.equal(status.config.state, 'ok', `${thing.name}: config.json is fine`);
      assert.equal(status.config.passwordsError?.file, file, thing.name);
      assert.match(status.config.passwordsError!.reason, thing.reason, thing.name);
      assert.deepEqual(await app.http.config(), good);
      // A save with a password replaces the thing with the private file.
      const saved = await app.http.put(`${API}/config`, { targets: [{ ...target('a', echo.port), password: 'first' }] });
      assert.equal(saved.status, 200, `${thing.name}: ${saved.text}`);
      assert.equal(kindOf(file), 'file');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.match(fs.readFileSync(file, 'utf8'), /"password": "first"/);
      assert.equal((await app.http.status()).config.passwordsError, null, `${thing.name}: the problem is cleared by the save`);

      // While running: put there again; the next password save replaces it too.
      thing.put(file);
      const again = await app.http.put(`${API}/config`, { targets: [{ ...target('a', echo.port), password: 'second' }] });
      assert.equal(again.status, 200, `${thing.name}: ${again.text}`);
      assert.equal(kindOf(file), 'file');
      assert.match(fs.readFileSync(file, 'utf8'), /"password": "second"/);
      thing.put(file);
      await stopCleanly(app);
      await app.cleanup();
    }
    recordReliability({
      table: 'faults',
      name: 'vnc-passwords.json not a readable regular file',
      tried: `${THINGS.map((x) => x.name).join('; ')} in place of the passwords file, at start and while running`,
      outcome: `starts every time without stored passwords; status passwordsError names the file and the cause; a password save replaces the thing with a 0600 file (also when put back while running); RSS after start at most ${maxGrowth} KiB above a start without the file; SIGTERM exits 0`,
      bytesLost: 0,
    });
  });
});
