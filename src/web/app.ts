/**
 * @module
 * The Express app: every route under `/ctrlx-novnc` (the reverse proxy forwards the full path),
 * EJS views, static files, and exactly one error handler that answers Problem JSON on the API
 * and an HTML page elsewhere.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { PREFIX, packageRoot } from '../ctrlx/paths.js';
import { PROBLEM_TYPES, problem, sendProblem } from '../ctrlx/problem.js';
import { AppError } from '../errors.js';
import { apiRouter } from './routes/api.js';
import { configPageRouter } from './routes/config-page.js';
import { novncRouter, preflightHandler, viewerRouter } from './routes/viewer.js';
import { securityHeaders } from './security.js';
import { createGuard } from './access.js';
import type { RouteDeps, WebDeps } from './deps.js';

export type { AppStatus, RouteDeps, WebDeps } from './deps.js';

/** ` (at position N)` from a JSON.parse message, or ''. */
function jsonErrorPosition(message: string | undefined): string {
  const m = /position (\d+)/.exec(message ?? '');
  return m ? ` (at position ${m[1]})` : '';
}

/** Maps errors thrown by body parsers and handlers to a status and a message. */
function describe(err: unknown): { status: number; title: string; detail: string; type: string } {
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
  if (err instanceof AppError) {
    const type = err.status === 503 ? PROBLEM_TYPES.unavailable : err.status >= 500 ? PROBLEM_TYPES.writeFailed : PROBLEM_TYPES.badRequest;
    return { status: err.status, title: err.status >= 500 ? 'Operation failed' : 'Bad request', detail: err.message, type };
  }
  switch (e.type) {
    case 'entity.too.large':
      return { status: 413, title: 'Payload too large', detail: 'The request body is too large.', type: PROBLEM_TYPES.tooLarge };
    case 'entity.parse.failed':
      // Not the parser's message: it quotes the body, which may hold a VNC password.
      return { status: 400, title: 'Bad request', detail: `The body is not valid JSON${jsonErrorPosition(e.message)}.`, type: PROBLEM_TYPES.badRequest };
    case 'parameters.too.many':
      return { status: 413, title: 'Payload too large', detail: 'Too many form fields.', type: PROBLEM_TYPES.tooLarge };
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return { status: 415, title: 'Unsupported media type', detail: e.message ?? 'Unsupported encoding.', type: PROBLEM_TYPES.unsupportedMedia };
  }
  const status = e.status ?? e.statusCode;
  if (status && status >= 400 && status < 500) {
    return { status, title: 'Bad request', detail: e.message ?? 'Bad request.', type: PROBLEM_TYPES.badRequest };
  }
  return { status: 500, title: 'Internal error', detail: 'An unexpected error occurred; see the app log.', type: PROBLEM_TYPES.internal };
}

/** The request's query string with its `?`, or ''. */
function query(req: Request): string {
  const i = req.originalUrl.indexOf('?');
  return i === -1 ? '' : req.originalUrl.slice(i);
}

export function createWebApp(options: WebDeps): express.Express {
  const deps: RouteDeps = { ...options, guard: options.guard ?? createGuard(null) };
  const app = express();
  const root = packageRoot();
  app.disable('x-powered-by');
  app.set('views', path.join(root, 'views'));
  app.set('view engine', 'ejs');
  app.set('query parser', 'simple');
  app.locals.prefix = PREFIX;

  app.use(securityHeaders);
  // Pages use relative URLs: they must be addressed with their trailing slash (routing is not
  // strict, so these handlers see both forms and pass the slashed one on).
  app.get([PREFIX, `${PREFIX}/config`, `${PREFIX}/viewer`], (req, res, next) => {
    if (req.path.endsWith('/')) next();
    else res.redirect(301, req.path + '/' + query(req));
  });
  app.get(`${PREFIX}/`, (req, res) => res.redirect(302, 'viewer/' + query(req)));
  app.use(
    `${PREFIX}/static`,
    express.static(path.join(root, 'public'), { index: false, redirect: false, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') }),
  );
  // Browser-safe modules compiled from src/shared/ (no Node imports): the one source of tables and
  // rules that both the server and the pages use (close codes, form rules).
  app.use(
    `${PREFIX}/shared`,
    express.static(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'shared'), {
      index: false,
      redirect: false,
      setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache'),
    }),
  );
  if (deps.rateLimits) {
    // Before any parsing or token check: a flood costs as little as possible.
    app.use(`${PREFIX}/api/v1`, deps.rateLimits.api, deps.rateLimits.changes);
    app.use(`${PREFIX}/config`, deps.rateLimits.changes);
  }
  app.use(`${PREFIX}/api/v1`, apiRouter(deps));
  app.use(`${PREFIX}/config`, configPageRouter(deps));
  app.use(`${PREFIX}/viewer`, viewerRouter(deps));
  app.use(`${PREFIX}/novnc`, novncRouter());
  app.get(`${PREFIX}/websockify`, deps.guard.api('view'), preflightHandler(deps));

  app.use((req, res) => {
    res.status(404).render('error', { title: 'Not found', detail: `Nothing here: ${req.path}` });
  });

  // The one error handler: Problem JSON for the API, an HTML page elsewhere.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const d = describe(err);
    if (d.status >= 500) deps.logger.error('request failed', { method: req.method, path: req.path, error: err instanceof Error ? err.stack : String(err) });
    if (res.headersSent) return;
    if (req.path.startsWith(`${PREFIX}/api/`)) {
      sendProblem(res, problem(d.status, d.type, d.title, d.detail));
    } else {
      res.status(d.status).render('error', { title: d.title, detail: d.detail });
    }
  });
  return app;
}
