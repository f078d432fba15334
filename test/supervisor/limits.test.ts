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
import { after, before, describe, it } from 'node:test';
import {
  client,
  config,
  openSessionTo,
  refusedUpgrade,
  startTestApp,
  target,
  vncServer,
  waitFor,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';

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
    // The viewer's preflight GET gives the same answer, as Problem JSON.
    const preflight = await http.get('/ctrlx-novnc/websockify?target=b');
    assert.equal(preflight.status, 503);
    assert.equal(JSON.parse(preflight.text).detail, 'The app already serves 3 viewers, its limit; close a viewer and try again.');
    a1.ws.close();
    await waitFor('a place to free up', async () => (await http.status()).relay.totals.sessionsOpen === 2);
    const again = await openSessionTo(app.port, 'a', 'A');
    again.ws.close();
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
      seen.map((x) => [x.id, x.idleTimeout]),
      [
        ['a', 900],
        ['b', undefined],
      ],
    );
  });
});
