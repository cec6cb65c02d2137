/**
 * Requirements: what a matched rule demands of an authenticated identity. Kinds in one requirement
 * are ANDed (groups AND claims AND …); the values listed for one kind are any-of; `anyOf` ORs whole
 * requirements. `{param}` placeholders are filled from the path template's captures, so
 * `/workspaces/{ws}/**` can demand group `{ws}` or role `ws_access` in `resource_access.{ws}.roles`.
 */
import { requirementChecksAudience, type RequirementInput } from '../config/schema.js';
import { lookupSegments, parseClaimPath, type Claims } from '../authn/claims.js';
import type { Identity } from '../authn/identity.js';
import type { PathParams } from './template.js';

/** A string with `{param}` placeholders, rendered against the captured path parameters. */
interface StringTemplate {
  readonly params: readonly string[];
  render(params: PathParams): string;
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export function compileStringTemplate(text: string): StringTemplate {
  const params = [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  if (params.length === 0) return { params, render: () => text };
  // Own properties only: a placeholder must never render from Object.prototype ("{constructor}").
  return { params, render: (values) => text.replace(PLACEHOLDER, (_, name: string) => (Object.hasOwn(values, name) ? values[name]! : '')) };
}

type ClaimScalar = string | number | boolean;

interface ClaimCheck {
  /** The whole name, tried first as a top-level claim ("https://example.com/groups"). */
  readonly name: StringTemplate;
  readonly path: readonly StringTemplate[];
  readonly values: ReadonlyArray<StringTemplate | Exclude<ClaimScalar, string>>;
}

export interface CompiledRequirement {
  readonly groups: readonly StringTemplate[] | null;
  /** `aud` (string or array) holds one of these. */
  readonly audiences: readonly StringTemplate[] | null;
  /** `azp` is one of these. */
  readonly authorizedParties: readonly StringTemplate[] | null;
  readonly claims: readonly ClaimCheck[] | null;
  readonly emailDomains: readonly string[] | null;
  readonly users: readonly StringTemplate[] | null;
  readonly anyOf: readonly CompiledRequirement[] | null;
  /** Every `{param}` the requirement uses, for start-up validation against the path templates. */
  readonly params: ReadonlySet<string>;
  /** It checks `aud` or `azp` however it is met: it may decide tokens of an issuer with audienceCheckedBy: rules. */
  readonly checksAudience: boolean;
}

/** Which kind of requirement was not met; shown in 403 bodies and logs (never claim values). */
export type UnmetRequirement = 'groups' | 'audiences' | 'authorizedParties' | 'claims' | 'emailDomains' | 'users' | 'anyOf';

export function compileRequirement(input: RequirementInput): CompiledRequirement {
  const params = new Set<string>();
  const template = (text: string) => {
    const compiled = compileStringTemplate(text);
    compiled.params.forEach((p) => params.add(p));
    return compiled;
  };
  const anyOf = input.anyOf?.map(compileRequirement) ?? null;
  anyOf?.forEach((r) => r.params.forEach((p) => params.add(p)));
  return {
    groups: input.groups?.map(template) ?? null,
    audiences: input.audiences?.map(template) ?? null,
    authorizedParties: input.authorizedParties?.map(template) ?? null,
    claims: input.claims
      ? Object.entries(input.claims).map(([source, wanted]) => ({
          name: template(source),
          path: parseClaimPath(source).segments.map(template),
          values: (Array.isArray(wanted) ? wanted : [wanted]).map((v) => (typeof v === 'string' ? template(v) : v)),
        }))
      : null,
    emailDomains: input.emailDomains?.map((d) => d.toLowerCase()) ?? null,
    users: input.users?.map(template) ?? null,
    anyOf,
    params,
    checksAudience: requirementChecksAudience(input),
  };
}

/** null when the identity satisfies the requirement, otherwise the first kind that failed. */
export function evaluateRequirement(requirement: CompiledRequirement, identity: Identity, params: PathParams): UnmetRequirement | null {
  if (requirement.groups && !requirement.groups.some((g) => identity.groupSet.has(g.render(params)))) return 'groups';
  if (requirement.audiences && !holdsAny(identity.claims.aud, requirement.audiences, params)) return 'audiences';
  if (requirement.authorizedParties && !holdsAny(identity.claims.azp, requirement.authorizedParties, params)) return 'authorizedParties';
  if (requirement.claims && !requirement.claims.every((check) => claimMatches(identity.claims, check, params))) return 'claims';
  if (requirement.emailDomains && !emailDomainMatches(identity.email, requirement.emailDomains)) return 'emailDomains';
  if (requirement.users) {
    const userId = identity.userId.toLowerCase();
    if (!requirement.users.some((u) => u.render(params).toLowerCase() === userId)) return 'users';
  }
  if (requirement.anyOf && !requirement.anyOf.some((r) => evaluateRequirement(r, identity, params) === null)) return 'anyOf';
  return null;
}

/** A scalar claim equals one of the wanted values, or an array claim contains one (the rule for every claim). */
function holdsAny(value: unknown, wanted: readonly StringTemplate[], params: PathParams): boolean {
  if (typeof value === 'string') return wanted.some((w) => w.render(params) === value);
  return Array.isArray(value) && wanted.some((w) => value.includes(w.render(params)));
}

function claimMatches(claims: Claims, check: ClaimCheck, params: PathParams): boolean {
  const name = check.name.render(params);
  const value = Object.hasOwn(claims, name) ? claims[name] : lookupSegments(claims, check.path.map((segment) => segment.render(params)));
  if (value === undefined || value === null) return false;
  const wanted = check.values.map((v) => (typeof v === 'object' ? v.render(params) : v));
  const present = Array.isArray(value) ? value : [value];
  return present.some((item) => wanted.some((w) => item === w));
}

/**
 * "example.com" matches exactly; "*.example.com" matches sub-domains. An address with more than one
 * "@" never matches (the multi-@ bypass oauth2-proxy fixed in GHSA-c5c4-8r6x-56w3).
 */
export function emailDomainMatches(email: string | null, domains: readonly string[]): boolean {
  if (email === null) return false;
  const at = email.indexOf('@');
  if (at <= 0 || at !== email.lastIndexOf('@')) return false;
  const domain = email.slice(at + 1).toLowerCase();
  return domains.some((d) => (d.startsWith('*.') ? domain.endsWith(d.slice(1)) && domain.length > d.length - 1 : domain === d));
}
