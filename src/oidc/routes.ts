/**
 * Browser-facing endpoints: /oauth2/start, /oauth2/callback, /oauth2/sign_out, /oauth2/userinfo and
 * Kubeflow's POST /authservice/logout. Istio routes these to us directly (they are excluded from the
 * ext_authz check), so they answer the browser themselves.
 */
import { Router, type Request, type Response } from 'express';
import type { BearerVerifier } from '../authn/bearer.js';
import { bearerTokenOf } from '../authn/authenticate.js';
import type { Identity } from '../authn/identity.js';
import type { SessionAuthenticator } from '../authn/session.js';
import type { Logger } from '../log.js';
import type { LineLimiter } from '../log-limit.js';
import type { Metrics } from '../metrics.js';
import { IdpMisconfiguredError, IdpRejectedError, IdpUnavailableError, type OidcClient } from './client.js';
import { END_SESSION_PATH, type EndSessionHandover } from './end-session.js';
import { sendErrorPage, sendSignedOutPage } from './pages.js';
import type { SessionTokenSource } from './session-claims.js';
import type { PublicOrigins } from '../http/public-origin.js';
import { safeReturnUrl, type RedirectPolicy } from './redirect.js';
import { CALLBACK_PATH, type TransactionCookies } from './transaction.js';
import { StoreUnavailableError } from '../session-store/contract.js';
import type { OfflineHandover } from './offline.js';

/** The default landing after sign-out (oidc.afterLogoutUrl): register <public origin> + this at the IdP. */
export const SIGNED_OUT_PATH = '/oauth2/signed_out';

export interface LoginRoutesDeps {
  readonly client: OidcClient;
  readonly tokenSource: SessionTokenSource;
  readonly transactions: TransactionCookies;
  readonly handover: EndSessionHandover;
  /**
   * The session authenticator and bearer verifier of the config in force (hot reload swaps them): each
   * request reads them once, so it sees one config from start to end.
   */
  readonly sessions: () => SessionAuthenticator;
  readonly bearer: () => BearerVerifier | null;
  /** The exact paths of the rules in force with offlineToken: the only return paths of an offline login. */
  readonly offlinePaths: () => ReadonlySet<string>;
  readonly offline: OfflineHandover;
  /** The public origin of a request (publicUrl, or its own Host when allowed). */
  readonly origins: PublicOrigins;
  readonly redirectAllowList: readonly string[];
  /** Paths are resolved against the request's public origin. */
  readonly urls: { readonly redirectUri: string | undefined; readonly authorizationEndpoint: string | undefined; readonly afterLogoutUrl: string | undefined; readonly afterLoginUrl: string | undefined };
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Rate limit for the lines any client can cause (src/log-limit.ts); null: none (tests). */
  readonly logLimit: LineLimiter | null;
  readonly now: () => number;
}

type CallbackResult = 'ok' | 'offline_grant' | 'idp_error' | 'missing_state' | 'unknown_transaction' | 'rejected' | 'idp_unavailable' | 'idp_misconfigured' | 'identity_rejected' | 'store_unavailable';

/** The page for an IdP we cannot use: an outage, or (an operator's job) a configuration that does not match it. */
function sendIdpUnusablePage(res: Response, error: unknown, retryUrl: string): void {
  if (error instanceof IdpMisconfiguredError) {
    return sendErrorPage(res, 500, 'Sign-in is misconfigured',
      'This service\'s identity provider settings do not match the identity provider. Trying again will not help until an administrator fixes them (the service log says what is wrong).', null);
  }
  sendErrorPage(res, 503, 'Sign-in is unavailable', 'The identity provider cannot be reached right now. Please try again in a moment.', retryUrl);
}

const NO_STORE = { 'cache-control': 'no-store' };

/** A page navigation, or a client that does not say (Sec-Fetch-Mode): see endSessionFor. */
function isNavigation(req: Request): boolean {
  const mode = req.headers['sec-fetch-mode'];
  return mode === undefined || mode === 'navigate';
}

