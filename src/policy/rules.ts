/**
 * The policy: rules compiled once at start-up into matchers (host pattern × path template × method set).
 * First match wins; no match falls to `defaultRule`. A rule in audit mode is evaluated for the record and
 * then passed over. Compile errors name the config field.
 */
import type { Config, Rule } from '../config/schema.js';
import type { ExchangeTarget } from '../token-exchange/contract.js';
import { compileRequirement, type CompiledRequirement } from './requirement.js';
import { compileHostPattern, compileTemplate, NO_PARAMS, pathSegments, TemplateError, type HostPattern, type PathParams, type PathTemplate } from './template.js';

export type Access =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'deny' }
  | { readonly kind: 'require'; readonly requirement: CompiledRequirement };

/** Which CORS preflights a rule lets through without credentials; null origins: any Origin. */
export interface CorsPreflight {
  readonly origins: ReadonlySet<string> | null;
}

export interface CompiledRule {
  readonly name: string;
  /** Position in `rules`, or -1 for the default rule. */
  readonly index: number;
  readonly hosts: readonly HostPattern[] | null;
  readonly templates: readonly PathTemplate[];
  readonly methods: ReadonlySet<string> | null;
  readonly access: Access;
  /** "audit": evaluated and recorded, never decides; the request goes on to the next rule. */
  readonly audit: boolean;
  readonly corsPreflight: CorsPreflight | null;
  /** upstreamToken.exchange: the allow's upstream gets the caller's token exchanged for this; null for most rules. */
  readonly exchange: ExchangeTarget | null;
  /** offlineToken: the header an offline grant is handed over in, on this rule's exact paths; null for most rules. */
  readonly offlineToken: { readonly header: string } | null;
}

export interface AuditMatch {
  readonly rule: CompiledRule;
  readonly params: PathParams;
}

export interface RuleMatch {
  readonly rule: CompiledRule;
  readonly params: PathParams;
  /** Audit-mode rules the request matched before `rule`, in order; null when none (the usual case). */
  readonly audits: readonly AuditMatch[] | null;
}

export interface Policy {
  readonly rules: readonly CompiledRule[];
  readonly defaultRule: CompiledRule;
  match(method: string, host: string, segments: readonly string[]): RuleMatch;
}

/** Thrown for rules the schema accepts but the compiler cannot use; `path` is the config field. */
export class PolicyError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'PolicyError';
  }
}

export const DEFAULT_RULE_NAME = 'default';

/** A literal path: "/" and segments without captures or wildcards. */
const EXACT_PATH = /^\/([^/{}*]+(\/[^/{}*]+)*)?$/;
/** Headers an offline token must never be put in: the protocol's, ours, and the identity headers' defaults. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'authorization', 'cookie', 'set-cookie', 'host', 'content-length', 'content-type', 'location', 'www-authenticate', 'transfer-encoding', 'connection',
  'kubeflow-userid', 'kubeflow-groups', 'x-auth-request-user', 'x-auth-request-email', 'x-auth-request-groups',
]);

export function compilePolicy(config: Pick<Config, 'rules' | 'defaultRule'>): Policy {
  const rules = config.rules.map(compileRule);
  const defaultRule: CompiledRule = {
    name: DEFAULT_RULE_NAME,
    index: -1,
    hosts: null,
    templates: [],
    methods: null,
    access: config.defaultRule === 'authenticated' ? { kind: 'authenticated' } : { kind: 'deny' },
    audit: false,
    corsPreflight: null,
    exchange: null,
    offlineToken: null,
  };
  return {
    rules,
    defaultRule,
    match(method, host, segments) {
      let audits: AuditMatch[] | null = null;
      for (const rule of rules) {
        const params = matchRule(rule, method, host, segments);
        if (params === null) continue;
        if (!rule.audit) return { rule, params, audits };
        (audits ??= []).push({ rule, params });
      }
      return { rule: defaultRule, params: NO_PARAMS, audits };
    },
  };
}

/** The rule's captures (host and path) when it matches the request, else null. */
function matchRule(rule: CompiledRule, method: string, host: string, segments: readonly string[]): PathParams | null {
  if (rule.methods !== null && !rule.methods.has(method)) return null;
  let hostParams: PathParams | null = NO_PARAMS;
  if (rule.hosts !== null) {
    hostParams = null;
    for (const pattern of rule.hosts) {
      hostParams = pattern.match(host);
      if (hostParams !== null) break;
    }
    if (hostParams === null) return null;
  }
  for (const template of rule.templates) {
    const params = template.match(segments);
    if (params === null) continue;
    if (hostParams === NO_PARAMS) return params;
    if (params === NO_PARAMS) return hostParams;
    return Object.assign(Object.create(null) as Record<string, string>, hostParams, params);
  }
  return null;
}

function compiled<T>(at: string, source: string, compile: (source: string) => T): T {
  try {
    return compile(source);
  } catch (error) {
    if (error instanceof TemplateError) throw new PolicyError(at, `"${source}": ${error.message}`);
    throw error;
  }
}

/**
 * Two alternatives of one rule (hosts, or paths) are ambiguous when a request matches both with
 * different captures: the first listed wins, so a later, more specific one would never capture what
 * it says. Tried on the later one's own sample (every capture "x"): "{ws}-default" before
 * "editor-{ws}-default" gives ws "editor-x" for "editor-x-default", where the second means "x".
 */
