/**
 * SIGTERM (snapd stopping or refreshing the app) while sessions are open in every phase a session
 * can be in: streaming, connecting to a server that does not answer, waiting for a greeting that
 * does not come, and idle. Run as on the device (unix socket, ctrlX logins checked with a fake
 * identity manager): every browser gets 1001, what it received before is intact, the process
 * exits 0 within 5 s and removes its socket. (test/web/serve-process.test.ts covers one idle
 * session; test/config/atomic-write.test.ts covers SIGKILL during saves.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { config, client, makeTempDir, removeDir, target, writeConfigFile } from '../helpers/app.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { childEnv, spawnServe, type Exit, type ServeProcess } from '../helpers/cli.js';
import { FrameSource, FrameVerifier } from '../helpers/stream.js';
import { startHanging, startTarget, type HangingTarget, type TcpTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { receiveBytes } from '../helpers/ws-client.js';
import { BEARER_PROTOCOL_PREFIX, SCOPE_MANAGE } from '../../src/ctrlx/auth.js';
import { GREETING, openViewer, startSilent, startVncEcho, type CountingConnection, type Viewer } from '../helpers/app-child.js';

const KiB = 1024;
/** A guard against hangs only. */
const LIMIT = { timeout: 60_000 };
const SEED = 0x5167;

interface Streamer {
  socket: net.Socket;
  readonly sent: number;
  closed: Promise<void>;
}

/** A VNC server that greets and then sends a frame every 2 ms, like a busy screen. */
function startStreaming(): Promise<TcpTarget<Streamer>> {
  return startTarget((socket, index) => {
    const source = new FrameSource(SEED + index, Number.MAX_SAFE_INTEGER, 64 * KiB);
    let sent = GREETING.length;
    socket.write(GREETING);
    socket.resume();
    const timer = setInterval(() => {
      if (socket.writableLength > 256 * KiB) return;
      const f = source.next()!;
      sent += f.length;
      socket.write(f);
    }, 2);
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        clearInterval(timer);
        resolve();
      }),
    );
    return {
      socket,
      closed,
      get sent() {
        return sent;
      },
    };
  });
}

describe('SIGTERM with sessions open in every phase (on the device: unix socket, ctrlX logins)', () => {
  let idm: FakeIdm;
  const token = makeToken('operator', [SCOPE_MANAGE]);
  let streaming: TcpTarget<Streamer>;
  let silent: TcpTarget<CountingConnection>;
  let idle: TcpTarget<net.Socket>;
  let hanging: HangingTarget | undefined;
  let root: string;
  let p: ServeProcess | undefined;

  before(async () => {
    idm = await startFakeIdm();
    idm.valid.add(token);
    streaming = await startStreaming();
    silent = await startSilent(false);
    idle = await startVncEcho();
    hanging = await startHanging();
    root = await makeTempDir('sigterm');
  });
  after(async () => {
    await p?.stop('SIGKILL');
    await Promise.all([idm?.close(), streaming?.close(), silent?.close(), idle?.close(), hanging?.close()]);
    await removeDir(root);
  });

  it('closes every session with 1001, delivers what was sent before intact, exits 0 within 5 s and removes its socket', LIMIT, async () => {
    const env = childEnv({
      SNAP: path.join(root, 'snap'),
      SNAP_DATA: path.join(root, 'data'),
      SNAP_COMMON: path.join(root, 'common'),
      CTRLX_IDM_URL: idm.url,
    });
    fs.mkdirSync(env.SNAP!, { recursive: true });
    const socket = path.join(env.SNAP_DATA!, 'package-run', 'ctrlx-novnc', 'ctrlx-novnc.web.sock');
    const targets = [target('stream', streaming.port), target('silent', silent.port), target('idle', idle.port)];
    if (hanging) targets.push(target('hang', hanging.port));
    writeConfigFile(path.join(env.SNAP_COMMON!, 'solutions', 'activeConfiguration', 'ctrlx-novnc', 'config.json'), config(...targets));
    p = await spawnServe([], { env });
    assert.equal(p.address, socket);
    const http = client({ socketPath: socket }, { Authorization: `Bearer ${token}` });
    assert.equal((await http.status()).config.state, 'ok');

    const url = (id: string): string => `ws+unix://${socket}:/ctrlx-novnc/websockify?target=${id}`;
    const protocols = ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`];
    const open = (id: string, verifier?: FrameVerifier): Promise<Viewer> => openViewer(url(id), { protocols, ...(verifier ? { verifier } : {}) });

    const verifiers = [0, 1, 2].map(() => new FrameVerifier(64 * KiB));
    const streams = await Promise.all(verifiers.map((v) => open('stream', v)));
    const waiting = await Promise.all([open('silent'), open('silent')]);
    const connecting = hanging ? await Promise.all([open('hang'), open('hang')]) : [];
    const idles = await Promise.all([open('idle'), open('idle')]);
    for (const v of idles) {
      assert.equal(await v.greeting, GREETING);
      const back = receiveBytes(v.ws, 10);
      v.ws.send(Buffer.from('0123456789'));
      assert.equal(String(await back), '0123456789');
    }
    const all = [...streams, ...waiting, ...connecting, ...idles];
    await waitFor('the streams flowing', () => streams.every((v) => v.received > 256 * KiB));
    assert.equal((await http.status()).relay.totals.sessionsOpen, all.length);
    const streamConns = await Promise.all(streams.map(() => streaming.connections.next()));
    const silentConns = await Promise.all(waiting.map(() => silent.connections.next()));

    const signalled = Date.now();
    p.child.kill('SIGTERM');
    let exit: Exit | undefined;
    void p.exited.then((e) => (exit = e));
    await waitFor('the exit within 5 s', () => exit !== undefined, { timeoutMs: 5000 });
    const exitMs = Date.now() - signalled;
    assert.deepEqual(exit, { code: 0, signal: null }, p.stderr.join('\n'));

    const ends = await Promise.all(all.map((v) => v.closed));
    for (const [i, end] of ends.entries()) {
      assert.deepEqual({ code: end.code, reason: end.reason }, { code: 1001, reason: 'server shutting down' }, `session ${i}`);
    }
    const slowestClose = Math.max(...ends.map((e) => e.at - signalled));
    for (const [i, v] of verifiers.entries()) {
      assert.deepEqual(v.errors, [], `stream ${i}: what arrived before the close is intact and in order`);
      assert.ok(v.frames > 0, `stream ${i} carried frames`);
      assert.ok(streams[i]!.received <= streamConns[i]!.sent);
    }
    // The servers' connections were closed too: nothing half-open left behind on their side.
    await Promise.all([...streamConns.map((c) => c.closed), ...silentConns.map((c) => c.closed)]);
    assert.equal(fs.existsSync(socket), false, 'the socket file is removed');
    assert.ok(p.stdout.some((l) => /stopping signal=SIGTERM/.test(l)));
    const sessionEnds = p.stdout.filter((l) => l.includes('session end'));
    assert.equal(sessionEnds.length, all.length, 'one "session end" line per session');
    p = undefined;

    const frames = verifiers.reduce((n, v) => n + v.frames, 0);
    recordReliability({
      table: 'faults',
      name: 'SIGTERM with sessions open in every phase',
      tried: `${all.length} sessions on the unix socket: 3 streaming, 2 waiting for a greeting, ${connecting.length} connecting to a blackholed server, 2 idle; then SIGTERM`,
      outcome: `every browser got 1001 "server shutting down" within ${slowestClose} ms, ${frames} streamed frames intact; exit 0 after ${(exitMs / 1000).toFixed(1)} s; socket file removed`,
      bytesLost: 0,
    });
  });
});
