/**
 * Why OIDC discovery failed, in words an operator can act on. A wrong issuer spelling (a trailing "/",
 * localhost for 127.0.0.1, a missing /dex or /realms/<realm>) reaches a live server and must not look
 * like an outage: it is "misconfigured", and the message names what was configured and what was found.
 */

export interface DiscoveryProblem {
  readonly kind: 'unreachable' | 'misconfigured';
  readonly message: string;
  /** Structured log fields (URLs and issuers, never secrets). */
  readonly fields: Readonly<Record<string, string | number>>;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

/** Where OIDC Discovery §4 puts the document for `issuer` (a trailing "/" is not doubled). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/**
 * Looks at the discovery document itself after openid-client refused it (or could not get it), and
 * says what is wrong. `original` is openid-client's error, reported when nothing better is found.
 */
export async function diagnoseDiscovery(issuer: string, timeoutMs: number, original: unknown): Promise<DiscoveryProblem> {
  const url = discoveryUrl(issuer);
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const reason = causeOf(error);
    return { kind: 'unreachable', message: `cannot reach ${url}: ${reason}`, fields: { discoveryUrl: url, reason } };
  }
  const text = await response.text().catch(() => '');
  if (response.status >= 300 && response.status < 400) {
    const location = response.headers.get('location') ?? '';
    return misconfigured(`${url} redirects (${response.status}) to ${location}: the issuer must be the exact URL the IdP names itself by`, { discoveryUrl: url, status: response.status, location });
  }
  if (response.status === 404 || response.status === 400 || response.status === 405) {
    return misconfigured(`${url} answered ${response.status}: no OpenID Provider there; is the issuer URL complete (Dex: …/dex, Keycloak: …/realms/<realm>)?`, { discoveryUrl: url, status: response.status });
  }
  if (response.status !== 200) {
    return { kind: 'unreachable', message: `${url} answered ${response.status}`, fields: { discoveryUrl: url, status: response.status } };
  }
  let document: unknown;
  try {
    document = text.length > MAX_DOCUMENT_BYTES ? undefined : JSON.parse(text);
  } catch {
    document = undefined;
  }
  const received = typeof document === 'object' && document !== null ? (document as Record<string, unknown>).issuer : undefined;
  if (typeof received !== 'string') {
    return misconfigured(`${url} is not an OpenID Provider's discovery document (no issuer in it)`, { discoveryUrl: url });
  }
  if (received !== issuer) {
    const hint = received === issuer.replace(/\/$/, '') || `${received}/` === issuer
      ? ' (the two differ only in a trailing "/": write it exactly as the IdP does)'
      : pathOf(received) === pathOf(issuer)
        ? ' (same path, other host: Keycloak names itself after the host it is reached by unless KC_HOSTNAME is set; Dex after its configured issuer)'
        : '';
    return misconfigured(`configured issuer ${issuer} but the IdP's discovery document names ${received}${hint}`, { discoveryUrl: url, receivedIssuer: received });
  }
  const reason = original instanceof Error ? original.message : String(original);
  return { kind: 'unreachable', message: `discovery at ${url} failed: ${reason}`, fields: { discoveryUrl: url, reason } };
}

function pathOf(url: string): string | null {
  try {
    return new URL(url).pathname.replace(/\/$/, '');
  } catch {
    return null;
  }
}

function misconfigured(message: string, fields: Record<string, string | number>): DiscoveryProblem {
  return { kind: 'misconfigured', message, fields };
}

/** "ECONNREFUSED 127.0.0.1:5556", "timeout" … from fetch's nested causes (duck-typed: they may come from another realm). */
function causeOf(error: unknown): string {
  const first = error as { name?: unknown; message?: unknown } | null;
  if (first?.name === 'TimeoutError' || first?.name === 'AbortError') return 'timeout';
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string') return `${code}${typeof message === 'string' && !message.startsWith(code) ? ` ${message.replace(/^[a-z]+ [A-Z_]+\s*/, '')}` : ''}`.trim();
    current = cause;
  }
  return typeof first?.message === 'string' ? first.message : String(error);
}
