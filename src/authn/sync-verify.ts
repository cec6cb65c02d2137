/**
 * A first-seen JWT verified synchronously: node:crypto's one-shot verify with the key jose selected and
 * imported for the token's `alg` and `kid`, then the claim checks jwtVerify makes. jose on Node verifies through
 * WebCrypto, which pays a threadpool hop and promises per token (research/perf.md: RS256 63 µs that way,
 * 24 µs synchronously); every token of a new user, every short-lived machine token and every forged-token
 * flood takes this path.
 *
 * jose stays the authority on everything but the signature arithmetic:
 *   - which key a header selects (kid, kty, use, key_ops, alg, crv): a key is used here only after jose's
 *     own key set returned it, unambiguously, for that alg and kid (SelectedKeys);
 *   - the tokens themselves: any token this path refuses or accepts, jose's jwtVerify refuses or accepts the
 *     same way, with the same reason (test/unit/sync-verify.test.ts runs every case both ways).
 * The claim checks are jose's validateClaimsSet for the options bearer.ts gives it, in its order (claimFailure):
 * jose's own entry point to them (UnsecuredJWT.decode) decodes base64url with a portable JavaScript loop
 * that cost a first-seen token a third of its RS256 signature check.
 * Anything unusual goes to the jose path unchanged: headers with `crit` or `b64`, no `kid`, a kid whose
 * key jose has not selected yet, an alg outside the table below.
 */
import { KeyObject, constants, verify, webcrypto, type VerifyKeyObjectInput } from 'node:crypto';
import type { Claims } from './claims.js';
import type { TokenFailure } from './bearer.js';

/** What node:crypto needs per JWS alg, and what the CryptoKey jose imported for it must be. */
interface SignatureScheme {
  readonly digest: string | null;
  readonly key: (key: KeyObject) => VerifyKeyObjectInput | KeyObject;
  /** The WebCrypto algorithm jose imports the key as (checked once, when the key is remembered). */
  readonly webCrypto: { readonly name: string; readonly hash?: string; readonly namedCurve?: string };
  readonly minRsaBits?: number;
}

