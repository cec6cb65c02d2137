/**
 * Process entry for `oidc-authz serve`: config → service → listen → signals.
 * SIGTERM/SIGINT drain in-flight checks (readiness fails first) and exit; a second signal exits at once.
 */
import { loadConfigFile } from './config/load.js';
import { createService } from './http/server.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics.js';

export async function serve(configFile: string): Promise<void> {
  const config = loadConfigFile(configFile);
  const logger = createLogger(config.log.level);
  const metrics = createMetrics();
  const service = createService(config, { logger, metrics });

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

  await service.listen();
}
