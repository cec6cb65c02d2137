/**
 * The dev IdP (demo/dev-idp.ts) and the test browser (test/support/browser.ts) working together, with
 * openid-client v6 as the relying party — the way oidc-authz's login flow will use them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import { Browser, visibleText, type Page } from '../support/browser.js';

const CLIENT_ID = 'oidc-authz';
const CLIENT_SECRET = 'dev-client-secret-0123456789abcdef';
const PUBLIC_CLIENT_ID = 'public-spa';
const SCOPE = 'openid email profile groups offline_access';
const ALICE = { username: 'alice', password: 'alice-password' };

/** A stand-in relying party on 127.0.0.1: /start/<n> 302s to an authorization URL; other paths just answer 200. */
interface RelyingParty {
  readonly url: string;
  readonly callbackUrl: string;
  readonly postLogoutUrl: string;
  /** Paths requested, in order. */
  readonly hits: string[];
  startUrlFor(authorizationUrl: URL): string;
  stop(): Promise<void>;
}

async function startRelyingParty(): Promise<RelyingParty> {
  const pending = new Map<string, string>();
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://rp').pathname;
    hits.push(path);
    const target = /^\/start\/(\d+)$/.exec(path)?.[1];
    if (target !== undefined && pending.has(target)) res.writeHead(302, { location: pending.get(target)! }).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(`rp ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    callbackUrl: `${url}/callback`,
    postLogoutUrl: `${url}/signed-out`,
    hits,
    startUrlFor(authorizationUrl) {
      const id = String(pending.size);
      pending.set(id, authorizationUrl.href);
      return `${url}/start/${id}`;
    },
    stop: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

let rp: RelyingParty;
let idp: DevIdp;
let config: oidc.Configuration;
const idpErrors: string[] = [];

beforeAll(async () => {
  rp = await startRelyingParty();
  idp = await startDevIdp({
    issuerPath: '/dex',
    users: {
      alice: { password: ALICE.password, email: 'alice@example.com', name: 'Alice Example', groups: ['team-a', 'admins'], claims: { hd: 'example.com' } },
      bob: { password: 'bob-password', email: 'bob@example.org', emailVerified: false, groups: [] },
      carol: { password: 'carol-password', email: 'carol@example.com', groups: ['team-c'] },
      dave: { password: 'dave-password', email: 'dave@example.com', groups: ['team-d'] },
    },
    clients: [
      { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, name: 'oidc-authz (test)', redirectUris: [rp.callbackUrl], postLogoutRedirectUris: [rp.postLogoutUrl] },
      { clientId: PUBLIC_CLIENT_ID, redirectUris: [rp.callbackUrl] },
    ],
    log: (message) => void idpErrors.push(message),
  });
  config = await discover(CLIENT_ID, CLIENT_SECRET);
});

afterAll(async () => {
  await Promise.all([idp?.stop(), rp?.stop()]);
});

afterEach(() => {
  expect(idpErrors).toEqual([]);
});

function discover(clientId: string, secret?: string, issuer = idp.issuer): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, secret, secret === undefined ? oidc.None() : undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

interface Login {
  readonly start: string;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

async function beginLogin(cfg = config, scope = SCOPE): Promise<Login> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const authorizationUrl = oidc.buildAuthorizationUrl(cfg, {
    redirect_uri: rp.callbackUrl,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { start: rp.startUrlFor(authorizationUrl), verifier, state, nonce };
}

function finishLogin(login: Login, callbackUrl: string, cfg = config) {
  return oidc.authorizationCodeGrant(cfg, new URL(callbackUrl), {
    pkceCodeVerifier: login.verifier,
    expectedState: login.state,
    expectedNonce: login.nonce,
    idTokenExpected: true,
  });
}

async function loginAs(browser: Browser, user = ALICE, scope = SCOPE, cfg = config) {
  const login = await beginLogin(cfg, scope);
  return finishLogin(login, await browser.loginAtIdp(login.start, user.username, user.password), cfg);
}

/** Follows redirects until the next one would leave the IdP; returns that redirect (not fetched). */
const leavingIdp = (browser: Browser, page: Page) => browser.followRedirects(page, (next) => next.origin !== idp.url);

const hasPasswordForm = (browser: Browser, page: Page) =>
  browser.forms(page).some((form) => form.inputs.some((input) => input.type === 'password'));

test('discovery and JWKS describe an http issuer under /dex with what the service relies on', async () => {
  expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/dex$/);
  expect(idp.url).toBe(new URL(idp.issuer).origin);
  const metadata = config.serverMetadata();
  expect(metadata).toMatchObject({
    issuer: idp.issuer,
    authorization_endpoint: `${idp.issuer}/auth`,
    token_endpoint: `${idp.issuer}/token`,
    end_session_endpoint: `${idp.issuer}/session/end`,
    revocation_endpoint: `${idp.issuer}/token/revocation`,
    code_challenge_methods_supported: ['S256'],
    response_types_supported: ['code'],
  });
  expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'groups', 'offline_access']));
  expect(metadata.claims_supported).toEqual(expect.arrayContaining(['email', 'email_verified', 'groups', 'name', 'preferred_username']));
  expect(metadata.id_token_signing_alg_values_supported).toContain('RS256');

  const jwks = (await (await fetch(metadata.jwks_uri!)).json()) as { keys: Array<Record<string, unknown>> };
  expect(jwks.keys).toHaveLength(1);
  expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
  expect(jwks.keys[0]).not.toHaveProperty('d');

  expect((await fetch(`${idp.url}/.well-known/openid-configuration`)).status).toBe(404);
});

test('code flow with PKCE, state and nonce: the ID token carries email, email_verified, groups and profile claims', async () => {
  const browser = new Browser();
  const login = await beginLogin();
  const callback = new URL(await browser.loginAtIdp(login.start, ALICE.username, ALICE.password));

  expect(`${callback.origin}${callback.pathname}`).toBe(rp.callbackUrl);
  expect(callback.searchParams.get('state')).toBe(login.state);
  expect(callback.searchParams.get('code')).toEqual(expect.any(String));
  expect(rp.hits).not.toContain('/callback'); // loginAtIdp returns the callback URL without fetching it

  const tokens = await finishLogin(login, callback.href);
  expect(tokens.claims()).toMatchObject({
    iss: idp.issuer,
    aud: CLIENT_ID,
    sub: 'alice',
    nonce: login.nonce,
    email: 'alice@example.com',
    email_verified: true,
    groups: ['team-a', 'admins'],
    name: 'Alice Example',
    preferred_username: 'alice',
    hd: 'example.com',
  });
  const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, 'alice');
  expect(userinfo).toMatchObject({ sub: 'alice', email: 'alice@example.com', groups: ['team-a', 'admins'] });
});

test('claims follow the scopes asked for and the user', async () => {
  const tokens = await loginAs(new Browser(), { username: 'bob', password: 'bob-password' }, 'openid email');
  const claims = tokens.claims()!;
  expect(claims).toMatchObject({ sub: 'bob', email: 'bob@example.org', email_verified: false });
  expect(claims).not.toHaveProperty('groups');
  expect(claims).not.toHaveProperty('name');
  expect(tokens.refresh_token).toBeUndefined(); // no offline_access, no refresh token
});

test('offline_access yields a refresh token that refreshes and rotates; revoked or spent tokens get invalid_grant', async () => {
  const tokens = await loginAs(new Browser());
  expect(tokens.refresh_token).toEqual(expect.any(String));

  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  expect(refreshed.claims()).toMatchObject({ sub: 'alice', email: 'alice@example.com', groups: ['team-a', 'admins'] });
  expect(refreshed.refresh_token).toEqual(expect.any(String));
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

  expect(await idp.revokeRefreshToken(refreshed.refresh_token!)).toBe(true);
  await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect(await idp.revokeRefreshToken(refreshed.refresh_token!)).toBe(false);
});

test('a rotated-away refresh token is refused', async () => {
  const tokens = await loginAs(new Browser());
  await oidc.refreshTokenGrant(config, tokens.refresh_token!);
  await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
});

test('revokeRefreshTokens(accountId) revokes that user only', async () => {
  const [alice, carol] = await Promise.all([
    loginAs(new Browser()),
    loginAs(new Browser(), { username: 'carol', password: 'carol-password' }),
  ]);
  const carolRefreshed = await oidc.refreshTokenGrant(config, carol.refresh_token!); // one spent, one usable
  expect(await idp.revokeRefreshTokens('carol')).toBe(1);
  await expect(oidc.refreshTokenGrant(config, carolRefreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  expect((await oidc.refreshTokenGrant(config, alice.refresh_token!)).claims()).toMatchObject({ sub: 'alice' });
});

test('a change of groups at the IdP shows in the next refresh', async () => {
  const tokens = await loginAs(new Browser(), { username: 'dave', password: 'dave-password' });
  expect(tokens.claims()).toMatchObject({ groups: ['team-d'] });
  idp.users.set('dave', { ...idp.users.get('dave')!, groups: ['team-d', 'ml'] });
  expect((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).claims()).toMatchObject({ sub: 'dave', groups: ['team-d', 'ml'] });
});

test('with rotateRefreshTokens: false a refresh token can be used again', async () => {
  const fixed = await startDevIdp({
    users: { alice: { password: ALICE.password, email: 'alice@example.com', groups: ['team-a'] } },
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, redirectUris: [rp.callbackUrl] }],
    rotateRefreshTokens: false,
    log: (message) => void idpErrors.push(message),
  });
  try {
    const cfg = await discover(CLIENT_ID, CLIENT_SECRET, fixed.issuer);
    const tokens = await loginAs(new Browser(), ALICE, SCOPE, cfg);
    const first = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!);
    expect(first.refresh_token ?? tokens.refresh_token).toBe(tokens.refresh_token);
    const second = await oidc.refreshTokenGrant(cfg, tokens.refresh_token!);
    expect(second.claims()).toMatchObject({ sub: 'alice', groups: ['team-a'] });
  } finally {
    await fixed.stop();
  }
});

test('the login page: labelled fields; a wrong password re-renders it with an error and does not log in', async () => {
  const browser = new Browser();
  const login = await beginLogin();
  const form = await browser.followRedirects(await browser.get(login.start));
  expect(form.status).toBe(200);
  expect(form.url).toMatch(new RegExp(`^${idp.issuer}/interaction/[^/]+$`));
  expect(form.headers.get('content-type')).toMatch(/^text\/html/);
  expect(form.body).toContain('oidc-authz dev IdP');
  expect(form.body).toContain('<label for="username">Username</label>');
  expect(form.body).toContain('<label for="password">Password</label>');
  expect(visibleText(form.body)).toContain('Sign in to continue to oidc-authz (test)');
  expect(browser.forms(form)).toEqual([
    { id: undefined, action: form.url, method: 'POST', inputs: [{ name: 'username', type: 'text', value: '' }, { name: 'password', type: 'password', value: '' }] },
  ]);

  const wrong = await browser.submitForm(form, { username: 'alice', password: 'not-her-password' });
  expect(wrong.status).toBe(401);
  expect(wrong.location).toBeUndefined();
  expect(visibleText(wrong.body)).toContain('Invalid username or password.');
  expect(browser.forms(wrong)[0]!.inputs).toContainEqual({ name: 'username', type: 'text', value: 'alice' });
  expect(browser.jar.get(idp.issuer, '_session')).toBeUndefined();

  const unknown = await browser.submitForm(wrong, { username: 'mallory', password: 'x' });
  expect(unknown.status).toBe(401);
  expect(browser.jar.get(idp.issuer, '_session')).toBeUndefined();

  // The re-rendered form still works with the right password.
  const done = await leavingIdp(browser, await browser.submitForm(unknown, { username: 'alice', password: ALICE.password }));
  expect(browser.jar.get(idp.issuer, '_session')).toBeDefined();
  expect((await finishLogin(login, done.location!)).claims()).toMatchObject({ sub: 'alice' });
});

test('loginAtIdp fails loudly on wrong credentials', async () => {
  const login = await beginLogin();
  await expect(new Browser().loginAtIdp(login.start, 'alice', 'wrong')).rejects.toThrow(/did not accept alice \(401\).*Invalid username or password/);
});

test('a stale interaction link gets a clear error page', async () => {
  const page = await new Browser().get(`${idp.issuer}/interaction/no-such-interaction`);
  expect(page.status).toBe(400);
  expect(visibleText(page.body)).toContain('This sign-in attempt has expired or was already completed.');
});

test('Cancel sends access_denied back to the client', async () => {
  const browser = new Browser();
  const login = await beginLogin();
  const form = await browser.followRedirects(await browser.get(login.start));
  const back = await leavingIdp(browser, await browser.submitForm(form, {}, { submitter: { name: 'action', value: 'cancel' } }));
  const callback = new URL(back.location!);
  expect(callback.searchParams.get('error')).toBe('access_denied');
  expect(callback.searchParams.get('state')).toBe(login.state);
  await expect(finishLogin(login, callback.href)).rejects.toMatchObject({ error: 'access_denied' });
});

test('PKCE is required', async () => {
  const state = oidc.randomState();
  const withoutPkce = oidc.buildAuthorizationUrl(config, { redirect_uri: rp.callbackUrl, scope: 'openid', state });
  const callback = new URL(await new Browser().loginAtIdp(rp.startUrlFor(withoutPkce), 'alice', ALICE.password));
  expect(callback.searchParams.get('error')).toBe('invalid_request');
  expect(callback.searchParams.get('error_description')).toMatch(/PKCE/);
  expect(callback.searchParams.get('state')).toBe(state);
});

test('a public client (no secret) logs in with PKCE', async () => {
  const publicConfig = await discover(PUBLIC_CLIENT_ID);
  const tokens = await loginAs(new Browser(), ALICE, SCOPE, publicConfig);
  expect(tokens.claims()).toMatchObject({ aud: PUBLIC_CLIENT_ID, sub: 'alice', groups: ['team-a', 'admins'] });
  expect(tokens.refresh_token).toEqual(expect.any(String));
});

test('SSO while the IdP session lives; RP-initiated logout ends it and lands on post_logout_redirect_uri', async () => {
  const browser = new Browser();
  const tokens = await loginAs(browser);

  // A second login (with and without offline_access) needs no password while the IdP session lives.
  for (const scope of ['openid email', SCOPE]) {
    const again = await beginLogin(config, scope);
    const redirect = await leavingIdp(browser, await browser.get(again.start));
    expect((await finishLogin(again, redirect.location!)).claims()).toMatchObject({ sub: 'alice' });
  }

  const endSessionUrl = oidc.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token!,
    post_logout_redirect_uri: rp.postLogoutUrl,
    state: 'bye',
  });
  const confirmation = await browser.get(endSessionUrl);
  expect(confirmation.status).toBe(200);
  expect(browser.forms(confirmation)).toHaveLength(1);
  const loggedOut = await browser.submitForm(confirmation);
  expect(loggedOut.status).toBe(303);
  const landing = new URL(loggedOut.location!);
  expect(`${landing.origin}${landing.pathname}`).toBe(rp.postLogoutUrl);
  expect(landing.searchParams.get('state')).toBe('bye');
  expect(browser.jar.get(idp.issuer, '_session')).toBeUndefined();

  // The IdP session is gone: the next login shows the form again.
  const next = await browser.followRedirects(await browser.get((await beginLogin()).start));
  expect(next.status).toBe(200);
  expect(hasPasswordForm(browser, next)).toBe(true);
});

test('logout refuses a post_logout_redirect_uri that is not registered', async () => {
  const browser = new Browser();
  const tokens = await loginAs(browser);
  const page = await browser.get(oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${rp.url}/elsewhere` }));
  expect(page.status).toBe(400);
  expect(visibleText(page.body)).toContain('post_logout_redirect_uri not registered');
});

