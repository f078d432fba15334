/**
 * @module
 * The viewer: the page `/ctrlx-novnc/viewer/`, the noVNC library files served from the installed
 * `@novnc/novnc` package at `/ctrlx-novnc/novnc/`, and the preflight `GET websockify?target=`
 * that tells the viewer why an upgrade would be refused: the failure kind and its code (from
 * src/shared/failures.ts) for the viewer to choose its message, and the reason in words.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import { AppError, ERR_NOT_FOUND, ERR_UNAVAILABLE } from '../../errors.js';
import { sendProblem } from '../respond.js';
import type { RouteDeps } from '../deps.js';
import { FAILURES } from '../../shared/failures.js';
import { mayManage } from '../access.js';

/** The installed noVNC package folder (holds core/ and vendor/). */
export function novncDir(): string {
  // The package exports only core/rfb.js: resolve it and go up two levels.
  return path.resolve(path.dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))), '..');
}

/** Static noVNC files; only core/ and vendor/ (no docs, no package metadata). */
export function novncRouter(): Router {
  const router = Router();
  const dir = novncDir();
  const options = { index: false, redirect: false, fallthrough: false, setHeaders: (res: express.Response) => res.setHeader('Cache-Control', 'no-cache') };
  router.use('/core', express.static(path.join(dir, 'core'), options));
  router.use('/vendor', express.static(path.join(dir, 'vendor'), options));
  return router;
}

export function viewerRouter(deps: RouteDeps): Router {
  const router = Router();
  router.get('/', deps.guard.page('view'), (_req, res) => {
    const relay = deps.supervisor.status();
    // The address only for those who may see it (see status-view.ts); the others get names.
    const manage = mayManage(res);
    res.render('viewer', {
      targets: relay.targets.map((t) => ({ id: t.id, name: t.name, demo: t.demo, address: manage ? t.target : undefined, idleMinutes: t.idleMinutes })),
    });
  });
  return router;
}

/**
 * `GET websockify?target=`: 426 when an upgrade would be accepted, else the refusal as Problem
 * JSON with `kind` and `code` (the row of the failure table) besides the reason in `detail`.
 */
export function preflightHandler(deps: RouteDeps): express.RequestHandler {
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
