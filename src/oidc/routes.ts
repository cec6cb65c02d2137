/**
 * Browser-facing endpoints: /oauth2/start, /oauth2/callback, /oauth2/sign_out, /oauth2/userinfo and
 * Kubeflow's POST /authservice/logout. Istio routes these to us directly (they are excluded from the
 * ext_authz check), so they answer the browser themselves.
 */
import { parse as parseCookies } from 'cookie';
import { Router, type Request, type Response } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { bearerTokenOf } from '../authn/authenticate.js';
import type { Identity } from '../authn/identity.js';
import type { SessionAuthenticator } from '../authn/session.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { IdpMisconfiguredError, IdpRejectedError, IdpUnavailableError, type OidcClient } from './client.js';
import { sendErrorPage, sendSignedOutPage } from './pages.js';
import type { SessionTokenSource } from './session-claims.js';
import { safeReturnUrl, type RedirectPolicy } from './redirect.js';
import { CALLBACK_PATH, type TransactionCookies } from './transaction.js';

/** The default landing after sign-out (oidc.afterLogoutUrl): register publicUrl + this at the IdP. */
export const SIGNED_OUT_PATH = '/oauth2/signed_out';

export interface LoginRoutesDeps {
  readonly client: OidcClient;
  readonly tokenSource: SessionTokenSource;
  readonly transactions: TransactionCookies;
  readonly sessions: SessionAuthenticator;
  readonly bearer: BearerVerifier | null;
  readonly redirects: RedirectPolicy;
  readonly afterLogoutUrl: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
}

type CallbackResult = 'ok' | 'idp_error' | 'missing_state' | 'unknown_transaction' | 'rejected' | 'idp_unavailable' | 'idp_misconfigured' | 'identity_rejected';

/** The page for an IdP we cannot use: an outage, or (an operator's job) a configuration that does not match it. */
function sendIdpUnusablePage(res: Response, error: unknown, retryUrl: string): void {
  if (error instanceof IdpMisconfiguredError) {
    return sendErrorPage(res, 500, 'Sign-in is misconfigured',
      'This service\'s identity provider settings do not match the identity provider. Trying again will not help until an administrator fixes them (the service log says what is wrong).', null);
  }
  sendErrorPage(res, 503, 'Sign-in is unavailable', 'The identity provider cannot be reached right now. Please try again in a moment.', retryUrl);
}

const NO_STORE = { 'cache-control': 'no-store' };

