/**
 * config.json and its folder changing under the running app (`ctrlx-novnc serve`, a child
 * process): the file deleted, the file damaged in ways a crash, a full disk or a careless copy
 * leave it, and the whole active-configuration folder disappearing and coming back as it does
 * when the snap's `active-solution` content plug is disconnected and reconnected (a real bind
 * mount, unmounted and mounted again in the app's own mount namespace). Throughout, the last good
 * configuration stays in use, the status says what is wrong, and the repaired file is picked up.
 * (test/config/file-watch.test.ts covers JSON syntax and validation errors in-process.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API, PREFIX, assertProblem, config, configPaths, editConfigFile, operated, target as plainTarget, writeConfigFile } from '../helpers/app.js';

/** The targets here are operated by their first viewer (control: immediate): the viewers send bytes that are not RFB. */
const target = (...args: Parameters<typeof plainTarget>): ReturnType<typeof plainTarget> => operated(plainTarget(...args));
import { inMountNamespace, namespacesUnavailable, seenBy, unshareWrapper } from '../helpers/namespace.js';
import { recordReliability, recordSkipped } from '../helpers/reliability.js';
import { startTarget, type TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { receiveBytes } from '../helpers/ws-client.js';
import { serializeConfig, type Config } from '../../src/config/schema.js';
import type { AppStatus } from '../../src/web/app.js';
import {
  GREETING,
  assertFdsBackTo,
  assertNoSessions,
  fdBaseline,
  openViewer,
  startAppChild,
  stopCleanly,
  type AppChild,
  type Viewer,
} from '../helpers/app-child.js';

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 90_000 };

/** A VNC-looking echo server that says which one it is right after its greeting. */
function startTagged(tag: string): Promise<TcpTarget<net.Socket>> {
  return startTarget((socket) => {
    socket.write(GREETING + tag);
    socket.pipe(socket);
    return socket;
  });
}

/** Opens a session to `id` and returns the tag of the server it reached. */
async function reach(app: AppChild, id: string): Promise<string> {
  const v = await openViewer(app.relayUrl(id), { keep: true });
  await waitFor('the greeting and tag', () => v.received >= GREETING.length + 1 || v.ws.readyState !== v.ws.OPEN);
  const got = v.data().toString('latin1');
  v.ws.close(1000);
  await v.closed;
  assert.ok(got.startsWith(GREETING), `a VNC greeting, got ${JSON.stringify(got)}`);
  return got.slice(GREETING.length);
}

/** Opens a session to `id` that stays open, checked to reach `tag`. */
async function stay(app: AppChild, id: string, tag: string): Promise<Viewer> {
  const v = await openViewer(app.relayUrl(id), { keep: true });
  await waitFor(`the greeting from ${tag}`, () => v.received >= GREETING.length + tag.length);
  assert.equal(v.data().toString('latin1'), GREETING + tag);
  return v;
}

async function echoes(v: Viewer): Promise<void> {
  const back = receiveBytes(v.ws, 100);
  v.ws.send(Buffer.alloc(100, 0x33));
  assert.ok((await back).equals(Buffer.alloc(100, 0x33)));
}

/** Replaces `file` with `data` (bytes as they are) and moves its mtime on, like editConfigFile. */
function replaceBytes(file: string, data: Buffer): void {
  const before = fs.statSync(file).mtimeMs;
  fs.writeFileSync(file, data);
  if (fs.statSync(file).mtimeMs <= before) {
    const t = new Date(before + 2000);
    fs.utimesSync(file, t, t);
  }
}

/** Polls the status until `check` holds (the app polls the file every second, then debounces). */
async function statusUntil(app: AppChild, what: string, check: (s: AppStatus) => boolean): Promise<AppStatus> {
  let last: AppStatus | undefined;
  const read = async (): Promise<AppStatus> => {
    last = await app.http.status();
    return last;
  };
  await waitFor(what, async () => check(await read()), { intervalMs: 50, timeoutMs: 10_000 }).catch(() =>
    assert.fail(`${what}; status: ${JSON.stringify(last?.config)}`),
  );
  return last!;
}

