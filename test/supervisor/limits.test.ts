/**
 * Session limits, per target and in total: one more viewer than allowed is refused before the
 * upgrade with 503, Retry-After and a sentence naming the limit; closing a viewer frees a place.
 * And a target's idle timeout (minutes in the configuration) reaches the relay (seconds).
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { Relay } from '../../src/relay/relay-server.js';
import type { RelayTarget, SessionSecrets } from '../../src/relay/relay.js';
import { Supervisor } from '../../src/supervisor/supervisor.js';
import { recordReliability } from '../helpers/reliability.js';
import { after, before, describe, it } from 'node:test';
import {
  client,
  config,
  openSession,
  openSessionTo,
  type Session,
  refusedUpgrade,
  startTestApp,
  target,
  VIEWER_HELLO,
  vncServer,
  waitFor,
  watchable,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';
import { FAILURES } from '../../src/common/failures.js';

describe('session limits', () => {
  const servers: FakeServer[] = [];
  let app: TestApp;
  before(async () => {
    servers.push(await vncServer('A'), await vncServer('B'));
  });
  after(async () => {
    await app?.close();
    for (const s of servers) await s.close();
  });

  it('refuses the viewer above the per-target and the total limit, with the limit in words', async () => {
    app = await startTestApp({
      initial: config(target('a', servers[0]!.port, '127.0.0.1', 'Press 1'), target('b', servers[1]!.port)),
      limits: { maxSessions: 3, maxSessionsPerTarget: 2 },
    });
    const http = client(app.port);
    assert.deepEqual((await http.status()).relay.limits, { maxSessions: 3, maxSessionsPerTarget: 2 });
    const a1 = await openSessionTo(app.port, 'a', 'A');
    await openSessionTo(app.port, 'a', 'A');
    const perTarget = await refusedUpgrade(app.port, '?target=a');
    assert.equal(perTarget.status, 503);
    assert.equal(perTarget.headers['retry-after'], '10');
    assert.equal(perTarget.body, 'Press 1 already has 2 viewers, the limit per target; close one and try again.\n');
    await openSessionTo(app.port, 'b', 'B');
    const total = await refusedUpgrade(app.port, '?target=b');
    assert.equal(total.status, 503);
    assert.equal(total.body, 'The app already serves 3 viewers, its limit; close a viewer and try again.\n');
    // The viewer's preflight GET gives the same answer, as Problem JSON naming the failure kind.
    const preflight = await http.get('/ctrlx-novnc/websockify?target=b');
    assert.equal(preflight.status, 503);
    const body = JSON.parse(preflight.text);
    assert.equal(body.detail, 'The app already serves 3 viewers, its limit; close a viewer and try again.');
    assert.deepEqual([body.kind, body.code], ['too-many-sessions', FAILURES['too-many-sessions'].code]);
    a1.ws.close();
    await waitFor('a place to free up', async () => (await http.status()).relay.totals.sessionsOpen === 2);
    const again = await openSessionTo(app.port, 'a', 'A');
    again.ws.close();
  });
});

describe('a rush of viewers against the default limits', () => {
  it('admits exactly 16 per target and 32 in total out of 60 at once; the rest get 503 before the upgrade; all admitted relay their own bytes', async (t) => {
    const servers = [await vncServer('A'), await vncServer('B'), await vncServer('C')];
    const app = await startTestApp({ initial: config(target('a', servers[0]!.port), target('b', servers[1]!.port), target('c', servers[2]!.port)) });
    t.after(async () => {
      await app.close();
      for (const s of servers) await s.close();
    });
    const http = client(app.port);
    assert.deepEqual((await http.status()).relay.limits, { maxSessions: 32, maxSessionsPerTarget: 16 });
    // 20 viewers per target, all started before any has opened.
    const ids = ['a', 'b', 'c'].flatMap((id) => Array.from({ length: 20 }, () => id));
    const attempts = await Promise.all(
      ids.map((id) =>
        openSession(app.port, id).then(
          (s): { id: string; session: Session } => ({ id, session: s }),
          () => refusedUpgrade(app.port, `?target=${id}`).then((r) => ({ id, refused: r })),
        ),
      ),
    );
    // A refused attempt is asked again to read the refusal: it must still be refused then.
    const admitted = attempts.filter((a): a is { id: string; session: Session } => 'session' in a);
    const refused = attempts.filter((a): a is { id: string; refused: Awaited<ReturnType<typeof refusedUpgrade>> } => 'refused' in a);
    t.after(() => {
      for (const a of admitted) a.session.ws.terminate();
    });
    const perTarget = (list: { id: string }[]): Record<string, number> =>
      Object.fromEntries(['a', 'b', 'c'].map((id) => [id, list.filter((x) => x.id === id).length]));
    assert.equal(admitted.length, 32, `admitted per target: ${JSON.stringify(perTarget(admitted))}`);
    for (const n of Object.values(perTarget(admitted))) assert.ok(n <= 16, `no target above 16: ${JSON.stringify(perTarget(admitted))}`);
    assert.equal(refused.length, 28);
    for (const r of refused) {
      assert.equal(r.refused.status, 503);
      assert.equal(r.refused.headers['retry-after'], '10');
      assert.match(r.refused.body, /limit/);
    }
    assert.equal((await http.status()).relay.totals.sessionsOpen, 32);
    // Every admitted viewer talks to its own target and gets its own bytes back.
    let echoed = 0;
    await Promise.all(
      admitted.map(async ({ id, session }, i) => {
        const tag = `viewer-${i}-${'x'.repeat(100 + i * 37)}`;
        await waitFor(`greeting of ${id}`, () => session.received().startsWith(`RFB 003.008\n${id.toUpperCase()}`));
        // Sessions to a configured target start watching: their bytes are RFB the relay can check.
        session.ws.send(Buffer.concat([VIEWER_HELLO, watchable(tag)]));
        await waitFor(`echo of viewer ${i}`, () => session.received().endsWith(tag));
        echoed += tag.length;
      }),
    );
    for (const a of admitted) a.session.ws.close();
    await waitFor('every place freed', async () => (await http.status()).relay.totals.sessionsOpen === 0);
    const again = await openSessionTo(app.port, 'c', 'C');
    again.ws.close();
    recordReliability({
      table: 'load',
      name: 'a rush of viewers above the session limits',
      tried: '60 viewers opened at once (20 to each of 3 targets) against the default limits, 16 per target and 32 in total',
      outcome: `exactly 32 admitted (per target ${Object.values(perTarget(admitted)).join('/')}), 28 refused with 503, Retry-After 10 and the limit in words before the upgrade; every admitted viewer got its own ${echoed} bytes echoed; all places free again after closing`,
      bytesLost: 0,
    });
  });
});

describe('idle timeout from the configuration', () => {
  it('reaches the relay in seconds (the configuration counts minutes); no field, no timeout', async (t) => {
    const seen: RelayTarget[] = [];
    class Recording extends Relay {
      override handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: RelayTarget, secrets?: SessionSecrets): void {
        seen.push(target);
        super.handleUpgrade(req, socket, head, target, secrets);
      }
    }
    const a = await vncServer('A');
    t.after(() => a.close());
    const supervisor = new Supervisor({ createRelay: (o) => new Recording(o) });
    supervisor.start(config({ ...target('a', a.port), idleTimeout: 15 }, target('b', a.port)));
    const server = http.createServer((_req, res) => res.writeHead(426).end());
    server.on('upgrade', (req, socket, head) => {
      const id = new URL(req.url ?? '/', 'http://x').searchParams.get('target');
      supervisor.handleUpgrade(req, socket, head, id);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      server.close();
      await supervisor.stop();
      server.closeAllConnections();
    });
    const port = (server.address() as net.AddressInfo).port;
    for (const id of ['a', 'b']) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?target=${id}`);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.close();
    }
    assert.deepEqual(
      seen.map((x) => [x.id, x.idleMs]),
      [
        ['a', 900_000],
        ['b', undefined],
      ],
    );
  });
});
