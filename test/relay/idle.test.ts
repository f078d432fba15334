/**
 * The idle-session timeout (per target): a session without user input for `idleMs` milliseconds
 * is closed with 4001 "idle: no input for …", whether the relay did the VNC handshake itself or
 * it passed through; screen updates alone do not keep a session open, keys and pointer do.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { startDemoServer } from '../../src/demo/demo-server.js';
import type { RfbVersion } from '../../src/rfb/protocol.js';
import { startRelay } from '../helpers/relay-harness.js';
import { RfbClient } from '../helpers/rfb-client.js';
import type { CloseEvent } from '../helpers/ws-client.js';

const LIMIT = { timeout: 60_000 };
/** Seconds; input is sent far more often than this, so a busy machine cannot make it flaky. */
const IDLE = 2;

async function session(t: TestContext, opts: { version: RfbVersion; serverPassword?: string; stored?: string }): Promise<RfbClient> {
  const demo = await startDemoServer({
    host: '127.0.0.1',
    port: 0,
    fps: 0,
    version: opts.version,
    ...(opts.serverPassword ? { password: opts.serverPassword } : {}),
  });
  t.after(() => demo.close());
  const h = await startRelay(
    { host: '127.0.0.1', port: demo.port, id: 'hmi', idleMs: IDLE * 1000 },
    { requireRfb: true },
    { password: opts.stored },
  );
  t.after(() => h.close());
  const client = await RfbClient.connectWebSocket(h.url, opts.stored ? {} : { password: opts.serverPassword });
  t.after(() => client.close());
  return client;
}

/** Sends `what` every 200 ms for 2.5 × IDLE; resolves true if the session was still open after. */
async function keepsOpen(client: RfbClient, what: () => void): Promise<boolean> {
  let closed = false;
  void client.wsClosed!.then(() => (closed = true));
  for (let i = 0; i < (IDLE * 2.5 * 1000) / 200 && !closed; i++) {
    what();
    await new Promise((r) => setTimeout(r, 200));
  }
  return !closed;
}

const cases: { name: string; version: RfbVersion; serverPassword?: string; stored?: string }[] = [
  { name: 'relay-side VNC auth (3.8 server)', version: '3.8', serverPassword: 'secret', stored: 'secret' },
  { name: 'relay-side VNC auth (3.3 server)', version: '3.3', serverPassword: 'secret', stored: 'secret' },
  { name: 'pass-through, no authentication', version: '3.8' },
  { name: 'pass-through, VNC auth done by the browser', version: '3.7', serverPassword: 'secret' },
];

describe('idle-session timeout', () => {
  for (const c of cases) {
    it(`${c.name}: input keeps it open, updates alone do not; then 4001`, LIMIT, async (t) => {
      const client = await session(t, c);
      let x = 0;
      assert.equal(await keepsOpen(client, () => client.pointer(x++ % 100, 10, 0)), true, 'pointer moves keep it open');
      // Only update requests now (what a viewer left open sends): it closes after IDLE seconds.
      const closing = client.wsClosed!;
      const stop = setInterval(() => client.requestUpdate(true), 200);
      t.after(() => clearInterval(stop));
      const close: CloseEvent = await closing;
      clearInterval(stop);
      assert.deepEqual(close, { code: 4001, reason: `idle: no input for ${IDLE} s` });
    });
  }
});
