import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import {
  AUTH_REQUEST_HEADERS,
  CHECK_REQUEST_HEADERS,
  DOWNSTREAM_ON_ALLOW,
  DOWNSTREAM_ON_DENY,
  extAuthzProvider,
  METHOD_OVERRIDE_HEADERS,
  upstreamHeaderPlan,
  REMOVE_HEADERS_HEADER,
  underscoreSpellings,
  type UpstreamHeaderPlan,
} from '../../src/envoy-contract.js';

const list = (value: string): string[] => (value === '' ? [] : value.split(','));

describe('underscoreSpellings', () => {
  test.each<{ name: string; expected: string[] }>([
    { name: 'kubeflow-userid', expected: ['kubeflow_userid'] },
    { name: 'kubeflow-groups', expected: ['kubeflow_groups'] },
    { name: 'x-auth-request-user', expected: ['x_auth-request-user', 'x-auth_request-user', 'x_auth_request-user', 'x-auth-request_user', 'x_auth-request_user', 'x-auth_request_user', 'x_auth_request_user'] },
    { name: 'authorization', expected: [] },
  ])('$name has exactly $expected', ({ name, expected }) => {
    expect([...underscoreSpellings(name)].sort()).toEqual([...expected].sort());
  });

  test.each<{ name: string; dashes: number }>([
    { name: 'a-b', dashes: 1 },
    { name: 'kubeflow-userid', dashes: 1 },
    { name: 'x-auth-request-email', dashes: 3 },
    { name: 'a-b-c-d-e-f', dashes: 5 },
    { name: 'plain', dashes: 0 },
  ])('$name: all 2^$dashes − 1 variants, distinct, none the input, each the input again with "_" → "-"', ({ name, dashes }) => {
    const variants = underscoreSpellings(name);
    expect({
      count: variants.length,
      distinct: new Set(variants).size,
      hasInput: variants.includes(name),
      allMapBack: variants.every((v) => v.replaceAll('_', '-') === name && v.includes('_')),
    }).toEqual({ count: 2 ** dashes - 1, distinct: 2 ** dashes - 1, hasInput: false, allMapBack: true });
  });
});

