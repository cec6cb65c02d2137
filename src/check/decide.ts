/**
 * The decision pipeline: normalize → match rule → authenticate → authorize → Decision.
 * Pure apart from the authenticator (whose I/O is cached JWKS and, later, token refresh); synchronous
 * whenever the authenticator answers from its cache, so a cached check allocates no promise.
 */
import { bearerTokenOf, type AuthResult, type Authenticator } from '../authn/authenticate.js';
import type { TokenFailure } from '../authn/bearer.js';
import type { SessionFailure, SessionUnavailable } from '../authn/session.js';
import type { Identity } from '../authn/identity.js';
import { evaluateRequirement, type UnmetRequirement } from '../policy/requirement.js';
import type { AuditMatch, CompiledRule, Policy } from '../policy/rules.js';
import type { PathParams } from '../policy/template.js';
import { readCookieHeader, type CookieNames } from '../session/cookie-header.js';
import type { ExchangeError, ExchangeOutcome, TokenExchanger } from '../token-exchange/contract.js';
import type { OfflineHandover, OfflineHandoverResult } from '../oidc/offline.js';
import type { BadRequestReason } from './normalize.js';
import { rememberedRoute } from './route.js';
import { isBrowserNavigation, type CheckRequest } from './request.js';

export type UnauthorizedReason = 'no_credentials' | TokenFailure | SessionFailure;
export type ForbiddenReason = 'rule_deny' | 'default_deny' | 'requirement_not_met' | 'audience_unchecked' | 'exchange_refused'
  // An offlineToken route: a grant needs a browser session's consent; the grant found was another user's.
  | 'offline_grant_required' | 'offline_grant_other_user';

/** What an audit-mode rule would have decided (it did not: the request went on to the next rule). */
export interface AuditOutcome {
  readonly rule: CompiledRule;
  readonly decision: Decision['kind'];
  readonly reason: Decision['reason'];
  readonly unmet: UnmetRequirement | null;
}

/** Audit-mode rules the request passed, with their would-be decisions; absent when none matched. */
type WithAudits = { readonly audits?: readonly AuditOutcome[] | undefined };

/** Cookies that must go back to the client with the answer (a refreshed or a cleared session). */
type WithCookies = { readonly setCookie?: readonly string[] | undefined };

/** Why an exchange failed (a bounded label: the IdP's OAuth error or ours), on exchange_refused/_unavailable only. */
type WithExchangeError = { readonly exchangeError?: ExchangeError | undefined };

export type Decision = DecisionBody & WithAudits & WithExchangeError;

type DecisionBody =
  | ({
      readonly kind: 'allow'; readonly rule: CompiledRule; readonly identity: Identity | null; readonly reason: 'anonymous' | 'cors_preflight' | 'bearer' | 'cookie';
      /** The Cookie header for the upstream: null to leave it, "" to remove it (it held only our cookies). */
      readonly upstreamCookie: string | null;
      /** The rule's upstreamToken (an exchanged access token): sent as `authorization: Bearer …`, replacing the client's. */
      readonly upstreamToken?: string | undefined;
      /** An offlineToken route's grant, handed over in this answer only. */
      readonly offlineToken?: { readonly header: string; readonly token: string } | undefined;
    } & WithCookies)
  | ({ readonly kind: 'login'; readonly rule: CompiledRule; readonly reason: 'no_credentials' | SessionFailure | 'offline_grant_required'; readonly location: string } & WithCookies)
  | ({
      readonly kind: 'unauthorized'; readonly rule: CompiledRule; readonly reason: UnauthorizedReason; readonly invalidToken: boolean;
      /** The issuer an unknown_issuer token named (the operator's clue to a wrong issuer spelling). */
      readonly issuer?: string | undefined;
    } & WithCookies)
  | ({
      readonly kind: 'forbidden'; readonly rule: CompiledRule; readonly reason: ForbiddenReason; readonly unmet: UnmetRequirement | null; readonly identity: Identity | null;
      /** A browser's page load: answered with a page, not JSON. */
      readonly navigation: boolean;
    } & WithCookies)
  | { readonly kind: 'bad_request'; readonly rule: null; readonly reason: BadRequestReason | 'host_not_allowed' | 'too_many_cookies' }
  | { readonly kind: 'unavailable'; readonly rule: CompiledRule; readonly reason: 'jwks_unavailable' | 'introspection_unavailable' | SessionUnavailable | 'exchange_unavailable' };

