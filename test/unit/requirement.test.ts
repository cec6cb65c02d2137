import { buildIdentity, compileIdentityMapping, type Identity, type IdentityMapping, type MappingOverrides } from '../../src/authn/identity.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput, RequirementInput } from '../../src/config/schema.js';
import { compileRequirement, emailDomainMatches, evaluateRequirement, type UnmetRequirement } from '../../src/policy/requirement.js';
import { compileTemplate, NO_PARAMS, type PathParams } from '../../src/policy/template.js';

function mappingOf(identity: ConfigInput['identity'] = {}, overrides: MappingOverrides = {}): IdentityMapping {
  return compileIdentityMapping(parseConfig({ identity }).identity, overrides);
}

const DEFAULT_MAPPING = mappingOf();

function identityOf(claims: Record<string, unknown>, mapping: IdentityMapping = DEFAULT_MAPPING): Identity {
  const result = buildIdentity(claims, mapping, 'bearer');
  if (!result.ok) throw new Error(`test identity refused: ${result.reason}`);
  return result.identity;
}

const ALICE = { sub: 'u-1', email: 'alice@example.com', email_verified: true };

interface Row {
  what: string;
  requirement: RequirementInput;
  claims: Record<string, unknown>;
  params?: PathParams;
  mapping?: IdentityMapping;
  expected: UnmetRequirement | null;
}

function evaluate({ requirement, claims, params, mapping }: Row): UnmetRequirement | null {
  return evaluateRequirement(compileRequirement(requirement), identityOf(claims, mapping), params ?? NO_PARAMS);
}

describe('groups: any of the listed groups', () => {
  test.each<Row>([
    { what: 'one of several listed groups is enough', requirement: { groups: ['admins', 'ml-team'] }, claims: { ...ALICE, groups: ['viewers', 'ml-team'] }, expected: null },
    { what: 'a single-string groups claim counts', requirement: { groups: ['admins'] }, claims: { ...ALICE, groups: 'admins' }, expected: null },
    { what: 'none of the listed groups fails', requirement: { groups: ['admins', 'ml-team'] }, claims: { ...ALICE, groups: ['viewers'] }, expected: 'groups' },
    { what: 'no groups claim fails', requirement: { groups: ['admins'] }, claims: ALICE, expected: 'groups' },
    { what: 'group names are case-sensitive', requirement: { groups: ['Admins'] }, claims: { ...ALICE, groups: ['admins'] }, expected: 'groups' },
    { what: 'a group is not matched by a prefix of its name', requirement: { groups: ['admins'] }, claims: { ...ALICE, groups: ['admin'] }, expected: 'groups' },
    { what: 'a {param} group is filled from the path', requirement: { groups: ['{ws}'] }, claims: { ...ALICE, groups: ['alice-ws'] }, params: { ws: 'alice-ws' }, expected: null },
    { what: 'a {param} group does not match another workspace', requirement: { groups: ['{ws}'] }, claims: { ...ALICE, groups: ['alice-ws'] }, params: { ws: 'bob-ws' }, expected: 'groups' },
    { what: 'a {param} inside a group name is filled in place', requirement: { groups: ['ws-{ws}-readers'] }, claims: { ...ALICE, groups: ['ws-a-readers'] }, params: { ws: 'a' }, expected: null },
    { what: 'the unfilled placeholder text never matches literally', requirement: { groups: ['{ws}'] }, claims: { ...ALICE, groups: ['{ws}'] }, params: { ws: 'alice-ws' }, expected: 'groups' },
    { what: 'a param value "constructor" needs a group of that name', requirement: { groups: ['{ws}'] }, claims: { ...ALICE, groups: ['viewers'] }, params: { ws: 'constructor' }, expected: 'groups' },
    {
      what: 'a placeholder missing from the params never renders from Object.prototype',
      requirement: { groups: ['{constructor}'] },
      claims: { ...ALICE, groups: [String(Object)] },
      params: NO_PARAMS,
      expected: 'groups',
    },
  ])('$what', (row) => {
    expect(evaluate(row)).toBe(row.expected);
  });

  describe('a {__proto__} path parameter', () => {
    const params = compileTemplate('/t/{__proto__}').match(['t', 'admins']) ?? NO_PARAMS;
    test.each<Row>([
      { what: 'never matches the "[object Object]" group through the prototype', requirement: { groups: ['{__proto__}'] }, claims: { ...ALICE, groups: ['[object Object]'] }, params, expected: 'groups' },
      { what: 'matches the group captured from the path', requirement: { groups: ['{__proto__}'] }, claims: { ...ALICE, groups: ['admins'] }, params, expected: null },
    ])('$what', (row) => {
      expect(evaluate(row)).toBe(row.expected);
    });
  });
});

