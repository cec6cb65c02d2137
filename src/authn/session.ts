/**
 * Session-cookie authentication. The cookie is the only source of truth; unsealing costs ~300 µs, so
 * opened sessions are cached by the cookie value (cache.ts CredentialCache), never past the tokens' expiry or the
 * session's absolute end. Expired tokens are refreshed through the IdP once per session at a time
 * (concurrent checks share the refresh), re-sealed, and the new cookie goes back with the answer.
 */
import { decodeJwt } from 'jose';
import { CredentialCache, digestOf } from '../cache.js';
import { sessionClaims, type SessionTokens } from '../oidc/session-claims.js';
import type { SessionCookie } from '../session/cookies.js';
import { STORE_UNAVAILABLE, type Renewal, type RenewOutcome, type SessionData, type SessionOwner, type SessionStore } from '../session-store/contract.js';
import type { Claims } from './claims.js';
import { buildIdentity, type Identity, type IdentityFailure, type IdentityMapping } from './identity.js';

/**
 * `session_revoked`: the IdP refused the session's refresh token: the user signed out or was disabled
 * there, or (Dex) a newer sign-in of the same user through the same client replaced this session.
 */
export type SessionFailure = 'session_invalid' | 'session_expired' | 'session_revoked' | IdentityFailure;

export type SessionResult =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'identity'; readonly identity: Identity; readonly session: SessionData; readonly setCookie?: readonly string[];
      /** The login this session comes from, through all its refreshes (lineageOf): what a sign-out ends. */
      readonly lineage: string;
    }
  | { readonly kind: 'invalid'; readonly reason: SessionFailure; readonly credential: 'cookie'; readonly setCookie: readonly string[] }
  | { readonly kind: 'unavailable'; readonly reason: SessionUnavailable };

/** The IdP could not refresh the session, or the session store could not be read (session.store "redis"). */
export type SessionUnavailable = 'idp_unavailable' | 'session_store_unavailable';
const STORE_DOWN: SessionResult = { kind: 'unavailable', reason: 'session_store_unavailable' };

function ownerOf(identity: Identity): SessionOwner {
  const sid = identity.claims.sid;
  return { userId: identity.userId, issuer: identity.issuer, subject: identity.subject, sid: typeof sid === 'string' && sid.length > 0 ? sid : undefined };
}

/** Issuer, subject and login time: the same for a session and every refresh of it, different for any other login. */
export function lineageOf(claims: Claims, createdAt: number): string {
  return `${String(claims.iss)}\n${String(claims.sub)}\n${createdAt}`;
}

/**
 * Invalid session cookies that cannot say which one is ours: two of one name (a browser keeps one per name,
 * path and domain, so the other was set elsewhere), or a single cookie beside chunks. Only a set of chunks
 * alone that does not fit together is plainly ours and broken.
 */
function mayHidePlant(reason: string, names: readonly string[]): boolean {
  return reason === 'duplicate' || (names.some((name) => !name.includes('.')) && names.some((name) => name.includes('.')));
}

export type RefreshResult =
  /** `partial`: the tokens were renewed but a claim source could not be read (its claims are left out for now). */
  | { readonly kind: 'ok'; readonly tokens: SessionTokens; readonly partial?: 'claims_unavailable' }
  /** `error`: the IdP's OAuth error code (or ours for a failed check); `description`: its words. */
  | { readonly kind: 'rejected'; readonly error: string; readonly description: string }
  | { readonly kind: 'unavailable'; readonly error: string; readonly description: string };

export interface TokenRefresher {
  refresh(session: SessionData): Promise<RefreshResult>;
}

export interface SessionEvents {
  refreshed(result: RefreshResult['kind'], error?: string, description?: string): void;
  issued(chunks: number): void;
}

const NONE: SessionResult = { kind: 'none' };
/** No clearing Set-Cookie: the sign-out answer cleared the cookies; a replay comes from elsewhere. */
const SIGNED_OUT: SessionResult = { kind: 'invalid', credential: 'cookie', reason: 'session_revoked', setCookie: [] };
/** Sign-outs remembered before expired ones are swept; beyond the hard cap the oldest go first. */
const SIGNED_OUT_SWEEP_AT = 10_000;
const SIGNED_OUT_MAX = 100_000;
/**
 * A cookie whose refresh is due further ahead than revalidateAfter (plus this much clock difference
 * between replicas) was sealed without the revalidation cap (before it existed): it is revalidated now.
 */
