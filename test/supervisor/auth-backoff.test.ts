/**
 * Rejected stored passwords back off per target: VNC servers lock clients out after a few
 * failures, so after `authFailuresBeforeBackoff` rejections in a row new sessions to that target
 * are refused before any connection is made (503 with Retry-After and a reason in words), the
 * status shows it, and a new password (resetAuthFailures) or a moved target starts afresh.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { startDemoServer } from '../../src/demo/demo-server.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import type { Config } from '../../src/config/schema.js';
import { RfbClient, RfbError } from '../helpers/rfb-client.js';
import { waitFor } from '../helpers/wait.js';

const LIMIT = { timeout: 60_000 };

async function setup(t: TestContext, password: { value: string | undefined }) {
  const demo = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, password: 'right' });
  t.after(() => demo.close());
  let connects = 0;
  demo.on('connect', () => connects++);
  const supervisor = new Supervisor({
    passwordFor: (id) => (id === 'hmi' ? password.value : undefined),
    authFailuresBeforeBackoff: 2,
    authBackoffMs: 1500,
  });
  const config = (port: number): Config => ({ version: 1, targets: [{ id: 'hmi', name: 'HMI', host: '127.0.0.1', port }] });
  supervisor.start(config(demo.port));
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket, head) => supervisor.handleUpgrade(req, socket, head, 'hmi'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.close();
    await supervisor.stop();
    server.closeAllConnections();
  });
  const url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
  return { demo, supervisor, url, connects: () => connects, config };
}

async function attempt(url: string): Promise<'ok' | string> {
  try {
    const c = await RfbClient.connectWebSocket(url);
    await c.close();
    return 'ok';
  } catch (err) {
    if (err instanceof RfbError) return `rfb: ${err.reason ?? err.message}`;
    throw err;
  }
}

/** An upgrade refused before the WebSocket opens: status, Retry-After, body. */
function refused(url: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary']);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    ws.once('error', () => {});
  });
}

describe('backoff after rejected stored passwords', () => {
  it('holds sessions back after 2 rejections, says so, and lets them through again later', LIMIT, async (t) => {
    const password = { value: 'wrong' as string | undefined };
    const s = await setup(t, password);
    assert.match(await attempt(s.url), /^rfb: authentication failed/);
    let auth = s.supervisor.status().targets[0]!.auth;
    assert.deepEqual([auth?.failures, auth?.retryIn], [1, null], 'one failure: not held back yet');
    assert.match(await attempt(s.url), /^rfb: authentication failed/);
    auth = s.supervisor.status().targets[0]!.auth;
    assert.equal(auth?.failures, 2);
    assert.ok(auth?.retryIn !== null && auth!.retryIn >= 1, 'held back now');
    assert.match(auth!.lastError, /^authentication failed: .* did not accept the VNC password stored in the settings/);

    const before = s.connects();
    const r = await refused(s.url);
    assert.equal(r.status, 503);
    assert.ok(Number(r.retryAfter) >= 1, `Retry-After ${r.retryAfter}`);
    assert.match(r.body, /^The VNC server rejected the stored password 2 times in a row; to avoid a lockout the next attempt is allowed in \d+ s\. Check the VNC password in the settings\.\n$/);
    assert.equal(s.connects(), before, 'no connection to the server while held back');

    // Once the hold-back has passed, one more try is let through (and fails again: 3 in a row).
    await waitFor('the hold-back to pass', () => s.supervisor.status().targets[0]!.auth?.retryIn === null, { intervalMs: 100 });
    assert.match(await attempt(s.url), /^rfb: authentication failed/);
    assert.equal(s.supervisor.status().targets[0]!.auth?.failures, 3);
    assert.equal((await refused(s.url)).status, 503);
  });

  it('a new password clears the count at once; a success clears it too', LIMIT, async (t) => {
    const password = { value: 'wrong' as string | undefined };
    const s = await setup(t, password);
    await attempt(s.url);
    await attempt(s.url);
    assert.equal((await refused(s.url)).status, 503);
    password.value = 'right';
    s.supervisor.resetAuthFailures('hmi');
    assert.equal(s.supervisor.status().targets[0]!.auth, null);
    assert.equal(await attempt(s.url), 'ok');
    assert.equal(s.supervisor.status().targets[0]!.passwordSet, true);
    // One failure, then a success: the count goes back to nothing.
    password.value = 'wrong';
    await attempt(s.url);
    assert.equal(s.supervisor.status().targets[0]!.auth?.failures, 1);
    password.value = 'right';
    assert.equal(await attempt(s.url), 'ok');
    assert.equal(s.supervisor.status().targets[0]!.auth, null);
  });

  it('a target moved to another address starts afresh', LIMIT, async (t) => {
    const password = { value: 'wrong' as string | undefined };
    const s = await setup(t, password);
    await attempt(s.url);
    await attempt(s.url);
    assert.equal((await refused(s.url)).status, 503);
    const other = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, password: 'wrong' });
    t.after(() => other.close());
    s.supervisor.apply(s.config(other.port));
    assert.equal(s.supervisor.status().targets[0]!.auth, null);
    assert.equal(await attempt(s.url), 'ok');
  });
});

describe('after a rejected password, one attempt at a time', () => {
  it('a burst of viewers reaches the server once; the others are told to wait', LIMIT, async (t) => {
    // A server that takes its time over the SecurityResult, so attempts overlap.
    const pending: net.Socket[] = [];
    let connections = 0;
    const server = (await import('node:net')).createServer((socket) => {
      connections++;
      socket.on('error', () => {});
      socket.write(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2]), Buffer.alloc(16, 7)]));
      let got = 0;
      socket.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= 12 + 1 + 16) pending.push(socket);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    const supervisor = new Supervisor({ passwordFor: () => 'wrong', authFailuresBeforeBackoff: 3 });
    supervisor.start({ version: 1, targets: [{ id: 'hmi', name: 'HMI', host: '127.0.0.1', port }] });
    const web = http.createServer((_req, res) => res.writeHead(426).end());
    web.on('upgrade', (req, socket, head) => supervisor.handleUpgrade(req, socket, head, 'hmi'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      for (const s of pending) s.destroy();
      web.close();
      await supervisor.stop();
      web.closeAllConnections();
    });
    const url = `ws://127.0.0.1:${(web.address() as net.AddressInfo).port}/`;
    const reject = (s: net.Socket): void => {
      s.end(Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from([0, 0, 0, 4]), Buffer.from('nope')]));
    };

    // First failure: nothing held back yet, attempts may run side by side.
    const first = attempt(url);
    await waitFor('the first attempt at the server', () => pending.length === 1);
    reject(pending.shift()!);
    assert.match(await first, /^rfb: authentication failed/);

    // Now a burst of five: one reaches the server, four get 503 "another viewer is trying".
    const one = attempt(url);
    await waitFor('the second attempt at the server', () => pending.length === 1);
    const burst = await Promise.all([1, 2, 3, 4].map(() => refused(url)));
    for (const r of burst) {
      assert.equal(r.status, 503);
      assert.match(r.body, /another viewer is trying it now/);
    }
    assert.equal(connections, 2, 'the server saw one attempt per round');
    reject(pending.shift()!);
    assert.match(await one, /^rfb: authentication failed/);
    assert.equal(supervisor.status().targets[0]!.auth?.failures, 2);
  });
});