describe('claims: every listed claim must hold one of its values', () => {
  test.each<Row>([
    { what: 'a scalar string claim equal to the value', requirement: { claims: { department: 'ml' } }, claims: { ...ALICE, department: 'ml' }, expected: null },
    { what: 'a scalar string claim with another value', requirement: { claims: { department: 'ml' } }, claims: { ...ALICE, department: 'ops' }, expected: 'claims' },
    { what: 'a missing claim', requirement: { claims: { department: 'ml' } }, claims: ALICE, expected: 'claims' },
    { what: 'a null claim', requirement: { claims: { department: 'ml' } }, claims: { ...ALICE, department: null }, expected: 'claims' },
    { what: 'values are compared case-sensitively', requirement: { claims: { department: 'ML' } }, claims: { ...ALICE, department: 'ml' }, expected: 'claims' },
    { what: 'a list of wanted values is any-of', requirement: { claims: { department: ['ml', 'research'] } }, claims: { ...ALICE, department: 'research' }, expected: null },
    { what: 'a list of wanted values with none present', requirement: { claims: { department: ['ml', 'research'] } }, claims: { ...ALICE, department: 'ops' }, expected: 'claims' },
    { what: 'an array claim that contains the value', requirement: { claims: { roles: 'admin' } }, claims: { ...ALICE, roles: ['viewer', 'admin'] }, expected: null },
    { what: 'an array claim without the value', requirement: { claims: { roles: 'admin' } }, claims: { ...ALICE, roles: ['viewer'] }, expected: 'claims' },
    { what: 'an array claim and a list of values sharing one item', requirement: { claims: { roles: ['owner', 'admin'] } }, claims: { ...ALICE, roles: ['viewer', 'admin'] }, expected: null },
    { what: 'an empty array claim', requirement: { claims: { roles: 'admin' } }, claims: { ...ALICE, roles: [] }, expected: 'claims' },
    { what: 'an object claim is not a value', requirement: { claims: { roles: 'admin' } }, claims: { ...ALICE, roles: { admin: true } }, expected: 'claims' },
    { what: 'a number equal to the wanted number', requirement: { claims: { level: 3 } }, claims: { ...ALICE, level: 3 }, expected: null },
    { what: 'a string is not the wanted number', requirement: { claims: { level: 3 } }, claims: { ...ALICE, level: '3' }, expected: 'claims' },
    { what: 'a boolean equal to the wanted boolean', requirement: { claims: { admin: true } }, claims: { ...ALICE, admin: true }, expected: null },
    { what: 'the string "true" is not the boolean true', requirement: { claims: { admin: true } }, claims: { ...ALICE, admin: 'true' }, expected: 'claims' },
    { what: 'every listed claim must hold (one fails)', requirement: { claims: { department: 'ml', level: 3 } }, claims: { ...ALICE, department: 'ml', level: 2 }, expected: 'claims' },
    { what: 'every listed claim must hold (all hold)', requirement: { claims: { department: 'ml', level: 3 } }, claims: { ...ALICE, department: 'ml', level: 3 }, expected: null },
    // Paths.
    { what: 'a nested dotted path', requirement: { claims: { 'resource_access.kubeflow.roles': 'admin' } }, claims: { ...ALICE, resource_access: { kubeflow: { roles: ['admin'] } } }, expected: null },
    { what: 'a nested dotted path with a missing level', requirement: { claims: { 'resource_access.kubeflow.roles': 'admin' } }, claims: { ...ALICE, resource_access: { other: { roles: ['admin'] } } }, expected: 'claims' },
    { what: 'a nested dotted path through a scalar', requirement: { claims: { 'resource_access.kubeflow.roles': 'admin' } }, claims: { ...ALICE, resource_access: 'kubeflow' }, expected: 'claims' },
    { what: 'a nested dotted path through an array', requirement: { claims: { 'orgs.0': 'acme' } }, claims: { ...ALICE, orgs: ['acme'] }, expected: 'claims' },
    { what: 'an escaped dot inside a claim name ("kubernetes\\.io.namespace")', requirement: { claims: { 'kubernetes\\.io.namespace': 'kubeflow' } }, claims: { ...ALICE, 'kubernetes.io': { namespace: 'kubeflow' } }, expected: null },
    { what: 'an escaped dot does not walk into a nested "io"', requirement: { claims: { 'kubernetes\\.io.namespace': 'kubeflow' } }, claims: { ...ALICE, kubernetes: { io: { namespace: 'kubeflow' } } }, expected: 'claims' },
    { what: 'a namespaced top-level claim ("https://example.com/roles")', requirement: { claims: { 'https://example.com/roles': 'admin' } }, claims: { ...ALICE, 'https://example.com/roles': ['admin'] }, expected: null },
    { what: 'a namespaced top-level claim with another value', requirement: { claims: { 'https://example.com/roles': 'admin' } }, claims: { ...ALICE, 'https://example.com/roles': ['viewer'] }, expected: 'claims' },
    // {param} substitution.
    { what: 'a {param} in a path segment', requirement: { claims: { 'resource_access.{ws}.roles': 'ws_access' } }, claims: { ...ALICE, resource_access: { alice: { roles: ['ws_access'] } } }, params: { ws: 'alice' }, expected: null },
    { what: 'a {param} in a path segment for another workspace', requirement: { claims: { 'resource_access.{ws}.roles': 'ws_access' } }, claims: { ...ALICE, resource_access: { alice: { roles: ['ws_access'] } } }, params: { ws: 'bob' }, expected: 'claims' },
    { what: 'a {param} value containing a dot stays one segment', requirement: { claims: { 'resource_access.{ws}.roles': 'ws_access' } }, claims: { ...ALICE, resource_access: { 'a.b': { roles: ['ws_access'] } } }, params: { ws: 'a.b' }, expected: null },
    { what: 'a {param} value containing a dot is not split into two levels', requirement: { claims: { 'resource_access.{ws}.roles': 'ws_access' } }, claims: { ...ALICE, resource_access: { a: { b: { roles: ['ws_access'] } } } }, params: { ws: 'a.b' }, expected: 'claims' },
    { what: 'a {param} in the wanted value', requirement: { claims: { namespace: '{ns}' } }, claims: { ...ALICE, namespace: 'team-a' }, params: { ns: 'team-a' }, expected: null },
    { what: 'a {param} in the wanted value with another claim value', requirement: { claims: { namespace: '{ns}' } }, claims: { ...ALICE, namespace: 'team-b' }, params: { ns: 'team-a' }, expected: 'claims' },
    { what: 'a {param} inside a wanted value', requirement: { claims: { roles: 'ns:{ns}:edit' } }, claims: { ...ALICE, roles: ['ns:team-a:edit'] }, params: { ns: 'team-a' }, expected: null },
    { what: 'a "__proto__" param never walks into the prototype', requirement: { claims: { 'resource_access.{ws}.roles': 'ws_access' } }, claims: { ...ALICE, resource_access: {} }, params: { ws: '__proto__' }, expected: 'claims' },
    { what: 'a "constructor" param never reads Object.prototype.constructor', requirement: { claims: { '{key}.name': 'Object' } }, claims: ALICE, params: { key: 'constructor' }, expected: 'claims' },
    { what: 'a "hasOwnProperty" param never reads Object.prototype', requirement: { claims: { '{key}.name': 'hasOwnProperty' } }, claims: ALICE, params: { key: 'hasOwnProperty' }, expected: 'claims' },
    { what: 'a "__proto__" param never reads the prototype\'s members', requirement: { claims: { 'a.{key}.constructor.name': 'Object' } }, claims: { ...ALICE, a: {} }, params: { key: '__proto__' }, expected: 'claims' },
    { what: 'a literal "constructor.name" path never reads the prototype', requirement: { claims: { 'constructor.name': 'Object' } }, claims: ALICE, expected: 'claims' },
  ])('$what', (row) => {
    expect(evaluate(row)).toBe(row.expected);
  });
});

