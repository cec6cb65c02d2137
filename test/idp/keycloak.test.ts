/**
 * Keycloak (26.7.3, EOEPCA's IdP and most enterprises') as a real process in front of oidc-authz and a
 * real Envoy configured like the Istio gateway; people log in on Keycloak's own page in headless
 * Chromium. The realm (test/support/keycloak.ts) is what docs/idp/keycloak.md tells an operator to set
 * up: a confidential client with a group mapper (full paths), a client per workspace with role
 * `ws_access`, a CLI client with an audience mapper, a service account. The service runs with the
 * default scopes (Keycloak has no "groups" scope) and reads claims from all three sources.
 * The service clock is moved to expire tokens; nothing sleeps.
 */
import type { BrowserContext, Page } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema.js';
import { cookieHeaderOf, Profiles, screenshot, sessionCookieNames, SLOW } from '../support/chromium.js';
import { apiCall, bearer, claimsOf, metricValue } from '../support/gateway-client.js';
import { Browser as HttpBrowser } from '../support/browser.js';
import { KeycloakAdmin, LONG_GROUPS, requestToken, type RunningKeycloak, type TestRealm, type TestUsername } from '../support/keycloak.js';
import { startKeycloakWithBrowser, type KeycloakWithBrowser } from '../support/keycloak-browser.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { freePort, pollUntil, startService, tempFile, TestClock, type RunningService } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

/** Keycloak's realm boots in ~25 s from the template, and the realm takes a few more. */
const BOOT = 240_000;
const TOKEN_LIFETIME_MS = 120_000;
/**
 * How far the service clock moves to expire a session's tokens. Keycloak issues the refreshed tokens on
 * the real clock, so they must still look valid to the moved one: past the old tokens' expiry by less
 * than bearer.clockSkew (30 s), within which the service accepts a token's exp.
 */
const PAST_EXPIRY_MS = TOKEN_LIFETIME_MS + 10_000;
const COOKIE_SECRET = 'keycloak-suite-cookie-secret-0123456789abcdef';

const RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'static', paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
  { name: 'workspace-read', paths: ['/workspaces/{ws}/**'], methods: ['GET'], allow: { groups: ['{ws}'] } },
  // The README's own rule: client roles, which Keycloak puts in the access token only.
  { name: 'workspace-write', paths: ['/workspaces/{ws}/**'], allow: { claims: { 'resource_access.{ws}.roles': 'ws_access' } } },
  { name: 'ci', paths: ['/ci/**'], allow: { users: ['service-account:ci-bot'] } },
  // A claim that only userinfo carries.
  { name: 'blue-team', paths: ['/blue/**'], allow: { claims: { team: 'blue' } } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

let idp: KeycloakWithBrowser;
let keycloak: RunningKeycloak;
let realm: TestRealm;
let gateway: Gateway;
const clock = new TestClock();
let profiles: Profiles;

/** The config docs/idp/keycloak.md recommends, with every claim source on. */
function serviceConfig(overrides: Partial<NonNullable<ConfigInput['oidc']>> = {}): ConfigInput {
  return {
    oidc: {
      issuer: realm.issuer,
      clientId: realm.clients.oidcAuthz.clientId,
      clientSecretFile: tempFile(realm.clients.oidcAuthz.secret),
      claimsFrom: ['id_token', 'access_token', 'userinfo'],
      // Our own client's access tokens (aud = other clients + "account") and the service account's.
      authorizedParties: [realm.clients.oidcAuthz.clientId, realm.clients.ciBot.clientId],
      machineIdentity: {},
      ...overrides,
    },
    identity: { groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] },
    session: { secretsFile: tempFile(COOKIE_SECRET), secure: false },
    rules: RULES,
  };
}

beforeAll(async () => {
  idp = await startKeycloakWithBrowser();
  ({ keycloak, realm, profiles } = idp);
  gateway = await startGateway({ port: idp.port, config: serviceConfig(), now: clock.now });
}, BOOT);

afterAll(async () => {
  await gateway?.stop();
  await idp?.close();
}, SLOW);