export interface DecideDeps {
  readonly policy: Policy;
  readonly authenticator: Authenticator;
  /**
   * Where a browser without a valid session is sent (…/oauth2/start?rd=…) — null from the function when
   * the request's host is not one we may send a browser back to; null itself without browser login.
   */
  readonly loginUrl: ((request: CheckRequest) => string | null) | null;
  /** Our cookies' names: read for the session, removed from what the upstream gets. */
  readonly cookieNames: CookieNames;
  /** Exchanges tokens for rules with upstreamToken.exchange; absent or null: such a rule answers 503. */
  readonly exchange?: TokenExchanger | null | undefined;
  /** Opens offline-grant hand-overs for rules with offlineToken; absent or null: such a rule hands none over. */
  readonly offline?: OfflineHandover | null | undefined;
}


export function decide(request: CheckRequest, deps: DecideDeps): Decision | Promise<Decision> {
  const route = rememberedRoute(deps.policy, request.method, request.authority, request.rawPath);
  if (!route.ok) return { kind: 'bad_request', rule: null, reason: route.reason };

  // Read once: the session for the authenticator, the rest for the upstream (which never gets our cookies).
  const cookies = readCookieHeader(request.headers.cookie, deps.cookieNames);
  if (cookies.overflow) return { kind: 'bad_request', rule: null, reason: 'too_many_cookies' };

  const preflight = corsPreflightOf(request);
  if (preflight !== null) {
    // The rule that decides the request the preflight asks about decides whether it may be asked.
    const asked = deps.policy.match(preflight.method, route.host, route.segments).rule;
    if (asked.corsPreflight !== null && (asked.corsPreflight.origins === null || asked.corsPreflight.origins.has(preflight.origin) || asked.corsPreflight.origins.has('*'))) {
      return { kind: 'allow', rule: asked, identity: null, reason: 'cors_preflight', upstreamCookie: cookies.upstream };
    }
  }

  const { path } = route;
  const { rule, params, audits } = route.match;
  const context: AuthorizationContext = { request, loginUrl: deps.loginUrl, upstreamCookie: cookies.upstream };
  if (audits !== null) {
    const decidedWithAudits = decideWithAudits(rule, params, audits, context, () => deps.authenticator.authenticate(request, cookies.session));
    if (rule.exchange === null && rule.offlineToken === null) return decidedWithAudits;
    return decidedWithAudits instanceof Promise ? decidedWithAudits.then((d) => finishAllow(d, request, path, deps)) : finishAllow(decidedWithAudits, request, path, deps);
  }
  const decided = decideWithoutCredentials(rule, context);
  if (decided !== null) return decided;
  const auth = deps.authenticator.authenticate(request, cookies.session);
  // Rules without an exchange or offline grant (nearly all) take the path they always took: nothing more to read or allocate.
  if (rule.exchange === null && rule.offlineToken === null) return auth instanceof Promise ? auth.then((a) => authorize(rule, params, a, context)) : authorize(rule, params, auth, context);
  return auth instanceof Promise
    ? auth.then((a) => finishAllow(authorize(rule, params, a, context), request, path, deps))
    : finishAllow(authorize(rule, params, auth, context), request, path, deps);
}

/** Rules that add a token to their allow (upstreamToken, offlineToken) finish it after the authorization. */
function finishAllow(decision: Decision, request: CheckRequest, path: string, deps: DecideDeps): Decision | Promise<Decision> {
  return decision.rule !== null && decision.rule.exchange !== null ? withExchange(decision, request, deps) : withOfflineGrant(decision, request, path, deps);
}

/**
 * An allow of a rule with offlineToken: with the grant its login handed over (once; the hand-over cookie
 * deleted in the same answer), else a browser is sent to a login asking offline_access with consent.
 * Only a browser session can consent: a bearer caller is refused (offline_grant_required).
 */