describe('upstreamHeaderPlan', () => {
  /** The config, or "refused" when parseConfig rejects it with a ConfigError. */
  const configOrRefusal = (identity: ConfigInput['identity']): Config | 'refused' => {
    try {
      return parseConfig({ identity });
    } catch (error) {
      if (error instanceof ConfigError) return 'refused';
      throw error;
    }
  };
  const planOf = (identity: ConfigInput['identity']): UpstreamHeaderPlan => upstreamHeaderPlan(parseConfig({ identity }));
  const ALL_DEFAULT = ['kubeflow-userid', 'kubeflow-groups', 'x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups'];
  const UNDERSCORED_DEFAULT = ALL_DEFAULT.flatMap(underscoreSpellings);

  test.each<{ what: string; identity: ConfigInput['identity']; expected: string[] }>([
    { what: 'defaults', identity: {}, expected: [...ALL_DEFAULT, 'cookie'] },
    { what: 'with x-auth-request headers on', identity: { authRequestHeaders: true }, expected: [...ALL_DEFAULT, 'cookie'] },
    { what: 'custom header names', identity: { userIdHeader: 'x-user', groupsHeader: 'x-groups' }, expected: ['x-user', 'x-groups', ...AUTH_REQUEST_HEADERS, 'cookie'] },
    { what: 'the ID token forwarded', identity: { forwardIdToken: true }, expected: [...ALL_DEFAULT, 'authorization', 'cookie'] },
  ])('upstreamOnAllow lists every header the code can set upstream: identity headers and the Cookie header without ours ($what)', ({ identity, expected }) => {
    expect(planOf(identity).upstreamOnAllow).toEqual(expected);
  });

  test.each<{ what: string; identity: ConfigInput['identity']; expected: string[] }>([
    { what: 'defaults', identity: {}, expected: [...ALL_DEFAULT, ...UNDERSCORED_DEFAULT, ...METHOD_OVERRIDE_HEADERS] },
    { what: 'x-auth-request headers on', identity: { authRequestHeaders: true }, expected: [...ALL_DEFAULT, ...UNDERSCORED_DEFAULT, ...METHOD_OVERRIDE_HEADERS] },
    {
      what: 'custom header names',
      identity: { userIdHeader: 'x-user', groupsHeader: 'x-groups' },
      expected: ['x-user', 'x-groups', ...AUTH_REQUEST_HEADERS, 'x_user', 'x_groups', ...AUTH_REQUEST_HEADERS.flatMap(underscoreSpellings), ...METHOD_OVERRIDE_HEADERS],
    },
  ])('an anonymous allow removes every identity header, every "_" spelling and the method-override headers ($what)', ({ identity, expected }) => {
    expect(list(planOf(identity).removeOnAnonymousAllow).sort()).toEqual([...expected].sort());
  });

  test.each<{ what: string; identity: ConfigInput['identity']; expected: string[] }>([
    { what: 'x-auth-request headers off: those headers, every "_" spelling, the method overrides', identity: { authRequestHeaders: false }, expected: [...AUTH_REQUEST_HEADERS, ...UNDERSCORED_DEFAULT, ...METHOD_OVERRIDE_HEADERS] },
    { what: 'x-auth-request headers on: only the "_" spellings and the method overrides', identity: { authRequestHeaders: true }, expected: [...UNDERSCORED_DEFAULT, ...METHOD_OVERRIDE_HEADERS] },
  ])('an authenticated allow removes $what', ({ identity, expected }) => {
    expect(list(planOf(identity).removeOnAuthenticatedAllow).sort()).toEqual([...expected].sort());
  });

  test('removeMethodOverrideHeaders: false leaves the method-override headers to the upstream', () => {
    const plan = upstreamHeaderPlan(parseConfig({ removeMethodOverrideHeaders: false }));
    const removed = [...list(plan.removeOnAnonymousAllow), ...list(plan.removeOnAuthenticatedAllow)];
    expect(METHOD_OVERRIDE_HEADERS.filter((h) => removed.includes(h))).toEqual([]);
    expect(METHOD_OVERRIDE_HEADERS).toEqual(['x-http-method-override', 'x-http-method', 'x-method-override']);
  });

  test('the value is a plain comma-separated list of lower-case header names', () => {
    const plan = planOf({});
    expect([plan.removeOnAnonymousAllow, plan.removeOnAuthenticatedAllow].every((value) => /^[a-z0-9_-]+(,[a-z0-9_-]+)*$/.test(value))).toBe(true);
  });

  /**
   * Envoy removes after setting, so a header we set must never be in the removal list of the same
   * answer. A config whose headers collide that way may instead be refused at start-up.
   */
  test.each<{ what: string; identity: ConfigInput['identity'] }>([
    { what: 'defaults', identity: {} },
    { what: 'x-auth-request headers on', identity: { authRequestHeaders: true } },
    { what: 'custom names', identity: { userIdHeader: 'x-forwarded-user', groupsHeader: 'x-forwarded-groups', authRequestHeaders: true } },
    { what: 'a user-id header that is also an x-auth-request name', identity: { userIdHeader: 'x-auth-request-user' } },
    { what: 'a user-id header spelled with "_" like an x-auth-request header', identity: { userIdHeader: 'x_auth_request_user' } },
    { what: 'a groups header that is a "_" spelling of the user-id header', identity: { userIdHeader: 'x-user', groupsHeader: 'x_user' } },
  ])('an authenticated allow never removes a header it sets ($what)', ({ identity }) => {
    const config = configOrRefusal(identity);
    if (config === 'refused') return; // refusing the config at start-up is the other correct answer
    const plan = upstreamHeaderPlan(config);
    const set = [config.identity.userIdHeader, config.identity.groupsHeader, ...(config.identity.authRequestHeaders ? AUTH_REQUEST_HEADERS : [])];
    expect(list(plan.removeOnAuthenticatedAllow).filter((header) => set.includes(header))).toEqual([]);
  });

  /** Every spelling a WSGI/CGI upstream reads as the same variable as `header` ("-" and "_" alike). */
  const sameVariable = (header: string): string[] => {
    const canonical = header.replaceAll('_', '-');
    return [canonical, ...underscoreSpellings(canonical)];
  };

  /**
   * A client-sent copy of an identity header must never reach an upstream under any spelling the
   * upstream reads as that header (DESIGN §6). A config with such names may instead be refused.
   */
  test.each<{ what: string; identity: ConfigInput['identity'] }>([
    { what: 'defaults', identity: {} },
    { what: 'x-auth-request headers on', identity: { authRequestHeaders: true } },
    { what: 'a user-id header written with "_"', identity: { userIdHeader: 'kubeflow_userid' } },
    { what: 'a groups header written with "_"', identity: { groupsHeader: 'x_groups', authRequestHeaders: true } },
  ])('no spelling of an identity header survives an allow unless we set exactly it ($what)', ({ identity }) => {
    const config = configOrRefusal(identity);
    if (config === 'refused') return; // refusing the config at start-up is the other correct answer
    const plan = upstreamHeaderPlan(config);
    const set = [config.identity.userIdHeader, config.identity.groupsHeader, ...(config.identity.authRequestHeaders ? AUTH_REQUEST_HEADERS : [])];
    const spellings = plan.upstreamOnAllow.filter((h) => h !== 'cookie' && h !== 'authorization').flatMap(sameVariable);
    const anonymous = new Set(list(plan.removeOnAnonymousAllow));
    const authenticated = new Set(list(plan.removeOnAuthenticatedAllow));
    expect({
      survivingAnonymous: spellings.filter((h) => !anonymous.has(h)),
      survivingAuthenticated: spellings.filter((h) => !authenticated.has(h) && !set.includes(h)),
    }).toEqual({ survivingAnonymous: [], survivingAuthenticated: [] });
  });
});

