/**
 * The parts of `oidc-authz test` in process: the cases file's schema and its error paths, a check
 * through the real pipeline (what Envoy answers and what the upstream then gets), the comparison with
 * the expectation, token identities against a JWKS file at a fixed time, and the JUnit report.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { CasesError, loadCasesFile, type CaseIdentity, type Expectation } from '../../src/policy-test/cases.js';
import { tokenContextFor } from '../../src/policy-test/keys.js';
import { createCheckSimulator, type CheckOutcome } from '../../src/policy-test/pipeline.js';
import { junitReport, textReport } from '../../src/policy-test/report.js';
import { compare, runCasesFile, shown, type FileResult } from '../../src/policy-test/run.js';
import { checkToken } from '../../src/policy-test/token.js';

const DEX = 'https://dex.example.com/dex';
const CLUSTER = 'https://kubernetes.default.svc.cluster.local';

const configInput: ConfigInput = {
  publicUrl: 'https://kf.example.com',
  oidc: { issuer: DEX, clientId: 'kubeflow', clientSecretFile: '/nonexistent/client-secret' },
  issuers: [{ issuer: CLUSTER, audiences: ['pipelines.kubeflow.org'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' }],
  session: { secretsFile: '/nonexistent/cookie-secrets' },
  rules: [
    { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
    { name: 'workspace', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
    { name: 'everything', paths: ['/**'], allow: 'authenticated' },
  ],
};
const config: Config = parseConfig(configInput);

function casesDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-cases-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function loadProblems(text: string, files: Record<string, string> = {}): readonly string[] {
  const dir = casesDir({ 'cases.yaml': text, ...files });
  try {
    loadCasesFile(join(dir, 'cases.yaml'), config);
  } catch (error) {
    if (error instanceof CasesError) return error.problems;
    throw error;
  }
  return [];
}

describe('cases files: every problem named by its field path', () => {
  test('a wrong status, a request that is neither "METHOD URL" nor an object, a misspelled field', () => {
    expect(loadProblems(`
cases:
  - { name: a, request: "GET https://kf.example.com/", expect: { status: 200 } }
  - { name: b, request: "GET https://kf.example.com/", expect: { status: 200 } }
  - { name: c, request: "GET https://kf.example.com/", expect: { status: 200 } }
  - { name: d, request: "GET https://kf.example.com/", expect: { status: 402 } }
  - { name: e, request: "https://kf.example.com/", expect: { status: 200 } }
  - { name: f, request: { url: "https://kf.example.com/", hedaers: {} }, expect: { status: 200 } }
  - { name: g, request: { url: "/relative" }, expect: { status: 200 } }
`)).toEqual([
      'cases.3.expect.status: Invalid option: expected one of 200|302|400|401|403|503',
      'cases.4.request: "METHOD URL", or an object with method, url and headers',
      'cases.5.request: unknown field(s) "hedaers"',
      'cases.6.request.url: an absolute http(s) URL with the host the client uses (https://kubeflow.example.com/path?query)',
    ]);
  });

  test('identities: one of claims, token or tokenFile; names must exist; session goes with claims; upstream only for a 200', () => {
    expect(loadProblems(`
identities:
  both: { claims: { sub: a }, token: x.y.z }
cases:
  - { name: a, request: "GET https://kf.example.com/", identity: { session: true, token: x.y.z }, expect: { status: 200 } }
  - { name: b, request: "GET https://kf.example.com/", identity: {}, expect: { status: 403, upstream: { a: b } } }
`)).toEqual([
      'identities.both: takes one of claims, token or tokenFile, not claims and token',
      'cases.0.identity.session: goes with claims (a session is tested by its claims)',
      'cases.1.identity: name one of claims, token or tokenFile (no identity: leave identity out)',
      'cases.1.expect.upstream: only a 200 reaches the upstream',
    ]);
    expect(loadProblems(`
cases:
  - { name: a, request: "GET https://kf.example.com/", identity: alice, expect: { status: 200 } }
  - { name: a, request: "GET https://kf.example.com/", expect: { status: 200 } }
`)).toEqual([
      'cases.0.identity: "alice" is not under identities',
      'cases.1.name: duplicate case name (also cases.0): reports name cases by it',
    ]);
  });

  test('what needs the config or other files: token files, JWKS files (public keys only), session claims of another issuer, the Host and Authorization headers', async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    expect(loadProblems(`
jwks: { "${CLUSTER}": private.json, "https://other.example.com": missing.json }
cases:
  - { name: a, request: "GET https://kf.example.com/", identity: { tokenFile: missing.jwt }, expect: { status: 200 } }
  - name: b
    request: { url: "https://kf.example.com/", headers: { Host: kf.example.com } }
    identity: { session: true, claims: { iss: "${CLUSTER}" } }
    expect: { status: 200 }
  - { name: c, request: { url: "https://kf.example.com/", headers: { Authorization: Basic eA== } }, identity: { token: a.b.c }, expect: { status: 200 } }
`, { 'private.json': JSON.stringify({ keys: [await exportJWK(privateKey)] }) })).toEqual([
      `jwks.${CLUSTER}: private.json holds private key material: keep only the public keys beside the cases`,
      'jwks.https://other.example.com: not an issuer of the config (https://dex.example.com/dex, https://kubernetes.default.svc.cluster.local)',
      'jwks.https://other.example.com: cannot read missing.json: ENOENT',
      'cases.0.identity.tokenFile: cannot read missing.jwt: ENOENT',
      `cases.1.identity.claims.iss: a session's claims are the oidc issuer's (${DEX})`,
      'cases.1.request.headers.host: the Host is the url\'s',
      'cases.2.request.headers.authorization: a token identity is sent as the Authorization header; give one or the other',
    ]);
  });

  test('a valid file: "METHOD URL" requests, lower-cased header names, named identities resolved, token files read', () => {
    const dir = casesDir({
      'cases.yaml': `
identities:
  alice: { session: true, claims: { email: alice@example.com, email_verified: true } }
cases:
  - { name: a, request: "post https://kf.example.com/x?y=1", identity: alice, expect: { status: 200 } }
  - { name: b, request: { url: "https://kf.example.com/", headers: { Accept: text/html } }, identity: { tokenFile: t.jwt }, expect: { status: 401 } }
`,
      't.jwt': '  a.b.c\n',
    });
    const file = loadCasesFile(join(dir, 'cases.yaml'), config);
    expect(file.cases[0]).toMatchObject({ request: { method: 'POST', url: 'https://kf.example.com/x?y=1', headers: {} }, identity: { kind: 'claims', session: true }, identityName: 'alice' });
    expect(file.cases[1]).toMatchObject({ request: { method: 'GET', headers: { accept: 'text/html' } }, identity: { kind: 'token', token: 'a.b.c', source: 't.jwt' } });
    expect(file.jwks).toBeNull();
    expect(file.now).toBeNull();
  });
});

describe('a check through the real pipeline', () => {
  const simulator = createCheckSimulator(config, tokenContextFor(config, { jwks: new Map(), now: null }));
  const person = (claims: Record<string, unknown>, session = false): CaseIdentity => ({ kind: 'claims', claims: { iss: DEX, email_verified: true, ...claims }, session });

  test('an anonymous allow: Envoy removes every identity header the client sent, in either spelling, and method overrides', async () => {
    const outcome = await simulator.check({ method: 'GET', url: 'https://kf.example.com/static/a.js', headers: { 'kubeflow-userid': 'admin', kubeflow_userid: 'admin', 'x-http-method-override': 'DELETE', accept: '*/*' } }, { kind: 'anonymous' });
    expect(outcome.status).toBe(200);
    expect(outcome.decision).toMatchObject({ kind: 'allow', reason: 'anonymous' });
    expect(outcome.upstream!.has('kubeflow-userid')).toBe(false);
    expect(outcome.upstream!.has('kubeflow_userid')).toBe(false);
    expect(outcome.upstream!.has('x-http-method-override')).toBe(false);
    expect(outcome.upstream!.get('accept')).toBe('*/*');
  });

  test('a session: the identity headers replace the client\'s, the session cookie never reaches the upstream, the other cookies do', async () => {
    const outcome = await simulator.check({ method: 'GET', url: 'https://kf.example.com/workspaces/team-a/x', headers: { cookie: 'theme=dark', 'kubeflow-userid': 'admin' } }, person({ email: 'alice@example.com', groups: ['team-a'] }, true));
    expect(outcome.decision).toMatchObject({ kind: 'allow', reason: 'cookie' });
    expect(outcome.headers.get('kubeflow-userid')).toEqual(['alice@example.com']);
    expect(outcome.headers.get('cookie')).toEqual(['theme=dark']);
    expect(outcome.upstream!.get('kubeflow-userid')).toBe('alice@example.com');
    expect(outcome.upstream!.get('cookie')).toBe('theme=dark');
  });

  test('a rule with upstreamToken.exchange: the IdP is not asked; the upstream shows a placeholder for the exchanged token in place of the client\'s', async () => {
    const exchanging = parseConfig({ ...configInput, rules: [{ name: 'pipelines', paths: ['/pipeline/**'], allow: 'authenticated', upstreamToken: { exchange: { audience: 'ml-pipeline', scope: 'openid' } } }, ...configInput.rules!] });
    const exchangeSimulator = createCheckSimulator(exchanging, tokenContextFor(exchanging, { jwks: new Map(), now: null }));
    for (const session of [false, true]) {
      const outcome = await exchangeSimulator.check({ method: 'GET', url: 'https://kf.example.com/pipeline/runs', headers: {} }, person({ email: 'alice@example.com' }, session));
      expect(outcome.status).toBe(200);
      expect(outcome.upstream!.get('authorization')).toBe('Bearer <exchanged audience=ml-pipeline scope=openid>');
    }
    const other = await exchangeSimulator.check({ method: 'GET', url: 'https://kf.example.com/notebooks/', headers: {} }, person({ email: 'alice@example.com' }, true));
    expect(other.upstream!.has('authorization')).toBe(false);
  });

  test('a browser without credentials is sent to log in on publicUrl, with no secret file read', async () => {
    const outcome = await simulator.check({ method: 'GET', url: 'https://kf.example.com/workspaces/team-a/x?tab=1', headers: { accept: 'text/html' } }, { kind: 'anonymous' });
    expect(outcome.status).toBe(302);
    expect(outcome.headers.get('location')).toEqual(['https://kf.example.com/oauth2/start?rd=https%3A%2F%2Fkf.example.com%2Fworkspaces%2Fteam-a%2Fx%3Ftab%3D1']);
    expect(outcome.upstream).toBeNull();
  });

  test('a requirement not met: 403 JSON naming the rule for an API, the HTML page for a browser', async () => {
    const api = await simulator.check({ method: 'GET', url: 'https://kf.example.com/workspaces/team-b/x', headers: {} }, person({ email: 'alice@example.com', groups: ['team-a'] }));
    expect(api.status).toBe(403);
    expect(JSON.parse(api.body)).toEqual({ error: 'forbidden', reason: 'requirement_not_met', rule: 'workspace', requirement: 'groups' });
    const page = await simulator.check({ method: 'GET', url: 'https://kf.example.com/workspaces/team-b/x', headers: { accept: 'text/html' } }, person({ email: 'alice@example.com', groups: ['team-a'] }, true));
    expect(page.headers.get('content-type')).toEqual(['text/html; charset=utf-8']);
  });

  test('claims mapped as the service maps a token of their issuer: a person cannot take a service account\'s id', async () => {
    const outcome = await simulator.check({ method: 'GET', url: 'https://kf.example.com/x', headers: {} }, person({ email: 'system:serviceaccount:kubeflow:runner' }));
    expect(outcome.decision).toMatchObject({ kind: 'unauthorized', reason: 'invalid_user_id' });
    expect(outcome.headers.get('www-authenticate')).toEqual(['Bearer realm="oidc-authz", error="invalid_token", error_description="invalid_user_id"']);
  });

  test('the path is taken as written: a hostile spelling is the 400 the service answers', async () => {
    const outcome = await simulator.check({ method: 'GET', url: 'https://kf.example.com/static/..%2Fworkspaces/x', headers: {} }, { kind: 'anonymous' });
    expect(outcome.decision).toMatchObject({ kind: 'bad_request', reason: 'encoded_slash', rule: null });
  });
});