function withOfflineGrant(decision: Decision, request: CheckRequest, path: string, deps: DecideDeps): Decision | Promise<Decision> {
  if (decision.kind !== 'allow' || decision.identity === null) return decision;
  const { identity, rule: { offlineToken } } = decision;
  if (offlineToken === null) return decision;
  const navigation = isBrowserNavigation(request);
  const refuse = (reason: 'offline_grant_required' | 'offline_grant_other_user', setCookie?: readonly string[]): Decision =>
    ({ kind: 'forbidden', rule: decision.rule, reason, unmet: null, identity, navigation, setCookie: setCookie ?? decision.setCookie, ...(decision.audits ? { audits: decision.audits } : {}) });
  const handover = deps.offline;
  if (handover === undefined || handover === null || identity.via !== 'cookie') return refuse('offline_grant_required');
  const cookieHeader = typeof request.headers.cookie === 'string' ? request.headers.cookie : undefined;
  return handover.consume(cookieHeader, path, identity).then((found: OfflineHandoverResult): Decision => {
    const secure = request.scheme === 'https';
    if (found.kind === 'token') {
      return { ...decision, offlineToken: { header: offlineToken.header, token: found.token }, setCookie: [...(decision.setCookie ?? []), handover.clear(path, secure)] };
    }
    if (found.kind === 'other_user') return refuse('offline_grant_other_user', [...(decision.setCookie ?? []), handover.clear(path, secure)]);
    const location = navigation && deps.loginUrl !== null ? deps.loginUrl(request) : null;
    if (location === null) return refuse('offline_grant_required');
    return { kind: 'login', rule: decision.rule, reason: 'offline_grant_required', location: `${location}&offline=1`, setCookie: decision.setCookie, ...(decision.audits ? { audits: decision.audits } : {}) };
  });
}

/**
 * An allow of a rule with upstreamToken.exchange, with the exchanged token; the IdP's refusal → forbidden
 * (exchange_refused), its trouble → unavailable (exchange_unavailable). Other decisions pass unchanged.
 * The subject token is the caller's bearer token, or the session's access token (kept in sessions begun
 * while a rule exchanged tokens); without one the caller is refused as no_subject_token.
 */
function withExchange(decision: Decision, request: CheckRequest, deps: DecideDeps): Decision | Promise<Decision> {
  if (decision.kind !== 'allow' || decision.identity === null) return decision;
  const { identity, rule: { exchange: target } } = decision;
  if (target === null) return decision;
  const subject = identity.accessToken ?? (identity.via === 'bearer' ? bearerTokenOf(request.headers.authorization) : null);
  if (deps.exchange === undefined || deps.exchange === null) return exchanged(decision, { ok: false, reason: 'exchange_unavailable', error: 'misconfigured' }, request);
  // Only the login IdP's own tokens go to its token endpoint: a service-account token of another issuer never does.
  if (subject === null || subject === '' || identity.issuer !== deps.exchange.issuer) return exchanged(decision, { ok: false, reason: 'exchange_refused', error: 'no_subject_token' }, request);
  const exp = identity.claims.exp;
  const outcome = deps.exchange.exchange(subject, typeof exp === 'number' ? exp * 1000 : null, target);
  return outcome instanceof Promise ? outcome.then((o) => exchanged(decision, o, request)) : exchanged(decision, outcome, request);
}

function exchanged(decision: Extract<Decision, { kind: 'allow' }>, outcome: ExchangeOutcome, request: CheckRequest): Decision {
  if (outcome.ok) return { ...decision, upstreamToken: outcome.token };
  const { rule, identity, setCookie, audits } = decision;
  const extra = { ...(audits === undefined ? {} : { audits }), exchangeError: outcome.error };
  if (outcome.reason === 'exchange_unavailable') return { kind: 'unavailable', rule, reason: 'exchange_unavailable', ...extra };
  return { kind: 'forbidden', rule, reason: 'exchange_refused', unmet: null, identity, navigation: isBrowserNavigation(request), setCookie, ...extra };
}

/** The answer of a rule that needs no credentials (anonymous, deny), else null. */
function decideWithoutCredentials(rule: CompiledRule, context: AuthorizationContext): Decision | null {
  switch (rule.access.kind) {
    case 'anonymous':
      return { kind: 'allow', rule, identity: null, reason: 'anonymous', upstreamCookie: context.upstreamCookie };
    case 'deny':
      return { kind: 'forbidden', rule, reason: rule.index === -1 ? 'default_deny' : 'rule_deny', unmet: null, identity: null, navigation: isBrowserNavigation(context.request) };
    default:
      return null;
  }
}

/**
 * Audit-mode rules matched before the deciding rule: each is evaluated as if it decided (credentials are
 * read when it or the deciding rule needs them, once), and the outcomes ride along with the real decision.
 */
