/**
 * `PUT api/v1/config` against the real server: each field's validation as Problem JSON naming the
 * field, unknown fields, optional `version`, body size, content type and malformed JSON. Nothing
 * invalid ever reaches the file.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { API, assertProblem, client, config, startTestApp, target, type TestApp } from '../helpers/app.js';

const VALIDATION = 'urn:ctrlx-novnc:problem:validation-failed';

describe('PUT api/v1/config', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  const good = config(target('press', 5900, '192.168.1.50', 'Press line'));

  before(async () => {
    // Well over a hundred PUTs in a few hundred ms: above the default 60 changes a minute (see rate-limit.test.ts).
    t = await startTestApp({ rateLimits: { changes: { limit: 10_000 } } });
    http = client(t.port);
    const res = await http.put(`${API}/config`, good);
    assert.equal(res.status, 200);
  });
  after(() => t.close());

  /** PUTs `body` and expects a 400 validation problem naming `field` and matching `message`. */
  async function rejected(body: unknown, field: string, message: RegExp): Promise<void> {
    const res = await http.put(`${API}/config`, body);
    const p = assertProblem(res, 400, { type: VALIDATION, field });
    assert.ok(Array.isArray(p.errors) && p.errors.length > 0, 'errors lists every problem');
    const mine = p.errors.find((e: { field: string }) => e.field === field);
    assert.ok(mine, `errors has an entry for ${field}: ${JSON.stringify(p.errors)}`);
    assert.match(mine.message, message);
    assert.match(p.detail, new RegExp(field.replace(/[[\].]/g, '\\$&')));
    // Nothing was applied or written.
    assert.deepEqual(await http.config(), good);
    assert.deepEqual(JSON.parse(fs.readFileSync(t.file, 'utf8')), good);
  }

  describe('host', () => {
    for (const host of ['192.168.1.50', '10.0.0.1', '::1', 'fe80::1', '2001:db8::42', 'hmi', 'press-01.plant.example', 'a.b-c.d1', 'localhost']) {
      it(`accepts ${host}`, async () => {
        const res = await http.put(`${API}/config`, { targets: [target('x', 5900, host)] });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.json().targets[0].host, host);
        await http.put(`${API}/config`, good);
      });
    }
    const bad: [string, unknown][] = [
      ['empty', ''],
      ['blank', '   '],
      ['with a space', 'my host'],
      ['with a scheme', 'http://10.0.0.1'],
      ['with a port', '10.0.0.1:5900'],
      ['with an underscore', 'bad_name.example'],
      ['starting with a hyphen', '-host'],
      ['a label over 63 chars', `${'a'.repeat(64)}.example`],
      ['over 253 chars', `${`${'a'.repeat(60)}.`.repeat(5)}example`],
      ['a bracketed IPv6', '[::1]'],
      ['not a string', 42],
    ];
    for (const [what, host] of bad) {
      it(`rejects a host ${what}`, () => rejected({ targets: [{ id: 'x', name: 'X', host, port: 5900 }] }, 'targets[0].host', /^Host: /));
    }
    // Four dot-separated numbers are an IPv4 address or nothing: not a host name.
    for (const host of ['192.168.1.300', '256.1.1.1', '10.0.0.01']) {
      it(`rejects ${host} as an invalid IPv4 address`, () =>
        rejected({ targets: [{ id: 'x', name: 'X', host, port: 5900 }] }, 'targets[0].host', /^Host: four numbers with dots must be an IPv4 address, each number from 0 to 255/));
    }
  });

  describe('port', () => {
    for (const port of [1, 5900, 65535]) {
      it(`accepts ${port}`, async () => {
        const res = await http.put(`${API}/config`, { targets: [target('x', port)] });
        assert.equal(res.status, 200, res.text);
        await http.put(`${API}/config`, good);
      });
    }
    const bad: [unknown, RegExp][] = [
      [0, /^Port: enter a number from 1 to 65535$/],
      [65536, /^Port: enter a number from 1 to 65535$/],
      [-1, /^Port: enter a number from 1 to 65535$/],
      [5900.5, /^Port: enter a number from 1 to 65535$/],
      ['5900', /^Port: enter a number from 1 to 65535$/],
      [null, /^Port: enter a number from 1 to 65535$/],
    ];
    for (const [port, message] of bad) {
      it(`rejects ${JSON.stringify(port)}`, () => rejected({ targets: [{ id: 'x', name: 'X', host: '10.0.0.1', port }] }, 'targets[0].port', message));
    }
  });

  describe('id', () => {
    it('rejects a duplicate id (case-insensitively), naming the later one', () =>
      rejected({ targets: [target('press', 5900), target('Press', 5901)] }, 'targets[1].id', /^ID: "Press" is already used by target 1$/));
    it('rejects an empty id', () => rejected({ targets: [{ id: '', name: 'X', host: '10.0.0.1', port: 5900 }] }, 'targets[0].id', /^ID: use 1 to 32/));
    it('rejects an id with odd characters', () => rejected({ targets: [{ id: 'a b', name: 'X', host: '10.0.0.1', port: 5900 }] }, 'targets[0].id', /^ID: use 1 to 32/));
    it('rejects an id over 32 characters', () => rejected({ targets: [{ id: 'a'.repeat(33), name: 'X', host: '10.0.0.1', port: 5900 }] }, 'targets[0].id', /^ID: use 1 to 32/));
    it('rejects a missing id', () => rejected({ targets: [{ name: 'X', host: '10.0.0.1', port: 5900 }] }, 'targets[0].id', /id must be a string/));
  });

  describe('name', () => {
    it('rejects an empty name', () => rejected({ targets: [{ id: 'x', name: '', host: '10.0.0.1', port: 5900 }] }, 'targets[0].name', /^Name: enter a name/));
    it('rejects a blank name', () => rejected({ targets: [{ id: 'x', name: '  \t ', host: '10.0.0.1', port: 5900 }] }, 'targets[0].name', /^Name: enter a name/));
    it('rejects a name over 64 characters', () => rejected({ targets: [{ id: 'x', name: 'n'.repeat(65), host: '10.0.0.1', port: 5900 }] }, 'targets[0].name', /at most 64/));
    it('accepts a name of exactly 64 characters and trims names', async () => {
      const res = await http.put(`${API}/config`, { targets: [{ id: 'x', name: ` ${'n'.repeat(64)} `, host: '10.0.0.1', port: 5900 }] });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().targets[0].name, 'n'.repeat(64));
      await http.put(`${API}/config`, good);
    });
  });

  describe('shape', () => {
    it('rejects an unknown top-level field, naming it', () => rejected({ targets: [], colour: 'red' }, 'colour', /unknown field "colour"/));
    it('rejects an unknown field in a target, naming it', () =>
      rejected({ targets: [{ ...target('x', 5900), colour: 'red' }] }, 'targets[0].colour', /unknown field "colour"/));
    it('rejects a wrong version', () => rejected({ version: 2, targets: [] }, 'version', /version must be 1/));
    it('rejects targets that are not a list', () => rejected({ targets: {} }, 'targets', /must be a list/));
    it('rejects more than 32 targets', () =>
      rejected({ targets: Array.from({ length: 33 }, (_, i) => target(`t${i}`, 5900 + i)) }, 'targets', /at most 32/));
    it('rejects a JSON array as the body', () => rejected([], '(root)', /./));

    it('accepts a body without version and answers with the stored configuration', async () => {
      const res = await http.put(`${API}/config`, { targets: [target('a', 5901), target('b', 5902, '::1')] });
      assert.equal(res.status, 200, res.text);
      const expected = config(target('a', 5901), target('b', 5902, '::1'));
      assert.deepEqual(res.json(), { version: 1, targets: expected.targets.map((x) => ({ ...x, passwordSet: false })), passwordsCleared: [] });
      assert.deepEqual(await http.config(), expected);
      assert.deepEqual(JSON.parse(fs.readFileSync(t.file, 'utf8')), expected);
      await http.put(`${API}/config`, good);
    });

    it('accepts an empty target list', async () => {
      const res = await http.put(`${API}/config`, { version: 1, targets: [] });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.json(), { ...config(), passwordsCleared: [] });
      await http.put(`${API}/config`, good);
    });

    it('lists every invalid field, the first one in `field`', async () => {
      const res = await http.put(`${API}/config`, { targets: [{ id: 'x', name: '', host: 'bad host', port: 0 }] });
      const p = assertProblem(res, 400, { field: 'targets[0].name' });
      assert.deepEqual(
        p.errors.map((e: { field: string }) => e.field).sort(),
        ['targets[0].host', 'targets[0].name', 'targets[0].port'],
      );
    });
  });

  describe('transport', () => {
    it('answers 413 Problem JSON for a body over the limit', async () => {
      const body = JSON.stringify({ targets: [{ ...target('x', 5900), name: 'n'.repeat(20_000) }] });
      const res = await http.put(`${API}/config`, body, { headers: { 'Content-Type': 'application/json' } });
      assertProblem(res, 413, { type: 'urn:ctrlx-novnc:problem:payload-too-large' });
      assert.deepEqual(await http.config(), good);
    });

    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      it(`answers 415 Problem JSON for Content-Type ${type}`, async () => {
        const res = await http.put(`${API}/config`, JSON.stringify({ targets: [] }), { headers: { 'Content-Type': type } });
        assertProblem(res, 415, { type: 'urn:ctrlx-novnc:problem:unsupported-media-type' });
        assert.deepEqual(await http.config(), good);
      });
    }

    it('answers 400 Problem JSON for malformed JSON', async () => {
      const res = await http.put(`${API}/config`, '{"targets": [', { headers: { 'Content-Type': 'application/json' } });
      assertProblem(res, 400, { type: 'urn:ctrlx-novnc:problem:bad-request', detail: /not valid JSON/ });
      assert.deepEqual(await http.config(), good);
    });

    it('answers 400 Problem JSON for a PUT without a body', async () => {
      const res = await http.put(`${API}/config`);
      assertProblem(res, 400);
    });

    it('refuses a cross-origin PUT with 403 Problem JSON', async () => {
      const res = await http.put(`${API}/config`, config(), { headers: { Origin: 'http://evil.example' } });
      assertProblem(res, 403, { type: 'urn:ctrlx-novnc:problem:forbidden' });
      assert.deepEqual(await http.config(), good);
    });

    it('accepts a same-origin PUT', async () => {
      const res = await http.put(`${API}/config`, good, { headers: { Origin: t.origin } });
      assert.equal(res.status, 200, res.text);
    });

    it('answers unknown API paths with 404 Problem JSON', async () => {
      assertProblem(await http.get(`${API}/nope`), 404, { type: 'urn:ctrlx-novnc:problem:not-found' });
    });
  });
});
