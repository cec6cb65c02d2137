/**
 * Browser login, assembled from config: the client secret is read from its file here and the cookie
 * secrets by readCookieSecrets (a missing or weak file stops start-up naming the config field), then the
 * OIDC client and the /oauth2 routes are wired to the session authenticator of the config in force.
 */
import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { compileIssuerMappings } from '../authn/identity.js';
import { SessionAuthenticator, type RefreshResult, type SessionMemory } from '../authn/session.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { LineLimiter } from '../log-limit.js';
import type { Metrics } from '../metrics.js';
import { createSealer, type Sealer } from '../session/seal.js';
import { readSecretsFile, SecretsError, secretsFromLines, type SealingSecrets, type SecretRing } from '../session/secrets.js';
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
import { createOfflineHandover, type OfflineHandover } from './offline.js';
import { exchangesTokens } from '../envoy-contract.js';
import type { Policy } from '../policy/rules.js';

export interface BrowserLogin {
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
  /**
   * The session authenticator for one config and one list of cookie secrets (hot reload builds one per
   * new identity mapping or secrets): its cookies sealed with those secrets, its identities mapped by that
   * config, the access tokens of its refreshes verified by `bearer` (that config's); `memory` carries sign-outs
   * and renewals in flight from one to the next.
   */
  sessionsFor(config: Config, secrets: SealingSecrets, memory: SessionMemory, bearer: BearerVerifier | null): SessionAuthenticator;
  /** Connects the session store (Redis); start-up does not wait for it. */
  start(): void;
  /** Offline grants from the callback to the offlineToken route's check (oidc/offline.ts). */
  readonly offline: OfflineHandover;
}

/** What the login reads from the config in force (hot reload swaps it); each request reads it once. */
export interface LoginRuntime {
  readonly bearer: BearerVerifier | null;
  readonly sessions: SessionAuthenticator | null;
  /** The rules in force: their offlineToken paths are where an offline login may return. */
  readonly policy: Policy;
}

/**
 * The browser login's parts that live as long as the process (the discovery client, the routes, the
 * Redis connection): built from the start-up config. `secrets` is the ring of cookie secrets that hot
 * reload replaces (transaction and sign-out cookies, sessions in Redis); `current` gives the session
 * authenticator and bearer verifier of the config in force.
 */
