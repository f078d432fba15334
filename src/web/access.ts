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
import { tokenFromProtocols, tokenFromRequest, type Access, type Authenticator } from '../ctrlx/auth.js';
import { AppError, ERR_TOO_MANY_FAILED_LOGINS, ERR_UNAUTHORIZED } from '../errors.js';
import { failedLoginsDetail, type FailedLoginLimiter } from './rate-limit.js';

/** True when the browser says the request comes from a page of another site. */
export function isCrossSite(req: IncomingMessage): boolean {
  return req.headers['sec-fetch-site']?.trim().toLowerCase() === 'cross-site';
}

/** The 401 of a cross-site request that carried no header token (never counted). */
function crossSiteRefusal(): AppError {
  return new AppError(ERR_UNAUTHORIZED, 'A link or page of another site cannot log in here: open the app from the ctrlX interface.');
}

export interface Guard {
  /** Middleware for JSON API routes (token in the Authorization header). */
  api(access: Access): RequestHandler;
  /** Middleware for HTML pages (header, `?token=`/`?access_token=`, or a `_token` form field). */
  page(access: Access): RequestHandler;
  /** Checks a relay upgrade (subprotocol, header or query token); rejects with an AppError. */
  upgrade(req: IncomingMessage): Promise<void>;
  /** True when tokens are checked. */
  readonly enabled: boolean;
}

/**
 * Builds the guards.
 * @param auth the token checks, or null for none (authentication off: everything passes)
 * @param logins failed logins per client; without it failures are not counted
 */
export function createGuard(auth: Authenticator | null, logins: FailedLoginLimiter | null = null): Guard {
  const pass: RequestHandler = (_req, _res, next) => next();
  if (!auth) {
    return { api: () => pass, page: () => pass, upgrade: async () => {}, enabled: false };
  }
  /**
   * Checks the token within the client's failed-login budget; rejects with an AppError: the
   * token's (401, 403, 503), or ERR_TOO_MANY_FAILED_LOGINS with `retryAfter` when the client is
   * locked out (its token not looked at). A 401 for a token that was presented is counted before
   * it is answered, so the next request sees it; a request without any token is no guess and is
   * not counted (any web page can make a browser load the app's URLs without one, which must not
   * lock users out).
   */
  const check = async (req: IncomingMessage, token: string | undefined, access: Access): Promise<void> => {
    // Before the budget is touched: a page of another site can make a browser send these at will.
    if (token === undefined && isCrossSite(req)) throw crossSiteRefusal();
    if (!logins) {
      await auth.authenticate(token, access);
      return;
    }
    const isFailure = (err: unknown): boolean => Boolean(token) && err instanceof AppError && err.code === ERR_UNAUTHORIZED;
    const wait = await logins.attempt(req, () => auth.authenticate(token, access), isFailure);
    if (wait) throw new AppError(ERR_TOO_MANY_FAILED_LOGINS, failedLoginsDetail(wait), { retryAfter: wait });
  };
  return {
    enabled: true,
    // Failures go to the app's one error handler: Problem JSON on the API and the preflight, the
    // error page (the login page for a 401) elsewhere.
    api: (access) =>
      function apiGuard(req: Request, _res: Response, next: NextFunction): void {
        check(req, tokenFromRequest(req), access).then(() => next(), next);
      },
    page: (access) =>
      function pageGuard(req: Request, res: Response, next: NextFunction): void {
        // Cross-site: only a header token (never one in the URL or a form field).
        const token = isCrossSite(req) ? tokenFromRequest(req) : tokenFromRequest(req, { query: true, body: req.body });
        check(req, token, access).then(() => {
          res.locals.token = token;
          next();
        }, next);
      },
    upgrade: (req) => check(req, tokenFromProtocols(req) ?? tokenFromRequest(req, { query: !isCrossSite(req) }), 'view'),
  };
}
