/**
 * `oidc-authz login` / `token` / `logout` against a real Keycloak (26.7.3): the realm's public `kubeflow-cli`
 * client with "OAuth 2.0 Device Authorization Grant" on (docs/idp/keycloak.md's CLI client: group mapper,
 * audience mapper for oidc-authz). The built CLI polls while headless Chromium logs in and approves (or
 * refuses) on Keycloak's /realms/<r>/device page. The printed tokens pass the bearer check of real services
 * configured the two ways the README names: `authorizedParties: [kubeflow-cli]` (azp; ID and access token)
 * or `audiences: [oidc-authz]` (the audience mapper; access token only). Nothing sleeps.
 */
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema.js';
import { launchChromium, Profiles, screenshot, SLOW } from '../support/chromium.js';
import { CliUser } from '../support/device-login.js';
import { claimsOf } from '../support/gateway-client.js';
import { createTestRealm, KeycloakAdmin, launchKeycloak, type RunningKeycloak, type TestRealm, type TestUsername } from '../support/keycloak.js';
import { startService, type RunningService } from '../support/service.js';

/** Keycloak boots in ~25–70 s from the template, and the realm takes 10–30 s more. */
const BOOT = 240_000;
const CLI_CLIENT = 'kubeflow-cli';

let keycloak: RunningKeycloak;
let realm: TestRealm;
let chromium: Browser;
let profiles: Profiles;
/** Accepts the CLI client's tokens by azp. */
let byAzp: RunningService;
/** Accepts tokens whose aud holds oidc-authz (the CLI client's audience mapper puts it in access tokens). */
let byAudience: RunningService;
let cliClientUuid: string;

function serviceConfig(entry: { audiences?: string[]; authorizedParties?: string[] }): ConfigInput {
  return {
    issuers: [{ issuer: realm.issuer, ...entry }],
    identity: { groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] },
    rules: [{ name: 'ws-a', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } }, { name: 'everything-else', paths: ['/**'], allow: 'authenticated' }],
  };
}

beforeAll(async () => {
  [keycloak, chromium] = await Promise.all([launchKeycloak(), launchChromium()]);
  profiles = new Profiles(chromium);
  const admin = new KeycloakAdmin(keycloak.url);
  await admin.login();
  realm = await createTestRealm(admin, { redirectUris: ['http://127.0.0.1/unused'], postLogoutRedirectUris: [] });
  // What docs/idp/keycloak.md asks of the CLI client: the device grant switched on (off by default).
  const client = await admin.getClient(realm.name, CLI_CLIENT);
  cliClientUuid = client.id;
  await admin.updateClient(realm.name, { ...client, attributes: { ...client.attributes, 'oauth2.device.authorization.grant.enabled': 'true' } });
  [byAzp, byAudience] = await Promise.all([
    startService(serviceConfig({ authorizedParties: [CLI_CLIENT] })),
    startService(serviceConfig({ audiences: ['oidc-authz'] })),
  ]);
}, BOOT);

afterAll(async () => {
  await profiles?.closeAll();
  await chromium?.close();
  await byAzp?.close();
  await byAudience?.close();
  await keycloak?.stop();
}, SLOW);

