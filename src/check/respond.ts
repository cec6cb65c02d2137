/**
 * Decision → HTTP answer to Envoy (DESIGN §2). Only a 200 lets the request through; every other
 * status, with its body and the headers Istio lists, goes back to the client. Header lists for the
 * allow answers are prepared once, so an allow writes a small flat array and no body.
 */
import type { ServerResponse } from 'node:http';
import type { Config } from '../config/schema.js';
import { REMOVE_HEADERS_HEADER, upstreamHeaderPlan, type UpstreamHeaderPlan } from '../envoy-contract.js';
import { escapeHtml, HTML_HEADERS, htmlPage, linkParagraph } from '../http/html.js';
import type { Decision } from './decide.js';

export interface ResponderOptions {
  readonly userIdHeader: string;
  readonly groupsHeader: string;
  readonly authRequestHeaders: boolean;
  /** Send the session's ID token upstream as `authorization: Bearer …` (identity.forwardIdToken). */
  readonly forwardIdToken: boolean;
  readonly plan: UpstreamHeaderPlan;
  /** Seconds a client should wait after a 503. */
  readonly retryAfterSeconds: number;
  /** Offered on the 403 page a browser sees; null without browser login. */
  readonly signOutUrl: string | null;
}

/** What an API client is told when its session cookie no longer works (the reason code says it for programs). */
const SESSION_MESSAGES: Readonly<Record<string, string>> = {
  session_revoked: 'The identity provider no longer accepts this session: it was signed out or disabled there, or a newer sign-in of the same user replaced it. Sign in again.',
  session_expired: 'The session has expired. Sign in again.',
  session_invalid: 'The session cookie is not valid. Sign in again.',
};
const FORBIDDEN_HTML_HEADERS = Object.entries(HTML_HEADERS).flat();

export type Responder = (res: ServerResponse, decision: Decision) => void;

/** The service's responder settings for `config`; `browserLogin`: /oauth2/* is served (config.oidc). */
export function responderOptionsFor(config: Config, browserLogin: boolean): ResponderOptions {
  return {
    userIdHeader: config.identity.userIdHeader,
    groupsHeader: config.identity.groupsHeader,
    authRequestHeaders: config.identity.authRequestHeaders,
    forwardIdToken: config.identity.forwardIdToken,
    plan: upstreamHeaderPlan(config),
    retryAfterSeconds: 5,
    // Relative: the 403 page is served on the origin the browser used.
    signOutUrl: browserLogin ? '/oauth2/sign_out' : null,
  };
}

const JSON_HEADERS = ['content-type', 'application/json', 'cache-control', 'no-store'] as const;

