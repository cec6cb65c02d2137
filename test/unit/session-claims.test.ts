/**
 * Which claims a browser session is built from (oidc.claimsFrom): the ID token's, plus what the access
 * token and userinfo add; the first source that has a claim wins, protocol claims are the ID token's; and how
 * long the tokens whose claims are used are good for.
 */
import { silentLogger } from '../../src/log.js';
import { MIN_TOKEN_LIFETIME_MS } from '../../src/oidc/client.js';
import { addedClaims, collectSessionTokens, PROTOCOL_CLAIMS, sessionClaims, type ClaimSourcesDeps } from '../../src/oidc/session-claims.js';

const ID = { iss: 'https://kc.example.com/realms/x', sub: 'u1', aud: 'oidc-authz', exp: 2000, email: 'alice@example.com', groups: ['/ws-a'] };
/** Keycloak's access token: client roles only here, aud of other clients, a scope. */
const ACCESS = {
  iss: 'https://kc.example.com/realms/x', sub: 'u1', aud: ['ws-a', 'account'], azp: 'oidc-authz', exp: 1500, typ: 'Bearer', scope: 'openid email',
  email: 'other@example.com', groups: ['/ws-b'], resource_access: { 'ws-a': { roles: ['ws_access'] } }, realm_access: { roles: ['offline_access'] },
};
/** Userinfo: a claim only here, and its own opinion of groups. */
const USERINFO = { sub: 'u1', team: 'blue', groups: ['/ws-c'], resource_access: { 'ws-z': { roles: ['x'] } } };

describe('addedClaims: what other sources add to the ID token', () => {
  test.each<{ what: string; sources: Array<Record<string, unknown>>; expected: Record<string, unknown> }>([
    { what: 'nothing without other sources', sources: [], expected: {} },
    {
      what: 'the access token adds what the ID token lacks (client roles), never what it has (email, groups)',
      sources: [ACCESS],
      expected: { resource_access: { 'ws-a': { roles: ['ws_access'] } }, realm_access: { roles: ['offline_access'] } },
    },
    {
      what: 'with [access_token, userinfo] the access token wins over userinfo; userinfo adds its own',
      sources: [ACCESS, USERINFO],
      expected: { resource_access: { 'ws-a': { roles: ['ws_access'] } }, realm_access: { roles: ['offline_access'] }, team: 'blue' },
    },
    {
      what: 'with [userinfo, access_token] userinfo wins over the access token',
      sources: [USERINFO, ACCESS],
      expected: { team: 'blue', resource_access: { 'ws-z': { roles: ['x'] } }, realm_access: { roles: ['offline_access'] } },
    },
    { what: 'protocol claims are never added (aud, azp, exp, typ, scope, sub of another token)', sources: [{ aud: 'x', azp: 'y', typ: 'Bearer', scope: 's', sid: 'z', nonce: 'n', client_id: 'c' }], expected: {} },
    { what: 'a "__proto__" claim is ignored, not turned into a prototype', sources: [JSON.parse('{"__proto__":{"admin":true},"team":"red"}') as Record<string, unknown>], expected: { team: 'red' } },
  ])('$what', ({ sources, expected }) => {
    const added = addedClaims(ID, sources);
    expect(added).toEqual(expected);
    expect(Object.getPrototypeOf(added)).toBe(Object.prototype);
    expect((added as { admin?: unknown }).admin).toBeUndefined();
  });

  test('the protocol claims are those that describe a token, not the person', () => {
    expect([...PROTOCOL_CLAIMS].sort()).toEqual(['acr', 'amr', 'at_hash', 'aud', 'auth_time', 'azp', 'c_hash', 'client_id', 'exp', 'iat', 'iss', 'jti', 'nbf', 'nonce', 's_hash', 'scope', 'session_state', 'sid', 'sub', 'typ']);
  });
});

describe('sessionClaims: the claims the identity is built from', () => {
  test('the ID token\'s claims win over added ones, and the added ones are there', () => {
    const claims = sessionClaims(ID, { resource_access: { 'ws-a': { roles: ['ws_access'] } }, email: 'never@example.com' });
    expect(claims).toEqual({ ...ID, resource_access: { 'ws-a': { roles: ['ws_access'] } } });
  });

  test('without added claims it is the ID token\'s own object (no copy on the hot path)', () => {
    expect(sessionClaims(ID, {})).toBe(ID);
    expect(sessionClaims(ID, undefined)).toBe(ID);
  });
});

describe('collectSessionTokens: how long a session\'s tokens are good for', () => {
  const NOW = 1_000_000_000_000;
  const IDP = 'https://kc.example.com/realms/x';
  /** An access token as a JWT of the login issuer; its signature is not read (verifyAccessToken answers here). */
  const accessJwt = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: IDP })).toString('base64url')}.sig`;
  const expiryWith = async (accessExp: number) => {
    const deps: ClaimSourcesDeps = {
      claimsFrom: ['id_token', 'access_token'],
      issuer: IDP,
      clientId: 'oidc-authz',
      verifyAccessToken: async () => ({ kind: 'ok', claims: { ...ACCESS, iss: IDP, exp: accessExp / 1000 } }),
      userInfo: async () => ({}),
      logger: silentLogger,
    };
    const tokens = { idToken: 'id', idClaims: ID, accessToken: accessJwt, refreshToken: 'r', expiresAt: NOW + 3_600_000 };
    const collected = await collectSessionTokens(tokens, null, deps, NOW);
    expect(collected.addedClaims).toMatchObject({ resource_access: ACCESS.resource_access });
    return collected.expiresAt - NOW;
  };

  test.each([
    { what: 'an access token that outlives the ID token leaves the ID token\'s expiry', accessInMs: 7_200_000, expected: 3_600_000 },
    { what: 'its roles last no longer than the access token', accessInMs: 120_000, expected: 120_000 },
    { what: 'a 10 s access token: 30 s, the shortest time between refreshes', accessInMs: 10_000, expected: MIN_TOKEN_LIFETIME_MS },
    { what: 'one just past its exp by our clock (within the skew): 30 s, not a refresh at every check', accessInMs: -10_000, expected: MIN_TOKEN_LIFETIME_MS },
  ])('$what', async ({ accessInMs, expected }) => {
    expect(await expiryWith(NOW + accessInMs)).toBe(expected);
  });
});
