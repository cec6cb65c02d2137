/**
 * One check through the service's real pipeline, without a socket: the CheckRequest Envoy would send,
 * `decide()` with the compiled policy, the real responder writing the answer, and then what Envoy makes
 * of an allow for the upstream (DESIGN §2; envoy-contract.ts). Only the authenticator stands in: it
 * answers with the case's identity (claims), or is the service's own for tokens and for no credentials.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { createAuthenticator, type AuthResult, type Authenticator } from '../authn/authenticate.js';
import { decide, type DecideDeps, type Decision } from '../check/decide.js';
import type { TokenExchanger } from '../token-exchange/contract.js';
import { schemeOf, type CheckRequest } from '../check/request.js';
import { createResponder, responderOptionsFor, type Responder } from '../check/respond.js';
import type { Config } from '../config/schema.js';
import { CHECK_REQUEST_HEADERS, exchangesTokens, REMOVE_HEADERS_HEADER, upstreamHeaderPlan } from '../envoy-contract.js';
import { createPublicOrigins } from '../http/public-origin.js';
import { loginUrlOn } from '../oidc/setup.js';
import { compilePolicy } from '../policy/rules.js';
import { cookieNamesOf, sessionCookieName } from '../session/cookie-header.js';
import { identityFromClaims } from './caller.js';
import type { CaseIdentity, CaseRequest } from './cases.js';
import { rawPathOf } from './explain.js';
import type { TokenCheckContext } from './token.js';

/** Stands in for the session cookie of a session identity: never unsealed (the claims are the case's). */
const SESSION_PLACEHOLDER = 'policy-test-session';

export interface CheckOutcome {
  readonly decision: Decision;
  /** The answer to Envoy: status, headers (lower-case names, in order), body. */
  readonly status: number;
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: string;
  /** The request headers the upstream gets (lower-case names); null unless allowed. */
  readonly upstream: ReadonlyMap<string, string> | null;
}

export interface CheckSimulator {
  check(request: CaseRequest, identity: CaseIdentity): Promise<CheckOutcome>;
}

/**
 * The IdP is not asked: a rule with upstreamToken.exchange shows its upstream a placeholder naming the
 * target, so a case can check that (and where) a token would be exchanged.
 */
const simulatedExchange = (issuer: string): TokenExchanger => ({
  issuer,
  exchange: (_subject, _exp, target) => ({ ok: true, token: `<exchanged audience=${target.audience}${target.scope === null ? '' : ` scope=${target.scope}`}>` }),
});

export function createCheckSimulator(config: Config, tokens: TokenCheckContext): CheckSimulator {
  const policy = compilePolicy(config);
  const cookieNames = cookieNamesOf(config.session);
  // The service's own wiring (http/server.ts, oidc/setup.ts) minus what needs secrets or an IdP.
  const loginUrl = config.oidc ? loginUrlOn(createPublicOrigins(config)) : null;
  const respond: Responder = createResponder(responderOptionsFor(config, config.oidc !== undefined));
  const upstreamOnAllow = new Set(upstreamHeaderPlan(config).upstreamOnAllow);
  const fallbackScheme = config.publicUrl?.startsWith('https:') ? 'https' : 'http';
  const serviceAuthenticator = createAuthenticator(tokens.verifier, null);
  const exchange = config.oidc ? simulatedExchange(config.oidc.issuer) : null;

  return {
    async check(caseRequest, identity) {
      const client = clientHeaders(caseRequest, identity, sessionCookieName(cookieNames));
      const url = new URL(caseRequest.url);
      // Envoy sends the check only the headers Istio lists (includeRequestHeadersInCheck), and the Host.
      const checkHeaders: IncomingHttpHeaders = { host: url.host };
      for (const name of CHECK_REQUEST_HEADERS) if (client[name] !== undefined) checkHeaders[name] = client[name];
      const request: CheckRequest = {
        method: caseRequest.method,
        authority: url.host,
        scheme: schemeOf(checkHeaders, config.trustForwardedProto, fallbackScheme),
        rawPath: rawPathOf(caseRequest.url),
        query: queryOf(caseRequest.url),
        headers: checkHeaders,
      };
      const deps: DecideDeps = { policy, authenticator: authenticatorFor(config, identity, serviceAuthenticator), loginUrl, cookieNames, exchange };
      const decision = await decide(request, deps);
      const answer = new RecordedResponse();
      respond(answer as unknown as ServerResponse, decision);
      return {
        decision,
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
        upstream: answer.status === 200 ? upstreamRequest(client, answer.headers, upstreamOnAllow) : null,
      };
    },
  };
}

