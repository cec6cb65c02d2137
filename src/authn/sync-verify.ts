/**
 * A first-seen JWT verified synchronously: node:crypto's one-shot verify with the key jose selected and
 * imported for the token's `alg` and `kid`, then jose's own claim checks. jose on Node verifies through
 * WebCrypto, which pays a threadpool hop and promises per token (research/perf.md: RS256 63 µs that way,
 * 24 µs synchronously); every token of a new user, every short-lived machine token and every forged-token
 * flood takes this path.
 *
 * jose stays the authority on everything but the signature arithmetic:
 *   - which key a header selects (kid, kty, use, key_ops, alg, crv): a key is used here only after jose's
 *     own key set returned it, unambiguously, for that alg and kid (SelectedKeys);
 *   - the claims: `UnsecuredJWT.decode` runs the same claim-set validation `jwtVerify` runs (iss, aud,
 *     exp, nbf, iat, required claims, clock tolerance, payload shape), on the payload already proven signed.
 * Anything unusual goes to the jose path unchanged: headers with `crit` or `b64`, no `kid`, a kid whose
 * key jose has not selected yet, an alg outside the table below.
 */
import { KeyObject, constants, verify, webcrypto, type VerifyKeyObjectInput } from 'node:crypto';
import { UnsecuredJWT, type JWTClaimVerificationOptions, type JWTPayload } from 'jose';

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

/** What a synchronous verification found: null when the token must take jose's path instead. */
export type SyncVerification =
  | { readonly kind: 'ok'; readonly payload: JWTPayload }
  | { readonly kind: 'bad_signature' }
  | { readonly kind: 'malformed' };

/** The header `{"alg":"none"}`, base64url: UnsecuredJWT.decode validates claims behind it. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/**
 * Verifies a compact JWS whose protected header (already parsed, its alg allowed by the caller) is
 * `header`, with the key jose selected for it; then validates its claims with `options` exactly as
 * jwtVerify would (claim errors are thrown as jose's errors). Null: not a token for this path.
 */
export function verifySync(token: string, header: Record<string, unknown>, keys: SelectedKeys, options: JWTClaimVerificationOptions): SyncVerification | null {
  const { alg, kid } = header;
  if (typeof alg !== 'string' || typeof kid !== 'string' || header.crit !== undefined || header.b64 !== undefined) return null;
  const scheme = SCHEMES.get(alg);
  const key = scheme === undefined ? undefined : keys.get(alg, kid);
  if (scheme === undefined || key === undefined) return null;
  const payloadEnd = token.lastIndexOf('.');
  const encodedSignature = token.slice(payloadEnd + 1);
  // A base64url text of length 4n+1 encodes no whole byte: jose's decoder refuses it.
  if (encodedSignature.length % 4 === 1) return { kind: 'malformed' };
  let valid: boolean;
  try {
    valid = verify(scheme.digest, Buffer.from(token.slice(0, payloadEnd), 'latin1'), scheme.key(key), Buffer.from(encodedSignature, 'base64url'));
  } catch {
    // An r‖s of the wrong length, for one: no signature of this key.
    valid = false;
  }
  if (!valid) return { kind: 'bad_signature' };
  const payloadStart = token.indexOf('.') + 1;
  return { kind: 'ok', payload: UnsecuredJWT.decode(`${NONE_HEADER}.${token.slice(payloadStart, payloadEnd)}.`, options).payload };
}
