/* eslint-disable @typescript-eslint/no-explicit-any -- configs are edited as raw YAML objects; parseConfig checks each shape */
/**
 * Hot reload's contract (src/reload/contract.ts): which changes a reload applies, which need a restart,
 * and the config to apply when a file asks for both (new reloadable fields, running restart-only ones).
 */
import { parseConfig } from '../../src/config/load.js';
import { changedFields, isReloadable, keepRunningValues, RELOADABLE_FIELDS, restartRequiredChanges } from '../../src/reload/contract.js';

const base = {
  listen: { port: 8080 },
  publicUrl: 'https://kubeflow.example.com',
  oidc: { issuer: 'https://idp.example.com', clientId: 'kubeflow', audiences: ['extra'] },
  session: { secretsFile: '/secrets/cookie-secrets' },
  issuers: [{ issuer: 'https://k8s.example.com', audiences: ['gw'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' }],
  rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }],
} as const;

const withChange = (change: (raw: Record<string, any>) => void): Record<string, unknown> => {
  const raw = structuredClone(base) as Record<string, any>;
  change(raw);
  return raw;
};
const restartRequired = (change: (raw: Record<string, any>) => void) => restartRequiredChanges(parseConfig(base), parseConfig(withChange(change)));

describe('changedFields', () => {
  test('objects field by field, arrays and values whole, a side-only field as itself', () => {
    expect(changedFields({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { b: 2, c: [1, 2] }, d: 1 })).toEqual(['a.b']);
    expect(changedFields({ a: { c: [1, 2] } }, { a: { c: [2, 1] } })).toEqual(['a.c']);
    expect(changedFields({ a: 1 }, { a: 1, b: { c: 1 } })).toEqual(['b']);
    expect(changedFields({ x: [{ y: 1 }] }, { x: [{ y: 1 }] })).toEqual([]);
    expect(changedFields(1, 2)).toEqual(['(root)']);
  });

  test('the same config written differently (a duration in other units, a default spelled out) has no changes', () => {
    const a = parseConfig({ ...base, jwks: { maxAge: '10m' } });
    const b = parseConfig({ ...base, jwks: { maxAge: 600 }, defaultRule: 'deny' });
    expect(changedFields(a, b)).toEqual([]);
  });
});

describe('restartRequiredChanges', () => {
  test.each<[string, (raw: Record<string, any>) => void]>([
    ['a rule', (raw) => raw.rules.push({ name: 'x', paths: ['/x'], allow: 'anonymous' })],
    ['defaultRule', (raw) => (raw.defaultRule = 'authenticated')],
    ['an issuer added', (raw) => raw.issuers.push({ issuer: 'https://other.example.com', audiences: ['a'], userIdPrefix: 'other:' })],
    ["an issuer's audiences", (raw) => (raw.issuers[0].audiences = ['gw', 'gw2'])],
    ['the user-id claim, prefix and transformers', (raw) => (raw.identity = { userIdClaim: 'preferred_username', userIdPrefix: 'p:', userIdTransformers: [{ match: '^(.*)@x$', replace: '$1' }] })],
    ['the groups claim and group transformers', (raw) => (raw.identity = { groupsClaim: 'roles', groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] })],
    ["the oidc issuer's bearer settings", (raw) => Object.assign(raw.oidc, { audiences: ['other'], authorizedParties: ['cli'], machineIdentity: { when: 'client_id' } })],
    ['the log level', (raw) => (raw.log = { level: 'debug' })],
  ])('%s: applied by a reload', (_what, change) => {
    expect(restartRequired(change)).toEqual([]);
  });

  test.each<[string, (raw: Record<string, any>) => void, string[]]>([
    ['the app port', (raw) => (raw.listen = { port: 9000 }), ['listen.port']],
    ['the metrics port and host', (raw) => (raw.listen = { port: 8080, metricsPort: 9999, metricsHost: '127.0.0.1' }), ['listen.metricsHost', 'listen.metricsPort']],
    ['the check path prefix', (raw) => (raw.checkPathPrefix = '/ext-authz'), ['checkPathPrefix']],
    ['identity header names (Envoy\'s contract)', (raw) => (raw.identity = { userIdHeader: 'x-user' }), ['identity.userIdHeader']],
    ['the oidc issuer and client', (raw) => Object.assign(raw.oidc, { issuer: 'https://idp2.example.com', clientId: 'other' }), ['oidc.clientId', 'oidc.issuer']],
    ['login removed (oidc as a whole, though some of its fields reload)', (raw) => {
      delete raw.oidc;
      delete raw.publicUrl;
    }, ['oidc', 'publicUrl']],
    ['the session cookie name', (raw) => (raw.session = { ...raw.session, cookieName: 'other' }), ['session.cookieName']],
    ['the secrets file path (its content reloads)', (raw) => (raw.session = { secretsFile: '/elsewhere' }), ['session.secretsFile']],
    ['a rule and the port: only the port needs a restart', (raw) => {
      raw.rules = [];
      raw.listen = { port: 1 };
    }, ['listen.port']],
  ])('%s: needs a restart', (_what, change, fields) => {
    expect(restartRequired(change)).toEqual(fields);
  });

  test('every reloadable field is a field of the config', () => {
    const config = parseConfig({ ...base, oidc: { ...base.oidc, userIdPrefix: 'p', userIdMustStartWith: 'x', userIdSpace: 's', jwksUri: 'https://idp.example.com/jwks', algorithms: ['RS256'], machineIdentity: {}, introspection: { clientId: 'authz', clientSecretFile: '/secrets/introspection' } } });
    for (const field of RELOADABLE_FIELDS) {
      const [head, tail] = field.split('.') as [keyof typeof config, string | undefined];
      expect(head in config).toBe(true);
      if (tail !== undefined) expect(tail in (config[head] as object)).toBe(true);
    }
    expect(isReloadable('rules.0.paths')).toBe(true);
    expect(isReloadable('identity.userIdHeader')).toBe(false);
    expect(isReloadable('oidc')).toBe(false);
  });
});

