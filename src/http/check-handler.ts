/**
 * The check endpoint: plain node:http, no framework (Express costs ~100 µs per request, the whole
 * budget many times over; research/perf.md). Turns Envoy's call into a CheckRequest, decides,
 * answers, counts. A thrown error never becomes an allow: it is logged and answered with 503.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decide, type AuditOutcome, type DecideDeps, type Decision } from '../check/decide.js';
import { clip, type DecisionLog } from '../decision-log.js';
import { checkRequestFrom, schemeOf, type CheckRequest } from '../check/request.js';
import { sendJson, type Responder } from '../check/respond.js';
import type { LineLimiter } from '../log-limit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CheckTracer } from '../tracing/contract.js';

export interface CheckHandlerOptions {
  readonly prefixLength: number;
  readonly trustForwardedProto: boolean;
  readonly fallbackScheme: 'http' | 'https';
  /**
   * What the pipeline reads, from the config in force: called once when a check starts, so a hot reload
   * (which swaps what it returns) reaches the next check and never one under way.
   */
  readonly deps: () => DecideDeps;
  readonly respond: Responder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Limits the per-denial info line per reason (log.rateLimit), and audit lines per rule. */
  readonly denialLog: LineLimiter;
  /** log.decisions: a line per decision when enabled, sampled and capped. */
  readonly decisionLog: DecisionLog;
  /** tracing.enabled (src/tracing): absent or null when off, and then the handler is the untraced one itself. */
  readonly tracer?: CheckTracer | null;
}

export function createCheckHandler(options: CheckHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { prefixLength, trustForwardedProto, fallbackScheme, deps, metrics, logger, denialLog, decisionLog } = options;
  const tracer = options.tracer ?? null;
  const respond = tracer === null ? options.respond : tracer.responder(options.respond);

  const recordAudits = (decision: Decision, audits: readonly AuditOutcome[], method: string, path: string) => {
    for (const audit of audits) {
      metrics.auditDecisions.inc({ rule: audit.rule.name, decision: audit.decision, reason: audit.reason });
      // The rollout question: where would the audited rule have answered differently from the rule that did?
      const differs = audit.decision !== decision.kind;
      if (!(differs ? logger.enabled('info') && denialLog.take(`audit:${audit.rule.name}`) : logger.enabled('debug'))) continue;
      const fields = {
        rule: audit.rule.name,
        would: audit.decision,
        wouldReason: audit.reason,
        requirement: audit.unmet ?? undefined,
        decision: decision.kind,
        decidedBy: decision.rule?.name ?? 'none',
        method,
        path: clip(path),
        user: decision.kind === 'allow' || decision.kind === 'forbidden' ? decision.identity?.userId : undefined,
      };
      if (differs) logger.info('audit rule would decide otherwise', fields);
      else logger.debug('audit rule agrees', fields);
    }
  };

  const { checkTally } = metrics;
  const record = (decision: Decision, startedAt: number, method: string, path: string) => {
    const rule = decision.rule?.name ?? 'none';
    checkTally.record(decision.kind, decision.reason, rule, (performance.now() - startedAt) / 1000);
    const denial = decision.kind !== 'allow' && decision.reason !== 'no_credentials';
    // A denial costs a client one request and would cost us a line: past log.rateLimit for its reason the
    // line is only counted, before any of it is built. At debug every decision is logged, limit or not.
    const write = denial ? logger.enabled('info') && (logger.enabled('debug') || denialLog.take(decision.reason)) : logger.enabled('debug');
    if (write) {
      const fields = {
        decision: decision.kind,
        reason: decision.reason,
        rule,
        method,
        path: clip(path),
        user: decision.kind === 'allow' || decision.kind === 'forbidden' ? decision.identity?.userId : undefined,
        requirement: decision.kind === 'forbidden' ? decision.unmet ?? undefined : undefined,
        issuer: decision.kind === 'unauthorized' ? decision.issuer : undefined,
        exchangeError: decision.exchangeError,
      };
      if (denial) logger.info('check denied', fields);
      else logger.debug('check', fields);
    }
  };

  const finish = (res: ServerResponse, request: CheckRequest, startedAt: number, decision: Decision) => {
    respond(res, decision);
    record(decision, startedAt, request.method, request.rawPath);
    if (decision.audits) recordAudits(decision, decision.audits, request.method, request.rawPath);
    decisionLog.record(decision, request);
  };
  const fail = (res: ServerResponse, startedAt: number, method: string, error: unknown) => {
    logger.error('check failed', { error, method });
    checkTally.record('unavailable', 'internal_error', 'none', (performance.now() - startedAt) / 1000);
    if (!res.headersSent) sendJson(res, 503, { error: 'unavailable', reason: 'internal_error' }, ['retry-after', '1']);
    else res.destroy();
  };

  // No closure per check: a cached check allocates its request view, its answer's headers and little else.
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const startedAt = performance.now();
    const method = req.method ?? 'GET';
    const request = checkRequestFrom(method, (req.url ?? '').slice(prefixLength), req.headers, schemeOf(req.headers, trustForwardedProto, fallbackScheme));
    try {
      const result = decide(request, deps());
      if (result instanceof Promise) {
        result.then((decision) => finish(res, request, startedAt, decision)).catch((error: unknown) => fail(res, startedAt, method, error));
      } else {
        finish(res, request, startedAt, result);
      }
    } catch (error) {
      fail(res, startedAt, method, error);
    }
  };
  // Tracing wraps the handler once, here: off, a check runs exactly the code above, with no extra step.
  return tracer === null ? handle : tracer.handler(handle, prefixLength);
}