describe('emailDomains', () => {
  const subMapping = mappingOf({}, { userIdClaim: 'sub' });

  test.each<Row>([
    { what: 'an exact domain', requirement: { emailDomains: ['example.com'] }, claims: ALICE, expected: null },
    { what: 'one of several domains', requirement: { emailDomains: ['example.org', 'example.com'] }, claims: ALICE, expected: null },
    { what: 'an exact domain does not cover sub-domains', requirement: { emailDomains: ['example.com'] }, claims: { ...ALICE, email: 'alice@corp.example.com' }, expected: 'emailDomains' },
    { what: '"*.example.com" covers a sub-domain', requirement: { emailDomains: ['*.example.com'] }, claims: { ...ALICE, email: 'alice@corp.example.com' }, expected: null },
    { what: '"*.example.com" does not cover the apex', requirement: { emailDomains: ['*.example.com'] }, claims: ALICE, expected: 'emailDomains' },
    { what: '"*.example.com" does not cover "evil-example.com"', requirement: { emailDomains: ['*.example.com'] }, claims: { ...ALICE, email: 'alice@evil-example.com' }, expected: 'emailDomains' },
    { what: 'domains compare case-insensitively (address upper case)', requirement: { emailDomains: ['example.com'] }, claims: { ...ALICE, email: 'Alice@EXAMPLE.COM' }, expected: null },
    { what: 'domains compare case-insensitively (config upper case)', requirement: { emailDomains: ['*.Example.COM'] }, claims: { ...ALICE, email: 'alice@Corp.example.com' }, expected: null },
    { what: 'an address with two "@" never matches', requirement: { emailDomains: ['example.com'] }, claims: { ...ALICE, email: 'eve@evil.com@example.com' }, expected: 'emailDomains' },
    { what: 'an unverified email is no email', requirement: { emailDomains: ['example.com'] }, claims: { ...ALICE, email_verified: false }, mapping: subMapping, expected: 'emailDomains' },
    { what: 'an email without email_verified is no email (nOAuth: an IdP that lets users set it)', requirement: { emailDomains: ['example.com'] }, claims: { sub: 'u-1', email: 'alice@example.com' }, mapping: subMapping, expected: 'emailDomains' },
    { what: 'an email without email_verified matches when its issuer has emailVerifiedWhenAbsent', requirement: { emailDomains: ['example.com'] }, claims: { sub: 'u-1', email: 'alice@example.com' }, mapping: mappingOf({}, { userIdClaim: 'sub', emailVerifiedWhenAbsent: true }), expected: null },
    { what: 'a verified email matches', requirement: { emailDomains: ['example.com'] }, claims: { ...ALICE, email_verified: true }, mapping: subMapping, expected: null },
    { what: 'no email claim never matches', requirement: { emailDomains: ['example.com'] }, claims: { sub: 'u-1' }, mapping: subMapping, expected: 'emailDomains' },
  ])('$what', (row) => {
    expect(evaluate(row)).toBe(row.expected);
  });

  test.each<{ what: string; email: string | null; domains: string[]; expected: boolean }>([
    { what: 'null never matches', email: null, domains: ['example.com'], expected: false },
    { what: 'an exact domain', email: 'a@example.com', domains: ['example.com'], expected: true },
    { what: 'the address is lowered before comparing', email: 'a@EXAMPLE.com', domains: ['example.com'], expected: true },
    { what: 'a sub-domain glob', email: 'a@x.y.example.com', domains: ['*.example.com'], expected: true },
    { what: 'a sub-domain glob against an empty label', email: 'a@.example.com', domains: ['*.example.com'], expected: false },
    { what: 'a sub-domain glob against a look-alike', email: 'a@xexample.com', domains: ['*.example.com'], expected: false },
    { what: 'a trailing dot is another domain', email: 'a@example.com.', domains: ['example.com'], expected: false },
    { what: 'a domain that only starts with the listed one', email: 'a@example.com.evil.net', domains: ['example.com'], expected: false },
    { what: 'no local part', email: '@example.com', domains: ['example.com'], expected: false },
    { what: 'no "@" at all', email: 'example.com', domains: ['example.com'], expected: false },
    { what: 'two "@"', email: 'a@example.com@example.com', domains: ['example.com'], expected: false },
    { what: 'an empty list', email: 'a@example.com', domains: [], expected: false },
  ])('emailDomainMatches: $what', ({ email, domains, expected }) => {
    expect(emailDomainMatches(email, domains)).toBe(expected);
  });
});

