/**
 * OAuth 2.0 Token Introspection (RFC 7662) for one issuer: opaque access tokens (which carry no claims and
 * no `iss`, so at most one issuer takes them), and, with `jwt: always`, the issuer's verified JWTs as well
 * (Keycloak answers `active: false` for a token whose session was ended, long before its `exp`).
 *
 * The request is a form POST (`token`, `token_type_hint=access_token`) with client_secret_basic
 * authentication; the endpoint is configured or taken from the issuer's discovery document. Requests are
 * single-flight per token hash, and after a failure (network, timeout, non-200, not JSON) every token of
 * this issuer is answered "unavailable" for `unavailableFor` without asking again, so a flood of tokens
 * while the IdP is down costs it at most one request per that time. Answers themselves are cached by the
 * bearer verifier (bearer.ts), which owns the token cache.
 */
import type { Claims } from './claims.js';
import { isForUs, type TokenFailure } from './bearer.js';
import { discoveryUrl } from '../oidc/discovery.js';
import { EDGE_ATTRIBUTES, SPAN_NAMES, type EdgeOutcome } from '../tracing/contract.js';
import { traced } from '../tracing/edge.js';

export interface IntrospectionSettings {
  readonly issuer: string;
  /** The introspection endpoint; undefined: discovery's `introspection_endpoint`. */
  readonly endpoint: string | undefined;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutMs: number;
  /** How long an active answer is trusted (at most until the token's exp): how late a revocation is seen. */
  readonly cacheForMs: number;
  /** How long an inactive (or refused) answer is remembered. */
  readonly inactiveCacheForMs: number;
  /** After a failed request, how long every token of this issuer is answered "unavailable" without a request. */
  readonly unavailableForMs: number;
  /** Non-JWT bearer tokens go to this issuer. */
  readonly opaqueTokens: boolean;
  /** This issuer's verified JWTs are introspected too. */
  readonly jwt: 'always' | 'never';
}

/** What the response must show for the token to be ours; the audience check is the issuer's setting. */
export interface IntrospectionExpectations {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly authorizedParties: readonly string[];
  /** False with audienceCheckedBy: rules (the rules check it) and for JWTs (already checked on the token). */
  readonly checkAudience: boolean;
  readonly clockSkewMs: number;
}

export type Validation =
  | { readonly kind: 'active'; readonly claims: Claims; readonly expiresAt: number | undefined }
  | { readonly kind: 'inactive'; readonly reason: TokenFailure };

export type IntrospectionOutcome = Validation | { readonly kind: 'unavailable' };

/** Result label of oidc_authz_introspections_total (bounded). */
export type IntrospectionResult = 'active' | 'inactive' | 'error';

const MAX_RESPONSE_BYTES = 256 * 1024;

/** The answer did not come, or is not an RFC 7662 answer: the IdP is down or broken, not the token bad. */
export class IntrospectionUnavailableError extends Error {}

/**
 * Judges an introspection response (RFC 7662 §2.2) as a pure function: `active` must be exactly true; then
 * `exp` (when present) must be in the future within the clock skew, `iss` (when present) must be the issuer,
 * `token_type` must not say refresh token, and with `checkAudience` the response's `aud` must hold one of
 * the audiences or its `azp` or `client_id` be one of the authorized parties. The claims are the response's,
 * with `iss` set to the issuer (opaque tokens' responses often omit it) so the identity names its issuer.
 * A response that is not a JSON object throws IntrospectionUnavailableError.
 */
export function validateIntrospection(body: unknown, expect: IntrospectionExpectations, now: number): Validation {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new IntrospectionUnavailableError('the introspection response is not a JSON object');
  const response = body as Record<string, unknown>;
  // Strictly true: "true", 1 or a missing field is not an active token (fail closed).
  if (response.active !== true) return { kind: 'inactive', reason: 'token_inactive' };
  const { exp, nbf, iss, token_type: tokenType } = response;
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) return { kind: 'inactive', reason: 'invalid_token' };
  if (typeof exp === 'number' && exp * 1000 + expect.clockSkewMs <= now) return { kind: 'inactive', reason: 'token_expired' };
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf * 1000 - expect.clockSkewMs > now)) return { kind: 'inactive', reason: 'token_not_yet_valid' };
  if (iss !== undefined && iss !== expect.issuer) return { kind: 'inactive', reason: 'unknown_issuer' };
  // A refresh token is a credential for the IdP only; an access token is what a resource accepts.
  if (tokenType !== undefined && (typeof tokenType !== 'string' || /^refresh[_-]?token$/i.test(tokenType) || tokenType.toLowerCase() === 'refresh')) {
    return { kind: 'inactive', reason: 'invalid_token' };
  }
  const claims = { ...response, iss: expect.issuer } as Claims;
  if (expect.checkAudience) {
    const clientId = response.client_id;
    const forUs = isForUs(claims, expect.audiences, expect.authorizedParties)
      || (typeof clientId === 'string' && expect.authorizedParties.includes(clientId));
    if (!forUs) return { kind: 'inactive', reason: 'wrong_audience' };
  }
  return { kind: 'active', claims, expiresAt: typeof exp === 'number' ? exp * 1000 : undefined };
}

