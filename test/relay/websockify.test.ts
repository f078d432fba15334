/**
 * Differential check: the byte-exact echo soak that the relay passes (data.test.ts) run unchanged
 * against Debian's `websockify`, to show the harness tests relay behaviour, not our relay's quirks.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { startRelay } from '../helpers/relay-harness.js';
import { echoSoak } from '../helpers/soak.js';
import { freePort, startEcho } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';
import { wsUrl } from '../helpers/ws-client.js';

const WEBSOCKIFY = '/usr/bin/websockify';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A guard against hangs only: nothing here asserts speed. */
const LIMIT = { timeout: 60_000 };

describe('Echo soak, differential', () => {
  it('passes through our relay (seed 3, 200 frames)', LIMIT, async (t) => {
    const echo = await startEcho();
    t.after(() => echo.close());
    const h = await startRelay({ host: '127.0.0.1', port: echo.port });
    t.after(() => h.close());
    await echoSoak(h.url, 3, 200);
  });

  it('passes through Debian websockify (seed 3, 200 frames)', LIMIT, async (t) => {
    if (!existsSync(WEBSOCKIFY)) {
      t.skip(`${WEBSOCKIFY} is not installed (apt-get install websockify)`);
      return;
    }
    const echo = await startEcho();
    t.after(() => echo.close());
    const port = await freePort();
    // Its own process group, so the per-connection children it forks go with it.
    const child = spawn(WEBSOCKIFY, [`127.0.0.1:${port}`, `127.0.0.1:${echo.port}`], {
      stdio: 'ignore',
      detached: true,
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    t.after(async () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await exited;
    });
    await waitFor(`websockify listening on ${port}`, () => child.exitCode === null && accepts(port));
    await echoSoak(wsUrl(port), 3, 200);
  });
});