const REVALIDATION_CLOCK_SLACK_MS = 60_000;
const ALWAYS_SECURE = () => true;
const FAILURE_CACHE_MS = 60_000;
/** After a refresh, checks still carrying the old cookie get the new one for this long. */
const OLD_COOKIE_GRACE_MS = 60_000;

/**
 * What outlives a hot reload, which builds a new authenticator when the identity mapping or the cookie
 * secrets change (src/reload/): the sign-outs remembered on this replica, and the renewals in flight — one
 * per cookie whichever authenticator started it, so an IdP that rotates refresh tokens is never handed one
 * token twice because a reload came between two checks of the same session. Each authenticator maps the
 * renewed session with its own mapping; only its cache of opened sessions starts empty.
 */
export class SessionMemory {
  /**
   * Lineages signed out on this replica, until the session would have ended anyway. Kept apart from the
   * cache, which floods of other cookies could evict; only a valid session's sign-out adds to it.
   */
  readonly signedOut = new Map<string, number>();
  /** Renewals with the IdP in progress, by cookie hash. */
  readonly renewals = new Map<string, Promise<RenewOutcome>>();
}

export class SessionAuthenticator {
  private readonly cache: CredentialCache<SessionResult>;
  /** Opens in progress, by cookie hash: concurrent checks with one cookie share one unseal and refresh. */
  private readonly opening = new Map<string, Promise<SessionResult>>();
  /** memory.signedOut: shared with the authenticators before and after a reload. */
  private readonly signedOut: Map<string, number>;

