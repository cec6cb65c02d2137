/**
 * The token exchanger: a bounded cache of exchanged tokens in front of the IdP call, and one call in
 * flight per cache key (a burst of requests with the same token for the same route makes one exchange).
 * Failures are not cached: the next request asks again (a refusal can turn into a grant when an admin
 * adds the role; the IdP's outage ends). Tokens never reach a log from here.
 */
import { ExpiringLru } from '../cache.js';
import { EDGE_ATTRIBUTES, SPAN_NAMES, type Attributes, type EdgeOutcome } from '../tracing/contract.js';
import { traced } from '../tracing/edge.js';
import {
  exchangeCacheKey, reusableUntil,
  type ExchangeError, type ExchangeGrant, type ExchangeGrantResult, type ExchangeOutcome, type ExchangeTarget, type TokenExchanger,
} from './contract.js';

export interface ExchangerOptions {
  /** oidc.issuer: the IdP the grant goes to. */
  readonly issuer: string;
  readonly grant: ExchangeGrant;
  readonly now: () => number;
  /** Exchanged tokens kept at most (each a few KB). */
  readonly maxEntries: number;
  /** Called once per exchange attempt: `result` hit (from the cache), ok, refused or unavailable. */
  readonly count?: (result: 'hit' | 'ok' | 'refused' | 'unavailable', error: ExchangeError | '') => void;
}

export const DEFAULT_EXCHANGE_CACHE_ENTRIES = 10_000;

export function createTokenExchanger(options: ExchangerOptions): TokenExchanger & { readonly size: number } {
  const { grant, now, count } = options;
  const cache = new ExpiringLru<ExchangeOutcome>(options.maxEntries);
  const inFlight = new Map<string, Promise<ExchangeOutcome>>();

  const settle = (key: string, subjectExpiresAt: number | null, result: ExchangeGrantResult): ExchangeOutcome => {
    if (result.kind !== 'ok') {
      count?.(result.kind, result.error);
      return { ok: false, reason: result.kind === 'refused' ? 'exchange_refused' : 'exchange_unavailable', error: result.error };
    }
    count?.('ok', '');
    const outcome: ExchangeOutcome = { ok: true, token: result.accessToken };
    const until = reusableUntil(now(), result.expiresAt, subjectExpiresAt);
    if (until !== null) cache.set(key, outcome, until);
    return outcome;
  };

  return {
    issuer: options.issuer,
    get size() {
      return cache.size;
    },
    exchange(subjectToken: string, subjectExpiresAt: number | null, target: ExchangeTarget) {
      const key = exchangeCacheKey(subjectToken, target);
      const cached = cache.get(key, now());
      if (cached !== undefined) {
        count?.('hit', '');
        return cached;
      }
      const pending = inFlight.get(key);
      if (pending !== undefined) return pending;
      // A thrown grant (a bug, not an IdP answer) must not leave the key stuck in flight, nor allow.
      // Traced (src/tracing): the IdP call only, never the tokens; the audience and scope are the rule's.
      const attributes: Attributes = target.scope === null ? { [EDGE_ATTRIBUTES.audience]: target.audience } : { [EDGE_ATTRIBUTES.audience]: target.audience, [EDGE_ATTRIBUTES.scope]: target.scope };
      const started = traced(SPAN_NAMES.tokenExchange, attributes, () => grant(subjectToken, target), describeGrant)
        .catch((): ExchangeGrantResult => ({ kind: 'unavailable', error: 'other' }))
        .then((result) => settle(key, subjectExpiresAt, result))
        .finally(() => inFlight.delete(key));
      inFlight.set(key, started);
      return started;
    },
  };
}

/** For the exchange span: the outcome and its bounded error label (EXCHANGE_ERRORS). */
function describeGrant(result: ExchangeGrantResult): EdgeOutcome {
  return result.kind === 'ok' ? { result: 'ok' } : { result: result.kind, error: result.error, failed: result.kind === 'unavailable' };
}