describe('compare: what differs, one line each', () => {
  const outcome = (partial: Partial<CheckOutcome> & Pick<CheckOutcome, 'decision'>): CheckOutcome => ({ status: 200, headers: new Map(), body: '', upstream: null, ...partial });
  const allow = { kind: 'allow', rule: { name: 'everything' }, identity: null, reason: 'bearer', upstreamCookie: null } as unknown as CheckOutcome['decision'];

  test('status, rule, reason, answer headers and upstream headers', () => {
    const expected: Expectation = { status: 403, rule: 'workspace', reason: 'requirement_not_met', headers: { 'Kubeflow-Userid': 'alice', 'x-gone': null }, upstream: { authorization: null } };
    expect(compare(expected, outcome({ decision: allow, headers: new Map([['x-gone', ['1']]]), upstream: new Map([['authorization', 'Bearer eyJsecret']]) }))).toEqual([
      'status: expected 403, got 200',
      'rule: expected "workspace", got "everything"',
      'reason: expected "requirement_not_met", got "bearer"',
      'header kubeflow-userid: expected "alice", got (absent)',
      'header x-gone: expected (absent), got "1"',
      // The token itself is never printed.
      'upstream authorization: expected (absent), got "Bearer [redacted]"',
    ]);
  });

  test('an upstream expectation for an answer that is not a 200', () => {
    expect(compare({ status: 200, upstream: { a: null } }, outcome({ decision: allow, status: 401 }))).toEqual([
      'status: expected 200, got 401',
      'upstream: expected the request to reach it, but the answer is 401',
    ]);
  });

  test('shown: an Authorization value keeps only its scheme', () => {
    expect(shown('Authorization', 'Bearer abc.def.ghi')).toBe('"Bearer [redacted]"');
    expect(shown('kubeflow-userid', null)).toBe('(absent)');
  });
});

