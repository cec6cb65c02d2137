/**
 * Per-route token exchange against a real Keycloak (26.7.3, Standard Token Exchange v2 enabled on our
 * client) behind a real Envoy configured from our extension provider. The caller is an API client with
 * a token of the CLI client, whose audience mapper names oidc-authz (Keycloak exchanges only tokens
 * whose audience holds the requesting client). The upstream is the echo app: what it shows is what an
 * upstream behind the gateway receives.
 */
import type { ConfigInput } from '../../src/config/schema.js';
import { cookieHeaderOf, Profiles, SLOW } from '../support/chromium.js';
import { apiCall, bearer, claimsOf, metricValue } from '../support/gateway-client.js';
import type { TestRealm, TestUsername } from '../support/keycloak.js';
import { startKeycloakWithBrowser, type KeycloakWithBrowser } from '../support/keycloak-browser.js';
import { tempFile } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

/** Keycloak's realm boots in ~25 s from the template, and the realm takes a few more. */
const BOOT = 240_000;

const RULES: NonNullable<ConfigInput['rules']> = [
  // ws-a is a client of the realm: the audience a workspace service checks.
  { name: 'ws-a-api', paths: ['/ws-a/**'], allow: 'authenticated', upstreamToken: { exchange: { audience: 'ws-a' } } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

let idp: KeycloakWithBrowser;
let realm: TestRealm;
let gateway: Gateway;
let profiles: Profiles;

beforeAll(async () => {
  idp = await startKeycloakWithBrowser();
  ({ realm, profiles } = idp);
  const { port, admin } = idp;
  // README "Token exchange": the requesting client must be confidential with standard token exchange on.
  const client = await admin.getClient(realm.name, realm.clients.oidcAuthz.clientId);
  await admin.updateClient(realm.name, { ...client, attributes: { ...client.attributes, 'standard.token.exchange.enabled': 'true' } });
  gateway = await startGateway({
    port,
    config: {
      oidc: {
        issuer: realm.issuer,
        clientId: realm.clients.oidcAuthz.clientId,
        clientSecretFile: tempFile(realm.clients.oidcAuthz.secret),
      },
      session: { secretsFile: tempFile('token-exchange-suite-cookie-secret-0123456789'), secure: false },
      log: { decisions: { enabled: true } },
      rules: RULES,
    },
  });
}, BOOT);

afterAll(async () => {
  await gateway?.stop();
  await idp?.close();
}, BOOT);

/** An access token of the CLI client (aud: oidc-authz through its audience mapper, and the clients whose roles the user holds). */
async function cliToken(username: TestUsername): Promise<string> {
  const tokens = await realm.passwordGrant(realm.clients.cli.clientId, undefined, username, realm.users[username].password);
  return tokens.access_token;
}

const exchanges = (result: string, error = 'none') => metricValue(gateway.authz, `oidc_authz_token_exchanges_total{result="${result}",error="${error}"}`);

test('the exchange route\'s upstream gets a token for the configured audience instead of the caller\'s; another route gets the caller\'s own; the second request is a cache hit', async () => {
  const token = await cliToken('alice');
  expect(claimsOf(token).aud).toEqual(expect.arrayContaining(['oidc-authz']));
  const [okBefore, hitsBefore] = [await exchanges('ok'), await exchanges('hit')];

  const first = await apiCall(gateway.url, '/ws-a/runs', bearer(token));
  expect(first.status).toBe(200);
  const upstreamAuthorization = String(first.echoed?.headers.authorization);
  expect(upstreamAuthorization).toMatch(/^Bearer /);
  const exchanged = upstreamAuthorization.slice('Bearer '.length);
  expect(exchanged).not.toBe(token);
  const claims = claimsOf(exchanged);
  // Restricted to the configured audience, issued to us, for the same person.
  expect(claims.aud).toBe('ws-a');
  expect(claims.azp).toBe('oidc-authz');
  expect(claims.sub).toBe(claimsOf(token).sub);
  expect(first.echoed?.headers['kubeflow-userid']).toBe('alice@example.com');

  // Another route: no exchange; the caller's own header passes through unchanged, as before this feature.
  const other = await apiCall(gateway.url, '/notebooks/x', bearer(token));
  expect(other.status).toBe(200);
  expect(other.echoed?.headers.authorization).toBe(`Bearer ${token}`);

  const second = await apiCall(gateway.url, '/ws-a/other', bearer(token));
  expect(second.echoed?.headers.authorization).toBe(upstreamAuthorization);
  expect(await exchanges('ok')).toBe(okBefore + 1);
  expect(await exchanges('hit')).toBe(hitsBefore + 1);
}, 60_000);

test('Keycloak refuses an audience the user has no role in: 403 exchange_refused, counted with the IdP\'s error and logged', async () => {
  // bob holds no role of ws-a: Keycloak answers invalid_request ("Requested audience not available").
  const token = await cliToken('bob');
  const answer = await apiCall(gateway.url, '/ws-a/runs', bearer(token));
  expect(answer.status).toBe(403);
  expect(answer.json).toEqual({ error: 'forbidden', reason: 'exchange_refused', rule: 'ws-a-api', exchangeError: 'invalid_request' });
  expect(await exchanges('refused', 'invalid_request')).toBeGreaterThanOrEqual(1);
  const line = gateway.authz.logs.find((l) => l.msg === 'decision' && l.reason === 'exchange_refused');
  expect(line).toMatchObject({ decision: 'forbidden', status: 403, rule: 'ws-a-api', exchangeError: 'invalid_request' });
  expect(JSON.stringify(gateway.authz.logs)).not.toContain(token);
  // Bob's other routes are unaffected.
  expect((await apiCall(gateway.url, '/notebooks/x', bearer(token))).status).toBe(200);
}, 60_000);

test('a browser session\'s access token is exchanged too (kept in the session because a rule exchanges)', async () => {
  const { context, page } = await profiles.open();
  const target = `${gateway.url}/notebooks/`;
  await page.goto(target);
  await page.waitForURL((url) => url.href.startsWith(`${realm.issuer}/`));
  await page.locator('#username').fill('alice');
  await page.locator('#password').fill(realm.users.alice.password);
  await page.locator('#kc-login').click();
  await page.waitForURL(target);
  const cookie = await cookieHeaderOf(context, gateway.url);

  const answer = await apiCall(gateway.url, '/ws-a/runs', { cookie });
  expect(answer.status).toBe(200);
  const exchanged = String(answer.echoed?.headers.authorization).slice('Bearer '.length);
  expect(claimsOf(exchanged)).toMatchObject({ aud: 'ws-a', azp: 'oidc-authz', sub: realm.users.alice.id });
  // Another route: no authorization is set for a session.
  expect((await apiCall(gateway.url, '/notebooks/x', { cookie })).echoed?.headers.authorization).toBeUndefined();
}, SLOW);
