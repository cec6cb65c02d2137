/**
 * Dex, Kubeflow's default IdP, as a real process (v2.45.1) in front of oidc-authz and a real Envoy
 * configured like the Istio gateway; people log in on Dex's own page in headless Chromium. The service
 * runs with its defaults wherever Kubeflow would (scopes, claim sources), so what passes here is what a
 * Kubeflow operator gets. The service clock is moved to expire tokens; nothing sleeps.
 */
import type { Browser, Page } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema.js';
import { cookieHeaderOf, launchChromium, Profiles, screenshot, sessionCookieNames, SLOW } from '../support/chromium.js';
import { startDex, type DexClient, type DexUser, type RunningDex } from '../support/dex.js';
import { Browser as HttpBrowser } from '../support/browser.js';
import { apiCall, bearer, claimsOf, metricValue } from '../support/gateway-client.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { freePort, pollUntil, startService, tempFile, TestClock, type RunningService } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

const LONG_GROUPS = Array.from({ length: 81 }, (_, i) => `workspace-team-with-a-long-descriptive-name-${String(i).padStart(3, '0')}`);
const USERS: DexUser[] = [
  { username: 'alice', email: 'alice@example.com', password: 'alice-pw', groups: ['team-a', 'ml'] },
  { username: 'bob', email: 'bob@example.com', password: 'bob-pw', groups: ['team-b'] },
  { username: 'carol', email: 'carol@example.com', password: 'carol-pw', groups: LONG_GROUPS },
];
const COOKIE_SECRET = 'dex-suite-cookie-secret-0123456789abcdefghij';
const ID_TOKEN_LIFETIME_MS = 2 * 60_000;

const RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'static', paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
  { name: 'team-a', paths: ['/team-a/**'], allow: { groups: ['team-a'] } },
  { name: 'workspace-read', paths: ['/workspaces/{ws}/**'], methods: ['GET'], allow: { groups: ['{ws}'] } },
  { name: 'workspace-write', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}-admins'] } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

let dex: RunningDex;
let gateway: Gateway;
let chromium: Browser;
let client: DexClient;
let otherClient: DexClient;
const clock = new TestClock();
let profiles: Profiles;

/** The service config for this Dex: Kubeflow's client id, the defaults for everything Kubeflow leaves alone. */
function serviceConfig(): ConfigInput {
  return {
    oidc: { issuer: dex.issuer, clientId: client.id, clientSecretFile: tempFile(client.secret!) },
    session: { secretsFile: tempFile(COOKIE_SECRET), secure: false },
    rules: RULES,
  };
}

beforeAll(async () => {
  const port = await freePort();
  client = { id: 'kubeflow-oidc-authservice', secret: 'dex-suite-client-secret', redirectURIs: [`http://127.0.0.1:${port}/oauth2/callback`] };
  otherClient = { id: 'other-app', secret: 'other-app-secret', redirectURIs: ['http://127.0.0.1/other-app/callback'] };
  // The reuse interval our Dex guide asks for when more than one replica (or client) may refresh at once.
  dex = await startDex({ users: USERS, clients: [client, otherClient], idTokenLifetime: `${ID_TOKEN_LIFETIME_MS / 1000}s`, refreshTokenReuseInterval: '3s' });
  gateway = await startGateway({ port, config: serviceConfig(), now: clock.now });
  chromium = await launchChromium();
  profiles = new Profiles(chromium);
}, SLOW);

afterAll(async () => {
  await profiles?.closeAll();
  await chromium?.close();
  await gateway?.stop();
  await dex?.stop();
}, SLOW);

afterEach(() => {
  clock.offsetMs = 0;
});

const profile = () => profiles.open();

const onDexLoginPage = (url: URL) => url.origin === new URL(dex.issuer).origin && url.pathname === '/dex/auth/local/login';

/** Opens `path` through the gateway, logs in on Dex's own form and waits to be back on `path`. */
async function logIn(page: Page, user: DexUser, path = '/notebooks/?ns=team-a'): Promise<void> {
  const target = `${gateway.url}${path}`;
  await page.goto(target);
  await page.waitForURL(onDexLoginPage);
  await page.getByLabel('Email Address').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Login' }).click();
  await page.waitForURL(target);
}