async function check(service: RunningService, token: string, path = '/workspaces/ws-a/nb'): Promise<{ status: number; user: string | null; body: string }> {
  const response = await fetch(`${service.url}/authz${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json', host: 'kubeflow.example.com' } });
  return { status: response.status, user: response.headers.get('kubeflow-userid'), body: await response.text() };
}

/** On Keycloak's device page (code from verification_uri_complete): log in, then answer the consent screen. */
async function answerOnKeycloak(page: Page, url: string, username: TestUsername, grant: boolean): Promise<void> {
  await page.goto(url);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(realm.users[username].password);
  await page.locator('#kc-login').click();
  await page.getByText('Do you grant these access privileges?').waitFor();
  await page.locator(grant ? '#kc-login' : '#kc-cancel').click();
  if (grant) await page.getByText('Device Login Successful').waitFor();
}

async function loggedIn(username: TestUsername = 'alice', args: string[] = []): Promise<{ user: CliUser; tookMs: number; stderr: string }> {
  const user = new CliUser();
  const login = user.login(['--issuer', realm.issuer, '--client-id', CLI_CLIENT, ...args]);
  const { url } = await login.prompt;
  const { page } = await profiles.open();
  await answerOnKeycloak(page, url, username, true);
  const result = await login.done;
  expect(result).toMatchObject({ code: 0, stdout: '' });
  return { user, tookMs: Date.now() - login.startedAt, stderr: result.stderr };
}

const offlineSessions = async (username: TestUsername) =>
  (await realm.admin.request<unknown[]>('GET', `/${realm.name}/users/${realm.users[username].id}/offline-sessions/${cliClientUuid}`)).length;

describe('device login at Keycloak with the built CLI', () => {
  test('login prints /realms/<r>/device?user_code=…, polls while Chromium logs in and consents; ID token passes by azp, access token by azp and by the audience mapper', async () => {
    const user = new CliUser();
    const login = user.login(['--issuer', realm.issuer, '--client-id', CLI_CLIENT]);
    const { url, userCode } = await login.prompt;
    expect(url).toBe(`${realm.issuer}/device?user_code=${userCode}`);
    const { page } = await profiles.open();
    await answerOnKeycloak(page, url, 'alice', true);
    await screenshot(page, 'keycloak-device-approved.png');
    const result = await login.done;
    const tookMs = Date.now() - login.startedAt;
    expect(result).toMatchObject({ code: 0, stdout: '' });
    expect(result.stderr).toMatch(/Logged in as alice@example\.com at .* \(client kubeflow-cli, profile default\) after \d+ s and \d+ polls?/);
    // Polled at the interval the IdP asked for (5 s), never faster: the seconds it took cover every poll.
    const [seconds, polls] = /after (\d+) s and (\d+) polls?/.exec(result.stderr)!.slice(1).map(Number) as [number, number];
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeGreaterThanOrEqual(5 * polls);
    process.stdout.write(`Keycloak device login took ${tookMs} ms: ${/after .*;/.exec(result.stderr)?.[0]}\n`);
    expect(statSync(user.tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(user.tokenFile)).mode & 0o777).toBe(0o700);
    // Keycloak has no "groups" scope: the default scopes left it out, and the login was not refused for it.
    expect(user.tokens().default).toMatchObject({ scope: expect.stringContaining('offline_access'), refreshToken: expect.any(String) });
    expect(user.tokens().default!.scope.split(' ')).not.toContain('groups');
    // offline_access: the login is a Keycloak offline session.
    expect(await offlineSessions('alice')).toBe(1);

    const id = await user.cli(['token']);
    expect(id).toMatchObject({ code: 0, stderr: '' });
    const idToken = id.stdout.trim();
    expect(id.stdout).toBe(`${idToken}\n`);
    expect(claimsOf(idToken)).toMatchObject({ iss: realm.issuer, aud: CLI_CLIENT, azp: CLI_CLIENT, email: 'alice@example.com' });
    expect(await check(byAzp, idToken)).toMatchObject({ status: 200, user: 'alice@example.com' });
    // The ID token's aud is the CLI client only: a service that checks aud for oidc-authz refuses it.
    const refused = await check(byAudience, idToken);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toEqual({ error: 'unauthorized', reason: 'wrong_audience' });

    const access = await user.cli(['token', '--access-token']);
    expect(access.code).toBe(0);
    const accessToken = access.stdout.trim();
    expect(claimsOf(accessToken)).toMatchObject({ azp: CLI_CLIENT, aud: expect.arrayContaining(['oidc-authz']) });
    expect(await check(byAzp, accessToken)).toMatchObject({ status: 200, user: 'alice@example.com' });
    expect(await check(byAudience, accessToken)).toMatchObject({ status: 200, user: 'alice@example.com' });
    // Groups from Keycloak's group mapper: bob is not in ws-a.
    expect((await check(byAzp, accessToken, '/workspaces/ws-b/nb')).status).toBe(403);
  }, SLOW);

  test('"No" on the consent screen: the CLI says the login was refused (access_denied, exit 4) and stores nothing', async () => {
    const user = new CliUser();
    const login = user.login(['--issuer', realm.issuer, '--client-id', CLI_CLIENT]);
    const { url } = await login.prompt;
    const { page } = await profiles.open();
    await answerOnKeycloak(page, url, 'bob', false);
    const result = await login.done;
    expect(result.code).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/\noidc-authz login: the login was refused on the verification page \(access_denied\): nothing was stored; run oidc-authz login again to retry\n$/);
    expect(() => statSync(user.tokenFile)).toThrow(/ENOENT/);
  }, SLOW);

  test('`token --min-valid` past the 120 s tokens refreshes at Keycloak and stores the rotated tokens; the new token passes', async () => {
    const { user } = await loggedIn('alice');
    const before = user.tokens().default!;
    const refreshed = await user.cli(['token', '--min-valid', '10m', '--access-token']);
    expect(refreshed.code).toBe(0);
    expect(refreshed.stderr).toMatch(/^oidc-authz token: refreshed, but the IdP's token is valid for 1[12]\d s, less than --min-valid 600 s\n$/);
    const after = user.tokens().default!;
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.idToken).not.toBe(before.idToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(refreshed.stdout).toBe(`${after.accessToken}\n`);
    expect(await check(byAudience, after.accessToken)).toMatchObject({ status: 200, user: 'alice@example.com' });
  }, SLOW);

  test('`logout` revokes the refresh token at Keycloak (the offline session ends); a kept copy of the file then gets "log in again" (exit 3)', async () => {
    const { user } = await loggedIn('carol');
    expect(await offlineSessions('carol')).toBe(1);
    const copyHome = new CliUser();
    mkdirSync(dirname(copyHome.tokenFile), { recursive: true, mode: 0o700 });
    copyFileSync(user.tokenFile, copyHome.tokenFile);

    const out = await user.cli(['logout']);
    expect(out).toEqual({ code: 0, stdout: '', stderr: 'Logged out (profile default); the refresh token is revoked at the IdP\n' });
    expect(user.tokens()).toEqual({});
    expect(await offlineSessions('carol')).toBe(0);

    const refused = await copyHome.cli(['token', '--min-valid', '10m']);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^oidc-authz token: the IdP refused the stored refresh token \(invalid_grant: .*\): run oidc-authz login again\n$/);
  }, SLOW);

  test('profiles: two logins side by side in one file, each `token --profile` its own user', async () => {
    const { user } = await loggedIn('alice', ['--profile', 'alice']);
    const login = user.login(['--issuer', realm.issuer, '--client-id', CLI_CLIENT, '--profile', 'bob']);
    const { url } = await login.prompt;
    const { page } = await profiles.open();
    await answerOnKeycloak(page, url, 'bob', true);
    expect((await login.done).code).toBe(0);
    expect(Object.keys(user.tokens()).sort()).toEqual(['alice', 'bob']);
    for (const [profile, email] of [['alice', 'alice@example.com'], ['bob', 'bob@example.com']] as const) {
      const printed = await user.cli(['token', '--profile', profile]);
      expect((await check(byAzp, printed.stdout.trim(), '/notebooks/')).user).toBe(email);
    }
    expect(join(user.configHome, 'oidc-authz', 'tokens.json')).toBe(user.tokenFile);
  }, SLOW);
});
