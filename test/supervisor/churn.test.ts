/**
 * Session limits under open/drop churn, with the real `serve` child: a client that opens relay
 * upgrades and drops each one at once must not make the app hold more connections to a VNC
 * server than the per-target limit. A session keeps its place until both its WebSocket and its
 * TCP connection to the target are closed; its log lines are aggregated, so the log does not grow
 * with the number of sessions.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { RELAY, config, target } from '../helpers/app.js';
import { GREETING, assertNoSessions, startAppChild } from '../helpers/app-child.js';
import { rssKiB } from '../helpers/proc.js';
import { recordReliability } from '../helpers/reliability.js';
import { startTarget } from '../helpers/targets.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A VNC-looking target that counts connections open at once: greets after `greetMs` (a busy
 * server), reads, answers the relay's FIN with its own. `max` is the most it ever held at the same time.
 */
async function countingTarget(greetMs: number) {
  const counts = { open: 0, max: 0, accepted: 0 };
  const t = await startTarget((socket) => {
    counts.accepted++;
    counts.open++;
    counts.max = Math.max(counts.max, counts.open);
    const timer = setTimeout(() => socket.write(GREETING), greetMs);
    socket.resume();
    socket.once('close', () => clearTimeout(timer));
    socket.on('end', () => socket.end());
    socket.once('close', () => counts.open--);
  });
  return { ...t, counts };
}

/**
 * One upgrade on a raw socket, dropped (destroyed, no close frame) as soon as the answer's first
 * bytes arrive: `101` or the refusal's status. Resolves with the status.
 */
function openAndDrop(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let head = '';
    const done = (status: number): void => {
      socket.destroy();
      resolve(status);
    };
    socket.on('error', () => done(0));
    socket.on('close', () => done(0));
    socket.on('connect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
          'Sec-WebSocket-Protocol: binary\r\n\r\n',
      );
    });
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) done(Number(m[1]));
    });
  });
}

const UPGRADES = 2000;
const PARALLEL = 8;
const PER_TARGET = 16;
/** Connections the target may see above the limit: none are opened outside a session (no probes run). */
const MARGIN = 0;
/** The target greets this late, so connections live long enough to pile up. */
const GREET_MS = 200;

describe('session limits under open/drop churn', () => {
  it(`${UPGRADES} upgrades opened and dropped at once, ${PARALLEL} in parallel: the target never holds more than ${PER_TARGET} connections; memory and log lines stay bounded`, async (t) => {
    const vnc = await countingTarget(GREET_MS);
    t.after(() => vnc.close());
    const app = await startAppChild({ initial: config(target('a', vnc.port)) });
    t.after(() => app.cleanup());
    const path = `${RELAY}?target=a`;
    // Warm-up, then the baseline of memory and of log lines.
    let warmAdmitted = 0;
    for (let i = 0; i < 20; i++) if ((await openAndDrop(app.port, path)) === 101) warmAdmitted++;
    await assertNoSessions(app);
    const rssBefore = rssKiB(app.pid);
    const linesBefore = app.p.stdout.length + app.p.stderr.length;
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < UPGRADES) {
          next++;
          const status = await openAndDrop(app.port, path);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    await assertNoSessions(app, 60_000);
    await waitFor('the target to see every connection closed', () => vnc.counts.open === 0, { timeoutMs: 30_000 });
    const rssAfter = rssKiB(app.pid);
    const admitted = statuses.get(101) ?? 0;
    // Every session is accounted for: in full or in a summary line at the end of its interval.
    const ended = (): number => {
      let n = 0;
      for (const line of app.p.stdout) {
        if (/ session end /.test(line)) n++;
        const summary = / sessions ended count=(\d+) /.exec(line);
        if (summary) n += Number(summary[1]);
      }
      return n;
    };
    await waitFor('every session end in the log, one by one or counted', () => ended() === warmAdmitted + admitted, { timeoutMs: 30_000 });
    const lines = app.p.stdout.length + app.p.stderr.length - linesBefore;
    const summary =
      `target max ${vnc.counts.max} at once, ${vnc.counts.accepted} accepted; answers ${JSON.stringify(Object.fromEntries(statuses))}; ` +
      `RSS ${Math.round(rssBefore / 1024)} → ${Math.round(rssAfter / 1024)} MB; ${lines} log lines`;
    t.diagnostic(summary);
    assert.ok(admitted > 0, `some upgrades were admitted: ${summary}`);
    assert.ok(vnc.counts.max <= PER_TARGET + MARGIN, `the target held at most ${PER_TARGET} connections at once: ${summary}`);
    assert.ok(rssAfter - rssBefore < 40 * 1024, `RSS grew by less than 40 MB: ${summary}`);
    // Aggregated: a few lines per target, kind and interval, not two per session.
    assert.ok(lines <= 100, `at most 100 log lines for ${admitted} sessions: ${summary}`);
    recordReliability({
      table: 'load',
      name: 'open/drop churn against the per-target limit',
      tried: `${UPGRADES} relay upgrades to one target, each dropped as soon as its answer arrived, ${PARALLEL} at a time (real serve child, limit ${PER_TARGET} per target; the target greets after ${GREET_MS} ms)`,
      outcome:
        `${admitted} admitted, the rest refused with 503; the target held at most ${vnc.counts.max} connections at once ` +
        `(${vnc.counts.accepted} in all); RSS ${Math.round(rssBefore / 1024)} → ${Math.round(rssAfter / 1024)} MB; ${lines} log lines (aggregated)`,
    });
  });
});
