/**
 * The IdP side of the user CLI, hand-rolled on fetch rather than openid-client: RFC 8628's answers
 * (authorization_pending, slow_down, access_denied, expired_token) each need their own message and exit
 * code, the poll loop needs an injectable sleep so tests can drive it without waiting, and a public client
 * on a laptop needs no ID-token validation of its own (the tokens come straight from the token endpoint,
 * and our service verifies whatever it is later shown).
 */
import {
  DEFAULT_POLL_INTERVAL_S, DEVICE_CODE_GRANT, EXIT, SLOW_DOWN_STEP_S, UserCliError,
} from './contract.js';

/** What the CLI needs from the discovery document. */
export interface IdpEndpoints {
  readonly issuer: string;
  readonly deviceAuthorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string | undefined;
  readonly scopesSupported: readonly string[] | undefined;
}

/** RFC 8628 §3.2. */
export interface DeviceAuthorization {
  readonly deviceCode: string;
  readonly userCode: string;
  readonly verificationUri: string;
  readonly verificationUriComplete: string | undefined;
  readonly expiresInS: number;
  readonly intervalS: number;
}

/** A token endpoint's success answer (RFC 6749 §5.1). */
export interface TokenAnswer {
  readonly access_token: string;
  readonly token_type?: string;
  readonly expires_in?: number;
  readonly id_token?: string;
  readonly refresh_token?: string;
  readonly scope?: string;
}

/** An OAuth error answer from the IdP (RFC 6749 §5.2), kept apart so callers can switch on `error`. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string | undefined,
    readonly status: number,
  ) {
    super(description ? `${error}: ${description}` : error);
    this.name = 'OAuthError';
  }
}

/** Seconds to wait; injected so tests can drive the poll loop without waiting. */
export type Sleep = (ms: number) => Promise<void>;
export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request to the IdP must not hang a script forever. */
const REQUEST_TIMEOUT_MS = 30_000;

async function idpRequest(url: string, init: RequestInit, what: string): Promise<{ status: number; json: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), headers: { accept: 'application/json', ...init.headers } });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new UserCliError(`cannot reach the IdP for ${what} at ${url}: ${cause}`, EXIT.failure);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserCliError(`the IdP answered ${what} at ${url} with HTTP ${response.status} and no JSON: ${text.slice(0, 200)}`, EXIT.failure);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UserCliError(`the IdP answered ${what} at ${url} with HTTP ${response.status} and JSON that is not an object`, EXIT.failure);
  }
  return { status: response.status, json: json as Record<string, unknown> };
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

function oauthErrorOf(status: number, json: Record<string, unknown>): OAuthError | undefined {
  const error = str(json.error);
  return error === undefined ? undefined : new OAuthError(error, str(json.error_description), status);
}

/** OIDC discovery; the IdP must offer the device flow. */
export async function discover(issuer: string): Promise<IdpEndpoints> {
  const base = issuer.replace(/\/+$/, '');
  const url = `${base}/.well-known/openid-configuration`;
  const { status, json } = await idpRequest(url, { method: 'GET' }, 'discovery');
  if (status !== 200) {
    throw new UserCliError(`the IdP answered discovery at ${url} with HTTP ${status}: is the issuer URL complete (Dex: …/dex, Keycloak: …/realms/<realm>)?`, EXIT.failure);
  }
  // OIDC Discovery §4.3: the document must name the issuer we asked, or its tokens will name another one.
  if (json.issuer !== issuer && json.issuer !== base) {
    throw new UserCliError(`the discovery document at ${url} names issuer "${String(json.issuer)}", not "${issuer}": use that exact URL`, EXIT.failure);
  }
  const device = str(json.device_authorization_endpoint);
  const token = str(json.token_endpoint);
  if (device === undefined || token === undefined) {
    throw new UserCliError(`the IdP at ${issuer} does not offer the device flow (no device_authorization_endpoint in its discovery document)`, EXIT.failure);
  }
  const scopes = Array.isArray(json.scopes_supported) ? json.scopes_supported.filter((s): s is string => typeof s === 'string') : undefined;
  return { issuer: String(json.issuer), deviceAuthorizationEndpoint: device, tokenEndpoint: token, revocationEndpoint: str(json.revocation_endpoint), scopesSupported: scopes };
}

/** RFC 8628 §3.1–3.2: asks for a device code and the user code to show. */
export async function startDeviceAuthorization(idp: IdpEndpoints, clientId: string, scope: string, audience: string | undefined): Promise<DeviceAuthorization> {
  const body = new URLSearchParams({ client_id: clientId, scope });
  if (audience !== undefined) body.set('audience', audience);
  const { status, json } = await idpRequest(idp.deviceAuthorizationEndpoint, { method: 'POST', body }, 'the device authorization');
  const error = oauthErrorOf(status, json);
  if (status !== 200 || error !== undefined) {
    const why = error ? error.message : `HTTP ${status}`;
    const hint = error?.error === 'unauthorized_client' || error?.error === 'invalid_client'
      ? ` (is "${clientId}" a public client with the device flow enabled? Keycloak: "OAuth 2.0 Device Authorization Grant" on; Dex: public: true)`
      : error?.error === 'invalid_scope' ? ` (asked for "${scope}"; pass --scope with scopes the IdP knows)` : '';
    throw new UserCliError(`the IdP refused to start a device login: ${why}${hint}`, EXIT.failure);
  }
  const deviceCode = str(json.device_code);
  const userCode = str(json.user_code);
  // "verification_url" is the name in drafts of RFC 8628 that some IdPs still send.
  const verificationUri = str(json.verification_uri) ?? str(json.verification_url);
  if (deviceCode === undefined || userCode === undefined || verificationUri === undefined) {
    throw new UserCliError('the IdP\'s device authorization answer lacks device_code, user_code or verification_uri', EXIT.failure);
  }
  const positive = (value: unknown, fallback: number) => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback);
  return {
    deviceCode,
    userCode,
    verificationUri,
    verificationUriComplete: str(json.verification_uri_complete),
    expiresInS: positive(json.expires_in, 600),
    intervalS: positive(json.interval, DEFAULT_POLL_INTERVAL_S),
  };
}

