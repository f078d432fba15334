/**
 * Rate limits (src/web/rate-limit.ts) through the real app, with small limits set through the
 * options: API requests and saves/tests per client give 429 Problem JSON with `Retry-After` and
 * the limit in words (the error page for form posts); failed logins (401 from the guard on the
 * API, pages and relay upgrades, in one count) lock the client out with 429 until the window ends,
 * never counting successful requests. Behind the reverse proxy (the unix socket) clients are keyed
 * by `X-Forwarded-For`, so one client's failures never block another's valid token; on TCP that
 * header is ignored.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { startApp, type AppOptions, type RunningApp } from '../../src/app.js';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { DEFAULT_RATE_LIMITS, FailedLoginLimiter, SHARED_PROXY_KEY, clientKey, createRateLimiters, resolveRateLimits } from '../../src/web/rate-limit.js';
import {
  API,
  PREFIX,
  RELAY,
  assertProblem,
  client,
  config,
  csrfToken,
  makeTempDir,
  removeDir,
  request,
  startTestApp,
  staticPath,
  target,
  vncServer,
  waitFor,
  type Endpoint,
  type FakeServer,
  type HttpResponse,
  type TestApp,
  type TestAppOptions,
} from '../helpers/app.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';

const TOO_MANY = 'urn:ctrlx-novnc:problem:too-many-requests';
const LOCKED_OUT = 'urn:ctrlx-novnc:problem:too-many-failed-logins';
const LOCKED_OUT_DETAIL = /^Too many failed logins from your address; try again in (\d+) s\.$/;

const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

/** `Retry-After` as whole seconds within (0, max]; returns it. */
function retryAfter(res: { headers: http.IncomingHttpHeaders }, max: number): number {
  const value = String(res.headers['retry-after']);
  assert.match(value, /^\d+$/, `Retry-After is whole seconds, got ${value}`);
  const n = Number(value);
  assert.ok(n >= 1 && n <= max, `Retry-After ${n} is within 1..${max}`);
  return n;
}

/** A 429 Problem JSON whose detail matches `detail` and names the same wait as `Retry-After`. */
function assertTooMany(res: HttpResponse, type: string, detail: RegExp, maxSeconds: number): void {
  const p = assertProblem(res, 429, { type, detail });
  const seconds = retryAfter(res, maxSeconds);
  assert.match(p.detail, new RegExp(`try again in ${seconds} s\\.$`), 'the detail names the Retry-After wait');
}

interface UpgradeResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Opens the relay WebSocket at `url`; resolves with 101 once open (then closes) or the refusal sent before the upgrade. */
function upgrade(url: string, headers: Record<string, string> = {}): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['binary'], { headers, perMessageDeflate: false });
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101, headers: {}, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

