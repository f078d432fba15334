/**
 * The VNC passwords (src/config/secrets.ts, driven by src/config/service.ts), on real files in a
 * temporary folder: mode 0600 in a 0700 folder, records bound to the target's address (the
 * service's rule), writes only on a real change, a corrupt file left alone until the next change,
 * rollback when the configuration save fails, and never a password in a log line or an error.
 *
 * A save from the page or the API is `service.save(config, changes)`; a change from outside (a
 * ctrlX load, a hand edit) is driven here through the load phases, so it is applied at a known
 * moment.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SECRETS_FILE_NAME } from '../../src/config/secrets.js';
import { ConfigService } from '../../src/config/service.js';
import type { Config } from '../../src/config/schema.js';
import { AppError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { config, configPaths, makeTempDir, removeDir, target, writeConfigFile } from '../helpers/app.js';

const SECRET = 'Pw-7c1e!';
const OTHER = 'zweites#Pw';

describe('VNC passwords', () => {
  let root: string;
  let dir: string;
  let file: string;
  let solutionsDir: string;
  let logs: string[];
  let services: ConfigService[];

  const open = async (appDataDir: string | null = dir): Promise<ConfigService> => {
    const service = new ConfigService({
      solutionsDir,
      appDataDir,
      pollInterval: 20,
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => logs.push(line) }),
    });
    services.push(service);
    await service.start();
    return service;
  };
  /** A change from outside the settings page: a ctrlX load of `next`. */
  const fromOutside = async (s: ConfigService, next: Config): Promise<void> => {
    await s.load('prepare', 'outside');
    writeConfigFile(configPaths(solutionsDir).file, next);
    await s.load('activate', 'outside');
    assert.deepEqual(s.current, next);
  };
  const onDisk = (): { version: number; targets: Record<string, { host: string; port: number; password: string }> } =>
    JSON.parse(fs.readFileSync(file, 'utf8'));
  const mode = (p: string): number => fs.statSync(p).mode & 0o777;

  beforeEach(async () => {
    root = await makeTempDir('secrets');
    dir = path.join(root, 'app');
    file = path.join(dir, SECRETS_FILE_NAME);
    solutionsDir = path.join(root, 'solutions');
    fs.mkdirSync(configPaths(solutionsDir).activeDir, { recursive: true });
    logs = [];
    services = [];
  });
  afterEach(async () => {
    for (const s of services) s.stop();
    for (const line of logs) assert.ok(!line.includes(SECRET) && !line.includes(OTHER), `a log line holds a password: ${line}`);
    await removeDir(root);
  });

  const press = target('press', 5900, '10.0.0.5');
  const weld = target('weld', 5901, '10.0.0.6');

  it('starts empty without a file and creates nothing until a password is set', async () => {
    const s = await open();
    assert.equal(s.passwordFor('press'), undefined);
    assert.equal(s.hasPassword('press'), false);
    await fromOutside(s, config(press));
    await s.save(config(press), new Map());
    await s.save(config(press), new Map([['press', null]]));
    assert.equal(fs.existsSync(dir), false, 'no folder made for nothing');
  });

  it('stores a password bound to the address, in a 0600 file in a 0700 folder', async () => {
    const s = await open();
    await s.save(config(press, weld), new Map([['press', SECRET]]));
    assert.equal(s.passwordFor('press'), SECRET);
    assert.equal(s.hasPassword('weld'), false);
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(file), 0o600);
    assert.deepEqual(onDisk(), { version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: SECRET } } });
    assert.deepEqual(fs.readdirSync(dir), [SECRETS_FILE_NAME], 'no temporary file left');
    // A second store reads it back.
    assert.equal((await open()).passwordFor('press'), SECRET);
  });

  it('keeps passwords not named, replaces, removes, clears or rebinds edited addresses and forgets removed targets', async () => {
    const s = await open();
    await s.save(config(press, weld), new Map([['press', SECRET], ['weld', OTHER]]));
    // The page moved press to another address and port without a password: cleared.
    const moved = target('press', 5910, 'hmi.plant.example');
    assert.deepEqual(await s.save(config(moved, weld), new Map()), { passwordsCleared: ['press'] });
    assert.equal(s.hasPassword('press'), false);
    assert.equal(onDisk().targets.press, undefined);
    // Moved back with the password typed again: bound to the address it was typed for.
    await s.save(config(press, weld), new Map([['press', SECRET]]));
    assert.deepEqual(await s.save(config(moved, weld), new Map([['press', SECRET]])), { passwordsCleared: [] });
    assert.deepEqual(onDisk().targets.press, { host: 'hmi.plant.example', port: 5910, password: SECRET });
    assert.equal(s.passwordFor('weld'), OTHER);
    // Replace one, remove the other.
    await s.save(config(moved, weld), new Map([['press', OTHER], ['weld', null]]));
    assert.equal(s.passwordFor('press'), OTHER);
    assert.equal(s.hasPassword('weld'), false);
    // A target left out of the configuration loses its password.
    await s.save(config(weld), new Map());
    assert.deepEqual(onDisk(), { version: 1, targets: {} });
    assert.equal(s.hasPassword('press'), false);
  });

  it('writes only when something changed', async () => {
    const s = await open();
    await s.save(config(press), new Map([['press', SECRET]]));
    const before = fs.statSync(file);
    await s.save(config(press), new Map());
    await s.save(config(press), new Map([['press', SECRET]]));
    await fromOutside(s, config(press));
    await s.save(config({ ...press, name: 'Renamed' }), new Map());
    const after = fs.statSync(file);
    assert.equal(after.ino, before.ino, 'the file was not replaced');
    assert.equal(after.mtimeMs, before.mtimeMs);
  });

  it('a load or a hand edit drops the passwords of targets that are gone or point elsewhere, and says which', async () => {
    const s = await open();
    const third = target('third', 5902, '10.0.0.7');
    await s.save(config(press, weld, third), new Map([['press', SECRET], ['weld', OTHER], ['third', SECRET]]));
    logs.length = 0;
    // A load or a hand edit: press on another host, weld on another port, third gone; a renamed
    // target at the same address keeps its password.
    await fromOutside(s, config({ ...press, host: '10.0.0.99' }, { ...weld, port: 5999 }));
    assert.equal(s.hasPassword('press'), false);
    assert.equal(s.hasPassword('weld'), false);
    assert.equal(s.hasPassword('third'), false);
    assert.deepEqual(onDisk().targets, {});
    const warnings = logs.filter((l) => l.startsWith('warn'));
    assert.equal(warnings.length, 2, logs.join('\n'));
    assert.match(warnings[0]!, /target=press was=10\.0\.0\.5:5900 now=10\.0\.0\.99:5900/);
    assert.match(warnings[1]!, /target=weld was=10\.0\.0\.6:5901 now=10\.0\.0\.6:5999/);

    await s.save(config(press), new Map([['press', SECRET]]));
    await fromOutside(s, config({ ...press, name: 'Another name' }));
    assert.equal(s.passwordFor('press'), SECRET, 'a new name at the same address keeps the password');
  });

  it('keeps a password given with a move through the drop rule that runs during the save', async () => {
    const s = await open();
    await s.save(config(press), new Map([['press', SECRET]]));
    const moved = config({ ...press, host: '10.0.0.50' });
    // The configuration store announces the change inside its save; the drop rule runs then.
    await s.save(moved, new Map([['press', SECRET]]));
    assert.equal(s.passwordFor('press'), SECRET);
    assert.equal(onDisk().targets.press!.host, '10.0.0.50');
  });

  it('puts the previous passwords back when the configuration save fails', async () => {
    const s = await open();
    await s.save(config(press), new Map([['press', SECRET]]));
    // The configuration cannot be saved: the active configuration folder is gone.
    fs.rmSync(configPaths(solutionsDir).activeDir, { recursive: true });
    await assert.rejects(s.save(config({ ...press, host: '10.0.0.50' }, weld), new Map([['press', OTHER], ['weld', OTHER]])), (err) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'ERR_CONFIG_UNAVAILABLE');
      return true;
    });
    assert.equal(s.passwordFor('press'), SECRET);
    assert.equal(s.hasPassword('weld'), false);
    assert.deepEqual(onDisk().targets, { press: { host: '10.0.0.5', port: 5900, password: SECRET } });
  });

  it('emits the ids whose password was set or removed, after the save', async () => {
    const s = await open();
    const seen: string[][] = [];
    s.on('passwords', (ids) => seen.push(ids));
    await s.save(config(press, weld), new Map([['press', SECRET]]));
    await s.save(config(press, weld), new Map());
    await s.save(config(press, weld), new Map([['press', null], ['weld', null]]));
    fs.rmSync(configPaths(solutionsDir).activeDir, { recursive: true });
    await assert.rejects(s.save(config(press), new Map([['press', OTHER]])));
    assert.deepEqual(seen, [['press'], ['press']], 'weld had no password to remove');
  });

  it('reports a failed write without the password and changes nothing', async () => {
    fs.writeFileSync(dir, 'a file where the folder should be');
    const s = await open();
    await assert.rejects(s.save(config(press), new Map([['press', SECRET]])), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'ERR_CONFIG_WRITE');
      assert.match(err.message, /^Saving the VNC password failed \(\w+\)\. Nothing was changed\.$/);
      assert.ok(!err.message.includes(SECRET));
      return true;
    });
    assert.equal(s.hasPassword('press'), false);
  });

  for (const [label, text] of [
    ['not JSON', `{"version": 1, "targets": {"press": {"host": "10.0.0.5", "port": 5900, "password": "${SECRET}"`],
    ['a wrong version', JSON.stringify({ version: 2, targets: { press: { host: '10.0.0.5', port: 5900, password: SECRET } } })],
    ['an unknown field', JSON.stringify({ version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: SECRET, note: 1 } } })],
    ['a password that is not Latin-1', JSON.stringify({ version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: `${SECRET}€` } } })],
  ] as const) {
    it(`treats a file with ${label} as empty, logs it without its content and leaves it until a password is entered`, async () => {
      fs.mkdirSync(dir, { mode: 0o700 });
      fs.writeFileSync(file, text, { mode: 0o600 });
      const s = await open();
      assert.equal(s.hasPassword('press'), false);
      assert.equal(s.passwordFor('press'), undefined);
      const errors = logs.filter((l) => l.startsWith('error'));
      assert.equal(errors.length, 1, logs.join('\n'));
      assert.match(errors[0]!, /VNC passwords file is corrupt or invalid/);
      // Changes that change nothing do not overwrite it.
      await fromOutside(s, config());
      await s.save(config(press), new Map());
      await s.save(config(press), new Map([['press', null]]));
      assert.equal(fs.readFileSync(file, 'utf8'), text);
      // A password entered again replaces it with a valid file.
      await s.save(config(press), new Map([['press', OTHER]]));
      assert.deepEqual(onDisk(), { version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: OTHER } } });
    });
  }

  it('makes a file readable by others private again when it starts', async () => {
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.writeFileSync(file, JSON.stringify({ version: 1, targets: { press: { host: '10.0.0.5', port: 5900, password: SECRET } } }));
    fs.chmodSync(file, 0o644);
    writeConfigFile(configPaths(solutionsDir).file, config(press));
    const s = await open();
    assert.equal(mode(file), 0o600);
    assert.equal(s.passwordFor('press'), SECRET);
    assert.ok(logs.some((l) => /made it private \(0600\).* was=644/.test(l)), logs.join('\n'));
  });

  it('keeps passwords in memory only without a folder', async () => {
    const s = await open(null);
    await s.save(config(press), new Map([['press', SECRET]]));
    assert.equal(s.passwordFor('press'), SECRET);
    assert.equal(fs.existsSync(dir), false, 'no passwords file anywhere');
  });
});