/**
 * What the callback says about an IdP's error answer, in our words per error code (RFC 6749 §4.1.2.1,
 * OIDC Core §3.1.2.6). Anyone can send a browser to /oauth2/callback?error=…&error_description=<text>,
 * so the IdP's own words are shown only when the request carries the login transaction it answers.
 */
const IDP_ERRORS: Readonly<Record<string, string>> = {
  access_denied: 'The sign-in was declined, by you or by the identity provider.',
  login_required: 'The identity provider needs you to sign in there first.',
  interaction_required: 'The identity provider needs you to complete a step on its pages.',
  consent_required: 'The identity provider needs your consent before it signs you in here.',
  account_selection_required: 'The identity provider needs you to choose an account.',
  invalid_scope: 'The identity provider does not grant what this service asks for; an administrator must fix the requested scopes.',
  unauthorized_client: 'The identity provider does not allow this service to sign users in this way; an administrator must check the client settings.',
  unsupported_response_type: 'The identity provider does not support the sign-in flow this service uses; an administrator must check the client settings.',
  invalid_request: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  invalid_request_uri: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  invalid_request_object: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  request_not_supported: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  request_uri_not_supported: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  registration_not_supported: 'The identity provider refused the sign-in request; an administrator must check the client settings.',
  server_error: 'The identity provider ran into a problem. Please try again in a moment.',
  temporarily_unavailable: 'The identity provider is busy or down for maintenance. Please try again in a moment.',
};

export function describeIdpError(error: string, description: unknown): { code: string; text: string; idpWords: string | undefined } {
  const known = Object.hasOwn(IDP_ERRORS, error);
  const code = known ? error : 'unknown';
  const words = known ? IDP_ERRORS[error]! : 'The identity provider did not complete the sign-in.';
  // Only with the matching transaction (the caller passes undefined otherwise): the IdP's words, bounded.
  const idpWords = typeof description === 'string' && description.length > 0 ? description.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 300) : undefined;
  const fromIdp = idpWords === undefined ? '' : ` The identity provider said (${known ? code : 'error'}): "${idpWords}".`;
  return { code, text: `${words}${fromIdp}`, idpWords };
}

/** Where a request stands: its public origin and what follows from it. */
interface Site {
  readonly origin: string;
  /** Came over https (cookies follow session.secure "auto"). */
  readonly secure: boolean;
  readonly redirects: RedirectPolicy;
  /** …/oauth2/start?rd=<returnTo> on this origin. */
  startUrl(returnTo: string): string;
  /** A configured URL or path, absolute on this origin. */
  absolute(urlOrPath: string): string;
}