function decideWithAudits(
  rule: CompiledRule,
  params: PathParams,
  audits: readonly AuditMatch[],
  context: AuthorizationContext,
  authenticate: () => AuthResult | Promise<AuthResult>,
): Decision | Promise<Decision> {
  const needsCredentials = (r: CompiledRule) => r.access.kind === 'authenticated' || r.access.kind === 'require';
  const finish = (auth: AuthResult | null): Decision => {
    const outcomes = audits.map(({ rule: audited, params: capturedParams }): AuditOutcome => {
      const would = decideWithoutCredentials(audited, context) ?? authorize(audited, capturedParams, auth!, context);
      return { rule: audited, decision: would.kind, reason: would.reason, unmet: would.kind === 'forbidden' ? would.unmet : null };
    });
    const decided = decideWithoutCredentials(rule, context);
    if (decided === null) return { ...authorize(rule, params, auth!, context), audits: outcomes };
    // Credentials read only for the audit: a session refreshed on the way still needs its new cookie.
    const setCookie = auth !== null && (auth.kind === 'identity' || auth.kind === 'invalid') ? auth.setCookie : undefined;
    return { ...decided, ...(setCookie === undefined ? {} : { setCookie }), audits: outcomes };
  };
  if (!needsCredentials(rule) && !audits.some((audit) => needsCredentials(audit.rule))) return finish(null);
  if (needsCredentials(rule)) {
    const auth = authenticate();
    return auth instanceof Promise ? auth.then(finish) : finish(auth);
  }
  // Credentials read for the audit only must not turn the deciding rule's answer into an error.
  const withoutAudits = (): Decision => decideWithoutCredentials(rule, context)!;
  try {
    const auth = authenticate();
    return auth instanceof Promise ? auth.then(finish, withoutAudits) : finish(auth);
  } catch {
    return withoutAudits();
  }
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method (an HTTP method token). */
function corsPreflightOf(request: CheckRequest): { origin: string; method: string } | null {
  if (request.method !== 'OPTIONS') return null;
  const { origin, 'access-control-request-method': method } = request.headers;
  if (typeof origin !== 'string' || typeof method !== 'string' || !METHOD_TOKEN.test(method)) return null;
  return { origin, method };
}

const METHOD_TOKEN = /^[A-Z]{1,16}$/;

/**
 * The request an authorization is for: `null` only for `explain`, which answers about a rule and claims
 * without a request (no login redirect, no Cookie header).
 */
export interface AuthorizationContext {
  readonly request: CheckRequest;
  readonly loginUrl: DecideDeps['loginUrl'];
  /** The request's Cookie header without our cookies (readCookieHeader): what an allow hands the upstream. */
  readonly upstreamCookie: string | null;
}

export function authorize(rule: CompiledRule, params: PathParams, auth: AuthResult, context: AuthorizationContext | null): Decision {
  const request = context?.request ?? null;
  const loginUrl = context?.loginUrl ?? null;
  const upstreamCookie = context === null ? null : context.upstreamCookie;
  switch (auth.kind) {
    case 'none':
    case 'invalid': {
      const invalidToken = auth.kind === 'invalid' && auth.credential !== 'cookie';
      const setCookie = auth.kind === 'invalid' ? auth.setCookie : undefined;
      // A browser without a usable session logs in; a bad bearer token or an API call gets 401.
      if (!invalidToken && loginUrl !== null && request !== null && isBrowserNavigation(request)) {
        const reason = auth.kind === 'none' ? 'no_credentials' : (auth.reason as SessionFailure);
        const location = loginUrl(request);
        // No public origin for this Host (not on allowedHosts): no login can start from here.
        if (location === null) return { kind: 'bad_request', rule: null, reason: 'host_not_allowed' };
        return { kind: 'login', rule, reason, location, setCookie };
      }
      const issuer = auth.kind === 'invalid' ? auth.issuer : undefined;
      return { kind: 'unauthorized', rule, reason: auth.kind === 'none' ? 'no_credentials' : auth.reason, invalidToken, setCookie, issuer };
    }
    case 'unavailable':
      return { kind: 'unavailable', rule, reason: auth.reason };
  }
  const { identity } = auth;
  // A token whose audience no one checked yet passes only a rule that checks it (audienceCheckedBy: rules).
  if (identity.audienceUnchecked && !(rule.access.kind === 'require' && rule.access.requirement.checksAudience)) {
    return { kind: 'forbidden', rule, reason: 'audience_unchecked', unmet: null, identity, navigation: request !== null && isBrowserNavigation(request) };
  }
  if (rule.access.kind === 'require') {
    const unmet = evaluateRequirement(rule.access.requirement, identity, params);
    // A session refreshed by this check must get its new cookie even when the rule says no: with
    // rotating refresh tokens the old cookie's token is spent.
    if (unmet !== null) return { kind: 'forbidden', rule, reason: 'requirement_not_met', unmet, identity, navigation: request !== null && isBrowserNavigation(request), setCookie: auth.setCookie };
  }
  return { kind: 'allow', rule, identity, reason: identity.via, setCookie: auth.setCookie, upstreamCookie };
}
