/**
 * Fuzzing the JSON API of a real `serve` process: `PUT config`, `POST probe`,
 * `POST targets/:id/probe` and the ctrlX `save`/`load` callbacks get random JSON, mutations of valid
 * bodies (fields dropped, duplicated, retyped, nasty strings and numbers, unknown keys), raw-text
 * mutations (cut, stray tokens, invalid UTF-8, BOM), bodies around and far above the 16 KiB limit,
 * deep nesting, wrong content types, charsets and encodings, chunked framing, missing bodies and
 * foreign origins. Each answer is predicted from the input (same-origin rule, content type, body
 * parser, then the schema) and must match: a 2xx for valid input, otherwise a 4xx Problem JSON with
 * a title and a detail, and `errors[].field` for validation failures; never a 5xx, never a hang.
 * The configuration the API accepted is tracked (including the load phases' `abort`) and must be
 * what config.json holds at the end, valid. The process must survive with bounded memory.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { API, closedPort, vncServer, type FakeServer } from '../helpers/app.js';
import {
  Histogram,
  Rng,
  assertClearProblem,
  clip,
  fuzzBudget,
  fuzzSeed,
  iteration,
  mb,
  mix,
  mutateJson,
  mutateText,
  nestedArrays,
  nestedObjects,
  randomJson,
  randomString,
  rawHttp,
  replay,
  startFuzzServe,
  type FuzzServe,
  type Json,
  type RawHttpResponse,
} from '../helpers/fuzz.js';
import { recordReliability } from '../helpers/reliability.js';
import { validateConfig, validateConfigInput, type Config } from '../../src/config/schema.js';
import { parseCallbackBody } from '../../src/ctrlx/active-configuration.js';
import { isValidHost, parsePort } from '../../src/relay/address.js';

const SEED = fuzzSeed();
const REQUESTS = fuzzBudget(1);
const LIMIT = 16 * 1024;
/** Memory may grow by at most this much over the run (KiB): generous, it catches leaks, not noise. */
const RSS_GROWTH_KIB = 40 * 1024;
/** Every password the fuzzer sends starts with this: it must never come back or reach config.json. */
const SECRET = 'Pw!fz';
/** Phases that open a load transaction. */
const BEGIN_PHASES = new Set(['query', 'prepare', 'load', 'validate']);

type Endpoint = 'config' | 'probe' | 'target-probe' | 'save' | 'load' | 'other';

interface ApiCase {
  /** What was generated, for the histogram and failure messages. */
  kind: string;
  endpoint: Endpoint;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  framing: 'length' | 'chunked';
  /** The body before any Content-Encoding (what the parser sees after inflating). */
  plain: Buffer | undefined;
}

/** The model of the app's state the answers must agree with. */
interface Model {
  /** The configuration last accepted (what config.json and GET config must hold). */
  config: Config;
  /** The configuration before an open load transaction (what `abort` puts back). */
  tx: { previous: Config } | null;
  /** Target ids that are safe to probe (loopback, a local port). */
  localIds: Set<string>;
}

