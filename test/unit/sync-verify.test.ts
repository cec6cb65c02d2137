/**
 * First-seen bearer tokens verified synchronously (src/authn/sync-verify.ts): node:crypto's verify with the
 * key jose selected, jose's claim checks. Against a real JWKS endpoint on 127.0.0.1 (test/support/issuer.ts).
 * The contract: the same answer as jose's own jwtVerify for every token, only without a promise.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { SignJWT } from 'jose';
import { createBearerVerifier } from '../../src/authn/issuers.js';
import type { BearerResult, BearerVerifier } from '../../src/authn/bearer.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { createSigningKey, startIssuer, type SigningKey, type TestIssuer } from '../support/issuer.js';

const AUDIENCE = 'kubeflow';
let idp: TestIssuer;
let keys: Record<'RS256' | 'PS256' | 'ES256' | 'EdDSA', SigningKey>;

beforeAll(async () => {
  const [rs, ps, es, ed] = await Promise.all([createSigningKey('RS256', 'rs'), createSigningKey('PS256', 'ps'), createSigningKey('ES256', 'es'), createSigningKey('EdDSA', 'ed')]);
  keys = { RS256: rs, PS256: ps, ES256: es, EdDSA: ed };
  idp = await startIssuer([rs, ps, es, ed], '/sync');
});

afterAll(() => idp.stop());

function verifier(): BearerVerifier {
  const config = parseConfig({
    issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'], emailVerifiedWhenAbsent: true }],
    jwks: { cooldown: '0s' },
  });
  return createBearerVerifier(config, createMetrics({ defaultMetrics: false }), silentLogger)!;
}

const user = (n: number, claims: Record<string, unknown> = {}) => ({ aud: AUDIENCE, sub: `u-${n}`, email: `user${n}@example.com`, groups: ['team-a'], ...claims });

/** A verifier that has seen (and so selected) every key once, through jose. */
async function warmVerifier(): Promise<BearerVerifier> {
  const warm = verifier();
  for (const key of Object.values(keys)) {
    const first = warm.verify(await idp.sign(user(0), { key }));
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ kind: 'identity' });
  }
  return warm;
}

function reasonOf(result: BearerResult): string {
  return result.kind === 'identity' ? `identity:${result.identity.userId}` : `${result.kind}:${result.reason}`;
}

/** The payload segment with some claims replaced. */
function reencoded(payload: string, claims: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), ...claims })).toString('base64url');
}

/** Changes one base64url character of a segment (keeping it base64url). */
function flip(segment: string, at: number): string {
  const c = segment[at]!;
  return segment.slice(0, at) + (c === 'A' ? 'B' : 'A') + segment.slice(at + 1);
}

describe('once jose has selected a key, later tokens of that kid are verified without a promise', () => {
  test.each(['RS256', 'PS256', 'ES256', 'EdDSA'] as const)('%s: a first-seen token answers synchronously, with the identity jose gives', async (alg) => {
    const warm = await warmVerifier();
    const token = await idp.sign(user(1), { key: keys[alg] });
    const fast = warm.verify(token);
    expect(fast).not.toBeInstanceOf(Promise);
    const slow = await verifier().verify(token);
    expect(fast).toEqual(slow);
    expect(reasonOf(fast as BearerResult)).toBe('identity:user1@example.com');
  });

  test('a kid the key set has not selected yet, or does not hold, takes jose\'s path (and its refetch)', async () => {
    const warm = await warmVerifier();
    const unknown = await idp.sign(user(2), { key: keys.RS256, header: { kid: 'not-published' } });
    const result = warm.verify(unknown);
    expect(result).toBeInstanceOf(Promise);
    expect(await result).toEqual({ kind: 'invalid', reason: 'unknown_key' });
  });

  test('a header with crit goes to jose, which refuses what it does not understand', async () => {
    const warm = await warmVerifier();
    const token = await new SignJWT(user(3, { iss: idp.issuer, exp: Math.floor(Date.now() / 1000) + 60 }))
      .setProtectedHeader({ alg: 'RS256', kid: 'rs', crit: ['urn:example:unknown'], 'urn:example:unknown': true })
      .sign(keys.RS256.privateKey, { crit: { 'urn:example:unknown': true } });
    const result = warm.verify(token);
    expect(result).toBeInstanceOf(Promise);
    expect(await result).toMatchObject({ kind: 'invalid' });
  });
});

