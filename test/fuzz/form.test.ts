/**
 * Fuzzing the settings form of a real `serve` process: urlencoded posts to `/ctrlx-novnc/config/`
 * with random and mutated rows (ids, names, hosts, ports, passwords, "remove password"), fields
 * repeated, missing or out of step, huge values around the 32 KiB limit, too many fields, the
 * buttons (save, add, remove, test connection) with odd values, missing, wrong and repeated CSRF
 * tokens, foreign origins, other content types and charsets, and raw garbage. Each answer is
 * predicted from the post: a 303 to `./?m=saved` (with `&cleared=` naming moved targets whose
 * password was cleared) when the rows make a valid configuration (which is then what the API and
 * config.json hold), a page with the form (200) for add/remove/probe,
 * otherwise a 4xx page with an error message; never a 5xx, never a typed password echoed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { API, PREFIX, closedPort, csrfToken, vncServer, type FakeServer } from '../helpers/app.js';
import {
  Histogram,
  NASTY_STRINGS,
  Rng,
  clip,
  fuzzBudget,
  fuzzSeed,
  iteration,
  mb,
  mix,
  randomString,
  rawHttp,
  replay,
  startFuzzServe,
  type FuzzServe,
  type RawHttpResponse,
} from '../helpers/fuzz.js';
import { recordReliability } from '../helpers/reliability.js';
import { newTargetId, validateConfig, validateConfigInput, type Config } from '../../src/config/schema.js';
import { isValidHost } from '../../src/relay/address.js';

const SEED = fuzzSeed();
const POSTS = fuzzBudget(0.5);
const PAGE = `${PREFIX}/config/`;
const FORM_LIMIT = 32 * 1024;
const PARAMETER_LIMIT = 1000;
const RSS_GROWTH_KIB = 40 * 1024;
/** Every password the fuzzer types starts with this: no page may show it, config.json never holds it. */
const SECRET = 'Pw!fz';

interface Post {
  kind: string;
  fields: [string, string][];
  /** Raw text appended after the encoded fields (`&%zz=…`), or the whole body when `fields` is empty. */
  garbage: string;
  contentType: string | undefined;
  origin: string | undefined;
}

/** The body as qs reads it without nesting: repeated keys become lists, `__proto__` is dropped. */
function parseForm(text: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    if (k === '__proto__' || k === '') continue;
    const had = Object.hasOwn(out, k) ? out[k] : undefined;
    out[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return out;
}

/** A form field as a list (one value per row); non-strings read as ''. */
function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * What saving `body` should give, following the page's rules: blank rows dropped, a blank name is
 * the host, a blank port 5900, new rows get an id, a typed password sets it, "remove password"
 * (by target id) removes it, both at once is an error.
 */
function expectedSave(body: Record<string, string | string[]>): Config | null {
  const ids = list(body['id']);
  const names = list(body['name']);
  const hosts = list(body['host']);
  const ports = list(body['port']);
  const passwords = list(body['password']);
  const remove = new Set(list(body['removePassword']).filter(Boolean));
  const n = Math.max(ids.length, names.length, hosts.length, ports.length, passwords.length);
  const used: Config = { version: 1, targets: [] };
  const targets: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const rawId = ids[i] ?? '';
    const host = (hosts[i] ?? '').trim();
    const name = (names[i] ?? '').trim() || host;
    const portText = (ports[i] ?? '').trim();
    const password = passwords[i] ?? '';
    if (!host && !(names[i] ?? '').trim() && !portText && !password) continue;
    const port = portText === '' ? 5900 : /^\d+$/.test(portText) ? Number(portText) : portText;
    const id = rawId.trim() || newTargetId(used, name);
    used.targets.push({ id, name, host, port: 0 });
    const removing = rawId !== '' && remove.has(rawId);
    if (password && removing) return null;
    const t: Record<string, unknown> = { id, name, host, port };
    if (password) t['password'] = password;
    else if (removing) t['password'] = null;
    targets.push(t);
  }
  const v = validateConfigInput({ targets }, { versionOptional: true });
  return v.ok ? v.config : null;
}

