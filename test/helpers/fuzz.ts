/**
 * @module
 * Seeded, bounded fuzzing. The run's seed (`FUZZ_SEED`, decimal or `0x…`, printed in every test
 * name and failure) and budget (`FUZZ_BUDGET`, iterations; each fuzz file takes its share), a
 * PRNG with picks and weights, random and mutated JSON, a raw HTTP client that gives up instead of
 * hanging, and `serve` as a child process whose vital signs (VmRSS, open descriptors) are read
 * from /proc. Replaying a failure: run the same file with the seed it printed.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { API, configPaths, makeTempDir, removeDir } from './app.js';
import { fdCount, fdKinds, rssKiB } from './proc.js';
import { prng } from './stream.js';
import { waitFor } from './wait.js';
import { childEnv, spawnServe, type ServeProcess } from './cli.js';
import type { AppStatus } from '../../src/web/app.js';

// ---- seed and budget ------------------------------------------------------------------------

/** The seed used when `FUZZ_SEED` is not set: fixed, so CI runs are reproducible. */
export const DEFAULT_FUZZ_SEED = 0x5eed1;
/**
 * Iterations of the cheapest unit (one API request) when `FUZZ_BUDGET` is not set: all fuzz files
 * together take about 20 s on 2 cores (a quarter of it waiting for the relay's 5 s greeting
 * timeout). Long runs: `FUZZ_BUDGET=20000` or more.
 */
export const DEFAULT_FUZZ_BUDGET = 1500;

/** The run's seed: `FUZZ_SEED` (decimal or hex) or {@link DEFAULT_FUZZ_SEED}. */
export function fuzzSeed(): number {
  const raw = process.env['FUZZ_SEED'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_FUZZ_SEED;
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`FUZZ_SEED: "${raw}" must be a non-negative integer`);
  return n >>> 0;
}

/**
 * This file's iterations: `FUZZ_BUDGET` (or {@link DEFAULT_FUZZ_BUDGET}) times `share`, the cost
 * of one of its iterations relative to one API request (a WebSocket session is dearer).
 */
export function fuzzBudget(share: number): number {
  const raw = process.env['FUZZ_BUDGET'];
  const total = raw === undefined || raw.trim() === '' ? DEFAULT_FUZZ_BUDGET : Number(raw);
  if (!Number.isFinite(total) || total <= 0) throw new RangeError(`FUZZ_BUDGET: "${raw}" must be a positive number`);
  return Math.max(1, Math.round(total * share));
}

/** How to replay: `FUZZ_SEED=0x5eed1`. */
export function replay(seed: number): string {
  return `FUZZ_SEED=0x${seed.toString(16)}`;
}

/** A 32-bit hash of a seed and labels, so each file and iteration draws its own stream. */
export function mix(seed: number, ...parts: (number | string)[]): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const part of parts) {
    const s = String(part);
    for (let i = 0; i < s.length; i++) {
      h = Math.imul(h ^ s.charCodeAt(i), 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ 0x2f, 0xc2b2ae35) >>> 0;
  }
  return h >>> 0;
}

/**
 * Runs `body` and, when it throws, prefixes the message with the seed, the iteration and what was
 * tried, so the failure names its input and can be replayed.
 */
export async function iteration<T>(seed: number, i: number, what: () => string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const context = `${replay(seed)} iteration ${i}: ${clip(what(), 400)}\n`;
    if (err instanceof Error) {
      // The reporter prints the stack, which carries the message from when it was made.
      err.message = context + err.message;
      if (err.stack) err.stack = context + err.stack;
      throw err;
    }
    throw new Error(context + String(err));
  }
}

/** `text`, cut to `max` characters with a note of how much was left out. */
export function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

// ---- the PRNG ---------------------------------------------------------------------------------

