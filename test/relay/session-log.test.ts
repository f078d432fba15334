/**
 * The session log under churn: the first lines of a kind per interval in full, the rest counted
 * into one summary line per target and end kind; nothing is lost.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { SessionLog } from '../../src/relay/session-log.js';

function recorder() {
  const lines: string[] = [];
  return { lines, log: createLogger({ sink: (_level, line) => lines.push(line), timestamps: false }) };
}

describe('SessionLog', () => {
  it('writes 3 lines (burst 3) per target and kind in full, then one summary per key with the count', () => {
    const { lines, log } = recorder();
    const sessions = new SessionLog(log, { intervalMs: 60_000, burst: 3 });
    for (let i = 0; i < 500; i++) {
      sessions.start('10.0.0.5:5900', { id: i });
      sessions.end('10.0.0.5:5900', i % 2 ? 'viewer-gone' : 'viewer-closed', { id: i });
    }
    sessions.end('10.0.0.6:5900', 'target-closed', { id: 999 });
    assert.equal(lines.length, 3 + 3 + 3 + 1);
    sessions.flush();
    assert.deepEqual(lines.slice(10), [
      'info  sessions started count=497 target=10.0.0.5:5900 within=60s',
      'info  sessions ended count=247 target=10.0.0.5:5900 kind=viewer-closed within=60s',
      'info  sessions ended count=247 target=10.0.0.5:5900 kind=viewer-gone within=60s',
    ]);
    // A new interval starts afresh.
    sessions.end('10.0.0.5:5900', 'viewer-gone', { id: 1000 });
    assert.equal(lines.at(-1), 'info  session end id=1000');
    sessions.flush();
  });

  it('counts failed VNC logins per target and kind the same way, as warnings', () => {
    const { lines, log } = recorder();
    const sessions = new SessionLog(log, { intervalMs: 60_000, burst: 2 });
    for (let i = 0; i < 7; i++) sessions.handshakeFailed('h:1', 'lockout', { id: i });
    sessions.flush();
    assert.deepEqual(lines, [
      'warn  vnc handshake failed id=0',
      'warn  vnc handshake failed id=1',
      'warn  vnc handshakes failed count=5 target=h:1 kind=lockout within=60s',
    ]);
  });

  it('writes the summary at once when maxCount lines are counted', () => {
    const { lines, log } = recorder();
    const sessions = new SessionLog(log, { intervalMs: 60_000, burst: 1, maxCount: 10 });
    for (let i = 0; i < 25; i++) sessions.end('h:1', 'viewer-gone', { id: i });
    assert.deepEqual(lines.slice(1), [
      'info  sessions ended count=10 target=h:1 kind=viewer-gone within=60s',
      'info  sessions ended count=10 target=h:1 kind=viewer-gone within=60s',
    ]);
    sessions.flush();
    assert.equal(lines.at(-1), 'info  sessions ended count=4 target=h:1 kind=viewer-gone within=60s');
  });
});
