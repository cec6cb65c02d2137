/**
 * The check endpoint with bearer JWTs, against real JWKS issuers on 127.0.0.1 (keys made by jose).
 */
import { createHmac } from 'node:crypto';
import request from 'supertest';
import type { ConfigInput } from '../../src/config/schema.js';
import { createSigningKey, startIssuer, type SigningKey, type TestIssuer } from '../support/issuer.js';
import { startService, type RunningService } from '../support/service.js';

const CLIENT_ID = 'kubeflow-oidc-authservice';
const M2M_AUDIENCE = 'istio-ingressgateway.istio-system.svc.cluster.local';

let idp: TestIssuer;
let cluster: TestIssuer;
let rsa: SigningKey;
let ec: SigningKey;
let ed: SigningKey;
let svc: RunningService;

const rules: NonNullable<ConfigInput['rules']> = [
  { name: 'static', paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
  { name: 'admin-block', paths: ['/internal/**'], allow: 'deny' },
  { name: 'workspace-read', paths: ['/workspaces/{ws}/**'], methods: ['GET'], allow: { groups: ['{ws}'] } },
  { name: 'workspace-write', paths: ['/workspaces/{ws}/**'], allow: { claims: { 'resource_access.{ws}.roles': 'ws_access' } } },
  { name: 'corp-only', hosts: ['corp.example.com'], paths: ['/**'], allow: { emailDomains: ['example.com'] } },
  { name: 'pipelines-runner', paths: ['/pipelines/runner/**'], allow: { users: ['system:serviceaccount:kubeflow:pipeline-runner'] } },
  { name: 'team', paths: ['/team/{name}/**'], allow: { anyOf: [{ groups: ['admins'] }, { users: ['{name}'] }] } },
  { name: 'everything-else', hosts: ['kubeflow.example.com'], paths: ['/**'], allow: 'authenticated' },
];

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([createSigningKey('RS256', 'rsa-1'), createSigningKey('ES256', 'ec-1'), createSigningKey('EdDSA', 'ed-1')]);
  idp = await startIssuer([rsa, ec], '/dex');
  cluster = await startIssuer([ed], '/k8s');
  svc = await startService({
    issuers: [
      { issuer: idp.issuer, audiences: [CLIENT_ID] },
      { issuer: cluster.issuer, audiences: [M2M_AUDIENCE], jwksUri: cluster.jwksUri, userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' },
    ],
    identity: { userIdTransformers: [{ match: '^(.*)@users\\.example\\.com$', replace: '$1' }] },
    jwks: { cooldown: '0s' },
    rules,
  });
});

afterAll(async () => {
  await svc.close();
  await Promise.all([idp.stop(), cluster.stop()]);
});

const userToken = (claims: Record<string, unknown> = {}, options?: Parameters<TestIssuer['sign']>[1]) =>
  idp.sign({ aud: CLIENT_ID, sub: 'user-1', email: 'alice@users.example.com', email_verified: true, groups: ['team-a', 'ml'], ...claims }, options);

const check = (method: string, path: string, token?: string, host = 'kubeflow.example.com') => {
  const req = request(svc.url)[method.toLowerCase() as 'get'](`/authz${path}`).set('host', host);
  return token === undefined ? req : req.set('authorization', `Bearer ${token}`);
};

function removedHeaders(res: request.Response): string[] {
  return String(res.headers['x-envoy-auth-headers-to-remove'] ?? '').split(',');
}