describe('clientKey', () => {
  const req = (remoteAddress: string | undefined, headers: Record<string, string> = {}): http.IncomingMessage =>
    ({ socket: { remoteAddress }, headers }) as unknown as http.IncomingMessage;
  const table: [string, http.IncomingMessage, boolean, string][] = [
    ['TCP: the peer address', req('192.0.2.7'), false, '192.0.2.7'],
    ['TCP: X-Forwarded-For is ignored', req('192.0.2.7', { 'x-forwarded-for': '198.51.100.1' }), false, '192.0.2.7'],
    ['TCP: X-Real-IP is ignored', req('192.0.2.7', { 'x-real-ip': '198.51.100.1' }), false, '192.0.2.7'],
    ['TCP: an IPv4-mapped IPv6 peer is its IPv4 address', req('::ffff:192.0.2.7'), false, '192.0.2.7'],
    ['TCP: an IPv6 peer by its /56 network', req('2001:db8:1:2ff:aaaa::1'), false, '2001:db8:1:200::/56'],
    ['proxy: the last X-Forwarded-For address (the one the proxy appended)', req(undefined, { 'x-forwarded-for': '10.9.9.9, 198.51.100.1' }), true, '198.51.100.1'],
    ['proxy: made-up entries before the proxy\'s are ignored', req(undefined, { 'x-forwarded-for': '203.0.113.1, 203.0.113.2, 198.51.100.1' }), true, '198.51.100.1'],
    ['proxy: an IPv6 X-Forwarded-For by its /56', req(undefined, { 'x-forwarded-for': '2001:db8:1:2ff::9' }), true, '2001:db8:1:200::/56'],
    ['proxy: a [v6]:port X-Forwarded-For', req(undefined, { 'x-forwarded-for': '[2001:db8::1]:4711' }), true, '2001:db8::/56'],
    ['proxy: a v4:port X-Forwarded-For', req(undefined, { 'x-forwarded-for': '198.51.100.1:4711' }), true, '198.51.100.1'],
    ['proxy: X-Real-IP without X-Forwarded-For', req(undefined, { 'x-real-ip': '198.51.100.2' }), true, '198.51.100.2'],
    ['proxy: X-Real-IP when X-Forwarded-For is not an address', req(undefined, { 'x-forwarded-for': 'unknown', 'x-real-ip': '198.51.100.2' }), true, '198.51.100.2'],
    ['proxy: one shared key without either header', req(undefined), true, SHARED_PROXY_KEY],
    ['proxy: one shared key for made-up values', req(undefined, { 'x-forwarded-for': 'evil-1', 'x-real-ip': 'evil-2' }), true, SHARED_PROXY_KEY],
  ];
  for (const [what, r, behindProxy, expected] of table) {
    it(what, () => assert.equal(clientKey(r, behindProxy), expected));
  }
});

describe('FailedLoginLimiter', () => {
  /** A request whose client key is `key` (the limiter is built with keyOf reading it back). */
  const as = (key: string): http.IncomingMessage => ({ key }) as unknown as http.IncomingMessage;
  const keyOf = (req: http.IncomingMessage): string => (req as unknown as { key: string }).key;
  const fail = (): Promise<never> => Promise.reject(Object.assign(new Error('401'), { status: 401 }));
  const isFailure = (err: unknown): boolean => (err as { status?: number }).status === 401;

  it('keeps a lockout while 10 000 other addresses each fail once (the map is full)', async () => {
    const limiter = new FailedLoginLimiter({ limit: 2, windowMs: 60_000 }, keyOf);
    try {
      for (let i = 0; i < 2; i++) await assert.rejects(limiter.attempt(as('A'), fail, isFailure));
      assert.ok((await limiter.attempt(as('A'), async () => {}, isFailure)) > 0, 'A is locked out');
      for (let i = 0; i < 10_000; i++) await assert.rejects(limiter.attempt(as(`k${i}`), fail, isFailure));
      assert.ok((await limiter.attempt(as('A'), async () => {}, isFailure)) > 0, 'A is still locked out');
      // And one locked out among the flood is kept too.
      await assert.rejects(limiter.attempt(as('k9999'), fail, isFailure));
      assert.ok((await limiter.attempt(as('k9999'), async () => {}, isFailure)) > 0);
    } finally {
      limiter.close();
    }
  });

  it('queues a burst of 300 valid checks behind a budget of 3 in flight, and lets every one through', async () => {
    const limiter = new FailedLoginLimiter({ limit: 3, windowMs: 60_000 }, keyOf);
    try {
      let inFlight = 0;
      let most = 0;
      const slowPass = async (): Promise<void> => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        inFlight--;
      };
      const results = await Promise.all(Array.from({ length: 300 }, () => limiter.attempt(as('B'), slowPass, isFailure)));
      assert.deepEqual([...new Set(results)], [0]);
      assert.equal(most, 3, 'never more checks in flight than failures left');
      // With one failure counted, only 2 may run at once.
      await assert.rejects(limiter.attempt(as('B'), fail, isFailure));
      most = 0;
      await Promise.all(Array.from({ length: 50 }, () => limiter.attempt(as('B'), slowPass, isFailure)));
      assert.equal(most, 2);
    } finally {
      limiter.close();
    }
  });

  it('answers everyone waiting with the lockout once the in-flight guesses fail', async () => {
    const limiter = new FailedLoginLimiter({ limit: 2, windowMs: 60_000 }, keyOf);
    try {
      let checks = 0;
      const slowFail = async (): Promise<never> => {
        checks++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw Object.assign(new Error('401'), { status: 401 });
      };
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => limiter.attempt(as('C'), slowFail, isFailure)));
      assert.equal(checks, 2, 'only the budget of 2 was checked');
      assert.equal(outcomes.filter((o) => o.status === 'rejected').length, 2);
      const waits = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      assert.equal(waits.length, 18);
      for (const w of waits) assert.ok(w >= 1 && w <= 60, `Retry-After ${w}`);
    } finally {
      limiter.close();
    }
  });
});

