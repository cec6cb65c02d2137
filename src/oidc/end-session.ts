/**
 * The sign-out hand-over for `POST /authservice/logout`. That endpoint answers page scripts with JSON
 * (`{"afterLogoutURL": …}`, oidc-authservice's contract), so the IdP's end-session URL — which carries
 * the ID token as `id_token_hint`, a token any bearer check accepts until it expires — must not be in
 * it. Instead the answer names our own END_SESSION_PATH, and the ID token waits for it in a short-lived
 * sealed cookie that scripts cannot read (HttpOnly) and that only that path receives; the endpoint
 * sends the browser on to the IdP with a redirect.
 */
import { lookupCookie } from '../session/cookie-header.js';
import { attributesFor, clearCookieHeader, setCookieHeader, type CookiePolicy } from '../session/cookies.js';
import type { Sealer } from '../session/seal.js';

export const END_SESSION_PATH = '/oauth2/end_session';
/** Long enough for a dashboard to navigate after its POST, short enough to be worthless later. */
const TTL_SECONDS = 120;
/** Browsers keep a cookie whose name and value are at most 4096 bytes; leave room to spare. */
const MAX_COOKIE_BYTES = 4000;

export class EndSessionHandover {
  readonly name: string;

  /** `baseName`: the cookie name base of the non-session cookies (with its __Secure- prefix, if on). */
  constructor(
    private readonly sealer: Sealer,
    baseName: string,
    private readonly policy: CookiePolicy,
  ) {
    this.name = `${baseName}_logout`;
  }

  /**
   * The Set-Cookie that hands `idToken` to END_SESSION_PATH. An ID token too large for one cookie is
   * left out: the IdP then asks the user to confirm the sign-out (client_id only), which still ends it.
   */
  async create(idToken: string | undefined, requestSecure: boolean): Promise<string> {
    let sealed = await this.sealer.seal({ idToken: idToken ?? null }, TTL_SECONDS);
    if (this.name.length + sealed.length > MAX_COOKIE_BYTES) sealed = await this.sealer.seal({ idToken: null }, TTL_SECONDS);
    return setCookieHeader(this.name, sealed, TTL_SECONDS, attributesFor(this.policy, requestSecure), END_SESSION_PATH);
  }

  /**
   * What the hand-over cookie in a Cookie header holds: `null` without one; the ID token to hint with
   * when there is exactly one that opens; `{ idToken: undefined }` for a sign-out whose token cannot be
   * used (two such cookies — a script may have planted one —, an expired or a forged one): the IdP's
   * end-session is still worth visiting, with client_id only, where the IdP asks the user to confirm.
   */
  async read(cookieHeader: string | undefined): Promise<{ idToken: string | undefined } | null> {
    const handed = lookupCookie(cookieHeader, this.name);
    if (handed.found === 'none') return null;
    if (handed.found === 'several') return { idToken: undefined };
    const data = await this.sealer.unseal(handed.value, TTL_SECONDS);
    return { idToken: data !== null && typeof data.idToken === 'string' ? data.idToken : undefined };
  }

  clear(requestSecure: boolean): string {
    return clearCookieHeader(this.name, attributesFor(this.policy, requestSecure), END_SESSION_PATH);
  }
}
