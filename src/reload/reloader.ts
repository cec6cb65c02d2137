/**
 * Hot reload (contract.ts): reads the config file and the secret files again — on SIGHUP, or when their
 * directories change — and puts a new runtime in force when all of it is valid:
 *   read (async) → same fingerprint? unchanged → parse + validate → restart-only fields back to their
 *   running values → cookie secrets → build the runtime → swap (one assignment) → count, log.
 * Any problem on the way keeps the running config, counts a failure and logs every problem by field path
 * (never a value from a secrets file). Reloads run one at a time, in the order asked for.
 */
import { isDeepStrictEqual } from 'node:util';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, parseConfig, parseConfigText } from '../config/load.js';
import { upstreamHeaderPlan } from '../envoy-contract.js';
import type { Config } from '../config/schema.js';
import { createService, type Service } from '../http/server.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { cookieSecretsFrom } from '../oidc/setup.js';
import { PolicyError } from '../policy/rules.js';
import { sameSecrets } from '../session/secrets.js';
import type { Tracing } from '../tracing/contract.js';
import {
  changedFields, keepRunningValues, RESTART_ONLY_FILES, restartRequiredChanges,
  type ReloadOutcome, type Reloader, type ReloadTrigger,
} from './contract.js';
import { Debouncer } from './debounce.js';
import { fingerprintOf, hashOfText, readTexts } from './source.js';
import { watchDirectories, type DirectoryWatch } from './watch.js';

/** The config file itself, among the files a reload reads (the others go by the config field naming them). */
export const CONFIG_FILE = '(file)';

export interface LoadedFiles {
  readonly configFile: string;
  readonly config: Config;
  /** What the schema was given (after env overrides). */
  readonly raw: Record<string, unknown>;
  /** Each file's text, by CONFIG_FILE or the config field naming it. */
  readonly texts: ReadonlyMap<string, string>;
  readonly configHash: string;
}

/** The files a reload reads: the config file and those it names whose content may change. */
export function reloadedFiles(configFile: string, config: Config): Map<string, string> {
  const files = new Map([[CONFIG_FILE, configFile]]);
  if (config.oidc && config.session.secretsFile) files.set('session.secretsFile', config.session.secretsFile);
  if (config.oidc?.clientSecretFile) files.set('oidc.clientSecretFile', config.oidc.clientSecretFile);
  return files;
}

/**
 * Start-up: the config file read and validated (ConfigError otherwise) and the texts of the files it names
 * as far as they can be read; one that cannot is left out, and the service names its field when it needs it.
 */
