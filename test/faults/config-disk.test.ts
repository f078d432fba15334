/**
 * Saving when the solutions folder cannot take it, produced for real: the app
 * (`ctrlx-novnc serve`) runs in its own user+mount namespace with the solutions folder on a
 * 256 KiB tmpfs, which the test fills up (ENOSPC) or remounts read-only (EROFS). The JSON API and
 * the settings form must say clearly that nothing was saved, config.json must keep its old bytes,
 * the app must go on relaying, and a save after the fault clears must work.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API, PREFIX, assertProblem, config, csrfToken, operated, target as plainTarget } from '../helpers/app.js';
import { inMountNamespace, namespacesUnavailable, seenBy, unshareWrapper } from '../helpers/namespace.js';
import { recordReliability, recordSkipped } from '../helpers/reliability.js';
import type { TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { receiveBytes } from '../helpers/ws-client.js';
import { serializeConfig } from '../../src/config/schema.js';
import { GREETING, openViewer, startAppChild, startVncEcho, stopCleanly, type AppChild } from '../helpers/app-child.js';

/** The targets here are operated by their first viewer (control: immediate): the viewers send bytes that are not RFB. */
const target = (...args: Parameters<typeof plainTarget>): ReturnType<typeof plainTarget> => operated(plainTarget(...args));

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

/** Mounts a small tmpfs on the solutions folder and puts the first config.json in it. */
const SETUP = [
  'mount -t tmpfs -o size=256k,mode=0755 tmpfs "$FAULT_SOLUTIONS"',
  'mkdir -p "$FAULT_SOLUTIONS/activeConfiguration/ctrlx-novnc"',
  'cp "$FAULT_ROOT/seed.json" "$FAULT_SOLUTIONS/activeConfiguration/ctrlx-novnc/config.json"',
].join('\n');

interface Case {
  name: string;
  /** Produces the fault in the app's namespace. */
  inject(app: AppChild): Promise<void>;
  /** Takes it away again. */
  clear(app: AppChild): Promise<void>;
  status: number;
  /** What the API and the page must say. */
  message: string;
  errno: string;
}

const FILL = 'fill.bin';

const cases: Case[] = [
  {
    name: 'solutions folder full (ENOSPC) at save',
    async inject(app) {
      // Write until the file system refuses: then not one more page is free.
      const fill = seenBy(app.pid, path.join(app.solutionsDir, FILL));
      assert.throws(() => fs.writeFileSync(fill, Buffer.alloc(1024 * 1024, 0xaa)), { code: 'ENOSPC' });
      assert.equal(fs.statfsSync(seenBy(app.pid, app.solutionsDir)).bavail, 0, 'no block left');
    },
    async clear(app) {
      fs.rmSync(seenBy(app.pid, path.join(app.solutionsDir, FILL)));
    },
    status: 507,
    message: 'Saving failed: the disk is full. The previous configuration is unchanged.',
    errno: 'ENOSPC',
  },
  {
    name: 'solutions folder read-only (EROFS) at save',
    async inject(app) {
      await inMountNamespace(app.pid, ['mount', '-o', 'remount,ro', app.solutionsDir]);
      assert.throws(() => fs.writeFileSync(seenBy(app.pid, path.join(app.solutionsDir, 'probe')), 'x'), { code: 'EROFS' });
    },
    async clear(app) {
      await inMountNamespace(app.pid, ['mount', '-o', 'remount,rw', app.solutionsDir]);
    },
    status: 500,
    message: 'Saving failed: the file system is read-only. The previous configuration is unchanged.',
    errno: 'EROFS',
  },
];

