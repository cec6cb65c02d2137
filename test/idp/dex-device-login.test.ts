/**
 * `oidc-authz login` / `token` / `logout` against a real Dex (v2.45.1, the device flow on by default) with a
 * public static client, as a Kubeflow user would run them: the built CLI polls while headless Chromium
 * approves the code on Dex's own /dex/device page, and the token it prints passes the bearer check of a
 * real service configured with that issuer (Dex's ID and access tokens carry aud = the client id, so
 * `audiences: [<client>]`). Nothing sleeps: the CLI's own polling is what the test waits for.
 */
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type { ConfigInput } from '../../src/config/schema.js';
import { launchChromium, Profiles, screenshot, SLOW } from '../support/chromium.js';
import { CliUser } from '../support/device-login.js';
import { startDex, type DexClient, type DexUser, type RunningDex } from '../support/dex.js';
import { claimsOf } from '../support/gateway-client.js';
import { startService, tempFile, type RunningService } from '../support/service.js';

const ALICE: DexUser = { username: 'alice', email: 'alice@example.com', password: 'alice-pw', groups: ['team-a', 'ml'] };
/** Kubeflow-style public client for the CLI: no secret, no redirect URIs (Dex then allows its device callback). */
const CLI_CLIENT: DexClient = { id: 'kubeflow-cli', public: true, redirectURIs: [] };
const TOKEN_LIFETIME_S = 120;

let dex: RunningDex;
let service: RunningService;
let chromium: Browser;
let profiles: Profiles;

beforeAll(async () => {
  dex = await startDex({ users: [ALICE], clients: [CLI_CLIENT], idTokenLifetime: `${TOKEN_LIFETIME_S}s` });
  // Bearer-only: what the README's "Tokens for scripts and SDKs" tells an operator to add for this client.
  const config: ConfigInput = {
    issuers: [{ issuer: dex.issuer, audiences: [CLI_CLIENT.id] }],
    rules: [{ name: 'team-a', paths: ['/team-a/**'], allow: { groups: ['team-a'] } }, { name: 'everything-else', paths: ['/**'], allow: 'authenticated' }],
  };
  [service, chromium] = await Promise.all([startService(config), launchChromium()]);
  profiles = new Profiles(chromium);
}, SLOW);

afterAll(async () => {
  await profiles?.closeAll();
  await chromium?.close();
  await service?.close();
  await dex?.stop();
}, SLOW);