export function loadFiles(configFile: string, env: NodeJS.ProcessEnv = process.env): LoadedFiles {
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (error) {
    throw new ConfigError(configFile, [`(file): cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  const { config, raw } = parseConfigText(text, configFile, env);
  const texts = new Map([[CONFIG_FILE, text]]);
  for (const [field, path] of reloadedFiles(configFile, config)) {
    if (field === CONFIG_FILE) continue;
    try {
      texts.set(field, readFileSync(path, 'utf8'));
    } catch {
      // Reported by the service, which needs the file, with the field's name and what to do.
    }
  }
  return { configFile, config, raw, texts, configHash: hashOfText(text) };
}

export interface ReloaderDeps {
  readonly service: Pick<Service, 'runtime' | 'prepare' | 'activate'>;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
}

/** The service built from loaded files, and its reloader (not watching yet: watch()). */
export function serviceFromFiles(initial: LoadedFiles, deps: { logger: Logger; metrics: Metrics; env?: NodeJS.ProcessEnv; now?: () => number; tracing?: Tracing | null }): { service: Service; reloader: Reloader } {
  const now = deps.now ?? Date.now;
  const secretsText = initial.texts.get('session.secretsFile');
  const service = createService(initial.config, {
    logger: deps.logger,
    metrics: deps.metrics,
    now,
    configHash: initial.configHash,
    // The text the reloader will compare with; unreadable: the service reads it and names the problem.
    secrets: secretsText === undefined ? undefined : cookieSecretsFrom(secretsText),
    tracing: deps.tracing ?? null,
  });
  return { service, reloader: createReloader(initial, { service, env: deps.env ?? process.env, logger: deps.logger, metrics: deps.metrics, now }) };
}

export function createReloader(initial: LoadedFiles, deps: ReloaderDeps): Reloader {
  return new FileReloader(initial, deps);
}

/** "field: reason" lines of an error from reading, validating or building a config. */
function problemsOf(error: unknown): string[] {
  if (error instanceof ConfigError) return [...error.problems];
  if (error instanceof PolicyError) return [error.message];
  return [`(internal): ${error instanceof Error ? error.message : String(error)}`];
}

class FileReloader implements Reloader {
  private readonly configFile: string;
  /** The raw config in force (restart-only fields at their running values): where keepRunningValues takes them from. */
  private raw: Record<string, unknown>;
  /** Of the files as last applied, or as they were at start-up. */
  private fingerprint: string;
  /** Of the files as last refused: the same broken files read again (another event) are not logged again at info. */
  private refused: string | null = null;
  /** Restart-only files as read at start-up (their content is in force until a restart). */
  private readonly startTexts: ReadonlyMap<string, string>;
  private queue: Promise<unknown> = Promise.resolve();
  private watching: DirectoryWatch | null = null;
  private debouncer: Debouncer | null = null;
  private closed = false;

  constructor(initial: LoadedFiles, private readonly deps: ReloaderDeps) {
    this.configFile = initial.configFile;
    this.raw = initial.raw;
    this.fingerprint = fingerprintOf(initial.texts);
    this.startTexts = initial.texts;
  }

  get activeHash(): string {
    return this.deps.service.runtime.configHash;
  }

  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const run = this.queue.then(() => this.reloadOnce(trigger));
    this.queue = run.catch(() => undefined);
    return run;
  }

  watch(): void {
    if (this.closed || this.watching !== null) return;
    const { config } = this.deps.service.runtime;
    if (!config.reload.watch) return;
    const { logger } = this.deps;
    const debouncer = new Debouncer(config.reload.debounce, () => void this.reload('watch'));
    this.debouncer = debouncer;
    const directories = [...reloadedFiles(this.configFile, config).values()].map((file) => dirname(resolve(file)));
    this.watching = watchDirectories(directories, () => debouncer.poke(), (directory, error) => {
      logger.warn('cannot watch a directory of the config files; SIGHUP still reloads', { directory, error: error.message });
    });
    logger.info('watching the config files for changes', { directories: this.watching.directories, debounceMs: config.reload.debounce });
  }

  close(): void {
    this.closed = true;
    this.watching?.close();
    this.watching = null;
    this.debouncer?.cancel();
  }

  private async reloadOnce(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    this.startedAt = performance.now();
    this.readAt = 0;
    try {
      return await this.attempt(trigger);
    } catch (error) {
      // Nothing above should throw; if something does, it is a failed reload like any other.
      return this.failed(trigger, problemsOf(error), null);
    }
  }

  /**
   * When the reload under way started, and when its files had been read: its log line says how long it
   * took (tookMs, reads included) and how long it held the event loop, when checks wait (buildMs: parse,
   * validate, build and swap, all synchronous).
   */
  private startedAt = 0;
  private readAt = 0;
  private timing(): { tookMs: number; buildMs: number } {
    const now = performance.now();
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return { tookMs: round(now - this.startedAt), buildMs: round(this.readAt === 0 ? 0 : now - this.readAt) };
  }

  private async attempt(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { service, env } = this.deps;
    const running = service.runtime;
    // The paths are restart-only: the running config's are the ones to read.
    const read = await readTexts(reloadedFiles(this.configFile, running.config));
    if (read.problems.length > 0) return this.failed(trigger, read.problems, null);
    this.readAt = performance.now();
    const fingerprint = fingerprintOf(read.texts);
    if (fingerprint === this.fingerprint) return this.unchanged(trigger);

    const configText = read.texts.get(CONFIG_FILE)!;
    // Valid YAML for "all defaults" at start-up, but on a reload far more likely a file caught mid-write.
    if (configText.trim() === '') return this.failed(trigger, ['(file): is empty (being written? write the new file beside it and rename it into place)'], fingerprint);
    let parsed: { config: Config; raw: Record<string, unknown> };
    try {
      parsed = parseConfigText(configText, this.configFile, env);
    } catch (error) {
      return this.failed(trigger, problemsOf(error), fingerprint);
    }

    // Restart-only fields keep their running values; the rest of the new config is applied.
    const restartFields = restartRequiredChanges(running.config, parsed.config);
    let { config, raw } = parsed;
    if (restartFields.length > 0) {
      raw = keepRunningValues(parsed.raw, this.raw, restartFields);
      try {
        config = parseConfig(raw, this.configFile);
      } catch (error) {
        const kept = `with the running values of ${restartFields.join(', ')} (they need a restart)`;
        return this.failed(trigger, problemsOf(error).map((problem) => `${problem} (${kept})`), fingerprint);
      }
      const left = restartRequiredChanges(running.config, config);
      if (left.length > 0) return this.failed(trigger, left.map((field) => `${field}: needs a restart, and the new config cannot keep its running value`), fingerprint);
    }
    const restartRequired = [
      ...restartFields,
      ...RESTART_ONLY_FILES.filter((field) => read.texts.get(field) !== this.startTexts.get(field)).map((field) => `${field} (its content)`),
    ];

    // Envoy passes upstream only the headers the mesh config listed at start-up: rules that would need
    // others (a new exchange or offline-token rule) cannot be applied by a reload.
    if (!isDeepStrictEqual(upstreamHeaderPlan(running.config), upstreamHeaderPlan(config))) {
      return this.failed(trigger, ['rules: upstreamToken or offlineToken rules added or removed change the headers Envoy must pass (headersToUpstreamOnAllow): render the new provider (oidc-authz provider) and restart'], fingerprint);
    }

    let secrets = running.secrets;
    const secretsText = read.texts.get('session.secretsFile');
    if (secretsText !== undefined) {
      try {
        secrets = cookieSecretsFrom(secretsText);
      } catch (error) {
        return this.failed(trigger, problemsOf(error), fingerprint);
      }
    }

    let runtime;
    try {
      runtime = service.prepare(config, secrets, hashOfText(configText));
    } catch (error) {
      return this.failed(trigger, problemsOf(error), fingerprint);
    }

    const changed = changedFields(running.config, config);
    if (running.secrets !== null && secrets !== null && !sameSecrets(running.secrets, secrets)) changed.push('session.secretsFile (its content)');
    service.activate(runtime);
    this.raw = raw;
    this.fingerprint = fingerprint;
    this.refused = null;

    const { metrics, logger, now } = this.deps;
    metrics.configReloads.inc({ result: 'success' });
    metrics.configLastReloadSuccess.set(now() / 1000);
    metrics.configRestartRequired.set(restartRequired.length > 0 ? 1 : 0);
    logger.info('config reloaded', { trigger, hash: runtime.configHash, previousHash: running.configHash, changed, ...this.timing() });
    if (restartRequired.length > 0) {
      logger.warn('config changes need a restart: they keep their running values until then', { trigger, fields: restartRequired, hash: runtime.configHash });
    }
    return { result: 'success', hash: runtime.configHash, problems: [], restartRequired };
  }

  private unchanged(trigger: ReloadTrigger): ReloadOutcome {
    const hash = this.activeHash;
    this.deps.metrics.configReloads.inc({ result: 'unchanged' });
    // Any event in a watched directory reads the files: only an operator's SIGHUP is worth a line at info.
    if (trigger === 'watch') this.deps.logger.debug('config unchanged', { trigger, hash });
    else this.deps.logger.info('config unchanged', { trigger, hash });
    return { result: 'unchanged', hash, problems: [], restartRequired: [] };
  }

  /** `fingerprint`: of the files refused (null when they could not all be read). */
  private failed(trigger: ReloadTrigger, problems: readonly string[], fingerprint: string | null): ReloadOutcome {
    const hash = this.activeHash;
    this.deps.metrics.configReloads.inc({ result: 'failure' });
    const again = fingerprint !== null && fingerprint === this.refused && trigger === 'watch';
    this.refused = fingerprint;
    const fields = { trigger, problems, hash, note: 'the running config is kept', ...this.timing() };
    if (again) this.deps.logger.debug('config reload failed', fields);
    else this.deps.logger.error('config reload failed', fields);
    return { result: 'failure', hash, problems, restartRequired: [] };
  }
}