describe('extAuthzProvider', () => {
  const config = parseConfig({ checkPathPrefix: '/ext-authz', identity: { authRequestHeaders: true } });
  const provider = extAuthzProvider(config, { service: 'oidc-authz.auth.svc.cluster.local', port: 8080 });

  test.each<{ field: keyof typeof provider; expected: unknown }>([
    { field: 'service', expected: 'oidc-authz.auth.svc.cluster.local' },
    { field: 'port', expected: 8080 },
    { field: 'pathPrefix', expected: '/ext-authz' },
    { field: 'timeout', expected: '3s' },
    { field: 'failOpen', expected: false },
    { field: 'statusOnError', expected: '503' },
    { field: 'includeRequestHeadersInCheck', expected: [...CHECK_REQUEST_HEADERS] },
    { field: 'headersToUpstreamOnAllow', expected: ['kubeflow-userid', 'kubeflow-groups', 'x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups', 'cookie'] },
    { field: 'headersToDownstreamOnAllow', expected: ['set-cookie'] },
    { field: 'headersToDownstreamOnDeny', expected: ['set-cookie', 'content-type', 'cache-control', 'retry-after', 'content-security-policy', 'x-content-type-options'] },
  ])('$field is $expected', ({ field, expected }) => {
    expect(provider[field]).toEqual(expected);
  });

  test('the check sees every request header it decides on', () => {
    expect(CHECK_REQUEST_HEADERS.filter((h) => ['authorization', 'cookie', 'accept', 'x-requested-with', 'sec-fetch-mode', 'x-forwarded-proto'].includes(h))).toEqual(
      ['authorization', 'cookie', 'accept', 'x-requested-with', 'sec-fetch-mode', 'x-forwarded-proto'],
    );
  });

  test('an explicit timeout is used', () => {
    expect(extAuthzProvider(config, { service: 's', port: 1, timeout: '1s' }).timeout).toBe('1s');
  });

  test('the lists are copies: changing one does not change the contract', () => {
    const first = extAuthzProvider(config, { service: 's', port: 1 });
    (first.headersToDownstreamOnAllow as string[]).push('content-type');
    first.includeRequestHeadersInCheck.pop();
    const second = extAuthzProvider(config, { service: 's', port: 1 });
    expect({ allow: second.headersToDownstreamOnAllow, check: second.includeRequestHeadersInCheck }).toEqual({ allow: [...DOWNSTREAM_ON_ALLOW], check: [...CHECK_REQUEST_HEADERS] });
  });

  test.each<{ what: string; list: readonly string[]; forbidden: string[] }>([
    { what: 'headersToDownstreamOnAllow never holds content-type (Envoy appends)', list: DOWNSTREAM_ON_ALLOW, forbidden: ['content-type'] },
    { what: 'headersToDownstreamOnDeny never passes identity headers to the client', list: DOWNSTREAM_ON_DENY, forbidden: ['kubeflow-userid', 'kubeflow-groups', 'authorization'] },
  ])('$what', ({ list: headers, forbidden }) => {
    expect(headers.filter((h) => forbidden.includes(h))).toEqual([]);
  });

  test('the removal header is the one Envoy reads', () => {
    expect(REMOVE_HEADERS_HEADER).toBe('x-envoy-auth-headers-to-remove');
  });
});
