/**
 * Relay sessions end with the login (issue 12, item 8), through a real `serve` child with ctrlX
 * authentication and a fake identity manager: a session closes with 4030 `login-expired` when its
 * token expires and, at the next check with the identity manager, when its token was revoked; a
 * valid token keeps its session across the checks. The check interval is shortened for the test
 * (`CTRLX_NOVNC_LOGIN_CHECK_MS`, 500 ms; 5 minutes otherwise).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { config, configPaths, makeTempDir, removeDir, target, vncServer, writeConfigFile, type FakeServer } from '../helpers/app.js';
import { childEnv, spawnServe, type ServeProcess } from '../helpers/cli.js';
import { decodeJwt, BEARER_PROTOCOL_PREFIX, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { FAILURES } from '../../src/common/failures.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { waitFor } from '../helpers/wait.js';

const CHECK_MS = 500;

interface Opened {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** Opens a relay session with `token` in the subprotocol, as the viewer does; resolves once the target greeted. */
function openWithToken(port: number, token: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ctrlx-novnc/websockify?target=hmi`, ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`], { perMessageDeflate: false });
    const closed = new Promise<{ code: number; reason: string; at: number }>((res) =>
      ws.once('close', (code: number, reason: Buffer) => res({ code, reason: reason.toString(), at: Date.now() })),
    );
    ws.once('message', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

/** Resolves with the close, or fails when the session is still open after `ms`. */
async function closedWithin(s: Opened, ms: number): Promise<{ code: number; reason: string; at: number }> {
  let close: { code: number; reason: string; at: number } | undefined;
  void s.closed.then((c) => (close = c));
  await waitFor(`the session to be closed within ${ms} ms`, () => close !== undefined, { timeoutMs: ms }).catch(() =>
    assert.fail(`the session is still open after ${ms} ms (readyState ${s.ws.readyState})`),
  );
  return close!;
}

describe('relay sessions end with the login (serve child, fake identity manager)', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let root: string;
  let p: ServeProcess;
  const open = new Set<WebSocket>();

  before(async () => {
    idm = await startFakeIdm();
    vnc = await vncServer('X');
    root = await makeTempDir('login');
    writeConfigFile(configPaths(path.join(root, 'solutions')).file, config(target('hmi', vnc.port)));
    p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, '--auth', 'ctrlx', '--idm-url', idm.url], {
      env: childEnv({ CTRLX_NOVNC_LOGIN_CHECK_MS: String(CHECK_MS) }),
    });
  });
  afterEach(() => {
    for (const ws of open) ws.terminate();
    open.clear();
  });
  after(async () => {
    await p?.stop('SIGKILL');
    await vnc?.close();
    await idm?.close();
    await removeDir(root);
  });

  it('a token that expires closes its session with 4030 login-expired right after its exp', async () => {
    const token = makeToken('short', [SCOPE_VIEW], 2);
    idm.valid.add(token);
    const expiresAt = (decodeJwt(token)!.exp as number) * 1000;
    const s = await openWithToken(p.port!, token);
    open.add(s.ws);
    const close = await closedWithin(s, 15_000);
    assert.deepEqual({ code: close.code, reason: close.reason }, { code: FAILURES['login-expired'].code, reason: 'login expired' });
    assert.equal(close.code, 4030);
    assert.ok(close.at >= expiresAt - 20, `closed ${expiresAt - close.at} ms before exp`);
    await waitFor('the end to be logged', () => p.stdout.some((l) => /session end .*kind=login-expired code=4030/.test(l)));
    recordReliability({
      table: 'faults',
      name: 'login expires during a relay session',
      tried: 'a viewer session opened with a ctrlX token that expires 1–2 s later (serve child, fake identity manager)',
      outcome: `closed with 4030 login-expired "login expired" ${close.at - expiresAt} ms after the token's exp; the session end is logged with its kind`,
    });
  });

  it('a token revoked at the identity manager closes its session with 4030 at the next check', async () => {
    const token = makeToken('revoked', [SCOPE_VIEW], 3600);
    idm.valid.add(token);
    const s = await openWithToken(p.port!, token);
    open.add(s.ws);
    const asked = (): number => idm.requests.filter((t) => t === token).length;
    // One check that still says yes, then the revocation.
    await waitFor('a first check with the identity manager', () => asked() >= 2, { timeoutMs: 10_000 });
    assert.equal(s.ws.readyState, WebSocket.OPEN);
    idm.valid.delete(token);
    const revokedAt = Date.now();
    const close = await closedWithin(s, 10_000);
    assert.deepEqual({ code: close.code, reason: close.reason }, { code: 4030, reason: 'login revoked' });
    recordReliability({
      table: 'faults',
      name: 'login revoked during a relay session',
      tried: `a viewer session with a ctrlX token valid for an hour, revoked at the fake identity manager while open; check interval ${CHECK_MS} ms (default 5 min)`,
      outcome: `closed with 4030 login-expired "login revoked" ${close.at - revokedAt} ms after the revocation (the next check)`,
    });
  });

  it('a valid token keeps its session across the checks, and data keeps flowing', async () => {
    const token = makeToken('steady', [SCOPE_VIEW], 3600);
    idm.valid.add(token);
    const s = await openWithToken(p.port!, token);
    open.add(s.ws);
    const asked = (): number => idm.requests.filter((t) => t === token).length;
    const first = asked();
    await waitFor('four checks with the identity manager', () => asked() >= first + 4, { timeoutMs: 15_000 });
    assert.equal(s.ws.readyState, WebSocket.OPEN, 'still open after the checks');
    // The echo target sends back what the viewer sends: the session still relays.
    const echoed = new Promise<string>((resolve) => s.ws.once('message', (d: Buffer) => resolve(d.toString())));
    s.ws.send(Buffer.from('still here'));
    assert.equal(await echoed, 'still here');
    const checks = asked() - first;
    const close = s.closed;
    s.ws.close(1000);
    assert.equal((await close).code, 1000);
    recordReliability({
      table: 'faults',
      name: 'valid login across session checks',
      tried: `a viewer session with a ctrlX token valid for an hour; the identity manager asked again every ${CHECK_MS} ms`,
      outcome: `${checks} checks answered valid; the session stayed open and relayed data until the viewer closed it (1000)`,
    });
  });

  // Last: it stops the identity manager.
  it('with the identity manager unreachable a session goes on until its token expires, then 4030', async () => {
    const token = makeToken('offline', [SCOPE_VIEW], 4);
    idm.valid.add(token);
    const expiresAt = (decodeJwt(token)!.exp as number) * 1000;
    const s = await openWithToken(p.port!, token);
    open.add(s.ws);
    await idm.close();
    await waitFor('a failed check to be logged', () => p.stderr.some((l) => /cannot recheck the login of a session/.test(l)), { timeoutMs: 10_000 });
    assert.equal(s.ws.readyState, WebSocket.OPEN, 'an unreachable identity manager does not end the session');
    const close = await closedWithin(s, 15_000);
    assert.deepEqual({ code: close.code, reason: close.reason }, { code: 4030, reason: 'login expired' });
    assert.ok(close.at >= expiresAt - 20, `closed ${expiresAt - close.at} ms before exp`);
    recordReliability({
      table: 'faults',
      name: 'identity manager unreachable during a relay session',
      tried: `a viewer session with a ctrlX token expiring after 3–4 s; the fake identity manager stopped while it is open (checks every ${CHECK_MS} ms)`,
      outcome: 'the failed checks are logged as warnings and the session goes on; at the expiry it closes with 4030 login-expired "login expired"',
    });
  });
});