describe(`fuzz: JSON API (${replay(SEED)}, ${REQUESTS} requests)`, () => {
  let serve: FuzzServe;
  let vnc: FakeServer;
  let refused: number;
  let model: Model;
  let rssWarm = 0;
  const statuses = new Histogram();
  const kinds = new Histogram();
  const encodings = new Histogram();

  before(async () => {
    serve = await startFuzzServe('api');
    vnc = await vncServer('fuzz');
    refused = await closedPort();
  });
  after(async () => {
    await serve?.close();
    await vnc?.close();
  });

  // ---- generators ----------------------------------------------------------------------------

  const HOSTS = ['127.0.0.1', '::1', 'localhost', '192.168.1.50', '10.0.0.1', 'fe80::1', '2001:db8::42', 'hmi', 'press-01.plant.example'];

  function validTarget(rng: Rng, i: number): Json {
    if (rng.chance(0.15)) return { id: 'local', name: 'Local', host: '127.0.0.1', port: rng.chance(0.5) ? refused : vnc.port };
    const id = rng.chance(0.5) ? `t${i}` : rng.chars(1, 'abcdefghijklmnopqrstuvwxyz0123456789') + rng.chars(rng.int(0, 31), 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-');
    const name = rng.chance(0.7) ? `Screen ${i}` : randomString(rng, 64).trim() || `n${i}`;
    const host = rng.chance(0.6) ? rng.pick(HOSTS) : `${rng.int(1, 254)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
    const port = rng.chance(0.5) ? 5900 + rng.int(0, 10) : rng.int(1, 65535);
    const t: { [k: string]: Json } = rng.chance(0.1) ? { port, host, name, id } : { id, name, host, port };
    // A password (never to be shown again), its removal, or the informative passwordSet.
    if (rng.chance(0.15)) t['password'] = `${SECRET}${rng.u32().toString(16)}`;
    else if (rng.chance(0.05)) t['password'] = null;
    if (rng.chance(0.1)) t['passwordSet'] = rng.chance(0.5);
    return t;
  }

  function validConfig(rng: Rng): Json {
    const n = rng.weighted([
      [1, 0],
      [8, rng.int(1, 4)],
      [1, rng.int(5, 32)],
      [1, 33],
    ]);
    const targets = Array.from({ length: n }, (_, i) => validTarget(rng, i));
    return rng.chance(0.5) ? { version: 1, targets } : { targets };
  }

  function validProbe(rng: Rng): Json {
    const port = rng.chance(0.5) ? refused : vnc.port;
    return { host: rng.pick(['127.0.0.1', '::1', ' 127.0.0.1 ']), port: rng.chance(0.7) ? port : String(port) };
  }

  function validCallback(rng: Rng, endpoint: 'save' | 'load'): Json {
    const body: { [k: string]: Json } = {
      phase: endpoint === 'save' ? 'save' : rng.pick(['query', 'prepare', 'load', 'validate', 'activate', 'abort', 'activate', 'abort', 'finish']),
    };
    if (rng.chance(0.7)) body['id'] = `cfg-${rng.int(1, 999)}`;
    if (rng.chance(0.7)) body['configurationPath'] = '/var/snap/rexroth-solutions/common/solutions/activeConfiguration';
    return body;
  }

  function validBody(rng: Rng, endpoint: Endpoint): Json | undefined {
    switch (endpoint) {
      case 'config':
        return validConfig(rng);
      case 'probe':
        return validProbe(rng);
      case 'save':
      case 'load':
        return validCallback(rng, endpoint);
      default:
        return rng.chance(0.5) ? undefined : {};
    }
  }

  /** A valid-looking document with one huge string, `bytes` long give or take one character. */
  function hugeBody(rng: Rng, endpoint: Endpoint, bytes: number): string {
    let doc = (validBody(rng, endpoint) ?? {}) as any;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) doc = {};
    const key = rng.pick(['name', 'host', 'extra', 'phase', 'id']);
    const holder = endpoint === 'config' && Array.isArray(doc.targets) && doc.targets.length && key !== 'extra' ? doc.targets[0] : doc;
    holder[key] = '@@PAD@@';
    const skeleton = JSON.stringify(doc);
    // The filler as JSON text: 1, 2 and 4 UTF-8 bytes per character, or a 6-byte escape.
    const filler = rng.pick(['a', 'é', '😀', ' ', '\\u0000']);
    const count = Math.max(0, Math.floor((bytes - (Buffer.byteLength(skeleton) - 7)) / Buffer.byteLength(filler)));
    return skeleton.replace('@@PAD@@', filler.repeat(count));
  }

  function deepBody(rng: Rng, endpoint: Endpoint): string {
    const depth = rng.pick([10, 100, 1000, 3000, 5000, 8000, 10_000, 100_000]);
    const arrays = rng.chance(0.6);
    const nest = (inner: string): string => (arrays ? nestedArrays(depth, inner) : nestedObjects(Math.min(depth, 20_000), inner || '1'));
    switch (rng.int(0, 3)) {
      case 0:
        return nest('');
      case 1:
        return endpoint === 'config' ? `{"targets":${nest('')}}` : endpoint === 'probe' ? `{"host":"127.0.0.1","port":${nest(String(refused))}}` : `{"phase":${nest('"load"')}}`;
      case 2:
        return `{"targets":[{"id":"a","name":${nest('"n"')},"host":"127.0.0.1","port":5900}]}`;
      default:
        return `{"host":${nest('"127.0.0.1"')},"port":5900,"phase":"query"}`;
    }
  }

  const MALFORMED = ['', ' ', '{', '}', '[', 'nul', 'tru', "{'targets':[]}", '{"targets":[],}', '{"targets":[] "x":1}', '{targets:[]}', 'NaN', '-', '"', '"\\x"', '{"a":1}{"b":2}', '\u0000', '{"port":01}', '[1,]', '{"a"}'];

  function caseFor(rng: Rng): ApiCase {
    const endpoint = rng.weighted<Endpoint>([
      [50, 'config'],
      [15, 'probe'],
      [5, 'target-probe'],
      [8, 'save'],
      [12, 'load'],
      [6, 'other'],
    ]);
    let method = endpoint === 'config' ? 'PUT' : 'POST';
    let path = endpoint === 'config' ? `${API}/config` : endpoint === 'target-probe' ? '' : `${API}/${endpoint}`;
    if (endpoint === 'target-probe') {
      const known = [...model.localIds];
      const id = rng.weighted<() => string>([
        [2, () => (known.length ? rng.pick(known) : 'local')],
        [3, () => encodePath(randomString(rng, 40))],
        [1, () => rng.pick(['%zz', '%', '%E0%A4%A', 'a%2Fb', '..', '%00', 'x'.repeat(rng.pick([100, 5000, 20_000]))])],
      ])();
      path = `${API}/targets/${id}/probe`;
    }
    if (endpoint === 'other') {
      [method, path] = rng.pick([
        ['GET', `${API}/config`],
        ['GET', `${API}/status`],
        ['DELETE', `${API}/config`],
        ['PATCH', `${API}/config`],
        ['POST', `${API}/status`],
        ['POST', `${API}/config`],
        ['GET', `${API}/nope`],
        ['PUT', `${API}/targets/x/probe`],
        ['OPTIONS', `${API}/config`],
        ['GET', `${API}/config?${'a=1&'.repeat(rng.int(1, 500))}`],
      ] as const);
    }

    const kind = rng.weighted<string>([
      [20, 'valid'],
      [25, 'mutated'],
      [12, 'random'],
      [12, 'text-mutated'],
      [6, 'malformed'],
      [7, 'huge'],
      [6, 'deep'],
      [5, 'no-body'],
    ]);
    let text: string | Buffer | undefined;
    switch (kind) {
      case 'valid': {
        const v = validBody(rng, endpoint);
        text = v === undefined ? undefined : JSON.stringify(v);
        break;
      }
      case 'mutated': {
        let v: Json = validBody(rng, endpoint) ?? {};
        for (let i = rng.int(1, 3); i > 0; i--) v = mutateJson(rng, v);
        text = JSON.stringify(v);
        break;
      }
      case 'random':
        text = JSON.stringify(randomJson(rng, rng.int(0, 4)));
        break;
      case 'text-mutated': {
        const v: Json = validBody(rng, endpoint) ?? randomJson(rng, 2);
        text = mutateText(rng, JSON.stringify(v));
        break;
      }
      case 'malformed':
        text = rng.chance(0.8) ? rng.pick(MALFORMED) : rng.bytes(rng.int(1, 64));
        break;
      case 'huge': {
        const size = rng.weighted<number>([
          [4, LIMIT + rng.int(-3, 3)],
          [2, LIMIT + rng.int(-300, 300)],
          [1, rng.pick([100_000, 1024 * 1024])],
        ]);
        text = hugeBody(rng, endpoint, size);
        break;
      }
      case 'deep':
        text = deepBody(rng, endpoint);
        break;
      case 'no-body':
        text = undefined;
        break;
    }

    const plain = text === undefined ? undefined : Buffer.from(text);
    const headers: Record<string, string> = {};
    // The content type: mostly JSON, sometimes not, sometimes with a charset.
    const contentType = rng.weighted<string | undefined>([
      [30, 'application/json'],
      [3, 'application/json; charset=utf-8'],
      [1, 'APPLICATION/JSON'],
      [1, 'application/json; charset=latin1'],
      [1, 'application/json; charset=utf-16'],
      [1, 'application/json; charset=utf-nope'],
      [1, 'text/plain'],
      [1, 'application/x-www-form-urlencoded'],
      [1, 'application/problem+json'],
      [1, 'application/json-patch+json'],
      [1, 'multipart/form-data; boundary=x'],
      [1, undefined],
    ]);
    if (contentType !== undefined) headers['Content-Type'] = contentType;
    const origin = rng.weighted<string | undefined>([
      [12, undefined],
      [6, `http://127.0.0.1:${serve.port}`],
      [1, `https://127.0.0.1:${serve.port}`],
      [1, 'http://evil.example'],
      [1, 'null'],
      [1, 'not a url'],
    ]);
    if (origin !== undefined) headers['Origin'] = origin;
    let body = plain;
    if (plain && rng.chance(0.06)) {
      const encoding = rng.pick(['gzip', 'deflate', 'br', 'gzip-garbage', 'compress', 'gzip-bomb']);
      if (encoding === 'gzip') body = zlib.gzipSync(plain);
      else if (encoding === 'deflate') body = zlib.deflateSync(plain);
      else if (encoding === 'br') body = zlib.brotliCompressSync(plain);
      else if (encoding === 'gzip-garbage') body = Buffer.concat([Buffer.from([0x1f, 0x8b]), rng.bytes(40)]);
      else if (encoding === 'gzip-bomb') body = zlib.gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20));
      else body = plain;
      headers['Content-Encoding'] = encoding.replace(/-.*/, '');
      return {
        kind: `${kind}+${encoding}`,
        endpoint,
        method,
        path,
        headers,
        body,
        framing: 'length',
        plain: encoding === 'gzip-garbage' ? undefined : encoding === 'gzip-bomb' ? Buffer.alloc(8 * 1024 * 1024, 0x20) : plain,
      };
    }
    return { kind, endpoint, method, path, headers, body, framing: rng.chance(0.1) ? 'chunked' : 'length', plain };
  }

  /** Percent-encodes a path segment byte by byte (lone surrogates become U+FFFD, as in UTF-8). */
  function encodePath(text: string): string {
    let out = '';
    for (const byte of Buffer.from(text, 'utf8')) {
      const ch = String.fromCharCode(byte);
      out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    return out;
  }

  // ---- the prediction ------------------------------------------------------------------------

  type Parsed = { value: unknown } | { none: true };

  /** The answers the app may give to `c`, given the model; `parsed` is what the route sees. */
  function predict(c: ApiCase): { statuses: number[]; parsed?: Parsed } {
    const origin = c.headers['Origin'];
    if (origin !== undefined && !isSameOrigin(origin)) return { statuses: [403] };
    const hasBody = c.framing === 'chunked' || (c.body?.length ?? 0) > 0;
    const ct = c.headers['Content-Type'];
    const json = ct !== undefined && /^application\/json\s*(;|$)/i.test(ct);
    if (hasBody && !json) return { statuses: [415] };
    let parsed: Parsed = { none: true };
    if (json) {
      // body-parser: the charset must be utf-* and one iconv knows (checked before reading), the
      // encoding one it can inflate; then the size limit (after inflating), then JSON.parse.
      // raw-body refuses a declared length above the limit before it looks up the decoder.
      const charset = /charset=([^;\s]+)/i.exec(ct!)?.[1]?.toLowerCase() ?? 'utf-8';
      if (!charset.startsWith('utf-')) return { statuses: [415] };
      const encoding = (c.headers['Content-Encoding'] ?? 'identity').toLowerCase();
      if (!['identity', 'gzip', 'deflate', 'br'].includes(encoding)) return { statuses: [415] };
      if (encoding === 'identity' && c.framing === 'length' && (c.body?.length ?? 0) > LIMIT) return { statuses: [413] };
      if (charset === 'utf-nope') return { statuses: [415] };
      if (c.plain === undefined && c.body !== undefined) return { statuses: [400] }; // undecodable
      const plain = c.plain ?? Buffer.alloc(0);
      if (plain.length > LIMIT) return { statuses: [413] };
      // UTF-16 read of UTF-8 text: garbage, unless it decodes to nothing (one byte), which is {}.
      if (charset !== 'utf-8' && plain.length > 0) return { statuses: [400, ...routeStatuses(c, { value: {} })] };
      // body-parser: iconv decodes (dropping a BOM); an empty body is {}.
      const text = plain.toString('utf8').replace(/^\ufeff/, '');
      try {
        parsed = { value: text === '' ? {} : JSON.parse(text) };
      } catch {
        return { statuses: [400] };
      }
    }
    return { statuses: routeStatuses(c, parsed), parsed };
  }

  function isSameOrigin(origin: string): boolean {
    if (origin === 'null') return false;
    try {
      return new URL(origin).host === `127.0.0.1:${serve.port}`;
    } catch {
      return false;
    }
  }

  function routeStatuses(c: ApiCase, parsed: Parsed): number[] {
    const value = 'value' in parsed ? parsed.value : undefined;
    switch (c.endpoint) {
      case 'config': {
        if (value === undefined) return [400];
        return validateConfigInput(value, { versionOptional: true }).ok ? [200] : [400];
      }
      case 'probe': {
        // "Same checks as the configuration": a whole number 1-65535, or the page's digits.
        const body = (value ?? {}) as { host?: unknown; port?: unknown };
        const hostOk = typeof body.host === 'string' && isValidHost(body.host.trim());
        const portOk =
          typeof body.port === 'number'
            ? Number.isInteger(body.port) && body.port >= 1 && body.port <= 65535
            : typeof body.port === 'string' && /^\d{1,5}$/.test(body.port) && Number(body.port) >= 1 && Number(body.port) <= 65535;
        return hostOk && portOk ? [200] : [400];
      }
      case 'target-probe': {
        const raw = c.path.slice(`${API}/targets/`.length, -'/probe'.length);
        let id: string;
        try {
          id = decodeURIComponent(raw);
        } catch {
          return [400];
        }
        return model.config.targets.some((t) => t.id === id) ? [200] : [404];
      }
      case 'save':
      case 'load':
        return parseCallbackBody(value ?? {}).ok ? [204] : [400];
      case 'other': {
        const p = c.path.replace(/\?.*$/, '');
        if (c.method === 'GET' && (p.endsWith('/config') || p.endsWith('/status'))) return [200];
        if (c.method === 'OPTIONS') return [200, 204, 404];
        return [404];
      }
    }
  }

  /** True when a probe would leave loopback or hit a port that is not ours (never sent). */
  function probesOutside(c: ApiCase, parsed: Parsed | undefined): boolean {
    if (c.endpoint !== 'probe' || !parsed || !('value' in parsed)) return false;
    const body = (parsed.value ?? {}) as { host?: unknown; port?: unknown };
    if (typeof body.host !== 'string' || !isValidHost(body.host.trim())) return false;
    let port: number;
    try {
      port = parsePort(String(body.port ?? ''));
    } catch {
      return false;
    }
    return !['127.0.0.1', '::1'].includes(body.host.trim()) || (port !== refused && port !== vnc.port);
  }

  /** Applies an accepted request to the model. */
  function apply(c: ApiCase, parsed: Parsed | undefined, res: RawHttpResponse): void {
    const value = parsed && 'value' in parsed ? parsed.value : undefined;
    if (c.endpoint === 'config' && res.status === 200) {
      const v = validateConfigInput(value, { versionOptional: true });
      assert.ok(v.ok);
      assert.deepEqual(fromView(JSON.parse(res.text)), v.config, 'PUT answers with the configuration now in use');
      setConfig(v.config);
    }
    if (c.endpoint === 'load' && res.status === 204) {
      const parsedBody = parseCallbackBody(value ?? {});
      assert.ok(parsedBody.ok);
      const phase = parsedBody.body.phase;
      if (BEGIN_PHASES.has(phase)) model.tx ??= { previous: model.config };
      else if (phase === 'activate') model.tx = null;
      else if (phase === 'abort' && model.tx) {
        setConfig(model.tx.previous);
        model.tx = null;
      }
    }
  }

  function setConfig(config: Config): void {
    model.config = config;
    model.localIds = new Set(
      config.targets.filter((t) => (t.host === '127.0.0.1' || t.host === '::1') && (t.port === refused || t.port === vnc.port)).map((t) => t.id),
    );
  }

  /** The configuration in an API answer: each target's `passwordSet` checked and taken off. */
  function fromView(view: { version: number; targets: Record<string, unknown>[] }): Config {
    return {
      version: view.version,
      targets: view.targets.map(({ passwordSet, ...t }) => {
        assert.equal(typeof passwordSet, 'boolean', 'targets[].passwordSet');
        return t as unknown as Config['targets'][number];
      }),
    } as Config;
  }

  /** config.json parses, validates and holds the configuration last accepted. */
  function assertFileIntact(): void {
    const text = fs.readFileSync(serve.file, 'utf8');
    assert.ok(!text.includes(SECRET), 'config.json never holds a password');
    const v = validateConfig(JSON.parse(text));
    assert.ok(v.ok, `config.json validates: ${clip(text)}`);
    assert.deepEqual(v.config, model.config, 'config.json holds the configuration last accepted');
  }

  function describeCase(c: ApiCase): string {
    const body = c.plain === undefined ? '(no body)' : JSON.stringify(clip(c.plain.toString('utf8'), 300));
    return `${c.kind} ${c.method} ${clip(c.path, 100)} ${JSON.stringify(c.headers)} ${c.framing} ${body}`;
  }

  // ---- the run -------------------------------------------------------------------------------

  it('warms up with valid requests', async () => {
    const put = await rawHttp(serve.port, {
      method: 'PUT',
      path: `${API}/config`,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ targets: [{ id: 'local', name: 'Local', host: '127.0.0.1', port: vnc.port }] }),
    });
    assert.equal(put.status, 200, put.text);
    model = { config: JSON.parse(put.text) as Config, tx: null, localIds: new Set() };
    setConfig(model.config);
    for (let i = 0; i < 30; i++) {
      const rng = new Rng(mix(SEED, 'api-warm', i));
      const c = caseFor(rng);
      c.kind = 'valid';
      const v = validBody(rng, c.endpoint);
      c.body = c.plain = v === undefined ? undefined : Buffer.from(JSON.stringify(v));
      c.headers = { 'Content-Type': 'application/json' };
      const { statuses: expected, parsed } = predict(c);
      if (probesOutside(c, parsed)) continue;
      const res = await rawHttp(serve.port, { method: c.method, path: c.path, headers: c.headers, body: c.body, framing: c.framing });
      assert.ok(expected.includes(res.status), `${describeCase(c)}: expected ${expected}, got ${res.status} ${clip(res.text)}`);
      apply(c, parsed, res);
    }
    assertFileIntact();
    rssWarm = serve.vitals().rssKiB;
  });

  it('answers every request with a 2xx or a clear 4xx Problem JSON, as predicted', { timeout: 600_000 }, async () => {
    for (let i = 0; i < REQUESTS; i++) {
      const rng = new Rng(mix(SEED, 'api', i));
      const c = caseFor(rng);
      await iteration(SEED, i, () => describeCase(c), async () => {
        const { statuses: expected, parsed } = predict(c);
        if (probesOutside(c, parsed)) {
          // A valid probe of a host or port not ours: the app would really connect. Counted, not sent.
          kinds.add('probe-outside-skipped');
          return;
        }
        kinds.add(c.kind.replace(/\+.*/, ''));
        if (c.headers['Content-Encoding']) encodings.add(c.headers['Content-Encoding']);
        let res: RawHttpResponse;
        try {
          res = await rawHttp(serve.port, { method: c.method, path: c.path, headers: c.headers, body: c.body, framing: c.framing });
        } catch (err) {
          assert.ok(serve.alive(), `serve crashed (exit ${serve.proc.child.exitCode ?? serve.proc.child.signalCode})\n${serve.tail()}`);
          // The server may answer early (413) and hang up while a large body is still being sent.
          if ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
            statuses.add('reset');
            assert.ok(expected.includes(413) || expected.includes(415) || expected.includes(403), `connection reset, expected ${expected}`);
            return;
          }
          throw err;
        }
        statuses.add(res.status);
        if (!c.kind.startsWith('text-mutated')) assert.ok(!res.text.includes(SECRET), `no answer shows a password: ${clip(res.text)}`);
        assert.ok(res.status < 500, `no 5xx: ${res.status} ${clip(res.text)}\n${serve.tail(5)}`);
        if (res.status === 431) return; // Node's own answer to a request line/headers above 16 KiB
        assert.ok(expected.includes(res.status), `expected ${expected.join(' or ')}, got ${res.status}: ${clip(res.text, 300)}`);
        if (res.status >= 400) assertClearProblem(res);
        if (c.endpoint === 'probe' && res.status === 200) {
          const p = JSON.parse(res.text);
          assert.equal(typeof p.ok, 'boolean');
          assert.equal(typeof p.message, 'string');
        }
        apply(c, parsed, res);
        if (i % 100 === 99) assertFileIntact();
      });
    }
  });

  it('keeps serving, memory bounded, config.json intact and equal to the last accepted configuration', async () => {
    const status = await serve.assertServing();
    assertFileIntact();
    const get = await rawHttp(serve.port, { method: 'GET', path: `${API}/config` });
    assert.deepEqual(fromView(JSON.parse(get.text)), model.config, 'GET config');
    assert.equal(status.config.state, 'ok');
    assert.equal(status.config.loading, model.tx !== null, 'a load transaction is open exactly when the model says so');
    const rss = serve.vitals().rssKiB;
    assert.ok(rss - rssWarm < RSS_GROWTH_KIB, `RSS grew from ${mb(rssWarm)} to ${mb(rss)}`);
    for (const code of statuses.keys()) assert.ok(!/^5/.test(code), `no 5xx: ${statuses}`);
    recordReliability({
      table: 'inputs',
      name: 'JSON API: random and mutated bodies',
      tried:
        `${statuses.total} requests to PUT config, POST probe, targets/:id/probe, save, load: ${kinds}; ` +
        `${encodings.total} compressed (${encodings}), wrong content types, charsets, origins; ${replay(SEED)}`,
      outcome:
        `answers ${statuses}; no 5xx, every 4xx Problem JSON with title/detail (errors[].field on validation); RSS ${mb(rssWarm)} → ${mb(rss)}; crashes 0; config.json valid and equal to the last accepted configuration`,
    });
  });

  // ---- what the fuzzer found: the inputs, with the answers they should get -------------------

  it(
    'names the field of an unknown key "" in errors[].field',
    async () => {
      const res = await rawHttp(serve.port, {
        method: 'PUT',
        path: `${API}/config`,
        headers: { 'Content-Type': 'application/json' },
        body: '{"targets":[],"":1}',
      });
      assertClearProblem(res, 400);
    },
  );

  it(
    'refuses a probe port given as a list or an object with a clear "port" error',
    async () => {
      for (const port of [`[${refused}]`, '{}', nestedArrays(4000, String(refused))]) {
        const res = await rawHttp(serve.port, {
          method: 'POST',
          path: `${API}/probe`,
          headers: { 'Content-Type': 'application/json' },
          body: `{"host":"127.0.0.1","port":${port}}`,
        });
        const p = assertClearProblem(res, 400);
        assert.equal(p['field'], 'port');
      }
    },
  );
});