describe('users: the user id sent upstream', () => {
  const stripDomain = mappingOf({ userIdTransformers: [{ match: '^(.*)@example\\.com$', replace: '$1' }] });
  const prefixed = mappingOf({ userIdPrefix: 'oidc:' });
  const serviceAccounts = mappingOf({}, { userIdClaim: 'sub' });

  test.each<Row>([
    { what: 'the listed user', requirement: { users: ['alice@example.com'] }, claims: ALICE, expected: null },
    { what: 'one of several users', requirement: { users: ['bob@example.com', 'alice@example.com'] }, claims: ALICE, expected: null },
    { what: 'another user', requirement: { users: ['bob@example.com'] }, claims: ALICE, expected: 'users' },
    { what: 'case-insensitive (config mixed case)', requirement: { users: ['Alice@Example.COM'] }, claims: ALICE, expected: null },
    { what: 'case-insensitive (claim upper case)', requirement: { users: ['alice@example.com'] }, claims: { ...ALICE, email: 'ALICE@EXAMPLE.COM' }, expected: null },
    { what: 'the transformed user id matches', requirement: { users: ['alice'] }, claims: ALICE, mapping: stripDomain, expected: null },
    { what: 'the claim before transforming does not match', requirement: { users: ['alice@example.com'] }, claims: ALICE, mapping: stripDomain, expected: 'users' },
    { what: 'the prefixed user id matches', requirement: { users: ['oidc:alice@example.com'] }, claims: ALICE, mapping: prefixed, expected: null },
    { what: 'the user id without its prefix does not match', requirement: { users: ['alice@example.com'] }, claims: ALICE, mapping: prefixed, expected: 'users' },
    { what: 'a service account by its sub', requirement: { users: ['system:serviceaccount:kubeflow:pipeline-runner'] }, claims: { sub: 'system:serviceaccount:kubeflow:pipeline-runner' }, mapping: serviceAccounts, expected: null },
    { what: 'a {param} user filled from the path', requirement: { users: ['{user}'] }, claims: ALICE, params: { user: 'alice@example.com' }, expected: null },
    { what: 'a {param} user for someone else', requirement: { users: ['{user}'] }, claims: ALICE, params: { user: 'bob@example.com' }, expected: 'users' },
    { what: 'a {param} inside a user', requirement: { users: ['{name}@example.com'] }, claims: ALICE, params: { name: 'alice' }, expected: null },
    { what: 'a {param} user compares case-insensitively', requirement: { users: ['{user}'] }, claims: ALICE, params: { user: 'Alice@Example.com' }, expected: null },
    { what: 'a camelCase {param} user', requirement: { users: ['{userId}'] }, claims: ALICE, params: { userId: 'alice@example.com' }, expected: null },
  ])('$what', (row) => {
    expect(evaluate(row)).toBe(row.expected);
  });
});

