/**
 * Requests an API client makes through the gateway (Node's fetch: `sec-fetch-mode: cors`, so never a
 * browser navigation), and the service's metrics, for the tests with real identity providers.
 */
import type { EchoRequest } from '../../demo/echo.js';
import type { RunningService } from './service.js';

export interface GatewayAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** The upstream's view of the request (200 answers: the echo app's JSON). */
  readonly echoed: EchoRequest | null;
  /** The body as JSON (our 401/403 answers), or null. */
  readonly json: Record<string, unknown> | null;
}

/** One API call through Envoy at `url` + `path`, with these headers (a session cookie, a bearer token). */
export async function apiCall(url: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<GatewayAnswer> {
  const response = await fetch(`${url}${path}`, { method, headers: { accept: 'application/json', ...headers }, redirect: 'manual' });
  const body = await response.text();
  let json: Record<string, unknown> | null;
  try {
    json = JSON.parse(body) as Record<string, unknown>;
  } catch {
    json = null;
  }
  const echoed = response.status === 200 && json !== null && typeof json.path === 'string' ? (json as unknown as EchoRequest) : null;
  return { status: response.status, headers: response.headers, body, echoed, json: echoed === null ? json : null };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** The value of one sample of the service's metrics ("name{labels}"), 0 when absent. */
export async function metricValue(service: RunningService, sample: string): Promise<number> {
  const text = await fetch(`${service.metricsUrl}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

/** The claims of a JWT, unverified (to look at what an IdP issued). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
