/**
 * @module
 * JSON API under `/ctrlx-novnc/api/v1/`: configuration, status, probes and the ctrlX
 * active-configuration callbacks. Every failure is an AppError, answered as Problem JSON by the
 * app's one error handler.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import {
  AppError,
  ERR_BAD_REQUEST,
  ERR_CONFLICT,
  ERR_FORBIDDEN,
  ERR_NOT_FOUND,
  ERR_UNAVAILABLE,
  ERR_UNSUPPORTED_MEDIA_TYPE,
  validationError,
  type FieldError,
} from '../../errors.js';
import { AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT, auditCsv } from '../../audit/audit-log.js';
import { validViewerId } from '../../supervisor/supervisor.js';
import { identityOf } from '../access.js';
import { storedTarget, validateConfigInput, validateProbeTarget, type Target } from '../../config/schema.js';
import type { ConfigService } from '../../config/service.js';
import { loadCallback, parseCallbackBody, saveCallback, type CallbackBody, type CallbackResult } from '../../ctrlx/active-configuration.js';
import { probeForPage } from './config-page.js';
import { sendProblem } from '../respond.js';
import { isSameOrigin } from '../security.js';
import { mayManage } from '../access.js';
import { statusFor } from '../status-view.js';
import type { RouteDeps } from '../deps.js';

/** JSON bodies above this many bytes get 413. */
export const API_BODY_LIMIT = 16 * 1024;

/** Requires a JSON body on state-changing requests: a cross-site form cannot send one. */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (!isSameOrigin(req)) {
    next(new AppError(ERR_FORBIDDEN, 'Cross-origin requests are not allowed.', { i18n: { key: 'problem.crossOrigin' } }));
    return;
  }
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is('application/json')) {
    next(new AppError(ERR_UNSUPPORTED_MEDIA_TYPE, 'Send the body as application/json.'));
    return;
  }
  next();
}

function sendCallback(res: Response, result: CallbackResult): void {
  if ('error' in result) sendProblem(res, result.error, result.diagnosis);
  else res.status(204).end();
}

/**
 * Parses a callback body.
 * @throws {AppError} ERR_VALIDATION for a malformed one
 */
function callbackBody(req: Request): CallbackBody {
  const parsed = parseCallbackBody(req.body ?? {});
  if (parsed.ok) return parsed.body;
  throw validationError(parsed.errors, 'The callback body is invalid');
}

/** Highest audit page number accepted (far beyond what two 256 KiB files hold). */
export const AUDIT_MAX_PAGE = 100_000;

/** One integer query parameter from `min` to `max`, or `fallback` when absent; errors name it. */
function intParam(query: Request['query'], name: string, min: number, max: number, fallback: number, errors: FieldError[]): number {
  const raw = query[name];
  if (raw === undefined) return fallback;
  if (typeof raw === 'string' && /^\d{1,9}$/.test(raw)) {
    const n = Number(raw);
    if (n >= min && n <= max) return n;
  }
  errors.push({ field: name, message: `must be a whole number from ${min} to ${max}` });
  return fallback;
}

/**
 * `page` (1-based) and `limit` (1..500) of `GET api/v1/audit`; `all` when the CSV export names
 * neither (the whole trail).
 * @throws {AppError} ERR_VALIDATION naming the parameter
 */
export function auditQuery(query: Request['query']): { page: number; limit: number; all: boolean } {
  const errors: FieldError[] = [];
  const page = intParam(query, 'page', 1, AUDIT_MAX_PAGE, 1, errors);
  const limit = intParam(query, 'limit', 1, AUDIT_MAX_LIMIT, AUDIT_DEFAULT_LIMIT, errors);
  if (errors.length) throw validationError(errors, 'The audit query is invalid');
  return { page, limit, all: query.page === undefined && query.limit === undefined };
}

/** `audit-2026-12-02.csv` for today (UTC). */
function auditFileName(now = new Date()): string {
  return `audit-${now.toISOString().slice(0, 10)}.csv`;
}

/** A target as the API shows it: whether a VNC password is stored, never the password. */
export type TargetView = Target & { passwordSet: boolean };

/** The configuration as `GET`/`PUT api/v1/config` answer it. */
export function configView(service: ConfigService): { version: number; targets: TargetView[] } {
  const config = service.current;
  return {
    version: config.version,
    targets: config.targets.map((t) => ({ ...storedTarget(t), passwordSet: service.hasPassword(t.id) })),
  };
}

