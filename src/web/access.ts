/**
 * @module
 * Route guards: with authentication on (the device), every page, API call and relay upgrade
 * needs a ctrlX token with the right scope; failures are 401/403/503 as Problem JSON on the API
 * and as a page elsewhere. With authentication off (off the device, loopback only) they pass.
 *
 * Each 401 counts as a failed login of the client; a client with too many of them gets 429
 * (with `Retry-After`) for everything that needs a login until its window ends, before its
 * token is even looked at (see rate-limit.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AuthError, tokenFromProtocols, tokenFromRequest, type Access, type Authenticator } from '../ctrlx/auth.js';
import { PROBLEM_TYPES, problem, sendProblem } from '../ctrlx/problem.js';
import { TooManyRequestsError, failedLoginsDetail, type FailedLoginLimiter } from './rate-limit.js';

export interface Guard {
  /** Middleware for JSON API routes (token in the Authorization header). */
  api(access: Access): RequestHandler;
  /** Middleware for HTML pages (header, `?token=`/`?access_token=`, or a `_token` form field). */
  page(access: Access): RequestHandler;
  /** Checks a relay upgrade (subprotocol, header or query token); throws AuthError. */
  upgrade(req: IncomingMessage): Promise<void>;
  /** True when tokens are checked. */
  readonly enabled: boolean;
}

function authProblem(err: AuthError): ReturnType<typeof problem> {
  const type = err.status === 401 ? PROBLEM_TYPES.unauthorized : err.status === 403 ? PROBLEM_TYPES.forbidden : PROBLEM_TYPES.unavailable;
  const title = err.status === 401 ? 'Unauthorized' : err.status === 403 ? 'Forbidden' : 'Service unavailable';
  return problem(err.status, type, title, err.message);
}

const LOCKED_OUT_TITLE = 'Too many failed logins';

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
   * Checks the token within the client's failed-login budget: resolves to the seconds the client
   * must wait (locked out, token not looked at) or 0 when the token passed; rejects with the
   * AuthError otherwise. A 401 for a token that was presented is counted before it is answered,
   * so the next request sees it; a request without any token is no guess and is not counted (any
   * web page can make a browser load the app's URLs without one, which must not lock users out).
   */
  const check = (req: IncomingMessage, token: string | undefined, access: Access): Promise<number> =>
    logins
      ? logins.attempt(req, () => auth.authenticate(token, access), (err) => Boolean(token) && err instanceof AuthError && err.status === 401)
      : auth.authenticate(token, access).then(() => 0);
  return {
    enabled: true,
    api: (access) =>
      function apiGuard(req: Request, res: Response, next: NextFunction): void {
        check(req, tokenFromRequest(req), access).then(
          (wait) => {
            if (!wait) return next();
            res.setHeader('Retry-After', String(wait));
            sendProblem(res, problem(429, PROBLEM_TYPES.tooManyFailedLogins, LOCKED_OUT_TITLE, failedLoginsDetail(wait)));
          },
          (err: unknown) => {
            if (!(err instanceof AuthError)) return next(err);
            if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="ctrlx-novnc"');
            sendProblem(res, authProblem(err));
          },
        );
      },
    page: (access) =>
      function pageGuard(req: Request, res: Response, next: NextFunction): void {
        const token = tokenFromRequest(req, { query: true, body: req.body });
        check(req, token, access).then(
          (wait) => {
            if (wait) {
              res.setHeader('Retry-After', String(wait));
              res.status(429).render('error', { title: LOCKED_OUT_TITLE, detail: failedLoginsDetail(wait) });
              return;
            }
            res.locals.token = token;
            next();
          },
          (err: unknown) => {
            if (!(err instanceof AuthError)) return next(err);
            res.status(err.status).render(err.status === 401 ? 'login' : 'error', {
              title: err.status === 401 ? 'Login required' : err.status === 403 ? 'Not allowed' : 'Try again',
              detail: err.message,
            });
          },
        );
      },
    upgrade: async (req) => {
      const wait = await check(req, tokenFromProtocols(req) ?? tokenFromRequest(req, { query: true }), 'view');
      if (wait) throw new TooManyRequestsError(failedLoginsDetail(wait), wait);
    },
  };
}
