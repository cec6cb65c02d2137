/**
 * Prometheus metrics, served on their own port. Label values are bounded: decisions and reasons are
 * fixed enums, rules come from the config, issuers from the config.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CheckTally, TalliedHistogram } from './check-tally.js';

export interface Metrics {
  readonly registry: Registry;
  /** Every check's decision and duration: counted by the check handler, read at scrape time (check-tally.ts). */
  readonly checkTally: CheckTally;
  /** Fed from checkTally when Prometheus scrapes; a check never touches it. */
  readonly checks: Counter<'decision' | 'reason' | 'rule'>;
  readonly checkDuration: TalliedHistogram;
  /** What audit-mode rules would have decided (they never decide). */
  readonly auditDecisions: Counter<'rule' | 'decision' | 'reason'>;
  readonly decisionLogDropped: Counter<'why'>;
  /** The decision log's sources of dropped lines; read at scrape time. */
  readonly decisionLogSources: Array<{ droppedTotals(): ReadonlyMap<string, number> }>;
  readonly jwksFetches: Counter<'issuer' | 'result'>;
  /** RFC 7662 introspection requests by issuer and result (active, inactive, error); cache hits are not counted. */
  readonly introspections: Counter<'issuer' | 'result'>;
  readonly tokenCacheEntries: Gauge;
  /** Read when Prometheus scrapes; the service points it at the bearer cache. */
  tokenCacheSize: () => number;
  readonly configInfo: Gauge<'rules' | 'issuers' | 'default_rule'>;
  /** Hot reloads of the config and secret files (src/reload/), by result: success, failure, unchanged. */
  readonly configReloads: Counter<'result'>;
  /** 1 for the active config's hash (one label set at a time). */
  readonly configHash: Gauge<'hash'>;
  readonly configLastReloadSuccess: Gauge;
  /** 1 while the files ask for a change that needs a restart (kept at its running value until then). */
  readonly configRestartRequired: Gauge;
  readonly loginStarts: Counter;
  readonly callbacks: Counter<'result'>;
  readonly refreshes: Counter<'result' | 'error'>;
  /** Token exchanges for rules' upstreamToken (token-exchange/exchanger.ts). */
  readonly tokenExchanges: Counter<'result' | 'error'>;
  readonly sessionsIssued: Counter<'chunks'>;
  readonly signOuts: Counter;
  readonly sessionCacheEntries: Gauge;
  /** session.store "redis": commands by operation and outcome (ok, error: unreachable or timed out). */
  readonly storeOperations: Counter<'op' | 'result'>;
  /** 1 while the session store is connected and ready (always 1 for cookie sessions). */
  readonly storeUp: Gauge;
  readonly backchannelLogouts: Counter<'result'>;
  /** Read when Prometheus scrapes; the service points it at the session cache. */
  sessionCacheSize: () => number;
  /** Read when Prometheus scrapes: whether the session store is reachable. */
  sessionStoreUp: () => boolean;
  /** Log lines dropped by rate limits (src/log-limit.ts), by reason; fed from logLineSources at scrape time. */
  readonly logLinesSuppressed: Counter<'reason'>;
  /**
   * The line limiters whose dropped lines logLinesSuppressed counts (totals of one reason are added up).
   * Read at scrape time so that a dropped line never touches prom-client: it costs a limiter two integer
   * increments, where a labelled Counter.inc builds a label hash string per call.
   */
  readonly logLineSources: Array<{ suppressedTotals(): ReadonlyMap<string, number> }>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'oidc_authz_' });
  // What logLinesSuppressed and decisionLogDropped have been told so far, per label value: each scrape adds
  // what their sources counted since.
  const suppressedReported = new Map<string, number>();
  const droppedReported = new Map<string, number>();
  const checksReported = new Map<string, number>();
  const checkTally = new CheckTally();
  const checkDuration = new TalliedHistogram('oidc_authz_check_duration_seconds', 'Time from receiving a check to writing its answer, by decision.', checkTally);
  registry.registerMetric(checkDuration as unknown as Parameters<Registry['registerMetric']>[0]);
  const metrics: Metrics = {
    checkTally,
    checkDuration,
    tokenCacheSize: () => 0,
    sessionCacheSize: () => 0,
    sessionStoreUp: () => true,
    logLineSources: [],
    decisionLogSources: [],
    logLinesSuppressed: new Counter({
      name: 'oidc_authz_log_lines_suppressed_total',
      help: 'Log lines dropped by the per-reason rate limit (log.rateLimit), by reason; a warn line "log lines suppressed" sums up each window that dropped some.',
      labelNames: ['reason'],
      registers: [registry],
      collect() {
        addSince(this, 'reason', metrics.logLineSources.map((source) => source.suppressedTotals()), suppressedReported);
      },
    }),
    loginStarts: new Counter({
      name: 'oidc_authz_login_starts_total',
      help: 'Logins started (redirects to the identity provider).',
      registers: [registry],
    }),
    callbacks: new Counter({
      name: 'oidc_authz_login_callbacks_total',
      help: 'Login callbacks by result (ok, idp_error, missing_state, unknown_transaction, rejected, idp_unavailable, identity_rejected, store_unavailable).',
      labelNames: ['result'],
      registers: [registry],
    }),
    refreshes: new Counter({
      name: 'oidc_authz_session_refreshes_total',
      help: 'Session token refreshes by result (ok, rejected, unavailable) and error (the IdP\'s OAuth error code, or unreachable, timeout, bad_response, misconfigured; none when ok).',
      labelNames: ['result', 'error'],
      registers: [registry],
    }),
    tokenExchanges: new Counter({
      name: 'oidc_authz_token_exchanges_total',
      help: 'Token exchanges for rules\' upstreamToken by result (hit: from the cache; ok; refused: 403 exchange_refused; unavailable: 503 exchange_unavailable) and error (the IdP\'s OAuth error code, or unreachable, timeout, bad_response, misconfigured, other; none otherwise).',
      labelNames: ['result', 'error'],
      registers: [registry],
    }),
    sessionsIssued: new Counter({
      name: 'oidc_authz_sessions_issued_total',
      help: 'Session cookies issued (login or refresh), by the number of cookies the session needed.',
      labelNames: ['chunks'],
      registers: [registry],
    }),
    signOuts: new Counter({
      name: 'oidc_authz_sign_outs_total',
      help: 'Sign-outs (/oauth2/sign_out and /authservice/logout), by what became of the session\'s refresh token at the IdP.',
      labelNames: ['refresh_token'],
      registers: [registry],
    }),
    storeOperations: new Counter({
      name: 'oidc_authz_session_store_operations_total',
      help: 'Session store (Redis) operations by op (read, write, renew, end, revoke, lock) and result (ok, error).',
      labelNames: ['op', 'result'] as const,
      registers: [registry],
    }),
    storeUp: new Gauge({
      name: 'oidc_authz_session_store_up',
      help: '1 while the session store is reachable (session.store redis: connected and ready); always 1 with cookie sessions.',
      registers: [registry],
      collect() {
        this.set(metrics.sessionStoreUp() ? 1 : 0);
      },
    }),
    backchannelLogouts: new Counter({
      name: 'oidc_authz_backchannel_logouts_total',
      help: 'OIDC back-channel logout requests by result (ok, invalid_token, replayed, not_supported, keys_unavailable, store_unavailable).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    sessionCacheEntries: new Gauge({
      name: 'oidc_authz_session_cache_entries',
      help: 'Opened session cookies currently cached.',
      registers: [registry],
      collect() {
        this.set(metrics.sessionCacheSize());
      },
    }),
    registry,
    checks: new Counter({
      name: 'oidc_authz_checks_total',
      help: 'Check decisions by decision (allow, unauthorized, forbidden, bad_request, unavailable), reason and rule.',
      labelNames: ['decision', 'reason', 'rule'],
      registers: [registry],
      collect() {
        for (const { decision, reason, rule, total } of checkTally.counts()) addGrowth(this, { decision, reason, rule }, `${decision}\n${reason}\n${rule}`, total, checksReported);
      },
    }),
    auditDecisions: new Counter({
      name: 'oidc_authz_audit_decisions_total',
      help: 'What rules in audit mode would have decided (decision, reason), by rule; the request went on to the next rule.',
      labelNames: ['rule', 'decision', 'reason'],
      registers: [registry],
    }),
    decisionLogDropped: new Counter({
      name: 'oidc_authz_decision_log_dropped_total',
      help: 'Decision-log lines not written (log.decisions), by why: sampled_out, rate_limited.',
      labelNames: ['why'],
      registers: [registry],
      collect() {
        addSince(this, 'why', metrics.decisionLogSources.map((source) => source.droppedTotals()), droppedReported);
      },
    }),
    jwksFetches: new Counter({
      name: 'oidc_authz_jwks_fetches_total',
      help: 'JWKS (and discovery) fetches by issuer and result (ok, error).',
      labelNames: ['issuer', 'result'],
      registers: [registry],
    }),
    introspections: new Counter({
      name: 'oidc_authz_introspections_total',
      help: 'Token introspection requests (RFC 7662) by issuer and result (active, inactive, error).',
      labelNames: ['issuer', 'result'],
      registers: [registry],
    }),
    tokenCacheEntries: new Gauge({
      name: 'oidc_authz_token_cache_entries',
      help: 'Bearer tokens (verified, or definitely invalid) currently cached.',
      registers: [registry],
      collect() {
        this.set(metrics.tokenCacheSize());
      },
    }),
    configInfo: new Gauge({
      name: 'oidc_authz_config_info',
      help: 'Always 1; labels describe the loaded configuration.',
      labelNames: ['rules', 'issuers', 'default_rule'],
      registers: [registry],
    }),
    configReloads: new Counter({
      name: 'oidc_authz_config_reloads_total',
      help: 'Reloads of the config and secret files (file change or SIGHUP) by result: success (applied), failure (the running config kept; the log names each problem), unchanged (the files hold what runs).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    configHash: new Gauge({
      name: 'oidc_authz_config_hash_info',
      help: 'Always 1, for the active config: hash is the first 12 hex digits of the config file\'s SHA-256 (sha256sum).',
      labelNames: ['hash'] as const,
      registers: [registry],
    }),
    configLastReloadSuccess: new Gauge({
      name: 'oidc_authz_config_last_reload_success_timestamp_seconds',
      help: 'When the active config was loaded (start-up or the last successful reload), in seconds since the epoch.',
      registers: [registry],
    }),
    configRestartRequired: new Gauge({
      name: 'oidc_authz_config_restart_required',
      help: '1 while the config or its files change a setting that needs a restart (named in the log; it keeps its running value), 0 otherwise.',
      registers: [registry],
    }),
  };
  return metrics;
}

/**
 * Adds to `counter` what monotonic per-label totals kept outside prom-client (so the hot path never touches
 * it) grew by since the last scrape; `reported` remembers the totals told so far.
 */
function addSince<L extends string>(counter: Counter<L>, label: L, sources: ReadonlyArray<ReadonlyMap<string, number>>, reported: Map<string, number>): void {
  const totals = new Map<string, number>();
  for (const source of sources) for (const [value, total] of source) totals.set(value, (totals.get(value) ?? 0) + total);
  for (const [value, total] of totals) addGrowth(counter, { [label]: value } as Partial<Record<L, string>>, value, total, reported);
}

/** Adds to `counter` what one monotonic total (kept under `key` in `reported`) grew by since the last scrape. */
function addGrowth<L extends string>(counter: Counter<L>, labels: Partial<Record<L, string>>, key: string, total: number, reported: Map<string, number>): void {
  const added = total - (reported.get(key) ?? 0);
  if (added > 0) counter.inc(labels, added);
  reported.set(key, total);
}
