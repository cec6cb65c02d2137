/**
 * CheckRequest: the original request as Envoy describes it to the check endpoint. Envoy sends the
 * original method and Host, the original path glued behind `checkPathPrefix` (query byte for byte),
 * and the headers listed in `includeRequestHeadersInCheck`.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface CheckRequest {
  readonly method: string;
  /** Host header as sent (case and port kept), for building URLs back to the client. */
  readonly authority: string;
  readonly scheme: 'http' | 'https';
  /** Path of the original request, before normalization, without the query. */
  readonly rawPath: string;
  /** The query including its "?", or "". */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * Builds a CheckRequest from the URL the check endpoint received. `target` is the part after the
 * prefix, e.g. "/pipelines/?ns=a" for "/authz/pipelines/?ns=a".
 */
export function checkRequestFrom(
  method: string,
  target: string,
  headers: IncomingHttpHeaders,
  scheme: 'http' | 'https',
): CheckRequest {
  const queryAt = target.indexOf('?');
  return {
    method,
    authority: headers.host ?? '',
    scheme,
    rawPath: queryAt === -1 ? target : target.slice(0, queryAt),
    query: queryAt === -1 ? '' : target.slice(queryAt),
    headers,
  };
}

/** The scheme of the original request: x-forwarded-proto only when the gateway is trusted to set it. */
export function schemeOf(headers: IncomingHttpHeaders, trustForwardedProto: boolean, fallback: 'http' | 'https'): 'http' | 'https' {
  if (!trustForwardedProto) return fallback;
  const forwarded = headers['x-forwarded-proto'];
  if (typeof forwarded !== 'string') return fallback;
  const first = forwarded.split(',', 1)[0]!.trim().toLowerCase();
  return first === 'https' ? 'https' : first === 'http' ? 'http' : fallback;
}

/**
 * A top-level page load by a browser: GET/HEAD that accepts HTML, not marked as XHR/fetch. Those are
 * sent to log in; everything else (APIs, XHR, fetch, non-GET) gets 401, since a redirect to the IdP
 * is useless to a script and each one would start a login.
 */
export function isBrowserNavigation(request: CheckRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  const { accept, 'x-requested-with': requestedWith, 'sec-fetch-mode': fetchMode } = request.headers;
  if (requestedWith !== undefined) return false;
  if (fetchMode !== undefined && fetchMode !== 'navigate' && fetchMode !== 'nested-navigate') return false;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** The URL the client asked for, to come back to after login. */
export function originalUrl(request: CheckRequest): string {
  return `${request.scheme}://${request.authority}${request.rawPath}${request.query}`;
}