export function createBrowserLogin(
  config: Config,
  deps: { metrics: Metrics; logger: Logger; now: () => number; logLimit?: LineLimiter; secrets: SecretRing; current: () => LoginRuntime },
): BrowserLogin | null {
  const oidcConfig = config.oidc;
  if (!oidcConfig || !config.session.secretsFile) return null;
  const { metrics, logger, now, current } = deps;

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
  // On the ring: a rotation reaches login transactions, sign-out hand-overs and Redis sessions at once.
  const sealer = createSealer(deps.secrets);
  const names = cookieNamesOf(config.session);
  const redisStore = config.session.store === 'redis' ? redisStoreFromConfig(config, sealer, deps.secrets, { metrics, logger }, now) : null;
  const cookieStore = (sessionSealer: Sealer) => new CookieSessionStore(sessionSealer, { names, attributes, maxAgeMs: config.session.maxAge }, now);
  const store: SessionStore = redisStore ?? cookieStore(sealer);
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
  const bearer = () => current().bearer;
  /** Session tokens with the access token verified by `verifier` (oidc.claimsFrom). */
  const tokenSourceFor = (verifier: () => BearerVerifier | null) => new SessionTokenSource(client, {
    claimsFrom: oidcConfig.claimsFrom,
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    verifyAccessToken: (token) => {
      const verify = verifier();
      return verify === null ? Promise.resolve({ kind: 'invalid', reason: 'unknown_issuer' }) : verify.verifiedClaims(token, oidcConfig.issuer);
    },
    userInfo: (accessToken, subject) => client.userInfo(accessToken, subject),
    logger,
    // Rules that exchange a session's access token need it kept (decided at start-up: see README "Token exchange per route").
    keepAccessToken: exchangesTokens(config),
  }, now);
  // A login's code exchange uses the config in force; a check's refresh, the config the check started with.
  const tokenSource = tokenSourceFor(bearer);
  const events = {
    refreshed: (result: RefreshResult['kind'], error: string | undefined, description: string | undefined) => {
      metrics.refreshes.inc({ result, error: refreshErrorLabel(result, error) });
      // The IdP's own words (never a token) are what tells an operator why sessions end.
      if (result === 'rejected') logger.info('session refresh rejected by the IdP', { error, description });
      else if (result === 'unavailable') logger.warn('session refresh failed: IdP unavailable', { error, description });
    },
    issued: (chunks: number) => metrics.sessionsIssued.inc({ chunks: String(chunks) }),
  };
  const issuer = oidcConfig.issuer;
  const sessionsFor = (runtimeConfig: Config, secrets: SealingSecrets, memory: SessionMemory, runtimeBearer: BearerVerifier | null) => new SessionAuthenticator(
    // Cookie sessions are sealed with this config's secrets (one config per check, secrets included); sessions
    // in Redis share one connection and follow the ring, replaced in the same step as the config.
    redisStore ?? cookieStore(createSealer(secrets)),
    // Sessions are the oidc issuer's people: its mapping without the machine branch (and still refusing
    // ids in any machine's space, its own issuer's included).
    { ...compileIssuerMappings(runtimeConfig).get(issuer)!, machine: null },
    tokenSourceFor(() => runtimeBearer),
    events,
    config.bearer.cacheMaxEntries,
    now,
    config.session.revalidateAfter,
    memory,
  );
  const sessions = () => {
    const authenticator = current().sessions;
    if (authenticator === null) throw new Error('browser login without a session authenticator');
    return authenticator;
  };
  const transactions = new TransactionCookies(sealer, secondaryCookieBase(names), attributes, Math.ceil(oidcConfig.loginTimeout / 1000));
  const offline = createOfflineHandover(sealer, secondaryCookieBase(names), attributes, now);
  // Recomputed per policy (a reload replaces it), so a removed offline route stops at once.
  let offlinePathsOf: { policy: Policy; paths: ReadonlySet<string> } | null = null;
  const offlinePaths = () => {
    const { policy } = current();
    if (offlinePathsOf?.policy !== policy) {
      offlinePathsOf = { policy, paths: new Set(policy.rules.filter((rule) => rule.offlineToken !== null).flatMap((rule) => rule.templates.map((t) => t.source))) };
    }
    return offlinePathsOf.paths;
  };
  const routes = createLoginRoutes({
    client,
    tokenSource,
    transactions,
    handover: new EndSessionHandover(sealer, secondaryCookieBase(names), attributes),
    sessions,
    bearer,
    offlinePaths,
    offline,
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
    bearer,
    revoker: redisStore,
    metrics,
    logger,
    logLimit: deps.logLimit ?? null,
    now,
  }));
  const loginUrl = loginUrlOn(origins);
  const servedOverHttps = (request: CheckRequest): boolean => (origins.of(request.authority, request.scheme) ?? `${request.scheme}:`).startsWith('https:');
  return { store, revoker: redisStore, routes, client, loginUrl, servedOverHttps, sessionsFor, start: () => redisStore?.start(), offline };
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

/** The cookie secrets in the text of session.secretsFile; a ConfigError naming the field (never a secret) otherwise. */
export function cookieSecretsFrom(text: string): SealingSecrets {
  try {
    return secretsFromLines(text.split('\n'));
  } catch (error) {
    if (error instanceof SecretsError) throw new ConfigError('config', [`session.secretsFile: ${error.message}${SECRETS_HINT}`]);
    throw error;
  }
}

/** The cookie secrets of session.secretsFile (null without browser login); a ConfigError naming the field otherwise. */
export function readCookieSecrets(config: Config): SealingSecrets | null {
  if (!config.oidc || !config.session.secretsFile) return null;
  try {
    return readSecretsFile(config.session.secretsFile);
  } catch (error) {
    if (error instanceof SecretsError) throw new ConfigError('config', [`session.secretsFile: ${error.message}${SECRETS_HINT}`]);
    throw error;
  }
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
