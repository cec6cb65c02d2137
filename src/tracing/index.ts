/**
 * Starting tracing (contract.ts): with `tracing.enabled` off (the default) nothing is imported and null
 * is returned; on, the OpenTelemetry SDK is loaded (dynamic import, sdk.ts) and the I/O edges' tracer is
 * put in force for the process. Called before the service is built (main.ts), so a Redis client made
 * then traces its commands.
 */
import type { TracingConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Tracing } from './contract.js';
import { installEdgeTracer } from './edge.js';

export type { CheckTracer, Tracing } from './contract.js';

export async function startTracing(config: TracingConfig, deps: { readonly logger: Logger; readonly metrics: Metrics; readonly now?: () => number }): Promise<Tracing | null> {
  if (!config.enabled) return null;
  const { createTracing } = await import('./sdk.js');
  const tracing = createTracing(config, deps);
  const uninstall = installEdgeTracer(tracing.edges);
  const endpoint = new URL(config.endpoint!);
  // Without the query: some backends take a key there.
  deps.logger.info('tracing on', { endpoint: `${endpoint.origin}${endpoint.pathname}`, serviceName: config.serviceName, sampleRatio: config.sampleRatio });
  return {
    ...tracing,
    shutdown: () => tracing.shutdown().finally(uninstall),
  };
}
