/**
 * Delegated access for long jobs (README): the hand-over of an offline grant from the login callback to
 * the one check that gives it to the route's upstream. The callback seals the offline (refresh) token,
 * the user it belongs to and the route's path into a cookie scoped to that path, for OFFLINE_HANDOVER_SECONDS;
 * the next check of that path opens it, compares the user with the session's, and answers with the token
 * in the rule's header and a Set-Cookie that deletes it. Nothing is kept server-side beyond the ids of
 * hand-overs already used (so one cookie copy cannot be used twice on this replica); the token is never logged.
 *
 * A cookie rather than a server-side handle: every replica can open it (the callback and the check may
 * land on different pods), it dies with its short expiry, and the browser that consented is the only one
 * that holds it (HttpOnly, SameSite=Lax, Path = the route).
 */
import { randomBytes } from 'node:crypto';
import { findCookie } from '../session/cookie-header.js';
import { attributesFor, clearCookieHeader, setCookieHeader, type CookiePolicy } from '../session/cookies.js';
import type { Sealer } from '../session/seal.js';

/** Long enough for the redirect back from the callback, short enough that a copy is soon worthless. */
export const OFFLINE_HANDOVER_SECONDS = 120;

/** What the check finds: the token, or why there is none to hand over. */
export type OfflineHandoverResult =
  | { readonly kind: 'token'; readonly token: string }
  /** No cookie, expired, tampered, for another path, or already used: a new grant is needed. */
  | { readonly kind: 'none' }
  /** Granted by someone other than the session's user (the IdP's own session is another user's). */
  | { readonly kind: 'other_user' };

export interface OfflineHandover {
  /** The cookie's name: under `<base>_login_…`, so the Cookie header the upstream gets never carries it. */
  readonly cookieName: string;
  /** The Set-Cookie that carries `token` of `user` to the next request of `path`. */
  create(token: string, user: { readonly issuer: string; readonly subject: string }, path: string, secure: boolean): Promise<string>;
  /** Opens the hand-over in `cookieHeader` for `path` and `user`, and marks it used. */
  consume(cookieHeader: string | undefined, path: string, user: { readonly issuer: string; readonly subject: string }): Promise<OfflineHandoverResult>;
  /** The Set-Cookie that deletes the hand-over for `path`. */
  clear(path: string, secure: boolean): string;
}

export function createOfflineHandover(sealer: Sealer, baseName: string, policy: CookiePolicy, now: () => number): OfflineHandover {
  const cookieName = `${baseName}_login_offline`;
  /** Ids of hand-overs used, until they would have expired anyway. */
  const used = new Map<string, number>();
  const forget = () => {
    const at = now();
    for (const [id, until] of used) if (until <= at) used.delete(id);
  };
  return {
    cookieName,
    async create(token, user, path, secure) {
      const sealed = await sealer.seal({ t: token, iss: user.issuer, sub: user.subject, path, id: randomBytes(16).toString('base64url') }, OFFLINE_HANDOVER_SECONDS);
      return setCookieHeader(cookieName, sealed, OFFLINE_HANDOVER_SECONDS, attributesFor(policy, secure), path);
    },
    async consume(cookieHeader, path, user) {
      const sealed = findCookie(cookieHeader, cookieName);
      if (sealed === null) return { kind: 'none' };
      const data = await sealer.unseal(sealed, OFFLINE_HANDOVER_SECONDS);
      if (data === null || data.path !== path || typeof data.t !== 'string' || typeof data.id !== 'string') return { kind: 'none' };
      forget();
      if (used.has(data.id)) return { kind: 'none' };
      if (data.iss !== user.issuer || data.sub !== user.subject) return { kind: 'other_user' };
      used.set(data.id, now() + OFFLINE_HANDOVER_SECONDS * 1000);
      return { kind: 'token', token: data.t };
    },
    clear(path, secure) {
      return clearCookieHeader(cookieName, attributesFor(policy, secure), path);
    },
  };
}
