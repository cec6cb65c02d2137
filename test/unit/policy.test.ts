import { buildIdentity, compileIdentityMapping, type Identity } from '../../src/authn/identity.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { ConfigInput, Rule } from '../../src/config/schema.js';
import { evaluateRequirement, type UnmetRequirement } from '../../src/policy/requirement.js';
import { compilePolicy, DEFAULT_RULE_NAME, PolicyError, type Access, type Policy } from '../../src/policy/rules.js';
import { pathSegments, type PathParams } from '../../src/policy/template.js';

function policyOf(input: ConfigInput): Policy {
  return compilePolicy(parseConfig(input));
}

function matchOf(policy: Policy, method: string, host: string, path: string): { rule: string; index: number; params: PathParams } {
  const { rule, params } = policy.match(method, host, pathSegments(path));
  return { rule: rule.name, index: rule.index, params: { ...params } };
}

const HOST = 'kubeflow.example.com';

describe('compilePolicy: the first matching rule wins', () => {
  const policy = policyOf({
    rules: [
      { name: 'static', paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
      { name: 'shadowed', paths: ['/static/secret'], allow: 'deny' },
      { name: 'admin-host', hosts: ['admin.example.com'], paths: ['/**'], allow: { groups: ['admins'] } },
      { name: 'apps', hosts: ['*.apps.example.com', 'legacy.example.com'], paths: ['/**'], allow: 'authenticated' },
      { name: 'api-write', paths: ['/api/**'], methods: ['POST', 'PUT', 'DELETE'], allow: { groups: ['writers'] } },
      { name: 'api-read', paths: ['/api/**'], methods: ['GET'], allow: 'authenticated' },
      { name: 'api-probe', paths: ['/api/**'], methods: ['HEAD'], allow: 'anonymous' },
      { name: 'api-rest', paths: ['/api/**'], allow: 'deny' },
      { name: 'profiles', paths: ['/profiles/{user}', '/people/{user}/**'], allow: 'authenticated' },
      { name: 'pipelines', paths: ['/pipelines/*/runs'], allow: 'authenticated' },
    ],
  });

  test.each<{ what: string; method: string; host: string; path: string; expected: { rule: string; index: number; params: PathParams } }>([
    { what: 'a public path matches the first rule', method: 'GET', host: HOST, path: '/static/app.js', expected: { rule: 'static', index: 0, params: {} } },
    { what: 'a rule\'s second path matches too', method: 'GET', host: HOST, path: '/favicon.ico', expected: { rule: 'static', index: 0, params: {} } },
    { what: 'an earlier rule shadows a later, more specific one', method: 'GET', host: HOST, path: '/static/secret', expected: { rule: 'static', index: 0, params: {} } },
    { what: 'an earlier rule wins on every host', method: 'GET', host: 'admin.example.com', path: '/static/app.js', expected: { rule: 'static', index: 0, params: {} } },
    { what: 'a host-specific rule matches its host', method: 'GET', host: 'admin.example.com', path: '/dashboard', expected: { rule: 'admin-host', index: 2, params: {} } },
    { what: 'a host glob matches a sub-domain', method: 'GET', host: 'jupyter.apps.example.com', path: '/', expected: { rule: 'apps', index: 3, params: {} } },
    { what: 'the second host of a rule matches too', method: 'GET', host: 'legacy.example.com', path: '/x', expected: { rule: 'apps', index: 3, params: {} } },
    { what: 'a host glob does not match its apex', method: 'GET', host: 'apps.example.com', path: '/x', expected: { rule: DEFAULT_RULE_NAME, index: -1, params: {} } },
    { what: 'a host rule does not match other hosts', method: 'GET', host: HOST, path: '/dashboard', expected: { rule: DEFAULT_RULE_NAME, index: -1, params: {} } },
    { what: 'a method filter lets its methods through', method: 'POST', host: HOST, path: '/api/v1/runs', expected: { rule: 'api-write', index: 4, params: {} } },
    { what: 'a method filter skips other methods to the next rule', method: 'GET', host: HOST, path: '/api/v1/runs', expected: { rule: 'api-read', index: 5, params: {} } },
    { what: 'GET implies HEAD: HEAD never falls through to a later rule', method: 'HEAD', host: HOST, path: '/api/v1/runs', expected: { rule: 'api-read', index: 5, params: {} } },
    { what: 'a method no filter lists falls to a rule without filter', method: 'PATCH', host: HOST, path: '/api/v1/runs', expected: { rule: 'api-rest', index: 7, params: {} } },
    { what: 'methods are matched exactly (no lower-case spelling)', method: 'post', host: HOST, path: '/api/v1/runs', expected: { rule: 'api-rest', index: 7, params: {} } },
    { what: 'a captured parameter is returned', method: 'GET', host: HOST, path: '/profiles/alice', expected: { rule: 'profiles', index: 8, params: { user: 'alice' } } },
    { what: 'the second path\'s capture is returned', method: 'GET', host: HOST, path: '/people/bob/photos/1', expected: { rule: 'profiles', index: 8, params: { user: 'bob' } } },
    { what: 'a trailing slash matches the same rule', method: 'GET', host: HOST, path: '/profiles/alice/', expected: { rule: 'profiles', index: 8, params: { user: 'alice' } } },
    { what: 'a single-segment wildcard matches', method: 'GET', host: HOST, path: '/pipelines/p1/runs', expected: { rule: 'pipelines', index: 9, params: {} } },
    { what: 'matching is case-sensitive, so a differently cased path gets the default', method: 'GET', host: HOST, path: '/STATIC/app.js', expected: { rule: DEFAULT_RULE_NAME, index: -1, params: {} } },
    { what: 'an unmatched path gets the default rule', method: 'GET', host: HOST, path: '/nowhere', expected: { rule: DEFAULT_RULE_NAME, index: -1, params: {} } },
    { what: 'the root with no root rule gets the default rule', method: 'GET', host: HOST, path: '/', expected: { rule: DEFAULT_RULE_NAME, index: -1, params: {} } },
  ])('$what', ({ method, host, path, expected }) => {
    expect(matchOf(policy, method, host, path)).toEqual(expected);
  });

  test.each<{ what: string; index: number; expected: Access['kind'] }>([
    { what: 'anonymous', index: 0, expected: 'anonymous' },
    { what: 'deny', index: 1, expected: 'deny' },
    { what: 'a requirement', index: 2, expected: 'require' },
    { what: 'authenticated', index: 3, expected: 'authenticated' },
  ])('a rule allowing $what compiles to access kind "$expected"', ({ index, expected }) => {
    expect(policy.rules[index]?.access.kind).toBe(expected);
  });

  test.each<{ what: string; index: number; expected: string[] | null }>([
    { what: 'a filter without GET is kept as written', index: 4, expected: ['DELETE', 'POST', 'PUT'] },
    { what: 'a filter with GET also holds HEAD', index: 5, expected: ['GET', 'HEAD'] },
    { what: 'a HEAD-only filter does not gain GET', index: 6, expected: ['HEAD'] },
    { what: 'no filter means every method', index: 7, expected: null },
  ])('method set: $what', ({ index, expected }) => {
    const methods = policy.rules[index]?.methods;
    expect(methods === null || methods === undefined ? null : [...methods].sort()).toEqual(expected);
  });

  test('every compiled rule keeps its name and position', () => {
    expect(policy.rules.map((rule) => [rule.name, rule.index])).toEqual([
      ['static', 0], ['shadowed', 1], ['admin-host', 2], ['apps', 3], ['api-write', 4],
      ['api-read', 5], ['api-probe', 6], ['api-rest', 7], ['profiles', 8], ['pipelines', 9],
    ]);
  });
});

describe('compilePolicy: the default rule', () => {
  test.each<{ what: string; input: ConfigInput; expected: Access }>([
    { what: 'denies when defaultRule is not set', input: {}, expected: { kind: 'deny' } },
    { what: 'denies when defaultRule is "deny"', input: { defaultRule: 'deny' }, expected: { kind: 'deny' } },
    { what: 'asks for a login when defaultRule is "authenticated"', input: { defaultRule: 'authenticated' }, expected: { kind: 'authenticated' } },
  ])('$what', ({ input, expected }) => {
    const policy = policyOf(input);
    expect(policy.defaultRule.access).toEqual(expected);
    const match = policy.match('GET', HOST, ['anything']);
    expect(match.rule).toBe(policy.defaultRule);
    expect({ name: match.rule.name, index: match.rule.index, params: { ...match.params } }).toEqual({ name: 'default', index: -1, params: {} });
  });

  test('the default rule has no host, path or method filter', () => {
    const { defaultRule } = policyOf({});
    expect({ hosts: defaultRule.hosts, templates: defaultRule.templates, methods: defaultRule.methods }).toEqual({ hosts: null, templates: [], methods: null });
  });
});

describe('compilePolicy refuses rules it cannot use, naming the config field', () => {
  const rule = (overrides: Partial<Rule>): Rule => ({ name: 'r', paths: ['/**'], allow: 'authenticated', ...overrides });
  const ok: Rule = rule({ name: 'ok' });

  test.each<{ what: string; rules: Rule[]; path: string; message: string }>([
    {
      what: 'a group {param} that no path captures',
      rules: [rule({ paths: ['/x/**'], allow: { groups: ['{ws}'] } })],
      path: 'rules.0.allow',
      message: 'rules.0.allow: uses {ws} but path "/x/**" does not capture it',
    },
    {
      what: 'a {param} that only one of two paths captures',
      rules: [ok, rule({ paths: ['/workspaces/{ws}/**', '/shared/**'], allow: { groups: ['{ws}'] } })],
      path: 'rules.1.allow',
      message: 'rules.1.allow: uses {ws} but path "/shared/**" does not capture it',
    },
    {
      what: 'a {param} in a claim path',
      rules: [rule({ paths: ['/w/{id}'], allow: { claims: { 'resource_access.{ws}.roles': 'ws_access' } } })],
      path: 'rules.0.allow',
      message: 'rules.0.allow: uses {ws} but path "/w/{id}" does not capture it',
    },
    {
      what: 'a {param} in a claim value',
      rules: [rule({ paths: ['/w/{id}'], allow: { claims: { namespace: '{ns}' } } })],
      path: 'rules.0.allow',
      message: 'rules.0.allow: uses {ns} but path "/w/{id}" does not capture it',
    },
    {
      what: 'a {param} in a user',
      rules: [rule({ paths: ['/w/{id}'], allow: { users: ['{owner}'] } })],
      path: 'rules.0.allow',
      message: 'rules.0.allow: uses {owner} but path "/w/{id}" does not capture it',
    },
    {
      what: 'a {param} inside anyOf',
      rules: [ok, ok, rule({ name: 'nested', paths: ['/w/{id}'], allow: { anyOf: [{ groups: ['admins'] }, { groups: ['{ws}'] }] } })],
      path: 'rules.2.allow',
      message: 'rules.2.allow: uses {ws} but path "/w/{id}" does not capture it',
    },
    {
      what: 'a bad path template',
      rules: [rule({ paths: ['/ok/**', '/a/**/b'] })],
      path: 'rules.0.paths.1',
      message: 'rules.0.paths.1: "/a/**/b": "**" may only be the last segment',
    },
    {
      what: 'a path template without leading slash',
      rules: [ok, rule({ paths: ['static/**'] })],
      path: 'rules.1.paths.0',
      message: 'rules.1.paths.0: "static/**": must start with "/"',
    },
  ])('$what', ({ rules, path, message }) => {
    let caught: unknown;
    try {
      compilePolicy({ rules, defaultRule: 'deny' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect({ path: (caught as PolicyError).path, message: (caught as PolicyError).message }).toEqual({ path, message });
  });

  test('parseConfig reports a PolicyError as a ConfigError problem', () => {
    let caught: unknown;
    try {
      parseConfig({ rules: [{ name: 'ws', paths: ['/x/**'], allow: { groups: ['{ws}'] } }] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual(['rules.0.allow: uses {ws} but path "/x/**" does not capture it']);
  });

  test('a {param} captured by every path compiles', () => {
    const policy = compilePolicy({ rules: [rule({ paths: ['/a/{ws}', '/b/{ws}/**'], allow: { groups: ['{ws}'] } })], defaultRule: 'deny' });
    expect(policy.rules[0]?.access.kind).toBe('require');
  });

  test('a camelCase {param} used in users compiles (placeholder names are not lower-cased)', () => {
    expect(() => compilePolicy({ rules: [rule({ paths: ['/profiles/{userId}'], allow: { users: ['{userId}'] } })], defaultRule: 'deny' })).not.toThrow();
  });
});

describe('the EOEPCA workspace policy', () => {
  const config = parseConfig({
    rules: [
      { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
      { name: 'workspace-read', paths: ['/workspaces/{ws}/**'], methods: ['GET', 'HEAD'], allow: { groups: ['{ws}'] } },
      { name: 'workspace-write', paths: ['/workspaces/{ws}/**'], allow: { claims: { 'resource_access.{ws}.roles': 'ws_access' } } },
      { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
    ],
  });
  const policy = compilePolicy(config);
  const mapping = compileIdentityMapping(config.identity);

  function identity(claims: Record<string, unknown>): Identity {
    const result = buildIdentity({ email: 'alice@example.com', email_verified: true, ...claims }, mapping, 'bearer');
    if (!result.ok) throw new Error(`test identity refused: ${result.reason}`);
    return result.identity;
  }

  /** The rule that governs the request, and what its access demands of this identity (null: allowed). */
  function decide(method: string, path: string, who: Identity): { rule: string; unmet: UnmetRequirement | 'deny' | null } {
    const { rule, params } = policy.match(method, HOST, pathSegments(path));
    const access = rule.access;
    if (access.kind === 'deny') return { rule: rule.name, unmet: 'deny' };
    if (access.kind !== 'require') return { rule: rule.name, unmet: null };
    return { rule: rule.name, unmet: evaluateRequirement(access.requirement, who, params) };
  }

  const member = { groups: ['alice-ws'] };
  const writer = { resource_access: { 'alice-ws': { roles: ['ws_access'] } } };

  test.each<{ what: string; method: string; path: string; claims: Record<string, unknown>; expected: { rule: string; unmet: UnmetRequirement | 'deny' | null } }>([
    { what: 'GET by a member of the workspace group is allowed', method: 'GET', path: '/workspaces/alice-ws/files/a.txt', claims: member, expected: { rule: 'workspace-read', unmet: null } },
    { what: 'GET of the workspace root by a member is allowed', method: 'GET', path: '/workspaces/alice-ws', claims: member, expected: { rule: 'workspace-read', unmet: null } },
    { what: 'HEAD by a member is allowed', method: 'HEAD', path: '/workspaces/alice-ws/files', claims: member, expected: { rule: 'workspace-read', unmet: null } },
    { what: 'GET by a member of another workspace is refused for groups', method: 'GET', path: '/workspaces/alice-ws/files', claims: { groups: ['bob-ws'] }, expected: { rule: 'workspace-read', unmet: 'groups' } },
    { what: 'GET with only the write role is refused for groups (no fall-through)', method: 'GET', path: '/workspaces/alice-ws/files', claims: writer, expected: { rule: 'workspace-read', unmet: 'groups' } },
    { what: 'a group named like the workspace in another case is refused', method: 'GET', path: '/workspaces/alice-ws', claims: { groups: ['Alice-WS'] }, expected: { rule: 'workspace-read', unmet: 'groups' } },
    { what: 'POST with ws_access in the workspace\'s client roles is allowed', method: 'POST', path: '/workspaces/alice-ws/files', claims: writer, expected: { rule: 'workspace-write', unmet: null } },
    { what: 'PUT with ws_access among other roles is allowed', method: 'PUT', path: '/workspaces/alice-ws/x', claims: { resource_access: { 'alice-ws': { roles: ['viewer', 'ws_access'] } } }, expected: { rule: 'workspace-write', unmet: null } },
    { what: 'DELETE by a group member without the role is refused for claims', method: 'DELETE', path: '/workspaces/alice-ws/x', claims: member, expected: { rule: 'workspace-write', unmet: 'claims' } },
    { what: 'POST with ws_access for another workspace is refused', method: 'POST', path: '/workspaces/alice-ws/x', claims: { resource_access: { 'bob-ws': { roles: ['ws_access'] } } }, expected: { rule: 'workspace-write', unmet: 'claims' } },
    { what: 'POST with another role in the workspace is refused', method: 'POST', path: '/workspaces/alice-ws/x', claims: { resource_access: { 'alice-ws': { roles: ['ws_admin'] } } }, expected: { rule: 'workspace-write', unmet: 'claims' } },
    { what: 'a workspace name with a dot stays one claim segment', method: 'POST', path: '/workspaces/al.ice/x', claims: { resource_access: { 'al.ice': { roles: ['ws_access'] } } }, expected: { rule: 'workspace-write', unmet: null } },
    { what: 'a workspace name with a dot does not walk into nested claims', method: 'POST', path: '/workspaces/al.ice/x', claims: { resource_access: { al: { ice: { roles: ['ws_access'] } } } }, expected: { rule: 'workspace-write', unmet: 'claims' } },
    { what: 'a workspace named "__proto__" never matches through the prototype', method: 'POST', path: '/workspaces/__proto__/x', claims: writer, expected: { rule: 'workspace-write', unmet: 'claims' } },
    { what: 'the workspace list itself falls to the catch-all', method: 'GET', path: '/workspaces', claims: {}, expected: { rule: 'everything-else', unmet: null } },
    { what: 'static files stay public', method: 'GET', path: '/static/app.js', claims: {}, expected: { rule: 'static', unmet: null } },
  ])('$what', ({ method, path, claims, expected }) => {
    expect(decide(method, path, identity(claims))).toEqual(expected);
  });
});
