/**
 * @module
 * The Express app: every route under `/ctrlx-novnc` (the reverse proxy forwards the full path),
 * EJS views, the pages' bundled static files, and exactly one error handler that answers Problem JSON on the API
 * and an HTML page elsewhere (see respond.ts).
 */
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { PREFIX, packageRoot } from '../ctrlx/paths.js';
import { AppError, ERR_NOT_FOUND, ERR_UNAVAILABLE } from '../errors.js';
import { apiRouter } from './routes/api.js';
import { configPageRouter } from './routes/config-page.js';
import { preflightHandler, viewerRouter } from './routes/viewer.js';
import { renderError, sendError, toAppError } from './respond.js';
import { securityHeaders } from './security.js';
import { chooseLanguage } from './language.js';
import { DEFAULT_LANGUAGE, translator } from '../common/i18n/index.js';
import { loadStaticFiles } from './static.js';
import { createGuard } from './access.js';
import type { RouteDeps, WebDeps } from './deps.js';

export type { AppStatus, RouteDeps, WebDeps } from './deps.js';

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
  // English until chooseLanguage (language.ts) picks the request's language.
  app.locals.lang = DEFAULT_LANGUAGE;
  app.locals.t = translator(DEFAULT_LANGUAGE);
  app.locals.langQuery = '';

  app.use(securityHeaders);
  // Pages use relative URLs: they must be addressed with their trailing slash (routing is not
  // strict, so these handlers see both forms and pass the slashed one on).
  app.get([PREFIX, `${PREFIX}/config`, `${PREFIX}/viewer`], (req, res, next) => {
    if (req.path.endsWith('/')) next();
    else res.redirect(301, `${req.path}/${query(req)}`);
  });
  app.get(`${PREFIX}/`, (req, res) => res.redirect(302, `viewer/${query(req)}`));
  // The pages' scripts and style sheets, bundled and hashed at build time (see static.ts); the
  // views name them through `asset('viewer.js')`.
  const statics = loadStaticFiles(deps.staticDir);
  app.locals.asset = (name: string): string => {
    const hashed = statics.names[name];
    if (!hashed) throw new Error(`no static file "${name}" in the build (scripts/bundle.mjs ENTRIES)`);
    return hashed;
  };
  app.use(`${PREFIX}/static`, statics.handler);
  // The language of pages and answers (after the static files: they are the same in every
  // language): ?lang=, else Accept-Language (language.ts).
  app.use(chooseLanguage);
  if (deps.rateLimits) {
    // Before any parsing or token check: a flood costs as little as possible.
    app.use(`${PREFIX}/api/v1`, deps.rateLimits.api, deps.rateLimits.changes);
    app.use(`${PREFIX}/config`, deps.rateLimits.changes);
  }
  app.use(`${PREFIX}/api/v1`, apiRouter(deps));
  app.use(`${PREFIX}/config`, configPageRouter(deps));
  app.use(`${PREFIX}/viewer`, viewerRouter(deps));
  app.get(`${PREFIX}/websockify`, deps.guard.api('view'), preflightHandler(deps));

  app.use((req, res) => {
    renderError(res, new AppError(ERR_NOT_FOUND, `Nothing here: ${req.path}`, { i18n: { key: 'problem.notFound', params: { path: req.path } } }));
  });

  // The one error handler: Problem JSON for the API and the relay preflight, an HTML page elsewhere.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = toAppError(err);
    // Refusals for want of the identity manager are logged where they happen.
    if (e.status >= 500 && e.code !== ERR_UNAVAILABLE) deps.logger.error('request failed', { method: req.method, path: req.path, error: err instanceof Error ? err.stack : String(err) });
    if (res.headersSent) return;
    sendError(req, res, e);
  });
  return app;
}
