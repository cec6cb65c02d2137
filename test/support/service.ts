/** Starts the real service (config → createService → listen on 127.0.0.1:0) for integration tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createService, type Service } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { startTracing, type Tracing } from '../../src/tracing/index.js';

export interface RunningService {
  readonly url: string;
  readonly metricsUrl: string;
  readonly service: Service;
  readonly metrics: Metrics;
  /** Every log line the service wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** With config tracing.enabled, as `serve` starts it (src/main.ts); null otherwise. */
  readonly tracing?: Tracing | null;
  close(): Promise<void>;
}

/** A port that was free a moment ago (for configs that must name their own URL before listening). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A clock tests move forward instead of sleeping. */
export class TestClock {
  offsetMs = 0;
  private frozenAt: number | null = null;
  readonly now = (): number => (this.frozenAt ?? Date.now()) + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }

  /**
   * Stops the clock's real-time part until the returned function is called (advance still moves it): a count
   * "per cacheFor" then does not depend on how fast a loaded machine gets through the checks.
   */
  freeze(): () => void {
    this.frozenAt = Date.now();
    return () => {
      this.frozenAt = null;
    };
  }
}

/** A temporary file with these lines (cookie secrets, client secret). */
export function tempFile(content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-'));
  const file = join(dir, 'file');
  writeFileSync(file, content);
  return file;
}

export async function startService(input: ConfigInput, options: { now?: () => number } = {}): Promise<RunningService> {
  const config = parseConfig({
    ...input,
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0, shutdownTimeout: '5s', ...input.listen },
    log: { level: 'debug', ...input.log },
  });
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger(config.log.level, (line) => void logs.push(JSON.parse(line) as Record<string, unknown>));
  const metrics = createMetrics({ defaultMetrics: false });
  const tracing = await startTracing(config.tracing, { logger, metrics });
  const service = createService(config, { logger, metrics, tracing, writeLine: (line) => void logs.push(JSON.parse(line) as Record<string, unknown>), ...(options.now ? { now: options.now } : {}) });
  const { port, metricsPort } = await service.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    service,
    metrics,
    logs,
    tracing,
    close: () => service.shutdown(),
  };
}

/**
 * Resolves with the first value `probe` returns that `done` accepts, asking every 10 ms; fails after
 * `timeoutMs` with the last value. For state that another process reaches on its own schedule (a
 * discovery retried in the background, a server starting): the test waits for the state, not for time.
 */
export async function pollUntil<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
