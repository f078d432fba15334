/**
 * @module
 * JSON API under `/ctrlx-novnc/api/v1/`: configuration, status, probes and the ctrlX
 * active-configuration callbacks. Every error is Problem JSON.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { AppError } from '../../errors.js';
import { storedTarget, validateConfigInput, type Config, type Target } from '../../config/schema.js';
import type { ConfigService } from '../../config/service.js';
import { CallbackBody, loadCallback, saveCallback, type CallbackResult } from '../../ctrlx/active-configuration.js';
import { PROBLEM_TYPES, problem, sendProblem, validationProblem } from '../../ctrlx/problem.js';
import { parsePort, isValidHost } from '../../relay/address.js';
import { probeTarget } from '../../relay/probe.js';
import { isSameOrigin } from '../security.js';
import type { RouteDeps } from '../deps.js';

/** JSON bodies above this many bytes get 413. */
export const API_BODY_LIMIT = 16 * 1024;

/** Requires a JSON body on state-changing requests: a cross-site form cannot send one. */
function requireJson(req: Request, res: Response, next: NextFunction): void {
  if (!isSameOrigin(req)) {
    sendProblem(res, problem(403, PROBLEM_TYPES.forbidden, 'Forbidden', 'Cross-origin requests are not allowed.'));
    return;
  }
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && !req.is('application/json')) {
    sendProblem(
      res,
      problem(415, PROBLEM_TYPES.unsupportedMedia, 'Unsupported media type', 'Send the body as application/json.'),
    );
    return;
  }
  next();
}

function sendCallback(res: Response, result: CallbackResult): void {
  if ('problem' in result) sendProblem(res, result.problem);
  else res.status(204).end();
}

/** Parses a callback body, answering 400 for a malformed one. */
function callbackBody(req: Request, res: Response): CallbackBody | null {
  const parsed = CallbackBody.safeParse(req.body ?? {});
  if (parsed.success) return parsed.data;
  const errors = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(root)', message: i.message }));
  sendProblem(res, validationProblem(errors, 'The callback body is invalid'));
  return null;
}

/** A target as the API shows it: whether a VNC password is stored, never the password. */
export type TargetView = Target & { passwordSet: boolean };

/** The configuration as `GET`/`PUT api/v1/config` answer it. */
export function configView(service: ConfigService): { version: number; targets: TargetView[] } {
  const config: Config = service.current;
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
    if (req.body === undefined) {
      sendProblem(res, problem(400, PROBLEM_TYPES.badRequest, 'Bad request', 'The request has no JSON body.'));
      return;
    }
    // `password` per target: a string sets it, null removes it, absent keeps the stored one.
    const result = validateConfigInput(req.body, { versionOptional: true });
    if (!result.ok) {
      sendProblem(res, validationProblem(result.errors));
      return;
    }
    const { config, passwords } = result;
    await service.save(config, passwords);
    res.json(configView(service));
  });

  router.get('/status', view, (_req, res) => {
    res.json(deps.status());
  });

  router.post('/targets/:id/probe', manage, async (req, res) => {
    const id = String(req.params.id);
    const resolved = supervisor.resolve(id);
    if ('status' in resolved) {
      sendProblem(res, problem(404, PROBLEM_TYPES.notFound, 'Not found', `Unknown VNC target "${id.slice(0, 64)}".`));
      return;
    }
    res.json(await probeTarget(resolved.target.host, resolved.target.port, deps.probeTimeout));
  });

  // Probes values typed on the page before they are saved (same checks as the configuration).
  router.post('/probe', manage, async (req, res) => {
    const body = (req.body ?? {}) as { host?: unknown; port?: unknown };
    const errors = [];
    if (typeof body.host !== 'string' || !isValidHost(body.host.trim())) {
      errors.push({ field: 'host', message: 'host must be an IPv4 or IPv6 address or a host name (RFC 1123)' });
    }
    let port = 0;
    if (typeof body.port !== 'number' && typeof body.port !== 'string') {
      errors.push({ field: 'port', message: 'port must be a number' });
    } else {
      try {
        port = parsePort(String(body.port), 'port');
      } catch (err) {
        errors.push({ field: 'port', message: (err as AppError).message });
      }
    }
    if (errors.length) {
      sendProblem(res, validationProblem(errors, 'Cannot test this target'));
      return;
    }
    res.json(await probeTarget((body.host as string).trim(), port, deps.probeTimeout));
  });

  router.post('/save', manage, async (req, res) => {
    const body = callbackBody(req, res);
    if (body) sendCallback(res, await saveCallback(service, body));
  });

  router.post('/load', manage, async (req, res) => {
    const body = callbackBody(req, res);
    if (body) sendCallback(res, await loadCallback(service, body));
  });

  router.use((_req, res) => {
    sendProblem(res, problem(404, PROBLEM_TYPES.notFound, 'Not found', 'No such API endpoint.'));
  });
  return router;
}