export function createLoginRoutes(deps: LoginRoutesDeps): Router {
  const { client, transactions, handover, metrics, logger, urls } = deps;
  /** Whether a line any client can cause may be written now (fixed keys: they are metric labels). */
  const mayLog = (key: 'login_foreign_host' | 'login_idp_error' | 'login_rejected' | 'login_idp_unusable') => deps.logLimit === null || deps.logLimit.take(key);
  const router = Router();

  /** The request's site, or null after answering 400 for a host that is not ours. */
  const siteOf = (req: Request, res: Response): Site | null => {
    const origin = deps.origins.ofHeaders(req.headers);
    if (origin === null) {
      if (mayLog('login_foreign_host')) logger.info('request for a host not on allowedHosts', { host: String(req.headers.host ?? '').slice(0, 255) });
      sendErrorPage(res, 400, 'Unknown host', 'This address is not one this sign-in service is configured for (allowedHosts).', null);
      return null;
    }
    return {
      origin,
      secure: origin.startsWith('https:'),
      redirects: { publicOrigin: origin, allowList: deps.redirectAllowList },
      startUrl: (returnTo) => `${origin}/oauth2/start?rd=${encodeURIComponent(returnTo)}`,
      absolute: (urlOrPath) => (urlOrPath.startsWith('/') ? `${origin}${urlOrPath}` : urlOrPath),
    };
  };

  router.get('/oauth2/start', async (req, res) => {
    const site = siteOf(req, res);
    if (site === null) return;
    const returnTo = safeReturnUrl(req.query.rd, site.redirects);
    // An offline grant is asked for an offlineToken route only: it is handed over on that path alone.
    const offline = req.query.offline === '1';
    if (offline && !deps.offlinePaths().has(new URL(returnTo).pathname)) {
      return sendErrorPage(res, 400, 'Not a delegated-access page', 'Offline access is only granted for the pages configured for it.', null);
    }
    // Said before the IdP, not after the user has signed in there for nothing.
    if (!deps.sessions().canKeepSessions()) {
      res.set('retry-after', '5');
      return sendErrorPage(res, 503, 'Sign-in is unavailable', 'This service cannot store sessions right now. Please try again in a moment.', site.startUrl(returnTo));
    }
    try {
      const login = await client.startLogin({
        // A configured path is sent as written (relative redirect); otherwise this origin's callback.
        redirectUri: urls.redirectUri ?? `${site.origin}${CALLBACK_PATH}`,
        authorizationEndpoint: urls.authorizationEndpoint === undefined ? undefined : site.absolute(urls.authorizationEndpoint),
        offline,
      });
      const kept = await transactions.create({ state: login.state, nonce: login.nonce, codeVerifier: login.codeVerifier, returnTo, redirectUri: login.redirectUri, ...(offline ? { offline } : {}) }, site.secure, `${site.origin}/`);
      if (kept.returnTo !== returnTo) logger.debug('return URL too long for the login cookie, shortened', { length: returnTo.length, kept: kept.returnTo.length });
      metrics.loginStarts.inc();
      res.set(NO_STORE).append('set-cookie', kept.setCookie).redirect(302, login.url);
    } catch (error) {
      if (mayLog('login_idp_unusable')) logger.warn('login start failed', { error });
      sendIdpUnusablePage(res, error, site.startUrl(returnTo));
    }
  });

  router.get(CALLBACK_PATH, async (req, res) => {
    const site = siteOf(req, res);
    if (site === null) return;
    const sessions = deps.sessions();
    const finish = (result: CallbackResult) => metrics.callbacks.inc({ result });
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const tx = state ? await transactions.find(req.headers.cookie, state) : null;
    if (state) res.append('set-cookie', transactions.clear(state, site.secure));
    res.set(NO_STORE);
    const retry = site.startUrl(tx?.returnTo ?? `${site.origin}/`);
    if (typeof req.query.error === 'string') {
      finish('idp_error');
      const refusal = describeIdpError(req.query.error, tx === null ? undefined : req.query.error_description);
      // The description is whatever the callback's query said: the IdP's words, or those of whoever started
      // a login of their own and sent the callback themselves. Logged as such.
      if (mayLog('login_idp_error')) logger.info('login refused by the identity provider', { error: refusal.code, queryDescription: refusal.idpWords, transaction: tx !== null });
      return sendErrorPage(res, refusal.code === 'access_denied' ? 403 : 400, 'Sign-in was not completed', refusal.text, retry);
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

    if (tx.offline === true) {
      // No session is issued or changed: the grant goes to the route's next check, in a cookie for its path.
      let granted;
      try {
        granted = await client.finishLogin(exchangeUrl(new URL(req.originalUrl, site.origin), tx.redirectUri), tx, deps.now());
      } catch (error) {
        finish(error instanceof IdpRejectedError ? 'rejected' : error instanceof IdpMisconfiguredError ? 'idp_misconfigured' : 'idp_unavailable');
        if (mayLog('login_idp_unusable')) logger.warn('offline grant failed', { error: error instanceof Error ? error.message : String(error) });
        if (error instanceof IdpRejectedError) return sendErrorPage(res, 400, 'Sign-in failed', 'The identity provider did not accept this sign-in. Please start again.', retry);
        return sendIdpUnusablePage(res, error, retry);
      }
      const { iss, sub } = granted.idClaims;
      if (granted.refreshToken === undefined || typeof iss !== 'string' || typeof sub !== 'string') {
        finish('rejected');
        return sendErrorPage(res, 502, 'Offline access was not granted', 'The identity provider did not return an offline token. An administrator must allow offline_access for this client.', null);
      }
      const path = new URL(tx.returnTo).pathname;
      res.append('set-cookie', await deps.offline.create(granted.refreshToken, { issuer: iss, subject: sub }, path, site.secure));
      finish('offline_grant');
      logger.info('offline grant ready for hand-over', { path });
      return res.redirect(302, tx.returnTo);
    }

    let tokens;
    try {
      tokens = await deps.tokenSource.login(exchangeUrl(new URL(req.originalUrl, site.origin), tx.redirectUri), tx);
    } catch (error) {
      if (error instanceof IdpRejectedError) {
        finish('rejected');
        if (mayLog('login_rejected')) logger.info('login rejected', { error: error.error, description: error.message });
        return sendErrorPage(res, 400, 'Sign-in failed', 'The identity provider did not accept this sign-in. Please start again.', retry);
      }
      finish(error instanceof IdpMisconfiguredError ? 'idp_misconfigured' : 'idp_unavailable');
      if (mayLog('login_idp_unusable')) logger.warn('login exchange failed', { error: error instanceof IdpUnavailableError ? error.message : error });
      return sendIdpUnusablePage(res, error, retry);
    }

    const previous = sessions.namesIn(req.headers.cookie);
    let issued;
    try {
      issued = await sessions.issue({ ...tokens, createdAt: deps.now() }, previous, site.secure);
    } catch (error) {
      if (error instanceof StoreUnavailableError) {
        finish('store_unavailable');
        if (mayLog('login_idp_unusable')) logger.warn('session could not be stored', { error: error.message });
        res.set('retry-after', '5');
        return sendErrorPage(res, 503, 'Sign-in is unavailable', 'Your sign-in worked, but this service cannot store sessions right now. Please try again in a moment.', retry);
      }
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
    await sessions.endReplaced(req.headers.cookie);
    logger.info('login', { user: issued.identity.userId });
    for (const cookie of issued.setCookies) res.append('set-cookie', cookie);
    res.redirect(302, landingAfterLogin(site, tx.returnTo));
  });

  /**
   * The URL openid-client reads the callback's parameters from and takes the code exchange's redirect_uri
   * from (without its query): the redirect_uri the authorization request named, sealed in the transaction,
   * not whatever Host this callback came in on. A relative one is sent as written by the client's hook.
   */
  const exchangeUrl = (callbackUrl: URL, redirectUri: string): URL => {
    if (redirectUri.startsWith('/')) return callbackUrl;
    const url = new URL(redirectUri);
    url.search = callbackUrl.search;
    return url;
  };

  /**
   * oidc-authservice's AFTER_LOGIN_URL: a platform's page that runs first (to create the user's profile),
   * told where the user was going with ?next=<path on this origin>.
   */
  const landingAfterLogin = (site: Site, returnTo: string): string => {
    if (urls.afterLoginUrl === undefined) return returnTo;
    const landing = new URL(site.absolute(urls.afterLoginUrl));
    const target = new URL(returnTo);
    landing.searchParams.set('next', target.origin === site.origin ? `${target.pathname}${target.search}` : returnTo);
    return landing.href;
  };

  /**
   * The IdP's end-session URL (null: it has none). The ID token goes along as id_token_hint only for a page
   * navigation to an IdP on another origin: a script on ours could read the final URL of a redirect chain
   * that stays on our origin (a fetch that follows it, a frame), and the token is a bearer until it expires.
   */
  const endSessionFor = async (req: Request, site: Site, idToken: string | undefined, afterLogout: string): Promise<string | null> => {
    const hint = isNavigation(req) ? idToken : undefined;
    const url = await client.endSessionUrl(hint, afterLogout);
    if (url === null || hint === undefined || new URL(url).origin !== site.origin) return url;
    return client.endSessionUrl(undefined, afterLogout);
  };

  /**
   * Ends the session: its cookies cleared, this replica refusing it from now on, its refresh token ended
   * at the IdP (so no copy of the cookie can be refreshed again). A browser is then sent to the IdP's
   * end-session endpoint (redirect), or a page script is told where to go (JSON) — never with a token.
   */
  const signOut = async (req: Request, res: Response, answer: 'redirect' | 'json') => {
    const site = siteOf(req, res);
    if (site === null) return;
    const sessions = deps.sessions();
    const { session, names, refreshTokens } = await sessions.signOut(req.headers.cookie);
    for (const cookie of sessions.clear(names, site.secure)) res.append('set-cookie', cookie);
    const afterLogout = site.absolute(urls.afterLogoutUrl ?? SIGNED_OUT_PATH);
    const [endedTokens, endSession] = await Promise.all([
      Promise.all(refreshTokens.map((token) => client.endRefreshToken(token))),
      endSessionFor(req, site, answer === 'redirect' ? session?.idToken : undefined, afterLogout),
    ]);
    // The session's own token (first) says what happened; a successor's went the same way or was already spent.
    const ended = endedTokens[0] ?? 'none';
    metrics.signOuts.inc({ refresh_token: ended });
    res.set(NO_STORE);
    if (answer === 'redirect') return void res.redirect(302, endSession ?? safeReturnUrl(req.query.rd, site.redirects, afterLogout));
    if (endSession === null) return void res.status(201).json({ afterLogoutURL: afterLogout });
    res.append('set-cookie', await handover.create(session?.idToken, site.secure));
    res.status(201).json({ afterLogoutURL: `${site.origin}${END_SESSION_PATH}` });
  };
  // Both paths, both methods: Kubeflow's central dashboard (v1.10) navigates with GET to its LOGOUT_URL
  // (Kubeflow sets /oauth2/sign_out); older dashboards POST to /authservice/logout and then navigate to
  // the afterLogoutURL of its JSON answer (201, as oidc-authservice answered).
  router.get('/oauth2/sign_out', (req, res) => signOut(req, res, 'redirect'));
  router.post('/oauth2/sign_out', (req, res) => signOut(req, res, 'redirect'));
  router.get('/authservice/logout', (req, res) => signOut(req, res, 'redirect'));
  router.post('/authservice/logout', (req, res) => signOut(req, res, 'json'));

  /**
   * Where POST /authservice/logout's JSON sends the browser: on to the IdP's end-session endpoint with the
   * ID token handed over in a cookie. The hint goes only with a page navigation (a script's fetch that
   * followed the redirect could read the final URL when the IdP shares our origin).
   */
  router.get(END_SESSION_PATH, async (req, res) => {
    const site = siteOf(req, res);
    if (site === null) return;
    const handed = await handover.read(req.headers.cookie);
    res.append('set-cookie', handover.clear(site.secure)).set(NO_STORE);
    const afterLogout = site.absolute(urls.afterLogoutUrl ?? SIGNED_OUT_PATH);
    // Without a hand-over (expired, or a link from elsewhere) the IdP's session is not ended for anyone.
    if (handed === null) return void res.redirect(302, afterLogout);
    res.redirect(302, (await endSessionFor(req, site, handed.idToken, afterLogout)) ?? afterLogout);
  });

  router.get(SIGNED_OUT_PATH, (req, res) => {
    const site = siteOf(req, res);
    if (site !== null) sendSignedOutPage(res, site.startUrl(`${site.origin}/`));
  });

  router.get('/oauth2/userinfo', async (req, res) => {
    res.set(NO_STORE);
    let identity: Identity | null = null;
    const token = bearerTokenOf(req.headers.authorization);
    const bearer = deps.bearer();
    if (token && bearer) {
      const result = await bearer.verify(token);
      // A token whose audience only rules check is not known to be for us: no rule decides here.
      if (result.kind === 'identity' && !result.identity.audienceUnchecked) identity = result.identity;
    } else if (token === null) {
      const result = await deps.sessions().authenticate(req.headers.cookie, (headers) => deps.origins.ofHeaders(headers)?.startsWith('https:') ?? true, req.headers);
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
