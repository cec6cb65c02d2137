/**
 * The authenticator chain: `Authorization: Bearer <JWT or opaque token>` first (an opaque one is introspected
 * by the issuer configured for it, bearer.ts), then the session cookie. A request
 * that carries a Bearer token is judged by that token alone (API clients should hear why their token
 * fails, not be logged in by a stray cookie); other Authorization schemes (Basic, an app's own token)
 * are not ours and fall through to the cookie.
 */
import type { CheckRequest } from '../check/request.js';
import type { SessionCookie } from '../session/cookies.js';
import type { BearerUnavailable, BearerVerifier, TokenFailure } from './bearer.js';
import type { Identity } from './identity.js';
import type { SessionAuthenticator, SessionFailure, SessionUnavailable } from './session.js';

export type AuthResult =
  | { readonly kind: 'identity'; readonly identity: Identity; readonly setCookie?: readonly string[] }
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid'; readonly reason: TokenFailure | SessionFailure; readonly credential?: 'cookie'; readonly setCookie?: readonly string[]; readonly issuer?: string }
  | { readonly kind: 'unavailable'; readonly reason: BearerUnavailable | SessionUnavailable };

export interface Authenticator {
  /** `sessionCookie`: the session in the request's Cookie header (read once per check, by decide). */
  authenticate(request: CheckRequest, sessionCookie: SessionCookie): AuthResult | Promise<AuthResult>;
}

const NONE: AuthResult = { kind: 'none' };
const MALFORMED: AuthResult = { kind: 'invalid', reason: 'malformed_token' };
const NO_ISSUER: AuthResult = { kind: 'invalid', reason: 'unknown_issuer' };

/**
 * The token of an `Authorization: Bearer …` header; null for other schemes (Basic, an app's own
 * token scheme), which are not ours to judge; "" for a Bearer header without exactly one token.
 */
export function bearerTokenOf(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || header.length < 7) return null;
  if (header.charCodeAt(6) !== 0x20 || !startsWithBearer(header)) return null;
  const token = header.slice(7).trim();
  return token.length === 0 || token.includes(' ') ? '' : token;
}

/** "Bearer" in any case at the start of `header` (compared without allocating a lower-cased copy). */
function startsWithBearer(header: string): boolean {
  for (let i = 0; i < 6; i++) if ((header.charCodeAt(i) | 0x20) !== BEARER.charCodeAt(i)) return false;
  return true;
}
const BEARER = 'bearer';

/**
 * `servedOverHttps`: whether the browser reaches us over https for this request (the public origin's
 * scheme: publicUrl when set), which decides Secure on cookies a refresh sets under session.secure "auto".
 */
export function createAuthenticator(
  bearer: BearerVerifier | null,
  session: SessionAuthenticator | null = null,
  servedOverHttps: (request: CheckRequest) => boolean = (request) => request.scheme === 'https',
): Authenticator {
  return {
    authenticate(request, sessionCookie) {
      const token = bearerTokenOf(request.headers.authorization);
      if (token !== null) {
        if (token === '') return MALFORMED;
        if (bearer === null) return NO_ISSUER;
        return bearer.verify(token);
      }
      if (session === null) return NONE;
      return session.authenticateCookie(sessionCookie, servedOverHttps, request, request.rawPath);
    },
  };
}