describe('config.json damaged or deleted while the app runs', () => {
  const servers: Record<string, TcpTarget<net.Socket>> = {};
  let app: AppChild;
  let good: Config;

  before(async () => {
    for (const tag of ['A', 'B', 'C']) servers[tag] = await startTagged(tag);
    good = config(target('a', servers.A!.port));
  });
  after(async () => {
    await app?.cleanup();
    for (const s of Object.values(servers)) await s.close();
  });

  /** Damages that leave a file (or a thing) that is not a valid config.json. */
  const damages: { name: string; apply(file: string): void; reason: RegExp }[] = [
    { name: 'truncated to 0 bytes', apply: (f) => editConfigFile(f, ''), reason: /not valid JSON/ },
    { name: '4 KiB of NUL bytes (power loss before the data reached the disk)', apply: (f) => editConfigFile(f, '\0'.repeat(4096)), reason: /not valid JSON/ },
    { name: 'cut off in the middle', apply: (f) => editConfigFile(f, serializeConfig(good).slice(0, 30)), reason: /not valid JSON/ },
    { name: 'binary garbage (invalid UTF-8)', apply: (f) => replaceBytes(f, Buffer.from([0xff, 0xfe, 0x7b, 0xc3, 0x28, 0x80, 0x0a])), reason: /not valid JSON/ },
    { name: 'valid JSON of another app', apply: (f) => editConfigFile(f, '{"plc": {"cycle": 10}}\n'), reason: /./ },
    {
      name: 'a folder in place of the file',
      apply: (f) => {
        fs.rmSync(f);
        fs.mkdirSync(f);
      },
      reason: /not read: it is a folder, not a regular file/,
    },
  ];

  it(`keeps the last good configuration for new sessions through ${damages.length} kinds of damage, says so in the status, and picks up the repaired file`, LIMIT, async () => {
    app = await startAppChild({ initial: good });
    assert.equal(await reach(app, 'a'), 'A');
    const baseline = await fdBaseline(app.pid);
    let current = 'A';
    let repaired = 0;
    let sessionsKept = 0;
    for (const [i, d] of damages.entries()) {
      const open = await stay(app, 'a', current);
      d.apply(app.file);
      const damaged = fs.statSync(app.file);
      const status = await statusUntil(app, `state invalid after: ${d.name}`, (s) => s.config.state === 'invalid');
      assert.equal(status.config.error?.file, app.file, d.name);
      assert.match(status.config.error!.reason, d.reason, d.name);
      const inUse = config(target('a', servers[current]!.port));
      assert.deepEqual(await app.http.config(), inUse, `${d.name}: the last good configuration stays in use`);
      assert.equal(await reach(app, 'a'), current, `${d.name}: new sessions go where they went`);
      await echoes(open);
      sessionsKept++;
      const page = await app.http.get(`${PREFIX}/config/`);
      assert.match(page.text, /The configuration file is invalid/, d.name);
      // Left as it is: the app read it (state invalid) and did not overwrite it.
      assert.equal(fs.statSync(app.file).mtimeMs, damaged.mtimeMs, `${d.name}: not rewritten`);

      // Repaired, alternately to the same and to the other server: picked up, error gone.
      const next = i % 2 === 0 ? current : current === 'A' ? 'B' : 'A';
      if (fs.statSync(app.file).isDirectory()) fs.rmSync(app.file, { recursive: true });
      editConfigFile(app.file, config(target('a', servers[next]!.port)));
      await statusUntil(app, `state ok after repairing: ${d.name}`, (s) => s.config.state === 'ok' && s.config.error === null && s.relay.targets[0]?.target === `127.0.0.1:${servers[next]!.port}`);
      assert.equal(await reach(app, 'a'), next, `${d.name}: the repaired file is used`);
      if (next === current) {
        assert.equal(open.ws.readyState, open.ws.OPEN, `${d.name}: a repair to the same target leaves the session alone`);
        open.ws.close(1000);
        await open.closed;
      } else {
        const end = await open.closed;
        assert.deepEqual({ code: end.code, reason: end.reason }, { code: 4000, reason: 'target changed' }, `${d.name}: closed because the repair moved its target`);
      }
      current = next;
      repaired++;
    }
    await assertNoSessions(app);
    await assertFdsBackTo(app.pid, baseline);
    recordReliability({
      table: 'faults',
      name: 'config.json damaged while running',
      tried: damages.map((d) => d.name).join('; '),
      outcome: `each time: status "invalid" naming the file and the reason, the last good targets kept for new sessions, the open session kept (${sessionsKept} of ${damages.length}), the file left alone; all ${repaired} repairs applied; no descriptor leaked`,
      bytesLost: 0,
    });
  });

  it(
    'keeps the last good configuration when config.json is deleted, says so, and picks up the restored file',
    LIMIT,
    async () => {
      app ??= await startAppChild({ initial: good });
      writeConfigFile(app.file, good);
      await statusUntil(app, 'on A', (s) => s.config.state === 'ok' && s.relay.targets[0]?.target === `127.0.0.1:${servers.A!.port}`);
      const open = await stay(app, 'a', 'A');
      fs.rmSync(app.file);
      const status = await statusUntil(app, 'the status to show the file is gone', (s) => s.config.exists === false);
      assert.deepEqual(await app.http.config(), good, 'the last good configuration stays in use');
      assert.equal(status.relay.targets.length, 1, 'the target is still offered');
      assert.equal(await reach(app, 'a'), 'A', 'new sessions still reach the server');
      await echoes(open);
      // Restored (as a configuration load or a WebDAV upload would): picked up.
      writeConfigFile(app.file, config(target('a', servers.C!.port)));
      await statusUntil(app, 'the restored file applied', (s) => s.config.exists && s.relay.targets[0]?.target === `127.0.0.1:${servers.C!.port}`);
      assert.equal(await reach(app, 'a'), 'C');
      recordReliability({
        table: 'faults',
        name: 'config.json deleted while running',
        tried: 'rm config.json with a session open, then put a changed file back',
        outcome: 'status exists=false; the last good targets kept for new sessions and the open session; the restored file applied',
        bytesLost: 0,
      });
    },
  );
});