describe('rate limit options', () => {
  it('fills in the defaults (600 API requests and 60 changes a minute, 10 failed logins in 5 minutes)', () => {
    assert.deepEqual(resolveRateLimits(), {
      api: { limit: 600, windowMs: 60_000 },
      changes: { limit: 60, windowMs: 60_000 },
      failedLogins: { limit: 10, windowMs: 300_000 },
    });
    assert.deepEqual(resolveRateLimits({ changes: { limit: 5 } }).changes, { limit: 5, windowMs: 60_000 });
    assert.deepEqual(resolveRateLimits({ api: { windowMs: 1000 } }).api, { limit: DEFAULT_RATE_LIMITS.api.limit, windowMs: 1000 });
  });

  const bad: [string, Parameters<typeof resolveRateLimits>[0], RegExp][] = [
    ['a zero limit', { api: { limit: 0 } }, /^rateLimits\.api\.limit must be a whole number of at least 1, got 0$/],
    ['a fractional limit', { changes: { limit: 1.5 } }, /^rateLimits\.changes\.limit /],
    ['a negative window', { failedLogins: { windowMs: -1 } }, /^rateLimits\.failedLogins\.windowMs /],
    ['a window beyond a timer', { api: { windowMs: 2 ** 31 } }, /^rateLimits\.api\.windowMs /],
    ['an unknown limit', { logins: { limit: 3 } } as never, /^rateLimits\.logins is not a known limit/],
  ];
  for (const [what, options, message] of bad) {
    it(`refuses ${what} with a TypeError naming the option`, () => {
      assert.throws(() => resolveRateLimits(options), (err: Error) => err instanceof TypeError && message.test(err.message));
    });
  }

  it('makes startApp fail before it listens', async () => {
    const root = await makeTempDir('rl-bad');
    try {
      await assert.rejects(
        startApp({ listen: { host: '127.0.0.1', port: 0 }, solutionsDir: path.join(root, 'solutions'), appDataDir: path.join(root, 'app'), rateLimits: { api: { limit: -5 } } }),
        /rateLimits\.api\.limit/,
      );
    } finally {
      await removeDir(root);
    }
  });

  it('counts no failed logins while authentication is off', () => {
    const off = createRateLimiters({ behindProxy: false, authentication: false });
    const on = createRateLimiters({ behindProxy: false, authentication: true });
    try {
      assert.equal(off.failedLogins, null);
      assert.ok(on.failedLogins);
    } finally {
      off.close();
      on.close();
    }
  });
});

