/**
 * The login transaction: PKCE verifier, state, nonce and return URL, sealed into a short-lived cookie
 * of its own per `state` (so logins in several tabs do not overwrite each other), scoped to the
 * callback path, and cleared when the callback uses it.
 */
import { hash } from 'node:crypto';
import { findCookie } from '../session/cookie-header.js';
import { attributesFor, clearCookieHeader, setCookieHeader, type CookiePolicy } from '../session/cookies.js';
import type { Sealer } from '../session/seal.js';

export { CALLBACK_PATH } from '../config/schema.js';
import { CALLBACK_PATH } from '../config/schema.js';

export interface LoginTransaction {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly returnTo: string;
  /** The redirect_uri the authorization request named: the code exchange must name the same. */
  readonly redirectUri: string;
  /** A login for an offlineToken route's grant (no session is issued; the grant is handed over). */
  readonly offline?: boolean | undefined;
}

/**
 * Browsers keep cookies whose name and value fit in 4096 bytes; the whole Set-Cookie line is kept under
 * this, which leaves the attributes room as well.
 */
export const MAX_TRANSACTION_COOKIE_BYTES = 4000;

/** `returnTo`, then the same URL without its query, then `fallback`: each shorter return URL to try. */
function shorterReturnUrls(returnTo: string, fallback: string): string[] {
  const candidates = [returnTo];
  const queryAt = returnTo.indexOf('?');
  if (queryAt !== -1) candidates.push(returnTo.slice(0, queryAt));
  if (!candidates.includes(fallback)) candidates.push(fallback);
  return candidates;
}

export class TransactionCookies {
  constructor(
    private readonly sealer: Sealer,
    private readonly baseName: string,
    private readonly policy: CookiePolicy,
    private readonly ttlSeconds: number,
  ) {}

  nameFor(state: string): string {
    return `${this.baseName}_login_${hash('sha256', state, 'base64url').slice(0, 16)}`;
  }

  /**
   * The Set-Cookie that keeps `tx` until the callback, under MAX_TRANSACTION_COOKIE_BYTES: browsers drop a
   * larger cookie, and the login would then end on "sign-in expired". A return URL too long for that is
   * cut back to its path (the query dropped), and failing that to `fallbackReturnTo`; `returnTo` says
   * which one was kept.
   */
  async create(tx: LoginTransaction, requestSecure = true, fallbackReturnTo = '/'): Promise<{ setCookie: string; returnTo: string }> {
    const attributes = attributesFor(this.policy, requestSecure);
    let setCookie = '';
    for (const returnTo of shorterReturnUrls(tx.returnTo, fallbackReturnTo)) {
      const sealed = await this.sealer.seal({ ...tx, returnTo }, this.ttlSeconds);
      setCookie = setCookieHeader(this.nameFor(tx.state), sealed, this.ttlSeconds, attributes, CALLBACK_PATH);
      if (setCookie.length <= MAX_TRANSACTION_COOKIE_BYTES) return { setCookie, returnTo };
    }
    // Only a fallback URL itself too long could get here; the login still works, landing there.
    return { setCookie, returnTo: fallbackReturnTo };
  }

  /** The transaction for `state` from the request's Cookie header, or null (unknown, twice, expired, tampered). */
  async find(cookieHeader: string | undefined, state: string): Promise<LoginTransaction | null> {
    const sealed = findCookie(cookieHeader, this.nameFor(state));
    if (sealed === null) return null;
    const data = await this.sealer.unseal(sealed, this.ttlSeconds);
    if (data === null || data.state !== state) return null;
    const { nonce, codeVerifier, returnTo, redirectUri, offline } = data;
    if (typeof nonce !== 'string' || typeof codeVerifier !== 'string' || typeof returnTo !== 'string' || typeof redirectUri !== 'string') return null;
    return { state, nonce, codeVerifier, returnTo, redirectUri, ...(offline === true ? { offline: true } : {}) };
  }

  clear(state: string, requestSecure = true): string {
    return clearCookieHeader(this.nameFor(state), attributesFor(this.policy, requestSecure), CALLBACK_PATH);
  }
}