export function createResponder(options: ResponderOptions): Responder {
  const { userIdHeader, groupsHeader, authRequestHeaders, forwardIdToken, plan } = options;
  const anonymousAllow = [REMOVE_HEADERS_HEADER, plan.removeOnAnonymousAllow, 'content-length', '0'];
  // The Cookie header held only our cookies: the upstream gets none (an empty value would be sent as one).
  const anonymousAllowWithoutCookie = [REMOVE_HEADERS_HEADER, `${plan.removeOnAnonymousAllow},cookie`, 'content-length', '0'];
  // A CORS preflight carries no credentials when a browser sends it: anything that looks like one came from
  // another client and is not passed on unchecked.
  const preflightAllow = [REMOVE_HEADERS_HEADER, `${plan.removeOnAnonymousAllow},authorization,cookie`, 'content-length', '0'];
  const removeOnAuthenticatedAllowWithCookie = `${plan.removeOnAuthenticatedAllow},cookie`;
  const wwwAuthenticate = 'Bearer realm="oidc-authz"';

  return (res, decision) => {
    switch (decision.kind) {
      case 'allow': {
        const { identity, upstreamCookie } = decision;
        if (decision.reason === 'cors_preflight') {
          res.writeHead(200, preflightAllow);
          res.end();
          return;
        }
        if (identity === null) {
          let headers = upstreamCookie === null ? anonymousAllow : upstreamCookie === '' ? anonymousAllowWithoutCookie : [...anonymousAllow, 'cookie', upstreamCookie];
          // A CORS preflight let through to an exchange rule's upstream: no token of the client's reaches it either.
          if (decision.rule.exchange !== null) headers = [REMOVE_HEADERS_HEADER, `${headers[1]},authorization`, ...headers.slice(2)];
          // A session read only for an audit-mode rule may have been refreshed: its new cookie goes back.
          if (decision.setCookie) res.writeHead(200, [...headers, ...decision.setCookie.flatMap((cookie) => ['set-cookie', cookie])]);
          else res.writeHead(200, headers);
          res.end();
          return;
        }
        const headers = [
          userIdHeader, identity.userId,
          groupsHeader, identity.groupsHeaderValue,
          REMOVE_HEADERS_HEADER, upstreamCookie === '' ? removeOnAuthenticatedAllowWithCookie : plan.removeOnAuthenticatedAllow,
          'content-length', '0',
        ];
        if (upstreamCookie !== null && upstreamCookie !== '') headers.push('cookie', upstreamCookie);
        if (authRequestHeaders) {
          headers.push('x-auth-request-user', identity.userId, 'x-auth-request-groups', identity.groupsHeaderValue);
          headers.push('x-auth-request-email', identity.email ?? '');
        }
        // The exchanged token replaces the client's Authorization (the plan lists it when a rule exchanges).
        if (decision.upstreamToken !== undefined) headers.push('authorization', `Bearer ${decision.upstreamToken}`);
        else if (forwardIdToken && identity.idToken !== undefined) headers.push('authorization', `Bearer ${identity.idToken}`);
        if (decision.offlineToken !== undefined) {
          // The one answer that sets the offline header: it must not also remove it (Envoy removes after setting).
          const { header, token } = decision.offlineToken;
          headers[5] = headers[5]!.split(',').filter((name) => name !== header).join(',');
          headers.push(header, token);
        }
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
        const message = SESSION_MESSAGES[decision.reason];
        sendJson(res, 401, {
          error: 'unauthorized',
          reason: decision.reason,
          ...(decision.issuer !== undefined ? { issuer: decision.issuer } : {}),
          ...(message !== undefined ? { message } : {}),
        }, extra);
        return;
      }
      case 'forbidden': {
        const cookies: string[] = [];
        if (decision.setCookie) for (const cookie of decision.setCookie) cookies.push('set-cookie', cookie);
        if (decision.navigation) {
          sendForbiddenPage(res, decision, options.signOutUrl, cookies);
          return;
        }
        sendJson(res, 403, {
          error: 'forbidden',
          reason: decision.reason,
          rule: decision.rule.name,
          ...(decision.unmet ? { requirement: decision.unmet } : {}),
          ...(decision.exchangeError !== undefined ? { exchangeError: decision.exchangeError } : {}),
        }, cookies);
        return;
      }
      case 'bad_request':
        sendJson(res, 400, { error: 'bad_request', reason: decision.reason });
        return;
      case 'unavailable':
        sendJson(res, 503, { error: 'unavailable', reason: decision.reason, ...(decision.exchangeError !== undefined ? { exchangeError: decision.exchangeError } : {}) }, ['retry-after', String(options.retryAfterSeconds)]);
        return;
    }
  };
}

/** A browser's page load that the rules deny: who they are, which rule said no, a way to switch accounts. */
function sendForbiddenPage(res: ServerResponse, decision: Extract<Decision, { kind: 'forbidden' }>, signOutUrl: string | null, cookies: readonly string[]): void {
  const who = decision.identity === null
    ? ''
    : `<p>You are signed in as <strong>${escapeHtml(decision.identity.userId)}</strong>.</p>`;
  const why = decision.reason === 'requirement_not_met'
    ? `<p>The rule <code>${escapeHtml(decision.rule.name)}</code> does not allow this request${decision.unmet ? ` (${escapeHtml(decision.unmet)} not met)` : ''}.</p>`
    : decision.reason === 'exchange_refused'
      ? `<p>The identity provider refused a token for the service behind this page (rule <code>${escapeHtml(decision.rule.name)}</code>).</p>`
      : `<p>No one may open this page (rule <code>${escapeHtml(decision.rule.name)}</code>).</p>`;
  const body = htmlPage('Access denied', `${who}${why}${decision.identity === null ? '' : linkParagraph(signOutUrl, 'Sign out (to sign in as someone else)')}`);
  res.writeHead(403, [...FORBIDDEN_HTML_HEADERS, ...cookies, 'content-length', String(Buffer.byteLength(body))]);
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: object, extraHeaders: readonly string[] = []): void {
  const text = JSON.stringify(body);
  res.writeHead(status, [...JSON_HEADERS, ...extraHeaders, 'content-length', String(Buffer.byteLength(text))]);
  res.end(text);
}
