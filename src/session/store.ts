/**
 * The session: what a login leaves in the browser, sealed. Holds the ID token (its claims are the
 * identity; it is also the id_token_hint at sign-out), the claims other sources add to it
 * (oidc.claimsFrom), the refresh token, when the session began (for the absolute maximum age) and when
 * the tokens expire (for refresh).
 */
import type { Claims } from '../authn/claims.js';
import { HOST_PREFIX, readCookieHeader, sessionCookieName, type CookieNames } from './cookie-header.js';
import { attributesFor, sessionSetCookies, clearCookieHeader, chunkSessionValue, type CookiePolicy, type SessionCookie } from './cookies.js';
import type { Sealer } from './seal.js';
import type { IssuedSession, Renewal, RenewOutcome, SessionStore } from '../session-store/contract.js';

export interface SessionData {
  readonly idToken: string;
  /** Claims of the access token / userinfo that the ID token lacks (empty when none are used). */
  readonly addedClaims: Claims;
  readonly refreshToken: string | null;
  /** ms since epoch */
  readonly createdAt: number;
  /** ms since epoch: the tokens' expiry, after which a refresh is due. */
  readonly expiresAt: number;
  /** The access token, kept only while a rule exchanges tokens (upstreamToken): the exchange's subject token. */
  readonly accessToken?: string | undefined;
}

export interface CookieSessionStoreOptions {
  /** session.cookieName: the session is set as `<names.sessionPrefix><cookieName>`. */
  readonly names: CookieNames;
  readonly attributes: CookiePolicy;
  readonly maxAgeMs: number;
}

/** session.store "cookie": the sealed session is the cookie (session-store/contract.ts). */
export class CookieSessionStore implements SessionStore {
  readonly kind = 'cookie';
  /** Nothing elsewhere can revoke a cookie: an opened session is good until its tokens are due. */
  readonly recheckAfterMs = Number.POSITIVE_INFINITY;

  constructor(
    private readonly sealer: Sealer,
    readonly options: CookieSessionStoreOptions,
    private readonly now: () => number = Date.now,
  ) {}

  read(cookieHeader: string | undefined): SessionCookie {
    return readCookieHeader(cookieHeader, this.options.names).session;
  }

  /** When a session that began at `createdAt` must end, whatever refreshes happened. */
  endOf(createdAt: number): number {
    return createdAt + this.options.maxAgeMs;
  }

  /** `requestSecure`: the request this answers came over https (for session.secure "auto"). */
  async issue(data: SessionData, previousNames: readonly string[] = [], requestSecure = true): Promise<IssuedSession> {
    const remainingSeconds = Math.max(1, Math.floor((this.endOf(data.createdAt) - this.now()) / 1000));
    const sealed = await this.sealer.seal({ ...data }, remainingSeconds);
    return {
      setCookies: sessionSetCookies(sessionCookieName(this.options.names), sealed, remainingSeconds, attributesFor(this.options.attributes, requestSecure), previousNames),
      sealed,
      chunks: chunkSessionValue(sessionCookieName(this.options.names), sealed).length,
    };
  }

  /** The session in a sealed value, or null when forged, tampered, expired or malformed. */
  async open(sealed: string): Promise<SessionData | null> {
    const data = await this.sealer.unseal(sealed, Math.ceil(this.options.maxAgeMs / 1000));
    return data === null ? null : sessionDataFrom(data);
  }

  /** One replica's single-flight (authn/session.ts) is all the coordination a cookie can have. */
  async renew(_value: string, stale: SessionData, renew: (current: SessionData) => Promise<Renewal>, names: readonly string[], requestSecure: boolean): Promise<RenewOutcome> {
    const renewal = await renew(stale);
    if (renewal.kind !== 'renewed') return { kind: 'not_renewed', renewal };
    const issued = await this.issue(renewal.session, names, requestSecure);
    return { kind: 'renewed', session: renewal.session, setCookies: issued.setCookies, sealed: issued.sealed, chunks: issued.chunks };
  }

  /** A cookie cannot be ended server-side: the sign-out clears it, the authenticator remembers its lineage. */
  end(): Promise<boolean> {
    return Promise.resolve(true);
  }

  problem(): string | null {
    return null;
  }

