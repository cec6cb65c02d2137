/**
 * The contract with Envoy's ext_authz HTTP filter, in one place: which request headers the check
 * needs, which identity headers we set, which client copies Envoy must drop. Istio's extension
 * provider (chart, NOTES, kustomize) and the e2e Envoy config are rendered from these lists.
 *
 * Facts it relies on (research/envoy-istio.md §3–§5, verified with Envoy 1.40):
 * - a header we set replaces the client's copy upstream only if it is in headersToUpstreamOnAllow;
 * - `x-envoy-auth-headers-to-remove` on a 200 removes the named request headers upstream, after our
 *   headers were set, so it must never name a header we set in the same answer;
 * - with headersToDownstreamOnDeny set, only the listed headers (plus location, www-authenticate)
 *   reach the client; headersToDownstreamOnAllow appends, so it holds set-cookie only.
 */
import type { Config } from './config/schema.js';

/** Header that tells Envoy which request headers to remove before forwarding upstream. */
export const REMOVE_HEADERS_HEADER = 'x-envoy-auth-headers-to-remove';

/** Request headers the check needs to see (Istio includeRequestHeadersInCheck). */
export const CHECK_REQUEST_HEADERS = [
  'authorization', 'cookie', 'accept', 'x-requested-with', 'sec-fetch-mode', 'sec-fetch-dest', 'x-forwarded-proto',
  // CORS preflights (rules with cors.preflight) and the decision log's trace id.
  'origin', 'access-control-request-method', 'traceparent',
] as const;

/** oauth2-proxy's identity header names, sent when identity.authRequestHeaders is on. */
export const AUTH_REQUEST_HEADERS = ['x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups'] as const;

export const DOWNSTREAM_ON_ALLOW = ['set-cookie'] as const;
/** Set upstream on allows whatever the config: the Cookie header without our cookies. */
export const ALWAYS_UPSTREAM_ON_ALLOW = ['cookie'] as const;
/** content-security-policy and x-content-type-options: the 403 page a browser gets is HTML. */
export const DOWNSTREAM_ON_DENY = ['set-cookie', 'content-type', 'cache-control', 'retry-after', 'content-security-policy', 'x-content-type-options'] as const;

/**
 * Every spelling of `name` with some "-" written as "_": WSGI (Flask, Django) and CGI map both to the
 * same variable, so a client's `kubeflow_userid` can be read as `kubeflow-userid` upstream.
 */
export function underscoreSpellings(name: string): string[] {
  const parts = name.split('-');
  const variants: string[] = [];
  const combinations = 2 ** (parts.length - 1);
  for (let mask = 1; mask < combinations; mask++) {
    let variant = parts[0]!;
    for (let i = 1; i < parts.length; i++) variant += ((mask >> (i - 1)) & 1 ? '_' : '-') + parts[i];
    variants.push(variant);
  }
  return variants;
}

/**
 * Headers an upstream could read as a different method than the one the rules judged: a GET that a
 * framework honouring `X-HTTP-Method-Override: DELETE` runs as a DELETE.
 */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

export interface UpstreamHeaderPlan {
  /** Every header the code can set upstream: Istio's headersToUpstreamOnAllow. */
  readonly upstreamOnAllow: readonly string[];
  /** x-envoy-auth-headers-to-remove value on an anonymous allow… */
  readonly removeOnAnonymousAllow: string;
  /** …and on an authenticated allow. */
  readonly removeOnAuthenticatedAllow: string;
}

/**
 * What an allow sets and removes upstream. The `cookie` header is set on every allow whose request
 * carries one of our cookies (the others, byte for byte) and removed when none is left; so it is in
 * upstreamOnAllow, and added to the removal list only in the answers that remove it (see respond.ts).
 */
export function upstreamHeaderPlan(config: Pick<Config, 'identity' | 'removeMethodOverrideHeaders' | 'rules'>): UpstreamHeaderPlan {
  const { userIdHeader, groupsHeader, authRequestHeaders, forwardIdToken } = config.identity;
  const primary = [userIdHeader, groupsHeader];
  const all = [...primary, ...AUTH_REQUEST_HEADERS];
  const set = authRequestHeaders ? all : primary;
  const notSet = all.filter((h) => !set.includes(h));
  const spellings = all.flatMap(underscoreSpellings);
  const methodOverride = config.removeMethodOverrideHeaders ? METHOD_OVERRIDE_HEADERS : [];
  // Set only by the answer that hands an offline grant over; every other allow removes a client's copy.
  const offline = offlineTokenHeaders(config);
  // WSGI and CGI read x_offline_token as x-offline-token: a client's underscore copy is removed everywhere.
  const offlineSpellings = offline.flatMap(underscoreSpellings);
  return {
    // `authorization` is never removed: a bearer request's own token must still reach the upstream. It is
    // listed (so what we set replaces the client's) for forwarded ID tokens and for rules' exchanged tokens;
    // an allow that sets none leaves the client's header as it is.
    upstreamOnAllow: [...all, ...(forwardIdToken || exchangesTokens(config) ? ['authorization'] : []), ...offline, ...ALWAYS_UPSTREAM_ON_ALLOW],
    removeOnAnonymousAllow: [...all, ...spellings, ...methodOverride, ...offline, ...offlineSpellings].join(','),
    removeOnAuthenticatedAllow: [...notSet, ...spellings, ...methodOverride, ...offline, ...offlineSpellings].join(','),
  };
}

/** Some rule sends its upstream an exchanged token (upstreamToken.exchange). */
export function exchangesTokens(config: Pick<Config, 'rules'>): boolean {
  return config.rules.some((rule) => rule.upstreamToken !== undefined);
}

/** The rules' offlineToken headers, each once, in rule order. */
export function offlineTokenHeaders(config: Pick<Config, 'rules'>): string[] {
  const headers: string[] = [];
  for (const rule of config.rules) if (rule.offlineToken !== undefined && !headers.includes(rule.offlineToken.header)) headers.push(rule.offlineToken.header);
  return headers;
}

/** Istio meshConfig.extensionProviders[].envoyExtAuthzHttp settings for this config. */
export function extAuthzProvider(config: Pick<Config, 'identity' | 'checkPathPrefix' | 'removeMethodOverrideHeaders' | 'rules'>, service: { service: string; port: number; timeout?: string }) {
  return {
    service: service.service,
    port: service.port,
    pathPrefix: config.checkPathPrefix,
    timeout: service.timeout ?? '3s',
    failOpen: false,
    statusOnError: '503',
    includeRequestHeadersInCheck: [...CHECK_REQUEST_HEADERS],
    headersToUpstreamOnAllow: [...upstreamHeaderPlan(config).upstreamOnAllow],
    headersToDownstreamOnAllow: [...DOWNSTREAM_ON_ALLOW],
    headersToDownstreamOnDeny: [...DOWNSTREAM_ON_DENY],
  };
}
