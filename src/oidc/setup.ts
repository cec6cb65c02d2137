/**
 * Browser login, assembled from config: cookie secrets and the client secret are read from their
 * files here (a missing or weak file stops start-up naming the config field), then the session
 * authenticator, the OIDC client and the /oauth2 routes are wired together.
 */
import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { compileIdentityMapping, machinePrefixes } from '../authn/identity.js';
import { SessionAuthenticator } from '../authn/session.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createSealer } from '../session/seal.js';
import { readSecretsFile, SecretsError } from '../session/secrets.js';
import { SessionStore } from '../session/store.js';
import { OidcClient } from './client.js';
import { createLoginRoutes, SIGNED_OUT_PATH } from './routes.js';
import { SessionTokenSource } from './session-claims.js';
import { CALLBACK_PATH, TransactionCookies } from './transaction.js';

export interface BrowserLogin {
  readonly sessions: SessionAuthenticator;
  readonly routes: Router;
  /** Discovery state (readiness), start() at boot, stop() at shutdown. */
  readonly client: OidcClient;
  /** …/oauth2/start?rd=<original URL> */
  loginUrl(originalUrl: string): string;
}

export function createBrowserLogin(
  config: Config,
  deps: { metrics: Metrics; logger: Logger; bearer: BearerVerifier | null; now: () => number },
): BrowserLogin | null {
  const oidcConfig = config.oidc;
  if (!oidcConfig || !config.publicUrl || !config.session.secretsFile) return null;
  const { metrics, logger, now } = deps;

  let secrets;
  try {
    secrets = readSecretsFile(config.session.secretsFile);
  } catch (error) {
    throw new ConfigError('config', [`session.secretsFile: ${(error as SecretsError).message}`]);
  }
  let clientSecret: string | undefined;
  if (oidcConfig.clientSecretFile) {
    try {
      clientSecret = readFileSync(oidcConfig.clientSecretFile, 'utf8').trim();
    } catch (error) {
      throw new ConfigError('config', [`oidc.clientSecretFile: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
    }
    if (clientSecret.length === 0) throw new ConfigError('config', ['oidc.clientSecretFile: the file is empty']);
  }

  const publicOrigin = new URL(config.publicUrl).origin;
  const attributes = { secure: config.session.secure, domain: config.session.domain };
  const sealer = createSealer(secrets);
  const store = new SessionStore(sealer, { cookieName: config.session.cookieName, attributes, maxAgeMs: config.session.maxAge }, now);
  const afterLogoutUrl = oidcConfig.afterLogoutUrl ?? `${publicOrigin}${SIGNED_OUT_PATH}`;
  const client = new OidcClient({
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    clientSecret,
    scopes: oidcConfig.scopes,
    redirectUri: `${publicOrigin}${CALLBACK_PATH}`,
    timeoutMs: oidcConfig.timeout,
    extraAuthParams: oidcConfig.prompt ? { prompt: oidcConfig.prompt } : {},
    authorizationEndpoint: oidcConfig.authorizationEndpoint === undefined ? undefined : new URL(oidcConfig.authorizationEndpoint, publicOrigin).href,
    postLogoutRedirectUri: afterLogoutUrl,
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
    // Sessions are people: no session's user id may take a machine's prefix.
    compileIdentityMapping(config.identity, {}, machinePrefixes(config)),
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
  );
  metrics.sessionCacheSize = () => sessions.cacheSize;
  const transactions = new TransactionCookies(sealer, config.session.cookieName, attributes, Math.ceil(oidcConfig.loginTimeout / 1000));
  const routes = createLoginRoutes({
    client,
    tokenSource,
    transactions,
    sessions,
    bearer: deps.bearer,
    redirects: { publicOrigin, allowList: config.redirectAllowList },
    afterLogoutUrl,
    metrics,
    logger,
    now,
  });
  const startUrl = `${publicOrigin}/oauth2/start?rd=`;
  return { sessions, routes, client, loginUrl: (originalUrl) => startUrl + encodeURIComponent(originalUrl) };
}

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