  reachable(): boolean {
    return true;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Set-Cookie headers that expire every named cookie. */
  clear(names: readonly string[], requestSecure = true): string[] {
    const memo = requestSecure ? this.clearedOverHttps : this.clearedOverHttp;
    return names.map((name) => {
      let header = memo.get(name);
      if (header === undefined) {
        header = clearCookieHeader(name, attributesFor(this.options.attributes, requestSecure));
        // Only the names the session reader reads reach here (at most 13), so the memo stays small.
        memo.set(name, header);
      }
      return header;
    });
  }

  /**
   * Set-Cookie headers for a session read as invalid from several cookies, one of which a page script
   * may have planted for a sub-path (`Path=/notebook/ns/nb/`) or without our Domain: only a clearing
   * cookie with the same path and Domain removes it. Host-only at "/" when a Domain is configured, then
   * host-only at the paths above the request, shallowest first; MAX_CLEARING_HEADERS in all (Envoy passes
   * at most 100 headers of an answer).
   *
   * `keepOurs`: the cookies do not say which one is ours (two of one name, or a single cookie beside
   * chunks), so ours — "/" with the configured attributes, the only place we set them — is left alone:
   * were it cleared and a plant out of reach survived, the plant alone would be the session on its path.
   * Best effort either way: a plant deeper than the limit, or with a Domain of its own, survives, and
   * that path keeps refusing the session (session.cookiePrefixes stops plants in the browser).
   */
  clearAlongPath(names: readonly string[], requestPath: string, requestSecure = true, keepOurs = false): string[] {
    const headers = keepOurs ? [] : this.clear(names, requestSecure);
    const hostOnly = { secure: attributesFor(this.options.attributes, requestSecure).secure };
    const add = (name: string, path: string) => {
      if (headers.length >= MAX_CLEARING_HEADERS) return;
      try {
        headers.push(clearCookieHeader(name, hostOnly, path));
      } catch {
        // A path the cookie syntax cannot carry: no browser could have stored a cookie for it either.
      }
    };
    if (this.options.attributes.domain !== undefined) for (const name of names) add(name, '/');
    // Browsers refuse a __Host- cookie with any path but "/": none to look for deeper.
    const plantable = names.filter((name) => !name.startsWith(HOST_PREFIX));
    for (const path of pathsAbove(requestPath)) for (const name of plantable) add(name, path);
    return headers;
  }

  /** Clearing headers by cookie name: a stream of checks with a broken cookie should not serialize one each. */
  private readonly clearedOverHttps = new Map<string, string>();
  private readonly clearedOverHttp = new Map<string, string>();
}

/** Unsealed data that has a session's shape, as a session; null otherwise. */
export function sessionDataFrom(data: Record<string, unknown>): SessionData | null {
  const { idToken, refreshToken, createdAt, expiresAt, addedClaims, accessToken } = data;
  if (typeof idToken !== 'string' || typeof createdAt !== 'number' || typeof expiresAt !== 'number') return null;
  if (refreshToken !== null && typeof refreshToken !== 'string') return null;
  // Sessions sealed before claimsFrom existed carry no added claims.
  if (addedClaims !== undefined && (typeof addedClaims !== 'object' || addedClaims === null || Array.isArray(addedClaims))) return null;
  return { idToken, refreshToken, createdAt, expiresAt, addedClaims: (addedClaims ?? {}) as Claims, ...(typeof accessToken === 'string' ? { accessToken } : {}) };
}

/** At most this many Set-Cookie lines clear one invalid session. */
export const MAX_CLEARING_HEADERS = 48;

/** Cookie paths that match a request for `path` besides "/": each ancestor with and without its "/", shallowest first. */
function pathsAbove(path: string): string[] {
  const paths: string[] = [];
  if (path.length > 1024 || !path.startsWith('/')) return paths;
  for (let at = path.indexOf('/', 1); paths.length < MAX_CLEARING_HEADERS; at = path.indexOf('/', at + 1)) {
    const end = at === -1 ? path.length : at;
    if (end > 1 && paths.at(-1) !== path.slice(0, end)) paths.push(path.slice(0, end));
    if (at === -1) break;
    paths.push(path.slice(0, at + 1));
  }
  return paths;
}
