/**
 * The relay's control board with a real relay and the demo VNC server: what reaches the audit
 * trail (session start and end with duration and refused input, control taken, taken over by whom,
 * released, a session ended by a manager) and the events a viewer page gets, including the idle
 * warning before the idle timeout and its clearing by input (also input a watcher may not send).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import type { AuditEvent } from '../../src/audit/events.js';
import { startDemoServer } from '../../src/demo/demo-server.js';
import type { ViewerAddress, ViewerEventName } from '../../src/relay/control.js';
import { Relay } from '../../src/relay/relay-server.js';
import type { RelayTarget, SessionOwner } from '../../src/relay/relay.js';
import { waitFor } from '../helpers/app.js';
import { RfbClient } from '../helpers/rfb-client.js';
import { wsUrl } from '../helpers/ws-client.js';

interface Heard {
  to: ViewerAddress;
  event: ViewerEventName;
  data: any;
}

/** A relay on 127.0.0.1:0 whose upgrades say who they are in the URL (`?user=&role=&viewer=`). */
async function harness(t: TestContext, target: RelayTarget): Promise<{ relay: Relay; url: (who: Omit<SessionOwner, 'address'>) => string; audit: AuditEvent[]; heard: Heard[] }> {
  const audit: AuditEvent[] = [];
  const heard: Heard[] = [];
  const relay = new Relay({
    requireRfb: true,
    audit: { record: (e) => audit.push(e) },
    viewerEvents: (to, event, data) => heard.push({ to, event, data }),
  });
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req, socket, head) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    relay.handleUpgrade(req, socket, head, target, {}, { user: q.get('user')!, role: q.get('role') as SessionOwner['role'], viewerId: q.get('viewer') ?? undefined });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  t.after(async () => {
    server.close();
    await relay.close();
    server.closeAllConnections();
  });
  return {
    relay,
    audit,
    heard,
    url: (who) => `${wsUrl(port)}?user=${who.user}&role=${who.role}&viewer=${who.viewerId ?? ''}`,
  };
}

async function demo(t: TestContext): Promise<number> {
  const d = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, version: '3.8' });
  t.after(() => d.close());
  return d.port;
}

