/**
 * @module
 * The viewer page `/ctrlx-novnc/viewer/` (placeholder until the noVNC viewer lands).
 */
import { Router } from 'express';
import type { WebDeps } from '../app.js';

export function viewerRouter(deps: WebDeps): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    res.render('viewer', { status: deps.status() });
  });
  return router;
}
