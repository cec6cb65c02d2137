/**
 * One node:http server: requests under `checkPathPrefix` go straight to the check handler, everything
 * else to the Express app. Metrics are served by a second, separate server on their own port.
 * What a check reads lives in one runtime (reload/runtime.ts) that a hot reload replaces whole
 * (prepare, then activate); sockets, the login's discovery client and routes live as long as the process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import type { BearerVerifier } from '../authn/bearer.js';
import { SessionMemory, type SessionAuthenticator } from '../authn/session.js';
import { createBrowserLogin, readCookieSecrets } from '../oidc/setup.js';
import { createResponder, responderOptionsFor } from '../check/respond.js';
import { createDecisionLog } from '../decision-log.js';
import { createLineLimiter, logSuppressed } from '../log-limit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { lintPolicy, warningLogFields } from '../policy/lint.js';
import { hashOfText } from '../reload/source.js';
import { buildRuntime, type Runtime } from '../reload/runtime.js';
import { SecretRing, type SealingSecrets } from '../session/secrets.js';
import type { Tracing } from '../tracing/contract.js';
import { createApp, type AppState } from './app.js';
import { createCheckHandler } from './check-handler.js';

export interface Service {
  /** The config in force (a hot reload replaces it; restart-only fields keep their start-up values). */
  readonly config: Config;
  readonly bearer: BearerVerifier | null;
  readonly sessions: SessionAuthenticator | null;
  /** The runtime in force: what the next check reads. */
  readonly runtime: Runtime;
  readonly appServer: Server;
  readonly metricsServer: Server | null;
  /**
   * A runtime for a new config and cookie secrets, built whole beside the one in force, which it does not
   * touch; throws what building throws (PolicyError). The config's restart-only fields must be the running
   * ones (reload/contract.ts: keepRunningValues): the long-lived parts were built from those.
   */
  prepare(config: Config, secrets: SealingSecrets | null, configHash: string): Runtime;
  /**
   * Puts a prepared runtime in force in one step: the next check reads it, checks under way finish with the
   * one they started with; the cookie-secret ring is replaced in the same step.
   */
  activate(runtime: Runtime): void;
  listen(): Promise<{ port: number; metricsPort: number | null }>;
  /**
   * Fails readiness, keeps accepting while checks still arrive (the gateway has not yet removed this
   * endpoint; at most a quarter of shutdownTimeout, 5 s), stops accepting, waits for in-flight requests
   * (at most shutdownTimeout), closes everything.
   */
  shutdown(): Promise<void>;
}

export interface ServiceDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => number;
  /** Where decision-log lines go (log.decisions); stdout by default, beside the other log lines. */
  readonly writeLine?: (line: string) => void;
  /** The config file's hash (reload/source.ts); default: the hash of the validated config. */
  readonly configHash?: string;
  /** The cookie secrets already read (hot reload compares with what it read); default: read from session.secretsFile. */
  readonly secrets?: SealingSecrets | null;
  /** tracing.enabled: started before the service (tracing/index.ts startTracing); flushed by shutdown(). */
  readonly tracing?: Tracing | null;
}

/** While draining, the listener closes once no request has arrived for this long (see keepAcceptingWhileSent). */
const DRAIN_QUIET_MS = 1_000;

