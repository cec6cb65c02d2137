/**
 * Token introspection (RFC 7662) against a real Keycloak 26: its access tokens are JWTs (it issues no
 * opaque ones; opaque tokens are tested against a real opaque-token server in
 * test/integration/introspection.test.ts), so the issuer is configured with `jwt: always`: a verified
 * access token is also introspected, which is how a token revoked by ending the user's session stops
 * working before its exp. The introspection endpoint comes from Keycloak's discovery document and the
 * confidential client `oidc-authz` authenticates with client_secret_basic. Keycloak 26 answers
 * `active: false` unless the introspecting client is in the token's `aud` ("Client 'oidc-authz' is not in
 * the token audience" in its log), so the tokens introspected here are the `kubeflow-cli` client's, whose
 * audience mapper adds `oidc-authz` (docs: the same mapper is what an operator configures).
 * The service clock is moved to expire cached answers; nothing sleeps.
 */
import type { ConfigInput } from '../../src/config/schema.js';
import { apiCall, bearer, metricValue } from '../support/gateway-client.js';
import { createTestRealm, KeycloakAdmin, launchKeycloak, type RunningKeycloak, type TestRealm } from '../support/keycloak.js';
import { startService, tempFile, TestClock, type RunningService } from '../support/service.js';

const BOOT = 240_000;

let keycloak: RunningKeycloak | undefined;
let realm: TestRealm;
let svc: RunningService;
let wrongSecret: RunningService;
const clock = new TestClock();

const rules: NonNullable<ConfigInput['rules']> = [
  { name: 'workspace', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

function config(secret: string): ConfigInput {
  return {
    issuers: [{
      issuer: realm.issuer,
      // Tokens whose aud names the introspecting client: the only ones Keycloak introspects as active.
      audiences: [realm.clients.oidcAuthz.clientId],
      introspection: { clientId: realm.clients.oidcAuthz.clientId, clientSecretFile: tempFile(secret), jwt: 'always', cacheFor: '60s' },
    }],
    identity: { groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] },
    rules,
  };
}

beforeAll(async () => {
  keycloak = await launchKeycloak();
  const admin = new KeycloakAdmin(keycloak.url);
  await admin.login();
  realm = await createTestRealm(admin, { redirectUris: ['http://127.0.0.1/oauth2/callback'], postLogoutRedirectUris: [] });
  [svc, wrongSecret] = await Promise.all([
    startService(config(realm.clients.oidcAuthz.secret), { now: clock.now }),
    startService(config('not-the-client-secret')),
  ]);
}, BOOT);

afterAll(async () => {
  await Promise.all([svc?.close(), wrongSecret?.close()]);
  await keycloak?.stop();
});

/** A kubeflow-cli access token: aud holds oidc-authz (the client's audience mapper). */
const accessToken = async (username: 'alice' | 'bob') =>
  (await realm.passwordGrant(realm.clients.cli.clientId, undefined, username, realm.users[username].password)).access_token;
const introspections = (result: string) => metricValue(svc, `oidc_authz_introspections_total{issuer="${realm.issuer}",result="${result}"}`);

test('an active Keycloak access token → 200 (verified, then introspected once; the answer is cached)', async () => {
  const token = await accessToken('alice');
  const before = await introspections('active');
  const res = await apiCall(svc.url, '/authz/workspaces/ws-a/notebooks', bearer(token));
  // Status with body: a refusal names its reason in the failure message.
  expect(`${res.status} ${res.body}`).toMatch(/^200 /);
  expect(res.headers.get('kubeflow-userid')).toBe('alice@example.com');
  expect((await apiCall(svc.url, '/authz/workspaces/ws-b/notebooks', bearer(token))).status).toBe(403);
  expect(await introspections('active')).toBe(before + 1);
});

test('revoked: the user\'s sessions ended at Keycloak → 401 token_inactive once the cached answer is older than cacheFor', async () => {
  const token = await accessToken('bob');
  const first = await apiCall(svc.url, '/authz/pipelines/', bearer(token));
  expect(`${first.status} ${first.body}`).toMatch(/^200 /);
  await realm.logoutUser('bob');
  // Within cacheFor the cached answer stands: this is the documented revocation delay.
  expect((await apiCall(svc.url, '/authz/pipelines/', bearer(token))).status).toBe(200);
  clock.advance(61_000);
  const res = await apiCall(svc.url, '/authz/pipelines/', bearer(token));
  expect(res.status).toBe(401);
  expect(res.json).toMatchObject({ reason: 'token_inactive' });
  expect(await introspections('inactive')).toBeGreaterThanOrEqual(1);
});

test('a bearer that is not a JWT goes to Keycloak\'s introspection, which does not know it → 401 token_inactive', async () => {
  const res = await apiCall(svc.url, '/authz/pipelines/', bearer('an-opaque-string-keycloak-never-issued'));
  expect(res.status).toBe(401);
  expect(res.json).toMatchObject({ reason: 'token_inactive' });
});

test('Keycloak introspects as inactive a token whose aud lacks the introspecting client → 401 token_inactive', async () => {
  // oidc-authz's own access token: azp oidc-authz, aud "account" only. Accepted by the JWT checks with
  // authorizedParties, but Keycloak 26 will not vouch for it to a client outside its audience.
  const own = await realm.passwordGrant(realm.clients.oidcAuthz.clientId, realm.clients.oidcAuthz.secret, 'alice', realm.users.alice.password);
  const lenient = await startService({ ...config(realm.clients.oidcAuthz.secret), issuers: [{ ...config(realm.clients.oidcAuthz.secret).issuers![0]!, audiences: [], authorizedParties: [realm.clients.oidcAuthz.clientId] }] });
  try {
    const res = await apiCall(lenient.url, '/authz/pipelines/', bearer(own.access_token));
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ reason: 'token_inactive' });
  } finally {
    await lenient.close();
  }
});

test('wrong client secret: Keycloak refuses the introspection → 503 introspection_unavailable (a misconfiguration, not the caller\'s fault)', async () => {
  const res = await apiCall(wrongSecret.url, '/authz/pipelines/', bearer(await accessToken('alice')));
  expect(res.status).toBe(503);
  expect(res.json).toMatchObject({ reason: 'introspection_unavailable' });
});

test('Keycloak down: a token whose keys are cached but that cannot be introspected → 503 introspection_unavailable', async () => {
  const token = await accessToken('alice');
  // Keys fetched and cached while Keycloak is up (a token already checked above).
  await keycloak!.stop();
  keycloak = undefined;
  const res = await apiCall(svc.url, '/authz/pipelines/', bearer(token));
  expect(res.status).toBe(503);
  expect(res.json).toMatchObject({ reason: 'introspection_unavailable' });
  expect(res.headers.get('retry-after')).not.toBeNull();
});
