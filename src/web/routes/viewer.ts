/**
 * @module
 * The viewer: the page `/ctrlx-novnc/viewer/` (its script bundles noVNC at build time, see
 * scripts/bundle.mjs), and the preflight `GET websockify?target=`
 * that tells the viewer why an upgrade would be refused: the failure kind and its code (from
 * src/common/failures.ts) for the viewer to choose its message, and the reason in words.
 */
import { type RequestHandler, Router } from 'express';
import { AppError, ERR_NOT_FOUND, ERR_UNAVAILABLE } from '../../errors.js';
import { sendProblem } from '../respond.js';
import type { RouteDeps } from '../deps.js';
import { FAILURES } from '../../common/failures.js';
import { identityOf, mayManage } from '../access.js';

export function viewerRouter(deps: RouteDeps): Router {
  const router = Router();
  router.get('/', deps.guard.page('view'), (_req, res) => {
    const relay = deps.supervisor.status();
    // The address only for those who may see it (see status-view.ts); the others get names.
    const manage = mayManage(res);
    res.render('viewer', {
      // Settings links only for those who may open the settings (the others would get a 403).
      mayManage: manage,
      // The role decides whether the page offers "Take control" (operate and manage).
      role: identityOf(res).role,
      targets: relay.targets.map((t) => ({ id: t.id, name: t.name, demo: t.demo, address: manage ? t.target : undefined, idleMinutes: t.idleMinutes, control: t.control })),
    });
  });
  return router;
}

/**
 * `GET websockify?target=`: 426 when an upgrade would be accepted, else the refusal as Problem
 * JSON with `kind` and `code` (the row of the failure table) besides the reason in `detail`.
 */
export function preflightHandler(deps: RouteDeps): RequestHandler {
  return (req, res) => {
    const id = typeof req.query.target === 'string' ? req.query.target : null;
    const admitted = deps.supervisor.admit(id);
    if ('kind' in admitted) {
      const notFound = admitted.status === 404;
      sendProblem(
        res,
        new AppError(notFound ? ERR_NOT_FOUND : ERR_UNAVAILABLE, admitted.reason, {
          status: admitted.status,
          title: notFound ? 'Unknown target' : 'Not available',
          titleKey: notFound ? 'problem.title.unknownTarget' : 'problem.title.notAvailable',
          i18n: admitted.i18n,
          ...(admitted.retryAfter ? { retryAfter: admitted.retryAfter } : {}),
        }),
        { kind: admitted.kind, code: FAILURES[admitted.kind].code },
      );
      return;
    }
    res.status(426).setHeader('Upgrade', 'websocket');
    res.json({ target: { id: admitted.target.id, name: admitted.target.name }, detail: 'Open this URL as a WebSocket.' });
  };
}
