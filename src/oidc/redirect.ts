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

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * "host", "host:port", "host:*", ".domain", "[::1]", "[::1]:port". A port is compared with the URL's
 * effective port ("host:443" is https://host/); an entry without a port allows only the default port.
 */
export function hostAllowed(url: URL, entry: string): boolean {
  const { host: hostPart, port: portPart } = splitEntry(entry.toLowerCase());
  const effectivePort = url.port === '' ? DEFAULT_PORTS[url.protocol] : url.port;
  if (portPart === '' ? url.port !== '' : portPart !== '*' && portPart !== effectivePort) return false;
  const host = url.hostname;
  if (hostPart.startsWith('.')) return host === hostPart.slice(1) || host.endsWith(hostPart);
  return host === hostPart;
}

function splitEntry(entry: string): { host: string; port: string } {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close === -1) return { host: entry, port: '' };
    const rest = entry.slice(close + 1);
    return { host: entry.slice(0, close + 1), port: rest.startsWith(':') ? rest.slice(1) : '' };
  }
  const colon = entry.lastIndexOf(':');
  return colon > 0 ? { host: entry.slice(0, colon), port: entry.slice(colon + 1) } : { host: entry, port: '' };
}
