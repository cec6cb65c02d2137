/**
 * Where a request falls in the policy: its normalized path and host and the rule that matches. A pure
 * function of the policy, the method, the Host header and the raw path, so it is remembered per policy
 * for the paths a cluster keeps asking about: a repeated check skips normalization, splitting and rule
 * matching (about a tenth of a cached check's CPU). Attackers choose paths, so the memory is bounded:
 * long paths are never kept, and a full memory starts over.
 */
import type { Policy, RuleMatch } from '../policy/rules.js';
import { pathSegments } from '../policy/template.js';
import { normalizeHost, normalizePath, type BadRequestReason } from './normalize.js';

export type Route =
  | { readonly ok: false; readonly reason: BadRequestReason }
  | { readonly ok: true; readonly path: string; readonly host: string; readonly segments: readonly string[]; readonly match: RuleMatch };

/** Routes kept per policy before the memory starts over. */
export const MAX_ROUTES = 10_000;
/** Longer raw paths (or Host headers) are routed every time. */
const MAX_KEPT_LENGTH = 256;

/** Routes by Host header, then raw path, then method. */
class RouteMemory {
  private readonly byAuthority = new Map<string, Map<string, Map<string, Route>>>();
  private size = 0;

  constructor(private readonly policy: Policy) {}

  route(method: string, authority: string, rawPath: string): Route {
    const byPath = this.byAuthority.get(authority);
    const known = byPath?.get(rawPath)?.get(method);
    if (known !== undefined) return known;
    const route = routeOf(this.policy, method, authority, rawPath);
    if (rawPath.length <= MAX_KEPT_LENGTH && authority.length <= MAX_KEPT_LENGTH) this.keep(byPath, method, authority, rawPath, route);
    return route;
  }

  private keep(byPath: Map<string, Map<string, Route>> | undefined, method: string, authority: string, rawPath: string, route: Route): void {
    if (this.size >= MAX_ROUTES) {
      this.byAuthority.clear();
      this.size = 0;
      byPath = undefined;
    }
    if (byPath === undefined) {
      byPath = new Map();
      this.byAuthority.set(authority, byPath);
    }
    let byMethod = byPath.get(rawPath);
    if (byMethod === undefined) {
      byMethod = new Map();
      byPath.set(rawPath, byMethod);
    }
    byMethod.set(method, route);
    this.size++;
  }
}

const memories = new WeakMap<Policy, RouteMemory>();

/** The request's route in `policy`, remembered (the policy is immutable: a reload compiles a new one). */
export function rememberedRoute(policy: Policy, method: string, authority: string, rawPath: string): Route {
  let memory = memories.get(policy);
  if (memory === undefined) {
    memory = new RouteMemory(policy);
    memories.set(policy, memory);
  }
  return memory.route(method, authority, rawPath);
}

/** The request's route in `policy`, computed. */
export function routeOf(policy: Policy, method: string, authority: string, rawPath: string): Route {
  const path = normalizePath(rawPath);
  if (!path.ok) return path;
  const host = normalizeHost(authority);
  if (!host.ok) return host;
  const segments = pathSegments(path.path);
  return { ok: true, path: path.path, host: host.host, segments, match: policy.match(method, host.host, segments) };
}
