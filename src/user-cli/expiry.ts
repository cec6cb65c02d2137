/**
 * When a stored token needs refreshing: pure functions of the stored entry and the clock, so the decision
 * `oidc-authz token` makes is tested without an IdP. Expiry comes from the token's own `exp` when it is a
 * JWT (it is what our service checks), else from the token endpoint's expires_in.
 */
import type { StoredTokens, TokenKind } from './contract.js';

/** A JWT's `exp` in epoch ms, read without verifying (only to schedule a refresh), or undefined. */
export function jwtExpiresAt(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    const exp = (payload as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** When the access token of a token answer expires: its exp when a JWT, else now + expires_in. */
export function accessTokenExpiresAt(accessToken: string, expiresInS: number | undefined, now: number): number {
  return jwtExpiresAt(accessToken) ?? (expiresInS !== undefined ? now + expiresInS * 1000 : now);
}

/** When the token of this kind expires, or undefined when the entry has none of that kind. */
export function expiresAt(entry: StoredTokens, kind: TokenKind): number | undefined {
  if (kind === 'access') return entry.accessTokenExpiresAt;
  return entry.idToken === undefined ? undefined : jwtExpiresAt(entry.idToken);
}

export type TokenDecision =
  | { readonly action: 'use'; readonly token: string }
  | { readonly action: 'refresh' }
  | { readonly action: 'login'; readonly why: string };

/**
 * Use the stored token when it stays valid for `minValidMs`, refresh when it does not (or is missing) and a
 * refresh token is there, otherwise the user must log in again.
 */
export function decide(entry: StoredTokens, kind: TokenKind, now: number, minValidMs: number): TokenDecision {
  const token = kind === 'id' ? entry.idToken : entry.accessToken;
  const until = expiresAt(entry, kind);
  if (token !== undefined && until !== undefined && until - now > minValidMs) return { action: 'use', token };
  if (entry.refreshToken !== undefined) return { action: 'refresh' };
  const what = kind === 'id' ? 'ID token' : 'access token';
  return { action: 'login', why: token === undefined ? `no ${what} is stored` : `the ${what} expires within the asked validity and there is no refresh token (ask for the offline_access scope)` };
}