describe('valid tokens', () => {
  test('RS256 ID token of the IdP → 200 with transformed user id, comma-joined groups', async () => {
    const res = await check('GET', '/pipelines/', await userToken());
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBe('alice');
    expect(res.headers['kubeflow-groups']).toBe('team-a,ml');
    expect(removedHeaders(res)).toEqual(expect.arrayContaining(['kubeflow_userid', 'kubeflow_groups', 'x-auth-request-user']));
    expect(removedHeaders(res)).not.toContain('kubeflow-userid');
    expect(removedHeaders(res)).not.toContain('kubeflow-groups');
  });

  test('ES256 key of the same issuer → 200', async () => {
    const res = await check('GET', '/pipelines/', await userToken({}, { key: ec }));
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBe('alice');
  });

  test('EdDSA service-account token of the cluster issuer → 200 with sub as user id, empty groups', async () => {
    const token = await cluster.sign({ aud: [M2M_AUDIENCE], sub: 'system:serviceaccount:kubeflow:pipeline-runner', 'kubernetes.io': { namespace: 'kubeflow' } });
    const res = await check('POST', '/pipelines/runner/apis/v2/runs', token);
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBe('system:serviceaccount:kubeflow:pipeline-runner');
    expect(res.headers['kubeflow-groups']).toBe('');
  });

  test('every method reaches the check', async () => {
    const token = await userToken();
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const res = await check(method, '/pipelines/x', token);
      expect(res.status).toBe(200);
    }
  });

  test('the verified token is cached: the second check needs no JWKS fetch', async () => {
    const token = await userToken({ jti: 'cache-probe' });
    await check('GET', '/a', token).expect(200);
    const fetches = idp.hitsOf('/jwks');
    const sizeBefore = svc.service.bearer!.cacheSize;
    await check('GET', '/b', token).expect(200);
    expect(idp.hitsOf('/jwks')).toBe(fetches);
    expect(svc.service.bearer!.cacheSize).toBe(sizeBefore);
  });
});

describe('invalid tokens → 401 with WWW-Authenticate', () => {
  const now = () => Math.floor(Date.now() / 1000);

  test.each<[string, () => Promise<string>, string]>([
    ['expired', () => userToken({ exp: now() - 3600, iat: now() - 7200 }), 'token_expired'],
    ['not yet valid', () => userToken({ nbf: now() + 3600 }), 'token_not_yet_valid'],
    ['wrong audience', () => userToken({ aud: 'another-client' }), 'wrong_audience'],
    ['no exp', () => userToken({ exp: undefined }), 'missing_claim'],
    ['unverified email used as user id', () => userToken({ email_verified: false }), 'unverified_email'],
    ['no email at all', () => userToken({ email: undefined }), 'missing_user_id'],
    ['an email without email_verified (nOAuth)', () => userToken({ email_verified: undefined }), 'unverified_email'],
    ['an IdP person whose email is a service account\'s sub (issue 13)', () => userToken({ email: 'system:serviceaccount:kubeflow:pipeline-runner' }), 'invalid_user_id'],
    ['a service-account token whose sub is outside system:serviceaccount: (userIdMustStartWith)', () => cluster.sign({ aud: [M2M_AUDIENCE], sub: 'alice' }), 'invalid_user_id'],
  ])('%s', async (_name, makeToken, reason) => {
    const res = await check('GET', '/pipelines/', await makeToken());
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unauthorized', reason });
    expect(res.headers['www-authenticate']).toBe(`Bearer realm="oidc-authz", error="invalid_token", error_description="${reason}"`);
    expect(res.headers['kubeflow-userid']).toBeUndefined();
  });

  test('an unknown issuer is named in the answer and the log: the clue to a wrong issuer spelling', async () => {
    const res = await check('GET', '/pipelines/', await userToken({ iss: 'http://localhost:8080/realms/kubeflow' }));
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unauthorized', reason: 'unknown_issuer', issuer: 'http://localhost:8080/realms/kubeflow' });
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oidc-authz", error="invalid_token", error_description="unknown_issuer"');
    expect(svc.logs.findLast((l) => l.msg === 'check denied')).toMatchObject({ reason: 'unknown_issuer', issuer: 'http://localhost:8080/realms/kubeflow' });
    // Only printable characters of it, and not without end.
    const odd = await check('GET', '/pipelines/', await userToken({ iss: `https://evil.example.com/\u0000\n${'x'.repeat(1000)}` }));
    expect(odd.body.issuer).toBe(`https://evil.example.com/??${'x'.repeat(256 - 27)}`);
  });

  test('alg "none" is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ iss: idp.issuer, aud: CLIENT_ID, email: 'alice@users.example.com', exp: now() + 600 })).toString('base64url');
    const res = await check('GET', '/pipelines/', `${header}.${payload}.`);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('disallowed_algorithm');
  });

  test('HS256 signed with the public key as HMAC secret is refused', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ iss: idp.issuer, aud: CLIENT_ID, email: 'mallory@users.example.com', exp: now() + 600 })).toString('base64url');
    const secret = JSON.stringify(rsa.publicJwk);
    const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    const res = await check('GET', '/pipelines/', `${header}.${payload}.${signature}`);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('disallowed_algorithm');
  });

  test('a jku header pointing elsewhere is refused', async () => {
    const res = await check('GET', '/pipelines/', await userToken({}, { header: { jku: 'https://evil.example.com/jwks' } }));
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('disallowed_header');
  });

  test('tampered payload → bad_signature', async () => {
    const [h, p, s] = (await userToken()).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.groups = ['admins'];
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const res = await check('GET', '/pipelines/', forged);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('bad_signature');
  });

  test.each([
    ['garbage', 'not-a-jwt'],
    ['three parts that are not JSON', 'aaaa.bbbb.cccc'],
    ['characters outside base64url', 'a+b.c/d.e=f'],
  ])('%s → malformed_token', async (_name, token) => {
    const res = await check('GET', '/pipelines/', token);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('malformed_token');
  });

  test('"Bearer" with two tokens is malformed', async () => {
    const res = await request(svc.url).get('/authz/x').set('host', 'kubeflow.example.com').set('authorization', 'Bearer a b');
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('malformed_token');
  });

  test('a huge token (over bearer.maxTokenBytes, under the header limit) → token_too_large', async () => {
    const res = await check('GET', '/pipelines/', `${'a'.repeat(30_000)}.b.c`);
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('token_too_large');
  });

  test('headers above listen.maxHeaderBytes get 431 from Node, never a 200', async () => {
    const res = await check('GET', '/pipelines/', `${'a'.repeat(70_000)}.b.c`);
    expect(res.status).toBe(431);
  });

  test('Basic credentials are not ours: no_credentials, plain challenge', async () => {
    const res = await request(svc.url).get('/authz/x').set('host', 'kubeflow.example.com').set('authorization', 'Basic YWxpY2U6c2VjcmV0');
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('no_credentials');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oidc-authz"');
  });
});

