/**
 * @module
 * Rate limits per client, with answers in words:
 * - every API request (`api/v1/…`): 600 a minute (the settings page polls the status every 2 s,
 *   so even many open tabs stay far below);
 * - state-changing calls (PUT/POST on the API, the settings form's posts): 60 a minute;
 * - failed logins (a 401 from the route guard on the API, a page or a relay upgrade): after 10 in
 *   5 minutes every request of that client that needs a login gets 429 until the window ends.
 *   Only with authentication on (always on the device); successful requests never count, and
 *   neither do requests a browser marks `Sec-Fetch-Site: cross-site` that carry their token in
 *   the URL or a form: the guard refuses them before this budget is touched (access.ts), so no
 *   page of another site can spend a user's budget.
 *
 * Answers are 429 with `Retry-After`: Problem JSON on the API, the error page elsewhere, and an
 * HTTP response before the upgrade on the relay path. Counts are kept in memory in fixed windows
 * (express-rate-limit's MemoryStore for requests and changes, {@link FailedLoginLimiter} for
 * logins) and start again with the process.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { MemoryStore, ipKeyGenerator, rateLimit, type Options, type RateLimitInfo } from 'express-rate-limit';
import { AppError, ERR_TOO_MANY_REQUESTS } from '../errors.js';
import { type Message, type MessageKey, render, translate } from '../common/i18n/index.js';
import { silentLogger, type Logger } from '../log.js';

/** At most `limit` counted requests per client within `windowMs` milliseconds (a fixed window). */
export interface Limit {
  limit: number;
  windowMs: number;
}

export interface RateLimits {
  /** Every request under `api/v1/`. Default 600 a minute. */
  api: Limit;
  /** PUT/POST (also PATCH/DELETE) on the API and posts of the settings form. Default 60 a minute. */
  changes: Limit;
  /** Failed logins (401 from the guard); then 429 for all that needs a login. Default 10 in 5 minutes. */
  failedLogins: Limit;
}

export const DEFAULT_RATE_LIMITS: Readonly<RateLimits> = Object.freeze({
  api: Object.freeze({ limit: 600, windowMs: 60_000 }),
  changes: Object.freeze({ limit: 60, windowMs: 60_000 }),
  failedLogins: Object.freeze({ limit: 10, windowMs: 5 * 60_000 }),
});

/** What a caller may set: any limit, any part of it; the rest keeps its default. */
export type RateLimitOptions = { [K in keyof RateLimits]?: Partial<Limit> };

/** The key of all clients behind the reverse proxy when it names none (`X-Forwarded-For` missing). */
export const SHARED_PROXY_KEY = 'proxy';

const CHANGE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Largest window a MemoryStore timer can take (Node's setInterval limit). */
const MAX_WINDOW_MS = 2 ** 31 - 1;

/**
 * Fills in the defaults and checks every value once, at setup.
 * @throws {TypeError} naming the option, e.g. `rateLimits.api.limit`
 */
export function resolveRateLimits(options: RateLimitOptions = {}): RateLimits {
  const out = {} as RateLimits;
  for (const name of Object.keys(DEFAULT_RATE_LIMITS) as (keyof RateLimits)[]) {
    const given = options[name] ?? {};
    const limit = given.limit ?? DEFAULT_RATE_LIMITS[name].limit;
    const windowMs = given.windowMs ?? DEFAULT_RATE_LIMITS[name].windowMs;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new TypeError(`rateLimits.${name}.limit must be a whole number of at least 1, got ${String(limit)}`);
    }
    if (!Number.isSafeInteger(windowMs) || windowMs < 1 || windowMs > MAX_WINDOW_MS) {
      throw new TypeError(`rateLimits.${name}.windowMs must be a whole number of milliseconds from 1 to ${MAX_WINDOW_MS}, got ${String(windowMs)}`);
    }
    out[name] = { limit, windowMs };
  }
  for (const name of Object.keys(options)) {
    if (!(name in DEFAULT_RATE_LIMITS)) throw new TypeError(`rateLimits.${name} is not a known limit (api, changes, failedLogins)`);
  }
  return out;
}