test.each([SCOPE, 'openid email groups'])('two logins in parallel tabs of one browser (two states) both complete, in either order (scope %s)', async (scope) => {
  const browser = new Browser();
  const first = await beginLogin(config, scope);
  const second = await beginLogin(config, scope);
  const firstForm = await browser.followRedirects(await browser.get(first.start));
  const secondForm = await browser.followRedirects(await browser.get(second.start));
  expect(hasPasswordForm(browser, firstForm) && hasPasswordForm(browser, secondForm)).toBe(true);
  expect(firstForm.url).not.toBe(secondForm.url);

  // The tab opened last is submitted first.
  const secondDone = await leavingIdp(browser, await browser.submitForm(secondForm, { username: 'alice', password: ALICE.password }));
  const firstDone = await leavingIdp(browser, await browser.submitForm(firstForm, { username: 'alice', password: ALICE.password }));
  expect(new URL(firstDone.location!).searchParams.get('state')).toBe(first.state);
  expect(new URL(secondDone.location!).searchParams.get('state')).toBe(second.state);

  const [a, b] = await Promise.all([finishLogin(first, firstDone.location!), finishLogin(second, secondDone.location!)]);
  expect(a.claims()).toMatchObject({ sub: 'alice', nonce: first.nonce });
  expect(b.claims()).toMatchObject({ sub: 'alice', nonce: second.nonce });
});

test('two concurrent loginAtIdp calls in one browser both complete', async () => {
  const browser = new Browser();
  const logins = [await beginLogin(), await beginLogin()];
  const callbacks = await Promise.all(logins.map((l) => browser.loginAtIdp(l.start, ALICE.username, ALICE.password)));
  const tokens = await Promise.all(logins.map((l, i) => finishLogin(l, callbacks[i]!)));
  expect(tokens.map((t) => t.claims()?.nonce)).toEqual(logins.map((l) => l.nonce));
  expect(tokens.every((t) => typeof t.refresh_token === 'string')).toBe(true);
});
