/**
 * The Express app for everything that is not a check: health, readiness and (with browser login)
 * the /oauth2/* endpoints. Human-facing and rare, so a framework's cost does not matter here.
 */
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../log.js';

export interface AppState {
  /** False while draining on SIGTERM: readiness fails so Kubernetes stops sending traffic. */
  ready: boolean;
  /**
   * What else must hold before traffic may come: OIDC discovery must have succeeded once, so a wrong
   * issuer keeps a new rollout from taking over instead of failing every login. null when all is well.
   */
  notReadyBecause: () => { reason: string; detail: string } | null;
}

export function createApp(state: AppState, logger: Logger, loginRoutes: Router | null = null): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    res.set('cache-control', 'no-store');
    if (!state.ready) return void res.status(503).json({ status: 'draining' });
    const problem = state.notReadyBecause();
    if (problem !== null) return void res.status(503).json({ status: 'not_ready', ...problem });
    res.json({ status: 'ready' });
  });

  if (loginRoutes) app.use(loginRoutes);

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not_found' });
  });
  app.use((error: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
    if (status === 500) logger.error('request failed', { error });
    res.status(status).json({ error: status === 500 ? 'internal_error' : 'bad_request' });
  });
  return app;
}