describe('API and change limits (TCP, authentication off)', () => {
  let t: TestApp | undefined;
  const start = async (options: TestAppOptions): Promise<ReturnType<typeof client>> => {
    t = await startTestApp(options);
    return client(t.port);
  };
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers API requests over the limit with 429 Problem JSON, Retry-After and the limit in words', async () => {
    const http = await start({ rateLimits: { api: { limit: 5 } } });
    for (let i = 0; i < 5; i++) {
      const ok = await http.get(`${API}/status`);
      assert.equal(ok.status, 200, `request ${i + 1} of 5 is allowed`);
      assert.match(String(ok.headers['ratelimit']), /limit=5, remaining=\d+, reset=\d+/);
    }
    const res = await http.get(`${API}/status`);
    assertTooMany(res, TOO_MANY, /^Too many requests from your address \(more than 5 in a minute\); try again in \d+ s\.$/, 60);
    assert.equal(res.json().title, 'Too many requests');
    // Every API path counts, also one that does not exist; pages do not.
    assertProblem(await http.get(`${API}/nothing`), 429);
    assert.equal((await http.get(`${PREFIX}/viewer/`)).status, 200);
  });

  it('limits saves and tests separately from reads: reads never use them up, and a full change budget leaves reads open', async () => {
    const http = await start({ rateLimits: { api: { limit: 100 }, changes: { limit: 3 } } });
    for (let i = 0; i < 10; i++) assert.equal((await http.get(`${API}/config`)).status, 200);
    const body = config(target('press', 5900, '192.168.1.50'));
    for (let i = 0; i < 3; i++) assert.equal((await http.put(`${API}/config`, body)).status, 200, `change ${i + 1} of 3 is allowed`);
    assertTooMany(await http.put(`${API}/config`, body), TOO_MANY, /^Too many saves and tests from your address \(more than 3 in a minute\); try again in \d+ s\.$/, 60);
    assertProblem(await http.post(`${API}/probe`, { host: '127.0.0.1', port: 1 }), 429, { type: TOO_MANY });
    // Reads still pass.
    assert.equal((await http.get(`${API}/status`)).status, 200);
    assert.equal((await http.get(`${API}/config`)).status, 200);
  });

  it('answers a settings form post over the change limit with the error page (429, Retry-After), nothing saved', async () => {
    const http = await start({ rateLimits: { changes: { limit: 2 } }, initial: config(target('press', 5900, '192.168.1.50')) });
    const token = csrfToken((await http.get(`${PREFIX}/config/`)).text);
    const form = (host: string): [string, string][] => [['_csrf', token], ['id', 'press'], ['name', 'Press'], ['host', host], ['port', '5900'], ['action', 'save']];
    assert.equal((await http.form(`${PREFIX}/config/`, form('10.0.0.1'))).status, 303);
    assert.equal((await http.form(`${PREFIX}/config/`, form('10.0.0.2'))).status, 303);
    const res = await http.form(`${PREFIX}/config/`, form('10.0.0.3'));
    assert.equal(res.status, 429);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    const seconds = retryAfter(res, 60);
    assert.match(res.text, new RegExp(`Too many saves and tests from your address \\(more than 2 in a minute\\); try again in ${seconds} s\\.`));
    assert.equal((await http.config()).targets[0]!.host, '10.0.0.2');
    // The page itself (a GET) is still shown.
    assert.equal((await http.get(`${PREFIX}/config/`)).status, 200);
  });
});

