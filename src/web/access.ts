/**
 * @module
 * Route guards: with authentication on (the device), every page, API call and relay upgrade
 * needs a ctrlX token with the right scope; failures are AppErrors (401/403/503), answered as
 * Problem JSON on the API and as a page elsewhere. With authentication off (off the device,
 * loopback only) they pass.
 *
 * Each 401 counts as a failed login of the client; a client with too many of them gets 429
 * (with `Retry-After`) for everything that needs a login until its window ends, before its
 * token is even looked at (see rate-limit.ts).
 *
 * A request the browser marks `Sec-Fetch-Site: cross-site` (a link, an `<img>` or a form of
 * another site) never logs in with a token in the URL (`?token=`, `?access_token=`) or a form
 * field, and never counts as a failed login: it gets 401 before the failed-login budget is
 * touched, so no page of another site can spend it and lock users out. Its `Authorization`
 * header or WebSocket subprotocol still counts (a browser sends those cross-site only where CORS
 * or `--allow-origin` lets it). Same-site, same-origin, `none` (typed, bookmarks) and requests
 * without the header (not a browser, or an older one) are checked as always.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LOCAL_IDENTITY, grants, tokenFromProtocols, tokenFromRequest, type Access, type Authenticator, type Identity, type Principal } from '../ctrlx/auth.js';
import { AppError, ERR_TOO_MANY_FAILED_LOGINS, ERR_UNAUTHORIZED } from '../errors.js';
import { failedLoginsDetail, type FailedLoginLimiter } from './rate-limit.js';
import type { SessionLogin } from '../relay/login-watch.js';

/** True when the browser says the request comes from a page of another site. */
export function isCrossSite(req: IncomingMessage): boolean {
  return req.headers['sec-fetch-site']?.trim().toLowerCase() === 'cross-site';
}

/** The 401 of a cross-site request that carried no header token (never counted). */
function crossSiteRefusal(): AppError {
  return new AppError(ERR_UNAUTHORIZED, 'A link or page of another site cannot log in here: open the app from the ctrlX interface.', { i18n: { key: 'problem.crossSiteLogin' } });
}

export interface Guard {
  /** Middleware for JSON API routes (token in the Authorization header). */
  api(access: Access): RequestHandler;
  /** Middleware for HTML pages (header, `?token=`/`?access_token=`, or a `_token` form field). */
  page(access: Access): RequestHandler;
  /**
   * Checks a relay upgrade (subprotocol, header or query token); rejects with an AppError. Resolves
   * with who it is and the login the session must not outlive (none with authentication off).
   */
  upgrade(req: IncomingMessage): Promise<UpgradeLogin>;
  /** True when tokens are checked. */
  readonly enabled: boolean;
}

/**
 * True when the request that `res` answers may see everything a manager sees (addresses, paths,
 * other viewers): its login has the manage scope, or authentication is off (whoever reaches the
 * app off the device may change everything anyway). Set by the guards; false when no guard ran.
 */
export function mayManage(res: Response): boolean {
  return res.locals.mayManage === true;
}

/** Who made the request, as the guard found it (`manage` "local" with authentication off). */
export function identityOf(res: Response): Identity {
  return (res.locals.identity as Identity | undefined) ?? LOCAL_IDENTITY;
}

/** What an accepted relay upgrade carries on: who it is, and the login the session must not outlive. */
export interface UpgradeLogin {
  identity: Identity;
  login?: SessionLogin;
}

/**
 * Builds the guards.
 * @param auth the token checks, or null for none (authentication off: everything passes)
 * @param logins failed logins per client; without it failures are not counted
 */

export function createGuard(auth: Authenticator | null, logins: FailedLoginLimiter | null = null): Guard {
  const pass: RequestHandler = (_req, res, next) => {
    res.locals.mayManage = true;
    next();
  };
  if (!auth) {
    return { api: () => pass, page: () => pass, upgrade: async () => ({ identity: LOCAL_IDENTITY }), enabled: false };
  }
  /**
   * Checks the token within the client's failed-login budget; rejects with an AppError: the
   * token's (401, 403, 503), or ERR_TOO_MANY_FAILED_LOGINS with `retryAfter` when the client is
   * locked out (its token not looked at). A 401 for a token that was presented is counted before
   * it is answered, so the next request sees it; a request without any token is no guess and is
   * not counted (any web page can make a browser load the app's URLs without one, which must not
   * lock users out).
   */
  const check = async (req: IncomingMessage, token: string | undefined, access: Access): Promise<Principal> => {
    // Before the budget is touched: a page of another site can make a browser send these at will.
    if (token === undefined && isCrossSite(req)) throw crossSiteRefusal();
    if (!logins) return auth.authenticate(token, access);
    const isFailure = (err: unknown): boolean => Boolean(token) && err instanceof AppError && err.code === ERR_UNAUTHORIZED;
    let principal: Principal | undefined;
    const wait = await logins.attempt(req, async () => (principal = await auth.authenticate(token, access)), isFailure);
    if (wait) throw new AppError(ERR_TOO_MANY_FAILED_LOGINS, failedLoginsDetail(wait), { retryAfter: wait, i18n: { key: 'problem.failedLogins', params: { seconds: wait } } });
    return principal!;
  };
  const admit = (res: Response, principal: Principal): void => {
    res.locals.mayManage = grants(principal.scopes, 'manage');
    res.locals.identity = { name: principal.name, role: principal.role } satisfies Identity;
  };
  return {
    enabled: true,
    // Failures go to the app's one error handler: Problem JSON on the API and the preflight, the
    // error page (the login page for a 401) elsewhere.
    api: (access) =>
      function apiGuard(req: Request, res: Response, next: NextFunction): void {
        check(req, tokenFromRequest(req), access).then((principal) => {
          admit(res, principal);
          next();
        }, next);
      },
    page: (access) =>
      function pageGuard(req: Request, res: Response, next: NextFunction): void {
        // Cross-site: only a header token (never one in the URL or a form field).
        const token = isCrossSite(req) ? tokenFromRequest(req) : tokenFromRequest(req, { query: true, body: req.body });
        check(req, token, access).then((principal) => {
          admit(res, principal);
          res.locals.token = token;
          next();
        }, next);
      },
    upgrade: async (req) => {
      const token = tokenFromProtocols(req) ?? tokenFromRequest(req, { query: !isCrossSite(req) });
      const principal = await check(req, token, 'view');
      return {
        identity: { name: principal.name, role: principal.role },
        login: { user: principal.name, expiresAt: principal.expiresAt, stillValid: () => auth.stillValid(token!) },
      };
    },
  };
}
