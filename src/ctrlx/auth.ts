/**
 * @module
 * ctrlX authentication and authorisation on the device.
 *
 * A request carries a ctrlX bearer token (an ES384 JWT issued by the identity manager): in the
 * `Authorization` header (API), in `?token=`/`?access_token=` on the first load of a page (the
 * menu link), in a `_token` form field (pages without JavaScript), or in a WebSocket subprotocol
 * `ctrlx-novnc.bearer.<jwt>` (browsers cannot set headers on a WebSocket, and URLs end up in logs).
 *
 * Expiry and scopes are checked locally; the signature is checked by asking the identity manager
 * (`GET /identity-manager/api/v2/auth/token/validity`), whose positive answers are cached briefly.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { http } from '../builtins.js';
import { AppError, ERR_FORBIDDEN, ERR_UNAUTHORIZED, ERR_UNAVAILABLE } from '../errors.js';
import { translate } from '../common/i18n/index.js';
import { silentLogger, type Logger } from '../log.js';
import { APP_NAME } from './paths.js';

export const SCOPE_VIEW = `${APP_NAME}.web.all.r`;
export const SCOPE_OPERATE = `${APP_NAME}.web.screens.rw`;
export const SCOPE_MANAGE = `${APP_NAME}.web.all.rw`;
export const SCOPE_ADMIN = 'rexroth-device.all.rwx';

/**
 * What a user may do, in order: `watch` (see the screens; the relay drops their input), `operate`
 * (watch, and take control of a screen), `manage` (operate, edit targets, see the audit trail,
 * end other sessions).
 */
export type Role = 'watch' | 'operate' | 'manage';

export const ROLE_ORDER: readonly Role[] = ['watch', 'operate', 'manage'];

/** True when `role` includes everything `needed` may do. */
export function roleAtLeast(role: Role, needed: Role): boolean {
  return ROLE_ORDER.indexOf(role) >= ROLE_ORDER.indexOf(needed);
}

/** The highest role the scopes give, or null for none of the app's. */
export function roleOf(scopes: readonly string[]): Role | null {
  if (scopes.includes(SCOPE_MANAGE) || scopes.includes(SCOPE_ADMIN)) return 'manage';
  if (scopes.includes(SCOPE_OPERATE)) return 'operate';
  if (scopes.includes(SCOPE_VIEW)) return 'watch';
  return null;
}

/**
 * What a route needs: `view` (viewer, status, sessions, events: the watch role), `operate` (taking
 * control) or `manage` (settings, configuration, callbacks, ending sessions, the audit trail).
 */
export type Access = 'view' | 'operate' | 'manage';

const NEEDS: Record<Access, Role> = { view: 'watch', operate: 'operate', manage: 'manage' };

/** Who is asking: the token's user name and role. */
export interface Identity {
  name: string;
  role: Role;
}

/** Everyone, with authentication off (off the device, loopback only). */
export const LOCAL_IDENTITY: Identity = Object.freeze({ name: 'local', role: 'manage' });

/** True when `scopes` grant `access`. */
export function grants(scopes: readonly string[], access: Access): boolean {
  const role = roleOf(scopes);
  return role !== null && roleAtLeast(role, NEEDS[access]);
}

/** The WebSocket subprotocol prefix that carries a token. */
export const BEARER_PROTOCOL_PREFIX = `${APP_NAME}.bearer.`;

export const DEFAULT_VALIDITY_URL = 'https://localhost/identity-manager/api/v2/auth/token/validity';

export interface Principal extends Identity {
  scopes: readonly string[];
  expiresAt: number;
}

export interface AuthOptions {
  /** The identity manager's token validity endpoint. Default {@link DEFAULT_VALIDITY_URL}. */
  validityUrl?: string;
  /** Seconds a positive validity answer is trusted. Default 60. */
  cacheSeconds?: number;
  /** Milliseconds to wait for the identity manager. Default 3000. */
  timeout?: number;
  /** Seconds of clock skew tolerated on `exp`. Default 30. */
  leeway?: number;
  logger?: Logger;
}

interface Claims {
  exp?: unknown;
  name?: unknown;
  scope?: unknown;
}

/** Decodes a JWT's payload without verifying it; null when it is not a JWT. */
export function decodeJwt(token: string): Claims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Claims) : null;
  } catch {
    return null;
  }
}

/** The token of a request: header first, then the query (`token`, `access_token`). */
export function tokenFromRequest(req: IncomingMessage, options: { query?: boolean; body?: unknown } = {}): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m) return m[1];
  }
  const body = options.body as { _token?: unknown } | undefined;
  if (body && typeof body._token === 'string' && body._token) return body._token;
  if (options.query) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    return url.searchParams.get('token') ?? url.searchParams.get('access_token') ?? undefined;
  }
  return undefined;
}

/** The token carried in a WebSocket subprotocol, if any. */
export function tokenFromProtocols(req: IncomingMessage): string | undefined {
  const header = req.headers['sec-websocket-protocol'];
  if (!header) return undefined;
  for (const p of header.split(',')) {
    const proto = p.trim();
    if (proto.startsWith(BEARER_PROTOCOL_PREFIX)) return proto.slice(BEARER_PROTOCOL_PREFIX.length);
  }
  return undefined;
}

export class Authenticator {
  private readonly url: URL;
  private readonly cacheMs: number;
  private readonly timeout: number;
  private readonly leeway: number;
  private readonly log: Logger;
  /** sha256(token) → time until which the identity manager's "valid" is trusted. */
  private readonly cache = new Map<string, number>();

