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
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LOCAL_IDENTITY, tokenFromProtocols, tokenFromRequest, type Access, type Authenticator, type Identity } from '../ctrlx/auth.js';
import { AppError, ERR_TOO_MANY_FAILED_LOGINS, ERR_UNAUTHORIZED } from '../errors.js';
import { failedLoginsDetail, type FailedLoginLimiter } from './rate-limit.js';

export interface Guard {
  /** Middleware for JSON API routes (token in the Authorization header). */
  api(access: Access): RequestHandler;
  /** Middleware for HTML pages (header, `?token=`/`?access_token=`, or a `_token` form field). */
  page(access: Access): RequestHandler;
  /** Checks a relay upgrade (subprotocol, header or query token); resolves with who it is, rejects with an AppError. */
  upgrade(req: IncomingMessage): Promise<Identity>;
  /** True when tokens are checked. */
  readonly enabled: boolean;
}

/**
 * Builds the guards.
 * @param auth the token checks, or null for none (authentication off: everything passes)
 * @param logins failed logins per client; without it failures are not counted
 */
/** Who made the request, as the guard found it (`manage` "local" with authentication off). */
export function identityOf(res: Response): Identity {
  return (res.locals.identity as Identity | undefined) ?? LOCAL_IDENTITY;
}

export function createGuard(auth: Authenticator | null, logins: FailedLoginLimiter | null = null): Guard {
  const pass: RequestHandler = (_req, _res, next) => next();
  if (!auth) {
    return { api: () => pass, page: () => pass, upgrade: async () => LOCAL_IDENTITY, enabled: false };
  }
  /**
   * Checks the token within the client's failed-login budget; rejects with an AppError: the
   * token's (401, 403, 503), or ERR_TOO_MANY_FAILED_LOGINS with `retryAfter` when the client is
   * locked out (its token not looked at). A 401 for a token that was presented is counted before
   * it is answered, so the next request sees it; a request without any token is no guess and is
   * not counted (any web page can make a browser load the app's URLs without one, which must not
   * lock users out).
   */
  const check = async (req: IncomingMessage, token: string | undefined, access: Access): Promise<Identity> => {
    if (!logins) {
      const { name, role } = await auth.authenticate(token, access);
      return { name, role };
    }
    const isFailure = (err: unknown): boolean => Boolean(token) && err instanceof AppError && err.code === ERR_UNAUTHORIZED;
    let identity: Identity | undefined;
    const wait = await logins.attempt(
      req,
      async () => {
        const { name, role } = await auth.authenticate(token, access);
        identity = { name, role };
      },
      isFailure,
    );
    if (wait) throw new AppError(ERR_TOO_MANY_FAILED_LOGINS, failedLoginsDetail(wait), { retryAfter: wait });
    return identity!; // set: the check ran and passed
  };
  return {
    enabled: true,
    // Failures go to the app's one error handler: Problem JSON on the API and the preflight, the
    // error page (the login page for a 401) elsewhere.
    api: (access) =>
      function apiGuard(req: Request, res: Response, next: NextFunction): void {
        check(req, tokenFromRequest(req), access).then((identity) => {
          res.locals.identity = identity;
          next();
        }, next);
      },
    page: (access) =>
      function pageGuard(req: Request, res: Response, next: NextFunction): void {
        const token = tokenFromRequest(req, { query: true, body: req.body });
        check(req, token, access).then((identity) => {
          res.locals.identity = identity;
          res.locals.token = token;
          next();
        }, next);
      },
    upgrade: (req) => check(req, tokenFromProtocols(req) ?? tokenFromRequest(req, { query: true }), 'view'),
  };
}
