/**
 * Return URLs after login and sign-out (`rd`). Accepted: a path on the public host ("/x?y"), or an
 * absolute http(s) URL whose host is the public host or on `redirectAllowList`. Everything else —
 * scheme-relative "//evil", backslashes, whitespace and control characters, userinfo tricks
 * ("https://good@evil"), other schemes — falls back to the default. The result is always absolute.
 */

export interface RedirectPolicy {
  /** Origin of publicUrl, e.g. https://kubeflow.example.com */
  readonly publicOrigin: string;
  /** "host", "host:port", "host:*", ".example.com" (the domain and every sub-domain). */
  readonly allowList: readonly string[];
}

const MAX_LENGTH = 4096;
const UNSAFE = /[\s\\\x00-\x1f\x7f]/;

export function safeReturnUrl(rd: unknown, policy: RedirectPolicy, fallback = `${policy.publicOrigin}/`): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > MAX_LENGTH || UNSAFE.test(rd)) return fallback;
  if (rd.startsWith('/')) {
    if (rd.startsWith('//')) return fallback;
    const url = parse(rd, policy.publicOrigin);
    return url !== null && url.origin === policy.publicOrigin ? url.href : fallback;
  }
  const url = parse(rd);
  if (url === null || (url.protocol !== 'https:' && url.protocol !== 'http:')) return fallback;
  if (url.username !== '' || url.password !== '') return fallback;
  if (url.origin === policy.publicOrigin || policy.allowList.some((entry) => hostAllowed(url, entry))) return url.href;
  return fallback;
}

function parse(value: string, base?: string): URL | null {
  try {
    return new URL(value, base);
  } catch {
    return null;
  }
}

function hostAllowed(url: URL, entry: string): boolean {
  const colon = entry.lastIndexOf(':');
  const hostPart = (colon > 0 ? entry.slice(0, colon) : entry).toLowerCase();
  const portPart = colon > 0 ? entry.slice(colon + 1) : '';
  if (portPart !== '*' && url.port !== portPart) return false;
  const host = url.hostname;
  if (hostPart.startsWith('.')) return host === hostPart.slice(1) || host.endsWith(hostPart);
  return host === hostPart;
}