afterEach(() => {
  clock.offsetMs = 0;
});

const profile = () => profiles.open();

const onKeycloakLoginPage = (url: URL) => url.href.startsWith(`${realm.issuer}/protocol/openid-connect/auth`) || url.href.startsWith(`${realm.issuer}/login-actions/`);

/** Opens `path` through the gateway, logs in on Keycloak's own form and waits to be back on `path`. */
async function logIn(page: Page, username: TestUsername, path = '/notebooks/?ns=ws-a'): Promise<void> {
  const target = `${gateway.url}${path}`;
  await page.goto(target);
  await page.waitForURL(onKeycloakLoginPage);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(realm.users[username].password);
  await page.locator('#kc-login').click();
  await page.waitForURL(target);
}

async function loggedIn(username: TestUsername, path?: string): Promise<{ context: BrowserContext; page: Page; cookie: Record<string, string> }> {
  const { context, page } = await profile();
  await logIn(page, username, path);
  return { context, page, cookie: { cookie: await cookieHeaderOf(context, gateway.url) } };
}


describe('browser login on Keycloak\'s own page', () => {
  test('with the default scopes (no "groups" at Keycloak): lands on the original URL as alice, groups without their "/"', async () => {
    const { page } = await profile();
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${realm.issuer}/protocol/openid-connect/auth?`));
    await logIn(page, 'alice');
    // Asking for "groups" would make Keycloak refuse the whole login (invalid_scope).
    expect(new URL((await authorize).url()).searchParams.get('scope')).toBe('openid email profile offline_access');
    expect(gateway.authz.logs.find((l) => l.msg === 'default scopes the IdP does not support are left out')).toMatchObject({ dropped: ['groups'] });
    expect(await page.locator('#user').textContent()).toBe('alice@example.com');
    expect(await page.locator('#groups').textContent()).toBe('ml,ws-a');
    await screenshot(page, 'keycloak-logged-in.png');
  }, SLOW);

  test('rules by route and method: groups for reads, client roles from the access token for writes, a userinfo-only claim', async () => {
    const alice = await loggedIn('alice');
    expect((await apiCall(gateway.url, '/workspaces/ws-a/nb', alice.cookie)).status).toBe(200);
    const write = await apiCall(gateway.url, '/workspaces/ws-a/nb', alice.cookie, 'POST');
    expect(write.status).toBe(200);
    expect(write.echoed?.headers['kubeflow-userid']).toBe('alice@example.com');
    expect((await apiCall(gateway.url, '/workspaces/ws-b/nb', alice.cookie)).json).toMatchObject({ rule: 'workspace-read', requirement: 'groups' });
    expect((await apiCall(gateway.url, '/blue/board', alice.cookie)).status).toBe(200);

    const bob = await loggedIn('bob');
    expect((await apiCall(gateway.url, '/workspaces/ws-b/nb', bob.cookie)).status).toBe(200);
    expect((await apiCall(gateway.url, '/workspaces/ws-b/nb', bob.cookie, 'PUT')).json).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'workspace-write', requirement: 'claims' });
    expect((await apiCall(gateway.url, '/blue/board', bob.cookie)).json).toMatchObject({ rule: 'blue-team', requirement: 'claims' });
  }, SLOW);

  test('a role granted at Keycloak applies at the next refresh', async () => {
    const bob = await loggedIn('bob');
    expect((await apiCall(gateway.url, '/workspaces/ws-b/nb', bob.cookie, 'POST')).status).toBe(403);
    const wsB = (await realm.admin.request<Array<{ id: string }>>('GET', `/${realm.name}/clients?clientId=ws-b`))[0]!.id;
    await realm.admin.grantClientRole(realm.name, realm.users.bob.id, wsB, 'ws_access');
    // The session still holds the old access token's roles until its tokens expire.
    expect((await apiCall(gateway.url, '/workspaces/ws-b/nb', bob.cookie, 'POST')).status).toBe(403);
    clock.advance(PAST_EXPIRY_MS);
    const refreshed = await apiCall(gateway.url, '/workspaces/ws-b/nb', bob.cookie, 'POST');
    expect(refreshed.status).toBe(200);
    expect(refreshed.headers.getSetCookie().some((c) => c.startsWith('oidc_authz='))).toBe(true);
  }, SLOW);

  test('a page the rules deny shows the browser who is signed in and which rule said no', async () => {
    const { page } = await loggedIn('bob');
    const answer = await page.goto(`${gateway.url}/workspaces/ws-a/`);
    expect(answer?.status()).toBe(403);
    await page.getByRole('heading', { level: 1, name: 'Access denied' }).waitFor();
    expect(await page.locator('strong').textContent()).toBe('bob@example.com');
    expect(await page.locator('code').textContent()).toBe('workspace-read');
    await screenshot(page, 'keycloak-forbidden.png');
  }, SLOW);

  test('userinfo answers for the session', async () => {
    const { cookie } = await loggedIn('alice');
    const info = await fetch(`${gateway.url}/oauth2/userinfo`, { headers: cookie });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ user: 'alice@example.com', groups: ['ml', 'ws-a'], preferredUsername: 'alice', name: 'Alice Tester', iss: realm.issuer });
  }, SLOW);

  test('sign-out ends the Keycloak session too (end-session with id_token_hint), then lands on the signed-out page', async () => {
    const { context, page } = await loggedIn('carol');
    // carol is in 81 groups: her session needs several cookies, and they all pass Envoy.
    expect((await page.locator('#groups').textContent())!.split(',')).toEqual([...LONG_GROUPS]);
    const names = await sessionCookieNames(context);
    expect(names.length).toBeGreaterThanOrEqual(3);

    const endSession = page.waitForRequest((r) => r.url().startsWith(`${realm.issuer}/protocol/openid-connect/logout?`));
    await page.getByRole('link', { name: 'Sign out' }).click();
    const logout = new URL((await endSession).url());
    expect(logout.searchParams.get('post_logout_redirect_uri')).toBe(`${gateway.url}/oauth2/signed_out`);
    expect(logout.searchParams.has('id_token_hint')).toBe(true);
    await page.waitForURL(`${gateway.url}/oauth2/signed_out`);
    await page.getByRole('heading', { level: 1, name: 'You are signed out' }).waitFor();
    expect(await sessionCookieNames(context)).toEqual([]);
    // Keycloak keeps an offline session (offline_access) that its logout does not end; the sign-out revokes
    // the session's refresh token (RFC 7009), which ends it, so no copy of the cookie can be refreshed again.
    const ourClient = (await realm.admin.request<Array<{ id: string }>>('GET', `/${realm.name}/clients?clientId=oidc-authz`))[0]!.id;
    expect(await realm.admin.request<unknown[]>('GET', `/${realm.name}/users/${realm.users.carol.id}/offline-sessions/${ourClient}`)).toHaveLength(0);
    expect(await metricValue(gateway.authz, 'oidc_authz_sign_outs_total{refresh_token="revoked"}')).toBe(1);
    // Keycloak asks again: its SSO session is gone, so "Sign in again" is not a silent re-login.
    await page.getByRole('link', { name: 'Sign in again' }).click();
    await page.waitForURL(onKeycloakLoginPage);
    await page.locator('#username').waitFor();
  }, SLOW);
});

describe('refresh with Keycloak\'s short-lived tokens (the service clock moves past their expiry)', () => {
  test('concurrent checks share one refresh; two replicas refreshing at once both keep the session', async () => {
    const { cookie } = await loggedIn('alice');
    const okBefore = await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="ok",error="none"}');
    const replica = await startService({ ...serviceConfig(), publicUrl: gateway.url, trustForwardedProto: true }, { now: clock.now });
    try {
      clock.advance(PAST_EXPIRY_MS);
      const viaGateway = Array.from({ length: 4 }, () => apiCall(gateway.url, '/workspaces/ws-a/nb', cookie, 'POST'));
      const direct = fetch(`${replica.url}/authz/workspaces/ws-a/nb`, { method: 'POST', headers: { ...cookie, host: new URL(gateway.url).host, accept: 'application/json' } });
      const [answers, other] = await Promise.all([Promise.all(viaGateway), direct]);
      expect([...answers.map((a) => a.status), other.status]).toEqual([200, 200, 200, 200, 200]);
      expect(await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="ok",error="none"}')).toBe(okBefore + 1);
      expect(await metricValue(replica, 'oidc_authz_session_refreshes_total{result="ok",error="none"}')).toBe(1);
      clock.offsetMs = 0;
      const renewed = [answers[0]!.headers.getSetCookie(), other.headers.getSetCookie()].map((list) => list.find((c) => c.startsWith('oidc_authz='))!.split(';', 1)[0]!);
      for (const fresh of renewed) expect((await apiCall(gateway.url, '/workspaces/ws-a/nb', { cookie: fresh }, 'POST')).status).toBe(200);
    } finally {
      await replica.close();
    }
  }, SLOW);

  test('a user disabled at Keycloak: the next refresh is refused, the API call hears why, the IdP\'s words are logged', async () => {
    const { cookie } = await loggedIn('bob');
    const before = await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_grant"}');
    await realm.admin.call('PUT', `/${realm.name}/users/${realm.users.bob.id}`, { enabled: false });
    try {
      // Until the tokens expire the session stands (nothing asks Keycloak); at the refresh it ends.
      expect((await apiCall(gateway.url, '/notebooks/', cookie)).status).toBe(200);
      clock.advance(PAST_EXPIRY_MS);
      const answer = await apiCall(gateway.url, '/notebooks/', cookie);
      expect(answer.status).toBe(401);
      expect(answer.json).toMatchObject({ reason: 'session_revoked' });
      expect(await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_grant"}')).toBe(before + 1);
      const logged = gateway.authz.logs.findLast((l) => l.msg === 'session refresh rejected by the IdP');
      expect(logged).toMatchObject({ error: 'invalid_grant', description: expect.stringMatching(/disabled/i) });
      expect(JSON.stringify(gateway.authz.logs)).not.toContain(cookie.cookie!.split('=')[1]!.slice(0, 40));
    } finally {
      await realm.admin.call('PUT', `/${realm.name}/users/${realm.users.bob.id}`, { enabled: true });
    }
  }, SLOW);
});

describe('Keycloak tokens as bearer', () => {
  const password = (clientId: string, secret: string | undefined, username: TestUsername = 'alice') =>
    realm.passwordGrant(clientId, secret, username, realm.users[username].password, 'openid email profile');

  test('our client\'s ID and access tokens pass (access token by azp); client roles in the access token count', async () => {
    const tokens = await password(realm.clients.oidcAuthz.clientId, realm.clients.oidcAuthz.secret);
    expect(claimsOf(tokens.access_token)).toMatchObject({ aud: ['ws-a', 'account'], azp: 'oidc-authz' });
    const byAccess = await apiCall(gateway.url, '/workspaces/ws-a/data', bearer(tokens.access_token), 'POST');
    expect(byAccess.status).toBe(200);
    expect(byAccess.echoed?.headers['kubeflow-userid']).toBe('alice@example.com');
    expect(byAccess.echoed?.headers['kubeflow-groups']).toBe('ml,ws-a');
    const byId = await apiCall(gateway.url, '/workspaces/ws-a/data', bearer(tokens.id_token!));
    expect(byId.status).toBe(200);
    // Keycloak always says whether the email is verified (the user's flag): why emailVerifiedWhenAbsent can stay off.
    for (const token of [tokens.access_token, tokens.id_token!]) expect(claimsOf(token).email_verified).toBe(true);
  });

  test('a user whose email Keycloak marks unverified is refused with the defaults (401 unverified_email)', async () => {
    const tokens = await password(realm.clients.oidcAuthz.clientId, realm.clients.oidcAuthz.secret, 'dave');
    for (const token of [tokens.access_token, tokens.id_token!]) {
      expect(claimsOf(token)).toMatchObject({ email: expect.any(String), email_verified: false });
      const refused = await apiCall(gateway.url, '/notebooks/', bearer(token));
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual({ error: 'unauthorized', reason: 'unverified_email' });
    }
  });

  test('a CLI client\'s access token passes by audience (Keycloak\'s audience mapper)', async () => {
    const tokens = await password(realm.clients.cli.clientId, undefined);
    expect(claimsOf(tokens.access_token).aud).toEqual(expect.arrayContaining(['oidc-authz']));
    expect((await apiCall(gateway.url, '/workspaces/ws-a/data', bearer(tokens.access_token))).status).toBe(200);
  });

  test('another client\'s tokens are refused, though Keycloak signed them for the same user', async () => {
    const tokens = await password(realm.clients.otherApp.clientId, realm.clients.otherApp.secret);
    expect(claimsOf(tokens.access_token)).toMatchObject({ azp: 'other-app', aud: ['ws-a', 'account'] });
    for (const token of [tokens.access_token, tokens.id_token!]) {
      const refused = await apiCall(gateway.url, '/workspaces/ws-a/data', bearer(token));
      expect(refused.status).toBe(401);
      expect(refused.json).toEqual({ error: 'unauthorized', reason: 'wrong_audience' });
    }
  });

  test('a service account (client credentials, no email) is a machine with its own id', async () => {
    const tokens = await realm.clientCredentialsGrant(realm.clients.ciBot.clientId, realm.clients.ciBot.secret);
    expect(claimsOf(tokens.access_token)).toMatchObject({ client_id: 'ci-bot', azp: 'ci-bot' });
    expect(claimsOf(tokens.access_token).email).toBeUndefined();
    const run = await apiCall(gateway.url, '/ci/run', bearer(tokens.access_token), 'POST');
    expect(run.status).toBe(200);
    expect(run.echoed?.headers['kubeflow-userid']).toBe('service-account:ci-bot');
    expect((await apiCall(gateway.url, '/workspaces/ws-a/data', bearer(tokens.access_token))).status).toBe(403);
  });

  test('a token fetched through another host name carries another issuer, and the 401 names it', async () => {
    const viaLocalhost = keycloak.url.replace('127.0.0.1', 'localhost');
    const tokens = await requestToken(`${viaLocalhost}/realms/${realm.name}/protocol/openid-connect/token`, {
      grant_type: 'password', client_id: realm.clients.oidcAuthz.clientId, client_secret: realm.clients.oidcAuthz.secret,
      username: 'alice', password: realm.users.alice.password, scope: 'openid',
    });
    const refused = await apiCall(gateway.url, '/notebooks/', bearer(tokens.access_token));
    expect(refused.status).toBe(401);
    expect(refused.json).toEqual({ error: 'unauthorized', reason: 'unknown_issuer', issuer: `${viaLocalhost}/realms/${realm.name}` });
  });
});

describe('start-up checks against Keycloak', () => {
  test('an unregistered post-logout redirect URI is named in a warning; the registered one is not', async () => {
    const service = await startService({ ...serviceConfig({ afterLogoutUrl: `${gateway.url}/not-registered` }), publicUrl: gateway.url });
    try {
      const warning = await pollUntil(
        () => Promise.resolve(service.logs.find((l) => String(l.msg).startsWith('the IdP refuses our post_logout_redirect_uri'))),
        (found) => found !== undefined,
      );
      expect(warning).toMatchObject({ level: 'warn', postLogoutRedirectUri: `${gateway.url}/not-registered`, clientId: 'oidc-authz', status: 400 });
    } finally {
      await service.close();
    }
    // The gateway's service asked the same question for the registered URI, and Keycloak said yes.
    expect(gateway.authz.logs.find((l) => l.msg === 'the IdP accepts our post_logout_redirect_uri')).toMatchObject({ postLogoutRedirectUri: `${gateway.url}/oauth2/signed_out`, status: 302 });
    expect(gateway.authz.logs.find((l) => String(l.msg).startsWith('the IdP refuses our post_logout_redirect_uri'))).toBeUndefined();
  });

  test('the realm missing from the issuer is a misconfiguration that readiness reports', async () => {
    const service = await startService({ ...serviceConfig({ issuer: keycloak.url }), publicUrl: gateway.url });
    try {
      const ready = await pollUntil(async () => (await fetch(`${service.url}/readyz`)).json() as Promise<Record<string, unknown>>, (body) => body.reason !== 'oidc_discovery_pending');
      expect(ready).toMatchObject({ status: 'not_ready', reason: 'oidc_issuer_misconfigured' });
      expect(ready.detail).toMatch(/answered 404: no OpenID Provider there; is the issuer URL complete \(Dex: …\/dex, Keycloak: …\/realms\/<realm>\)\?/);
    } finally {
      await service.close();
    }
  });
});

describe('back-channel logout from Keycloak to two replicas sharing Redis (session.store: redis)', () => {
  /** session.redis.cacheFor: the longest a replica keeps using a session it read before reading it again. */
  const CACHE_FOR_MS = 1_000;
  const OK_LOGOUTS = 'oidc_authz_backchannel_logouts_total{result="ok"}';
  const REFUSED_LOGOUTS = 'oidc_authz_backchannel_logouts_total{result="invalid_token"}';
  let redis: RunningRedis;
  let original: Awaited<ReturnType<KeycloakAdmin['getClient']>> | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    original = await realm.admin.getClient(realm.name, realm.clients.oidcAuthz.clientId);
  }, SLOW);

  afterAll(async () => {
    await redis?.stop();
    // Put back, so no later logout is sent to a replica that is gone.
    if (original !== undefined) await realm.admin.updateClient(realm.name, original);
  }, SLOW);

  /** Two replicas as two pods: A is the publicUrl (Keycloak sends the browser and the logout tokens there), B another pod. */
  interface Replicas {
    readonly a: RunningService;
    readonly b: RunningService;
    readonly publicUrl: string;
    readonly host: string;
    close(): Promise<void>;
  }

  /**
   * Starts replicas A and B and points the oidc-authz client at A as docs/idp/keycloak.md says for
   * session.store: redis: back-channel logout URL, "session required" (sid in the logout token), front-channel
   * logout off (the admin API's default for a new client).
   */
  async function startReplicas(oidc: Partial<NonNullable<ConfigInput['oidc']>> = {}): Promise<Replicas> {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    await realm.admin.updateClient(realm.name, {
      ...original!,
      frontchannelLogout: false,
      redirectUris: [...(original!.redirectUris ?? []), `${publicUrl}/oauth2/callback`],
      attributes: {
        ...original!.attributes,
        'post.logout.redirect.uris': [original!.attributes?.['post.logout.redirect.uris'], `${publicUrl}/oauth2/signed_out`].filter(Boolean).join('##'),
        'backchannel.logout.url': `${publicUrl}/oauth2/backchannel_logout`,
        'backchannel.logout.session.required': 'true',
      },
    });
    const config: ConfigInput = {
      ...serviceConfig(oidc),
      publicUrl,
      // commandTimeout above the default 500ms: this machine also runs Keycloak, Redis and the test.
      session: { secretsFile: tempFile(COOKIE_SECRET), secure: false, store: 'redis', redis: { url: redis.url, cacheFor: CACHE_FOR_MS / 1000, commandTimeout: '2s' } },
    };
    const a = await startService({ ...config, listen: { port } }, { now: clock.now });
    const b = await startService(config, { now: clock.now });
    for (const svc of [a, b]) await pollUntil(async () => (await fetch(`${svc.url}/readyz`)).status, (status) => status === 200);
    return {
      a, b, publicUrl, host: `127.0.0.1:${port}`,
      async close() {
        await a.close();
        await b.close();
      },
    };
  }

  /** An API call's check as Envoy sends it, at one replica. */
  async function check(replicas: Replicas, svc: RunningService, cookie: string): Promise<{ status: number; user: string | null; body: string }> {
    const res = await fetch(`${svc.url}/authz/notebooks/`, { headers: { host: replicas.host, cookie, accept: 'application/json' } });
    return { status: res.status, user: res.headers.get('kubeflow-userid'), body: await res.text() };
  }

  /** A browser of its own logs `username` in on Keycloak's login form, through replica A; both replicas answer 200 for it. */
  async function logIn(replicas: Replicas, username: TestUsername): Promise<{ browser: HttpBrowser; cookie: string }> {
    const browser = new HttpBrowser();
    const first = await browser.get(`${replicas.publicUrl}/authz/notebooks/`, { host: replicas.host, accept: 'text/html', 'sec-fetch-mode': 'navigate' });
    expect(first.status).toBe(302);
    const landed = await browser.get(await browser.loginAtIdp(first.location!, username, realm.users[username].password));
    expect(landed.status).toBe(302);
    const session = browser.jar.get(`${replicas.publicUrl}/`, 'oidc_authz');
    expect(session?.value).toMatch(/^r1\./);
    const cookie = `oidc_authz=${session!.value}`;
    for (const svc of [replicas.a, replicas.b]) {
      const answer = await check(replicas, svc, cookie);
      expect(answer.status).toBe(200);
      expect(answer.user).toBe(realm.users[username].email);
    }
    return { browser, cookie };
  }

  /**
   * Once cacheFor has passed on the replicas' clock, each replica reads the session from Redis again: both refuse
   * every one of `cookies` at their next check. (The clock is moved, not waited for: nothing here depends on how
   * long Keycloak took to send its logout tokens.)
   */
  async function refusedOnBothAfterCacheFor(replicas: Replicas, ...cookies: string[]): Promise<void> {
    clock.advance(CACHE_FOR_MS + 1);
    for (const cookie of cookies) {
      for (const svc of [replicas.a, replicas.b]) {
        const refused = await check(replicas, svc, cookie);
        expect({ status: refused.status, body: JSON.parse(refused.body) as unknown }).toMatchObject({ status: 401, body: { reason: 'session_invalid' } });
      }
    }
  }

  /** The user's online Keycloak sessions our client is part of: Keycloak's logout of the user sends a logout token for each. */
  const sessionsWithUs = async (username: TestUsername) =>
    (await realm.userSessions(username)).filter((s) => Object.values(s.clients).includes(realm.clients.oidcAuthz.clientId)).length;

  /** Confirms "Do you want to log out?" on Keycloak's end-session page (no id_token_hint: another application's or the account console's sign-out). */
  async function signOutAtKeycloak(browser: HttpBrowser): Promise<void> {
    const confirm = await browser.get(`${realm.issuer}/protocol/openid-connect/logout`);
    expect(confirm.status).toBe(200);
    const done = await browser.followRedirects(await browser.submitForm(confirm, {}, { submitter: { name: 'confirmLogout', value: 'Log out' } }));
    expect(done.status).toBe(200);
    expect(done.body).toContain('You are logged out');
  }

  describe('with the default scopes (offline_access: our session is a Keycloak offline session)', () => {
    let replicas: Replicas;
    beforeAll(async () => (replicas = await startReplicas()), SLOW);
    afterAll(async () => await replicas?.close());

    const offlineSessionIds = async (username: TestUsername) =>
      (await realm.admin.request<Array<{ id: string }>>('GET', `/${realm.name}/users/${realm.users[username].id}/offline-sessions/${original!.id}`)).map((s) => s.id);

    test('the user\'s logout by an admin (POST /users/{id}/logout) or on Keycloak\'s page sends no logout token; ending the offline session (DELETE /sessions/{id}?isOffline=true) does, and both replicas refuse it within cacheFor, bob\'s kept', async () => {
      const { a, b } = replicas;
      // Ends what earlier tests left of alice at Keycloak (their logout tokens are counted before `before`).
      await realm.logoutUser('alice');
      const before = await metricValue(a, OK_LOGOUTS);
      const known = await offlineSessionIds('alice');
      const alice = await logIn(replicas, 'alice');
      const bob = await logIn(replicas, 'bob');
      const ours = (await offlineSessionIds('alice')).filter((id) => !known.includes(id));
      expect(ours).toHaveLength(1);

      // Both end online sessions only, and Keycloak answers after sending their logout tokens: none was sent.
      await signOutAtKeycloak(alice.browser);
      await realm.logoutUser('alice');
      expect(await metricValue(a, OK_LOGOUTS)).toBe(before);
      expect(await offlineSessionIds('alice')).toContain(ours[0]);
      // Past cacheFor: both replicas read it from Redis again, and it is still there.
      clock.advance(CACHE_FOR_MS + 1);
      for (const svc of [a, b]) expect((await check(replicas, svc, alice.cookie)).status).toBe(200);

      // The admin console's "Sign out" of that offline session.
      await realm.admin.call('DELETE', `/${realm.name}/sessions/${ours[0]}?isOffline=true`);
      expect(await metricValue(a, OK_LOGOUTS)).toBe(before + 1);
      expect(a.logs.filter((line) => line.msg === 'back-channel logout').every((line) => line.by === 'sid')).toBe(true);
      await refusedOnBothAfterCacheFor(replicas, alice.cookie);
      for (const svc of [a, b]) expect((await check(replicas, svc, bob.cookie)).status).toBe(200);
      expect(await metricValue(b, OK_LOGOUTS)).toBe(0);
    }, SLOW);
  });

  describe('with online refresh tokens (oidc.scopes without offline_access: our session is in Keycloak\'s SSO session)', () => {
    let replicas: Replicas;
    beforeAll(async () => (replicas = await startReplicas({ scopes: ['openid', 'email', 'profile'] })), SLOW);
    afterAll(async () => await replicas?.close());

    test('an admin logs alice out (POST /users/{id}/logout): a logout token per Keycloak session, by sid; both of her sessions refused on both replicas within cacheFor, bob\'s kept', async () => {
      const { a, b } = replicas;
      // Ends what earlier tests left of alice at Keycloak (a password grant for our client, through 127.0.0.1 or
      // localhost: the latter's logout token names the localhost issuer and is refused).
      await realm.logoutUser('alice');
      const [okBefore, refusedBefore] = [await metricValue(a, OK_LOGOUTS), await metricValue(a, REFUSED_LOGOUTS)];
      const alice = await logIn(replicas, 'alice');
      const aliceElsewhere = await logIn(replicas, 'alice');
      const bob = await logIn(replicas, 'bob');
      expect(await sessionsWithUs('alice')).toBe(2);
      await realm.logoutUser('alice');
      expect(await metricValue(a, OK_LOGOUTS)).toBe(okBefore + 2);
      expect(await metricValue(a, REFUSED_LOGOUTS)).toBe(refusedBefore);
      expect(a.logs.filter((line) => line.msg === 'back-channel logout').every((line) => line.by === 'sid')).toBe(true);
      await refusedOnBothAfterCacheFor(replicas, alice.cookie, aliceElsewhere.cookie);
      for (const svc of [a, b]) expect((await check(replicas, svc, bob.cookie)).status).toBe(200);
    }, SLOW);

    test('alice signs out on Keycloak\'s own end-session page: that Keycloak session\'s session is refused on both replicas within cacheFor; her other browser\'s and bob\'s are kept', async () => {
      const { a, b } = replicas;
      const alice = await logIn(replicas, 'alice');
      const aliceElsewhere = await logIn(replicas, 'alice');
      const bob = await logIn(replicas, 'bob');
      const before = await metricValue(a, OK_LOGOUTS);
      await signOutAtKeycloak(alice.browser);
      expect(await metricValue(a, OK_LOGOUTS)).toBe(before + 1);
      await refusedOnBothAfterCacheFor(replicas, alice.cookie);
      for (const svc of [a, b]) {
        expect((await check(replicas, svc, aliceElsewhere.cookie)).status).toBe(200);
        expect((await check(replicas, svc, bob.cookie)).status).toBe(200);
      }
    }, SLOW);
  });
});
