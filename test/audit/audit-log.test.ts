/**
 * The audit trail on disk (src/audit/audit-log.ts): bounded to two files of 256 KiB after 10,000
 * events with the newest readable, continued after a restart, private (0600), a corrupt or cut-off
 * line skipped without spoiling the next one, a file grown beyond the bound read only in its last
 * 256 KiB, one stable journal line per event at notice priority, CSV quoted and defused, no token
 * in what it keeps; and a real `serve` child with authentication leaves neither its login token nor
 * a VNC password in the trail.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import {
  AUDIT_FILE_MAX_BYTES,
  AUDIT_FILE_NAME,
  AUDIT_MAX_PENDING,
  AUDIT_OLD_FILE_NAME,
  AuditLog,
  auditCsv,
  csvCell,
} from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { createLogger, type LogLevel } from '../../src/log.js';
import { BEARER_PROTOCOL_PREFIX, SCOPE_MANAGE } from '../../src/ctrlx/auth.js';
import { API, RELAY, client, makeTempDir, removeDir, vncServer, type FakeServer } from '../helpers/app.js';
import { spawnServe, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';
import { waitFor } from '../helpers/wait.js';

/** Event number `i` of a session's life, as the relay would report it. */
function event(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  const kinds = ['session-start', 'control-take', 'control-release', 'session-end'] as const;
  return {
    time: new Date(Date.UTC(2026, 11, 1, 0, 0, 0, i)).toISOString(),
    event: kinds[i % kinds.length]!,
    user: `operator-${i % 7}`,
    target: 'press-line-2',
    targetName: 'Press line 2, HMI',
    address: `192.168.1.${i % 250}`,
    sessionId: `s${String(i).padStart(12, '0')}`,
    ...(i % 4 === 3 ? { durationMs: 1000 + i, detail: `refused input ${i % 5}` } : {}),
    ...over,
  };
}

function fileSize(file: string): number {
  return fs.existsSync(file) ? fs.statSync(file).size : 0;
}

/** A logger that keeps its lines (level and text). */
function keepingLogger(): { lines: { level: LogLevel; line: string }[]; logger: ReturnType<typeof createLogger> } {
  const lines: { level: LogLevel; line: string }[] = [];
  return { lines, logger: createLogger({ level: 'debug', timestamps: false, sink: (level, line) => lines.push({ level, line }) }) };
}