describe('every refusal is jose\'s: the synchronous answer equals a fresh verifier\'s (jose path) for the same token', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<{ name: string; make: () => Promise<string>; reason: string }> = [
    { name: 'expired beyond the clock skew', make: () => idp.sign(user(10, { exp: now() - 120 })), reason: 'invalid:token_expired' },
    { name: 'not yet valid (nbf ahead)', make: () => idp.sign(user(11, { nbf: now() + 600 })), reason: 'invalid:token_not_yet_valid' },
    { name: 'for another audience', make: () => idp.sign(user(12, { aud: 'someone-else' })), reason: 'invalid:wrong_audience' },
    { name: 'iat of the wrong type', make: () => idp.sign(user(13, { iat: 'yesterday' })), reason: 'invalid:invalid_token' },
    { name: 'exp missing', make: () => idp.sign(user(14, { exp: undefined })), reason: 'invalid:missing_claim' },
    { name: 'exp a string', make: () => idp.sign(user(21, { exp: String(now() + 600) })), reason: 'invalid:missing_claim' },
    { name: 'nbf a string', make: () => idp.sign(user(22, { nbf: 'now' })), reason: 'invalid:token_not_yet_valid' },
    { name: 'nbf within the clock skew', make: () => idp.sign(user(23, { nbf: now() + 10 })), reason: 'identity:user23@example.com' },
    { name: 'exp within the clock skew', make: () => idp.sign(user(24, { exp: now() - 10 })), reason: 'identity:user24@example.com' },
    { name: 'aud an array holding ours', make: () => idp.sign(user(25, { aud: ['other', AUDIENCE] })), reason: 'identity:user25@example.com' },
    { name: 'aud an array without ours', make: () => idp.sign(user(26, { aud: ['other', 'another'] })), reason: 'invalid:wrong_audience' },
    { name: 'aud missing', make: () => idp.sign(user(27, { aud: undefined })), reason: 'invalid:wrong_audience' },
    { name: 'aud a number', make: () => idp.sign(user(28, { aud: 7 })), reason: 'invalid:wrong_audience' },
    { name: 'an RS256 payload altered after signing (another user)', make: async () => { const [h, p, s] = (await idp.sign(user(15))).split('.'); return `${h}.${reencoded(p!, { sub: 'u-admin', email: 'admin@example.com' })}.${s}`; }, reason: 'invalid:bad_signature' },
    { name: 'an RS256 signature altered', make: async () => { const [h, p, s] = (await idp.sign(user(16))).split('.'); return `${h}.${p}.${flip(s!, 10)}`; }, reason: 'invalid:bad_signature' },
    { name: 'an ES256 signature altered', make: async () => { const [h, p, s] = (await idp.sign(user(17), { key: keys.ES256 })).split('.'); return `${h}.${p}.${flip(s!, 3)}`; }, reason: 'invalid:bad_signature' },
    { name: 'an ES256 signature one byte short', make: async () => { const [h, p, s] = (await idp.sign(user(18), { key: keys.ES256 })).split('.'); return `${h}.${p}.${s!.slice(0, -3)}`; }, reason: 'invalid:bad_signature' },
    { name: 'an EdDSA signature cut to a length no base64url text has', make: async () => { const [h, p, s] = (await idp.sign(user(19), { key: keys.EdDSA })).split('.'); return `${h}.${p}.${s}AAAAA`.slice(0, h!.length + p!.length + 2 + (s!.length - (s!.length % 4)) + 1); }, reason: 'invalid:malformed_token' },
    { name: 'a PS256 token under an RS256 header (alg switched, kid of the RSA-PSS key)', make: async () => { const [, p, s] = (await idp.sign(user(20), { key: keys.PS256 })).split('.'); return `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'ps' })).toString('base64url')}.${p}.${s}`; }, reason: 'invalid:unknown_key' },
  ];

  test.each(cases)('$name → $reason', async ({ make, reason }) => {
    const token = await make();
    const warm = await warmVerifier();
    const fast = warm.verify(token);
    const slow = await verifier().verify(token);
    expect(reasonOf(await fast)).toBe(reason);
    expect(reasonOf(slow)).toBe(reason);
  });

  test('the refusals that reach the signature are answered synchronously too (a forged-token flood costs no promise)', async () => {
    const warm = await warmVerifier();
    const [h, p, s] = (await idp.sign(user(30))).split('.');
    expect(warm.verify(`${h}.${p}.${flip(s!, 20)}`)).toEqual({ kind: 'invalid', reason: 'bad_signature' });
    expect(warm.verify(await idp.sign(user(31, { exp: Math.floor(Date.now() / 1000) - 600 })))).toEqual({ kind: 'invalid', reason: 'token_expired' });
  });

  test('an RSA key under 2048 bits is refused by jose and never used synchronously', async () => {
    // jose will not make such a key: node:crypto makes it and signs the tokens.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weakJwk = { ...publicKey.export({ format: 'jwk' }), kid: 'weak', alg: 'RS256', use: 'sig' };
    const issuer = await startIssuer([{ ...keys.RS256, kid: 'weak', publicJwk: weakJwk }], '/weak');
    const signWeak = (claims: Record<string, unknown>) => {
      const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'weak' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
    };
    try {
      const config = parseConfig({ issuers: [{ issuer: issuer.issuer, audiences: [AUDIENCE], emailVerifiedWhenAbsent: true }] });
      const weakVerifier = createBearerVerifier(config, createMetrics({ defaultMetrics: false }), silentLogger)!;
      for (const n of [40, 41]) {
        const result = weakVerifier.verify(signWeak({ ...user(n), iss: issuer.issuer, exp: Math.floor(Date.now() / 1000) + 60 }));
        expect(result).toBeInstanceOf(Promise);
        expect(reasonOf(await result)).toBe('invalid:invalid_token');
      }
    } finally {
      await issuer.stop();
    }
  });
});