const rsa = (bits: number): SignatureScheme => ({ digest: `sha${bits}`, key: (key) => key, webCrypto: { name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}` }, minRsaBits: 2048 });
// WebCrypto's RSA-PSS salt is the digest's length, as JWS (RFC 7518 §3.5) requires.
const pss = (bits: number): SignatureScheme => ({
  digest: `sha${bits}`,
  key: (key) => ({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }),
  webCrypto: { name: 'RSA-PSS', hash: `SHA-${bits}` },
  minRsaBits: 2048,
});
// JWS ECDSA signatures are r‖s (RFC 7518 §3.4), not DER.
const ecdsa = (bits: number, namedCurve: string): SignatureScheme => ({ digest: `sha${bits}`, key: (key) => ({ key, dsaEncoding: 'ieee-p1363' }), webCrypto: { name: 'ECDSA', namedCurve } });
const ed25519: SignatureScheme = { digest: null, key: (key) => key, webCrypto: { name: 'Ed25519' } };

const SCHEMES: ReadonlyMap<string, SignatureScheme> = new Map([
  ['RS256', rsa(256)], ['RS384', rsa(384)], ['RS512', rsa(512)],
  ['PS256', pss(256)], ['PS384', pss(384)], ['PS512', pss(512)],
  ['ES256', ecdsa(256, 'P-256')], ['ES384', ecdsa(384, 'P-384')], ['ES512', ecdsa(512, 'P-521')],
  ['EdDSA', ed25519], ['Ed25519', ed25519],
]);

/**
 * The keys jose's local key set selected, by alg and kid, as KeyObjects for node:crypto. One per key set:
 * a new JWKS fetch starts empty, so a withdrawn key is forgotten with the set that held it.
 */
export class SelectedKeys {
  private readonly keys = new Map<string, KeyObject>();

  /** jose's key set returned `key` for this header (its selection was unambiguous). */
  remember(alg: unknown, kid: unknown, key: unknown): void {
    // By its tag, as jose tells a CryptoKey (the class is not a global in every context, jest's for one).
    if (typeof alg !== 'string' || typeof kid !== 'string' || (key as { [Symbol.toStringTag]?: unknown } | null)?.[Symbol.toStringTag] !== 'CryptoKey') return;
    const cryptoKey = key as webcrypto.CryptoKey;
    const scheme = SCHEMES.get(alg);
    if (scheme === undefined || !suits(cryptoKey, scheme)) return;
    try {
      this.keys.set(selection(alg, kid), KeyObject.from(cryptoKey));
    } catch {
      // Not convertible: its tokens keep taking jose's path.
    }
  }

  get(alg: string, kid: string): KeyObject | undefined {
    return this.keys.get(selection(alg, kid));
  }
}

/** The checks jose makes of a CryptoKey before it verifies with it (algorithm, hash, curve, usage, RSA size). */
function suits(key: webcrypto.CryptoKey, scheme: SignatureScheme): boolean {
  const algorithm = key.algorithm as { name: string; hash?: { name: string }; namedCurve?: string; modulusLength?: number };
  const expected = scheme.webCrypto;
  if (algorithm.name !== expected.name || !key.usages.includes('verify')) return false;
  if (expected.hash !== undefined && algorithm.hash?.name !== expected.hash) return false;
  if (expected.namedCurve !== undefined && algorithm.namedCurve !== expected.namedCurve) return false;
  return scheme.minRsaBits === undefined || (algorithm.modulusLength ?? 0) >= scheme.minRsaBits;
}

function selection(alg: string, kid: string): string {
  return `${alg}\n${kid}`;
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The JSON object in the header (part 0) or payload (part 1) of a compact JWS that has the JWT shape
 * (bearer.ts JWT_SHAPE), decoded as jose decodes it — base64url of a whole number of bytes, strict UTF-8, a
 * JSON object or an error — but with Node's native base64url in place of jose's portable atob loop, which
 * cost a first-seen token as much as its RS256 signature check.
 */
export function decodedPart(token: string, part: 0 | 1): Record<string, unknown> {
  const first = token.indexOf('.');
  const start = part === 0 ? 0 : first + 1;
  const end = part === 0 ? first : token.indexOf('.', start);
  if (first === -1 || end === -1) throw new TypeError('not a compact JWS');
  const text = token.slice(start, end);
  if (text.length % 4 === 1) throw new TypeError('not base64url of whole bytes');
  const value: unknown = JSON.parse(STRICT_UTF8.decode(Buffer.from(text, 'base64url')));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('not a JSON object');
  return value as Record<string, unknown>;
}

/** What a synchronous verification found: null when the token must take jose's path instead. */
export type SyncVerification =
  | { readonly kind: 'ok'; readonly claims: Claims }
  | { readonly kind: 'invalid'; readonly reason: TokenFailure };

/** What jwtVerify is asked to check of the claims (bearer.ts claimOptions). */
export interface ClaimExpectations {
  readonly issuer: string;
  /** `aud` must hold one of these; null: the audience is the caller's check. */
  readonly audiences: readonly string[] | null;
  readonly requiredClaims: readonly string[];
  readonly clockToleranceS: number;
  readonly nowMs: number;
}

/**
 * Verifies a compact JWS whose protected header (already parsed, its alg allowed by the caller) is
 * `header`, with the key jose selected for it; then checks its claims as jwtVerify would. `payload`: the
 * token's payload if the caller decoded it already. Null: not a token for this path.
 */
export function verifySync(token: string, header: Record<string, unknown>, keys: SelectedKeys, expect: ClaimExpectations, payload?: Claims): SyncVerification | null {
  const { alg, kid } = header;
  if (typeof alg !== 'string' || typeof kid !== 'string' || header.crit !== undefined || header.b64 !== undefined) return null;
  const scheme = SCHEMES.get(alg);
  const key = scheme === undefined ? undefined : keys.get(alg, kid);
  if (scheme === undefined || key === undefined) return null;
  const payloadEnd = token.lastIndexOf('.');
  const encodedSignature = token.slice(payloadEnd + 1);
  // A base64url text of length 4n+1 encodes no whole byte: jose's decoder refuses it.
  if (encodedSignature.length % 4 === 1) return MALFORMED;
  let valid: boolean;
  try {
    valid = verify(scheme.digest, Buffer.from(token.slice(0, payloadEnd), 'latin1'), scheme.key(key), Buffer.from(encodedSignature, 'base64url'));
  } catch {
    // An r‖s of the wrong length, for one: no signature of this key.
    valid = false;
  }
  if (!valid) return BAD_SIGNATURE;
  let claims: Claims;
  try {
    // Decoded once: the caller may have read the payload already (for its issuer).
    claims = payload ?? (decodedPart(token, 1) as Claims);
  } catch {
    return MALFORMED;
  }
  const failure = claimFailure(claims, expect);
  return failure === null ? { kind: 'ok', claims } : { kind: 'invalid', reason: failure };
}

const MALFORMED: SyncVerification = { kind: 'invalid', reason: 'malformed_token' };
const BAD_SIGNATURE: SyncVerification = { kind: 'invalid', reason: 'bad_signature' };

/**
 * jose's validateClaimsSet (jwt_claims_set.js) for these expectations, in its order, answered with the reason
 * bearer.ts gives each of its errors: required claims present (iss, then aud when checked, then the others
 * last to first), iss, aud, then iat, nbf and exp each a number when present, nbf not ahead and exp not past
 * beyond the clock tolerance.
 */
export function claimFailure(claims: Claims, expect: ClaimExpectations): TokenFailure | null {
  const present = [...expect.requiredClaims, ...(expect.audiences === null ? [] : ['aud']), 'iss'].reverse();
  for (const claim of present) if (!Object.hasOwn(claims, claim)) return claim === 'aud' ? 'wrong_audience' : claim === 'exp' ? 'missing_claim' : 'invalid_token';
  if (claims.iss !== expect.issuer) return 'invalid_token';
  if (expect.audiences !== null && !holdsAudience(claims.aud, expect.audiences)) return 'wrong_audience';
  const now = Math.floor(expect.nowMs / 1000);
  const tolerance = expect.clockToleranceS;
  if (claims.iat !== undefined && typeof claims.iat !== 'number') return 'invalid_token';
  // jose names the claim in these errors: bearer.ts reads "nbf" as token_not_yet_valid and "exp" as missing_claim.
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + tolerance)) return 'token_not_yet_valid';
  if (claims.exp !== undefined && typeof claims.exp !== 'number') return 'missing_claim';
  if (typeof claims.exp === 'number' && claims.exp <= now - tolerance) return 'token_expired';
  return null;
}

function holdsAudience(aud: unknown, audiences: readonly string[]): boolean {
  if (typeof aud === 'string') return audiences.includes(aud);
  return Array.isArray(aud) && audiences.some((expected) => aud.includes(expected));
}