/**
 * The last entry of header `name`, trimmed; undefined when absent or empty. Proxies append the
 * address they saw to `X-Forwarded-For` (Node joins repeated headers with ", "), so the last
 * entry is the one the ctrlX proxy wrote; entries before it came from the client and prove nothing.
 */
function lastHeaderEntry(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headers[name];
  const joined = Array.isArray(raw) ? raw.join(',') : raw;
  const value = joined?.split(',').pop()?.trim();
  return value || undefined;
}

/**
 * The client a request counts against.
 *
 * - On TCP (off the device): the peer address; IPv6 clients by their /56 network, as
 *   express-rate-limit's `ipKeyGenerator` does, since one host usually owns a whole prefix.
 *   `X-Forwarded-For` is never trusted here: anyone could send it.
 * - Behind the ctrlX reverse proxy (`behindProxy`: the app listens on its unix socket, which only
 *   the proxy can reach, and the peer address is empty): the last address of `X-Forwarded-For`
 *   (the one the proxy appended: whatever the browser sent itself comes before it), else
 *   `X-Real-IP`, else one key shared by all clients ({@link SHARED_PROXY_KEY}). A value that is
 *   not an IP address is ignored. Which of these headers the ctrlX proxy sets is not documented:
 *   if it passed a client's own `X-Forwarded-For` through unchanged, a client could pick its key.
 */
export function clientKey(req: IncomingMessage, behindProxy: boolean): string {
  if (!behindProxy) {
    const peer = req.socket.remoteAddress;
    // A socket closed before the request was read has no address any more: count it with the others like it.
    return peer ? ipKeyGenerator(peer) : 'unknown';
  }
  for (const header of ['x-forwarded-for', 'x-real-ip']) {
    let value = lastHeaderEntry(req, header);
    // `[v6]:port` and `v4:port` forms, which some proxies write.
    const bracketed = value && /^\[([^\]]+)\](?::\d+)?$/.exec(value);
    if (bracketed) value = bracketed[1];
    else if (value && /^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(':'));
    if (value && net.isIP(value)) return ipKeyGenerator(value);
  }
  return SHARED_PROXY_KEY;
}

/** Whole seconds until `resetTime` (at least 1). */
export function secondsUntil(resetTime: Date | undefined, fallbackMs: number): number {
  const ms = resetTime ? resetTime.getTime() - Date.now() : fallbackMs;
  return Math.max(1, Math.ceil(ms / 1000));
}

/** "a minute", "5 minutes", "30 s": a window in words. */
export function windowWords(ms: number): string {
  return render('en', windowMessage(ms));
}

/** {@link windowWords} as a message of the catalogues. */
function windowMessage(ms: number): Message {
  if (ms % 60_000 === 0) return ms === 60_000 ? { key: 'time.minute' } : { key: 'time.minutes', params: { n: ms / 60_000 } };
  return { key: 'time.seconds', params: { n: Math.max(1, Math.round(ms / 1000)) } };
}

/** The sentence of a failed-login lockout. */
export function failedLoginsDetail(seconds: number): string {
  return translate('en', 'problem.failedLogins', { seconds });
}

/** One client's failed logins in its current window, and its token checks still running. */
interface LoginBudget {
  failures: number;
  /** When the window of the first failure ends (ms since the epoch); 0 before any failure. */
  resetAt: number;
  inFlight: number;
  /** Checks waiting for one in flight to finish (the budget was fully taken). */
  waiters: (() => void)[];
}

/** Clients tracked at most; beyond it the oldest windows are dropped (a flood of made-up addresses). */
const MAX_CLIENTS = 10_000;