describe('the active-solution content plug disconnected and reconnected (a real bind mount in the app\'s namespace)', () => {
  const servers: Record<string, TcpTarget<net.Socket>> = {};
  let unavailable: string | null;
  before(async () => {
    unavailable = await namespacesUnavailable();
    for (const tag of ['A', 'B']) servers[tag] = await startTagged(tag);
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.close();
  });

  const CYCLES = 4;
  const name = 'active-solution folder disappears and comes back';

  it(`reports "unmounted" while the folder is gone (keeping targets and sessions), "ok" once it is back, applying what it holds then (${CYCLES} cycles)`, LIMIT, async (t) => {
    if (unavailable) {
      recordSkipped('faults', name, unavailable);
      t.skip(unavailable);
      return;
    }
    // The "device" folder the plug provides, bound over <data>/solutions in the app's namespace.
    let real = '';
    const app = await startAppChild({
      wrapper: unshareWrapper('mount --bind "$FAULT_ROOT/real-solutions" "$FAULT_SOLUTIONS"'),
      prepare: (root) => {
        real = path.join(root, 'real-solutions');
        writeConfigFile(configPaths(real).file, config(target('a', servers.A!.port)));
      },
    });
    t.after(() => app.cleanup());
    const realFile = configPaths(real).file;
    assert.equal((await app.http.status()).config.state, 'ok');
    assert.equal(await reach(app, 'a'), 'A');
    const baseline = await fdBaseline(app.pid);
    let current = 'A';

    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const open = await stay(app, 'a', current);
      // Disconnect: the mount goes, <data>/solutions is an empty folder again.
      await inMountNamespace(app.pid, ['umount', app.solutionsDir]);
      await statusUntil(app, `cycle ${cycle}: state unmounted`, (s) => s.config.state === 'unmounted');
      assert.deepEqual(await app.http.config(), config(target('a', servers[current]!.port)), 'the configuration in use is kept');
      assert.equal(await reach(app, 'a'), current, 'new sessions still work');
      await echoes(open);
      const refused = await app.http.put(`${API}/config`, { targets: [target('z', 1)] });
      assertProblem(refused, 503, { type: 'urn:ctrlx-novnc:problem:unavailable' });
      assert.equal(fs.existsSync(seenBy(app.pid, path.join(app.solutionsDir, 'activeConfiguration'))), false, 'nothing created in the bare mount point');

      // Meanwhile a configuration with the other server is loaded on the device.
      const next = current === 'A' ? 'B' : 'A';
      editConfigFile(realFile, config(target('a', servers[next]!.port)));
      // Reconnect: the folder is back, with the new content.
      await inMountNamespace(app.pid, ['mount', '--bind', real, app.solutionsDir]);
      await statusUntil(app, `cycle ${cycle}: state ok with the new content`, (s) => s.config.state === 'ok' && s.relay.targets[0]?.target === `127.0.0.1:${servers[next]!.port}`);
      assert.equal(await reach(app, 'a'), next);
      assert.deepEqual(await open.closed.then((e) => ({ code: e.code, reason: e.reason })), { code: 4000, reason: 'target changed' });
      current = next;
    }
    // Saving works again, into the real folder.
    const saved = await app.http.put(`${API}/config`, { targets: [target('a', servers.A!.port, '127.0.0.1', 'Saved')] });
    assert.equal(saved.status, 200, saved.text);
    assert.equal(fs.readFileSync(realFile, 'utf8'), serializeConfig(config(target('a', servers.A!.port, '127.0.0.1', 'Saved'))));
    await assertNoSessions(app);
    await assertFdsBackTo(app.pid, baseline);
    await stopCleanly(app);
    recordReliability({
      table: 'faults',
      name,
      tried: `${CYCLES} × umount / mount --bind of the solutions folder (content plug disconnected and reconnected), a session open, the configuration changed while away`,
      outcome: 'state "unmounted" within the poll interval, targets and sessions kept, saves refused with 503; state "ok" on return with the new content applied; no crash, no descriptor leaked, exit 0',
      bytesLost: 0,
    });
  });
});
