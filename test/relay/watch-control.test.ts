/**
 * Operating a running machine (issue 13), at the protocol level through the app with ctrlX logins
 * (fake identity manager): a watching session's key, pointer, clipboard, resize and QEMU key
 * messages never reach a counting fake VNC target (every byte after ClientInit is parsed there)
 * while screen updates flow; control moves between two sessions of two users by the API, the one
 * that lost it is told by whom (Server-Sent Events) and its input stops reaching the target;
 * `immediate` and `watch-only` targets; the sessions list; ending a session as a manager (4031).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BEARER_PROTOCOL_PREFIX, SCOPE_MANAGE, SCOPE_OPERATE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { CLIENT_MESSAGES } from '../../src/rfb/client-messages.js';
import { u32 } from '../../src/rfb/protocol.js';
import { FAILURES } from '../../src/common/failures.js';
import { API, RELAY, client, config, startTestApp, target, waitFor, type TestApp } from '../helpers/app.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { RfbClient } from '../helpers/rfb-client.js';
import { startTarget, type TcpTarget } from '../helpers/targets.js';

const WIDTH = 64;
const HEIGHT = 32;

/** What a counting VNC target saw from one connection after ClientInit. */
interface Counted {
  socket: net.Socket;
  /** Bytes after ClientInit. */
  bytes: number;
  /** Whole messages by type. */
  types: Map<number, number>;
  /** Bytes of SetDesktopSize, KeyEvent etc. as they came (for exact checks). */
  messages: Buffer[];
  closed: Promise<void>;
}

/**
 * A VNC server (3.8, security None) that answers every FramebufferUpdateRequest with a 1×1 raw
 * update and parses every byte after ClientInit by the client message table.
 */
function startCountingVnc(): Promise<TcpTarget<Counted>> {
  return startTarget((socket) => {
    const c: Counted = { socket, bytes: 0, types: new Map(), messages: [], closed: new Promise((r) => socket.on('close', () => r())) };
    socket.on('error', () => {});
    socket.write('RFB 003.008\n');
    let stage: 'version' | 'type' | 'init' | 'messages' = 'version';
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (stage === 'version') {
          if (buf.length < 12) return;
          buf = buf.subarray(12);
          socket.write(Buffer.from([1, 1]));
          stage = 'type';
        } else if (stage === 'type') {
          if (buf.length < 1) return;
          buf = buf.subarray(1);
          socket.write(u32(0));
          stage = 'init';
        } else if (stage === 'init') {
          if (buf.length < 1) return;
          buf = buf.subarray(1);
          const init = Buffer.alloc(24 + 5);
          init.writeUInt16BE(WIDTH, 0);
          init.writeUInt16BE(HEIGHT, 2);
          Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0]).copy(init, 4);
          init.writeUInt32BE(5, 20);
          init.write('count', 24, 'latin1');
          socket.write(init);
          stage = 'messages';
        } else {
          if (buf.length < 1) return;
          const spec = CLIENT_MESSAGES[buf[0]!];
          assert.ok(spec, `the target got an unknown message type ${buf[0]}`);
          if (buf.length < spec.need) return;
          const size = spec.size(buf);
          if (buf.length < size) return;
          const msg = Buffer.from(buf.subarray(0, size));
          buf = buf.subarray(size);
          c.bytes += size;
          c.types.set(msg[0]!, (c.types.get(msg[0]!) ?? 0) + 1);
          c.messages.push(msg);
          if (msg[0] === 3) {
            // FramebufferUpdate: one 1×1 raw rectangle.
            const update = Buffer.alloc(4 + 12 + 4);
            update.writeUInt16BE(1, 2);
            update.writeUInt16BE(1, 8);
            update.writeUInt16BE(1, 10);
            socket.write(update);
          }
        }
      }
    });
    return c;
  });
}

const KEY = 4;
const POINTER = 5;
const CUT = 6;
const SET_DESKTOP_SIZE = Buffer.concat([Buffer.from([251, 0, 0, 100, 0, 50, 1, 0]), Buffer.alloc(16)]);
const QEMU_KEY = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);
const XVP = Buffer.from([250, 0, 1, 2]);

/** Sends one of every input message the browser can send. */
function sendAllInput(c: RfbClient): void {
  c.key(0x61, true);
  c.key(0x61, false);
  c.pointer(5, 5, 1);
  c.pointer(5, 5, 0);
  c.cutText('rm -rf /');
  c.sendRaw(SET_DESKTOP_SIZE);
  c.sendRaw(QEMU_KEY);
  c.sendRaw(XVP);
}

