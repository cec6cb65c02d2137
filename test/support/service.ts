/** Starts the real service (config → createService → listen on 127.0.0.1:0) for integration tests. */
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createService, type Service } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';

export interface RunningService {
  readonly url: string;
  readonly metricsUrl: string;
  readonly service: Service;
  readonly metrics: Metrics;
  /** Every log line the service wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startService(input: ConfigInput): Promise<RunningService> {
  const config = parseConfig({
    ...input,
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0, shutdownTimeout: '5s', ...input.listen },
    log: { level: 'debug', ...input.log },
  });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger(config.log.level, (line) => void logs.push(JSON.parse(line) as Record<string, unknown>));
  const metrics = createMetrics({ defaultMetrics: false });
  const service = createService(config, { logger, metrics });
  const { port, metricsPort } = await service.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    service,
    metrics,
    logs,
    close: () => service.shutdown(),
  };
}