/** What polling saw, for the caller's log and the tests. */
export interface PollReport {
  readonly polls: number;
  readonly slowDowns: number;
  /** The interval in force at the end, in seconds. */
  readonly finalIntervalS: number;
}

/**
 * RFC 8628 §3.4–3.5: polls the token endpoint every `interval` seconds until the user approves or refuses,
 * or the code expires. `now` and `sleep` are injected (tests drive the loop without waiting).
 */
export async function pollForTokens(
  idp: IdpEndpoints,
  clientId: string,
  authorization: DeviceAuthorization,
  clock: { now: () => number; sleep: Sleep },
): Promise<{ tokens: TokenAnswer; report: PollReport }> {
  const deadline = clock.now() + authorization.expiresInS * 1000;
  let intervalS = authorization.intervalS;
  let polls = 0;
  let slowDowns = 0;
  for (;;) {
    await clock.sleep(intervalS * 1000);
    // Poll even when the sleep ended past expires_in: the user may have approved just before it, and the IdP
    // is the one to say expired_token. Only an IdP still answering "pending" past the deadline is cut off here.
    polls++;
    const body = new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: authorization.deviceCode, client_id: clientId });
    const { status, json } = await idpRequest(idp.tokenEndpoint, { method: 'POST', body }, 'the device code poll');
    const error = oauthErrorOf(status, json);
    if (error === undefined && status === 200) {
      return { tokens: tokenAnswer(json), report: { polls, slowDowns, finalIntervalS: intervalS } };
    }
    switch (error?.error) {
      case 'authorization_pending':
        if (clock.now() >= deadline) throw expired(authorization, 'still pending at the IdP');
        continue;
      case 'slow_down':
        if (clock.now() >= deadline) throw expired(authorization, 'still pending at the IdP');
        // §3.5: the interval grows by 5 s for this and every later request.
        slowDowns++;
        intervalS += SLOW_DOWN_STEP_S;
        continue;
      case 'access_denied':
        throw new UserCliError('the login was refused on the verification page (access_denied): nothing was stored; run oidc-authz login again to retry', EXIT.denied);
      case 'expired_token':
        throw expired(authorization, 'expired_token');
      default:
        throw new UserCliError(`the IdP refused the device login: ${error ? error.message : `HTTP ${status}`}`, EXIT.failure);
    }
  }
}

/** `why`: the IdP's expired_token, or our own deadline passed while the IdP still said pending. */
function expired(authorization: DeviceAuthorization, why: string): UserCliError {
  return new UserCliError(`the code ${authorization.userCode} expired before it was approved (${why}, after ${authorization.expiresInS} s): run oidc-authz login again`, EXIT.expired);
}

function tokenAnswer(json: Record<string, unknown>): TokenAnswer {
  const accessToken = str(json.access_token);
  if (accessToken === undefined) throw new UserCliError('the IdP\'s token answer has no access_token', EXIT.failure);
  return {
    access_token: accessToken,
    ...(typeof json.expires_in === 'number' ? { expires_in: json.expires_in } : {}),
    ...(str(json.id_token) ? { id_token: str(json.id_token)! } : {}),
    ...(str(json.refresh_token) ? { refresh_token: str(json.refresh_token)! } : {}),
    ...(str(json.scope) ? { scope: str(json.scope)! } : {}),
    ...(str(json.token_type) ? { token_type: str(json.token_type)! } : {}),
  };
}

/** RFC 6749 §6 as a public client. Throws OAuthError for the IdP's refusals (invalid_grant: log in again). */
export async function refreshTokens(idp: IdpEndpoints, clientId: string, refreshToken: string): Promise<TokenAnswer> {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId });
  const { status, json } = await idpRequest(idp.tokenEndpoint, { method: 'POST', body }, 'the refresh');
  const error = oauthErrorOf(status, json);
  if (error !== undefined) throw error;
  if (status !== 200) throw new UserCliError(`the IdP answered the refresh with HTTP ${status}`, EXIT.failure);
  return tokenAnswer(json);
}

/** RFC 7009 as a public client; true when the IdP said 200. */
export async function revokeToken(endpoint: string, clientId: string, token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
  const body = new URLSearchParams({ token, token_type_hint: hint, client_id: clientId });
  try {
    const response = await fetch(endpoint, { method: 'POST', body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}
