/**
 * Hot reload in tests: the real service started from a config file the way `oidc-authz serve` starts it
 * (loadFiles → serviceFromFiles → listen → watch), and a directory that Kubernetes' kubelet would write:
 * a mounted ConfigMap or Secret is a timestamped directory, a `..data` symlink to it, and each file a
 * symlink through `..data`; an update writes a new timestamped directory and renames a `..data_tmp`
 * symlink over `..data` (one atomic rename), then removes the old directory.
 */
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import type { Reloader } from '../../src/reload/contract.js';
import { loadFiles, serviceFromFiles } from '../../src/reload/reloader.js';
import type { RunningService } from './service.js';

export interface ReloadableService extends RunningService {
  readonly reloader: Reloader;
}

/** As `oidc-authz serve --config FILE` starts (with its own logger and metrics), watching unless the config says not to. */
export async function startFromFile(file: string, env: NodeJS.ProcessEnv = {}): Promise<ReloadableService> {
  const files = loadFiles(file, env);
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger(files.config.log.level, (line) => void logs.push(JSON.parse(line) as Record<string, unknown>));
  const metrics = createMetrics({ defaultMetrics: false });
  const { service, reloader } = serviceFromFiles(files, { logger, metrics, env });
  const { port, metricsPort } = await service.listen();
  reloader.watch();
  return {
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    service,
    reloader,
    metrics,
    logs,
    close: async () => {
      reloader.close();
      await service.shutdown();
    },
  };
}

/** A directory as kubelet writes a mounted ConfigMap or Secret (see above). */
export class KubernetesVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'oidc-authz-volume-'));
  private generation = 0;

  constructor(files: Record<string, string>) {
    const data = this.writeGeneration(files);
    symlinkSync(data, join(this.dir, '..data'));
    for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(this.dir, name));
  }

  /** The path the pod reads: `<dir>/<name>`, a symlink through `..data`. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** kubelet's update: the same file names with new contents, swapped in by one rename of `..data`. */
  update(files: Record<string, string>): void {
    const old = readlinkSync(join(this.dir, '..data'));
    const data = this.writeGeneration(files);
    symlinkSync(data, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    rmSync(join(this.dir, old), { recursive: true });
  }

  private writeGeneration(files: Record<string, string>): string {
    // kubelet's names look like ..2026_12_02_09_00_00.1234567890
    const name = `..2026_12_02_09_00_${String(this.generation++).padStart(2, '0')}.${process.pid}${Date.now()}`;
    mkdirSync(join(this.dir, name));
    for (const [file, content] of Object.entries(files)) writeFileSync(join(this.dir, name, file), content);
    return name;
  }
}

/** Replaces a file as an operator should: write beside it, rename over it (one atomic step). */
export function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content);
  renameSync(`${path}.new`, path);
}

/** The value of a metric line in Prometheus' text format (`name{labels} value`), undefined when absent. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels === '' ? '' : `{${labels}}`} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}
