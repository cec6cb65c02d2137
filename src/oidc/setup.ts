/**
 * Browser login, assembled from config: cookie secrets and the client secret are read from their
 * files here (a missing or weak file stops start-up naming the config field), then the session
 * authenticator, the OIDC client and the /oauth2 routes are wired together.
 */
import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { compileIssuerMappings } from '../authn/identity.js';
import { SessionAuthenticator } from '../authn/session.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { LineLimiter } from '../log-limit.js';
import type { Metrics } from '../metrics.js';
import { createSealer } from '../session/seal.js';
import { readSecretsFile, SecretsError } from '../session/secrets.js';
import { CookieSessionStore } from '../session/store.js';
import type { SessionRevoker, SessionStore } from '../session-store/contract.js';
import { redisStoreFromConfig } from '../session-store/redis-store.js';
import { cookieNamesOf, secondaryCookieBase } from '../session/cookie-header.js';
import { originalUrl, type CheckRequest } from '../check/request.js';
import { createPublicOrigins, type PublicOrigins } from '../http/public-origin.js';
import { OidcClient } from './client.js';
import { createLoginRoutes, SIGNED_OUT_PATH } from './routes.js';
import { SessionTokenSource } from './session-claims.js';
import { TransactionCookies } from './transaction.js';
import { EndSessionHandover } from './end-session.js';
import { createBackchannelRoute } from './backchannel.js';

export interface BrowserLogin {
  readonly sessions: SessionAuthenticator;
  /** Where sessions live (session.store); its problem() is part of readiness. */
  readonly store: SessionStore;
  /** Ends sessions by user, subject or IdP session: only a shared store (Redis) can. */
  readonly revoker: SessionRevoker | null;
  readonly routes: Router;
  /** Discovery state (readiness), start() at boot, stop() at shutdown. */
  readonly client: OidcClient;
  /** …/oauth2/start?rd=<original URL> on the request's public origin; null when its host is not allowed. */
  loginUrl(request: CheckRequest): string | null;
  /** The browser reaches us over https for this request (its public origin's scheme; publicUrl wins). */
  servedOverHttps(request: CheckRequest): boolean;
  /** Connects the session store (Redis); start-up does not wait for it. */
  start(): void;
}