/** A seeded random source (mulberry32) with the picks fuzzers need. */
export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = prng(seed);
  }

  /** A 32-bit unsigned integer. */
  u32(): number {
    return this.next();
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'pick from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** Picks a value by weight: `[[3, 'often'], [1, 'seldom']]`. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    const total = table.reduce((sum, [w]) => sum + w, 0);
    let r = this.float() * total;
    for (const [w, value] of table) {
      r -= w;
      if (r < 0) return value;
    }
    return table[table.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const buf = Buffer.allocUnsafe(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) buf.writeUInt32LE(this.next(), i);
    for (; i < n; i++) buf[i] = this.next() & 0xff;
    return buf;
  }

  /** A string of `n` characters from `alphabet`. */
  chars(n: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[this.int(0, alphabet.length - 1)];
    return out;
  }

  /** A length biased towards small values but reaching `max` now and then. */
  size(max: number): number {
    return this.weighted([
      [6, () => this.int(0, Math.min(8, max))],
      [3, () => this.int(0, Math.min(64, max))],
      [1, () => this.int(0, max)],
    ])();
  }

  /** `items` in a random order (a new array). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

// ---- values -----------------------------------------------------------------------------------

/** Strings that tend to break parsers, validators and templates. */
export const NASTY_STRINGS: readonly string[] = [
  '', ' ', '\t', '\r\n', '0', '-1', '5900', '65535', '65536', '99999', '05900', ' 5900 ', '5900.0', '1e3', '0x170c',
  'NaN', 'Infinity', '-Infinity', 'null', 'true', 'undefined', '５９００', '127.0.0.1', '::1', '[::1]', 'localhost',
  '10.0.0.1:5900', 'http://10.0.0.1', '256.1.1.1', '1.2.3', 'a..b', '-host', 'host-', 'bad_name', 'a'.repeat(63), 'a'.repeat(64),
  'a'.repeat(65), `${`${'a'.repeat(62)}.`.repeat(4)}ab`, 'ä', 'ÿ', '😀', '\u0000', '\ud800', '\udfff\ud800', '\u202e', '\ufeff',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', '{{7*7}}', '<%= 7*7 %>', '${7*7}', '../../etc/passwd', '%00',
  '%zz', "' OR 1=1 --", '__proto__', 'constructor', 'toString', 'x'.repeat(1000),
];

/** Numbers around the edges of ports, integers and floats. */
export const NASTY_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 5900, 65535, 65536, 65537, -65535, 0.5, 5900.5, 5900.000001, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 63),
  1e21, 1e308, 5e-324, Number.MAX_VALUE,
];

/** Object keys: the config's own, the callbacks', and prototype names. */
export const KEYS: readonly string[] = [
  'version', 'targets', 'id', 'name', 'host', 'port', 'password', 'passwordSet', 'phase', 'configurationPath', '__proto__', 'constructor', 'prototype',
  'toString', 'hasOwnProperty', '', ' ', 'Targets', 'PORT', 'extra', 'x', 'length', '0', 'ID',
];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A random string: ASCII, Unicode (astral, lone surrogates, controls) or a nasty one. */
export function randomString(rng: Rng, max = 80): string {
  return rng.weighted<() => string>([
    [3, () => rng.chars(rng.size(max), 'abcdefghijklmnopqrstuvwxyz0123456789-_.:')],
    [2, () => rng.chars(rng.size(max), ' !"#$%&\'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~')],
    [2, () => Array.from({ length: rng.size(max) }, () => String.fromCharCode(rng.int(0, 0xffff))).join('')],
    [1, () => Array.from({ length: rng.size(Math.floor(max / 2)) }, () => String.fromCodePoint(rng.int(0x10000, 0x10ffff))).join('')],
    [3, () => rng.pick(NASTY_STRINGS)],
  ])();
}

/** A random JSON value, at most `depth` levels deep. */
export function randomJson(rng: Rng, depth = 3): Json {
  const leaf: readonly (readonly [number, () => Json])[] = [
    [1, () => null],
    [1, () => rng.chance(0.5)],
    [2, () => rng.pick(NASTY_NUMBERS)],
    [2, () => rng.int(-100_000, 100_000)],
    [1, () => (rng.float() - 0.5) * 10 ** rng.int(-5, 20)],
    [3, () => randomString(rng)],
  ];
  if (depth <= 0) return rng.weighted(leaf)();
  return rng.weighted<() => Json>([
    ...leaf,
    [2, () => Array.from({ length: rng.size(6) }, () => randomJson(rng, depth - 1))],
    [
      3,
      () => {
        const obj: { [key: string]: Json } = {};
        const n = rng.size(6);
        for (let i = 0; i < n; i++) defineKey(obj, rng.chance(0.7) ? rng.pick(KEYS) : randomString(rng, 12), randomJson(rng, depth - 1));
        return obj;
      },
    ],
  ])();
}

/** Sets `obj[key]` as an own property, even for `__proto__` (what JSON.parse would produce). */
export function defineKey(obj: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** `depth` nested arrays around `inner` (as text: no recursion on either side). */
export function nestedArrays(depth: number, inner = ''): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}

/** `depth` nested objects `{"a":…}` around `inner`. */
export function nestedObjects(depth: number, inner = '1', key = 'a'): string {
  return `{"${key}":`.repeat(depth) + inner + '}'.repeat(depth);
}

