/**
 * The public origin: where browsers reach the gateway, for the URLs we send them to (the login start,
 * the callback, the landing after sign-out) and for return-URL checks. Either fixed (publicUrl), or the
 * request's own scheme and Host, accepted only when the host is on `allowedHosts`: Kubeflow is reached
 * through `kubectl port-forward` (http://localhost:8080) as often as through its real host name, and
 * one install must work both ways without a config change.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { schemeOf } from '../check/request.js';
import type { Config } from '../config/schema.js';
import { hostAllowed } from '../oidc/redirect.js';

export interface PublicOrigins {
  /** The configured publicUrl's origin, or null when each request decides. */
  readonly fixed: string | null;
  /** The public origin for a request with this Host and scheme; null when the host is not allowed. */
  of(host: string | undefined, scheme: 'http' | 'https'): string | null;
  /** The same for an Express/node request's headers (scheme from x-forwarded-proto when trusted). */
  ofHeaders(headers: IncomingHttpHeaders): string | null;
}

export function createPublicOrigins(config: Pick<Config, 'publicUrl' | 'allowedHosts' | 'trustForwardedProto'>): PublicOrigins {
  const fixed = config.publicUrl === undefined ? null : new URL(config.publicUrl).origin;
  const fallbackScheme = config.publicUrl?.startsWith('https:') ? 'https' : 'http';
  const of = (host: string | undefined, scheme: 'http' | 'https'): string | null => {
    if (fixed !== null) return fixed;
    // Only what a host[:port] can hold: no userinfo, path, query or fragment can ride along.
    if (host === undefined || host.length === 0 || host.length > 255 || /[^A-Za-z0-9.:[\]-]/.test(host)) return null;
    let url: URL;
    try {
      url = new URL(`${scheme}://${host}`);
    } catch {
      return null;
    }
    return config.allowedHosts.some((entry) => hostAllowed(url, entry)) ? url.origin : null;
  };
  return {
    fixed,
    of,
    ofHeaders: (headers) => of(headers.host, schemeOf(headers, config.trustForwardedProto, fallbackScheme)),
  };
}