export class Introspector {
  private readonly inflight = new Map<string, Promise<IntrospectionOutcome>>();
  private endpoint: string | null;
  private unavailableUntil = -Infinity;
  private readonly authorization: string;

  constructor(
    readonly settings: IntrospectionSettings,
    private readonly onResult: (result: IntrospectionResult, error?: unknown) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.endpoint = settings.endpoint ?? null;
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded before they are joined for Basic.
    const credentials = `${formEncode(settings.clientId)}:${formEncode(settings.clientSecret)}`;
    this.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }

  /** Introspects `token` (whose SHA-256 is `key`), one request per key at a time. */
  introspect(token: string, key: string, expect: IntrospectionExpectations): Promise<IntrospectionOutcome> {
    if (this.now() < this.unavailableUntil) return Promise.resolve({ kind: 'unavailable' });
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const outcome = traced(SPAN_NAMES.introspection, { [EDGE_ATTRIBUTES.issuer]: this.settings.issuer }, () => this.ask(token, expect), describeIntrospection)
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, outcome);
    return outcome;
  }

  private async ask(token: string, expect: IntrospectionExpectations): Promise<IntrospectionOutcome> {
    try {
      const body = await this.post(token);
      const validation = validateIntrospection(body, expect, this.now());
      this.onResult(validation.kind);
      return validation;
    } catch (error) {
      this.unavailableUntil = this.now() + this.settings.unavailableForMs;
      this.onResult('error', error);
      return { kind: 'unavailable' };
    }
  }

  private async post(token: string): Promise<unknown> {
    this.endpoint ??= await this.discoverEndpoint();
    const response = await fetch(this.endpoint, {
      method: 'POST',
      headers: { authorization: this.authorization, accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      redirect: 'error',
      signal: AbortSignal.timeout(this.settings.timeoutMs),
    });
    // 401/403 mean our client credentials are wrong: a misconfiguration, reported as unavailable (503), not
    // as the caller's bad token, and never cached.
    // Another 4xx is about this token (an odd size or character the IdP refuses to read): inactive for this
    // token only, so one caller's junk can never trip the breaker that answers 503 for everyone.
    if (response.status >= 400 && response.status < 500 && ![401, 403, 408, 429].includes(response.status)) {
      await response.body?.cancel();
      return { active: false };
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new IntrospectionUnavailableError(`${this.endpoint} answered ${response.status}`);
    }
    return readJson(response, this.endpoint);
  }

  private async discoverEndpoint(): Promise<string> {
    const url = discoveryUrl(this.settings.issuer);
    const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(this.settings.timeoutMs) });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new IntrospectionUnavailableError(`${url} answered ${response.status}`);
    }
    const document = await readJson(response, url);
    const { issuer, introspection_endpoint: endpoint } = (document ?? {}) as Record<string, unknown>;
    // OIDC Discovery §4.3: the document must name exactly the issuer we asked about.
    if (issuer !== this.settings.issuer) throw new IntrospectionUnavailableError(`${url} names issuer ${JSON.stringify(issuer)}`);
    if (typeof endpoint !== 'string' || !/^https?:\/\//.test(endpoint)) throw new IntrospectionUnavailableError(`${url} has no usable introspection_endpoint`);
    return endpoint;
  }
}

/** For the introspection span: the outcome and, for an inactive token, why (a bounded TokenFailure). */
function describeIntrospection(outcome: IntrospectionOutcome): EdgeOutcome {
  if (outcome.kind === 'inactive') return { result: 'inactive', error: outcome.reason };
  return { result: outcome.kind, failed: outcome.kind === 'unavailable' };
}

async function readJson(response: Response, url: string): Promise<unknown> {
  // Refused before reading when the IdP announces more (a broken proxy must not make us buffer it all).
  if (Number(response.headers.get('content-length') ?? 0) > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new IntrospectionUnavailableError(`${url} sent more than ${MAX_RESPONSE_BYTES} bytes`);
  }
  const text = await response.text();
  if (text.length > MAX_RESPONSE_BYTES) throw new IntrospectionUnavailableError(`${url} sent more than ${MAX_RESPONSE_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch {
    throw new IntrospectionUnavailableError(`${url} did not send JSON`);
  }
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