export function createLoginRoutes(deps: LoginRoutesDeps): Router {
  const { client, transactions, sessions, redirects, metrics, logger } = deps;
  const router = Router();
  const startUrl = (returnTo: string) => `${redirects.publicOrigin}/oauth2/start?rd=${encodeURIComponent(returnTo)}`;

  router.get('/oauth2/start', async (req, res) => {
    const returnTo = safeReturnUrl(req.query.rd, redirects);
    try {
      const login = await client.startLogin();
      const cookie = await transactions.create({ state: login.state, nonce: login.nonce, codeVerifier: login.codeVerifier, returnTo });
      metrics.loginStarts.inc();
      res.set(NO_STORE).append('set-cookie', cookie).redirect(302, login.url);
    } catch (error) {
      logger.warn('login start failed', { error });
      sendIdpUnusablePage(res, error, startUrl(returnTo));
    }
  });

  router.get(CALLBACK_PATH, async (req, res) => {
    const finish = (result: CallbackResult) => metrics.callbacks.inc({ result });
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const cookies = parseCookies(req.headers.cookie ?? '');
    const tx = state ? await transactions.find(cookies, state) : null;
    if (state) res.append('set-cookie', transactions.clear(state));
    res.set(NO_STORE);
    const retry = startUrl(tx?.returnTo ?? `${redirects.publicOrigin}/`);

    if (typeof req.query.error === 'string') {
      finish('idp_error');
      const description = typeof req.query.error_description === 'string' ? req.query.error_description.slice(0, 300) : '';
      logger.info('login refused by the identity provider', { error: req.query.error.slice(0, 100) });
      return sendErrorPage(res, req.query.error === 'access_denied' ? 403 : 400, 'Sign-in was not completed',
        `The identity provider answered "${req.query.error.slice(0, 100)}"${description ? `: ${description}` : ''}.`, retry);
    }
    if (!state) {
      finish('missing_state');
      return sendErrorPage(res, 400, 'Sign-in link is incomplete', 'The sign-in response has no state. Please start again.', retry);
    }
    if (tx === null) {
      finish('unknown_transaction');
      return sendErrorPage(res, 400, 'Sign-in expired or was already used',
        'This sign-in response does not match a sign-in started in this browser, or it took too long. Please start again.', retry);
    }

    let tokens;
    try {
      tokens = await deps.tokenSource.login(new URL(req.originalUrl, redirects.publicOrigin), tx);
    } catch (error) {
      if (error instanceof IdpRejectedError) {
        finish('rejected');
        logger.info('login rejected', { error: error.error, description: error.message });
        return sendErrorPage(res, 400, 'Sign-in failed', 'The identity provider did not accept this sign-in. Please start again.', retry);
      }
      finish(error instanceof IdpMisconfiguredError ? 'idp_misconfigured' : 'idp_unavailable');
      logger.warn('login exchange failed', { error: error instanceof IdpUnavailableError ? error.message : error });
      return sendIdpUnusablePage(res, error, retry);
    }

    const previous = sessions.namesIn(req.headers.cookie);
    let issued;
    try {
      issued = await sessions.issue({ ...tokens, createdAt: deps.now() }, previous);
    } catch (error) {
      finish('identity_rejected');
      logger.warn('session could not be issued', { error });
      return sendErrorPage(res, 400, 'Sign-in failed', 'Your account information is too large to keep in a session.', null);
    }
    if ('failure' in issued) {
      finish('identity_rejected');
      logger.info('login refused: identity unusable', { reason: issued.failure });
      return sendErrorPage(res, 403, 'Sign-in failed', `Your account cannot be used here (${issued.failure}).`, null);
    }
    finish('ok');
    logger.info('login', { user: issued.identity.userId });
    for (const cookie of issued.setCookies) res.append('set-cookie', cookie);
    res.redirect(302, tx.returnTo);
  });

  const signOut = async (req: Request, res: Response, answer: (target: string) => void) => {
    const { session, names } = await sessions.peek(req.headers.cookie);
    for (const cookie of sessions.clear(names)) res.append('set-cookie', cookie);
    const endSession = await client.endSessionUrl(session?.idToken);
    metrics.signOuts.inc();
    res.set(NO_STORE);
    answer(endSession ?? safeReturnUrl(req.query.rd, redirects, deps.afterLogoutUrl));
  };
  const redirectTo = (res: Response) => (target: string) => res.redirect(302, target);
  router.get('/oauth2/sign_out', (req, res) => signOut(req, res, redirectTo(res)));
  router.post('/oauth2/sign_out', (req, res) => signOut(req, res, redirectTo(res)));
  // Kubeflow's central dashboard POSTs here and then navigates to afterLogoutURL (201, as oidc-authservice).
  router.post('/authservice/logout', (req, res) => signOut(req, res, (target) => res.status(201).json({ afterLogoutURL: target })));

  router.get(SIGNED_OUT_PATH, (_req, res) => sendSignedOutPage(res, startUrl(`${redirects.publicOrigin}/`)));

  router.get('/oauth2/userinfo', async (req, res) => {
    res.set(NO_STORE);
    let identity: Identity | null = null;
    const token = bearerTokenOf(req.headers.authorization);
    if (token && deps.bearer) {
      const result = await deps.bearer.verify(token);
      if (result.kind === 'identity') identity = result.identity;
    } else if (token === null) {
      const result = await sessions.authenticate(req.headers.cookie);
      if (result.kind === 'identity') {
        identity = result.identity;
        for (const cookie of result.setCookie ?? []) res.append('set-cookie', cookie);
      }
    }
    if (identity === null) return void res.status(401).json({ error: 'unauthorized' });
    const { claims } = identity;
    res.json({
      user: identity.userId,
      email: identity.email,
      groups: identity.groups,
      preferredUsername: typeof claims.preferred_username === 'string' ? claims.preferred_username : undefined,
      name: typeof claims.name === 'string' ? claims.name : undefined,
      sub: identity.subject,
      iss: identity.issuer,
    });
  });

  return router;
}