describe(`fuzz: settings form posts (${replay(SEED)}, ${POSTS} posts)`, () => {
  let serve: FuzzServe;
  let vnc: FakeServer;
  let refused: number;
  let token: string;
  let expected: Config;
  let rssWarm = 0;
  const statuses = new Histogram();
  const kinds = new Histogram();

  before(async () => {
    serve = await startFuzzServe('form');
    vnc = await vncServer('fuzz');
    refused = await closedPort();
  });
  after(async () => {
    await serve?.close();
    await vnc?.close();
  });

  // ---- generators ----------------------------------------------------------------------------

  const HOSTS = ['127.0.0.1', '::1', 'localhost', '192.168.1.50', '10.0.0.1', 'hmi', 'press-01.plant.example', ' 10.0.0.2 '];

  function row(rng: Rng, i: number): Record<'id' | 'name' | 'host' | 'port' | 'password', string> & { remove: boolean } {
    const existing = expected.targets.map((t) => t.id);
    return {
      id: rng.weighted<() => string>([
        [5, () => ''],
        [3, () => (existing.length ? rng.pick(existing) : '')],
        [1, () => `t${i}`],
        [1, () => randomString(rng, 40)],
      ])(),
      name: rng.weighted<() => string>([
        [4, () => `Screen ${i}`],
        [2, () => ''],
        [2, () => randomString(rng, 70)],
        [1, () => 'n'.repeat(rng.pick([64, 65, 1000]))],
      ])(),
      host: rng.weighted<() => string>([
        [6, () => rng.pick(HOSTS)],
        [1, () => ''],
        [2, () => rng.pick(NASTY_STRINGS)],
        [1, () => randomString(rng, 60)],
      ])(),
      port: rng.weighted<() => string>([
        [3, () => ''],
        [4, () => String(rng.int(1, 65535))],
        [2, () => rng.pick(NASTY_STRINGS)],
        [1, () => randomString(rng, 8)],
      ])(),
      password: rng.weighted<() => string>([
        [8, () => ''],
        [2, () => `${SECRET}${rng.u32().toString(16)}`],
        [1, () => rng.pick(['😀', 'x'.repeat(65), ' ', 'é'])],
      ])(),
      remove: rng.chance(0.1),
    };
  }

  function postFor(rng: Rng): Post {
    const kind = rng.weighted<string>([
      [40, 'rows'],
      [8, 'misaligned'],
      [6, 'huge'],
      [4, 'too-many-fields'],
      [5, 'bad-csrf'],
      [4, 'foreign-origin'],
      [4, 'content-type'],
      [5, 'garbage'],
    ]);
    const n = rng.weighted<number>([
      [2, 0],
      [10, rng.int(1, 4)],
      [2, rng.int(5, 12)],
      [1, rng.int(33, 40)],
    ]);
    const fields: [string, string][] = [];
    const csrf = kind === 'bad-csrf'
      ? rng.pick<() => [string, string][]>([
          () => [],
          () => [['_csrf', '']],
          () => [['_csrf', token.slice(0, -1)]],
          () => [['_csrf', token.toUpperCase()]],
          () => [['_csrf', `${token}x`]],
          () => [['_csrf', token], ['_csrf', token]],
          () => [['_csrf', randomString(rng, 60)]],
        ])()
      : [['_csrf', token] as [string, string]];
    fields.push(...csrf);
    const rows = Array.from({ length: kind === 'too-many-fields' ? rng.int(201, 260) : n }, (_, i) => row(rng, i));
    for (const r of rows) {
      for (const key of ['id', 'name', 'host', 'port', 'password'] as const) {
        if (kind === 'misaligned' && rng.chance(0.2)) continue;
        fields.push([key, r[key]]);
      }
      if (r.remove && r.id) fields.push(['removePassword', r.id]);
    }
    if (kind === 'misaligned') {
      for (let i = fields.length - 1; i > 0; i--) {
        if (rng.chance(0.3)) {
          const j = rng.int(0, i);
          [fields[i], fields[j]] = [fields[j]!, fields[i]!];
        }
      }
    }
    // The button, or a stray one.
    const button = rng.weighted<() => [string, string][]>([
      [10, () => [['action', 'save']]],
      [2, () => []],
      [2, () => [['action', 'add']]],
      [2, () => [['remove', String(rng.int(0, Math.max(0, rows.length)))]]],
      [3, () => [['probe', String(rng.int(0, Math.max(0, rows.length)))]]],
      [2, () => [[rng.pick(['action', 'remove', 'probe']), rng.pick(['-1', '1e3', ' 0', '0x1', 'add ', '99999999999999999999', randomString(rng, 10)])]]],
      [1, () => [['action', 'add'], ['action', 'save']]],
    ])();
    fields.push(...button);
    if (rng.chance(0.15)) fields.push([rng.pick(['version', 'targets', 'constructor', 'hasOwnProperty', 'toString', '_token', 'a[b]']), randomString(rng, 20)]);
    if (kind === 'huge') {
      const size = rng.weighted<number>([
        [3, FORM_LIMIT + rng.int(-300, 300)],
        [1, rng.pick([100_000, 512 * 1024])],
      ]);
      const filler = rng.pick(['a', 'é', ' ']);
      const base = new URLSearchParams(fields).toString().length;
      const perChar = Buffer.byteLength(new URLSearchParams([['x', filler]]).toString()) - 2;
      fields.push([rng.pick(['name', 'host', 'extra', 'password']), filler.repeat(Math.max(0, Math.floor((size - base - 6) / perChar)))]);
    }
    const garbage = kind === 'garbage'
      ? rng.pick(['&%zz=%', '&=', '&&&', '&a[b]=c', '&__proto__=x', '&_csrf', '&name', '&host=%00', '&port=%F0%9F', `&${'x&'.repeat(rng.int(1, 50))}`, '&constructor[prototype][x]=1'])
      : '';
    const contentType = kind === 'content-type'
      ? rng.pick([undefined, 'text/plain', 'application/json', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=utf-16', 'application/x-www-form-urlencoded; charset=iso-8859-1', 'APPLICATION/X-WWW-FORM-URLENCODED'])
      : 'application/x-www-form-urlencoded';
    const origin = kind === 'foreign-origin'
      ? rng.pick(['http://evil.example', 'null', 'garbage', `http://127.0.0.1:${serve.port + 1}`])
      : rng.weighted<string | undefined>([
          [3, undefined],
          [2, `http://127.0.0.1:${serve.port}`],
        ]);

    // "Test connection" really connects: keep it on loopback, on a port of ours.
    const probe = fields.find(([k]) => k === 'probe')?.[1];
    if (probe !== undefined && /^\d+$/.test(probe)) {
      const k = Number(probe);
      const nth = (key: string): [string, string] | undefined => fields.filter(([f]) => f === key)[k];
      const host = nth('host');
      if (host && isValidHost(host[1].trim()) && !['127.0.0.1', '::1'].includes(host[1].trim())) host[1] = '127.0.0.1';
      const port = nth('port');
      if (port && port[1].trim() !== String(refused) && port[1].trim() !== String(vnc.port)) port[1] = String(rng.chance(0.5) ? refused : vnc.port);
      if (!port && host) host[1] = ''; // the default 5900 could be anything: no probe
    }
    return { kind, fields, garbage, contentType, origin };
  }

  function bodyOf(p: Post): string {
    return new URLSearchParams(p.fields).toString() + p.garbage;
  }

  /** The answers the page may give: status codes, and for a save the configuration it stores. */
  function predict(p: Post, body: string): { statuses: number[]; saves?: Config | null } {
    const ct = p.contentType?.toLowerCase();
    const form = ct !== undefined && /^application\/x-www-form-urlencoded\s*(;|$)/.test(ct);
    const charset = /charset=([^;\s]+)/.exec(ct ?? '')?.[1] ?? 'utf-8';
    if (form && charset !== 'utf-8' && charset !== 'iso-8859-1') return { statuses: [415] };
    if (form && Buffer.byteLength(body) > FORM_LIMIT) return { statuses: [413] };
    if (form && body.split('&').length > PARAMETER_LIMIT) return { statuses: [413] };
    const fields = form ? parseForm(body) : {};
    const sameOrigin = p.origin === undefined || p.origin === `http://127.0.0.1:${serve.port}`;
    if (!sameOrigin || fields['_csrf'] !== token) return { statuses: [403] };
    if (fields['action'] === 'add') return { statuses: [200] };
    const remove = fields['remove'];
    if (typeof remove === 'string' && /^\d+$/.test(remove)) return { statuses: [200] };
    const probe = fields['probe'];
    const n = Math.max(...['id', 'name', 'host', 'port', 'password'].map((k) => list(fields[k]).length));
    if (typeof probe === 'string' && /^\d+$/.test(probe) && Number(probe) < n) return { statuses: [200] };
    if (charset === 'iso-8859-1') return { statuses: [303, 400] }; // bytes read as Latin-1: not modelled
    const saves = expectedSave(fields);
    return { statuses: saves ? [303] : [400], saves };
  }

  /** The configuration the API shows, without the informative `passwordSet`. */
  async function apiConfig(): Promise<Config> {
    const res = await rawHttp(serve.port, { method: 'GET', path: `${API}/config` });
    assert.equal(res.status, 200);
    const view = JSON.parse(res.text) as { version: 1; targets: (Config['targets'][number] & { passwordSet?: boolean })[] };
    return { version: view.version, targets: view.targets.map(({ passwordSet: _set, ...t }) => t) };
  }

  function assertFileIntact(): void {
    const text = fs.readFileSync(serve.file, 'utf8');
    assert.ok(!text.includes(SECRET), 'config.json never holds a password');
    const v = validateConfig(JSON.parse(text));
    assert.ok(v.ok, `config.json validates: ${clip(text)}`);
    assert.deepEqual(v.config, expected, 'config.json holds the configuration last saved');
  }

  /** The page tells the user what happened: the message box, or the error page's title and detail. */
  function assertPage(res: RawHttpResponse): void {
    assert.match(String(res.headers['content-type']), /^text\/html/, 'an HTML page');
    assert.ok(!res.text.includes(SECRET), 'no page shows a typed password');
    if (res.status === 200) {
      assert.match(res.text, /<form id="config-form"/, 'the form comes back');
      return;
    }
    const message = /<div id="message" class="message message-error"[^>]*>([^<]+)<\/div>/.exec(res.text);
    const errorPage = /<h1>([^<]+)<\/h1>\s*<p>([^<]+)<\/p>/.exec(res.text);
    assert.ok(message || errorPage, `a ${res.status} page with an error message: ${clip(res.text, 300)}`);
  }

  // ---- the run -------------------------------------------------------------------------------

  it('warms up: the page, a save, the API', async () => {
    const page = await rawHttp(serve.port, { method: 'GET', path: PAGE });
    assert.equal(page.status, 200);
    token = csrfToken(page.text);
    const save = await rawHttp(serve.port, {
      method: 'POST',
      path: PAGE,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams([['_csrf', token], ['id', 'local'], ['name', 'Local'], ['host', '127.0.0.1'], ['port', String(vnc.port)], ['password', ''], ['action', 'save']]).toString(),
    });
    assert.equal(save.status, 303, save.text);
    expected = await apiConfig();
    assertFileIntact();
    for (let i = 0; i < 20; i++) await rawHttp(serve.port, { method: 'GET', path: PAGE });
    rssWarm = serve.vitals().rssKiB;
  });

  it('answers every post with a 303, the form, or a 4xx page with an error message, as predicted', { timeout: 600_000 }, async () => {
    for (let i = 0; i < POSTS; i++) {
      const rng = new Rng(mix(SEED, 'form', i));
      const p = postFor(rng);
      const body = p.fields.length || p.garbage ? bodyOf(p) : '';
      await iteration(SEED, i, () => `${p.kind} ${JSON.stringify({ contentType: p.contentType, origin: p.origin })} ${JSON.stringify(clip(body, 400))}`, async () => {
        kinds.add(p.kind);
        const { statuses: allowed, saves } = predict(p, body);
        const headers: Record<string, string> = {};
        if (p.contentType !== undefined) headers['Content-Type'] = p.contentType;
        if (p.origin !== undefined) headers['Origin'] = p.origin;
        let res: RawHttpResponse;
        try {
          res = await rawHttp(serve.port, { method: 'POST', path: PAGE, headers, body });
        } catch (err) {
          assert.ok(serve.alive(), `serve crashed\n${serve.tail()}`);
          const code = (err as NodeJS.ErrnoException).code;
          assert.ok((code === 'EPIPE' || code === 'ECONNRESET') && allowed.includes(413), `${code}, expected ${allowed}`);
          statuses.add('reset');
          return;
        }
        statuses.add(res.status);
        assert.ok(res.status < 500, `no 5xx: ${res.status} ${clip(res.text)}\n${serve.tail(5)}`);
        assert.ok(allowed.includes(res.status), `expected ${allowed.join(' or ')}, got ${res.status}: ${clip(res.text.replace(/\s+/g, ' '), 400)}`);
        if (res.status === 303) {
          // A save that moved a target with a stored password names it (its password was cleared).
          const location = /^\.\/\?m=saved(?:&cleared=([\w,-]+))?$/.exec(String(res.headers['location']));
          assert.ok(location, `redirect to the saved message: ${res.headers['location']}`);
          const now = await apiConfig();
          for (const id of location[1]?.split(',') ?? []) {
            const before = expected.targets.find((x) => x.id === id);
            const after = now.targets.find((x) => x.id === id);
            assert.ok(before && after && (before.host !== after.host || before.port !== after.port), `cleared=${id}: a target whose address changed`);
          }
          if (saves) assert.deepEqual(now, saves, 'the saved configuration is what the rows say');
          expected = now;
        } else {
          assertPage(res);
          assert.deepEqual(await apiConfig(), expected, `nothing saved by a ${res.status}`);
        }
        if (i % 50 === 49) assertFileIntact();
      });
    }
  });

  it('keeps serving, memory bounded, config.json intact and equal to the last saved configuration', async () => {
    const status = await serve.assertServing();
    assert.equal(status.config.state, 'ok');
    assert.deepEqual(await apiConfig(), expected);
    assertFileIntact();
    const rss = serve.vitals().rssKiB;
    assert.ok(rss - rssWarm < RSS_GROWTH_KIB, `RSS grew from ${mb(rssWarm)} to ${mb(rss)}`);
    recordReliability({
      table: 'inputs',
      name: 'Settings form: random and mutated posts',
      tried: `${statuses.total} urlencoded posts: ${kinds}; ${replay(SEED)}`,
      outcome: `answers ${statuses}; no 5xx, every 4xx a page with an error message, no typed password shown; RSS ${mb(rssWarm)} → ${mb(rss)}; crashes 0; config.json valid and equal to the last saved configuration`,
    });
  });
});