export function createService(config: Config, deps: ServiceDeps): Service {
  const { logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const { perReason, window: windowMs } = config.log.rateLimit;
  const denialLog = createLineLimiter({ perKey: perReason, windowMs, now, onSuppressed: logSuppressed(logger, 'check denied', { perKey: perReason, windowMs }) });
  // The login endpoints' lines that any client can cause (a foreign Host, a made-up IdP error, a bogus code).
  const loginLog = createLineLimiter({ perKey: perReason, windowMs, now, onSuppressed: logSuppressed(logger, 'login endpoint', { perKey: perReason, windowMs }) });
  metrics.logLineSources.push(denialLog, loginLog);
  const decisionLog = createDecisionLog(config.log.decisions, deps.writeLine ?? ((line) => void process.stdout.write(line)), now);
  metrics.decisionLogSources.push(decisionLog);

  const secrets = deps.secrets !== undefined ? deps.secrets : readCookieSecrets(config);
  const ring = secrets === null ? null : new SecretRing(secrets);
  /**
   * The runtime in force: the one reference a hot reload swaps. Assigned before any request can arrive
   * (the login's getters below read it only when a request comes).
   */
  let active: Runtime;
  const login = ring === null ? null : createBrowserLogin(config, { metrics, logger, now, logLimit: loginLog, secrets: ring, current: () => active });
  const runtimeDeps = { metrics, logger, now, login, memory: new SessionMemory() };
  active = buildRuntime(config, secrets, deps.configHash ?? hashOfText(JSON.stringify(config)), null, runtimeDeps);
  // Valid but weaker than it reads (policy/lint.ts): said at start-up and after each reload that changes the rules.
  const lint = (runtime: Runtime) => {
    for (const warning of lintPolicy(runtime.config, runtime.policy)) logger.warn('policy warning', warningLogFields(warning));
  };
  lint(active);
  const state: AppState = {
    ready: true,
    notReadyBecause: () => {
      const storeProblem = login?.store.problem() ?? null;
      if (storeProblem !== null) return { reason: 'session_store_unreachable', detail: storeProblem };
      const discovery = login?.client.discoveryStatus();
      if (discovery === undefined || discovery.state === 'ready') return null;
      if (discovery.state === 'pending') return { reason: 'oidc_discovery_pending', detail: `waiting for the discovery document of ${config.oidc!.issuer}` };
      return { reason: discovery.problem.kind === 'misconfigured' ? 'oidc_issuer_misconfigured' : 'oidc_issuer_unreachable', detail: discovery.problem.message };
    },
  };

  const describe = (runtime: Runtime) => {
    const { rules, issuers, oidc, defaultRule } = runtime.config;
    metrics.configInfo.reset();
    metrics.configInfo.set({ rules: String(rules.length), issuers: String(issuers.length + (oidc ? 1 : 0)), default_rule: defaultRule }, 1);
    // One label set: the active config's hash only.
    metrics.configHash.reset();
    metrics.configHash.set({ hash: runtime.configHash }, 1);
  };
  describe(active);
  metrics.configLastReloadSuccess.set(now() / 1000);
  metrics.tokenCacheSize = () => active.bearer?.cacheSize ?? 0;
  metrics.sessionCacheSize = () => active.sessions?.cacheSize ?? 0;

  // Sums up a flood once it stops too, not only at the next denial of its reason.
  let flushTimer: NodeJS.Timeout | undefined;

  const checkPrefix = `${config.checkPathPrefix}/`;
  const checkHandler = createCheckHandler({
    prefixLength: config.checkPathPrefix.length,
    trustForwardedProto: config.trustForwardedProto,
    fallbackScheme: config.publicUrl?.startsWith('https:') ? 'https' : 'http',
    deps: () => active.decide,
    respond: createResponder(responderOptionsFor(config, login !== null)),
    metrics,
    logger,
    denialLog,
    decisionLog,
    tracer: deps.tracing?.check ?? null,
  });
  const app = createApp(state, logger, login?.routes ?? null);

  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | null = null;
  /** performance.now() of the last request: while draining, whether the gateway still sends us any. */
  let lastRequestAt = -Infinity;
  // One listener function for every response (a response closes once): no closure per check.
  const answered = () => {
    inFlight--;
    if (draining && inFlight === 0) drained?.();
  };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    lastRequestAt = performance.now();
    res.on('close', answered);
    // While draining, close each connection after its answer so Envoy opens new ones elsewhere.
    if (draining) res.shouldKeepAlive = false;
    if (req.url !== undefined && req.url.startsWith(checkPrefix)) checkHandler(req, res);
    else app(req, res);
  };

  const appServer = createServer({ maxHeaderSize: config.listen.maxHeaderBytes }, handle);
  // Longer than Envoy's idle timeout for upstream connections, so Envoy never reuses a socket we close.
  appServer.keepAliveTimeout = 3_900_000;
  appServer.headersTimeout = 60_000;
  appServer.requestTimeout = 60_000;

  const metricsServer: Server | null = createServer((req, res) => {
        if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
          metrics.registry.metrics().then(
            (text) => {
              res.writeHead(200, { 'content-type': metrics.registry.contentType });
              res.end(text);
            },
            (error: unknown) => {
              logger.error('metrics failed', { error });
              res.writeHead(500).end();
            },
          );
        } else {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        }
      });

  /**
   * After SIGTERM the gateway keeps sending checks here until it learns that this endpoint is going away:
   * Kubernetes removes a terminating pod's endpoint at the same time as it sends SIGTERM, and istiod's push
   * reaches Envoy a moment later. A listener closed at once refuses those checks, and Envoy answers each
   * with statusOnError (503) to a user. So while requests keep coming the listener stays open (each answer
   * closes its connection: Envoy opens the next one elsewhere once it knows), and it closes once none has
   * arrived for DRAIN_QUIET_MS, or after a quarter of shutdownTimeout (at most 5 s; that time counts
   * against shutdownTimeout). Without recent requests nobody routes here, and it closes at once.
   * Returns how long it kept accepting (ms).
   */
  const keepAcceptingWhileSent = async () => {
    const started = performance.now();
    const limit = Math.min(5_000, config.listen.shutdownTimeout / 4);
    while (performance.now() - lastRequestAt < DRAIN_QUIET_MS && performance.now() - started < limit) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return performance.now() - started;
  };

  const listenOn = (server: Server, port: number, host: string) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });

  return {
    get config() {
      return active.config;
    },
    get bearer() {
      return active.bearer;
    },
    get sessions() {
      return active.sessions;
    },
    get runtime() {
      return active;
    },
    appServer,
    metricsServer,
    prepare: (next, nextSecrets, configHash) => buildRuntime(next, nextSecrets, configHash, active, runtimeDeps),
    activate(runtime) {
      const previous = active;
      // One step (no await in between): the ring and the runtime change together, so a check that starts
      // now reads both new, and one under way keeps the runtime (and, with cookie sessions, the secrets) it began with.
      if (ring !== null && runtime.secrets !== null) ring.replace(runtime.secrets);
      active = runtime;
      logger.setLevel(runtime.config.log.level);
      decisionLog.configure(runtime.config.log.decisions);
      describe(runtime);
      if (runtime.policy !== previous.policy) lint(runtime);
    },
    async listen() {
      login?.client.start();
      login?.start();
      flushTimer ??= setInterval(() => {
        denialLog.flush();
        loginLog.flush();
      }, windowMs).unref();
      const port = await listenOn(appServer, config.listen.port, config.listen.host);
      const metricsPort = metricsServer ? await listenOn(metricsServer, config.listen.metricsPort, config.listen.metricsHost ?? config.listen.host) : null;
      logger.info('listening', { host: config.listen.host, port, metricsPort, checkPathPrefix: config.checkPathPrefix, rules: active.config.rules.length, configHash: active.configHash });
      return { port, metricsPort };
    },
    async shutdown() {
      if (draining) return;
      draining = true;
      state.ready = false;
      login?.client.stop();
      logger.info('draining', { inFlight });
      const lingered = await keepAcceptingWhileSent();
      logger.info('stopped accepting', { afterMs: Math.round(lingered), inFlight });
      const closed = new Promise<void>((resolve) => appServer.close(() => resolve()));
      appServer.closeIdleConnections();
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), config.listen.shutdownTimeout - lingered)));
      const outcome = await Promise.race([idle.then(() => 'drained' as const), timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') logger.warn('shutdown timeout, closing connections', { inFlight });
      appServer.closeAllConnections();
      await closed;
      if (metricsServer?.listening) await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
      await login?.store.close();
      clearInterval(flushTimer);
      // Lines dropped in windows still open are said now, or never.
      denialLog.flush(true);
      loginLog.flush(true);
      // The spans of the last checks, bounded by tracing.timeout.
      await deps.tracing?.shutdown();
      logger.info('stopped');
    },
  };
}
