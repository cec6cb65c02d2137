/**
 * Claim paths: "resource_access.kubeflow.roles" walks nested objects; "\." is a dot inside a name
 * ("kubernetes\.io.namespace"). A name that exists as a top-level claim is used as is, so namespaced
 * claims such as "https://example.com/groups" work without escaping.
 */
import type { JWTPayload } from 'jose';

export type Claims = JWTPayload & Record<string, unknown>;

export interface ClaimPath {
  readonly source: string;
  readonly segments: readonly string[];
}

export function parseClaimPath(source: string): ClaimPath {
  const segments: string[] = [];
  let current = '';
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (char === '\\' && source[i + 1] === '.') {
      current += '.';
      i++;
    } else if (char === '.') {
      segments.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  segments.push(current);
  return { source, segments };
}

/** Own properties only: a claim path can never reach Object.prototype ("__proto__", "constructor"). */
export function lookupClaim(claims: Claims, path: ClaimPath): unknown {
  if (Object.hasOwn(claims, path.source)) return claims[path.source];
  return lookupSegments(claims, path.segments);
}

export function lookupSegments(claims: Claims, segments: readonly string[]): unknown {
  let value: unknown = claims;
  for (const segment of segments) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