describe('anyOf and combinations', () => {
  test.each<Row>([
    { what: 'anyOf: the first alternative holds', requirement: { anyOf: [{ groups: ['admins'] }, { emailDomains: ['example.org'] }] }, claims: { ...ALICE, groups: ['admins'] }, expected: null },
    { what: 'anyOf: the second alternative holds', requirement: { anyOf: [{ groups: ['admins'] }, { emailDomains: ['example.com'] }] }, claims: ALICE, expected: null },
    { what: 'anyOf: no alternative holds', requirement: { anyOf: [{ groups: ['admins'] }, { emailDomains: ['example.org'] }] }, claims: ALICE, expected: 'anyOf' },
    { what: 'anyOf: an alternative holds only if all its kinds hold', requirement: { anyOf: [{ groups: ['admins'], emailDomains: ['example.org'] }] }, claims: { ...ALICE, groups: ['admins'] }, expected: 'anyOf' },
    { what: 'anyOf: nested alternatives see the path params', requirement: { anyOf: [{ groups: ['admins'] }, { anyOf: [{ groups: ['{ws}'] }] }] }, claims: { ...ALICE, groups: ['team-a'] }, params: { ws: 'team-a' }, expected: null },
    { what: 'kinds are ANDed: all hold', requirement: { groups: ['ml'], emailDomains: ['example.com'] }, claims: { ...ALICE, groups: ['ml'] }, expected: null },
    { what: 'kinds are ANDed: the domain fails', requirement: { groups: ['ml'], emailDomains: ['example.org'] }, claims: { ...ALICE, groups: ['ml'] }, expected: 'emailDomains' },
    { what: 'kinds are ANDed: the group fails', requirement: { groups: ['ml'], emailDomains: ['example.com'] }, claims: ALICE, expected: 'groups' },
    { what: 'kinds are ANDed with anyOf', requirement: { emailDomains: ['example.com'], anyOf: [{ groups: ['a'] }, { groups: ['b'] }] }, claims: { ...ALICE, groups: ['c'] }, expected: 'anyOf' },
  ])('$what', (row) => {
    expect(evaluate(row)).toBe(row.expected);
  });

  const everything: RequirementInput = {
    groups: ['ml'],
    claims: { department: 'research' },
    emailDomains: ['example.com'],
    users: ['alice@example.com'],
    anyOf: [{ claims: { level: 3 } }],
  };
  test.each<{ what: string; claims: Record<string, unknown>; expected: UnmetRequirement | null }>([
    { what: 'groups first when everything fails', claims: { sub: 'x', email: 'bob@example.org', email_verified: true }, expected: 'groups' },
    { what: 'claims when only groups hold', claims: { email: 'bob@example.org', groups: ['ml'], email_verified: true }, expected: 'claims' },
    { what: 'emailDomains when groups and claims hold', claims: { email: 'bob@example.org', groups: ['ml'], department: 'research', email_verified: true }, expected: 'emailDomains' },
    { what: 'users when only users and anyOf fail', claims: { email: 'bob@example.com', groups: ['ml'], department: 'research', email_verified: true }, expected: 'users' },
    { what: 'anyOf when only anyOf fails', claims: { ...ALICE, groups: ['ml'], department: 'research' }, expected: 'anyOf' },
    { what: 'nothing when everything holds', claims: { ...ALICE, groups: ['ml'], department: 'research', level: 3 }, expected: null },
  ])('the unmet kind reported is $what', ({ claims, expected }) => {
    expect(evaluateRequirement(compileRequirement(everything), identityOf(claims), NO_PARAMS)).toBe(expected);
  });
});