/** A Server-Sent Events reader: every event as it comes. */
interface EventStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: { event: string; data: any }[];
  close(): void;
}

function openEvents(port: number, viewer: string, token: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `${API}/events?viewer=${viewer}`, headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, agent: false }, (res) => {
      const stream: EventStream = { status: res.statusCode ?? 0, headers: res.headers, events: [], close: () => req.destroy() };
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
        for (let i = text.indexOf('\n\n'); i !== -1; i = text.indexOf('\n\n')) {
          const block = text.slice(0, i);
          text = text.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data !== undefined) stream.events.push({ event, data: JSON.parse(data) });
        }
      });
      res.on('error', () => {});
      resolve(stream);
    });
    req.on('error', reject);
  });
}

describe('watching and control through the app (ctrlX logins)', () => {
  let idm: FakeIdm;
  let vnc: TcpTarget<Counted>;
  let app: TestApp;
  const tokens = {
    watcher: makeToken('watcher', [SCOPE_VIEW]),
    anna: makeToken('anna', [SCOPE_OPERATE]),
    ben: makeToken('ben', [SCOPE_OPERATE]),
    boss: makeToken('boss', [SCOPE_MANAGE]),
  };
  const api = (who: keyof typeof tokens) => client(app.port, { Authorization: `Bearer ${tokens[who]}` });

  before(async () => {
    idm = await startFakeIdm();
    for (const t of Object.values(tokens)) idm.valid.add(t);
    vnc = await startCountingVnc();
    app = await startTestApp({
      initial: config(
        target('press', vnc.port, '127.0.0.1', 'Press'),
        { ...target('weld', vnc.port, '127.0.0.1', 'Weld'), control: 'immediate' },
        { ...target('kiosk', vnc.port, '127.0.0.1', 'Kiosk'), control: 'watch-only' },
      ),
      auth: { validityUrl: idm.url, cacheSeconds: 60 },
      rateLimits: { api: { limit: 10_000 }, changes: { limit: 10_000 } },
    });
  });
  after(async () => {
    await app?.close();
    await vnc?.close();
    await idm?.close();
  });

  /** Opens an RFB client through the relay as `who`, with viewer id `viewer`; returns it and its target connection. */
  async function connect(who: keyof typeof tokens, targetId: string, viewer: string): Promise<{ rfb: RfbClient; conn: Counted }> {
    const url = `ws://127.0.0.1:${app.port}${RELAY}?target=${targetId}&viewer=${viewer}`;
    const connecting = RfbClient.connectWebSocket(url, { encodings: [0, -308] }, ['binary', `${BEARER_PROTOCOL_PREFIX}${tokens[who]}`]);
    const conn = await vnc.connections.next();
    const rfb = await connecting;
    return { rfb, conn };
  }

  /** Sends a FramebufferUpdateRequest and waits for its update: everything sent before it has been through the relay. */
  async function roundTrip(rfb: RfbClient): Promise<void> {
    await rfb.update(false);
  }

  async function sessionOf(who: keyof typeof tokens, viewer: string): Promise<{ id: string; mode: string }> {
    const list = (await api(who).get(`${API}/sessions`)).json().sessions as { id: string; viewerId?: string; mode: string }[];
    const s = list.find((x) => x.viewerId === viewer);
    assert.ok(s, `${who} sees its session ${viewer}`);
    return s;
  }

  it('a watching session: key, pointer, clipboard, resize, QEMU key and xvp never reach the target, screen updates flow', async () => {
    const { rfb, conn } = await connect('watcher', 'press', 'viewer-watch-1');
    try {
      await roundTrip(rfb);
      const before = conn.bytes;
      for (let i = 0; i < 20; i++) {
        sendAllInput(rfb);
        await roundTrip(rfb);
      }
      // Only SetEncodings and the update requests arrived: byte for byte.
      assert.deepEqual([...conn.types.keys()].sort(), [2, 3]);
      assert.equal(conn.types.get(3), 21);
      assert.equal(conn.bytes - before, 20 * 10);
      for (const type of [KEY, POINTER, CUT, 251, 255, 250]) assert.equal(conn.types.get(type), undefined, `type ${type} never arrives`);
      const mine = await sessionOf('watcher', 'viewer-watch-1');
      assert.equal(mine.mode, 'watch');
      recordReliability({
        table: 'inputs',
        name: 'watching session input (issue 13)',
        tried: '20 rounds of every input message a browser can send (keys, pointer, clipboard, SetDesktopSize, QEMU key, xvp) from a session in watch mode, each followed by an update request',
        outcome: `none of the ${20 * 9} input messages reached the VNC target (its parser counted only SetEncodings and ${conn.types.get(3)} update requests after ClientInit); all 21 screen updates arrived`,
        bytesLost: 0,
      });
    } finally {
      await rfb.close();
    }
  });

  it('control moves between two users: take, taken over (the other is told by whom), release; only the holder\'s input arrives', async () => {
    const eventsA = await openEvents(app.port, 'viewer-anna-1', tokens.anna);
    const a = await connect('anna', 'press', 'viewer-anna-1');
    const b = await connect('ben', 'press', 'viewer-ben-1');
    try {
      assert.equal(eventsA.status, 200);
      assert.match(String(eventsA.headers['content-type']), /^text\/event-stream/);
      assert.equal(eventsA.headers['cache-control'], 'no-store');
      assert.equal(eventsA.headers['x-accel-buffering'], 'no');
      const sa = await sessionOf('anna', 'viewer-anna-1');
      const sb = await sessionOf('ben', 'viewer-ben-1');
      assert.deepEqual([sa.mode, sb.mode], ['watch', 'watch']);
      await waitFor('the session event', () => eventsA.events.some((e) => e.event === 'session' && e.data.id === sa.id && e.data.mode === 'watch'));

      // Anna takes control: her keys arrive, Ben's do not.
      const took = await api('anna').post(`${API}/sessions/${sa.id}/control`, { action: 'take' });
      assert.equal(took.status, 200, took.text);
      assert.deepEqual(took.json(), { mode: 'control' });
      a.rfb.key(0x61, true);
      b.rfb.key(0x62, true);
      await roundTrip(a.rfb);
      await roundTrip(b.rfb);
      assert.equal(a.conn.types.get(KEY), 1);
      assert.equal(b.conn.types.get(KEY), undefined);
      await waitFor('control event for anna', () => eventsA.events.some((e) => e.event === 'control' && e.data.mode === 'control'));
      await waitFor('peers with anna in control', () =>
        eventsA.events.some((e) => e.event === 'peers' && e.data.peers.some((p: any) => p.user === 'anna' && p.mode === 'control' && p.own) && e.data.peers.some((p: any) => p.user === 'ben' && p.mode === 'watch' && !p.own)),
      );

      // Ben takes it over: Anna watches again and is told by whom; now only Ben's keys arrive.
      assert.deepEqual((await api('ben').post(`${API}/sessions/${sb.id}/control`, { action: 'take' })).json(), { mode: 'control' });
      await waitFor('anna told that ben took control', () => eventsA.events.some((e) => e.event === 'control' && e.data.mode === 'watch' && e.data.by === 'ben'));
      a.rfb.key(0x63, true);
      b.rfb.key(0x64, true);
      await roundTrip(a.rfb);
      await roundTrip(b.rfb);
      assert.equal(a.conn.types.get(KEY), 1, "anna's key after the takeover is dropped");
      assert.equal(b.conn.types.get(KEY), 1);
      assert.equal((await sessionOf('anna', 'viewer-anna-1')).mode, 'watch');

      // Ben releases: nobody operates.
      assert.deepEqual((await api('ben').post(`${API}/sessions/${sb.id}/control`, { action: 'release' })).json(), { mode: 'watch' });
      b.rfb.pointer(1, 1, 1);
      await roundTrip(b.rfb);
      assert.equal(b.conn.types.get(POINTER), undefined);

      // Someone else's session, an unknown one, a bad action, a watcher, a watch-only target.
      assert.equal((await api('anna').post(`${API}/sessions/${sb.id}/control`, { action: 'take' })).status, 404);
      assert.equal((await api('anna').post(`${API}/sessions/nosuchsession/control`, { action: 'take' })).status, 404);
      assert.equal((await api('anna').post(`${API}/sessions/${sa.id}/control`, { action: 'grab' })).status, 400);
      const w = await connect('watcher', 'press', 'viewer-watch-2');
      try {
        const sw = await sessionOf('watcher', 'viewer-watch-2');
        const refused = await api('watcher').post(`${API}/sessions/${sw.id}/control`, { action: 'take' });
        assert.equal(refused.status, 403);
        assert.equal(refused.json().type, 'urn:ctrlx-novnc:problem:forbidden');
      } finally {
        await w.rfb.close();
      }
      const k = await connect('anna', 'kiosk', 'viewer-anna-kiosk');
      try {
        const sk = await sessionOf('anna', 'viewer-anna-kiosk');
        const conflict = await api('anna').post(`${API}/sessions/${sk.id}/control`, { action: 'take' });
        assert.equal(conflict.status, 409);
        assert.equal(conflict.json().type, 'urn:ctrlx-novnc:problem:conflict');
      } finally {
        await k.rfb.close();
      }
      recordReliability({
        table: 'inputs',
        name: 'control between two sessions (issue 13)',
        tried: 'two users on one target: take, take over, release through POST api/v1/sessions/:id/control; keys from both after each move; someone else\'s session, a watcher, a watch-only target',
        outcome: 'only the holder\'s keys reached the target after each move; the session that lost control got a control event naming the taker; 404 for others\' sessions, 403 for the watch role, 409 for watch-only',
        bytesLost: 0,
      });
    } finally {
      eventsA.close();
      await a.rfb.close();
      await b.rfb.close();
    }
  });

  it('an immediate target gives the first operator control on connect; the next one watches', async () => {
    const a = await connect('anna', 'weld', 'viewer-anna-weld');
    const b = await connect('ben', 'weld', 'viewer-ben-weld');
    try {
      assert.equal((await sessionOf('anna', 'viewer-anna-weld')).mode, 'control');
      assert.equal((await sessionOf('ben', 'viewer-ben-weld')).mode, 'watch');
      a.rfb.key(0x61, true);
      b.rfb.key(0x61, true);
      await roundTrip(a.rfb);
      await roundTrip(b.rfb);
      assert.equal(a.conn.types.get(KEY), 1);
      assert.equal(b.conn.types.get(KEY), undefined);
    } finally {
      await a.rfb.close();
      await b.rfb.close();
    }
  });

  it('the sessions list: the address for managers only, the viewer id only for the caller\'s own sessions', async () => {
    const a = await connect('anna', 'press', 'viewer-anna-list');
    try {
      const asBoss = (await api('boss').get(`${API}/sessions`)).json().sessions as any[];
      const annas = asBoss.find((s) => s.user === 'anna');
      assert.ok(annas);
      assert.equal(annas.own, false);
      assert.equal(annas.viewerId, undefined);
      assert.match(annas.address, /^127\.0\.0\.1:\d+$/);
      assert.equal(annas.target, 'press');
      assert.equal(annas.targetName, 'Press');
      assert.ok(!Number.isNaN(Date.parse(annas.since)));
      const asAnna = (await api('anna').get(`${API}/sessions`)).json().sessions as any[];
      const own = asAnna.find((s) => s.id === annas.id);
      assert.deepEqual([own.own, own.viewerId, own.address], [true, 'viewer-anna-list', undefined]);
      assert.equal((await client(app.port).get(`${API}/sessions`)).status, 401);
    } finally {
      await a.rfb.close();
    }
  });

  it('a manager ends a session: 204, the viewer gets 4031 naming the manager and an ended event; others may not', async () => {
    const events = await openEvents(app.port, 'viewer-ben-end', tokens.ben);
    const b = await connect('ben', 'press', 'viewer-ben-end');
    try {
      const sb = await sessionOf('ben', 'viewer-ben-end');
      assert.equal((await del('anna', sb.id)).status, 403);
      assert.equal((await del('boss', 'nosuchsession')).status, 404);
      assert.equal((await del('boss', sb.id)).status, 204);
      const end = await b.rfb.wsClosed!;
      assert.deepEqual(end, { code: FAILURES['ended-by-manager'].code, reason: 'Disconnected by boss' });
      await waitFor('the ended event', () => events.events.some((e) => e.event === 'ended' && e.data.code === 4031 && e.data.by === 'boss'));
      await b.conn.closed;
    } finally {
      events.close();
      await b.rfb.close();
    }
  });

  function del(who: keyof typeof tokens, id: string) {
    return new Promise<{ status: number }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: app.port, method: 'DELETE', path: `${API}/sessions/${id}`, headers: { Authorization: `Bearer ${tokens[who]}` }, agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }
});
