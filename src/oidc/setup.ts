/**
 * Browser login, assembled from config: cookie secrets and the client secret are read from their
 * files here (a missing or weak file stops start-up naming the config field), then the session
 * authenticator, the OIDC client and the /oauth2 routes are wired together.
 */
import { readFileSync } from 'node:fs';
import type { Router } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { compileIdentityMapping } from '../authn/identity.js';
import { SessionAuthenticator } from '../authn/session.js';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createSealer } from '../session/seal.js';
import { readSecretsFile, SecretsError } from '../session/secrets.js';
import { SessionStore } from '../session/store.js';
import { OidcClient } from './client.js';
import { createLoginRoutes } from './routes.js';
import { CALLBACK_PATH, TransactionCookies } from './transaction.js';

export interface BrowserLogin {
  readonly sessions: SessionAuthenticator;
  readonly routes: Router;
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
  const client = new OidcClient({
    issuer: oidcConfig.issuer,
    clientId: oidcConfig.clientId,
    clientSecret,
    scopes: oidcConfig.scopes,
    redirectUri: `${publicOrigin}${CALLBACK_PATH}`,
    timeoutMs: oidcConfig.timeout,
    extraAuthParams: oidcConfig.prompt ? { prompt: oidcConfig.prompt } : {},
    authorizationEndpoint: oidcConfig.authorizationEndpoint === undefined ? undefined : new URL(oidcConfig.authorizationEndpoint, publicOrigin).href,
  });
  const sessions = new SessionAuthenticator(
    store,
    compileIdentityMapping(config.identity),
    client,
    {
      refreshed: (result) => {
        metrics.refreshes.inc({ result });
        if (result !== 'ok') logger.info('session refresh failed', { result });
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
    transactions,
    sessions,
    bearer: deps.bearer,
    redirects: { publicOrigin, allowList: config.redirectAllowList },
    afterLogoutUrl: oidcConfig.afterLogoutUrl ?? `${publicOrigin}/`,
    metrics,
    logger,
    now,
  });
  const startUrl = `${publicOrigin}/oauth2/start?rd=`;
  return { sessions, routes, loginUrl: (originalUrl) => startUrl + encodeURIComponent(originalUrl) };
}
