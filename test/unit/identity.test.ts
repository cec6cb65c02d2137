import { buildIdentity, compileDefaultMapping, compileIdentityMapping, compileIssuerMappings, type IdentityFailure, type IdentityMapping, type MappingOverrides } from '../../src/authn/identity.js';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput, MachineIdentityConfig } from '../../src/config/schema.js';

function mappingOf(identity: ConfigInput['identity'] = {}, overrides: MappingOverrides = {}): IdentityMapping {
  return compileIdentityMapping(parseConfig({ identity }).identity, overrides);
}

/** A machine mapping as the config schema fills it in (defaults: when client_id, prefix "service-account:"). */
function machineOf(input: NonNullable<NonNullable<ConfigInput['oidc']>['machineIdentity']> = {}): MachineIdentityConfig {
  const config = parseConfig({ issuers: [{ issuer: 'https://kc.example.com/realms/x', audiences: ['a'], machineIdentity: input }] });
  return config.issuers[0]!.machineIdentity!;
}

type Summary =
  | { userId: string; email: string | null; groups: string[]; groupsHeaderValue: string }
  | { reason: IdentityFailure };

function summarize(claims: Record<string, unknown>, mapping: IdentityMapping): Summary {
  const result = buildIdentity(claims, mapping, 'cookie');
  if (!result.ok) return { reason: result.reason };
  const { userId, email, groups, groupsHeaderValue } = result.identity;
  return { userId, email, groups: [...groups], groupsHeaderValue };
}

const ALICE = { iss: 'https://dex.example.com/dex', sub: 'CgVhbGljZQ', email: 'alice@example.com', email_verified: true };
/** What an IdP that lets users type any address sends (nOAuth): an email, and nothing about it. */
const SILENT = { iss: 'https://saas.example.com', sub: 'u-77', email: 'alice@example.com' };
const allowed = (userId: string, email: string | null = null, groups: string[] = []): Summary => ({ userId, email, groups, groupsHeaderValue: groups.join(',') });
const refused = (reason: IdentityFailure): Summary => ({ reason });