/** A deep clone of a JSON value that keeps `__proto__` keys as own properties. */
export function cloneJson<T extends Json>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Every path (list of keys and indexes) in `value`, the root included. */
function paths(value: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) for (const [i, v] of value.entries()) paths(v, [...at, i], out);
  else if (value && typeof value === 'object') for (const k of Object.keys(value)) paths(value[k]!, [...at, k], out);
  return out;
}

/**
 * One structural mutation of a JSON value (a fresh copy): drop or duplicate a field or element,
 * change its type, set a nasty value, add an unknown key, nest it, or empty a container.
 */
export function mutateJson(rng: Rng, input: Json): Json {
  const root = cloneJson(input);
  const all = paths(root);
  const at = rng.pick(all);
  const get = (p: (string | number)[]): Json => p.reduce<Json>((v, k) => (v as any)[k], root);
  const set = (p: (string | number)[], v: Json): Json => {
    if (p.length === 0) return v;
    const parent = get(p.slice(0, -1)) as any;
    const key = p[p.length - 1]!;
    if (Array.isArray(parent)) parent[key as number] = v;
    else defineKey(parent, key as string, v);
    return root;
  };
  const here = get(at);
  return rng.weighted<() => Json>([
    [
      3,
      () => {
        // drop
        if (at.length === 0) return rng.chance(0.5) ? {} : [];
        const parent = get(at.slice(0, -1)) as any;
        const key = at[at.length - 1]!;
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key];
        return root;
      },
    ],
    [
      2,
      () => {
        // duplicate an element (or the whole value into a list)
        if (at.length > 0 && Array.isArray(get(at.slice(0, -1)))) {
          const parent = get(at.slice(0, -1)) as Json[];
          parent.splice(at[at.length - 1] as number, 0, cloneJson(here));
          return root;
        }
        return set(at, [here, cloneJson(here)]);
      },
    ],
    [3, () => set(at, randomJson(rng, 2))],
    [3, () => set(at, rng.chance(0.5) ? rng.pick(NASTY_STRINGS) : rng.pick(NASTY_NUMBERS))],
    [2, () => set(at, typeof here === 'number' ? String(here) : typeof here === 'string' && /^-?\d+$/.test(here) ? Number(here) : [here])],
    [
      2,
      () => {
        if (here && typeof here === 'object' && !Array.isArray(here)) {
          defineKey(here, rng.chance(0.6) ? rng.pick(KEYS) : randomString(rng, 20), randomJson(rng, 1));
          return root;
        }
        return set(at, { [rng.pick(KEYS)]: here });
      },
    ],
    [1, () => set(at, Array.isArray(here) ? [] : here && typeof here === 'object' ? {} : null)],
  ])();
}

/** Raw-text mutations of a JSON document: bytes flipped, cut, inserted, tokens JSON forbids. */
export function mutateText(rng: Rng, text: string): string | Buffer {
  const at = rng.int(0, text.length);
  return rng.weighted<() => string | Buffer>([
    [2, () => text.slice(0, at)],
    [2, () => text.slice(0, at) + rng.pick(['NaN', 'Infinity', '-Infinity', 'undefined', '1e400', '-1e400', '0x10', '01', '.5', '+1', "'x'", ',', ',,', '}', ']', '{', '[', ':', '"', '\\', '\\u12', '\u0000', '//c', '/*', '\n', '"\t"']) + text.slice(at)],
    [1, () => text.slice(0, at) + text.slice(at + rng.int(1, 8))],
    [1, () => text.replace(/"(\w+)":/, '"$1":1,"$1":')],
    [1, () => text.replace(/}$/, ',}').replace(/]$/, ',]')],
    [1, () => `\ufeff${text}`],
    [1, () => text + rng.pick([' ', '\n', 'x', '{}', '[]', '\u0000'])],
    [
      2,
      () => {
        // Invalid UTF-8 / raw bytes in the middle.
        const buf = Buffer.from(text);
        const pos = rng.int(0, buf.length);
        return Buffer.concat([buf.subarray(0, pos), rng.chance(0.5) ? Buffer.from([0xc3]) : rng.bytes(rng.int(1, 6)), buf.subarray(pos)]);
      },
    ],
  ])();
}

// ---- outcomes -----------------------------------------------------------------------------------

/** Counts outcomes by key and prints them as `200×12, 400×80`. */
export class Histogram {
  private readonly counts = new Map<string, number>();