describe('the control board', () => {
  it('records session start and end (duration, refused input), take, take-over by whom, release and end by a manager', async (t) => {
    const port = await demo(t);
    const h = await harness(t, { host: '127.0.0.1', port, id: 'hmi', name: 'Press HMI', control: 'on-request' });
    const anna = await RfbClient.connectWebSocket(h.url({ user: 'anna', role: 'operate', viewerId: 'viewer-anna' }));
    const ben = await RfbClient.connectWebSocket(h.url({ user: 'ben', role: 'operate', viewerId: 'viewer-ben' }));
    t.after(() => anna.close());
    t.after(() => ben.close());
    const ids = Object.fromEntries(h.relay.board.list({ name: 'boss', role: 'manage' }).map((s) => [s.user, s.id]));
    // Anna types while watching: refused, counted.
    anna.key(0x61, true);
    anna.key(0x61, false);
    await anna.update(false);
    assert.deepEqual(h.relay.board.take(ids.anna!, { name: 'anna', role: 'operate' }), { ok: true, mode: 'control' });
    assert.deepEqual(h.relay.board.take(ids.ben!, { name: 'ben', role: 'operate' }), { ok: true, mode: 'control' });
    assert.deepEqual(h.relay.board.release(ids.ben!, { name: 'ben', role: 'operate' }), { ok: true, mode: 'watch' });
    assert.deepEqual(h.relay.board.take(ids.ben!, { name: 'anna', role: 'operate' }), { ok: false, why: 'not-found' }, "not anna's session");
    const annaClosed = anna.wsClosed!;
    assert.equal(h.relay.board.end(ids.anna!, { name: 'boss', role: 'manage' }), true);
    assert.deepEqual(await annaClosed, { code: 4031, reason: 'Disconnected by boss' });
    await ben.close();
    await waitFor('both ends recorded', () => h.audit.filter((e) => e.event === 'session-end').length === 2);

    const lines = h.audit.map((e) => `${e.event} ${e.user}${e.detail ? ` (${e.detail})` : ''}`);
    assert.deepEqual(lines.slice(0, 7), [
      'session-start anna',
      'session-start ben',
      'control-take anna',
      'control-taken-over anna (by ben)',
      'control-take ben (from anna)',
      'control-release ben',
      'session-ended-by anna (by boss)',
    ]);
    const annaEnd = h.audit.find((e) => e.event === 'session-end' && e.user === 'anna')!;
    assert.equal(annaEnd.detail, 'code 4031; refused input 2');
    assert.ok(typeof annaEnd.durationMs === 'number' && annaEnd.durationMs >= 0);
    for (const e of h.audit) {
      assert.equal(e.target, 'hmi');
      assert.equal(e.targetName, 'Press HMI');
      assert.match(e.address, /^127\.0\.0\.1:\d+$/);
      assert.match(e.sessionId, /^[A-Za-z0-9_-]{16}$/);
      assert.ok(!Number.isNaN(Date.parse(e.time)));
    }
    assert.equal(new Set(h.audit.map((e) => e.sessionId)).size, 2);
    // Anna's page heard: her session, control, losing it to ben, the end by boss.
    const toAnna = h.heard.filter((x) => x.to.viewerId === 'viewer-anna').map((x) => x.event);
    assert.deepEqual(toAnna.filter((e) => e !== 'peers'), ['session', 'control', 'control', 'ended']);
    assert.deepEqual(h.heard.find((x) => x.to.viewerId === 'viewer-anna' && x.event === 'ended')!.data, { code: 4031, by: 'boss' });
    assert.ok(h.heard.every((x) => x.to.user === (x.to.viewerId === 'viewer-anna' ? 'anna' : 'ben')), 'events go to their own user only');
  });

  it('a watch-role session never gets control, not even on an immediate target', async (t) => {
    const port = await demo(t);
    const h = await harness(t, { host: '127.0.0.1', port, id: 'hmi', control: 'immediate' });
    const w = await RfbClient.connectWebSocket(h.url({ user: 'watcher', role: 'watch', viewerId: 'viewer-w' }));
    t.after(() => w.close());
    const [s] = h.relay.board.list({ name: 'watcher', role: 'watch' });
    assert.equal(s!.mode, 'watch');
    assert.deepEqual(h.relay.board.take(s!.id, { name: 'watcher', role: 'watch' }), { ok: false, why: 'forbidden' });
    const o = await RfbClient.connectWebSocket(h.url({ user: 'op', role: 'operate', viewerId: 'viewer-o' }));
    t.after(() => o.close());
    assert.equal(h.relay.board.list({ name: 'op', role: 'operate' }).find((x) => x.user === 'op')!.mode, 'control');
  });

  it('warns before the idle timeout, input clears the warning (even a watcher\'s), then 4001', async (t) => {
    const port = await demo(t);
    const h = await harness(t, { host: '127.0.0.1', port, id: 'hmi', control: 'on-request', idleMs: 4000 });
    const c = await RfbClient.connectWebSocket(h.url({ user: 'anna', role: 'operate', viewerId: 'viewer-idle' }));
    t.after(() => c.close());
    const closed = c.wsClosed!;
    const events = (): string[] => h.heard.filter((x) => x.event.startsWith('idle')).map((x) => `${x.event}${x.data.secondsLeft ? ` ${x.data.secondsLeft}` : ''}`);
    // Half the timeout (timeouts of two minutes or less) before it: 2 s left.
    await waitFor('the idle warning', () => events().length === 1, { timeoutMs: 5000 });
    assert.deepEqual(events(), ['idle-warning 2']);
    c.pointer(3, 3, 0); // a watcher's pointer: dropped, but someone is there
    await waitFor('the warning cleared', () => events().length === 2);
    assert.deepEqual(events(), ['idle-warning 2', 'idle-cleared']);
    const end = await closed;
    assert.deepEqual(end, { code: 4001, reason: 'idle: no input for 4 s' });
    assert.deepEqual(events(), ['idle-warning 2', 'idle-cleared', 'idle-warning 2']);
  });
});
