/**
 * @module
 * Route guards: with authentication on (the device), every page, API call and relay upgrade
 * needs a ctrlX token with the right scope; failures are 401/403/503 as Problem JSON on the API
 * and as a page elsewhere. With authentication off (off the device, loopback only) they pass.
 */
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AuthError, tokenFromProtocols, tokenFromRequest, type Access, type Authenticator } from '../ctrlx/auth.js';
import { PROBLEM_TYPES, problem, sendProblem } from '../ctrlx/problem.js';

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

export function createGuard(auth: Authenticator | null): Guard {
  const pass: RequestHandler = (_req, _res, next) => next();
  if (!auth) {
    return { api: () => pass, page: () => pass, upgrade: async () => {}, enabled: false };
  }
  return {
    enabled: true,
    api: (access) =>
      function apiGuard(req: Request, res: Response, next: NextFunction): void {
        auth.authenticate(tokenFromRequest(req), access).then(
          () => next(),
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
        auth.authenticate(token, access).then(
          () => {
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
      await auth.authenticate(tokenFromProtocols(req) ?? tokenFromRequest(req, { query: true }), 'view');
    },
  };
}