  add(key: string | number): void {
    const k = String(key);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  get(key: string | number): number {
    return this.counts.get(String(key)) ?? 0;
  }

  get total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  keys(): string[] {
    return [...this.counts.keys()];
  }

  toString(): string {
    return [...this.counts.entries()]
      .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
      .map(([k, v]) => `${k}×${v}`)
      .join(', ');
  }
}

/** Rejects with a "gave up" error when `promise` has not settled after `ms`: a hang guard, not a timing check. */
export function giveUpAfter<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms: ${what} (a hang)`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

// ---- HTTP without guard rails -----------------------------------------------------------------

export interface RawHttpRequest {
  method: string;
  path: string;
  /** Sent exactly as given (no Content-Type is added). */
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** `length` (default): a Content-Length header (0 without a body); `chunked`: Transfer-Encoding chunked. */
  framing?: 'length' | 'chunked';
}

export interface RawHttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request on a fresh connection; gives up (rejects) after `giveUpMs` without an answer. */
export function rawHttp(port: number, req: RawHttpRequest, giveUpMs = 20_000): Promise<RawHttpResponse> {
  const body = req.body === undefined ? Buffer.alloc(0) : Buffer.from(req.body);
  const headers: Record<string, string> = { ...req.headers };
  if ((req.framing ?? 'length') === 'length') headers['Content-Length'] = String(body.length);
  else headers['Transfer-Encoding'] = 'chunked';
  const answer = new Promise<RawHttpResponse>((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    r.on('error', reject);
    if (req.framing === 'chunked') {
      // A few chunks of random-ish sizes (deterministic: thirds).
      const third = Math.ceil(body.length / 3);
      for (let i = 0; i < body.length; i += Math.max(1, third)) r.write(body.subarray(i, i + Math.max(1, third)));
      r.end();
    } else r.end(body);
  });
  return giveUpAfter(answer, giveUpMs, `${req.method} ${clip(req.path, 80)}`);
}

/** Texts of JavaScript errors that must not reach a user as an explanation. */
export const INTERNAL_TEXT = /Maximum call stack|Cannot read prop|is not a function|is not iterable|TypeError|RangeError|ReferenceError|\[object Object\]|\n\s+at /;

/**
 * Asserts a Problem JSON answer (RFC 9457) that tells the user what went wrong: the status, a
 * non-empty `title` and `detail`, and for validation failures `errors[].field` naming fields.
 */
export function assertClearProblem(res: RawHttpResponse, status?: number): Record<string, any> {
  if (status !== undefined) assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${clip(res.text)}`);
  assert.ok(res.status >= 400 && res.status < 500, `a 4xx, got ${res.status}: ${clip(res.text)}`);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `problem+json for ${res.status}: ${clip(res.text)}`);
  const body = JSON.parse(res.text) as Record<string, any>;
  assert.equal(body['status'], res.status, 'problem.status');
  assert.equal(typeof body['type'], 'string', 'problem.type');
  assert.ok(typeof body['title'] === 'string' && body['title'].length > 0, 'problem.title');
  assert.ok(typeof body['detail'] === 'string' && body['detail'].length > 0, 'problem.detail');
  assert.doesNotMatch(body['detail'], INTERNAL_TEXT, 'problem.detail speaks to the user, not of internals');
  if (body['type'] === 'urn:ctrlx-novnc:problem:validation-failed' && body['status'] === 400) {
    assert.ok(Array.isArray(body['errors']) && body['errors'].length > 0, `errors[] lists the fields: ${clip(res.text)}`);
    for (const e of body['errors']) {
      assert.ok(typeof e.field === 'string' && e.field.length > 0, `errors[].field names a field: ${clip(JSON.stringify(e))}`);
      assert.ok(typeof e.message === 'string' && e.message.length > 0, `errors[].message: ${clip(JSON.stringify(e))}`);
      assert.doesNotMatch(e.message, INTERNAL_TEXT, 'errors[].message speaks to the user, not of internals');
    }
    assert.equal(body['field'], body['errors'][0].field, 'problem.field is the first error');
  } else if (res.status === 400 && Array.isArray(body['errors'])) {
    for (const e of body['errors']) assert.ok(typeof e.field === 'string' && typeof e.message === 'string', 'errors[] entries');
  }
  return body;
}

// ---- the process under test --------------------------------------------------------------------

export interface Vitals {
  /** Resident set size, KiB (VmRSS). */
  rssKiB: number;
  /** Open file descriptors. */
  fds: number;
}

