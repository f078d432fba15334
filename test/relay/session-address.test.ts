/**
 * On the device the app listens on the reverse proxy's unix socket: a session's client address is
 * the last `X-Forwarded-For` entry (the one the proxy appended, as the rate limiter reads it), not
 * `unix`; managers see it in `GET api/v1/sessions`, others do not.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startApp, type RunningApp } from '../../src/app.js';
import { API, RELAY, config, makeTempDir, removeDir, request, target, vncServer, waitFor, type FakeServer } from '../helpers/app.js';
import { WebSocket } from 'ws';

describe('the client address of a session behind the ctrlX proxy (unix socket)', () => {
  let root: string;
  let socket: string;
  let app: RunningApp;
  let vnc: FakeServer;

  before(async () => {
    vnc = await vncServer('X');
    root = await makeTempDir('addr-sock');
    socket = path.join(root, 'run', 'web.sock');
    const solutionsDir = path.join(root, 'solutions');
    const file = path.join(solutionsDir, 'activeConfiguration', 'ctrlx-novnc', 'config.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(config(target('hmi', vnc.port))));
    app = await startApp({ listen: { socket }, solutionsDir, appDataDir: path.join(root, 'app'), pollInterval: 50 });
  });
  after(async () => {
    await app?.stop();
    await vnc?.close();
    if (root) await removeDir(root);
  });

  it('is the last X-Forwarded-For entry; a made-up value is not', async () => {
    const ws = new WebSocket(`ws+unix://${socket}:${RELAY}?target=hmi&viewer=viewer-addr`, ['binary'], {
      headers: { 'X-Forwarded-For': '203.0.113.9, 192.168.10.77' },
      perMessageDeflate: false,
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    try {
      let sessions: { address?: string; viewerId?: string }[] = [];
      await waitFor('the session in the list', async () => {
        sessions = (await request({ socketPath: socket }, 'GET', `${API}/sessions`)).json().sessions;
        return sessions.length === 1;
      });
      assert.equal(sessions[0]!.address, '192.168.10.77');
      assert.equal(sessions[0]!.viewerId, 'viewer-addr');
    } finally {
      ws.terminate();
    }
  });
});
