/**
 * Per-route token exchange (RFC 8693), the whole contract in one place: what a rule asks for, what the
 * IdP call answers, what a check gets back, and the pure rules of the cache (its key and how long an
 * exchanged token may be reused). The exchanger (exchanger.ts) and the IdP call (oidc/client.ts) follow it.
 */
import { createHash } from 'node:crypto';

/** RFC 8693 §2.1 and §3. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A rule's `upstreamToken.exchange`: the audience (a client id at Keycloak) and the scopes asked for. */
export interface ExchangeTarget {
  readonly audience: string;
  /** Space-separated; null: the IdP's default for the requesting client. */
  readonly scope: string | null;
}

/** What the token endpoint said. `error` is a bounded label (EXCHANGE_ERRORS), safe for metrics. */
export type ExchangeGrantResult =
  | { readonly kind: 'ok'; readonly accessToken: string; /** ms since epoch; null when the IdP stated none. */ readonly expiresAt: number | null }
  | { readonly kind: 'refused'; readonly error: ExchangeError }
  | { readonly kind: 'unavailable'; readonly error: ExchangeError };

/** One call to the IdP's token endpoint for `subjectToken` (an access token) restricted to `target`. */
export type ExchangeGrant = (subjectToken: string, target: ExchangeTarget) => Promise<ExchangeGrantResult>;

/** Why an exchange failed, as a check answers it: refused → 403, unavailable → 503. */
export type ExchangeFailureReason = 'exchange_refused' | 'exchange_unavailable';

export type ExchangeOutcome =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly reason: ExchangeFailureReason; readonly error: ExchangeError };

export interface TokenExchanger {
  /** The issuer whose tokens it exchanges (oidc.issuer): a token of another issuer is never sent to its IdP. */
  readonly issuer: string;
  /**
   * The exchanged token for `subjectToken` (expiring at `subjectExpiresAt`, ms, or null when unknown) and
   * `target`: synchronous on a cache hit, so a cached exchange allocates no promise.
   */
  exchange(subjectToken: string, subjectExpiresAt: number | null, target: ExchangeTarget): ExchangeOutcome | Promise<ExchangeOutcome>;
}

/**
 * The OAuth error codes an IdP answers an exchange with (RFC 6749 §5.2, RFC 8693 §2.2.2), and ours for
 * failures without one. Anything else is counted as "other": metric labels stay bounded whatever the IdP sends.
 */
export const EXCHANGE_ERRORS = [
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope',
  'invalid_target', 'access_denied', 'server_error', 'temporarily_unavailable',
  // Ours: the IdP did not answer in time, could not be reached, answered something that is no token
  // response, or the session holds no access token to exchange.
  'timeout', 'unreachable', 'bad_response', 'misconfigured', 'no_subject_token', 'other',
] as const;
export type ExchangeError = (typeof EXCHANGE_ERRORS)[number];

const KNOWN_ERRORS: ReadonlySet<string> = new Set(EXCHANGE_ERRORS);
export function exchangeErrorOf(code: string | undefined): ExchangeError {
  return code !== undefined && KNOWN_ERRORS.has(code) ? (code as ExchangeError) : 'other';
}

/**
 * What a token endpoint's HTTP answer means for the check: the IdP's trouble (5xx, 429, its
 * server_error/temporarily_unavailable) is temporary → 503; any other refusal (400 invalid_request for
 * an audience the user may not have, 401 for our client, 403 access_denied) is the IdP's "no" → 403.
 */
export function failureOfStatus(status: number, code: string | undefined): Exclude<ExchangeGrantResult, { kind: 'ok' }> {
  const error = exchangeErrorOf(code);
  if (status >= 500 || status === 429 || error === 'server_error' || error === 'temporarily_unavailable') return { kind: 'unavailable', error };
  return { kind: 'refused', error };
}

/**
 * The cache key: the subject token only as its SHA-256 (a dump of the cache holds no usable token), and
 * the target, so one token exchanged for two audiences is two entries. "\n" cannot occur in either part.
 */
export function exchangeCacheKey(subjectToken: string, target: ExchangeTarget): string {
  return `${createHash('sha256').update(subjectToken).digest('base64url')}\n${target.audience}\n${target.scope ?? ''}`;
}

/** An exchanged token is reused until this long before its `exp`, so an upstream never gets one about to expire. */
export const EXCHANGE_EXPIRY_MARGIN_MS = 30_000;

/**
 * Until when an exchanged token may be handed out again: `margin` before its own expiry, and never past
 * the subject token's (a token exchanged from a now-expired one must not outlive it here). null: not
 * reusable (no stated expiry, or too close to it).
 */
export function reusableUntil(now: number, exchangedExpiresAt: number | null, subjectExpiresAt: number | null, margin = EXCHANGE_EXPIRY_MARGIN_MS): number | null {
  if (exchangedExpiresAt === null) return null;
  const until = Math.min(exchangedExpiresAt - margin, subjectExpiresAt ?? Number.POSITIVE_INFINITY);
  return until > now ? until : null;
}
