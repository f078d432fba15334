/**
 * src/ctrlx/health.ts: the health for each configuration state, the snapctl calls (only on a
 * change, never overlapping, the newest wins), and the CLI reporting it on the device through a
 * fake `snapctl` on PATH, and never off the device.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { HealthReporter, MESSAGE_MAX, MESSAGE_MIN, OKAY, healthOf, snapctlArgs, type Health } from '../../src/ctrlx/health.js';
import { createLogger } from '../../src/log.js';
import { makeTempDir, removeDir, writeConfigFile } from '../helpers/app.js';
import { fakeSnapctl } from '../helpers/fake-snapctl.js';
import { childEnv, spawnServe, type ServeProcess } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const FILE = '/var/snap/ctrlx-novnc/common/solutions/activeConfiguration/ctrlx-novnc/config.json';

describe('app health', () => {
  const dirs: string[] = [];
  const running = new Set<ServeProcess>();
  const tempDir = async (label: string): Promise<string> => {
    const dir = await makeTempDir(label);
    dirs.push(dir);
    return dir;
  };
  after(async () => {
    for (const p of running) await p.stop('SIGKILL');
    for (const d of dirs) await removeDir(d);
  });

  it('waiting without the Solutions folder, error naming file, line and field, okay otherwise', () => {
    assert.deepEqual(healthOf({ state: 'ok', error: null }), OKAY);
    assert.deepEqual(healthOf({ state: 'unmounted', error: null }), {
      status: 'waiting',
      code: 'solutions-not-connected',
      message: 'waiting for the Solutions folder (active-solution plug)',
    });
    assert.deepEqual(healthOf({ state: 'invalid', error: { file: FILE, line: 7, field: 'targets[0].port', reason: 'must be 1-65535' } }), {
      status: 'error',
      code: 'config-invalid',
      message: 'config.json line 7 targets[0].port: must be 1-65535',
    });
    assert.equal(healthOf({ state: 'invalid', error: { file: FILE, line: 1, reason: 'not JSON' } }).message, 'config.json line 1: not JSON');
  });

  it('messages fit snapd\'s limits (7 to 70 characters) and codes its pattern', () => {
    const long = healthOf({ state: 'invalid', error: { file: FILE, line: 12, field: 'targets[3].name', reason: 'x'.repeat(200) } });
    assert.equal([...long.message!].length, MESSAGE_MAX);
    assert.match(long.message!, /^config\.json line 12 targets\[3\]\.name: x+…$/);
    const short = healthOf({ state: 'invalid', error: { file: 'a', reason: '' } });
    assert.ok([...short.message!].length >= MESSAGE_MIN, short.message);
    for (const h of [long, short, healthOf({ state: 'unmounted', error: null })]) {
      assert.match(h.code!, /^[a-z](?:-?[a-z0-9])+$/);
      assert.ok(h.code!.length <= 30);
    }
    assert.deepEqual(snapctlArgs(OKAY), ['set-health', 'okay']);
    assert.deepEqual(snapctlArgs({ status: 'waiting', code: 'solutions-not-connected', message: 'waiting for it' }), [
      'set-health',
      '--code=solutions-not-connected',
      'waiting',
      'waiting for it',
    ]);
  });

  it('calls snapctl only when the health changes; while a call runs only the newest waits', async () => {
    const snapctl = fakeSnapctl(await tempDir('snapctl'));
    const reporter = new HealthReporter({ command: snapctl.command });
    const waiting = healthOf({ state: 'unmounted', error: null });
    const invalid = (line: number): Health => healthOf({ state: 'invalid', error: { file: FILE, line, reason: 'not JSON' } });
    reporter.report(waiting);
    reporter.report(invalid(1)); // superseded before the first call ends
    reporter.report(invalid(2)); // superseded
    reporter.report(OKAY); // the newest: sent after the first call
    await reporter.idle();
    reporter.report(OKAY); // no change: nothing sent
    await reporter.idle();
    reporter.report(invalid(3));
    reporter.report(invalid(3));
    await reporter.idle();
    assert.deepEqual(snapctl.calls(), [snapctlArgs(waiting), ['set-health', 'okay'], snapctlArgs(invalid(3))]);
  });

  it('a failed call is logged and the next change tries again', async () => {
    const failing = fakeSnapctl(await tempDir('snapctl-fails'), { fail: true });
    const lines: string[] = [];
    const reporter = new HealthReporter({
      command: failing.command,
      logger: createLogger({ level: 'debug', timestamps: false, sink: (_l, line) => lines.push(line) }),
    });
    reporter.report(OKAY);
    await reporter.idle();
    reporter.report(healthOf({ state: 'unmounted', error: null }));
    await reporter.idle();
    reporter.report(OKAY);
    await reporter.idle();
    assert.equal(failing.calls().length, 3, 'okay is sent again: the first attempt did not reach snapd');
    assert.equal(lines.filter((l) => /^warn {2}could not report the app health .*cannot communicate with server/.test(l)).length, 3);
  });

  it('the CLI on the device reports waiting → okay → error (file, line, field) → okay through snapctl on PATH', async () => {
    const root = await tempDir('health-device');
    const snapctl = fakeSnapctl(path.join(root, 'bin'));
    const env = childEnv({
      SNAP: path.join(root, 'snap'),
      SNAP_DATA: path.join(root, 'data'),
      SNAP_COMMON: path.join(root, 'common'),
      CTRLX_IDM_URL: 'http://127.0.0.1:9/identity-manager/api/v2/auth/token/validity',
      PATH: `${snapctl.dir}:${process.env.PATH}`,
    });
    fs.mkdirSync(env.SNAP!, { recursive: true });
    const p = await spawnServe([], { env });
    running.add(p);
    const has = (status: string): boolean => snapctl.calls().some((c) => c.includes(status));
    await waitFor('health waiting', () => has('waiting'));
    assert.deepEqual(snapctl.calls(), [['set-health', '--code=solutions-not-connected', 'waiting', 'waiting for the Solutions folder (active-solution plug)']]);

    // The plug connects (the hook makes the app's folder): okay.
    const file = path.join(env.SNAP_COMMON!, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await waitFor('health okay', () => has('okay'));

    // A hand edit breaks the file: error naming it; a fix: okay again.
    writeConfigFile(file, '{\n  "version": 1,\n  "targets": [\n    {"id": "a", "name": "A", "host": "10.0.0.1", "port": 70000}\n  ]\n}\n');
    await waitFor('health error', () => has('error'));
    writeConfigFile(file, { version: 1, targets: [] });
    await waitFor('health okay again', () => snapctl.calls().length === 4);
    const calls = snapctl.calls();
    assert.deepEqual(calls[1], ['set-health', 'okay']);
    assert.deepEqual(calls[2]!.slice(0, 3), ['set-health', '--code=config-invalid', 'error']);
    assert.match(calls[2]![3]!, /^config\.json line 4 targets\[0\]\.port: /);
    assert.deepEqual(calls[3], ['set-health', 'okay']);

    assert.deepEqual(await p.stop(), { code: 0, signal: null });
    running.delete(p);
    assert.equal(snapctl.calls().length, 4, 'nothing on a timer, nothing at stop');
    assert.ok(p.stdout.concat(p.stderr).some((l) => /app health status=error code=config-invalid/.test(l)), 'the change is logged');
  });

  it('off the device ($SNAP unset) snapctl is never called', async () => {
    const root = await tempDir('health-off-device');
    const snapctl = fakeSnapctl(path.join(root, 'bin'));
    const p = await spawnServe(['--listen', '127.0.0.1:0', '--data', path.join(root, 'data')], { env: childEnv({ PATH: `${snapctl.dir}:${process.env.PATH}` }) });
    running.add(p);
    // An invalid file and back: the changes a device would report.
    const file = path.join(root, 'data', 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json');
    writeConfigFile(file, '{"version": 1, "targets": [}');
    await waitFor('the invalid file to be seen', () => p.stderr.some((l) => /config/.test(l) && /invalid|JSON/i.test(l)));
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
    running.delete(p);
    assert.deepEqual(snapctl.calls(), []);
  });
});