describe('compileRequirement', () => {
  test.each<{ what: string; requirement: RequirementInput; expected: string[] }>([
    { what: 'no params', requirement: { groups: ['admins'], emailDomains: ['example.com'] }, expected: [] },
    { what: 'params from groups', requirement: { groups: ['{ws}', 'ws-{team}'] }, expected: ['team', 'ws'] },
    { what: 'params from claim paths and values', requirement: { claims: { 'resource_access.{ws}.roles': '{role}', level: 3 } }, expected: ['role', 'ws'] },
    { what: 'params from users, with their case', requirement: { users: ['{userId}'] }, expected: ['userId'] },
    { what: 'params from nested anyOf', requirement: { anyOf: [{ groups: ['{a}'] }, { anyOf: [{ users: ['{b}'] }] }] }, expected: ['a', 'b'] },
  ])('collects $what', ({ requirement, expected }) => {
    expect([...compileRequirement(requirement).params].sort()).toEqual(expected);
  });

  test('email domains are lowered once at compile time', () => {
    expect(compileRequirement({ emailDomains: ['*.Example.COM'] }).emailDomains).toEqual(['*.example.com']);
  });

  test.each<{ what: string; requirement: RequirementInput; expected: Record<string, boolean> }>([
    { what: 'only groups', requirement: { groups: ['a'] }, expected: { groups: true, claims: false, emailDomains: false, users: false, anyOf: false } },
    { what: 'claims and users', requirement: { claims: { a: 'b' }, users: ['u'] }, expected: { groups: false, claims: true, emailDomains: false, users: true, anyOf: false } },
  ])('kinds not listed stay null: $what', ({ requirement, expected }) => {
    const compiled = compileRequirement(requirement);
    expect({
      groups: compiled.groups !== null,
      claims: compiled.claims !== null,
      emailDomains: compiled.emailDomains !== null,
      users: compiled.users !== null,
      anyOf: compiled.anyOf !== null,
    }).toEqual(expected);
  });
});