describe('buildIdentity: the user id', () => {
  const defaults = mappingOf();
  const byUsername = mappingOf({ userIdClaim: 'preferred_username' });
  const unverifiedAllowed = mappingOf({ allowUnverifiedEmail: true });
  const absentVerified = mappingOf({}, { emailVerifiedWhenAbsent: true });
  const serviceAccounts = mappingOf({}, { userIdClaim: 'sub' });
  const nested = mappingOf({ userIdClaim: 'profile.login' });
  const firstMatchOnly = mappingOf({
    userIdTransformers: [
      { match: '^(.*)@example\\.com$', replace: '$1' },
      { match: '^(.*)$', replace: 'external-$1' },
    ],
  });
  const unanchored = mappingOf({ userIdTransformers: [{ match: '[@.]', replace: '-' }] });
  const named = mappingOf({ userIdTransformers: [{ match: '^(?<user>[^@]+)@(?<domain>.+)$', replace: '$<domain>/$<user>' }] });
  const prefixAfterTransform = mappingOf({ userIdPrefix: 'kf:', userIdTransformers: [{ match: '^(.*)@example\\.com$', replace: '$1' }] });
  const prefixNotTransformed = mappingOf({ userIdPrefix: 'kf:', userIdTransformers: [{ match: '^kf:', replace: 'double:' }] });
  const emptying = mappingOf({ userIdTransformers: [{ match: '^.*$', replace: '' }] });
  const newlineInjecting = mappingOf({ userIdTransformers: [{ match: '@', replace: '\r\nx-admin: true\r\n' }] });
  const spacePrefix = mappingOf({ userIdPrefix: ' ' });
  const longPrefix = mappingOf({ userIdPrefix: 'p'.repeat(500) });

  test.each<{ what: string; claims: Record<string, unknown>; mapping: IdentityMapping; expected: Summary }>([
    { what: 'comes from the email claim by default', claims: ALICE, mapping: defaults, expected: allowed('alice@example.com', 'alice@example.com') },
    { what: 'keeps a verified email', claims: { ...ALICE, email_verified: true }, mapping: defaults, expected: allowed('alice@example.com', 'alice@example.com') },
    { what: 'is refused when the email is marked unverified', claims: { ...ALICE, email_verified: false }, mapping: defaults, expected: refused('unverified_email') },
    { what: 'takes an unverified email when allowUnverifiedEmail is on', claims: { ...ALICE, email_verified: false }, mapping: unverifiedAllowed, expected: allowed('alice@example.com', 'alice@example.com') },
    // email_verified absent: the nOAuth class (an IdP that lets users set their email and says nothing).
    { what: 'is refused when email_verified is absent (by default)', claims: SILENT, mapping: defaults, expected: refused('unverified_email') },
    { what: 'is refused when email_verified is null (by default)', claims: { ...SILENT, email_verified: null }, mapping: defaults, expected: refused('unverified_email') },
    { what: 'takes an email without email_verified when the issuer has emailVerifiedWhenAbsent', claims: SILENT, mapping: absentVerified, expected: allowed('alice@example.com', 'alice@example.com') },
    { what: 'is still refused with email_verified: false when the issuer has emailVerifiedWhenAbsent', claims: { ...SILENT, email_verified: false }, mapping: absentVerified, expected: refused('unverified_email') },
    { what: 'takes an email without email_verified when allowUnverifiedEmail is on', claims: SILENT, mapping: unverifiedAllowed, expected: allowed('alice@example.com', 'alice@example.com') },
    { what: 'takes email_verified as the string "true" (Cognito sends strings)', claims: { ...SILENT, email_verified: 'true' }, mapping: defaults, expected: allowed('alice@example.com', 'alice@example.com') },
    { what: 'is refused with email_verified as the string "false"', claims: { ...SILENT, email_verified: 'false' }, mapping: defaults, expected: refused('unverified_email') },
    { what: 'is refused with email_verified neither true nor false (1)', claims: { ...SILENT, email_verified: 1 }, mapping: absentVerified, expected: refused('unverified_email') },
    { what: 'is missing without an email claim', claims: { iss: ALICE.iss, sub: ALICE.sub }, mapping: defaults, expected: refused('missing_user_id') },
    { what: 'is missing when the email claim is empty', claims: { ...ALICE, email: '' }, mapping: defaults, expected: refused('missing_user_id') },
    { what: 'is missing when the email claim is not a string', claims: { ...ALICE, email: ['alice@example.com'] }, mapping: defaults, expected: refused('missing_user_id') },
    { what: 'comes from another configured claim', claims: { ...ALICE, preferred_username: 'alice' }, mapping: byUsername, expected: allowed('alice', 'alice@example.com') },
    { what: 'from another claim ignores an unverified email but keeps the user', claims: { ...ALICE, preferred_username: 'alice', email_verified: false }, mapping: byUsername, expected: allowed('alice') },
    { what: 'from another claim is missing when that claim is absent', claims: ALICE, mapping: byUsername, expected: refused('missing_user_id') },
    { what: 'from another claim is missing when that claim is a number', claims: { ...ALICE, preferred_username: 42 }, mapping: byUsername, expected: refused('missing_user_id') },
    { what: 'comes from a nested claim path', claims: { ...ALICE, profile: { login: 'alice' } }, mapping: nested, expected: allowed('alice', 'alice@example.com') },
    {
      what: 'comes from sub with a per-issuer override (Kubernetes service-account token)',
      claims: { iss: 'https://kubernetes.default.svc.cluster.local', sub: 'system:serviceaccount:kubeflow:pipeline-runner', aud: ['istio-ingressgateway.istio-system.svc.cluster.local'] },
      mapping: serviceAccounts,
      expected: allowed('system:serviceaccount:kubeflow:pipeline-runner'),
    },
    // Transformers and prefix.
    { what: 'is rewritten by the first matching transformer ($1)', claims: ALICE, mapping: firstMatchOnly, expected: allowed('alice', 'alice@example.com') },
    { what: 'is rewritten by a later transformer when the first does not match', claims: { ...ALICE, email: 'bob@example.org' }, mapping: firstMatchOnly, expected: allowed('external-bob@example.org', 'bob@example.org') },
    { what: 'is rewritten only at the first occurrence of an unanchored match', claims: ALICE, mapping: unanchored, expected: allowed('alice-example.com', 'alice@example.com') },
    { what: 'can be rewritten with named groups', claims: ALICE, mapping: named, expected: allowed('example.com/alice', 'alice@example.com') },
    { what: 'gets the prefix after the transform', claims: ALICE, mapping: prefixAfterTransform, expected: allowed('kf:alice', 'alice@example.com') },
    { what: 'gets a prefix that transformers never see', claims: ALICE, mapping: prefixNotTransformed, expected: allowed('kf:alice@example.com', 'alice@example.com') },
    // Header safety.
    { what: 'keeps inner spaces', claims: { ...ALICE, preferred_username: 'alice smith' }, mapping: byUsername, expected: allowed('alice smith', 'alice@example.com') },
    { what: 'is refused with CR/LF', claims: { ...ALICE, email: 'alice\r\nx-admin: true@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with a lone LF', claims: { ...ALICE, email: 'alice\n@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with a NUL', claims: { ...ALICE, email: 'alice\u0000@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with a tab', claims: { ...ALICE, email: 'alice\t@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with DEL', claims: { ...ALICE, email: 'alice\u007f@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with non-ASCII characters', claims: { ...ALICE, email: 'jösé@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with a leading space', claims: { ...ALICE, email: ' alice@example.com' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused with a trailing space', claims: { ...ALICE, email: 'alice@example.com ' }, mapping: defaults, expected: refused('invalid_user_id') },
    { what: 'is refused when only spaces', claims: { ...ALICE, preferred_username: '   ' }, mapping: byUsername, expected: refused('invalid_user_id') },
    { what: 'is accepted at exactly 512 characters', claims: { ...ALICE, preferred_username: 'a'.repeat(512) }, mapping: byUsername, expected: allowed('a'.repeat(512), 'alice@example.com') },
    { what: 'is refused over 512 characters', claims: { ...ALICE, preferred_username: 'a'.repeat(513) }, mapping: byUsername, expected: refused('invalid_user_id') },
    { what: 'is refused when the prefix takes it over 512 characters', claims: { ...ALICE, email: `${'a'.repeat(12)}@example.com` }, mapping: longPrefix, expected: refused('invalid_user_id') },
    { what: 'is refused when a transformer empties it', claims: ALICE, mapping: emptying, expected: refused('invalid_user_id') },
    { what: 'is refused when a transformer injects CR/LF', claims: ALICE, mapping: newlineInjecting, expected: refused('invalid_user_id') },
    { what: 'is refused when the prefix starts with a space', claims: ALICE, mapping: spacePrefix, expected: refused('invalid_user_id') },
  ])('$what', ({ claims, mapping, expected }) => {
    expect(summarize(claims, mapping)).toEqual(expected);
  });
});

describe('buildIdentity: the email', () => {
  const byUsername = mappingOf({ userIdClaim: 'preferred_username' });
  test.each<{ what: string; claims: Record<string, unknown>; expected: string | null }>([
    { what: 'dropped without email_verified (the default: silence is not proof)', claims: { preferred_username: 'a', email: 'a@example.com' }, expected: null },
    { what: 'kept when email_verified is true', claims: { preferred_username: 'a', email: 'a@example.com', email_verified: true }, expected: 'a@example.com' },
    { what: 'dropped when email_verified is false', claims: { preferred_username: 'a', email: 'a@example.com', email_verified: false }, expected: null },
    { what: 'null without an email claim', claims: { preferred_username: 'a' }, expected: null },
    { what: 'null when the email claim is not a string', claims: { preferred_username: 'a', email: 7 }, expected: null },
  ])('is $what', ({ claims, expected }) => {
    const result = buildIdentity(claims, byUsername, 'bearer');
    expect(result.ok ? result.identity.email : result.reason).toBe(expected);
  });

  test('is kept without email_verified when the issuer has emailVerifiedWhenAbsent, and the user id is still another claim', () => {
    const result = buildIdentity({ preferred_username: 'a', email: 'a@example.com' }, mappingOf({ userIdClaim: 'preferred_username' }, { emailVerifiedWhenAbsent: true }), 'bearer');
    expect(result.ok ? { userId: result.identity.userId, email: result.identity.email } : result.reason).toEqual({ userId: 'a', email: 'a@example.com' });
  });
});

describe('buildIdentity: the groups', () => {
  const defaults = mappingOf();
  const realmRoles = mappingOf({ groupsClaim: 'realm_access.roles' });
  const namespaced = mappingOf({ groupsClaim: 'https://example.com/groups' });
  const perIssuer = mappingOf({}, { groupsClaim: 'roles' });

  test.each<{ what: string; claims: Record<string, unknown>; mapping?: IdentityMapping; expected: { groups: string[]; header: string } }>([
    { what: 'a list, joined by ","', claims: { ...ALICE, groups: ['admins', 'ml-team'] }, expected: { groups: ['admins', 'ml-team'], header: 'admins,ml-team' } },
    { what: 'a single string', claims: { ...ALICE, groups: 'admins' }, expected: { groups: ['admins'], header: 'admins' } },
    { what: 'none without the claim', claims: ALICE, expected: { groups: [], header: '' } },
    { what: 'none from an object claim', claims: { ...ALICE, groups: { admins: true } }, expected: { groups: [], header: '' } },
    { what: 'none from a number claim', claims: { ...ALICE, groups: 7 }, expected: { groups: [], header: '' } },
    { what: 'non-strings dropped', claims: { ...ALICE, groups: [1, null, 'a', { b: 1 }, ['c'], true, 'd'] }, expected: { groups: ['a', 'd'], header: 'a,d' } },
    { what: 'names with "," dropped (they would smuggle a second group)', claims: { ...ALICE, groups: ['users,admins', 'users'] }, expected: { groups: ['users'], header: 'users' } },
    { what: 'names with control characters dropped', claims: { ...ALICE, groups: ['a\r\nb', 'c\u0000', 'd\te', 'f\u007f', 'g'] }, expected: { groups: ['g'], header: 'g' } },
    { what: 'names with leading or trailing blanks dropped', claims: { ...ALICE, groups: [' a', 'b ', 'c'] }, expected: { groups: ['c'], header: 'c' } },
    { what: 'empty names dropped', claims: { ...ALICE, groups: ['', 'a'] }, expected: { groups: ['a'], header: 'a' } },
    { what: 'non-ASCII names dropped', claims: { ...ALICE, groups: ['équipe', 'team'] }, expected: { groups: ['team'], header: 'team' } },
    { what: 'inner spaces and punctuation kept', claims: { ...ALICE, groups: ['ML Team', '/org/team-a', 'role:edit'] }, expected: { groups: ['ML Team', '/org/team-a', 'role:edit'], header: 'ML Team,/org/team-a,role:edit' } },
    { what: 'duplicates removed, first order kept', claims: { ...ALICE, groups: ['b', 'a', 'b', 'a', 'c'] }, expected: { groups: ['b', 'a', 'c'], header: 'b,a,c' } },
    { what: 'from a nested claim', claims: { ...ALICE, realm_access: { roles: ['r1', 'r2'] } }, mapping: realmRoles, expected: { groups: ['r1', 'r2'], header: 'r1,r2' } },
    { what: 'from a namespaced top-level claim', claims: { ...ALICE, 'https://example.com/groups': ['g1'] }, mapping: namespaced, expected: { groups: ['g1'], header: 'g1' } },
    { what: 'from a per-issuer groups claim', claims: { ...ALICE, groups: ['ignored'], roles: ['r'] }, mapping: perIssuer, expected: { groups: ['r'], header: 'r' } },
  ])('$what', ({ claims, mapping, expected }) => {
    const result = buildIdentity(claims, mapping ?? defaults, 'bearer');
    expect(result.ok ? { groups: [...result.identity.groups], header: result.identity.groupsHeaderValue } : result.reason).toEqual(expected);
  });

  test('at most 1000 groups are kept', () => {
    const many = Array.from({ length: 1500 }, (_, i) => `g${i}`);
    const result = buildIdentity({ ...ALICE, groups: many }, defaults, 'bearer');
    expect(result.ok ? result.identity.groups : result.reason).toEqual(many.slice(0, 1000));
  });

  test('groupSet holds exactly the kept groups', () => {
    const result = buildIdentity({ ...ALICE, groups: ['a', 'a,b', 'b'] }, defaults, 'bearer');
    expect(result.ok ? [...result.identity.groupSet] : result.reason).toEqual(['a', 'b']);
  });
});

describe('buildIdentity: group transformers (Keycloak\'s full group paths)', () => {
  const stripSlash = mappingOf({ groupTransformers: [{ match: '^/(.*)$', replace: '$1' }] });
  const lastSegment = mappingOf({ groupTransformers: [{ match: '^/(?:[^/]+/)*([^/]+)$', replace: '$1' }, { match: '^(.*)$', replace: 'x-$1' }] });
  const emptying = mappingOf({ groupTransformers: [{ match: '^/drop-me$', replace: '' }] });
  const commaMaking = mappingOf({ groupTransformers: [{ match: '^/(.*)$', replace: '$1,admins' }] });

  test.each<{ what: string; groups: unknown; mapping: IdentityMapping; expected: string[] }>([
    { what: 'a leading "/" is stripped, so {ws} rules match either way', groups: ['/ws-a', '/ml', 'plain'], mapping: stripSlash, expected: ['ws-a', 'ml', 'plain'] },
    { what: 'the first matching transformer wins, the rest are skipped', groups: ['/org/team-a', 'flat'], mapping: lastSegment, expected: ['team-a', 'x-flat'] },
    { what: 'a name the transformer empties is dropped', groups: ['/drop-me', '/keep'], mapping: emptying, expected: ['/keep'] },
    { what: 'a transformed name is checked like any other (no "," smuggled in)', groups: ['/users'], mapping: commaMaking, expected: [] },
    { what: 'names that collapse into one are kept once', groups: ['/ws-a', 'ws-a'], mapping: stripSlash, expected: ['ws-a'] },
    { what: 'a single string is transformed too', groups: '/ws-b', mapping: stripSlash, expected: ['ws-b'] },
  ])('$what', ({ groups, mapping, expected }) => {
    const result = buildIdentity({ ...ALICE, groups }, mapping, 'cookie');
    expect(result.ok ? [...result.identity.groups] : result.reason).toEqual(expected);
  });
});

describe('buildIdentity: machines (client-credentials tokens) and people never share an id', () => {
  const keycloak = mappingOf({}, { machineIdentity: machineOf() });
  const byUsername = mappingOf({}, { machineIdentity: machineOf({ userIdClaim: 'preferred_username', userIdPrefix: 'machine/' }) });
  const transformed = mappingOf({ userIdTransformers: [{ match: '^(.*)$', replace: 'service-account:$1' }] }, { machineIdentity: machineOf() });
  const SERVICE_ACCOUNT = { iss: 'https://kc.example.com/realms/x', sub: 'f1e2', azp: 'ci-bot', client_id: 'ci-bot', preferred_username: 'service-account-ci-bot', groups: ['pipelines'] };

  test.each<{ what: string; claims: Record<string, unknown>; mapping: IdentityMapping; expected: { userId: string; machine: boolean; groups: string[] } | IdentityFailure }>([
    { what: 'a token with client_id is a machine named by it, with the prefix', claims: SERVICE_ACCOUNT, mapping: keycloak, expected: { userId: 'service-account:ci-bot', machine: true, groups: ['pipelines'] } },
    { what: 'the machine\'s name may come from another claim, with another prefix', claims: SERVICE_ACCOUNT, mapping: byUsername, expected: { userId: 'machine/service-account-ci-bot', machine: true, groups: ['pipelines'] } },
    { what: 'a person\'s token (no client_id) is mapped as a person', claims: { ...ALICE, azp: 'ci-bot' }, mapping: keycloak, expected: { userId: 'alice@example.com', machine: false, groups: [] } },
    { what: 'a machine token without the machine\'s name claim has no user id', claims: { ...SERVICE_ACCOUNT, client_id: '' }, mapping: byUsername, expected: 'missing_user_id' },
    { what: 'without machineIdentity a client-credentials token has no user id (no email)', claims: SERVICE_ACCOUNT, mapping: mappingOf(), expected: 'missing_user_id' },
    { what: 'a person whose id would start with the machines\' prefix is refused', claims: ALICE, mapping: transformed, expected: 'invalid_user_id' },
    { what: 'a machine ignores the people\'s user-id transformers', claims: SERVICE_ACCOUNT, mapping: transformed, expected: { userId: 'service-account:ci-bot', machine: true, groups: ['pipelines'] } },
  ])('$what', ({ claims, mapping, expected }) => {
    const result = buildIdentity(claims, mapping, 'bearer');
    expect(result.ok ? { userId: result.identity.userId, machine: result.identity.machine, groups: [...result.identity.groups] } : result.reason).toEqual(expected);
  });

  test('every issuer\'s machine prefix is refused for people of any issuer, browser sessions included', () => {
    const config = parseConfig({
      publicUrl: 'https://kf.example.com',
      oidc: { issuer: 'https://kc.example.com/realms/a', clientId: 'c', machineIdentity: {} },
      session: { secretsFile: '/x' },
      issuers: [{ issuer: 'https://kc.example.com/realms/b', audiences: ['c'], userIdPrefix: 'realm-b:', machineIdentity: { userIdPrefix: 'realm-b-sa:' } }],
      identity: { userIdClaim: 'preferred_username' },
    });
    const mappings = compileIssuerMappings(config);
    // A session's mapping is the oidc issuer's without its machine branch (sessions are people), yet refuses both.
    const session = { ...mappings.get('https://kc.example.com/realms/a')!, machine: null };
    for (const name of ['service-account:ci-bot', 'realm-b-sa:ci-bot']) {
      expect(buildIdentity({ ...ALICE, preferred_username: name }, session, 'cookie')).toEqual({ ok: false, reason: 'invalid_user_id' });
    }
    expect(buildIdentity({ ...ALICE, preferred_username: 'alice' }, session, 'cookie').ok).toBe(true);
    // The second realm's machines keep their own prefix; its people have theirs, so realm a's prefixes cannot be reached there.
    const realmB = mappings.get('https://kc.example.com/realms/b')!;
    const machine = buildIdentity({ iss: 'https://kc.example.com/realms/b', client_id: 'ci-bot' }, realmB, 'bearer');
    expect(machine.ok && machine.identity.userId).toBe('realm-b-sa:ci-bot');
    const person = buildIdentity({ ...ALICE, preferred_username: 'service-account:x' }, realmB, 'bearer');
    expect(person.ok && person.identity.userId).toBe('realm-b:service-account:x');
  });
});

describe('user-id spaces: each issuer\'s people and machines keep their own ids', () => {
  const K8S = 'https://kubernetes.default.svc.cluster.local';
  const DEX = 'https://dex.example.com/dex';
  const PARTNER = 'https://partner.example.com';
  const SA = 'system:serviceaccount:kubeflow-user-example-com:default-editor';
  const config = parseConfig({
    publicUrl: 'https://kf.example.com',
    session: { secretsFile: '/x' },
    oidc: { issuer: DEX, clientId: 'kubeflow-oidc-authservice' },
    issuers: [
      { issuer: K8S, audiences: ['istio-ingressgateway.istio-system.svc.cluster.local'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:' },
      { issuer: PARTNER, audiences: ['kubeflow'], userIdPrefix: 'partner:', machineIdentity: { userIdPrefix: 'partner:sa:' } },
    ],
    identity: { userIdTransformers: [{ match: '^(.*)@robots\\.example\\.com$', replace: 'system:serviceaccount:$1' }] },
  });
  const mappings = compileIssuerMappings(config);
  const person = (email: string) => ({ iss: DEX, sub: 'x', email, email_verified: true });
  const userIdOf = (claims: Record<string, unknown>, issuer: string) => {
    const result = buildIdentity(claims, mappings.get(issuer)!, 'bearer');
    return result.ok ? result.identity.userId : result.reason;
  };

  test.each<{ what: string; claims: Record<string, unknown>; issuer: string; expected: string }>([
    { what: 'a Dex person whose email is a service account\'s sub is refused (the attack of issue 13)', claims: person(SA), issuer: DEX, expected: 'invalid_user_id' },
    { what: 'the same in another case is refused too (ids are compared ignoring case)', claims: person(SA.toUpperCase()), issuer: DEX, expected: 'invalid_user_id' },
    { what: 'a Dex person whose email a transformer turns into a service account\'s id is refused', claims: person('pipeline-runner@robots.example.com'), issuer: DEX, expected: 'invalid_user_id' },
    { what: 'a Dex person whose id would fall into the partner issuer\'s space is refused', claims: person('partner:alice@example.com'), issuer: DEX, expected: 'invalid_user_id' },
    { what: 'a Dex person whose id would fall into the partner\'s machines\' space is refused', claims: person('partner:sa:ci-bot'), issuer: DEX, expected: 'invalid_user_id' },
    { what: 'a Dex person with an ordinary email keeps it', claims: person('alice@example.com'), issuer: DEX, expected: 'alice@example.com' },
    { what: 'the service account\'s own token gets its sub', claims: { iss: K8S, sub: SA }, issuer: K8S, expected: SA },
    { what: 'a Kubernetes token whose sub is outside system:serviceaccount: is refused (userIdMustStartWith)', claims: { iss: K8S, sub: 'alice@example.com' }, issuer: K8S, expected: 'invalid_user_id' },
    { what: 'userIdMustStartWith is case-sensitive: the issuer\'s own ids are exact', claims: { iss: K8S, sub: SA.toUpperCase() }, issuer: K8S, expected: 'invalid_user_id' },
    { what: 'a partner person gets the partner prefix', claims: { iss: PARTNER, sub: 'p', email: 'alice@example.com', email_verified: true }, issuer: PARTNER, expected: 'partner:alice@example.com' },
    { what: 'a partner person whose email is a service account\'s sub stays in the partner space', claims: { iss: PARTNER, sub: 'p', email: SA, email_verified: true }, issuer: PARTNER, expected: `partner:${SA}` },
    { what: 'a partner person whose id would fall into the partner machines\' space (nested in the people\'s) is refused', claims: { iss: PARTNER, sub: 'p', email: 'sa:ci-bot', email_verified: true }, issuer: PARTNER, expected: 'invalid_user_id' },
    { what: 'a partner machine gets the machine prefix', claims: { iss: PARTNER, client_id: 'ci-bot' }, issuer: PARTNER, expected: 'partner:sa:ci-bot' },
  ])('$what', ({ claims, issuer, expected }) => {
    expect(userIdOf(claims, issuer)).toBe(expected);
  });

  test('userIdMustStartWith is checked after the transformers and before the prefix', () => {
    const mapping = compileIdentityMapping(parseConfig({ identity: { userIdTransformers: [{ match: '^sa-(.*)$', replace: 'system:serviceaccount:$1' }] } }).identity,
      { userIdClaim: 'sub', userIdPrefix: 'k8s:', userIdMustStartWith: 'system:serviceaccount:' });
    const rewritten = buildIdentity({ sub: 'sa-ns:runner' }, mapping, 'bearer');
    expect(rewritten.ok && rewritten.identity.userId).toBe('k8s:system:serviceaccount:ns:runner');
    expect(buildIdentity({ sub: 'k8s:system:serviceaccount:ns:runner' }, mapping, 'bearer')).toEqual({ ok: false, reason: 'invalid_user_id' });
  });

  test('nested machine spaces: machines of "sa:" never take an id of "sa:b:"', () => {
    const nested = compileIssuerMappings(parseConfig({
      issuers: [
        { issuer: 'https://a.example.com', audiences: ['c'], userIdPrefix: 'a:', machineIdentity: { userIdPrefix: 'sa:' } },
        { issuer: 'https://b.example.com', audiences: ['c'], userIdPrefix: 'b:', machineIdentity: { userIdPrefix: 'sa:b:' } },
      ],
    }));
    expect(buildIdentity({ client_id: 'b:ci' }, nested.get('https://a.example.com')!, 'bearer')).toEqual({ ok: false, reason: 'invalid_user_id' });
    const own = buildIdentity({ client_id: 'ci' }, nested.get('https://a.example.com')!, 'bearer');
    expect(own.ok && own.identity.userId).toBe('sa:ci');
    const other = buildIdentity({ client_id: 'ci' }, nested.get('https://b.example.com')!, 'bearer');
    expect(other.ok && other.identity.userId).toBe('sa:b:ci');
  });

  test('issuers of one userIdSpace share ids, and each still refuses the other spaces nested in it', () => {
    const shared = compileIssuerMappings(parseConfig({
      oidc: { issuer: DEX, clientId: 'c' },
      publicUrl: 'https://kf.example.com',
      session: { secretsFile: '/x' },
      issuers: [
        { issuer: 'https://kubernetes.default.svc', audiences: ['a'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:', userIdSpace: 'k8s' },
        { issuer: K8S, audiences: ['a'], userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:', userIdSpace: 'k8s' },
      ],
    }));
    for (const issuer of [K8S, 'https://kubernetes.default.svc']) expect(buildIdentity({ sub: SA }, shared.get(issuer)!, 'bearer')).toMatchObject({ ok: true, identity: { userId: SA } });
    expect(buildIdentity(person(SA), shared.get(DEX)!, 'bearer')).toEqual({ ok: false, reason: 'invalid_user_id' });
  });

  test('claims of no configured issuer (explain) are mapped outside every configured space', () => {
    expect(buildIdentity(person(SA), compileDefaultMapping(config), 'bearer')).toEqual({ ok: false, reason: 'invalid_user_id' });
    expect(buildIdentity(person('alice@example.com'), compileDefaultMapping(config), 'bearer').ok).toBe(true);
  });
});

describe('buildIdentity: the rest of the identity', () => {
  test.each<{ what: string; claims: Record<string, unknown>; via: 'bearer' | 'cookie'; expected: { subject: string; issuer: string; via: string } }>([
    { what: 'subject, issuer and origin are kept', claims: ALICE, via: 'bearer', expected: { subject: 'CgVhbGljZQ', issuer: 'https://dex.example.com/dex', via: 'bearer' } },
    { what: 'missing sub and iss become empty strings', claims: { email: 'a@example.com', email_verified: true }, via: 'cookie', expected: { subject: '', issuer: '', via: 'cookie' } },
    { what: 'non-string sub and iss become empty strings', claims: { email: 'a@example.com', email_verified: true, sub: 1, iss: ['x'] }, via: 'cookie', expected: { subject: '', issuer: '', via: 'cookie' } },
  ])('$what', ({ claims, via, expected }) => {
    const result = buildIdentity(claims, mappingOf(), via);
    expect(result.ok ? { subject: result.identity.subject, issuer: result.identity.issuer, via: result.identity.via } : result.reason).toEqual(expected);
  });

  test('the verified claims are kept as given', () => {
    const claims = { ...ALICE, custom: { a: 1 } };
    const result = buildIdentity(claims, mappingOf(), 'bearer');
    expect(result.ok && result.identity.claims).toBe(claims);
  });
});

describe('compileIdentityMapping', () => {
  test.each<{ what: string; identity: ConfigInput['identity']; overrides: MappingOverrides; expected: { userIdClaim: string[]; groupsClaim: string[] } }>([
    { what: 'defaults: email and groups', identity: {}, overrides: {}, expected: { userIdClaim: ['email'], groupsClaim: ['groups'] } },
    { what: 'configured dotted paths', identity: { userIdClaim: 'profile.login', groupsClaim: 'realm_access.roles' }, overrides: {}, expected: { userIdClaim: ['profile', 'login'], groupsClaim: ['realm_access', 'roles'] } },
    { what: 'per-issuer overrides win', identity: { userIdClaim: 'email' }, overrides: { userIdClaim: 'sub', groupsClaim: 'roles' }, expected: { userIdClaim: ['sub'], groupsClaim: ['roles'] } },
    { what: 'undefined overrides fall back to the config', identity: { groupsClaim: 'teams' }, overrides: { userIdClaim: undefined, groupsClaim: undefined }, expected: { userIdClaim: ['email'], groupsClaim: ['teams'] } },
  ])('$what', ({ identity, overrides, expected }) => {
    const mapping = mappingOf(identity, overrides);
    expect({ userIdClaim: [...mapping.userIdClaim.segments], groupsClaim: [...mapping.groupsClaim.segments] }).toEqual(expected);
  });
});