  constructor(
    private readonly store: SessionStore,
    private readonly mapping: IdentityMapping,
    private readonly refresher: TokenRefresher | null,
    private readonly events: SessionEvents,
    cacheMaxEntries: number,
    private readonly now: () => number = Date.now,
    /** session.revalidateAfter: how long a session with a refresh token goes without asking the IdP. */
    private readonly revalidateAfterMs = Number.POSITIVE_INFINITY,
    private readonly memory = new SessionMemory(),
  ) {
    this.cache = new CredentialCache(cacheMaxEntries, true);
    this.signedOut = memory.signedOut;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  /** Whether new sessions can be kept now (always with cookies; with Redis, while it answers). */
  canKeepSessions(): boolean {
    return this.store.reachable();
  }

  /**
   * `servedOverHttps(context)`: whether the request came over https (cookies set in the answer follow
   * session.secure "auto"). Asked only when a cookie is set: a cached session costs no origin lookup (and,
   * with the request passed as `context`, no closure either).
   */
  authenticate<C>(cookieHeader: string | undefined, servedOverHttps: (context: C) => boolean, context: C): SessionResult | Promise<SessionResult>;
  authenticate(cookieHeader: string | undefined): SessionResult | Promise<SessionResult>;
  authenticate(cookieHeader: string | undefined, servedOverHttps: (context: unknown) => boolean = ALWAYS_SECURE, context?: unknown): SessionResult | Promise<SessionResult> {
    return this.authenticateCookie(this.store.read(cookieHeader), servedOverHttps, context);
  }

  /**
   * As authenticate, for a session cookie already read from its header (the check reads the header once).
   * `requestPath`: the path the browser asked for, where a planted second session cookie may be scoped.
   */
  authenticateCookie<C>(cookie: SessionCookie, servedOverHttps: (context: C) => boolean, context: C, requestPath = '/'): SessionResult | Promise<SessionResult> {
    if (cookie.kind === 'none') return NONE;
    if (cookie.kind === 'invalid') {
      const secure = servedOverHttps(context);
      // Several cookies that do not make one session: one of them may be a script's plant for a sub-path.
      const setCookie = cookie.names.length > 1 || cookie.reason === 'duplicate'
        ? this.store.clearAlongPath(cookie.names, requestPath, secure, mayHidePlant(cookie.reason, cookie.names))
        : this.store.clear(cookie.names, secure);
      return { kind: 'invalid', credential: 'cookie', reason: 'session_invalid', setCookie };
    }
    const cached = this.cache.get(cookie.value, this.now());
    if (cached !== undefined) return this.signedOut.size === 0 ? cached : this.unlessSignedOut(cached);
    const key = digestOf(cookie.value);
    let pending = this.opening.get(key);
    if (pending === undefined) {
      pending = this.open(cookie.value, key, cookie.names, servedOverHttps(context)).finally(() => this.opening.delete(key));
      this.opening.set(key, pending);
    }
    return this.signedOut.size === 0 ? pending : pending.then((result) => this.unlessSignedOut(result));
  }

  private unlessSignedOut(result: SessionResult): SessionResult {
    if (result.kind !== 'identity') return result;
    const until = this.signedOut.get(result.lineage);
    if (until === undefined) return result;
    if (until > this.now()) return SIGNED_OUT;
    this.signedOut.delete(result.lineage);
    return result;
  }

  /** Keeps a new session (after login) in the store and primes the cache with it; throws StoreUnavailableError. */
  async issue(tokens: SessionData, previousNames: readonly string[] = [], requestSecure = true): Promise<{ setCookies: string[]; identity: Identity; session: SessionData } | { failure: IdentityFailure }> {
    const data = this.capped(tokens);
    const built = this.identityOf(data);
    if (!built.ok) return { failure: built.reason };
    const issued = await this.store.issue(data, previousNames, requestSecure, ownerOf(built.identity));
    this.events.issued(issued.chunks);
    const identity: Identity = { ...built.identity, idToken: data.idToken, accessToken: data.accessToken };
    this.cache.set(issued.sealed, { kind: 'identity', identity, session: data, lineage: lineageOf(identity.claims, data.createdAt) }, this.validUntil(data), true);
    return { setCookies: issued.setCookies, identity, session: data };
  }

  /** The refresh is due when the tokens expire or, sooner, when the session should be revalidated. */
  private capped(tokens: SessionData): SessionData {
    return tokens.refreshToken === null ? tokens : { ...tokens, expiresAt: Math.min(tokens.expiresAt, this.now() + this.revalidateAfterMs) };
  }

  private identityOf(data: SessionData): ReturnType<typeof buildIdentity> {
    return buildIdentity(sessionClaims(decodeJwt(data.idToken) as Claims, data.addedClaims), this.mapping, 'cookie');
  }

  /**
   * Sign-out: the session in a request's cookies, without refreshing, refused by this replica from now on
   * with every refresh of it (its lineage), and the refresh tokens to end at the IdP so that other
   * replicas refuse it at their next revalidation: the session's own and, when a check of this cookie
   * refreshed it a moment ago (or is refreshing it now: awaited), its successor's.
   */
  async signOut(cookieHeader: string | undefined): Promise<{ session: SessionData | null; names: readonly string[]; refreshTokens: string[] }> {
    const cookie = this.store.read(cookieHeader);
    if (cookie.kind !== 'present') return { session: null, names: cookie.kind === 'none' ? [] : cookie.names, refreshTokens: [] };
    const key = digestOf(cookie.value);
    await this.opening.get(key)?.catch(() => undefined);
    // A renewal another authenticator (before a reload) started for this cookie: its new refresh token too.
    const renewed = await this.memory.renewals.get(key)?.catch(() => undefined);
    const opened = await this.store.open(cookie.value);
    if (opened === STORE_UNAVAILABLE) {
      // Nothing to read the session (or its refresh token, to end at the IdP) from: it is ended all the
      // same, the store retrying once it is back.
      this.cache.delete(cookie.value, this.now());
      await this.store.end(cookie.value);
      return { session: null, names: cookie.names, refreshTokens: [] };
    }
    const session = opened;
    if (session === null) return { session, names: cookie.names, refreshTokens: [] };
    let claims: Claims;
    try {
      claims = decodeJwt(session.idToken) as Claims;
    } catch {
      return { session: null, names: cookie.names, refreshTokens: [] };
    }
    this.rememberSignOut(lineageOf(claims, session.createdAt), this.store.endOf(session.createdAt));
    const refreshTokens = new Set<string>(session.refreshToken === null ? [] : [session.refreshToken]);
    const successor = this.cache.get(cookie.value, this.now());
    if (successor?.kind === 'identity' && successor.session.refreshToken !== null) refreshTokens.add(successor.session.refreshToken);
    if (renewed?.kind === 'renewed' && renewed.session.refreshToken !== null) refreshTokens.add(renewed.session.refreshToken);
    // A shared store forgets it now (every replica refuses it within recheckAfterMs; retried when unreachable),
    // and so does this replica's memory. A cookie's cached result stays: the lineage refuses it, unopened.
    if (this.store.kind === 'redis') this.cache.delete(cookie.value, this.now());
    await this.store.end(cookie.value);
    return { session, names: cookie.names, refreshTokens: [...refreshTokens] };
  }

  private rememberSignOut(lineage: string, until: number): void {
    if (this.signedOut.size >= SIGNED_OUT_SWEEP_AT) {
      const now = this.now();
      for (const [entry, end] of this.signedOut) if (end <= now) this.signedOut.delete(entry);
      for (const entry of this.signedOut.keys()) {
        if (this.signedOut.size < SIGNED_OUT_MAX) break;
        this.signedOut.delete(entry);
      }
    }
    this.signedOut.set(lineage, until);
  }

  /**
   * A new login in this browser replaces its session: a shared store forgets the old one now rather than at
   * its end (a cookie session needs nothing: the browser overwrites it).
   */
  async endReplaced(cookieHeader: string | undefined): Promise<void> {
    const cookie = this.store.read(cookieHeader);
    if (cookie.kind !== 'present') return;
    this.cache.delete(cookie.value, this.now());
    await this.store.end(cookie.value);
  }

  /** Names of this service's session cookies in a Cookie header (to expire the ones a new session does not overwrite). */
  namesIn(cookieHeader: string | undefined): string[] {
    const cookie = this.store.read(cookieHeader);
    return cookie.kind === 'none' ? [] : [...cookie.names];
  }

  clear(names: readonly string[], requestSecure = true): string[] {
    return this.store.clear(names, requestSecure);
  }

  private async open(value: string, key: string, names: readonly string[], requestSecure: boolean): Promise<SessionResult> {
    const session = await this.store.open(value);
    if (session === STORE_UNAVAILABLE) return STORE_DOWN;
    const now = this.now();
    if (session === null) return this.remember(value, { kind: 'invalid', credential: 'cookie', reason: 'session_invalid', setCookie: this.store.clear(names, requestSecure) });
    if (now >= this.store.endOf(session.createdAt)) return this.remember(value, { kind: 'invalid', credential: 'cookie', reason: 'session_expired', setCookie: this.store.clear(names, requestSecure) });
    const sealedBeforeRevalidation = session.refreshToken !== null && session.expiresAt > now + this.revalidateAfterMs + REVALIDATION_CLOCK_SLACK_MS;
    if (now < session.expiresAt && !sealedBeforeRevalidation) return this.opened(value, session, names, requestSecure);
    if (session.refreshToken === null || this.refresher === null) {
      return { kind: 'invalid', credential: 'cookie', reason: 'session_expired', setCookie: this.store.clear(names, requestSecure) };
    }
    // Refresh tokens may rotate: a second refresh with the same token would end the session, which
    // is why opens are single-flight per cookie (authenticate), renewals single-flight per session in
    // the store (cluster-wide with Redis), and the result is cached for the old cookie.
    return this.refresh(value, session, names, key, requestSecure);
  }

  /** A session read from its cookie or the store: its identity, cached until due (or rechecked). */
  private opened(value: string, session: SessionData, names: readonly string[], requestSecure: boolean, setCookie?: readonly string[]): SessionResult {
    const result = this.identityResult(session, names, requestSecure);
    if (result.kind !== 'identity') return this.remember(value, result);
    const withCookies: SessionResult = setCookie === undefined ? result : { ...result, setCookie };
    this.cache.set(value, withCookies, this.validUntil(session), true);
    return withCookies;
  }

  private async refresh(value: string, stale: SessionData, names: readonly string[], key: string, requestSecure: boolean): Promise<SessionResult> {
    const refresher = this.refresher!;
    /** Why the renewed identity is unusable, when it is. */
    let identityFailure: IdentityFailure | undefined;
    // Joined when another authenticator (before a reload) is renewing this cookie: its outcome, our mapping.
    const joined = this.memory.renewals.get(key);
    const renewal = joined ?? this.store.renew(value, stale, async (current): Promise<Renewal> => {
      const refreshed = await refresher.refresh(current);
      if (refreshed.kind !== 'ok') {
        this.events.refreshed(refreshed.kind, refreshed.error, refreshed.description);
        return refreshed.kind === 'rejected' ? { kind: 'rejected' } : { kind: 'failed', final: false };
      }
      this.events.refreshed('ok', refreshed.partial);
      const session = this.capped({ ...refreshed.tokens, createdAt: current.createdAt });
      let built: ReturnType<typeof buildIdentity>;
      try {
        built = this.identityOf(session);
      } catch {
        return { kind: 'failed', final: true };
      }
      if (!built.ok) {
        identityFailure = built.reason;
        return { kind: 'failed', final: true };
      }
      return { kind: 'renewed', session, owner: ownerOf(built.identity) };
    }, names, requestSecure).finally(() => this.memory.renewals.delete(key));
    if (joined === undefined) this.memory.renewals.set(key, renewal);
    const outcome = await renewal;
    switch (outcome.kind) {
      case STORE_UNAVAILABLE:
        return STORE_DOWN;
      case 'gone':
        return this.remember(value, { kind: 'invalid', credential: 'cookie', reason: 'session_revoked', setCookie: [] }, this.store.endOf(stale.createdAt));
      case 'current':
        // Renewed by another replica a moment ago: nothing to ask the IdP, the cookie stays as it is.
        return this.opened(value, outcome.session, names, requestSecure);
      case 'not_renewed': {
        const { renewal } = outcome;
        if (renewal.kind === 'failed' && !renewal.final) return { kind: 'unavailable', reason: 'idp_unavailable' };
        if (renewal.kind === 'failed') return this.remember(value, { kind: 'invalid', credential: 'cookie', reason: identityFailure ?? 'session_invalid', setCookie: this.store.clear(names, requestSecure) });
        // No clearing Set-Cookie: when another replica refreshed the same session at the same moment and
        // the IdP refused the second use of the refresh token (Dex without a reuse interval), clearing
        // here could land after that replica's fresh cookie and end a live session. A dead cookie does no
        // harm: its next check is refused again, and the next login overwrites it.
        // A refused refresh token never becomes good again: remember that for the rest of the session, so a
        // page that keeps polling with a dead cookie does not ask the IdP again every minute.
        return this.remember(value, { kind: 'invalid', credential: 'cookie', reason: 'session_revoked', setCookie: [] }, this.store.endOf(stale.createdAt));
      }
      case 'renewed':
        break;
    }
    const renewed = outcome.session;
    const result = this.identityResult(renewed, names, requestSecure);
    if (result.kind !== 'identity') return this.remember(value, result);
    if (outcome.sealed === undefined) {
      // The cookie stays the same (a shared store renewed the session behind it).
      this.cache.set(value, result, this.validUntil(renewed), true);
      return result;
    }
    // Counted once, by the authenticator that renewed.
    if (joined === undefined) this.events.issued(outcome.chunks ?? 1);
    this.cache.set(outcome.sealed, result, this.validUntil(renewed), true);
    const withCookies: SessionResult = { ...result, setCookie: outcome.setCookies };
    this.cache.set(value, withCookies, Math.min(this.validUntil(renewed), this.now() + OLD_COOKIE_GRACE_MS), true);
    return withCookies;
  }

  private identityResult(session: SessionData, names: readonly string[], requestSecure: boolean): SessionResult {
    let claims: Claims;
    try {
      claims = sessionClaims(decodeJwt(session.idToken) as Claims, session.addedClaims);
    } catch {
      return { kind: 'invalid', credential: 'cookie', reason: 'session_invalid', setCookie: this.store.clear(names, requestSecure) };
    }
    const built = buildIdentity(claims, this.mapping, 'cookie');
    if (!built.ok) return { kind: 'invalid', credential: 'cookie', reason: built.reason, setCookie: this.store.clear(names, requestSecure) };
    return { kind: 'identity', identity: { ...built.identity, idToken: session.idToken, accessToken: session.accessToken }, session, lineage: lineageOf(claims, session.createdAt) };
  }

  /** Until the tokens are due or the session ends, and no longer than the store lets a replica trust a read. */
  private validUntil(session: SessionData): number {
    return Math.min(session.expiresAt, this.store.endOf(session.createdAt), this.now() + this.store.recheckAfterMs);
  }

  /** `value`'s result until `until`: the cookie itself is kept only for an opened session (cache.ts). */
  private remember(value: string, result: SessionResult, until = this.now() + FAILURE_CACHE_MS): SessionResult {
    this.cache.set(value, result, until, result.kind === 'identity');
    return result;
  }
}
