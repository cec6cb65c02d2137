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

  async create(tx: LoginTransaction, requestSecure = true): Promise<string> {
    const sealed = await this.sealer.seal({ ...tx }, this.ttlSeconds);
    return setCookieHeader(this.nameFor(tx.state), sealed, this.ttlSeconds, attributesFor(this.policy, requestSecure), CALLBACK_PATH);
  }

  /** The transaction for `state` from the request's Cookie header, or null (unknown, twice, expired, tampered). */
  async find(cookieHeader: string | undefined, state: string): Promise<LoginTransaction | null> {
    const sealed = findCookie(cookieHeader, this.nameFor(state));
    if (sealed === null) return null;
    const data = await this.sealer.unseal(sealed, this.ttlSeconds);
    if (data === null || data.state !== state) return null;
    const { nonce, codeVerifier, returnTo, redirectUri } = data;
    if (typeof nonce !== 'string' || typeof codeVerifier !== 'string' || typeof returnTo !== 'string' || typeof redirectUri !== 'string') return null;
    return { state, nonce, codeVerifier, returnTo, redirectUri };
  }

  clear(state: string, requestSecure = true): string {
    return clearCookieHeader(this.nameFor(state), attributesFor(this.policy, requestSecure), CALLBACK_PATH);
  }
}