describe('keepRunningValues', () => {
  test('restart-only fields take the running values (or their defaults), the rest stays new', () => {
    const running = withChange((raw) => (raw.listen = { port: 8080, metricsPort: 9100 }));
    const next = withChange((raw) => {
      raw.listen = { port: 9000 };
      raw.checkPathPrefix = '/other';
      raw.rules = [{ name: 'none', paths: ['/**'], allow: 'deny' }];
    });
    const fields = restartRequiredChanges(parseConfig(running), parseConfig(next));
    expect(fields).toEqual(['checkPathPrefix', 'listen.metricsPort', 'listen.port']);
    const applied = parseConfig(keepRunningValues(next, running, fields));
    expect(applied.listen).toMatchObject({ port: 8080, metricsPort: 9100 });
    expect(applied.checkPathPrefix).toBe('/authz');
    expect(applied.rules.map((r) => r.name)).toEqual(['none']);
    expect(restartRequiredChanges(parseConfig(running), applied)).toEqual([]);
    // The new raw config itself is left alone.
    expect((next.listen as { port: number }).port).toBe(9000);
  });

  test('a restart-only object removed or added is put back or taken away whole', () => {
    const next = withChange((raw) => {
      delete raw.oidc;
      delete raw.publicUrl;
      raw.rules = [];
    });
    const fields = restartRequiredChanges(parseConfig(base), parseConfig(next));
    const applied = parseConfig(keepRunningValues(next, base as unknown as Record<string, unknown>, fields));
    expect(applied.oidc?.issuer).toBe('https://idp.example.com');
    expect(applied.rules).toEqual([]);

    const added = withChange((raw) => (raw.session = { ...raw.session, domain: 'example.com' }));
    const back = keepRunningValues(added, base as unknown as Record<string, unknown>, ['session.domain']);
    expect(parseConfig(back).session.domain).toBeUndefined();
  });
});