describe('key rotation: unknown kid', () => {
  test('refetches the JWKS once, then rejects a kid that is still unknown', async () => {
    const stranger = await createSigningKey('RS256', 'rsa-unpublished');
    const before = idp.hitsOf('/jwks');
    const res = await check('GET', '/pipelines/', await userToken({}, { key: stranger }));
    expect(res.status).toBe(401);
    expect(res.body.reason).toBe('unknown_key');
    expect(idp.hitsOf('/jwks')).toBe(before + 1);
  });

  test('a newly published key is found by the refetch', async () => {
    const rotated = await createSigningKey('RS256', 'rsa-2');
    idp.keys = [...idp.keys, rotated];
    const res = await check('GET', '/pipelines/', await userToken({}, { key: rotated }));
    expect(res.status).toBe(200);
  });
});

describe('JWKS unavailable', () => {
  test('no cached key → 503 with Retry-After (fail closed), counted as a failed fetch', async () => {
    const key = await createSigningKey('RS256', 'down-1');
    const down = await startIssuer([key], '/down');
    await down.stop();
    const local = await startService({ issuers: [{ issuer: down.issuer, audiences: [CLIENT_ID], jwksUri: down.jwksUri }], rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }] });
    try {
      const token = await down.sign({ aud: CLIENT_ID, email: 'a@example.com', email_verified: true });
      const res = await request(local.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${token}`);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.body).toEqual({ error: 'unavailable', reason: 'jwks_unavailable' });
      const metrics = await fetch(`${local.metricsUrl}/metrics`).then((r) => r.text());
      expect(metrics).toMatch(new RegExp(`oidc_authz_jwks_fetches_total\\{issuer="${down.issuer}",result="error"\\} 1`));
    } finally {
      await local.close();
    }
  });

  test('cached keys keep working while the JWKS server is down', async () => {
    const key = await createSigningKey('ES256', 'cached-1');
    const flaky = await startIssuer([key], '/flaky');
    const local = await startService({ issuers: [{ issuer: flaky.issuer, audiences: [CLIENT_ID] }], rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }] });
    try {
      const first = await flaky.sign({ aud: CLIENT_ID, email: 'a@example.com', email_verified: true, jti: '1' });
      await request(local.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${first}`).expect(200);
      expect(flaky.hitsOf('/.well-known/openid-configuration')).toBe(1);
      const second = await flaky.sign({ aud: CLIENT_ID, email: 'b@example.com', email_verified: true, jti: '2' });
      await flaky.stop();
      const res = await request(local.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${second}`);
      expect(res.status).toBe(200);
      expect(res.headers['kubeflow-userid']).toBe('b@example.com');
    } finally {
      await local.close();
    }
  });

  test('an unknown kid within the cooldown is rejected without another fetch', async () => {
    const key = await createSigningKey('RS256', 'cool-1');
    const other = await createSigningKey('RS256', 'cool-2');
    const iss = await startIssuer([key], '/cool');
    const local = await startService({ issuers: [{ issuer: iss.issuer, audiences: [CLIENT_ID] }], jwks: { cooldown: '1h' }, rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }] });
    try {
      await request(local.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${await iss.sign({ aud: CLIENT_ID, email: 'a@example.com', email_verified: true })}`).expect(200);
      const fetches = iss.hitsOf('/jwks');
      const res = await request(local.url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${await iss.sign({ aud: CLIENT_ID, email: 'a@example.com', email_verified: true }, { key: other })}`);
      expect(res.status).toBe(401);
      expect(res.body.reason).toBe('unknown_key');
      expect(iss.hitsOf('/jwks')).toBe(fetches);
    } finally {
      await local.close();
      await iss.stop();
    }
  });
});

describe('rules', () => {
  test('anonymous route: 200 without identity, every client identity header spelling removed', async () => {
    const res = await request(svc.url)
      .get('/authz/static/app.js')
      .set('host', 'kubeflow.example.com')
      .set('kubeflow-userid', 'admin@example.com')
      .set('kubeflow-groups', 'admins');
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBeUndefined();
    expect(res.headers['kubeflow-groups']).toBeUndefined();
    expect(removedHeaders(res)).toEqual(expect.arrayContaining([
      'kubeflow-userid', 'kubeflow-groups', 'kubeflow_userid', 'kubeflow_groups',
      'x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups', 'x_auth_request_email',
    ]));
  });

  test('anonymous route ignores a bad token rather than refusing a public asset', async () => {
    const res = await check('GET', '/favicon.ico', 'garbage');
    expect(res.status).toBe(200);
  });

  test('workspace read: member of group {ws} → 200; other workspace → 403 naming rule and requirement', async () => {
    const token = await userToken();
    await check('GET', '/workspaces/team-a/notebooks', token).expect(200);
    const res = await check('GET', '/workspaces/team-b/notebooks', token);
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'workspace-read', requirement: 'groups' });
  });

  test('HEAD follows the GET rule', async () => {
    const res = await check('HEAD', '/workspaces/team-b/x', await userToken());
    expect(res.status).toBe(403);
  });

  test('workspace write needs role ws_access in resource_access.{ws}.roles', async () => {
    const withRole = await userToken({ resource_access: { 'team-a': { roles: ['viewer', 'ws_access'] } } });
    await check('POST', '/workspaces/team-a/items', withRole).expect(200);
    const res = await check('POST', '/workspaces/team-b/items', withRole);
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ rule: 'workspace-write', requirement: 'claims' });
    await check('DELETE', '/workspaces/team-a/items', await userToken()).expect(403);
  });

  test('a deny rule answers 403 even without credentials', async () => {
    const res = await check('GET', '/internal/debug');
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: 'forbidden', reason: 'rule_deny', rule: 'admin-block' });
  });

  test('no rule matches (other host) → defaultRule deny', async () => {
    const res = await check('GET', '/pipelines/', await userToken(), 'other.example.org');
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ error: 'forbidden', reason: 'default_deny', rule: 'default' });
  });

  test('host rule with emailDomains: Host with port and trailing dot still matches', async () => {
    const outsider = await userToken({ email: 'bob@elsewhere.org' });
    const res = await check('GET', '/x', outsider, 'CORP.example.com.:443');
    expect(res.status).toBe(403);
    expect(res.body.rule).toBe('corp-only');
    const insider = await userToken({ email: 'carol@example.com' });
    await check('GET', '/x', insider, 'corp.example.com').expect(200);
  });

  test('users requirement and anyOf with {param}', async () => {
    const alice = await userToken();
    await check('GET', '/team/alice/x', alice).expect(200);
    await check('GET', '/team/bob/x', alice).expect(403);
    await check('GET', '/team/bob/x', await userToken({ groups: ['admins'] })).expect(200);
    await check('GET', '/pipelines/runner/x', alice).expect(403);
  });

  test('no credentials on an authenticated rule → 401 with a plain challenge', async () => {
    const res = await check('GET', '/pipelines/');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'unauthorized', reason: 'no_credentials' });
    expect(res.headers['www-authenticate']).toBe('Bearer realm="oidc-authz"');
  });
});

describe('malformed requests → 400, never a bypass', () => {
  test.each([
    ['/workspaces/team-b/..%2Fteam-a/x', 'encoded_slash'],
    ['/static/..%2f..%2finternal', 'encoded_slash'],
    ['/static/%2e%2e/internal/debug', 'dot_segment'],
    ['/static/..;/internal', 'semicolon'],
    ['/static%5c..%5cinternal', 'backslash'],
    ['/static/%252e%252e/internal', 'double_encoding'],
    ['/static/%c0%ae%c0%ae/internal', 'invalid_utf8'],
    ['/static/%00', 'control_character'],
  ])('%s → %s', async (path, reason) => {
    const res = await check('GET', path, await userToken());
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'bad_request', reason });
  });

  test('"//" is collapsed before matching, so //internal is still denied', async () => {
    const res = await check('GET', '//internal//debug');
    expect(res.status).toBe(403);
    expect(res.body.rule).toBe('admin-block');
  });

  test('a bad Host header → 400', async () => {
    const res = await check('GET', '/x', await userToken(), 'evil host');
    expect(res.status).toBe(400);
    expect(res.body.reason).toBe('bad_host');
  });
});

describe('operations', () => {
  test('metrics count checks by decision, reason and rule and expose the latency histogram', async () => {
    await check('GET', '/internal/x').expect(403);
    const text = await fetch(`${svc.metricsUrl}/metrics`).then((r) => r.text());
    expect(text).toMatch(/oidc_authz_checks_total\{decision="forbidden",reason="rule_deny",rule="admin-block"\} [1-9]/);
    expect(text).toMatch(/oidc_authz_checks_total\{decision="allow",reason="bearer",rule="everything-else"\} [1-9]/);
    expect(text).toMatch(/oidc_authz_check_duration_seconds_bucket\{le="0.001",decision="allow"\} [1-9]/);
    expect(text).toMatch(/oidc_authz_jwks_fetches_total\{issuer="[^"]+\/dex",result="ok"\} [1-9]/);
    expect(text).toContain('oidc_authz_config_info{rules="8",issuers="2",default_rule="deny"} 1');
  });

  test('logs never contain tokens', async () => {
    const token = await userToken({ aud: 'wrong' });
    await check('GET', '/pipelines/', token).expect(401);
    const all = JSON.stringify(svc.logs);
    expect(all).toContain('wrong_audience');
    expect(all).not.toContain(token.split('.')[1]);
  });

  test('healthz and readyz answer on the app port; unknown paths 404', async () => {
    await request(svc.url).get('/healthz').expect(200, { status: 'ok' });
    await request(svc.url).get('/readyz').expect(200, { status: 'ready' });
    await request(svc.url).get('/authzx/not-a-check').expect(404);
  });
});

describe('Keycloak-shaped issuers: authorized parties and machine identities', () => {
  // A realm-like issuer: user access tokens carry aud = the clients whose roles the user holds (plus
  // "account"), azp = the client that asked; client-credentials tokens carry client_id and no email.
  let realm: TestIssuer;
  let local: RunningService;
  beforeAll(async () => {
    realm = await startIssuer([rsa], '/realms/kubeflow');
    local = await startService({
      issuers: [{ issuer: realm.issuer, audiences: ['oidc-authz'], authorizedParties: ['kubeflow-cli'], machineIdentity: {} }],
      identity: { groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] },
      rules: [
        { name: 'ci', paths: ['/ci/**'], allow: { users: ['service-account:ci-bot'] } },
        { name: 'workspaces', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
        { name: 'all', paths: ['/**'], allow: 'authenticated' },
      ],
    });
  });
  afterAll(async () => {
    await local.close();
    await realm.stop();
  });
  const kc = (method: string, path: string, token: string) =>
    request(local.url)[method.toLowerCase() as 'get'](`/authz${path}`).set('host', 'kubeflow.example.com').set('authorization', `Bearer ${token}`);
  const person = (claims: Record<string, unknown>) =>
    realm.sign({ sub: 'u-alice', email: 'alice@example.com', email_verified: true, groups: ['/ws-a'], typ: 'Bearer', ...claims });

  test.each<{ what: string; claims: Record<string, unknown>; status: number; reason?: string }>([
    { what: 'aud holds our audience (Keycloak\'s audience mapper)', claims: { aud: ['oidc-authz', 'account'], azp: 'some-spa' }, status: 200 },
    { what: 'azp is an authorized party, aud only "account"', claims: { aud: 'account', azp: 'kubeflow-cli' }, status: 200 },
    { what: 'azp is an authorized party, no aud at all', claims: { azp: 'kubeflow-cli' }, status: 200 },
    { what: 'another client\'s token: aud "account", azp not ours', claims: { aud: ['account', 'ws-a'], azp: 'other-app' }, status: 401, reason: 'wrong_audience' },
    { what: 'an azp that only contains an authorized party\'s name', claims: { aud: 'account', azp: 'kubeflow-cli-evil' }, status: 401, reason: 'wrong_audience' },
    { what: 'an azp that is not a string', claims: { aud: 'account', azp: ['kubeflow-cli'] }, status: 401, reason: 'wrong_audience' },
  ])('$what → $status', async ({ claims, status, reason }) => {
    const res = await kc('GET', '/workspaces/ws-a/x', await person(claims));
    expect(res.status).toBe(status);
    if (status === 200) expect(res.headers['kubeflow-userid']).toBe('alice@example.com');
    else expect(res.body).toEqual({ error: 'unauthorized', reason });
  });

  test('group paths are transformed, so {ws} rules match Keycloak\'s "/ws-a"', async () => {
    const res = await kc('GET', '/workspaces/ws-a/x', await person({ aud: 'oidc-authz' }));
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-groups']).toBe('ws-a');
  });

  test('a client-credentials token is a machine with a prefixed id; a person cannot take that id', async () => {
    const machine = await realm.sign({ sub: 'sa-1', azp: 'ci-bot', aud: 'oidc-authz', client_id: 'ci-bot', preferred_username: 'service-account-ci-bot' });
    const res = await kc('POST', '/ci/run', machine);
    expect(res.status).toBe(200);
    expect(res.headers['kubeflow-userid']).toBe('service-account:ci-bot');
    // A person whose email is crafted to look like the machine's id is refused, not mistaken for it.
    const impostor = await person({ aud: 'oidc-authz', email: 'service-account:ci-bot' });
    const refused = await kc('POST', '/ci/run', impostor);
    expect(refused.status).toBe(401);
    expect(refused.body).toEqual({ error: 'unauthorized', reason: 'invalid_user_id' });
  });
});