/**
 * Failed logins per client, in fixed windows: the route guard runs every token check through
 * {@link attempt}, which counts a failure (a 401) and refuses the client once `limit` failures
 * fell in the window, before its token is even looked at.
 *
 * A check still running counts against the budget until it ends: a client with `n` failures left
 * has at most `n` checks in flight, and further requests wait for one of them to finish. So a
 * burst of forged tokens sent all at once reaches the identity manager no more often than the same
 * tokens sent one by one; a burst of valid requests is only queued, never refused (the
 * express-rate-limit middleware counts every request up front and takes successes back at the
 * end, which refuses valid bursts and lets parallel failures through). The counts are plain
 * synchronous state, so the check-and-reserve step cannot interleave.
 */
export class FailedLoginLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly clients = new Map<string, LoginBudget>();
  private readonly keyOf: (req: IncomingMessage) => string;
  private readonly log: Logger;
  private readonly sweep: NodeJS.Timeout;

  constructor(limit: Limit, keyOf: (req: IncomingMessage) => string, logger: Logger = silentLogger) {
    this.limit = limit.limit;
    this.windowMs = limit.windowMs;
    this.keyOf = keyOf;
    this.log = logger;
    this.sweep = setInterval(() => this.dropExpired(Date.now()), Math.min(this.windowMs, 60_000));
    this.sweep.unref();
  }

  /** Starts `b`'s window afresh if it has ended. */
  private static roll(b: LoginBudget, now: number): void {
    if (b.resetAt && b.resetAt <= now) {
      b.failures = 0;
      b.resetAt = 0;
    }
  }

  /** The budget of `key`, with an ended window started afresh. */
  private budget(key: string, now: number): LoginBudget {
    let b = this.clients.get(key);
    if (b) FailedLoginLimiter.roll(b, now);
    else {
      if (this.clients.size >= MAX_CLIENTS) this.dropExpired(now, true);
      b = { failures: 0, resetAt: 0, inFlight: 0, waiters: [] };
      this.clients.set(key, b);
    }
    return b;
  }

  /**
   * Forgets clients with nothing counted. With `force` (the map is full), also the oldest clients
   * still below the limit until there is room; a client locked out is never forgotten early, so
   * no flood of new addresses can lift a lockout. If every entry is a lockout the map grows past
   * the cap (each entry is a few dozen bytes, and each took `limit` failed logins to make).
   */
  private dropExpired(now: number, force = false): void {
    for (const [key, b] of this.clients) {
      if (b.inFlight === 0 && (b.resetAt === 0 || b.resetAt <= now)) this.clients.delete(key);
    }
    if (!force) return;
    for (const [key, b] of this.clients) {
      if (this.clients.size < MAX_CLIENTS) break;
      if (b.inFlight === 0 && b.failures < this.limit) this.clients.delete(key);
    }
  }

  /**
   * Runs the token check `check` for `req`'s client within its budget. Resolves to the seconds the
   * client must wait when it is locked out (`check` not run), else to 0 once `check` passed;
   * rejects with `check`'s error, after counting it when `isFailure(err)` (a 401).
   */
  async attempt(req: IncomingMessage, check: () => Promise<unknown>, isFailure: (err: unknown) => boolean): Promise<number> {
    const key = this.keyOf(req);
    let b: LoginBudget;
    for (;;) {
      const now = Date.now();
      b = this.budget(key, now);
      if (b.failures >= this.limit) return secondsUntil(new Date(b.resetAt), this.windowMs);
      if (b.failures + b.inFlight < this.limit) break;
      const budget = b;
      await new Promise<void>((resolve) => budget.waiters.push(resolve));
    }
    b.inFlight++;
    try {
      await check();
      return 0;
    } catch (err) {
      if (isFailure(err)) this.failed(key, b);
      throw err;
    } finally {
      b.inFlight--;
      // Locked out now: everyone waiting gets the 429. Otherwise as many as there is room for look
      // again (each re-checks; waking all would cost O(waiters²) in a large valid burst).
      const room = b.failures >= this.limit ? b.waiters.length : this.limit - b.failures - b.inFlight;
      for (const wake of b.waiters.splice(0, Math.max(0, room))) wake();
    }
  }

  /** Counts a failure of `key`; logs once when the client gets locked out. */
  private failed(key: string, b: LoginBudget): void {
    const now = Date.now();
    // The window may have ended while the check ran.
    FailedLoginLimiter.roll(b, now);
    if (b.failures === 0) b.resetAt = now + this.windowMs;
    b.failures++;
    if (b.failures === this.limit) {
      this.log.warn('too many failed logins, refusing this client for now', {
        client: key,
        failures: b.failures,
        seconds: secondsUntil(new Date(b.resetAt), this.windowMs),
      });
    }
  }

  /** Stops the sweep timer and forgets every count. */
  close(): void {
    clearInterval(this.sweep);
    this.clients.clear();
  }
}

