/**
 * The Express app for everything that is not a check: health, readiness and (with browser login)
 * the /oauth2/* endpoints. Human-facing and rare, so a framework's cost does not matter here.
 */
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger } from '../log.js';

export interface AppState {
  /** False while draining on SIGTERM: readiness fails so Kubernetes stops sending traffic. */
  ready: boolean;
}

export function createApp(state: AppState, logger: Logger, loginRoutes: Router | null = null): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    res.set('cache-control', 'no-store').status(state.ready ? 200 : 503).json({ status: state.ready ? 'ready' : 'draining' });
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