describe('token identities: the service\'s verifier with the cases file\'s keys and time', () => {
  let privateKey: CryptoKey;
  let jwk: JWK;
  const now = Date.parse('2026-01-01T00:10:00Z');
  const sign = (claims: Record<string, unknown>, kid = 'k1') =>
    new SignJWT({ iat: now / 1000 - 600, exp: now / 1000 + 3000, ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  });

  test('verified at the file\'s now: valid then, expired a day later, whatever the clock says', async () => {
    const token = await sign({ iss: CLUSTER, aud: 'pipelines.kubeflow.org', sub: 'system:serviceaccount:ns:runner' });
    const then = tokenContextFor(config, { jwks: new Map([['*', { file: 'keys.json', keys: { keys: [jwk] } }]]), now });
    const checked = await checkToken(token, then);
    expect(checked).toMatchObject({ ok: true, identity: { userId: 'system:serviceaccount:ns:runner', via: 'bearer' } });
    const later = tokenContextFor(config, { jwks: new Map([['*', { file: 'keys.json', keys: { keys: [jwk] } }]]), now: now + 86_400_000 });
    expect(await checkToken(token, later)).toMatchObject({ ok: false, auth: { reason: 'token_expired' }, detail: 'exp 2026-01-01T01:00:00Z is more than bearer.clockSkew 30 s before now (2026-01-02T00:10:00Z)' });
  });

  test('keys for one issuer only: another issuer\'s token has no key, and says so', async () => {
    const context = tokenContextFor(config, { jwks: new Map([[CLUSTER, { file: 'cluster.json', keys: { keys: [jwk] } }]]), now });
    const token = await sign({ iss: DEX, aud: 'kubeflow', email: 'a@example.com', email_verified: true });
    expect(await checkToken(token, context)).toMatchObject({ ok: false, auth: { reason: 'unknown_key' }, detail: 'kid "k1" is not among the issuer\'s keys (none: the cases file\'s jwks has no keys for this issuer)' });
    const unknownKid = await sign({ iss: CLUSTER, aud: 'pipelines.kubeflow.org', sub: 'system:serviceaccount:ns:runner' }, 'k2');
    expect(await checkToken(unknownKid, context)).toMatchObject({ ok: false, auth: { reason: 'unknown_key' }, detail: 'kid "k2" is not among the issuer\'s keys (the cases file\'s jwks cluster.json)' });
  });

  test('identity failures say which claim and which setting', async () => {
    const context = tokenContextFor(config, { jwks: new Map([['*', { file: 'keys.json', keys: { keys: [jwk] } }]]), now });
    expect(await checkToken(await sign({ iss: DEX, aud: 'kubeflow', email: 'a@example.com' }), context)).toMatchObject({
      auth: { reason: 'unverified_email' },
      detail: 'the user id comes from email, which counts only when verified: email_verified is absent and the issuer\'s emailVerifiedWhenAbsent is false',
    });
    expect(await checkToken(await sign({ iss: CLUSTER, aud: 'pipelines.kubeflow.org', sub: 'alice' }), context)).toMatchObject({
      auth: { reason: 'invalid_user_id' },
      detail: expect.stringContaining('the user id from claim sub must start with "system:serviceaccount:" (userIdMustStartWith)'),
    });
  });
});