describe('saving to a solutions folder that is full or read-only (the app in its own mount namespace)', () => {
  let vnc: TcpTarget<net.Socket>;
  let unavailable: string | null;
  before(async () => {
    unavailable = await namespacesUnavailable();
    vnc = await startVncEcho();
  });
  after(() => vnc?.close());

  for (const c of cases) {
    it(`${c.name}: answers ${c.status} on the API and the form, keeps config.json byte for byte, keeps relaying, and saves once it clears`, LIMIT, async (t) => {
      if (unavailable) {
        recordSkipped('faults', c.name, unavailable);
        t.skip(unavailable);
        return;
      }
      const before = config(target('a', vnc.port, '127.0.0.1', 'Before'));
      const wanted = config(target('a', vnc.port, '127.0.0.1', 'Wanted'), target('b', vnc.port, '127.0.0.1', 'Second'));
      const app = await startAppChild({
        wrapper: unshareWrapper(SETUP),
        prepare: (root) => fs.writeFileSync(path.join(root, 'seed.json'), serializeConfig(before)),
      });
      t.after(() => app.cleanup());
      const file = seenBy(app.pid, app.file);
      const oldBytes = fs.readFileSync(file);
      assert.equal(oldBytes.toString(), serializeConfig(before));
      assert.equal(fs.existsSync(app.file), false, 'the tmpfs is the app\'s alone: the host folder stays empty');
      const { http } = app;
      assert.deepEqual(await http.config(), before);
      // A session stays open across the fault.
      const session = await openViewer(app.relayUrl('a'));
      assert.equal(await session.greeting, GREETING);

      await c.inject(app);

      // The JSON API says what happened and that nothing was saved.
      const res = await http.put(`${API}/config`, { targets: wanted.targets });
      const problem = assertProblem(res, c.status, { type: 'urn:ctrlx-novnc:problem:write-failed' });
      assert.equal(problem.detail, c.message);
      // So does the settings form (no JavaScript), keeping what the user typed for a retry.
      const page = await http.get(`${PREFIX}/config/`);
      const form = await http.form(`${PREFIX}/config/`, [
        ['_csrf', csrfToken(page.text)],
        ['id', 'a'],
        ['name', 'Wanted'],
        ['host', '127.0.0.1'],
        ['port', String(vnc.port)],
        ['action', 'save'],
      ]);
      assert.equal(form.status, c.status);
      assert.ok(form.text.includes(c.message), 'the page shows the error');
      assert.match(form.text, /value="Wanted"/);
      // A ctrlX "save configuration" with nothing new to write still succeeds.
      const phase = await http.post(`${API}/save`, { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'fault', phase: 'save' });
      assert.equal(phase.status, 204, phase.text);

      // Nothing changed: the file, the folder, the configuration in use.
      assert.ok(fs.readFileSync(file).equals(oldBytes), 'config.json keeps its old content byte for byte');
      assert.deepEqual(fs.readdirSync(seenBy(app.pid, app.dir)), ['config.json'], 'no temporary file left behind');
      assert.deepEqual(await http.config(), before);
      const status = await http.status();
      assert.equal(status.config.state, 'ok');
      assert.equal(status.relay.state, 'running');
      await waitFor('the failure in the log', () => app.p.stderr.some((l) => l.includes('saving the configuration failed') && l.includes(`error=${c.errno}`)));

      // The app keeps relaying: the open session echoes, a new one opens.
      const echoed = receiveBytes(session.ws, 1000);
      session.ws.send(Buffer.alloc(1000, 0x11));
      assert.ok((await echoed).equals(Buffer.alloc(1000, 0x11)));
      const fresh = await openViewer(app.relayUrl('a'));
      assert.equal(await fresh.greeting, GREETING);
      fresh.ws.close(1000);
      await fresh.closed;

      // Once the fault is gone, the same save works.
      await c.clear(app);
      const saved = await http.put(`${API}/config`, { targets: wanted.targets });
      assert.equal(saved.status, 200, saved.text);
      assert.equal(fs.readFileSync(file, 'utf8'), serializeConfig(wanted));
      assert.deepEqual(await http.config(), wanted);
      assert.equal(session.ws.readyState, session.ws.OPEN, 'a rename does not close the session');
      session.ws.close(1000);
      await session.closed;
      await stopCleanly(app);
      recordReliability({
        table: 'faults',
        name: c.name,
        tried: c.errno === 'ENOSPC'
          ? 'PUT /api/v1/config and the no-JS form with the solutions folder on a 256 KiB tmpfs filled to the last block'
          : 'PUT /api/v1/config and the no-JS form after `mount -o remount,ro` of the solutions folder',
        outcome: `${c.status} Problem JSON / page "${problem.detail}"; config.json unchanged byte for byte, no temp file; sessions kept relaying; the same save succeeded once the fault cleared`,
        bytesLost: 0,
      });
    });
  }
});