  constructor(options: AuthOptions = {}) {
    this.url = new URL(options.validityUrl ?? DEFAULT_VALIDITY_URL);
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') {
      throw new TypeError(`identity manager URL must be http(s): ${this.url.href}`);
    }
    this.cacheMs = (options.cacheSeconds ?? 60) * 1000;
    this.timeout = options.timeout ?? 3000;
    this.leeway = options.leeway ?? 30;
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Checks `token` for `access`.
   * @throws {AppError} ERR_UNAUTHORIZED (401) missing/malformed/expired/invalid, ERR_FORBIDDEN (403) scope
   *   missing, ERR_UNAVAILABLE (503) identity manager unreachable
   */
  async authenticate(token: string | undefined, access: Access): Promise<Principal> {
    if (!token) throw new AppError(ERR_UNAUTHORIZED, 'A ctrlX login is required: open this app from the ctrlX menu.', { i18n: { key: 'problem.loginRequired' } });
    const claims = decodeJwt(token);
    if (!claims) throw new AppError(ERR_UNAUTHORIZED, 'The access token is malformed.', { i18n: { key: 'problem.tokenMalformed' } });
    const exp = typeof claims.exp === 'number' ? claims.exp : NaN;
    if (!Number.isFinite(exp)) throw new AppError(ERR_UNAUTHORIZED, 'The access token has no expiry.', { i18n: { key: 'problem.tokenNoExpiry' } });
    if (exp + this.leeway < Date.now() / 1000) throw new AppError(ERR_UNAUTHORIZED, 'The access token has expired: log in to ctrlX again.', { i18n: { key: 'problem.tokenExpired' } });
    const scopes = Array.isArray(claims.scope) ? claims.scope.filter((s): s is string => typeof s === 'string') : [];
    const name = typeof claims.name === 'string' ? claims.name : 'unknown';
    const role = roleOf(scopes);
    if (role === null || !roleAtLeast(role, NEEDS[access])) {
      const key = access === 'manage' ? 'problem.forbiddenManage' : access === 'operate' ? 'problem.forbiddenOperate' : 'problem.forbiddenView';
      const params = { user: name, scope: access === 'manage' ? SCOPE_MANAGE : access === 'operate' ? SCOPE_OPERATE : SCOPE_VIEW };
      throw new AppError(ERR_FORBIDDEN, translate('en', key, params), { i18n: { key, params } });
    }
    await this.checkSignature(token, name);
    return { name, role, scopes, expiresAt: exp * 1000 };
  }

  /**
   * Checks an accepted token again, for a session that outlives its upgrade: false when it has
   * expired or the identity manager no longer confirms it (revoked); the cache is bypassed (and a
   * no removes its cached yes).
   * @throws {Error} when the identity manager cannot be reached
   */
  async stillValid(token: string): Promise<boolean> {
    const exp = decodeJwt(token)?.exp;
    if (typeof exp !== 'number' || exp * 1000 <= Date.now()) return false;
    const valid = await this.askValidity(token);
    if (!valid) this.cache.delete(createHash('sha256').update(token).digest('base64url'));
    return valid;
  }

  /** Asks the identity manager whether the token is genuine; caches a yes for `cacheSeconds`. */
  private async checkSignature(token: string, name: string): Promise<void> {
    const key = createHash('sha256').update(token).digest('base64url');
    const now = Date.now();
    const until = this.cache.get(key);
    if (until !== undefined && until > now) return;
    this.cache.delete(key);
    let valid: boolean;
    try {
      valid = await this.askValidity(token);
    } catch (err) {
      this.log.warn('identity manager unreachable', { url: this.url.origin + this.url.pathname, error: (err as Error).message });
      throw new AppError(ERR_UNAVAILABLE, 'The ctrlX identity manager cannot be reached to check the login; try again shortly.', { i18n: { key: 'problem.idmUnreachable' } });
    }
    if (!valid) {
      this.log.warn('token rejected by the identity manager', { user: name });
      throw new AppError(ERR_UNAUTHORIZED, 'The access token is not valid: log in to ctrlX again.', { i18n: { key: 'problem.tokenInvalid' } });
    }
    if (this.cache.size >= 1000) {
      for (const [k, t] of this.cache) if (t <= now) this.cache.delete(k);
      if (this.cache.size >= 1000) this.cache.clear();
    }
    this.cache.set(key, now + this.cacheMs);
  }

  private askValidity(token: string): Promise<boolean> {
    const client = this.url.protocol === 'https:' ? https : http;
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(this.url.hostname);
    return new Promise((resolve, reject) => {
      // One answer, whatever happens: the whole exchange has `timeout` ms, and a connection that
      // closes mid-answer is an error, never a promise left pending (a login check waits on it).
      let settled = false;
      const finish = (err: Error | null, valid = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(valid);
      };
      const deadline = setTimeout(() => finish(new Error(`no answer within ${this.timeout} ms`)), this.timeout);
      const req = client.request(
        this.url,
        {
          method: 'GET',
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
          // The device's own certificate is self-signed; only trust that for the local identity manager.
          ...(this.url.protocol === 'https:' ? { rejectUnauthorized: !local } : {}),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 4096) body += c;
          });
          res.on('error', (err) => finish(err));
          res.on('close', () => {
            if (!res.complete) finish(new Error('the connection closed in the middle of the answer'));
          });
          res.on('end', () => {
            if (res.statusCode === 401 || res.statusCode === 403) return finish(null, false);
            if (res.statusCode !== 200) return finish(new Error(`HTTP ${res.statusCode}`));
            try {
              finish(null, (JSON.parse(body) as { valid?: unknown }).valid === true);
            } catch {
              finish(new Error('unreadable answer'));
            }
          });
        },
      );
      req.on('error', (err) => finish(err));
      req.end();
    });
  }
}