export function createBrowserLogin(
  config: Config,
  deps: { metrics: Metrics; logger: Logger; bearer: BearerVerifier | null; now: () => number; logLimit?: LineLimiter },
): BrowserLogin | null {
  const oidcConfig = config.oidc;
  if (!oidcConfig || !config.session.secretsFile) return null;
  const { metrics, logger, now } = deps;

  let secrets;
  try {
    secrets = readSecretsFile(config.session.secretsFile);
  } catch (error) {
    throw new ConfigError('config', [`session.secretsFile: ${(error as SecretsError).message}${SECRETS_HINT}`]);
  }
  let clientSecret: string | undefined;
  if (oidcConfig.clientSecretFile) {
    try {
      clientSecret = readFileSync(oidcConfig.clientSecretFile, 'utf8').trim();
    } catch (error) {
      throw new ConfigError('config', [`oidc.clientSecretFile: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
    }
    if (clientSecret.length === 0) throw new ConfigError('config', ['oidc.clientSecretFile: the file is empty']);
    if (clientSecret === KUBEFLOW_EXAMPLE_CLIENT_SECRET) {
      logger.warn('oidc.clientSecretFile holds the client secret published in Kubeflow\'s example Dex configuration: anyone can use it to exchange codes as this client; change it at Dex and here');
    }
  }

  const origins = createPublicOrigins(config);
  const attributes = { secure: config.session.secure, domain: config.session.domain };
  const sealer = createSealer(secrets);
  const names = cookieNamesOf(config.session);
  const redisStore = config.session.store === 'redis' ? redisStoreFromConfig(config, sealer, secrets, { metrics, logger }, now) : null;
  const store: SessionStore = redisStore ?? new CookieSessionStore(sealer, { names, attributes, maxAgeMs: config.session.maxAge }, now);
  metrics.sessionStoreUp = () => store.reachable();
  const relative = (value: string | undefined) => value !== undefined && value.startsWith('/');
  // A post-logout URI known at start-up is checked against the IdP then (a path waits for a request's origin).
  const knownAfterLogout = oidcConfig.afterLogoutUrl !== undefined && !relative(oidcConfig.afterLogoutUrl)
    ? oidcConfig.afterLogoutUrl
    : origins.fixed === null ? undefined : `${origins.fixed}${oidcConfig.afterLogoutUrl ?? SIGNED_OUT_PATH}`;
  const client = new OidcClient({
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    clientSecret,
    scopes: oidcConfig.scopes,
    relativeRedirectUri: relative(oidcConfig.redirectUri) ? oidcConfig.redirectUri : undefined,
    timeoutMs: oidcConfig.timeout,
    extraAuthParams: oidcConfig.prompt ? { prompt: oidcConfig.prompt } : {},
    postLogoutRedirectUri: knownAfterLogout,
  }, logger);
  const bearer = deps.bearer;
  const tokenSource = new SessionTokenSource(client, {
    claimsFrom: oidcConfig.claimsFrom,
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    verifyAccessToken: (token) => (bearer === null ? Promise.resolve({ kind: 'invalid', reason: 'unknown_issuer' }) : bearer.verifiedClaims(token, oidcConfig.issuer)),
    userInfo: (accessToken, subject) => client.userInfo(accessToken, subject),
    logger,
  }, now);
  const sessions = new SessionAuthenticator(
    store,
    // Sessions are the oidc issuer's people: its mapping without the machine branch (and still refusing
    // ids in any machine's space, its own issuer's included).
    { ...compileIssuerMappings(config).get(oidcConfig.issuer)!, machine: null },
    tokenSource,
    {
      refreshed: (result, error, description) => {
        metrics.refreshes.inc({ result, error: refreshErrorLabel(result, error) });
        // The IdP's own words (never a token) are what tells an operator why sessions end.
        if (result === 'rejected') logger.info('session refresh rejected by the IdP', { error, description });
        else if (result === 'unavailable') logger.warn('session refresh failed: IdP unavailable', { error, description });
      },
      issued: (chunks) => metrics.sessionsIssued.inc({ chunks: String(chunks) }),
    },
    config.bearer.cacheMaxEntries,
    now,
    config.session.revalidateAfter,
  );
  metrics.sessionCacheSize = () => sessions.cacheSize;
  const transactions = new TransactionCookies(sealer, secondaryCookieBase(names), attributes, Math.ceil(oidcConfig.loginTimeout / 1000));
  const routes = createLoginRoutes({
    client,
    tokenSource,
    transactions,
    handover: new EndSessionHandover(sealer, secondaryCookieBase(names), attributes),
    sessions,
    bearer: deps.bearer,
    origins,
    redirectAllowList: config.redirectAllowList,
    urls: {
      redirectUri: oidcConfig.redirectUri,
      authorizationEndpoint: oidcConfig.authorizationEndpoint,
      afterLogoutUrl: oidcConfig.afterLogoutUrl,
      afterLoginUrl: oidcConfig.afterLoginUrl,
    },
    metrics,
    logger,
    logLimit: deps.logLimit ?? null,
    now,
  });
  routes.use(createBackchannelRoute({
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    clockSkewMs: config.bearer.clockSkew,
    bearer: deps.bearer,
    revoker: redisStore,
    metrics,
    logger,
    logLimit: deps.logLimit ?? null,
    now,
  }));
  const loginUrl = loginUrlOn(origins);
  const servedOverHttps = (request: CheckRequest): boolean => (origins.of(request.authority, request.scheme) ?? `${request.scheme}:`).startsWith('https:');
  return { sessions, store, revoker: redisStore, routes, client, loginUrl, servedOverHttps, start: () => redisStore?.start() };
}

/**
 * …/oauth2/start?rd=<original URL> on the request's public origin; null when its host is not allowed.
 * Needs no secret and no IdP, so `oidc-authz test` computes the same login redirect.
 */
export function loginUrlOn(origins: PublicOrigins): (request: CheckRequest) => string | null {
  return (request) => {
    const origin = origins.of(request.authority, request.scheme);
    return origin === null ? null : `${origin}/oauth2/start?rd=${encodeURIComponent(originalUrl(request))}`;
  };
}

/** The client secret of Kubeflow's example Dex (common/dex/base/secret_params.env): fine to start with, never to keep. */
const KUBEFLOW_EXAMPLE_CLIENT_SECRET = 'pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok';

/** What a missing or placeholder cookie secret needs, in the words of the command that makes one. */
const SECRETS_HINT = ' (make one: openssl rand -base64 48; on Kubernetes put it under key cookie-secrets of the Secret the pods mount)';

/** OAuth's error codes (RFC 6749 §5.2) and our unavailability kinds; anything else is "other", so the label stays bounded. */
const REFRESH_ERROR_LABELS = new Set([
  'invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope',
  'access_denied', 'server_error', 'temporarily_unavailable', 'no_refresh_token',
  'unreachable', 'timeout', 'bad_response', 'misconfigured', 'claims_unavailable',
]);

export function refreshErrorLabel(result: 'ok' | 'rejected' | 'unavailable', error: string | undefined): string {
  if (error === undefined) return 'none';
  return REFRESH_ERROR_LABELS.has(error) ? error : 'other';
}