/** VmRSS and the number of open descriptors of `pid`, from /proc. */
export function vitals(pid: number): Vitals {
  return { rssKiB: rssKiB(pid), fds: fdCount(pid) };
}

export interface FuzzServe {
  proc: ServeProcess;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>`, a same-origin `Origin`. */
  origin: string;
  root: string;
  /** config.json. */
  file: string;
  /** True while the child runs. */
  alive(): boolean;
  vitals(): Vitals;
  /** Fails unless the child runs and answers GET status with 200; returns the status. */
  assertServing(): Promise<AppStatus>;
  /** The last `n` lines of the child's output, for failure messages. */
  tail(n?: number): string;
  /** SIGTERM (SIGKILL if it lingers) and removes the data folder. */
  close(): Promise<void>;
}

/**
 * The memory settings the snap ships (snap/snapcraft.yaml): a 32 MB old space, 1 MB semi-spaces,
 * two malloc arenas. A leak then ends in an out-of-memory crash the fuzz run sees.
 */
export const SHIPPED_MEMORY_ENV: NodeJS.ProcessEnv = {
  NODE_OPTIONS: '--max-old-space-size=32 --max-semi-space-size=1',
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/**
 * `ctrlx-novnc serve --listen 127.0.0.1:0` over a fresh data folder, as a child process with the
 * shipped memory settings ({@link SHIPPED_MEMORY_ENV}).
 */
export async function startFuzzServe(label: string): Promise<FuzzServe> {
  const root = await makeTempDir(`fuzz-${label}`);
  let proc: ServeProcess;
  try {
    // The fuzz runs far more requests a minute than a person: lift the rate limits (they have their own tests).
    proc = await spawnServe(
      ['--listen', '127.0.0.1:0', '--data', root, '--api-rate', '1000000', '--change-rate', '1000000'],
      { env: childEnv(SHIPPED_MEMORY_ENV) },
    );
  } catch (err) {
    await removeDir(root);
    throw err;
  }
  const port = proc.port!;
  const pid = proc.child.pid!;
  const alive = (): boolean => proc.child.exitCode === null && proc.child.signalCode === null;
  const tail = (n = 20): string => [...proc.stdout.slice(-n), ...proc.stderr.slice(-n)].join('\n');
  let closing: Promise<void> | undefined;
  return {
    proc,
    pid,
    port,
    origin: `http://127.0.0.1:${port}`,
    root,
    file: configPaths(path.join(root, 'solutions')).file,
    alive,
    vitals: () => vitals(pid),
    tail,
    assertServing: async () => {
      assert.ok(alive(), `serve is still running (it exited: ${proc.child.exitCode ?? proc.child.signalCode})\n${tail()}`);
      const res = await rawHttp(port, { method: 'GET', path: `${API}/status` });
      assert.equal(res.status, 200, `GET status answers 200: ${clip(res.text)}`);
      return JSON.parse(res.text) as AppStatus;
    },
    close: () =>
      (closing ??= (async () => {
        if (alive()) {
          const killer = setTimeout(() => proc.child.kill('SIGKILL'), 8000);
          await proc.stop('SIGTERM');
          clearTimeout(killer);
        }
        await removeDir(root);
      })()),
  };
}

/** Waits until the relay has no open session (GET status), failing after `timeoutMs`. */
export async function waitSessionsClosed(serve: FuzzServe, timeoutMs = 40_000): Promise<void> {
  let status: AppStatus | undefined;
  const open = async (): Promise<number> => {
    status = await serve.assertServing();
    return status.relay.totals.sessionsOpen;
  };
  await waitFor('no open session', async () => (await open()) === 0, {
    timeoutMs,
    intervalMs: 50,
    seen: () => `sessions still open: ${JSON.stringify(status?.relay.sessions)}`,
  });
}

/** Waits until the child's descriptor count is back at or below `baseline` (fails after `timeoutMs`). */
export async function waitFdsBack(serve: FuzzServe, baseline: number, timeoutMs = 10_000): Promise<number> {
  let fds = Number.NaN;
  const back = (): boolean => {
    fds = serve.vitals().fds;
    return fds <= baseline;
  };
  await waitFor(`descriptors back to ${baseline}`, back, {
    timeoutMs,
    intervalMs: 50,
    seen: () => `descriptors leaked: ${fds} open, ${baseline} before the batch: ${JSON.stringify(fdKinds(serve.pid))}`,
  });
  return fds;
}

/** KiB as `12.3 MB`. */
export function mb(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MB`;
}