export function apiRouter(deps: RouteDeps): Router {
  const { config: service, supervisor } = deps;
  const router = Router();
  const view = deps.guard.api('view');
  const manage = deps.guard.api('manage');
  router.use(requireJson);
  router.use(express.json({ limit: API_BODY_LIMIT, strict: false, type: 'application/json' }));

  router.get('/config', manage, (_req, res) => {
    res.json(configView(service));
  });

  router.put('/config', manage, async (req, res) => {
    if (req.body === undefined) throw new AppError(ERR_BAD_REQUEST, 'The request has no JSON body.');
    // `password` per target: a string sets it, null removes it, absent keeps the stored one.
    const result = validateConfigInput(req.body, { versionOptional: true });
    if (!result.ok) throw validationError(result.errors);
    const { passwordsCleared } = await service.save(result.config, result.passwords);
    // passwordsCleared: the targets whose stored password this save cleared (address changed).
    res.json({ ...configView(service), passwordsCleared });
  });

  // JSON; or, asked for HTML, the settings page's status panel rendered by the one template
  // (views/partials/status.ejs) that also renders it into the page, for the page's live updates.
  // Users who may only view get it without addresses, paths or other viewers (status-view.ts).
  router.get('/status', view, (req, res) => {
    const status = statusFor(deps.status(), mayManage(res));
    if (req.accepts(['json', 'html']) === 'html') res.render('partials/status', { status });
    else res.json(status);
  });

  router.post('/targets/:id/probe', manage, async (req, res) => {
    const id = String(req.params.id);
    const resolved = supervisor.resolve(id);
    if ('status' in resolved) throw new AppError(ERR_NOT_FOUND, `Unknown VNC target "${id.slice(0, 64)}".`, { i18n: { key: 'problem.unknownTarget', params: { id: id.slice(0, 64) } } });
    res.json(await supervisor.probe(resolved.target.host, resolved.target.port, deps.probeTimeout));
  });

  // Probes values typed on the page before they are saved. With `login: true` (the settings
  // page's "Test connection") it goes through the VNC login: whether the server asks for a
  // password (`asksPassword`), and whether the typed `password` (or else the stored one of the
  // saved target at that address) is right; see relay/probe.ts.
  router.post('/probe', manage, async (req, res) => {
    const body = (req.body ?? {}) as { host?: unknown; port?: unknown; password?: unknown; login?: unknown };
    if (body.login === true) {
      const probed = await probeForPage(deps, body);
      if (!probed.ok) throw validationError(probed.errors, 'Cannot test this target');
      res.json(probed.result);
      return;
    }
    const checked = validateProbeTarget(body.host, body.port);
    if (!checked.ok) throw validationError(checked.errors, 'Cannot test this target');
    res.json(await supervisor.probe(checked.host, checked.port, deps.probeTimeout));
  });

  // The audit trail, newest first: JSON pages, or CSV (`Accept: text/csv`; the whole trail unless
  // `page` or `limit` is given). Manage scope only: it names users and their addresses.
  router.get('/audit', manage, async (req, res) => {
    const { audit } = deps;
    if (!audit) throw new AppError(ERR_NOT_FOUND, 'No audit trail is kept here.');
    const { page, limit, all } = auditQuery(req.query);
    res.setHeader('Cache-Control', 'no-store');
    if (req.accepts(['json', 'text/csv']) === 'text/csv') {
      const entries = all ? await audit.entries() : (await audit.page(page, limit)).entries;
      res.setHeader('Content-Disposition', `attachment; filename="${auditFileName()}"`);
      res.type('text/csv; charset=utf-8').send(auditCsv(entries));
      return;
    }
    res.json(await audit.page(page, limit));
  });

  // ---- sessions, control and events (issue 13) ----------------------------------------------

  router.get('/sessions', view, (_req, res) => {
    const { name, role } = identityOf(res);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ sessions: supervisor.sessions({ name, role }) });
  });

  router.delete('/sessions/:id', manage, (req, res) => {
    const { name, role } = identityOf(res);
    if (!supervisor.endSession(String(req.params.id), { name, role })) throw new AppError(ERR_NOT_FOUND, 'No such session (it may have ended already).');
    res.status(204).end();
  });

  router.post('/sessions/:id/control', deps.guard.api('operate'), (req, res) => {
    const action = (req.body as { action?: unknown } | undefined)?.action;
    if (action !== 'take' && action !== 'release') {
      throw validationError([{ field: 'action', message: 'action must be "take" or "release"' }], 'Cannot change control');
    }
    const { name, role } = identityOf(res);
    const result = supervisor.control(String(req.params.id), { name, role }, action);
    if (!result.ok) {
      if (result.why === 'watch-only') throw new AppError(ERR_CONFLICT, 'This screen is watch-only: nobody operates it remotely (setting "control" of the target).');
      if (result.why === 'forbidden') throw new AppError(ERR_FORBIDDEN, `User "${name}" may only watch the remote screen.`);
      throw new AppError(ERR_NOT_FOUND, 'No such session of yours (it may have ended already).');
    }
    res.json({ mode: result.mode });
  });

  router.get('/events', view, (req, res) => {
    const viewerId = validViewerId(typeof req.query.viewer === 'string' ? req.query.viewer : undefined);
    if (!viewerId) throw validationError([{ field: 'viewer', message: 'viewer must be the page\'s viewer id (8-64 letters, digits, "-", "_")' }], 'Cannot open the event stream');
    if (!deps.events) throw new AppError(ERR_NOT_FOUND, 'No such API endpoint.');
    const to = { viewerId, user: identityOf(res).name };
    if (!deps.events.open(to, res)) throw new AppError(ERR_UNAVAILABLE, 'Too many event streams are open; try again later.', { retryAfter: 10 });
    supervisor.replayEvents(to);
  });

  router.post('/save', manage, async (req, res) => {
    sendCallback(res, await saveCallback(service, callbackBody(req)));
  });

  router.post('/load', manage, async (req, res) => {
    sendCallback(res, await loadCallback(service, callbackBody(req)));
  });

  router.use(() => {
    throw new AppError(ERR_NOT_FOUND, 'No such API endpoint.');
  });
  return router;
}
