/**
 * `explain --token FILE` (the built CLI) against a real JWKS served on 127.0.0.1: the token is verified
 * with the configured issuer's settings, as the service verifies it, and a rejection says exactly why.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { runCli, writeTempConfig } from '../support/process.js';

const AUDIENCE = 'kubeflow-oidc-authservice';
let idp: TestIssuer;
let config: string;

beforeAll(async () => {
  idp = await startIssuer([await createSigningKey('ES256', 'es-1')], '/dex');
  config = writeTempConfig({
    issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['ES256'] }],
    bearer: { clockSkew: '30s' },
    rules: [
      { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
      { name: 'workspace', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
    ],
  });
});

afterAll(() => idp.stop());

function tokenFile(token: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'oidc-authz-token-')), 'token.jwt');
  writeFileSync(file, `${token}\n`);
  return file;
}

const explainToken = (token: string, path = '/workspaces/team-a/lab') =>
  runCli(['explain', 'GET', `https://kf.example.com${path}`, '--config', config, '--token', tokenFile(token)]);

const alice = { aud: AUDIENCE, sub: 'alice', email: 'alice@example.com', email_verified: true, groups: ['team-a'] };

test('a valid token: verified with the issuer\'s JWKS over HTTP, its identity mapped and the rule evaluated', async () => {
  const result = await explainToken(await idp.sign(alice));
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('rule:      #1 workspace');
  expect(result.stdout).toMatch(new RegExp(`token:     verified \\(iss ${idp.issuer}; aud "${AUDIENCE}"; alg ES256; kid es-1; expires \\d{4}-`));
  expect(result.stdout).toContain('identity:  kubeflow-userid=alice@example.com kubeflow-groups=team-a');
  expect(result.stdout).toContain('decision:  200 allow (bearer)');
  expect(idp.hitsOf('/jwks')).toBeGreaterThan(0);
  // The token itself is never printed.
  expect(result.stdout).not.toContain('eyJ');
});

test('an expired token: token_expired with its exp, the clock skew and now', async () => {
  const now = Math.floor(Date.now() / 1000);
  const result = await explainToken(await idp.sign({ ...alice, iat: now - 7200, exp: now - 3600 }));
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/token: {5}rejected: token_expired: exp \d{4}-\d\d-\d\dT[\d:]+Z is more than bearer\.clockSkew 30 s before now \(\d{4}-/);
  expect(result.stdout).toContain('decision:  401 unauthorized (token_expired)');
  expect(result.stdout).not.toContain('identity:');
});

test('a token for another audience: wrong_audience naming its aud and the accepted ones', async () => {
  const result = await explainToken(await idp.sign({ ...alice, aud: 'some-other-app', azp: 'some-other-app' }));
  expect(result.stdout).toContain(`token:     rejected: wrong_audience: aud "some-other-app", azp "some-other-app": not one of the issuer's audiences ["${AUDIENCE}"]`);
  expect(result.stdout).toContain('decision:  401 unauthorized (wrong_audience)');
});

test('an algorithm off the issuer\'s list, and an issuer not configured: each named', async () => {
  const rsa = await createSigningKey('RS256', 'rsa-1');
  idp.keys = [...idp.keys, rsa];
  try {
    const rs256 = await explainToken(await idp.sign(alice, { key: rsa }));
    expect(rs256.stdout).toContain('token:     rejected: disallowed_algorithm: alg "RS256" is not one of the issuer\'s algorithms (ES256)');
  } finally {
    idp.keys = idp.keys.filter((key) => key !== rsa);
  }
  const foreign = await explainToken(await idp.sign({ ...alice, iss: 'https://elsewhere.example.com/dex' }));
  expect(foreign.stdout).toContain(`token:     rejected: unknown_issuer: iss "https://elsewhere.example.com/dex" is not a configured issuer (configured: ${idp.issuer};`);
});

test('an anonymous rule is explained as such, with the token\'s verification beside it', async () => {
  const result = await explainToken(await idp.sign(alice), '/static/app.js');
  expect(result.stdout).toContain('token:     verified (');
  expect(result.stdout).toContain('decision:  200 allow (anonymous; client identity headers removed)');
});

test('keys that cannot be fetched: 503 jwks_unavailable with the fetch error', async () => {
  const down = await startIssuer([await createSigningKey('ES256', 'es-2')], '/gone');
  const token = await down.sign({ ...alice });
  await down.stop();
  const unreachable = writeTempConfig({
    issuers: [{ issuer: down.issuer, audiences: [AUDIENCE] }],
    jwks: { timeout: '2s' },
    rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }],
  });
  const result = await runCli(['explain', 'GET', 'https://kf.example.com/x', '--config', unreachable, '--token', tokenFile(token)]);
  expect(result.stdout).toContain(`token:     rejected: jwks_unavailable: the keys of ${down.issuer} (found by discovery at ${down.issuer}/.well-known/openid-configuration) could not be fetched: fetch failed: connect ECONNREFUSED`);
  expect(result.stdout).toContain('decision:  503 unavailable (jwks_unavailable)');
});

test('usage errors: --claims and --token together, an unreadable token file, claims that are not an object', async () => {
  const both = await runCli(['explain', 'GET', '/x', '--config', config, '--claims', '{}', '--token', '/nonexistent']);
  expect(both.code).toBe(2);
  expect(both.stderr).toContain('explain takes --claims or --token, not both');
  const missing = await runCli(['explain', 'GET', '/x', '--config', config, '--token', '/nonexistent/token.jwt']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('--token /nonexistent/token.jwt: cannot read: ENOENT');
  const notObject = await runCli(['explain', 'GET', '/x', '--config', config, '--claims', '["a"]']);
  expect(notObject.code).toBe(2);
  expect(notObject.stderr).toContain('--claims takes a JSON object of claims');
});