describe('reports', () => {
  const files: FileResult[] = [{
    file: 'a&b/<cases>.yaml',
    seconds: 0.01,
    results: [
      { name: 'passes', passed: true, problems: [], answer: null, explain: null, error: null, seconds: 0.001 },
      { name: 'says "no" & \'why\' <here>\u0001', passed: false, problems: ['status: expected 200, got 403'], answer: '403 forbidden (rule x, reason rule_deny)', explain: 'request:   GET h/x\ndecision:  403 forbidden (rule_deny)\n', error: null, seconds: 0.002 },
      { name: 'broken', passed: false, problems: [], answer: null, explain: null, error: 'boom', seconds: 0 },
    ],
  }];

  test('JUnit: escaped, parseable by a real XML parser, counts right, failure and error elements', () => {
    const xml = junitReport(files);
    expect(xml).toContain('<testsuites name="oidc-authz test" tests="3" failures="1" errors="1" time="0.010">');
    expect(xml).toContain('<testsuite name="a&amp;b/&lt;cases&gt;.yaml" tests="3" failures="1" errors="1" skipped="0" time="0.010">');
    expect(xml).toContain('name="says &quot;no&quot; &amp; &apos;why&apos; &lt;here&gt;\ufffd"');
    expect(xml).toContain('<failure message="status: expected 200, got 403" type="policy-mismatch">status: expected 200, got 403\nanswer: 403 forbidden (rule x, reason rule_deny)\nexplain:\n  request:   GET h/x\n  decision:  403 forbidden (rule_deny)\n</failure>');
    expect(xml).toContain('<error message="boom" type="error">error: boom\n</error>');
    // Python's expat: well-formed, and the names come back as written (the control character replaced).
    const parsed = spawnSync('python3', ['-c', 'import sys, xml.etree.ElementTree as ET\nroot = ET.parse(sys.stdin).getroot()\nprint([c.get("name") for c in root.iter("testcase")])'], { input: xml, encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    expect(parsed.stdout.trim()).toBe(`['passes', 'says "no" & \\'why\\' <here>\ufffd', 'broken']`);
  });

  test('text: a line per case, details under a failure, a summary', () => {
    expect(textReport(files)).toBe([
      'a&b/<cases>.yaml',
      '  ok    passes',
      '  FAIL  says "no" & \'why\' <here>\u0001',
      '          status: expected 200, got 403',
      '          answer: 403 forbidden (rule x, reason rule_deny)',
      '          explain:',
      '            request:   GET h/x',
      '            decision:  403 forbidden (rule_deny)',
      '  ERROR broken',
      '          error: boom',
      '3 cases in 1 file: 1 passed, 1 failed, 1 could not run',
      '',
    ].join('\n'));
  });
});

test('runCasesFile: a failing case carries its answer and the explain text', async () => {
  const dir = casesDir({
    'cases.yaml': `
cases:
  - name: alice reads team-b
    request: "GET https://kf.example.com/workspaces/team-b/x"
    identity: { claims: { iss: "${DEX}", email: alice@example.com, email_verified: true, groups: [team-a] } }
    expect: { status: 200, rule: workspace }
`,
  });
  const result = await runCasesFile(config, loadCasesFile(join(dir, 'cases.yaml'), config));
  expect(result.results[0]).toMatchObject({
    passed: false,
    problems: ['status: expected 200, got 403'],
    answer: '403 forbidden (rule workspace, reason requirement_not_met: groups not met, user alice@example.com)',
  });
  expect(result.results[0]!.explain).toContain('params:    {"ws":"team-b"}\n');
  expect(result.results[0]!.explain).toContain('decision:  403 forbidden (requirement_not_met: groups not met)\n');
});