describe('failed logins (fake identity manager)', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let t: TestApp | undefined;
  const viewer = makeToken('operator', [SCOPE_VIEW]);
  const manager = makeToken('engineer', [SCOPE_MANAGE]);
  const outsider = makeToken('someone', ['rexroth-solutions.web.all.r']);
  const forged = makeToken('mallory', [SCOPE_MANAGE]);

  before(async () => {
    idm = await startFakeIdm();
    for (const token of [viewer, manager, outsider]) idm.valid.add(token);
    vnc = await vncServer('rl');
  });
  after(async () => {
    await vnc.close();
    await idm.close();
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  const start = async (failedLogins: { limit: number; windowMs?: number }): Promise<TestApp> => {
    t = await startTestApp({
      initial: config(target('hmi', vnc.port)),
      auth: { validityUrl: idm.url },
      rateLimits: { failedLogins },
    });
    return t;
  };
  const relay = (port: number, query = ''): string => `ws://127.0.0.1:${port}${RELAY}${query}`;

  it('after the limit refuses everything that needs a login with 429 (API, page, upgrade), even with a valid token, without asking the identity manager', async () => {
    const app = await start({ limit: 3 });
    const http = client(app.port);
    for (let i = 0; i < 3; i++) assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401);
    const asked = idm.requests.length;

    const api = await http.get(`${API}/status`, { headers: bearer(viewer) });
    assertTooMany(api, LOCKED_OUT, LOCKED_OUT_DETAIL, 300);
    assert.equal(api.json().title, 'Too many failed logins');

    const page = await http.get(`${PREFIX}/viewer/?token=${viewer}`);
    assert.equal(page.status, 429);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const seconds = retryAfter(page, 300);
    assert.match(page.text, new RegExp(`Too many failed logins from your address; try again in ${seconds} s\\.`));

    const ws = await upgrade(relay(app.port), bearer(viewer));
    assert.equal(ws.status, 429);
    retryAfter(ws, 300);
    assert.match(ws.body, /^Too many failed logins from your address; try again in \d+ s\.\n$/);

    // The relay preflight, the settings page and its form post: all refused the same way.
    assertProblem(await http.get(`${RELAY}?target=hmi`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
    assert.equal((await http.get(`${PREFIX}/config/?token=${manager}`)).status, 429);
    assertProblem(await http.put(`${API}/config`, config(target('hmi', vnc.port)), { headers: bearer(manager) }), 429, { type: LOCKED_OUT });
    assert.equal(idm.requests.length, asked, 'no token was sent to the identity manager during the lockout');

    // What needs no login is still served.
    assert.equal((await http.get(staticPath('style.css'))).status, 200);
  });

  it('at the defaults, a burst of 60 forged tokens sent all at once reaches the identity manager 10 times; valid bursts are queued, never refused', async () => {
    t = await startTestApp({ initial: config(target('hmi', vnc.port)), auth: { validityUrl: idm.url } });
    const http = client(t.port);
    // A valid burst first: 40 requests with fresh (uncached) valid tokens at once, all answered 200.
    const fresh = Array.from({ length: 40 }, (_, i) => makeToken(`user${i}`, [SCOPE_VIEW]));
    for (const token of fresh) idm.valid.add(token);
    const valid = await Promise.all(fresh.map((token) => http.get(`${API}/status`, { headers: bearer(token) })));
    assert.deepEqual([...new Set(valid.map((r) => r.status))], [200]);

    // Well-formed, unexpired tokens with the right scope, unknown to the identity manager: only it can say no.
    const asked = idm.requests.length;
    const guesses = Array.from({ length: 60 }, (_, i) => makeToken(`guess${i}`, [SCOPE_MANAGE]));
    const answers = await Promise.all(
      guesses.map((token, i) =>
        i % 3 === 0
          ? upgrade(relay(t!.port, '?target=hmi'), bearer(token)).then((r) => r.status)
          : http.get(i % 3 === 1 ? `${API}/config` : `${PREFIX}/config/?token=${token}`, i % 3 === 1 ? { headers: bearer(token) } : {}).then((r) => r.status),
      ),
    );
    const count = (status: number): number => answers.filter((a) => a === status).length;
    assert.equal(count(401), 10, `answers: ${JSON.stringify(answers)}`);
    assert.equal(count(429), 50);
    assert.equal(idm.requests.length - asked, 10, 'the identity manager was asked once per allowed failure, not once per guess');
    // The lockout holds for the valid token too, without asking the identity manager.
    assertProblem(await http.get(`${API}/status`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
    assert.equal(idm.requests.length - asked, 10);
    recordReliability({
      table: 'inputs',
      name: 'login guessing at the default limits',
      tried: `60 well-formed, unexpired ctrlX tokens unknown to the identity manager sent all at once (API, settings page, relay upgrade), after a burst of 40 valid logins at once; default limit 10 failed logins in 5 minutes (fake identity manager)`,
      outcome: `all 40 valid logins answered 200; guesses: 401×${count(401)} then 429×${count(429)} with Retry-After; the identity manager was asked ${idm.requests.length - asked} times, not 60; the next request with a valid token also 429 until the window ends`,
    });
  });

  it('does not count requests without any token: no guess, and any web page could send them to lock users out', async () => {
    const app = await start({ limit: 2 });
    const http = client(app.port);
    for (let i = 0; i < 10; i++) {
      assertProblem(await http.get(`${API}/status`), 401);
      assert.equal((await http.get(`${PREFIX}/viewer/`)).status, 401);
      assert.equal((await upgrade(relay(app.port))).status, 401);
      // A header that is no bearer token carries no guess either.
      assertProblem(await http.get(`${API}/status`, { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }), 401);
    }
    assert.equal((await http.get(`${API}/status`, { headers: bearer(viewer) })).status, 200);
    // Presented tokens still count.
    for (let i = 0; i < 2; i++) assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401);
    assertProblem(await http.get(`${API}/status`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
  });

  it('counts failed logins of pages, the API and relay upgrades together', async () => {
    const app = await start({ limit: 4 });
    const http = client(app.port);
    assert.equal((await http.get(`${PREFIX}/viewer/?token=${forged}`)).status, 401);
    assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401, { detail: /not valid/ });
    assert.equal((await upgrade(relay(app.port), bearer(forged))).status, 401);
    // Three so far: still allowed.
    assert.equal((await http.get(`${API}/status`, { headers: bearer(viewer) })).status, 200);
    assert.equal((await upgrade(relay(app.port, '?token=expired'))).status, 401);
    // The fourth was an upgrade: now everything is refused, upgrades included.
    assertProblem(await http.get(`${API}/status`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
    const ws = await upgrade(relay(app.port), bearer(viewer));
    assert.equal(ws.status, 429);
    assert.equal(ws.headers['www-authenticate'], undefined);
  });

  it('never counts successful requests, nor 403 (missing scope)', async () => {
    const app = await start({ limit: 3 });
    const http = client(app.port);
    for (let i = 0; i < 2; i++) assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401);
    // Many successes and refusals for scope: were any counted, the lockout would come now.
    for (let i = 0; i < 12; i++) {
      assert.equal((await http.get(`${API}/status`, { headers: bearer(viewer) })).status, 200);
      assert.equal((await http.get(`${PREFIX}/viewer/?token=${viewer}`)).status, 200);
      assertProblem(await http.get(`${API}/config`, { headers: bearer(viewer) }), 403);
    }
    for (let i = 0; i < 3; i++) assert.equal((await upgrade(relay(app.port, '?target=hmi'), bearer(viewer))).status, 101);
    assert.equal((await http.get(`${API}/status`, { headers: bearer(viewer) })).status, 200);
    // One more failure reaches the limit of 3.
    assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401);
    assertProblem(await http.get(`${API}/status`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
  });

  it('lets the client log in again once the window has passed', async () => {
    const app = await start({ limit: 2, windowMs: 4000 });
    const http = client(app.port);
    for (let i = 0; i < 2; i++) assertProblem(await http.get(`${API}/status`, { headers: bearer(forged) }), 401);
    assertProblem(await http.get(`${API}/status`, { headers: bearer(viewer) }), 429, { type: LOCKED_OUT });
    await waitFor('the lockout to end', async () => (await http.get(`${API}/status`, { headers: bearer(viewer) })).status === 200);
    assert.equal((await upgrade(relay(app.port, '?target=hmi'), bearer(viewer))).status, 101);
  });

  it('ignores X-Forwarded-For on TCP: made-up addresses all count as the one connection address', async () => {
    const app = await start({ limit: 3 });
    const http = client(app.port);
    for (const address of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      assertProblem(await http.get(`${API}/status`, { headers: { ...bearer(forged), 'X-Forwarded-For': address } }), 401);
    }
    const res = await http.get(`${API}/status`, { headers: { ...bearer(viewer), 'X-Forwarded-For': '198.51.100.4', 'X-Real-IP': '198.51.100.5' } });
    assertProblem(res, 429, { type: LOCKED_OUT });
  });
});

describe('behind the reverse proxy (unix socket): clients keyed by X-Forwarded-For', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let root: string;
  let app: RunningApp | undefined;
  let socket: string;
  const viewer = makeToken('operator', [SCOPE_VIEW]);
  const forged = makeToken('mallory', [SCOPE_VIEW]);

  before(async () => {
    idm = await startFakeIdm();
    idm.valid.add(viewer);
    vnc = await vncServer('sock');
  });
  after(async () => {
    await vnc.close();
    await idm.close();
  });
  afterEach(async () => {
    await app?.stop();
    app = undefined;
    await removeDir(root);
  });

  const start = async (rateLimits: AppOptions['rateLimits']): Promise<Endpoint> => {
    root = await makeTempDir('rl-sock');
    socket = path.join(root, 'run', 'web.sock');
    const solutionsDir = path.join(root, 'solutions');
    const file = path.join(solutionsDir, 'activeConfiguration', 'ctrlx-novnc', 'config.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(config(target('hmi', vnc.port))));
    app = await startApp({
      listen: { socket },
      solutionsDir,
      appDataDir: path.join(root, 'app'),
      pollInterval: 50,
      auth: { validityUrl: idm.url },
      rateLimits,
    });
    return { socketPath: socket };
  };
  // As a proxy that appends writes it: a value the browser sent itself (made up), then the address the proxy saw.
  // A different made-up value on every request: were it used, every guess would get a fresh budget.
  let madeUp = 0;
  const from = (address: string, token?: string): Record<string, string> => ({ 'X-Forwarded-For': `192.0.2.${(madeUp++ % 250) + 1}, ${address}`, ...(token ? bearer(token) : {}) });
  const status = (endpoint: Endpoint, headers: Record<string, string>): Promise<HttpResponse> => request(endpoint, 'GET', `${API}/status`, { headers });
  const relay = (): string => `ws+unix://${socket}:${RELAY}?target=hmi`;

  it("blocks the client whose logins failed, by the X-Forwarded-For address the proxy appended (not one the browser made up), and not another client's valid token", async () => {
    const endpoint = await start({ failedLogins: { limit: 3 } });
    for (let i = 0; i < 3; i++) assertProblem(await status(endpoint, from('203.0.113.7', forged)), 401);

    assertProblem(await status(endpoint, from('203.0.113.7', viewer)), 429, { type: LOCKED_OUT, detail: LOCKED_OUT_DETAIL });
    assertProblem(await status(endpoint, { 'X-Real-IP': '203.0.113.7', ...bearer(viewer) }), 429, { type: LOCKED_OUT });
    assert.equal((await upgrade(relay(), from('203.0.113.7', viewer))).status, 429);

    // Another client, with its valid token: not blocked, over HTTP nor the relay.
    assert.equal((await status(endpoint, from('198.51.100.2', viewer))).status, 200);
    assert.equal((await upgrade(relay(), from('198.51.100.2', viewer))).status, 101);
    // Requests naming no client share one key, which has no failures yet.
    assert.equal((await status(endpoint, bearer(viewer))).status, 200);
  });

  it('counts failed upgrades per client too', async () => {
    await start({ failedLogins: { limit: 2 } });
    for (let i = 0; i < 2; i++) assert.equal((await upgrade(relay(), from('203.0.113.9', forged))).status, 401);
    const refused = await upgrade(relay(), from('203.0.113.9', viewer));
    assert.equal(refused.status, 429);
    assert.match(refused.body, /^Too many failed logins from your address; try again in \d+ s\.\n$/);
    assert.equal((await upgrade(relay(), from('198.51.100.3', viewer))).status, 101);
  });

  it('keys the API limit by client as well', async () => {
    const endpoint = await start({ api: { limit: 2 } });
    for (let i = 0; i < 2; i++) assert.equal((await status(endpoint, from('203.0.113.7', viewer))).status, 200);
    assertProblem(await status(endpoint, from('203.0.113.7', viewer)), 429, { type: TOO_MANY });
    assert.equal((await status(endpoint, from('198.51.100.2', viewer))).status, 200);
  });
});
