/**
 * Process entry for `oidc-authz serve`: config → service → listen → signals.
 * SIGTERM/SIGINT drain in-flight checks (readiness fails first) and exit; a second signal exits at once.
 * SIGHUP reloads the config and secret files (src/reload/), as a change in their directories does.
 */
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';
import { loadFiles, serviceFromFiles } from './reload/reloader.js';
import { startTracing } from './tracing/index.js';

export async function serve(configFile: string): Promise<void> {
  const files = loadFiles(configFile);
  const logger = createLogger(files.config.log.level);
  const metrics = createMetrics();
  // Off by default; on, the OpenTelemetry SDK is loaded here, before anything that makes spans is built.
  const tracing = await startTracing(files.config.tracing, { logger, metrics });
  const { service, reloader } = serviceFromFiles(files, { logger, metrics, tracing });

  process.on('uncaughtException', (error) => {
    logger.error('uncaught exception', { error });
    process.exit(70);
  });
  process.on('unhandledRejection', (error) => {
    logger.error('unhandled rejection', { error });
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('signal received', { signal });
    reloader.close();
    service.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Node's default for SIGHUP is to exit: a listener makes it a reload (the outcome is logged and counted).
  process.on('SIGHUP', () => {
    if (!stopping) void reloader.reload('signal');
  });

  await service.listen();
  reloader.watch();
}
