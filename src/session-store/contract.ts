/**
 * Where a browser session lives (session.store). Two stores keep this contract:
 * - "cookie" (session/store.ts): the sealed session is the cookie. No shared state; nothing to revoke
 *   server-side, so a copied cookie works until revalidation or its end.
 * - "redis" (session-store/redis-store.ts): the cookie is a signed random handle; the session, sealed with
 *   the same secrets, is in Redis. Revocable at once everywhere (after each replica's recheckAfterMs), and
 *   refreshed once cluster-wide.
 * The session authenticator (authn/session.ts) speaks only this contract.
 */
import type { SessionCookie } from '../session/cookies.js';
import type { SessionData } from '../session/store.js';

export type { SessionData };

/** Whose session it is: what revocation by user, subject or IdP session (back-channel logout) finds it by. */
export interface SessionOwner {
  readonly userId: string;
  readonly issuer: string;
  readonly subject: string;
  /** The IdP's session id (the ID token's `sid`), when it sends one. */
  readonly sid: string | undefined;
}

export interface IssuedSession {
  readonly setCookies: string[];
  /** The cookie value a later request presents (joined, for a chunked cookie session). */
  readonly sealed: string;
  readonly chunks: number;
}

/** The store cannot be reached or did not answer in time: the check answers 503, nothing is concluded. */
export const STORE_UNAVAILABLE = 'store_unavailable';
export type StoreUnavailable = typeof STORE_UNAVAILABLE;

/** Thrown by issue() when the session could not be kept (the login answers a page saying so). */
export class StoreUnavailableError extends Error {}

/** Thrown by issue() for a session too large to keep (the login answers "too large" rather than loop). */
export class SessionTooLargeError extends Error {}

/** What the authenticator's refresh made of the session it was handed (renew's callback). */
export type Renewal =
  | { readonly kind: 'renewed'; readonly session: SessionData; readonly owner: SessionOwner }
  /** The IdP refused the refresh token: the session is over (the store forgets it). */
  | { readonly kind: 'rejected' }
  /** The IdP could not be asked, or the renewed identity is unusable (`final`: forget the session). */
  | { readonly kind: 'failed'; readonly final: boolean };

export type RenewOutcome =
  /** `setCookies`: what carries the renewed session; `sealed`: its new cookie value (undefined: the cookie stays). */
  | { readonly kind: 'renewed'; readonly session: SessionData; readonly setCookies: readonly string[]; readonly sealed?: string; readonly chunks?: number }
  /** Another replica renewed it meanwhile (or is done renewing): this is the session now. */
  | { readonly kind: 'current'; readonly session: SessionData }
  /** Revoked or ended meanwhile. */
  | { readonly kind: 'gone' }
  /** The callback's own answer, when it did not renew. */
  | { readonly kind: 'not_renewed'; readonly renewal: Exclude<Renewal, { kind: 'renewed' }> }
  | { readonly kind: StoreUnavailable };

export interface SessionStore {
  readonly kind: 'cookie' | 'redis';
  /**
   * How long a replica may use a session it opened before opening it again: the longest a session revoked
   * elsewhere keeps working here. Infinite for cookies (nothing elsewhere can revoke them).
   */
  readonly recheckAfterMs: number;
  /** The session cookie in a Cookie header. */
  read(cookieHeader: string | undefined): SessionCookie;
  /** When a session that began at `createdAt` ends, whatever refreshes happen. */
  endOf(createdAt: number): number;
  /** Keeps a new session (a login) and returns the cookies that carry it; throws StoreUnavailableError. */
  issue(data: SessionData, previousNames: readonly string[], requestSecure: boolean, owner: SessionOwner): Promise<IssuedSession>;
  /** The session a cookie value stands for; null when forged, expired, revoked or unknown. */
  open(value: string): Promise<SessionData | null | StoreUnavailable>;
  /**
   * Renews the session `value` stands for, whose copy `stale` is due: `renew` runs at most once at a time
   * for the session (cluster-wide for a shared store), with the session as stored at that moment.
   */
  renew(value: string, stale: SessionData, renew: (current: SessionData) => Promise<Renewal>, names: readonly string[], requestSecure: boolean): Promise<RenewOutcome>;
  /** Ends the session server-side (sign-out); false when a shared store could not be told yet (it is retried). */
  end(value: string): Promise<boolean>;
  /** Set-Cookie headers that expire the named cookies. */
  clear(names: readonly string[], requestSecure?: boolean): string[];
  /** As clear, also along the request's path (cookie-header.ts: planted cookies). */
  clearAlongPath(names: readonly string[], requestPath: string, requestSecure?: boolean, keepOurs?: boolean): string[];
  /** Readiness: null once the store has been reached (a later outage fails checks, not readiness); else why not. */
  problem(): string | null;
  /** Whether the store answers now (oidc_authz_session_store_up). */
  reachable(): boolean;
  close(): Promise<void>;
}

/** Ends the sessions of a user, a subject or an IdP session: `oidc-authz sessions revoke`, back-channel logout. */
export interface SessionRevoker {
  /** Number of sessions ended. */
  revokeUser(userId: string): Promise<number>;
  revokeSubject(issuer: string, subject: string): Promise<number>;
  revokeIdpSession(issuer: string, sid: string): Promise<number>;
  /** True the first time a logout token's (issuer, jti) is seen; false for a replay. Kept `ttlMs`. */
  firstUse(issuer: string, jti: string, ttlMs: number): Promise<boolean>;
  /** Takes firstUse back (the revocation it guarded failed, so the IdP's resend must be taken). */
  forgetUse(issuer: string, jti: string): Promise<void>;
}
