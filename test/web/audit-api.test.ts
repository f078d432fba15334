/**
 * `GET /ctrlx-novnc/api/v1/audit` on a real `serve` child with ctrlX authentication (fake identity
 * manager): the manage scope (and the ctrlX administrator) get the trail newest first as JSON pages
 * or as a CSV download; watch and operate get 403, no login 401; `page` and `limit` are checked and
 * a bad one is named in the Problem answer. The trail is one a previous run left in the private
 * app data folder: it survives the restart.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { SCOPE_ADMIN, SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { API, assertProblem, makeTempDir, removeDir, request } from '../helpers/app.js';
import { spawnServe, type ServeProcess } from '../helpers/cli.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';

/** The operate role's scope (issue 13): may take control of a screen, not read the trail. */
const SCOPE_OPERATE = 'ctrlx-novnc.web.screens.rw';
const N = 12;

function event(i: number): AuditEvent {
  return {
    time: new Date(Date.UTC(2026, 11, 1, 8, 0, i)).toISOString(),
    event: i % 2 === 0 ? 'session-start' : 'session-end',
    // One user name a spreadsheet would run as a formula.
    user: i === 5 ? '=HYPERLINK("http://evil.example","x")' : `user${i}`,
    target: 'hmi',
    targetName: 'Press, line 2',
    address: `10.0.0.${i}`,
    sessionId: `session-${String(i).padStart(4, '0')}`,
    ...(i % 2 === 1 ? { durationMs: i * 1000, detail: `refused input ${i}` } : {}),
  };
}

describe('audit API', () => {
  let idm: FakeIdm;
  let root: string;
  let p: ServeProcess;
  const tokens = {
    manage: makeToken('manager', [SCOPE_MANAGE]),
    admin: makeToken('admin', [SCOPE_ADMIN]),
    watch: makeToken('watcher', [SCOPE_VIEW]),
    operate: makeToken('operator', [SCOPE_VIEW, SCOPE_OPERATE]),
  };
  const get = (url: string, who: keyof typeof tokens | null, headers: Record<string, string> = {}) =>
    request(p.port!, 'GET', url, { headers: { ...(who ? { Authorization: `Bearer ${tokens[who]}` } : {}), ...headers } });

  before(async () => {
    idm = await startFakeIdm();
    for (const t of Object.values(tokens)) idm.valid.add(t);
    root = await makeTempDir('audit-api');
    // The trail a previous run left behind.
    const previous = new AuditLog({ dir: path.join(root, 'app') });
    for (let i = 0; i < N; i++) previous.record(event(i));
    await previous.flush();
    p = await spawnServe(['--listen', '127.0.0.1:0', '--data', root, '--auth', 'ctrlx', '--idm-url', idm.url]);
  });
  after(async () => {
    await p?.stop('SIGKILL');
    await idm.close();
    await removeDir(root);
  });

  it('gives the manage scope the trail as JSON, newest first, paged, not cached', async () => {
    const res = await get(`${API}/audit`, 'manage');
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['entries', 'limit', 'more', 'page']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 50);
    assert.equal(body.more, false);
    assert.deepEqual(
      body.entries,
      Array.from({ length: N }, (_, k) => event(N - 1 - k)),
    );

    const second = (await get(`${API}/audit?page=2&limit=5`, 'manage')).json();
    assert.deepEqual(second.entries.map((e: AuditEvent) => e.sessionId), [6, 5, 4, 3, 2].map((i) => event(i).sessionId));
    assert.equal(second.more, true);
    const third = (await get(`${API}/audit?page=3&limit=5`, 'manage')).json();
    assert.deepEqual(third.entries.map((e: AuditEvent) => e.sessionId), [1, 0].map((i) => event(i).sessionId));
    assert.equal(third.more, false);
    const beyond = (await get(`${API}/audit?page=9&limit=5`, 'manage')).json();
    assert.deepEqual(beyond, { entries: [], page: 9, limit: 5, more: false });
    // The ctrlX administrator may read it too.
    assert.equal((await get(`${API}/audit?limit=1`, 'admin')).json().entries[0].sessionId, event(N - 1).sessionId);
  });

  it('answers Accept: text/csv with a CSV download of the whole trail (or the page asked for), formulas defused', async () => {
    const res = await get(`${API}/audit`, 'manage', { Accept: 'text/csv' });
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['content-type']), /^text\/csv; charset=utf-8/);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="audit-\d{4}-\d{2}-\d{2}\.csv"$/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const rows = res.text.split('\r\n');
    assert.equal(rows[0], 'time,event,user,target,targetName,address,sessionId,durationMs,detail');
    assert.equal(rows.at(-1), '', 'ends with CRLF');
    assert.equal(rows.length, N + 2);
    assert.equal(rows[1], '2026-12-01T08:00:11.000Z,session-end,user11,hmi,"Press, line 2",10.0.0.11,session-0011,11000,refused input 11');
    assert.equal(rows[N], '2026-12-01T08:00:00.000Z,session-start,user0,hmi,"Press, line 2",10.0.0.0,session-0000,,');
    assert.equal(
      rows.find((r) => r.includes('session-0005')),
      `2026-12-01T08:00:05.000Z,session-end,"'=HYPERLINK(""http://evil.example"",""x"")",hmi,"Press, line 2",10.0.0.5,session-0005,5000,refused input 5`,
    );
    const paged = await get(`${API}/audit?page=2&limit=3`, 'manage', { Accept: 'text/csv' });
    assert.deepEqual(
      paged.text.split('\r\n').slice(1, -1).map((r) => /session-\d{4}/.exec(r)?.[0]),
      [8, 7, 6].map((i) => event(i).sessionId),
    );
  });

  it('refuses the watch and operate roles with 403 and a request without a login with 401', async () => {
    for (const who of ['watch', 'operate'] as const) {
      assertProblem(await get(`${API}/audit`, who), 403, { type: 'urn:ctrlx-novnc:problem:forbidden' });
      assertProblem(await get(`${API}/audit`, who, { Accept: 'text/csv' }), 403);
    }
    assertProblem(await get(`${API}/audit`, null), 401);
  });

  it('checks page and limit (limit 1..500) and names the parameter at fault', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=2.5', 'limit'],
      ['limit=1&limit=2', 'limit'],
      ['page=0', 'page'],
      ['page=x', 'page'],
    ] as const) {
      const body = assertProblem(await get(`${API}/audit?${query}`, 'manage'), 400, { type: 'urn:ctrlx-novnc:problem:validation-failed', field });
      assert.match(body.detail, new RegExp(`${field}: must be a whole number from 1 to`), query);
      assert.deepEqual(
        body.errors.map((e: { field: string }) => e.field),
        [field],
      );
    }
    const both = assertProblem(await get(`${API}/audit?page=0&limit=900`, 'manage', { Accept: 'text/csv' }), 400);
    assert.deepEqual(
      both.errors.map((e: { field: string }) => e.field),
      ['page', 'limit'],
    );
    assert.equal((await get(`${API}/audit?limit=500`, 'manage')).status, 200);
  });
});
