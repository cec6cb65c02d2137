/**
 * The decision log (log.decisions): one JSON line per decision, for audits and "who was let in where".
 * Optional, sampled and rate-limited, so turning it on never floods the log. It holds what was decided
 * and about whom, never a credential: no token, no cookie, no query string (queries carry codes and
 * tokens), no header value except the trace id taken from `traceparent`.
 */
import type { Decision } from './check/decide.js';
import type { CheckRequest } from './check/request.js';

export interface DecisionLogSettings {
  readonly enabled: boolean;
  /** Share of decisions written, 0 < rate ≤ 1; the rest are counted as sampled out. */
  readonly sampleRate: number;
  /** At most this many lines per second; the rest are counted as rate limited. */
  readonly maxPerSecond: number;
}

export interface DecisionLog {
  record(decision: Decision, request: CheckRequest): void;
  /** New settings (hot reload): from the next decision on; the counts go on. */
  configure(settings: DecisionLogSettings): void;
  /** Lines not written, by why ("sampled_out", "rate_limited"); monotonic, read at scrape time. */
  droppedTotals(): ReadonlyMap<string, number>;
}

export const STATUS_OF: Readonly<Record<Decision['kind'], number>> = {
  allow: 200, login: 302, unauthorized: 401, forbidden: 403, bad_request: 400, unavailable: 503,
};

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const MAX_FIELD = 256;

/** The W3C trace id of a `traceparent` header, or undefined (absent, malformed or the all-zero id). */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== 'string') return undefined;
  const id = TRACEPARENT.exec(traceparent.trim())?.[1];
  return id === undefined || /^0+$/.test(id) ? undefined : id;
}

/** A request field as logged: at most MAX_FIELD characters (a path can be 60 KiB). */
export const clip = (text: string) => (text.length > MAX_FIELD ? `${text.slice(0, MAX_FIELD)}…` : text);

/** The line's fields: what was decided, by which rule, for whom, on which request (path without query). */
export function decisionLogFields(decision: Decision, request: CheckRequest): Record<string, unknown> {
  const identity = decision.kind === 'allow' || decision.kind === 'forbidden' ? decision.identity : null;
  return {
    decision: decision.kind,
    status: STATUS_OF[decision.kind],
    reason: decision.reason,
    rule: decision.rule?.name ?? null,
    user: identity?.userId ?? null,
    issuer: identity?.issuer ?? (decision.kind === 'unauthorized' ? decision.issuer ?? null : null),
    via: identity?.via ?? null,
    method: clip(request.method),
    host: clip(request.authority),
    path: clip(request.rawPath),
    traceId: traceIdOf(request.headers.traceparent) ?? null,
    ...(decision.audits ? { audits: decision.audits.map((a) => ({ rule: a.rule.name, decision: a.decision, reason: a.reason })) } : {}),
    // A failed token exchange: the IdP's error code (or ours), never a token.
    ...(decision.exchangeError !== undefined ? { exchangeError: decision.exchangeError } : {}),
  };
}

export function createDecisionLog(
  initial: DecisionLogSettings,
  write: (line: string) => void,
  now: () => number = Date.now,
  random: () => number = Math.random,
): DecisionLog {
  let settings = initial;
  let sampledOut = 0;
  let rateLimited = 0;
  let second = -1;
  let writtenThisSecond = 0;
  return {
    configure(next) {
      settings = next;
    },
    record(decision, request) {
      if (!settings.enabled) return;
      if (settings.sampleRate < 1 && random() >= settings.sampleRate) {
        sampledOut++;
        return;
      }
      const at = now();
      const thisSecond = Math.floor(at / 1000);
      if (thisSecond !== second) {
        second = thisSecond;
        writtenThisSecond = 0;
      }
      if (writtenThisSecond >= settings.maxPerSecond) {
        rateLimited++;
        return;
      }
      writtenThisSecond++;
      write(`${JSON.stringify({ time: new Date(at).toISOString(), level: 'info', msg: 'decision', ...decisionLogFields(decision, request) })}\n`);
    },
    droppedTotals: () => new Map([['sampled_out', sampledOut], ['rate_limited', rateLimited]]),
  };
}