/**
 * The client's request headers, lower-cased, with the credentials of the identity: a token as
 * `Authorization: Bearer`, a session as our session cookie beside the client's own; and the
 * x-forwarded-proto the gateway sets from the URL's scheme unless the case gives one.
 */
function clientHeaders(request: CaseRequest, identity: CaseIdentity, sessionCookie: string): Record<string, string> {
  const headers: Record<string, string> = { ...request.headers };
  headers['x-forwarded-proto'] ??= new URL(request.url).protocol.slice(0, -1);
  if (identity.kind === 'token') headers.authorization = `Bearer ${identity.token}`;
  if (identity.kind === 'claims' && identity.session) {
    const own = `${sessionCookie}=${SESSION_PLACEHOLDER}`;
    headers.cookie = headers.cookie === undefined ? own : `${headers.cookie}; ${own}`;
  }
  return headers;
}

/** Claims answer as the identity the service would make of them; tokens and no credentials go through the service's authenticator. */
function authenticatorFor(config: Config, identity: CaseIdentity, service: Authenticator): Authenticator {
  if (identity.kind !== 'claims') return service;
  const built = identityFromClaims(config, identity);
  // A session without oidc is refused when the cases file is read; this is only the type's other case.
  const result: AuthResult = built === null || !built.ok
    ? { kind: 'invalid', reason: built === null ? 'session_invalid' : built.reason, ...(identity.session ? { credential: 'cookie' as const } : {}) }
    // Claims stand for a token (or a session, which keeps its access token when rules exchange): a stand-in
    // subject token for the simulated exchange, never sent anywhere.
    : { kind: 'identity', identity: exchangesTokens(config) ? { ...built.identity, accessToken: '<access token>' } : built.identity };
  return { authenticate: () => result };
}

/** The query exactly as written, "?" included ("" without one); the fragment never reaches a server. */
function queryOf(url: string): string {
  const withoutFragment = url.split('#', 1)[0]!;
  const at = withoutFragment.indexOf('?');
  return at === -1 ? '' : withoutFragment.slice(at);
}

/**
 * What Envoy forwards on a 200: the client's headers; each header of the answer that Istio lists in
 * headersToUpstreamOnAllow replaces the client's copy; then x-envoy-auth-headers-to-remove removes its names.
 */
function upstreamRequest(client: Readonly<Record<string, string>>, answer: ReadonlyMap<string, readonly string[]>, upstreamOnAllow: ReadonlySet<string>): Map<string, string> {
  const upstream = new Map(Object.entries(client));
  for (const [name, values] of answer) if (upstreamOnAllow.has(name)) upstream.set(name, values.join(', '));
  for (const name of answer.get(REMOVE_HEADERS_HEADER)?.join(',').split(',') ?? []) upstream.delete(name.trim().toLowerCase());
  return upstream;
}

/** The part of ServerResponse the responder uses: writeHead with a flat [name, value, …] list or an object, then end. */
class RecordedResponse {
  status = 0;
  readonly headers = new Map<string, string[]>();
  body = '';
  headersSent = false;

  writeHead(status: number, headers?: readonly string[] | Record<string, string | number | readonly string[]>): this {
    this.status = status;
    this.headersSent = true;
    const add = (name: string, value: string | number) => {
      const lower = name.toLowerCase();
      this.headers.set(lower, [...(this.headers.get(lower) ?? []), String(value)]);
    };
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i] as string, headers[i + 1] as string);
    } else if (headers !== undefined) {
      for (const [name, value] of Object.entries(headers as Record<string, string | number | readonly string[]>)) {
        for (const one of Array.isArray(value) ? value : [value]) add(name, one as string | number);
      }
    }
    return this;
  }

  end(body?: string | Buffer): this {
    if (body !== undefined) this.body += body.toString();
    return this;
  }
}