describe('audit log', () => {
  let dir: string;
  afterEach(async () => {
    if (dir) await removeDir(dir);
  });

  it('keeps both files within 256 KiB after 10,000 events, the newest readable, and continues after a restart', async () => {
    dir = await makeTempDir('audit');
    const appDir = path.join(dir, 'app');
    const log = new AuditLog({ dir: appDir });
    const N = 10_000;
    // In bursts of 100, each written while the next is recorded: every event reaches the file.
    for (let i = 0; i < N; i++) {
      log.record(event(i));
      if (i % 100 === 99) await log.flush();
    }
    await log.flush();
    assert.equal(log.lost, 0);
    const current = path.join(appDir, AUDIT_FILE_NAME);
    const old = path.join(appDir, AUDIT_OLD_FILE_NAME);
    const sizes = [fileSize(current), fileSize(old)];
    assert.ok(sizes[0]! <= AUDIT_FILE_MAX_BYTES && sizes[1]! <= AUDIT_FILE_MAX_BYTES, `sizes ${sizes}`);
    assert.ok(sizes[1]! > AUDIT_FILE_MAX_BYTES * 0.9, `the older file was filled before it rotated: ${sizes[1]}`);
    assert.deepEqual(fs.readdirSync(appDir).sort(), [AUDIT_OLD_FILE_NAME, AUDIT_FILE_NAME].sort(), 'two files, nothing else');
    for (const f of [current, old]) assert.equal(fs.statSync(f).mode & 0o777, 0o600, `${f} is private`);
    assert.equal(fs.statSync(appDir).mode & 0o777, 0o700);

    const first = await log.page(1, 500);
    assert.equal(first.entries.length, 500);
    assert.equal(first.more, true);
    assert.deepEqual(first.entries[0], event(N - 1), 'newest first, exactly as recorded');
    assert.deepEqual(first.entries[499], event(N - 500));
    const all = await log.entries();
    const kept = all.length;
    assert.ok(kept > 1000 && kept < N, `kept ${kept}`);
    // Every kept entry is one of the newest, in order, none missing in between.
    for (const [k, e] of all.entries()) assert.equal(e.sessionId, event(N - 1 - k).sessionId);
    const last = await log.page(Math.ceil(kept / 500), 500);
    assert.equal(last.more, false);
    assert.equal(last.entries.at(-1)?.sessionId, all.at(-1)?.sessionId);

    // A restart: a new log over the same folder reads the same trail and appends to it.
    const restarted = new AuditLog({ dir: appDir });
    assert.deepEqual((await restarted.page(1, 500)).entries, first.entries);
    restarted.record(event(N));
    const after = await restarted.page(1, 2);
    assert.deepEqual(after.entries, [event(N), event(N - 1)]);
    assert.ok(fileSize(current) <= AUDIT_FILE_MAX_BYTES && fileSize(old) <= AUDIT_FILE_MAX_BYTES);

    recordReliability({
      table: 'load',
      name: 'audit trail bound',
      tried: `${N} audit events recorded in bursts of 100 (rotation at 256 KiB), then a new audit log over the same folder (restart)`,
      outcome: `none lost; audit.log ${(sizes[0]! / 1024).toFixed(1)} KiB + audit.1.log ${(sizes[1]! / 1024).toFixed(1)} KiB (bound 256 KiB each, 0600); newest ${kept} of ${N} readable in order, newest first; the restarted log read the same entries and appended after them`,
    });
  });

  it('skips a corrupt line and a cut-off last line, and the next entry still reads whole', async () => {
    dir = await makeTempDir('audit');
    const file = path.join(dir, AUDIT_FILE_NAME);
    const good = [event(1), event(2)].map((e) => JSON.stringify(e));
    // A valid line, garbage, another valid line, JSON that is not an entry, and a line cut off by a power loss.
    fs.writeFileSync(file, `${good[0]}\nnot json at all\n${good[1]}\n{"time":"x"}\n${JSON.stringify(event(3)).slice(0, 40)}`, { mode: 0o600 });
    const { lines, logger } = keepingLogger();
    const log = new AuditLog({ dir, logger });
    assert.deepEqual(await log.entries(), [event(2), event(1)]);
    assert.ok(lines.some((l) => l.level === 'warn' && /skipped unreadable lines/.test(l.line) && /lines=3/.test(l.line)), JSON.stringify(lines));
    log.record(event(4));
    assert.deepEqual(await log.entries(), [event(4), event(2), event(1)], 'the new entry is not glued to the cut-off line');
  });

  it('reads only the last 256 KiB of a file that grew beyond the bound, and rotates it at the next event', async () => {
    dir = await makeTempDir('audit');
    const file = path.join(dir, AUDIT_FILE_NAME);
    // 1 MiB of entries written by something else (an older version, a copy).
    const lines: string[] = [];
    let bytes = 0;
    for (let i = 0; bytes < 1024 * 1024; i++) {
      const line = `${JSON.stringify(event(i))}\n`;
      lines.push(line);
      bytes += line.length;
    }
    fs.writeFileSync(file, lines.join(''), { mode: 0o644 });
    const log = new AuditLog({ dir });
    const entries = await log.entries();
    assert.ok(entries.length < lines.length / 3, `read ${entries.length} of ${lines.length}`);
    assert.equal(entries[0]!.sessionId, event(lines.length - 1).sessionId);
    const readBytes = entries.reduce((n, e) => n + JSON.stringify(e).length + 1, 0);
    assert.ok(readBytes <= AUDIT_FILE_MAX_BYTES, `read ${readBytes} bytes`);
    log.record(event(lines.length));
    await log.flush();
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'tightened to 0600');
    assert.ok(fileSize(file) <= AUDIT_FILE_MAX_BYTES);
    assert.equal((await log.page(1, 1)).entries[0]!.sessionId, event(lines.length).sessionId);
  });

  it('writes one stable journal line per event at notice priority, values escaped, and keeps no token or control character', async () => {
    dir = await makeTempDir('audit');
    const token = makeToken('mallory', [SCOPE_MANAGE]);
    const { lines, logger } = keepingLogger();
    const log = new AuditLog({ dir, logger });
    log.record({
      time: '2026-12-01T10:00:00.000Z',
      event: 'session-end',
      user: 'Anna Schmidt',
      target: 'hmi',
      targetName: 'Press "2"\nline',
      address: '10.0.0.7',
      sessionId: 'AbC123dEf456gh',
      durationMs: 61234.4,
      detail: `refused input 3; Bearer ${token}\u001b[31m`,
    });
    await log.flush();
    const notice = lines.filter((l) => l.level === 'notice');
    assert.equal(notice.length, 1);
    assert.equal(
      notice[0]!.line,
      'notice audit event=session-end user="Anna Schmidt" target=hmi targetName="Press \\"2\\" line" address=10.0.0.7 sessionId=AbC123dEf456gh durationMs=61234 detail="refused input 3; Bearer [token] [31m"',
    );
    const text = fs.readFileSync(path.join(dir, AUDIT_FILE_NAME), 'utf8');
    assert.equal(text.split('\n').length, 2, 'one line');
    assert.ok(!text.includes(token) && !text.includes(token.split('.')[1]!), 'no token in the file');
    assert.ok(!lines.some((l) => l.line.includes(token.split('.')[1]!)), 'no token in the journal');
    const [e] = await log.entries();
    assert.equal(e!.targetName, 'Press "2" line');
    assert.equal(e!.durationMs, 61234);
  });

  it('bounds the journal copy under churn (first 10 per event and target, then one counted line) while the file keeps every event', async () => {
    dir = await makeTempDir('audit');
    const { lines, logger } = keepingLogger();
    const log = new AuditLog({ dir, logger });
    for (let i = 0; i < 500; i++) log.record(event(i, { event: 'session-start', target: 'hmi' }));
    for (let i = 0; i < 3; i++) log.record(event(i, { event: 'session-start', target: 'other' }));
    await log.flush();
    const notice = lines.filter((l) => l.level === 'notice').map((l) => l.line);
    assert.equal(notice.filter((l) => l.startsWith('notice audit event=session-start') && l.includes('target=hmi ')).length, 10, 'ten in full for hmi');
    assert.equal(notice.filter((l) => l.includes('target=other ')).length, 3, 'the other target is not held back by hmi');
    const summary = notice.filter((l) => l.startsWith('notice audit events count='));
    assert.equal(summary.length, 1, notice.slice(-3).join('\n'));
    assert.match(summary[0]!, /^notice audit events count=490 event=session-start target=hmi file=\S+ within=10s$/);
    assert.equal((await log.entries()).length, 503, 'every event in the file');
  });

  it('survives a folder it cannot write: record() never throws, the failure is logged once, writing resumes', async () => {
    dir = await makeTempDir('audit');
    const blocked = path.join(dir, 'app');
    fs.writeFileSync(blocked, 'a file where the folder should be');
    const { lines, logger } = keepingLogger();
    const log = new AuditLog({ dir: blocked, logger });
    log.record(event(1));
    await log.flush();
    log.record(event(2));
    await log.flush();
    assert.equal(log.lost, 2);
    assert.equal(lines.filter((l) => l.level === 'error' && /cannot write the audit trail/.test(l.line)).length, 1, JSON.stringify(lines));
    fs.rmSync(blocked);
    log.record(event(3));
    assert.deepEqual(await log.entries(), [event(3)]);
    assert.ok(lines.some((l) => /the audit trail is written again/.test(l.line)));
  });

  it('bounds the queue: a burst beyond it drops the oldest events and counts them', async () => {
    dir = await makeTempDir('audit');
    const log = new AuditLog({ dir });
    for (let i = 0; i < AUDIT_MAX_PENDING + 10; i++) log.record(event(i));
    assert.equal(log.lost, 10);
    const all = await log.entries();
    assert.equal(all[0]!.sessionId, event(AUDIT_MAX_PENDING + 9).sessionId, 'the newest made it');
    log.record(event(AUDIT_MAX_PENDING + 10));
    await log.flush();
    assert.equal(log.lost, 10, 'events recorded while the writer keeps up are not lost');
  });

  it('exports CSV with RFC 4180 quoting and cells a spreadsheet would run as a formula defused', () => {
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('two\nlines'), '"two\nlines"');
    assert.equal(csvCell('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
    assert.equal(csvCell('+1'), "'+1");
    assert.equal(csvCell('-2+3'), "'-2+3");
    assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
    assert.equal(csvCell('\tcmd'), "'\tcmd");
    assert.equal(csvCell(1234), '1234');
    assert.equal(csvCell(undefined), '');
    const csv = auditCsv([event(3, { user: '=cmd|" /C calc"!A0', detail: 'a, b' }), event(0)]);
    assert.equal(
      csv,
      'time,event,user,target,targetName,address,sessionId,durationMs,detail\r\n' +
        `2026-12-01T00:00:00.003Z,session-end,"'=cmd|"" /C calc""!A0",press-line-2,"Press line 2, HMI",192.168.1.3,s000000000003,1003,"a, b"\r\n` +
        '2026-12-01T00:00:00.000Z,session-start,operator-0,press-line-2,"Press line 2, HMI",192.168.1.0,s000000000000,,\r\n',
    );
  });

  describe('a serve child with authentication', () => {
    let idm: FakeIdm;
    let vnc: FakeServer;
    let p: ServeProcess | undefined;
    const password = 'Vnc-Pw-7r1x';
    const token = makeToken('auditor', [SCOPE_MANAGE]);
    before(async () => {
      idm = await startFakeIdm();
      idm.valid.add(token);
      vnc = await vncServer('A');
    });
    after(async () => {
      await idm.close();
      await vnc.close();
    });
    afterEach(async () => {
      await p?.stop('SIGKILL');
      p = undefined;
    });

    it('leaves neither the login token nor a VNC password in the audit files or the audit journal lines', async () => {
      dir = await makeTempDir('audit');
      p = await spawnServe(['--listen', '127.0.0.1:0', '--data', dir, '--auth', 'ctrlx', '--idm-url', idm.url]);
      const http = client(p.port!, { Authorization: `Bearer ${token}` });
      const put = await http.put(`${API}/config`, { targets: [{ id: 'hmi', name: 'HMI', host: '127.0.0.1', port: vnc.port, password }] });
      assert.equal(put.status, 200, put.text);
      // A viewer session with the token in its subprotocol (as the viewer page sends it), then its end.
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}${RELAY}?target=hmi`, ['binary', `${BEARER_PROTOCOL_PREFIX}${token}`]);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.close();
      await waitFor('the session to end', async () => (await http.status()).relay.totals.sessionsOpen === 0);
      assert.equal((await http.get(`${API}/audit`)).status, 200);

      // Events whose fields are clean, over the same folder: the app's own records go alongside.
      const appDir = path.join(dir, 'app');
      const log = new AuditLog({ dir: appDir });
      for (let i = 0; i < 4; i++) log.record(event(i, { user: 'auditor' }));
      await log.flush();
      p.child.kill('SIGTERM');
      await p.exited;

      const files = [AUDIT_FILE_NAME, AUDIT_OLD_FILE_NAME].map((f) => path.join(appDir, f)).filter((f) => fs.existsSync(f));
      assert.ok(files.length > 0, 'the trail exists');
      const secretParts = [token, token.split('.')[1]!, token.split('.')[2]!, password];
      for (const f of files) {
        const text = fs.readFileSync(f, 'utf8');
        for (const s of secretParts) assert.ok(!text.includes(s), `${path.basename(f)} holds no ${s === password ? 'password' : 'token'}`);
        for (const line of text.split('\n').filter(Boolean)) {
          assert.deepEqual(
            Object.keys(JSON.parse(line)).filter((k) => !['time', 'event', 'user', 'target', 'targetName', 'address', 'sessionId', 'durationMs', 'detail'].includes(k)),
            [],
            'only the audit fields',
          );
        }
      }
      const journal = [...p.stdout, ...p.stderr].filter((l) => /\baudit event=/.test(l));
      for (const l of journal) for (const s of secretParts) assert.ok(!l.includes(s), `journal line holds a secret: ${l}`);
      assert.ok(fs.readFileSync(path.join(appDir, 'vnc-passwords.json'), 'utf8').includes(password), 'the password was stored (in its own file)');
    });
  });
});
