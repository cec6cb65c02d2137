/**
 * Delegated access for long jobs against a real Keycloak (26.7.3) behind a real Envoy, with a person
 * in headless Chromium: the offlineToken route sends the signed-in browser through a login asking
 * offline_access with consent, and its upstream (the echo app) receives the offline token once, in the
 * configured header; the token works at Keycloak; no other route gets it, nor a client's forged copy.
 */
import type { ConfigInput } from '../../src/config/schema.js';
import { cookieHeaderOf, Profiles, SLOW } from '../support/chromium.js';
import { apiCall, claimsOf } from '../support/gateway-client.js';
import type { TestRealm } from '../support/keycloak.js';
import { startKeycloakWithBrowser, type KeycloakWithBrowser } from '../support/keycloak-browser.js';
import { tempFile } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

const BOOT = 240_000;
const HEADER = 'x-offline-token';

const RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'job-grant', paths: ['/jobs/grant'], methods: ['GET'], allow: { groups: ['/ml'] }, offlineToken: { header: HEADER } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

let idp: KeycloakWithBrowser;
let realm: TestRealm;
let gateway: Gateway;
let profiles: Profiles;

beforeAll(async () => {
  idp = await startKeycloakWithBrowser();
  ({ realm, profiles } = idp);
  const { port } = idp;
  gateway = await startGateway({
    port,
    config: {
      oidc: { issuer: realm.issuer, clientId: realm.clients.oidcAuthz.clientId, clientSecretFile: tempFile(realm.clients.oidcAuthz.secret) },
      session: { secretsFile: tempFile('offline-token-suite-cookie-secret-0123456789'), secure: false },
      log: { level: 'debug', decisions: { enabled: true } },
      rules: RULES,
    },
  });
}, BOOT);

afterAll(async () => {
  await gateway?.stop();
  await idp?.close();
}, SLOW);

test('the offline route\'s upstream receives a working offline token once; other routes never do', async () => {
  const { context, page } = await profiles.open();
  const target = `${gateway.url}/jobs/grant`;
  const onKeycloak = (url: URL) => url.href.startsWith(`${realm.issuer}/`);
  const offlineStart = page.waitForRequest((r) => r.url().startsWith(`${gateway.url}/oauth2/start?`) && new URL(r.url()).searchParams.get('offline') === '1');
  const authorizeOffline = page.waitForRequest((r) => r.url().startsWith(`${realm.issuer}/protocol/openid-connect/auth?`) && new URL(r.url()).searchParams.get('prompt') === 'consent');
  await page.goto(target);
  // Keycloak's pages until we are back: its login form (no session yet), then its consent page if it shows one.
  for (let step = 0; step < 4 && page.url() !== target; step++) {
    await page.waitForURL((url) => url.href === target || onKeycloak(url));
    if (page.url() === target) break;
    const navigated = page.waitForEvent('framenavigated');
    if (await page.locator('#username').count() > 0) {
      await page.locator('#username').fill('alice');
      await page.locator('#password').fill(realm.users.alice.password);
    }
    await page.locator('#kc-login').click();
    await navigated;
  }
  await page.waitForURL(target);
  await offlineStart;
  const authorize = new URL((await authorizeOffline).url());
  expect(authorize.searchParams.get('scope')).toBe('openid offline_access');

  const seen = JSON.parse((await page.locator('#headers').textContent())!) as Record<string, string | undefined>;
  const offlineToken = seen[HEADER];
  expect(typeof offlineToken).toBe('string');
  expect(claimsOf(offlineToken!).typ).toBe('Offline');
  expect(seen['kubeflow-userid']).toBe('alice@example.com');
  // Our hand-over cookie never reaches the upstream.
  expect(seen.cookie ?? '').not.toContain('_login_offline');

  // It works: a job service mints access tokens with it (as our client, whose secret it would hold).
  const minted = await realm.refreshGrant(realm.clients.oidcAuthz.clientId, realm.clients.oidcAuthz.secret, offlineToken!);
  expect(claimsOf(minted.access_token).sub).toBe(realm.users.alice.id);

  // Once: the hand-over cookie is gone; the same route asked again by an API client gets no token.
  const cookie = await cookieHeaderOf(context, gateway.url);
  expect(cookie).not.toContain('_login_offline');
  const again = await apiCall(gateway.url, '/jobs/grant', { cookie });
  expect(again.status).toBe(403);
  expect(again.json).toMatchObject({ reason: 'offline_grant_required' });

  // Other routes: never the token, and a client's forged header is removed.
  const other = await apiCall(gateway.url, '/notebooks/x', { cookie, [HEADER]: 'forged' });
  expect(other.status).toBe(200);
  expect(other.echoed?.headers[HEADER]).toBeUndefined();

  // An offline login cannot be started for any other page.
  const elsewhere = await fetch(`${gateway.url}/oauth2/start?offline=1&rd=${encodeURIComponent(`${gateway.url}/notebooks/x`)}`, { redirect: 'manual' });
  expect(elsewhere.status).toBe(400);

  // Never logged (debug level: every decision is).
  expect(JSON.stringify(gateway.authz.logs)).not.toContain(offlineToken!);
}, SLOW * 2);
