/**
 * RFC 7662 introspection: the response validation (a pure function) table by table, and the config rules
 * for which issuer takes opaque tokens.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBearer, createBearerVerifier } from '../../src/authn/issuers.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { takesOpaqueTokens } from '../../src/config/schema.js';
import { validateIntrospection, IntrospectionUnavailableError, type IntrospectionExpectations } from '../../src/authn/introspection.js';

const NOW = 1_800_000_000_000;
const ISSUER = 'https://idp.example.com/realms/kf';
const EXPECT: IntrospectionExpectations = { issuer: ISSUER, audiences: ['kubeflow'], authorizedParties: ['kubeflow-cli'], checkAudience: true, clockSkewMs: 30_000 };
const inSeconds = (ms: number) => Math.floor((NOW + ms) / 1000);
const ACTIVE = { active: true, sub: 'u-1', aud: 'kubeflow', exp: inSeconds(300_000) };

describe('validateIntrospection', () => {
  test.each<{ name: string; body: Record<string, unknown>; expect?: Partial<IntrospectionExpectations>; reason: string }>([
    { name: 'active: false', body: { active: false }, reason: 'token_inactive' },
    { name: 'active missing', body: { sub: 'u-1', aud: 'kubeflow' }, reason: 'token_inactive' },
    { name: 'active "true" (a string)', body: { ...ACTIVE, active: 'true' }, reason: 'token_inactive' },
    { name: 'active 1', body: { ...ACTIVE, active: 1 }, reason: 'token_inactive' },
    { name: 'exp past beyond the skew', body: { ...ACTIVE, exp: inSeconds(-31_000) }, reason: 'token_expired' },
    { name: 'exp not a number', body: { ...ACTIVE, exp: '1800000300' }, reason: 'invalid_token' },
    { name: 'nbf in the future beyond the skew', body: { ...ACTIVE, nbf: inSeconds(60_000) }, reason: 'token_not_yet_valid' },
    { name: 'another issuer', body: { ...ACTIVE, iss: 'https://evil.example.com' }, reason: 'unknown_issuer' },
    { name: 'a refresh token', body: { ...ACTIVE, token_type: 'refresh_token' }, reason: 'invalid_token' },
    { name: 'a refresh token (Keycloak spelling)', body: { ...ACTIVE, token_type: 'Refresh' }, reason: 'invalid_token' },
    { name: 'aud and azp and client_id of others', body: { ...ACTIVE, aud: ['account'], azp: 'other-app', client_id: 'other-app' }, reason: 'wrong_audience' },
    { name: 'no aud at all', body: { active: true, sub: 'u-1' }, reason: 'wrong_audience' },
  ])('refuses $name ($reason)', ({ body, expect: overrides, reason }) => {
    expect(validateIntrospection(body, { ...EXPECT, ...overrides }, NOW)).toEqual({ kind: 'inactive', reason });
  });

  test.each<{ name: string; body: Record<string, unknown>; expect?: Partial<IntrospectionExpectations> }>([
    { name: 'aud holds an audience', body: ACTIVE },
    { name: 'aud array', body: { ...ACTIVE, aud: ['account', 'kubeflow'] } },
    { name: 'azp an authorized party', body: { ...ACTIVE, aud: 'account', azp: 'kubeflow-cli' } },
    { name: 'client_id an authorized party', body: { ...ACTIVE, aud: undefined, client_id: 'kubeflow-cli' } },
    { name: 'exp past within the skew', body: { ...ACTIVE, exp: inSeconds(-20_000) } },
    { name: 'no exp', body: { ...ACTIVE, exp: undefined } },
    { name: 'iss equal to the issuer', body: { ...ACTIVE, iss: ISSUER } },
    { name: 'token_type Bearer', body: { ...ACTIVE, token_type: 'Bearer' } },
    { name: 'any audience with the audience checked by the rules', body: { ...ACTIVE, aud: 'other' }, expect: { checkAudience: false } },
  ])('accepts $name', ({ body, expect: overrides }) => {
    const result = validateIntrospection(body, { ...EXPECT, ...overrides }, NOW);
    expect(result.kind).toBe('active');
    if (result.kind !== 'active') return;
    // The identity names its issuer even when the answer does not (opaque tokens' answers often omit iss).
    expect(result.claims.iss).toBe(ISSUER);
    expect(result.claims.sub).toBe('u-1');
    expect(result.expiresAt).toBe(typeof body.exp === 'number' ? body.exp * 1000 : undefined);
  });

  test.each([null, 'active', [], 42])('a body that is not a JSON object (%p) is the IdP failing, not the token', (body) => {
    expect(() => validateIntrospection(body, EXPECT, NOW)).toThrow(IntrospectionUnavailableError);
  });
});

describe('introspection config', () => {
  const intro = (extra: Record<string, unknown> = {}) => ({ clientId: 'authz', clientSecretFile: '/secrets/introspection', ...extra });
  // Each issuer its own user-id space (config/user-id-spaces.ts), so only the introspection rules speak.
  const issuer = (name: string, introspection?: Record<string, unknown>) => ({ issuer: `https://${name}.example.com`, audiences: ['kubeflow'], userIdPrefix: `${name}:`, ...(introspection ? { introspection } : {}) });
  const problemsOf = (input: unknown): readonly string[] => {
    try {
      parseConfig(input);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
    return [];
  };

  test('defaults: the only introspecting issuer takes opaque tokens, JWTs are not introspected', () => {
    const config = parseConfig({ issuers: [issuer('a', intro()), issuer('b')] });
    const settings = config.issuers[0]!.introspection!;
    expect(settings).toMatchObject({ jwt: 'never', cacheFor: 60_000, inactiveCacheFor: 10_000, unavailableFor: 1_000, timeout: 5_000 });
    expect(takesOpaqueTokens(config, settings)).toBe(true);
  });

  test('several introspecting issuers must each say whether they take opaque tokens', () => {
    expect(problemsOf({ issuers: [issuer('a', intro()), issuer('b', intro({ jwt: 'always' }))] })).toEqual([
      expect.stringContaining('issuers.0.introspection.opaqueTokens: is required when several issuers have introspection'),
      expect.stringContaining('issuers.1.introspection.opaqueTokens: is required when several issuers have introspection'),
    ]);
  });

  test('at most one issuer takes opaque tokens', () => {
    expect(problemsOf({ issuers: [issuer('a', intro({ opaqueTokens: true })), issuer('b', intro({ opaqueTokens: true }))] })).toEqual([
      expect.stringContaining('issuers.1.introspection.opaqueTokens: true on issuers.0.introspection already'),
    ]);
    const config = parseConfig({ issuers: [issuer('a', intro({ opaqueTokens: true })), issuer('b', intro({ opaqueTokens: false, jwt: 'always' }))] });
    expect(config.issuers.map((entry) => takesOpaqueTokens(config, entry.introspection!))).toEqual([true, false]);
  });

  test('an introspection that would introspect nothing is refused', () => {
    expect(problemsOf({ issuers: [issuer('a', intro({ opaqueTokens: false }))] })).toEqual([
      expect.stringContaining('issuers.0.introspection.opaqueTokens: false with jwt: never would introspect nothing'),
    ]);
  });

  test('durations are bounded (a revoked token must not live for a day)', () => {
    expect(problemsOf({ issuers: [issuer('a', intro({ cacheFor: '1d' }))] })).toEqual([expect.stringContaining('issuers.0.introspection.cacheFor: must be at most 1h')]);
  });

  test('under oidc too', () => {
    const config = parseConfig({ publicUrl: 'https://kf.example.com', session: { secretsFile: '/s' }, oidc: { issuer: 'https://idp.example.com', clientId: 'kubeflow', introspection: intro({ jwt: 'always' }) } });
    expect(takesOpaqueTokens(config, config.oidc!.introspection!)).toBe(true);
  });
});

describe('the introspection client secret file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-introspection-'));
  const configWith = (clientSecretFile: string) => parseConfig({ issuers: [{ issuer: 'https://idp.example.com', audiences: ['kubeflow'], introspection: { clientId: 'authz', clientSecretFile } }] });
  const build = (file: string) => buildBearer(configWith(file), createMetrics({ defaultMetrics: false }), silentLogger);

  test('its first line is read when the verifier is built; a missing or empty file stops it, naming the file only', () => {
    const good = join(dir, 'good');
    writeFileSync(good, 's3cret-value\nignored second line\n');
    expect(build(good).verifier).not.toBeNull();
    expect(() => build(join(dir, 'missing'))).toThrow(`introspection.clientSecretFile ${join(dir, 'missing')} cannot be read: ENOENT`);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(() => build(empty)).toThrow(`introspection.clientSecretFile ${empty} is empty`);
  });

  test('explain --token (createBearerVerifier) does not introspect, so it needs no secret file', () => {
    expect(createBearerVerifier(configWith(join(dir, 'missing')), createMetrics({ defaultMetrics: false }), silentLogger)).not.toBeNull();
  });
});
