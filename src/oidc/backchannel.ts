/**
 * OIDC Back-Channel Logout 1.0: the IdP POSTs a signed logout token when a user's session ends there
 * (sign-out elsewhere, an administrator's logout, a disabled user), and the sessions that came from that
 * IdP session — or, without `sid`, every session of that subject — end on every replica. Only a shared
 * store (session.store: redis) can end sessions from the server; with cookies the answer says so (501).
 */
import express, { Router, type Request, type Response } from 'express';
import { decodeJwt } from 'jose';
import type { BearerVerifier } from '../authn/bearer.js';
import type { Claims } from '../authn/claims.js';
import type { Logger } from '../log.js';
import type { LineLimiter } from '../log-limit.js';
import type { Metrics } from '../metrics.js';
import { StoreUnavailableError, type SessionRevoker } from '../session-store/contract.js';

export const BACKCHANNEL_LOGOUT_PATH = '/oauth2/backchannel_logout';
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** Logout tokens are sent at once; an older one is refused (and jti values are remembered this long). */
export const MAX_LOGOUT_TOKEN_AGE_MS = 10 * 60_000;

export type LogoutTarget = { readonly jti: string } & ({ readonly by: 'sid'; readonly sid: string } | { readonly by: 'sub'; readonly sub: string });

/** §2.6 checks on a logout token whose signature and issuer are verified: what to end, or why not. */
export function logoutTargetOf(claims: Claims, clientId: string, now: number, clockSkewMs: number): { ok: true; target: LogoutTarget } | { ok: false; problem: string } {
  const aud = claims.aud;
  if (!(aud === clientId || (Array.isArray(aud) && aud.includes(clientId)))) return { ok: false, problem: 'aud does not name this client' };
  const iat = claims.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return { ok: false, problem: 'iat is missing' };
  if (iat * 1000 > now + clockSkewMs) return { ok: false, problem: 'iat is in the future' };
  if (iat * 1000 < now - MAX_LOGOUT_TOKEN_AGE_MS - clockSkewMs) return { ok: false, problem: 'the token is older than 10 minutes' };
  const events = claims.events;
  const event = typeof events === 'object' && events !== null && !Array.isArray(events) ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] : undefined;
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return { ok: false, problem: `events has no ${BACKCHANNEL_LOGOUT_EVENT} member` };
  // A nonce would make it an ID token: one must never pass for the other.
  if (claims.nonce !== undefined) return { ok: false, problem: 'a logout token carries no nonce' };
  const jti = claims.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return { ok: false, problem: 'jti is missing' };
  const { sid, sub } = claims;
  if (typeof sid === 'string' && sid.length > 0) return { ok: true, target: { jti, by: 'sid', sid } };
  if (typeof sub === 'string' && sub.length > 0) return { ok: true, target: { jti, by: 'sub', sub } };
  return { ok: false, problem: 'neither sid nor sub' };
}

/** The iss a JWT names, unverified (for a precise refusal); null when it names none. */
function issuerNamedIn(token: string): string | null {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : null;
  } catch {
    return null;
  }
}

export interface BackchannelDeps {
  readonly issuer: string;
  readonly clientId: string;
  readonly clockSkewMs: number;
  /** The bearer verifier of the config in force (hot reload swaps it); read once per request. */
  readonly bearer: () => BearerVerifier | null;
  /** null with cookie sessions. */
  readonly revoker: SessionRevoker | null;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly logLimit: LineLimiter | null;
  readonly now: () => number;
}

type Result = 'ok' | 'invalid_token' | 'replayed' | 'not_supported' | 'keys_unavailable' | 'store_unavailable';

export function createBackchannelRoute(deps: BackchannelDeps): Router {
  const { metrics, logger } = deps;
  const router = Router();
  const answer = (res: Response, result: Result, status: number, body?: object) => {
    metrics.backchannelLogouts.inc({ result });
    res.set('cache-control', 'no-store');
    if (body === undefined) return void res.status(status).end();
    res.status(status).json(body);
  };
  const refuse = (res: Response, problem: string) => {
    if (deps.logLimit === null || deps.logLimit.take('backchannel_invalid')) logger.info('back-channel logout refused', { problem });
    answer(res, 'invalid_token', 400, { error: 'invalid_request', error_description: problem });
  };

  router.post(BACKCHANNEL_LOGOUT_PATH, express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 10 }), async (req: Request, res: Response) => {
    if (deps.revoker === null) {
      return answer(res, 'not_supported', 501, {
        error: 'not_supported',
        error_description: 'back-channel logout needs sessions kept in Redis (session.store: redis); cookie sessions cannot be ended by the server and end at their next revalidation (session.revalidateAfter)',
      });
    }
    const token = (req.body as Record<string, unknown> | undefined)?.logout_token;
    if (typeof token !== 'string' || token.length === 0) return refuse(res, 'logout_token is missing (a form-encoded POST with logout_token=<JWT>)');
    const bearer = deps.bearer();
    if (bearer === null) return refuse(res, 'no keys for the issuer');
    // The issuer named first: Keycloak's iss follows the host name it was reached by, a common mismatch.
    const named = issuerNamedIn(token);
    if (named !== null && named !== deps.issuer) return refuse(res, `iss "${named.replace(/[^\x20-\x7e]/g, '?').slice(0, 256)}" is not oidc.issuer "${deps.issuer}"`);
    const verified = await bearer.verifiedLogoutClaims(token, deps.issuer);
    if (verified.kind === 'unavailable') return answer(res, 'keys_unavailable', 503, { error: 'temporarily_unavailable', error_description: 'the issuer\'s keys cannot be fetched' });
    if (verified.kind === 'invalid') return refuse(res, `the logout token is not valid (${verified.reason})`);
    const checked = logoutTargetOf(verified.claims, deps.clientId, deps.now(), deps.clockSkewMs);
    if (!checked.ok) return refuse(res, checked.problem);
    const { target } = checked;
    const revoker = deps.revoker;
    let marked = false;
    try {
      if (!(await revoker.firstUse(deps.issuer, target.jti, MAX_LOGOUT_TOKEN_AGE_MS + 2 * deps.clockSkewMs))) return answer(res, 'replayed', 400, { error: 'invalid_request', error_description: 'this logout token was used before (jti)' });
      marked = true;
      const ended = target.by === 'sid' ? await revoker.revokeIdpSession(deps.issuer, target.sid) : await revoker.revokeSubject(deps.issuer, target.sub);
      // "ended", not "sessions": the logger redacts fields named like a session.
      logger.info('back-channel logout', { by: target.by, ended });
      answer(res, 'ok', 200);
    } catch (error) {
      // Redis failed (StoreUnavailableError from a revocation, ioredis's own error from the jti check).
      logger.warn('back-channel logout failed: session store unavailable', { error: error instanceof StoreUnavailableError || error instanceof Error ? error.message : String(error) });
      // The IdP is asked to send it again: its resend must not be taken for a replay.
      if (marked) await revoker.forgetUse(deps.issuer, target.jti).catch(() => undefined);
      res.set('retry-after', '5');
      answer(res, 'store_unavailable', 503, { error: 'temporarily_unavailable', error_description: 'the session store cannot be reached; send the logout token again' });
    }
  });
  return router;
}
