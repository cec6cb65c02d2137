/**
 * Decision → HTTP answer to Envoy (DESIGN §2). Only a 200 lets the request through; every other
 * status, with its body and the headers Istio lists, goes back to the client. Header lists for the
 * allow answers are prepared once, so an allow writes a small flat array and no body.
 */
import type { ServerResponse } from 'node:http';
import { REMOVE_HEADERS_HEADER, type IdentityHeaderPlan } from '../envoy-contract.js';
import type { Decision } from './decide.js';

export interface ResponderOptions {
  readonly userIdHeader: string;
  readonly groupsHeader: string;
  readonly authRequestHeaders: boolean;
  /** Send the session's ID token upstream as `authorization: Bearer …` (identity.forwardIdToken). */
  readonly forwardIdToken: boolean;
  readonly plan: IdentityHeaderPlan;
  /** Seconds a client should wait after a 503. */
  readonly retryAfterSeconds: number;
}

export type Responder = (res: ServerResponse, decision: Decision) => void;

const JSON_HEADERS = ['content-type', 'application/json', 'cache-control', 'no-store'] as const;

export function createResponder(options: ResponderOptions): Responder {
  const { userIdHeader, groupsHeader, authRequestHeaders, forwardIdToken, plan } = options;
  const anonymousAllow = [REMOVE_HEADERS_HEADER, plan.removeOnAnonymousAllow, 'content-length', '0'];
  const wwwAuthenticate = 'Bearer realm="oidc-authz"';

  return (res, decision) => {
    switch (decision.kind) {
      case 'allow': {
        const identity = decision.identity;
        if (identity === null) {
          res.writeHead(200, anonymousAllow);
          res.end();
          return;
        }
        const headers = [
          userIdHeader, identity.userId,
          groupsHeader, identity.groupsHeaderValue,
          REMOVE_HEADERS_HEADER, plan.removeOnAuthenticatedAllow,
          'content-length', '0',
        ];
        if (authRequestHeaders) {
          headers.push('x-auth-request-user', identity.userId, 'x-auth-request-groups', identity.groupsHeaderValue);
          headers.push('x-auth-request-email', identity.email ?? '');
        }
        if (forwardIdToken && identity.idToken !== undefined) headers.push('authorization', `Bearer ${identity.idToken}`);
        if (decision.setCookie) for (const cookie of decision.setCookie) headers.push('set-cookie', cookie);
        res.writeHead(200, headers);
        res.end();
        return;
      }
      case 'login': {
        const headers = ['location', decision.location, 'cache-control', 'no-store', 'content-length', '0'];
        if (decision.setCookie) for (const cookie of decision.setCookie) headers.push('set-cookie', cookie);
        res.writeHead(302, headers);
        res.end();
        return;
      }
      case 'unauthorized': {
        const challenge = !decision.invalidToken
          ? wwwAuthenticate
          : `${wwwAuthenticate}, error="invalid_token", error_description="${decision.reason}"`;
        const extra = ['www-authenticate', challenge];
        if (decision.setCookie) for (const cookie of decision.setCookie) extra.push('set-cookie', cookie);
        sendJson(res, 401, { error: 'unauthorized', reason: decision.reason }, extra);
        return;
      }
      case 'forbidden':
        sendJson(res, 403, {
          error: 'forbidden',
          reason: decision.reason,
          rule: decision.rule.name,
          ...(decision.unmet ? { requirement: decision.unmet } : {}),
        });
        return;
      case 'bad_request':
        sendJson(res, 400, { error: 'bad_request', reason: decision.reason });
        return;
      case 'unavailable':
        sendJson(res, 503, { error: 'unavailable', reason: decision.reason }, ['retry-after', String(options.retryAfterSeconds)]);
        return;
    }
  };
}

export function sendJson(res: ServerResponse, status: number, body: object, extraHeaders: readonly string[] = []): void {
  const text = JSON.stringify(body);
  res.writeHead(status, [...JSON_HEADERS, ...extraHeaders, 'content-length', String(Buffer.byteLength(text))]);
  res.end(text);
}
