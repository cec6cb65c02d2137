// The real check service, from the compiled dist/ (run `make build` first).
// Usage: node bench/server-authz.mjs CONFIG.json — the config is validated by parseConfig like the
// real one; listen.port 0 picks a free port. Prints one JSON line when ready:
//   {"ready":true,"pid":…,"port":…,"metricsPort":…}
// Metrics are the production ones (createMetrics() with default process metrics); logging is off
// (silentLogger), so denials are not logged here as they would be at log level "info".
import { readFileSync } from 'node:fs';
import { parseConfig } from '../dist/config/load.js';
import { createService } from '../dist/http/server.js';
import { silentLogger } from '../dist/log.js';
import { createMetrics } from '../dist/metrics.js';
import { startTracing } from '../dist/tracing/index.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node bench/server-authz.mjs CONFIG.json\n');
  process.exit(2);
}
const config = parseConfig(JSON.parse(readFileSync(file, 'utf8')), file);
const metrics = createMetrics();
// As main.ts does: null (nothing loaded) unless the config turns tracing on.
const tracing = await startTracing(config.tracing, { logger: silentLogger, metrics });
const service = createService(config, { logger: silentLogger, metrics, tracing });
const { port, metricsPort } = await service.listen();
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, port, metricsPort })}\n`);

// Memory step: started with --expose-gc; on SIGUSR2, a full garbage collection, then one JSON line with
// the process's memory (process.memoryUsage(), bytes), so live memory is read without uncollected garbage.
if (typeof globalThis.gc === 'function') {
  process.on('SIGUSR2', () => {
    globalThis.gc();
    process.stdout.write(`${JSON.stringify({ gc: true, ...process.memoryUsage() })}\n`);
  });
}

// Exit normally on SIGTERM so `node --cpu-prof` can write its profile.
let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  service.shutdown().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