describe('browser login on Dex\'s own page', () => {
  test('lands on the original URL with kubeflow-userid and kubeflow-groups; the default scopes are all Dex\'s', async () => {
    const { page } = await profile();
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${dex.issuer}/auth?`));
    const seen = gateway.echo.received.length;
    await logIn(page, USERS[0]!);
    // No oidc.scopes in the config: Dex lists every default scope, so all are asked for.
    expect(new URL((await authorize).url()).searchParams.get('scope')).toBe('openid email profile groups offline_access');
    expect(await page.locator('#user').textContent()).toBe('alice@example.com');
    expect(await page.locator('#groups').textContent()).toBe('team-a,ml');
    expect(gateway.echo.received.slice(seen).map((r) => r.path)).toContain('/notebooks/?ns=team-a');
    await screenshot(page, 'dex-logged-in.png');
  }, SLOW);

  test('group rules by route and method: reads of /workspaces/{ws} need group {ws}, writes {ws}-admins', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[0]!);
    const cookie = { cookie: await cookieHeaderOf(context, gateway.url) };
    expect((await apiCall(gateway.url, '/team-a/x', cookie)).status).toBe(200);
    const read = await apiCall(gateway.url, '/workspaces/team-a/nb', cookie);
    expect(read.status).toBe(200);
    expect(read.echoed?.headers['kubeflow-userid']).toBe('alice@example.com');
    const write = await apiCall(gateway.url, '/workspaces/team-a/nb', cookie, 'POST');
    expect(write.status).toBe(403);
    expect(write.json).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'workspace-write', requirement: 'groups' });
    expect((await apiCall(gateway.url, '/workspaces/team-b/nb', cookie)).json).toMatchObject({ rule: 'workspace-read' });
  }, SLOW);

  test('a page the rules deny shows the browser who is signed in, which rule said no, and a sign-out link', async () => {
    const { page } = await profile();
    await logIn(page, USERS[1]!);
    const answer = await page.goto(`${gateway.url}/team-a/`);
    expect(answer?.status()).toBe(403);
    await page.getByRole('heading', { level: 1, name: 'Access denied' }).waitFor();
    expect(await page.locator('strong').textContent()).toBe('bob@example.com');
    expect(await page.locator('code').textContent()).toBe('team-a');
    expect(await page.getByRole('link', { name: /Sign out/ }).getAttribute('href')).toBe('/oauth2/sign_out');
    await screenshot(page, 'dex-forbidden.png');
  }, SLOW);

  test('userinfo answers for the session', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[0]!);
    const info = await fetch(`${gateway.url}/oauth2/userinfo`, { headers: { cookie: await cookieHeaderOf(context, gateway.url) } });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ user: 'alice@example.com', email: 'alice@example.com', groups: ['team-a', 'ml'], iss: dex.issuer });
  }, SLOW);

  test('a user in 81 groups: the session is chunked into several cookies and passes Envoy whole', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[2]!);
    expect((await page.locator('#groups').textContent())!.split(',')).toEqual(LONG_GROUPS);
    const names = await sessionCookieNames(context);
    expect(names.length).toBeGreaterThanOrEqual(2);
    expect(names.every((n) => n.startsWith('oidc_authz.'))).toBe(true);
  }, SLOW);

  test('sign-out lands on the signed-out page (Dex has no end-session endpoint) and signing in again asks Dex again', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[0]!);
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.waitForURL(`${gateway.url}/oauth2/signed_out`);
    await page.getByRole('heading', { level: 1, name: 'You are signed out' }).waitFor();
    expect(await sessionCookieNames(context)).toEqual([]);
    await page.getByRole('link', { name: 'Sign in again' }).click();
    await page.waitForURL(onDexLoginPage);
  }, SLOW);
});

/**
 * A Dex of its own with Dex's default (no reuse interval: a refresh token is good once) and two replicas
 * behind one public origin; `login` signs a user in through replica `one` and gives the session cookie.
 */
async function twoReplicasOnOwnDex(idTokenLifetime: string) {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const strict: DexClient = { ...client, redirectURIs: [`http://${host}/oauth2/callback`] };
  const ownDex = await startDex({ users: USERS, clients: [strict], idTokenLifetime });
  const config: ConfigInput = {
    ...serviceConfig(),
    listen: { port },
    publicUrl: `http://${host}`,
    oidc: { issuer: ownDex.issuer, clientId: strict.id, clientSecretFile: tempFile(strict.secret!) },
  };
  const one = await startService(config, { now: clock.now });
  const two = await startService({ ...config, listen: { port: 0 } }, { now: clock.now });
  return {
    one, two, host,
    async login(user: string, password: string): Promise<string> {
      const browser = new HttpBrowser();
      const start = await browser.get(`${one.url}/authz/notebooks/`, { host, accept: 'text/html', 'sec-fetch-mode': 'navigate' });
      await browser.get(await browser.loginAtIdp(start.location!, user, password));
      return browser.jar.header(`${one.url}/`)!;
    },
    async stop() {
      await one.close();
      await two.close();
      await ownDex.stop();
    },
  };
}

function checkAt(service: RunningService, host: string, cookie: string): Promise<Response> {
  return fetch(`${service.url}/authz/notebooks/`, { headers: { host, cookie, accept: 'application/json' } });
}

/** The winner's new cookie works at either replica, on the real clock (Dex's new tokens live on it). */
async function expectSessionLivesOn(replicas: Awaited<ReturnType<typeof twoReplicasOnOwnDex>>, winner: Response): Promise<void> {
  clock.offsetMs = 0;
  const renewed = winner.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!.split(';', 1)[0]!;
  for (const service of [replicas.one, replicas.two]) {
    expect((await checkAt(service, replicas.host, renewed)).status).toBe(200);
  }
}

describe('refresh with Dex\'s short-lived ID tokens (the service clock moves past their expiry)', () => {
  test('concurrent checks share one refresh; the new cookie comes back and works once the clock is back', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[0]!);
    const cookie = await cookieHeaderOf(context, gateway.url);
    const before = await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="ok",error="none"}');
    clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
    const answers = await Promise.all(Array.from({ length: 5 }, () => apiCall(gateway.url, '/notebooks/', { cookie })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="ok",error="none"}')).toBe(before + 1);
    const renewed = answers[0]!.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='));
    expect(renewed).toBeDefined();
    // Dex's new tokens live on the real clock: back at real time, the new cookie needs no refresh.
    clock.offsetMs = 0;
    const next = await apiCall(gateway.url, '/notebooks/', { cookie: renewed!.split(';', 1)[0]! });
    expect(next.status).toBe(200);
    expect(next.headers.getSetCookie().filter((c) => c.startsWith('oidc_authz'))).toEqual([]);
    expect(await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="ok",error="none"}')).toBe(before + 1);
  }, SLOW);

  test('a check that refreshes the session and is then denied still hands the new cookie to the client, through Envoy', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[0]!);
    const cookie = await cookieHeaderOf(context, gateway.url);
    clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
    const denied = await apiCall(gateway.url, '/workspaces/team-a/nb', { cookie }, 'POST');
    expect(denied.status).toBe(403);
    // Dex rotated the refresh token: without the new cookie the next check would present a spent one.
    const renewed = denied.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='));
    expect(renewed).toBeDefined();
    clock.offsetMs = 0;
    expect((await apiCall(gateway.url, '/workspaces/team-a/nb', { cookie: renewed!.split(';', 1)[0]! })).status).toBe(200);
  }, SLOW);

  test('two replicas refreshing the same session at the same moment both succeed, and the session lives on', async () => {
    const { context, page } = await profile();
    await logIn(page, USERS[1]!);
    const cookie = await cookieHeaderOf(context, gateway.url);
    // A second replica: same config and cookie secrets, its own caches; Envoy could send either the request.
    const replica = await startService({ ...serviceConfig(), publicUrl: gateway.url, trustForwardedProto: true }, { now: clock.now });
    try {
      clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
      const check = (service: RunningService) => checkAt(service, new URL(gateway.url).host, cookie);
      const [first, second] = await Promise.all([check(gateway.authz), check(replica)]);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(first.headers.get('kubeflow-userid')).toBe('bob@example.com');
      expect(second.headers.get('kubeflow-userid')).toBe('bob@example.com');
      // Dex rotates refresh tokens but accepts the old one again within its reuse interval (3 s here).
      expect(await metricValue(replica, 'oidc_authz_session_refreshes_total{result="ok",error="none"}')).toBe(1);
      clock.offsetMs = 0;
      for (const answer of [first, second]) {
        const renewed = answer.headers.getSetCookie().find((c) => c.startsWith('oidc_authz='))!.split(';', 1)[0]!;
        expect((await apiCall(gateway.url, '/notebooks/', { cookie: renewed })).status).toBe(200);
      }
    } finally {
      await replica.close();
    }
  }, SLOW);

  test('with Dex\'s default (no reuse interval) a replica handed a refresh token another replica just spent answers 401 and leaves the session alone', async () => {
    const replicas = await twoReplicasOnOwnDex(`${ID_TOKEN_LIFETIME_MS / 1000}s`);
    const { one, two, host } = replicas;
    try {
      const cookie = await replicas.login('bob@example.com', 'bob-pw');
      clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
      // A browser's two requests with the old cookie: the first renews at replica one, the second, sent before
      // the new cookie arrived, reaches replica two after Dex stored the rotation.
      const winner = await checkAt(one, host, cookie);
      expect(winner.status).toBe(200);
      const loser = await checkAt(two, host, cookie);
      expect(loser.status).toBe(401);
      expect(await loser.json()).toMatchObject({ reason: 'session_revoked' });
      expect(await metricValue(two, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_request"}')).toBe(1);
      // The loser sends no clearing cookie that could overwrite the winner's fresh one in the browser…
      expect(loser.headers.getSetCookie()).toEqual([]);
      await expectSessionLivesOn(replicas, winner);
    } finally {
      await replicas.stop();
    }
  }, SLOW);

  test('with Dex\'s default two replicas refreshing at the same instant: one wins, the other fails that one request (401 or Dex\'s 500 as 503), the session lives on', async () => {
    const replicas = await twoReplicasOnOwnDex(`${ID_TOKEN_LIFETIME_MS / 1000}s`);
    const { one, two, host } = replicas;
    try {
      const cookie = await replicas.login('bob@example.com', 'bob-pw');
      clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
      const answers = await Promise.all([checkAt(one, host, cookie), checkAt(two, host, cookie)]);
      const winnerAt = answers.findIndex((a) => a.status === 200);
      expect(winnerAt).toBeGreaterThanOrEqual(0);
      const winner = answers[winnerAt]!;
      const loser = answers[1 - winnerAt]!;
      const loserService = winnerAt === 0 ? two : one;
      // Which refusal Dex gives depends on whether the loser looked its token up before the winner stored the
      // rotation (500 "refresh token claimed twice") or after (400 invalid_request). Both fail only this request.
      const refusal = loser.status === 503
        ? { reason: 'idp_unavailable', counted: 'oidc_authz_session_refreshes_total{result="unavailable",error="server_error"}' }
        : { reason: 'session_revoked', counted: 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_request"}' };
      expect([401, 503]).toContain(loser.status);
      expect(await loser.json()).toMatchObject({ reason: refusal.reason });
      expect(await metricValue(loserService, refusal.counted)).toBe(1);
      expect(loser.headers.getSetCookie()).toEqual([]);
      await expectSessionLivesOn(replicas, winner);
    } finally {
      await replicas.stop();
    }
  }, SLOW);

  test('sign-out spends the refresh token at Dex (it has no revocation endpoint): a copy of the cookie dies on every replica by its next revalidation', async () => {
    const replicas = await twoReplicasOnOwnDex('1h');
    const { one, two, host } = replicas;
    try {
      const stolen = await replicas.login('alice@example.com', 'alice-pw');
      const check = (service: RunningService) => checkAt(service, host, stolen);
      expect((await check(two)).status).toBe(200);

      const signOut = await fetch(`${one.url}/oauth2/sign_out`, { headers: { host, cookie: stolen }, redirect: 'manual' });
      expect(signOut.status).toBe(302);
      expect(await metricValue(one, 'oidc_authz_sign_outs_total{refresh_token="spent"}')).toBe(1);
      expect((await check(one)).status).toBe(401);
      // The other replica still has the session open; it asks Dex again once session.revalidateAfter is over
      // (the ID token has most of its hour left), and Dex refuses the spent refresh token.
      expect((await check(two)).status).toBe(200);
      clock.advance(5 * 60_000 + 1_000);
      const later = await check(two);
      expect(later.status).toBe(401);
      expect(await later.json()).toMatchObject({ reason: 'session_revoked' });
    } finally {
      await replicas.stop();
    }
  }, SLOW);

  test('a second login of the same user ends the first browser\'s session at Dex: its page load logs in again, its API call hears why', async () => {
    const first = await profile();
    await logIn(first.page, USERS[1]!);
    const firstCookie = await cookieHeaderOf(first.context, gateway.url);
    const second = await profile();
    await logIn(second.page, USERS[1]!);
    const rejectedBefore = await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_request"}');

    clock.advance(ID_TOKEN_LIFETIME_MS + 60_000);
    // Dex deleted the first session's refresh token when bob signed in again (same user, same client).
    const api = await apiCall(gateway.url, '/notebooks/', { cookie: firstCookie });
    expect(api.status).toBe(401);
    expect(api.json).toMatchObject({ error: 'unauthorized', reason: 'session_revoked', message: expect.stringContaining('a newer sign-in') });
    expect(api.headers.getSetCookie()).toEqual([]);
    expect(await metricValue(gateway.authz, 'oidc_authz_session_refreshes_total{result="rejected",error="invalid_request"}')).toBe(rejectedBefore + 1);
    // Dex logs nothing on that path; we log its words.
    expect(gateway.authz.logs.findLast((l) => l.msg === 'session refresh rejected by the IdP')).toMatchObject({
      error: 'invalid_request',
      description: 'Refresh token is invalid or has already been claimed by another client.',
    });

    // The first browser's next page load goes to Dex's form, the original URL kept for after the login.
    const start = first.page.waitForRequest((r) => r.url().startsWith(`${gateway.url}/oauth2/start?`));
    await first.page.goto(`${gateway.url}/notebooks/?ns=team-b`);
    expect(new URL((await start).url()).searchParams.get('rd')).toBe(`${gateway.url}/notebooks/?ns=team-b`);
    await first.page.waitForURL(onDexLoginPage);
    // The second browser refreshes fine.
    const stillIn = await apiCall(gateway.url, '/notebooks/', { cookie: await cookieHeaderOf(second.context, gateway.url) });
    expect(stillIn.status).toBe(200);
  }, SLOW);
});

describe('Dex tokens as bearer', () => {
  test('Dex\'s own ID and access tokens for our client pass; another client\'s are refused', async () => {
    const tokens = await dex.passwordGrant(client, 'alice@example.com', 'alice-pw');
    for (const token of [tokens.id_token as string, tokens.access_token as string]) {
      expect(claimsOf(token).aud).toBe(client.id);
      // Dex puts email_verified next to email in both tokens (true for its password database): the defaults
      // (emailVerifiedWhenAbsent off) work with it.
      expect(claimsOf(token)).toMatchObject({ email: 'alice@example.com', email_verified: true });
      const answer = await apiCall(gateway.url, '/workspaces/team-a/data', bearer(token));
      expect(answer.status).toBe(200);
      expect(answer.echoed?.headers['kubeflow-userid']).toBe('alice@example.com');
      expect(answer.echoed?.headers['kubeflow-groups']).toBe('team-a,ml');
    }
    const foreign = await dex.passwordGrant(otherClient, 'alice@example.com', 'alice-pw');
    const refused = await apiCall(gateway.url, '/workspaces/team-a/data', bearer(foreign.id_token as string));
    expect(refused.status).toBe(401);
    expect(refused.json).toEqual({ error: 'unauthorized', reason: 'wrong_audience' });
  });
});

describe('a wrong issuer spelling is a misconfiguration, not an outage', () => {
  /** Discovery runs in the background from start-up: readiness once it has an answer. */
  const readiness = (service: RunningService) =>
    pollUntil(async () => {
      const res = await fetch(`${service.url}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }, (r) => r.body.reason !== 'oidc_discovery_pending');

  async function notReady(service: RunningService): Promise<Record<string, unknown>> {
    const { status, body } = await readiness(service);
    expect(status).toBe(503);
    return body;
  }

  test.each([
    { what: 'a trailing "/"', issuer: () => `${dex.issuer}/`, detail: /configured issuer http:\/\/127\.0\.0\.1:\d+\/dex\/ but the IdP's discovery document names http:\/\/127\.0\.0\.1:\d+\/dex \(the two differ only in a trailing "\/"/ },
    { what: 'localhost for 127.0.0.1', issuer: () => dex.issuer.replace('127.0.0.1', 'localhost'), detail: /configured issuer http:\/\/localhost:\d+\/dex but the IdP's discovery document names http:\/\/127\.0\.0\.1:\d+\/dex \(same path, other host/ },
    { what: 'a missing /dex', issuer: () => dex.issuer.replace(/\/dex$/, ''), detail: /answered 404: no OpenID Provider there; is the issuer URL complete \(Dex: …\/dex/ },
  ])('$what: not ready, the log names both issuers, the login page (through Envoy) says "misconfigured"', async ({ issuer, detail }) => {
    const wrong = await startGateway({ port: await freePort(), config: { ...serviceConfig(), oidc: { ...serviceConfig().oidc!, issuer: issuer() } } });
    try {
      const ready = await notReady(wrong.authz);
      expect(ready).toMatchObject({ status: 'not_ready', reason: 'oidc_issuer_misconfigured' });
      expect(ready.detail).toMatch(detail);
      expect(wrong.authz.logs.find((l) => l.msg === 'oidc issuer misconfigured')).toMatchObject({ configuredIssuer: issuer(), problem: ready.detail });
      // A browser opening a protected page is sent to /oauth2/start, which says what is wrong in words a person can pass on.
      const browser = new HttpBrowser();
      const page = await browser.get(`${wrong.url}/notebooks/`, { accept: 'text/html', 'sec-fetch-mode': 'navigate' });
      expect(page.status).toBe(302);
      const start = await browser.follow(page);
      expect(start.url).toBe(`${wrong.url}/oauth2/start?rd=${encodeURIComponent(`${wrong.url}/notebooks/`)}`);
      expect(start.status).toBe(500);
      expect(start.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(start.body).toContain('Sign-in is misconfigured');
      expect(start.body).not.toContain('cannot be reached');
    } finally {
      await wrong.stop();
    }
  });

  test('an IdP that is down is "unreachable" (503, try again), and the same service becomes ready once discovery works', async () => {
    const downPort = await freePort();
    const service = await startService({ ...serviceConfig(), oidc: { ...serviceConfig().oidc!, issuer: `http://127.0.0.1:${downPort}/dex` }, publicUrl: gateway.url });
    try {
      const ready = await notReady(service);
      expect(ready).toMatchObject({ status: 'not_ready', reason: 'oidc_issuer_unreachable' });
      expect(ready.detail).toMatch(new RegExp(`cannot reach http://127\\.0\\.0\\.1:${downPort}/dex/\\.well-known/openid-configuration: ECONNREFUSED`));
      const start = await fetch(`${service.url}/oauth2/start?rd=/`, { redirect: 'manual' });
      expect(start.status).toBe(503);
      expect(await start.text()).toContain('Sign-in is unavailable');
    } finally {
      await service.close();
    }
    const good = await startService({ ...serviceConfig(), publicUrl: gateway.url });
    try {
      expect(await readiness(good)).toEqual({ status: 200, body: { status: 'ready' } });
    } finally {
      await good.close();
    }
  });
});

describe('refresh with sessions in Redis, two replicas and Dex\'s default (no reuse interval: a refresh token works once)', () => {
  /** Four users (one in 81 groups), each signed in once: a second sign-in of a user at Dex would end the first. */
  const PEOPLE: DexUser[] = [...USERS, { username: 'dave', email: 'dave@example.com', password: 'dave-pw', groups: ['team-d'] }];
  const ROUNDS = 3;
  const CHECKS_PER_USER = 24;
  /** Past session.revalidateAfter (5m, the default): every session is due at every replica. */
  const PAST_REVALIDATION_MS = 5 * 60_000 + 60_000;
  /** What Dex logs (level ERROR) when a rotated refresh token is presented again (it answers 400 invalid_request). */
  const DEX_REUSE = '"msg":"refresh token claimed twice"';
  /** What Dex logs when two requests looked one refresh token up before either stored its rotation: it answers the second 500. */
  const DEX_REUSE_ON_UPDATE = '"msg":"failed to update refresh token"';
  const occurrences = (text: string, part: string) => text.split(part).length - 1;
  let strictDex: RunningDex;
  let redis: RunningRedis;
  /** The public URLs' ports: the Redis replicas' and the cookie replicas' (Dex's client knows both callbacks). */
  let redisPort: number;
  let cookiePort: number;

  beforeAll(async () => {
    redisPort = await freePort();
    do cookiePort = await freePort(); while (cookiePort === redisPort);
    const strict: DexClient = { ...client, redirectURIs: [redisPort, cookiePort].map((port) => `http://127.0.0.1:${port}/oauth2/callback`) };
    // No idTokenLifetime: Dex's 24h, so what makes a session due is revalidateAfter alone, round after round.
    [strictDex, redis] = await Promise.all([startDex({ users: PEOPLE, clients: [strict] }), startRedis()]);
  }, SLOW);

  afterAll(async () => {
    await strictDex?.stop();
    await redis?.stop();
  });

  /** Replica one at http://127.0.0.1:<port> (the public URL, where logins come back), replica two elsewhere; one clock. */
  async function replicas(port: number, store: 'redis' | 'cookie'): Promise<[RunningService, RunningService]> {
    const config: ConfigInput = {
      ...serviceConfig(),
      listen: { port },
      publicUrl: `http://127.0.0.1:${port}`,
      oidc: { issuer: strictDex.issuer, clientId: client.id, clientSecretFile: tempFile(client.secret!) },
      session: {
        secretsFile: tempFile(COOKIE_SECRET),
        secure: false,
        // commandTimeout above the default 500ms: this machine also runs Dex, Redis and the test's many checks.
        ...(store === 'redis' ? { store, redis: { url: redis.url, cacheFor: 1, commandTimeout: '2s' } } : {}),
      },
    };
    const one = await startService(config, { now: clock.now });
    const two = await startService({ ...config, listen: { port: 0 } }, { now: clock.now });
    for (const svc of [one, two]) await pollUntil(async () => (await fetch(`${svc.url}/readyz`)).status, (status) => status === 200);
    return [one, two];
  }

  /** Each person signs in on Dex's login form through replica one; their Cookie headers. */
  async function signIn(one: RunningService, port: number): Promise<string[]> {
    const cookies: string[] = [];
    for (const person of PEOPLE) {
      const browser = new HttpBrowser();
      const start = await browser.get(`${one.url}/authz/notebooks/`, { host: `127.0.0.1:${port}`, accept: 'text/html', 'sec-fetch-mode': 'navigate' });
      expect(start.status).toBe(302);
      expect((await browser.get(await browser.loginAtIdp(start.location!, person.email, person.password))).status).toBe(302);
      cookies.push(browser.jar.header(`${one.url}/`)!);
    }
    return cookies;
  }

  /** Every person's checks at once, CHECKS_PER_USER each, alternating between the replicas: [person][i]. */
  async function concurrentChecks(replicaPair: readonly [RunningService, RunningService], port: number, cookies: readonly string[]) {
    const pending = cookies.map((cookie, person) => Array.from({ length: CHECKS_PER_USER }, async (_, i) => {
      const replica = (i + person) % 2;
      const res = await fetch(`${replicaPair[replica]!.url}/authz/notebooks/?i=${i}`, { headers: { host: `127.0.0.1:${port}`, cookie, accept: 'application/json' } });
      return { replica, status: res.status, user: res.headers.get('kubeflow-userid'), setCookie: res.headers.getSetCookie(), body: await res.text() };
    }));
    return Promise.all(pending.map((checks) => Promise.all(checks)));
  }

  /** Session refreshes over both replicas, by result (and error, when given). */
  async function refreshes(replicaPair: readonly RunningService[], result: 'ok' | 'rejected' | 'unavailable', error?: string): Promise<number> {
    let total = 0;
    for (const svc of replicaPair) {
      const text = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
      for (const line of text.split('\n')) {
        if (!line.startsWith(`oidc_authz_session_refreshes_total{result="${result}",`)) continue;
        if (error !== undefined && !line.includes(`error="${error}"`)) continue;
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  }

  test(`${ROUNDS} rounds of ${CHECKS_PER_USER} concurrent checks per session across both replicas: every answer 200, one refresh per session per round cluster-wide, none rejected, the cookie never changes`, async () => {
    const pair = await replicas(redisPort, 'redis');
    try {
      const cookies = await signIn(pair[0], redisPort);
      for (const cookie of cookies) expect(cookie).toMatch(/^oidc_authz=r1\.[^;]*$/);
      for (let round = 1; round <= ROUNDS; round++) {
        const before = await refreshes(pair, 'ok', 'none');
        clock.advance(PAST_REVALIDATION_MS);
        const answers = await concurrentChecks(pair, redisPort, cookies);
        answers.forEach((checks, person) => {
          expect({ round, person: PEOPLE[person]!.username, statuses: checks.map((c) => c.status) }).toEqual({ round, person: PEOPLE[person]!.username, statuses: Array(CHECKS_PER_USER).fill(200) });
          for (const answer of checks) {
            expect(answer.user).toBe(PEOPLE[person]!.email);
            // The session is renewed behind the handle: nothing for the browser to take.
            expect(answer.setCookie.filter((c) => c.startsWith('oidc_authz'))).toEqual([]);
          }
        });
        // A second refresh of a session would have spent its rotated token at Dex and been refused.
        expect({ round, refreshes: await refreshes(pair, 'ok', 'none') - before }).toEqual({ round, refreshes: PEOPLE.length });
        expect({ round, rejected: await refreshes(pair, 'rejected'), unavailable: await refreshes(pair, 'unavailable') }).toEqual({ round, rejected: 0, unavailable: 0 });
      }
      // Dex's side: no refresh token was presented twice.
      expect(strictDex.log()).not.toContain(DEX_REUSE);
      expect(strictDex.log()).not.toContain(DEX_REUSE_ON_UPDATE);
    } finally {
      await Promise.all(pair.map((svc) => svc.close()));
    }
  }, SLOW);

  test('the contrast, with cookie sessions: each replica refreshes with the same refresh token, Dex accepts one, so in every session the checks the other replica answers fail (401 session_revoked, or 503 when Dex answers the race 500)', async () => {
    const pair = await replicas(cookiePort, 'cookie');
    try {
      // Signing in again replaces each person's refresh token at Dex (the Redis sessions above are done).
      const cookies = await signIn(pair[0], cookiePort);
      clock.advance(PAST_REVALIDATION_MS);
      const answers = await concurrentChecks(pair, cookiePort, cookies);
      for (const checks of answers) {
        const winner = checks.find((c) => c.status === 200)!.replica;
        for (const answer of checks) {
          if (answer.replica === winner) {
            expect(answer.status).toBe(200);
            continue;
          }
          // Dex refuses the loser 400 invalid_request, or 500 when both looked the token up before either stored
          // its rotation (then a later check at the loser asks again and hears invalid_request).
          const refused = { status: answer.status, reason: (JSON.parse(answer.body) as { reason?: string }).reason };
          expect([{ status: 401, reason: 'session_revoked' }, { status: 503, reason: 'idp_unavailable' }]).toContainEqual(refused);
          expect(answer.setCookie).toEqual([]);
        }
      }
      expect(await refreshes(pair, 'ok', 'none')).toBe(PEOPLE.length);
      const rejected = await refreshes(pair, 'rejected', 'invalid_request');
      const failed = await refreshes(pair, 'unavailable', 'server_error');
      expect(rejected + failed).toBeGreaterThanOrEqual(PEOPLE.length);
      expect(await refreshes(pair, 'rejected')).toBe(rejected);
      expect(await refreshes(pair, 'unavailable')).toBe(failed);
      // Dex's side: each refusal we counted is one refresh token presented twice (its log line may come after its answer).
      const dexRefusals = () => ({ rejected: occurrences(strictDex.log(), DEX_REUSE), failed: occurrences(strictDex.log(), DEX_REUSE_ON_UPDATE) });
      await pollUntil(async () => dexRefusals(), (n) => n.rejected + n.failed >= rejected + failed, 5_000);
      expect(dexRefusals()).toEqual({ rejected, failed });
    } finally {
      await Promise.all(pair.map((svc) => svc.close()));
    }
  }, SLOW);
});