function refuseShadowed<T extends { readonly source: string; readonly sample: string }>(
  at: string,
  kind: 'host' | 'path',
  alternatives: readonly T[],
  capture: (alternative: T, sample: string) => PathParams | null,
): void {
  alternatives.forEach((later, j) => {
    const own = capture(later, later.sample);
    if (own === null || Object.keys(own).length === 0) return;
    alternatives.slice(0, j).forEach((earlier, i) => {
      const theirs = capture(earlier, later.sample);
      if (theirs === null || sameParams(theirs, own)) return;
      throw new PolicyError(`${at}.${j}`, `"${later.source}" is ambiguous after ${at}.${i} "${earlier.source}": the ${kind} "${later.sample}" matches both, `
        + `giving ${describeParams(theirs)} there and ${describeParams(own)} here; the first listed wins, so list the more specific pattern first`);
    });
  });
}

function sameParams(a: PathParams, b: PathParams): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

function describeParams(params: PathParams): string {
  const entries = Object.entries(params);
  return entries.length === 0 ? 'no captures' : entries.map(([name, value]) => `${name}="${value}"`).join(', ');
}

function compileRule(rule: Rule, index: number): CompiledRule {
  const at = `rules.${index}`;
  const templates = rule.paths.map((source, i) => compiled(`${at}.paths.${i}`, source, compileTemplate));
  const hosts = rule.hosts?.map((source, i) => compiled(`${at}.hosts.${i}`, source, compileHostPattern)) ?? null;
  refuseShadowed(`${at}.paths`, 'path', templates, (template, sample) => template.match(pathSegments(sample)));
  if (hosts !== null) refuseShadowed(`${at}.hosts`, 'host', hosts, (pattern, sample) => pattern.match(sample));

  // Every combination of a host pattern and a path template captures a name once, and what the rule uses.
  const hostCaptures: ReadonlyArray<{ source: string | null; names: readonly string[] }> = hosts?.map((pattern) => ({ source: pattern.source, names: pattern.paramNames })) ?? [{ source: null, names: [] }];
  templates.forEach((template, i) => {
    for (const host of hostCaptures) {
      const twice = template.paramNames.find((name) => host.names.includes(name));
      if (twice !== undefined) throw new PolicyError(`${at}.paths.${i}`, `"${template.source}" captures {${twice}}, which host "${host.source}" captures too: name them differently`);
    }
  });

  if (rule.cors !== undefined && (rule.allow === 'deny' || rule.mode === 'audit')) {
    throw new PolicyError(`${at}.cors`, rule.allow === 'deny' ? 'a rule that denies has no preflights to let through' : 'an audit-mode rule never decides, so it cannot let preflights through');
  }

  let access: Access;
  if (rule.allow === 'anonymous' || rule.allow === 'authenticated' || rule.allow === 'deny') {
    access = { kind: rule.allow };
  } else {
    const requirement = compileRequirement(rule.allow);
    for (const param of requirement.params) {
      for (const host of hostCaptures) {
        if (host.names.includes(param)) continue;
        const missing = templates.find((t) => !t.paramNames.includes(param));
        if (missing === undefined) continue;
        const where = host.source === null ? `path "${missing.source}" does not capture it` : `neither host "${host.source}" nor path "${missing.source}" captures it`;
        throw new PolicyError(`${at}.allow`, `uses {${param}} but ${where}`);
      }
    }
    access = { kind: 'require', requirement };
  }
  if (rule.upstreamToken !== undefined) {
    // Only an allow with a caller's token can exchange it; an audit rule never allows anything itself.
    if (access.kind === 'anonymous' || access.kind === 'deny') throw new PolicyError(`${at}.upstreamToken`, `needs a rule that authenticates the caller (allow: authenticated or a requirement), not allow: ${access.kind}`);
    if (rule.mode === 'audit') throw new PolicyError(`${at}.upstreamToken`, 'has no effect on a rule in mode: audit (it never decides)');
  }
  if (rule.offlineToken !== undefined) {
    // A grant that outlives the session goes to one dedicated route only: no pattern may widen it.
    rule.paths.forEach((source, i) => {
      if (!EXACT_PATH.test(source)) throw new PolicyError(`${at}.paths.${i}`, `"${source}": a rule with offlineToken takes exact paths only (no {captures}, * or **)`);
    });
    if (access.kind === 'anonymous' || access.kind === 'deny') throw new PolicyError(`${at}.offlineToken`, `needs a rule that authenticates the caller (allow: authenticated or a requirement), not allow: ${access.kind}`);
    if (rule.mode === 'audit') throw new PolicyError(`${at}.offlineToken`, 'has no effect on a rule in mode: audit (it never decides)');
    if (rule.upstreamToken !== undefined) throw new PolicyError(`${at}.offlineToken`, 'cannot be combined with upstreamToken on one rule');
    if (RESERVED_HEADERS.has(rule.offlineToken.header) || rule.offlineToken.header.startsWith('x-envoy-')) throw new PolicyError(`${at}.offlineToken.header`, `"${rule.offlineToken.header}" is a header the gateway or this service sets; choose one of its own (x-offline-token)`);
  }
  return {
    name: rule.name,
    index,
    hosts,
    templates,
    // GET implies HEAD: a HEAD must never fall through to a later, weaker rule than its GET.
    methods: rule.methods ? new Set(rule.methods.includes('GET') ? [...rule.methods, 'HEAD'] : rule.methods) : null,
    access,
    audit: rule.mode === 'audit',
    corsPreflight: rule.cors ? { origins: rule.cors.origins ? new Set(rule.cors.origins) : null } : null,
    exchange: rule.upstreamToken ? { audience: rule.upstreamToken.exchange.audience, scope: rule.upstreamToken.exchange.scope ?? null } : null,
    offlineToken: rule.offlineToken ? { header: rule.offlineToken.header } : null,
  };
}