/** The service's answer to an API call carrying `token` (the check as Envoy sends it). */
async function check(token: string, path = '/team-a/pipelines'): Promise<{ status: number; user: string | null; groups: string | null; body: string }> {
  const response = await fetch(`${service.url}/authz${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json', host: 'kubeflow.example.com' } });
  return { status: response.status, user: response.headers.get('kubeflow-userid'), groups: response.headers.get('kubeflow-groups'), body: await response.text() };
}

/** On Dex's device page: the code is prefilled from verification_uri_complete; submit it, then log in. */
async function approveOnDex(page: Page, url: string, userCode: string, user: DexUser): Promise<void> {
  await page.goto(url);
  const code = page.locator('#user_code');
  expect(await code.inputValue()).toBe(userCode);
  await page.getByRole('button', { name: 'Submit' }).click();
  await page.getByLabel('Email Address').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByRole('button', { name: 'Login' }).click();
  await page.getByText('Return to your device to continue').waitFor();
}

/** A user's machine that has logged in through the device flow; how long the login took. */
async function loggedIn(): Promise<{ user: CliUser; tookMs: number; stderr: string }> {
  const user = new CliUser();
  const login = user.login(['--issuer', dex.issuer, '--client-id', CLI_CLIENT.id]);
  const { url, userCode } = await login.prompt;
  const { page } = await profiles.open();
  await approveOnDex(page, url, userCode, ALICE);
  const result = await login.done;
  expect(result).toMatchObject({ code: 0, stdout: '' });
  return { user, tookMs: Date.now() - login.startedAt, stderr: result.stderr };
}

describe('device login at Dex with the built CLI', () => {
  test('the CLI prints Dex\'s /dex/device URL and the code, polls while Chromium approves, stores the tokens 0600; `token` prints one ID token that passes the check', async () => {
    const user = new CliUser();
    const login = user.login(['--issuer', dex.issuer, '--client-id', CLI_CLIENT.id]);
    const { url, userCode } = await login.prompt;
    expect(url).toBe(`${dex.issuer}/device?user_code=${userCode}`);
    expect(userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    const { page } = await profiles.open();
    await approveOnDex(page, url, userCode, ALICE);
    await screenshot(page, 'dex-device-approved.png');
    const result = await login.done;
    const tookMs = Date.now() - login.startedAt;
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`Logged in as alice@example\\.com at ${dex.issuer.replace(/[.]/g, '\\.')} \\(client kubeflow-cli, profile default\\) after \\d+ s and \\d+ polls?`));
    // Polled at the interval the IdP asked for (5 s), never faster: the seconds it took cover every poll.
    const [seconds, polls] = /after (\d+) s and (\d+) polls?/.exec(result.stderr)!.slice(1).map(Number) as [number, number];
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(seconds).toBeGreaterThanOrEqual(5 * polls);
    process.stdout.write(`Dex device login took ${tookMs} ms: ${/after .*;/.exec(result.stderr)?.[0]}\n`);

    expect(statSync(user.tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(user.tokenFile)).mode & 0o777).toBe(0o700);
    const stored = user.tokens().default!;
    // Every default scope is Dex's, offline_access included: there is a refresh token.
    expect(stored).toMatchObject({ issuer: dex.issuer, clientId: 'kubeflow-cli', scope: 'openid email profile groups offline_access', refreshToken: expect.any(String) });

    const printed = await user.cli(['token']);
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    expect(printed.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const idToken = printed.stdout.trim();
    expect(idToken).toBe(stored.idToken);
    expect(claimsOf(idToken)).toMatchObject({ iss: dex.issuer, aud: 'kubeflow-cli', email: 'alice@example.com', groups: ['team-a', 'ml'] });
    expect(await check(idToken)).toMatchObject({ status: 200, user: 'alice@example.com', groups: 'team-a,ml' });

    // Dex's access token is a JWT for the same client: it passes too.
    const access = await user.cli(['token', '--access-token']);
    expect(access.code).toBe(0);
    expect(access.stdout.trim()).toBe(stored.accessToken);
    expect((await check(access.stdout.trim())).status).toBe(200);
  }, SLOW);

  test('`token --min-valid` beyond the token\'s life refreshes at Dex: the stored refresh token rotates, the new ID token passes; a spent refresh token says "log in again"', async () => {
    const { user } = await loggedIn();
    const before = user.tokens().default!;
    const refreshed = await user.cli(['token', '--min-valid', '1h']);
    expect(refreshed.code).toBe(0);
    // Dex's tokens live 120 s here, less than asked: the fresh one is printed, with a warning on stderr.
    expect(refreshed.stderr).toMatch(/^oidc-authz token: refreshed, but the IdP's token is valid for 1[12]\d s, less than --min-valid 3600 s\n$/);
    const after = user.tokens().default!;
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(after.idToken).not.toBe(before.idToken);
    expect(refreshed.stdout).toBe(`${after.idToken}\n`);
    expect(await check(after.idToken!)).toMatchObject({ status: 200, user: 'alice@example.com' });
    // Within min-valid again: no refresh, the stored token as is.
    expect(await user.cli(['token'])).toMatchObject({ code: 0, stdout: `${after.idToken}\n`, stderr: '' });

    // Another machine holding the old refresh token (Dex keeps no reuse interval by default): refused.
    const { user: copy } = await loggedIn();
    writeFileSync(copy.tokenFile, JSON.stringify({ version: 1, profiles: { default: before } }), { mode: 0o600 });
    const refused = await copy.cli(['token', '--min-valid', '1h']);
    // Dex calls a spent refresh token invalid_request, not invalid_grant: still "log in again" (exit 3).
    expect(refused).toMatchObject({ code: 3, stdout: '', stderr: 'oidc-authz token: the IdP refused the stored refresh token (invalid_request: Refresh token is invalid or has already been claimed by another client.): run oidc-authz login again\n' });
  }, SLOW);

  test('three `token` runs in parallel, each refreshing (file lock): all succeed although Dex refuses a second use of a refresh token', async () => {
    const { user } = await loggedIn();
    const runs = await Promise.all([1, 2, 3].map(() => user.cli(['token', '--min-valid', '1h'])));
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0]);
    // One after the other, each with the refresh token the previous one stored: three different ID tokens.
    expect(new Set(runs.map((run) => run.stdout)).size).toBe(3);
    expect(runs.map((run) => run.stdout)).toContain(`${user.tokens().default!.idToken}\n`);
    for (const run of runs) expect((await check(run.stdout.trim())).status).toBe(200);
  }, SLOW);

  test('`logout` forgets the tokens and says Dex cannot revoke them; `token` then exits 3', async () => {
    const { user } = await loggedIn();
    const out = await user.cli(['logout']);
    expect(out).toMatchObject({ code: 0, stdout: '' });
    expect(out.stderr).toBe(`Logged out (profile default); ${dex.issuer} has no revocation endpoint, so the refresh token stays valid at the IdP until it expires\n`);
    expect(user.tokens()).toEqual({});
    expect(await user.cli(['token'])).toMatchObject({ code: 3, stdout: '', stderr: expect.stringMatching(/^oidc-authz token: not logged in \(profile default, .*\): run oidc-authz login\n$/) });
  }, SLOW);

  test('Kubeflow\'s shape (Dex is also the browser-login issuer): the CLI\'s token passes once oidc.audiences lists the CLI client, and is refused (wrong_audience) before', async () => {
    const { user } = await loggedIn();
    const idToken = (await user.cli(['token'])).stdout.trim();
    const kubeflow = (audiences: string[]): ConfigInput => ({
      publicUrl: 'https://kubeflow.example.com',
      oidc: { issuer: dex.issuer, clientId: 'kubeflow-oidc-authservice', clientSecretFile: tempFile('unused-by-bearer-checks'), audiences },
      session: { secretsFile: tempFile('dex-device-suite-cookie-secret-0123456789abcdef') },
      rules: [{ name: 'everything-else', paths: ['/**'], allow: 'authenticated' }],
    });
    for (const [audiences, status] of [[['kubeflow-cli'], 200], [[], 401]] as const) {
      const kubeflowService = await startService(kubeflow([...audiences]));
      try {
        const response = await fetch(`${kubeflowService.url}/authz/pipeline/apis/v2beta1/pipelines`, { headers: { authorization: `Bearer ${idToken}`, accept: 'application/json', host: 'kubeflow.example.com' } });
        expect(response.status).toBe(status);
        if (status === 200) expect(response.headers.get('kubeflow-userid')).toBe('alice@example.com');
        else expect(await response.json()).toEqual({ error: 'unauthorized', reason: 'wrong_audience' });
      } finally {
        await kubeflowService.close();
      }
    }
  }, SLOW);

  test('nobody approves before the code expires: Dex answers expired_token, the CLI says so (exit 5) and stores nothing', async () => {
    // A Dex of its own whose device codes live 2 s (expiry.deviceRequests); Dex's interval stays 5 s.
    const shortDex = await startDex({ users: [ALICE], clients: [CLI_CLIENT], deviceRequestLifetime: '2s' });
    try {
      const user = new CliUser();
      const login = user.login(['--issuer', shortDex.issuer, '--client-id', CLI_CLIENT.id]);
      expect((await login.prompt).url).toMatch(new RegExp(`^${shortDex.issuer}/device\\?user_code=`));
      const result = await login.done;
      expect(result.code).toBe(5);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/Waiting for approval \(the code expires in 2 s\)…\noidc-authz login: the code [A-Z]{4}-[A-Z]{4} expired before it was approved \(expired_token, after 2 s\): run oidc-authz login again\n$/);
      expect(() => statSync(user.tokenFile)).toThrow(/ENOENT/);
    } finally {
      await shortDex.stop();
    }
  }, SLOW);

  test('a token file others can read is refused (exit 6), token not printed', async () => {
    const { user } = await loggedIn();
    chmodSync(user.tokenFile, 0o640);
    const refused = await user.cli(['token']);
    expect(refused).toMatchObject({ code: 6, stdout: '' });
    expect(refused.stderr).toContain('is readable or writable by group or others (mode 0640)');
  }, SLOW);
});