/** The limiters of one app, built from checked options. */
export interface RateLimiters {
  /** Counts every API request. */
  api: RequestHandler;
  /** Counts PUT/POST/PATCH/DELETE; other methods pass uncounted. */
  changes: RequestHandler;
  /** Failed logins (used by the guard); null when authentication is off. */
  failedLogins: FailedLoginLimiter | null;
  /** Stops the stores' timers. */
  close(): void;
}

export interface RateLimitersOptions {
  limits?: RateLimitOptions;
  /** The app listens on the reverse proxy's unix socket: key clients by `X-Forwarded-For`. */
  behindProxy: boolean;
  /** Count failed logins (authentication is on). */
  authentication: boolean;
  logger?: Logger;
}

/** Builds the limiters; bad limits throw here, before the app listens. */
export function createRateLimiters(options: RateLimitersOptions): RateLimiters {
  const limits = resolveRateLimits(options.limits);
  const log = options.logger ?? silentLogger;
  const keyOf = (req: IncomingMessage): string => clientKey(req, options.behindProxy);
  const stores: MemoryStore[] = [];

  const counter = (
    limit: Limit,
    what: 'problem.rate.requests' | 'problem.rate.changes',
    title: string,
    titleKey: MessageKey,
    skip?: (req: Request) => boolean,
  ): RequestHandler => {
    const store = new MemoryStore();
    stores.push(store);
    return rateLimit({
      windowMs: limit.windowMs,
      limit: limit.limit,
      store,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      keyGenerator: (req) => keyOf(req),
      ...(skip ? { skip } : {}),
      // The key comes from clientKey(), not from req.ip: the library's checks of Express's
      // "trust proxy" and of forwarding headers do not apply.
      validate: { ip: false, trustProxy: false, xForwardedForHeader: false, forwardedHeader: false },
      logger: {
        warn: (err: unknown, msg?: string) => log.warn(msg ?? 'rate limiter warning', { error: String(err) }),
        error: (err: unknown, msg?: string) => log.error(msg ?? 'rate limiter error', { error: String(err) }),
      },
      // The app's one error handler answers it: Problem JSON on the API, the error page elsewhere.
      handler: function tooManyRequests(req: Request, _res: Response, next: NextFunction, _used: Options): void {
        const info = (req as Request & { rateLimit?: RateLimitInfo }).rateLimit;
        const seconds = secondsUntil(info?.resetTime, limit.windowMs);
        const message: Message = { key: what, params: { limit: limit.limit, seconds }, parts: { window: windowMessage(limit.windowMs) } };
        next(new AppError(ERR_TOO_MANY_REQUESTS, render('en', message), { retryAfter: seconds, title, titleKey, i18n: message }));
      },
    });
  };

  const failedLogins = options.authentication ? new FailedLoginLimiter(limits.failedLogins, keyOf, log) : null;
  return {
    api: counter(limits.api, 'problem.rate.requests', 'Too many requests', 'problem.title.ERR_TOO_MANY_REQUESTS'),
    changes: counter(limits.changes, 'problem.rate.changes', 'Too many changes', 'problem.title.tooManyChanges', (req) => !CHANGE_METHODS.has(req.method)),
    failedLogins,
    close: () => {
      for (const s of stores) s.shutdown();
      failedLogins?.close();
    },
  };
}
