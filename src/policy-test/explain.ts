/**
 * `oidc-authz explain`: which rule a request matches, what it captured, and what the service answers
 * (for given claims or a verified token). Line-based, "label:  value", so new facts are new lines.
 * `oidc-authz test` prints the same text for a failing case.
 */
import { authorize } from '../check/decide.js';
import { normalizeHost, normalizePath } from '../check/normalize.js';
import type { Config } from '../config/schema.js';
import { formatWarning, lintPolicy, type PolicyWarning } from '../policy/lint.js';
import { compilePolicy, type CompiledRule } from '../policy/rules.js';
import { compileTemplate, pathSegments, type PathParams } from '../policy/template.js';
import { identityFromClaims, type ClaimsCaller } from './caller.js';
import type { TokenCheck } from './token.js';

/**
 * Who asks: nobody given (the CLI without --claims/--token: say what happens without credentials), a
 * request without credentials, claims (caller.ts), or a token checked by the service's verifier (token.ts).
 */
export type ExplainCaller =
  | { readonly kind: 'unspecified' }
  | { readonly kind: 'anonymous' }
  | ({ readonly kind: 'claims' } & ClaimsCaller)
  | { readonly kind: 'token'; readonly check: TokenCheck };

/** The operator's answer to "why do I get 403": rule, captured parameters, decision and reason. */
export function explain(config: Config, method: string, url: string, caller: ExplainCaller = { kind: 'unspecified' }): string {
  const parsed = new URL(url, 'http://localhost');
  const lines = [`request:   ${method} ${parsed.host}${parsed.pathname}`];
  const rawPath = url.startsWith('/') ? url.split('?')[0]! : rawPathOf(url);
  const path = normalizePath(rawPath);
  const host = normalizeHost(parsed.host);
  if (!path.ok || !host.ok) {
    lines.push(`decision:  400 bad_request (${path.ok ? 'bad_host' : path.reason})`);
    return `${lines.join('\n')}\n`;
  }
  lines.push(`normalized: ${path.path}`);
  const policy = compilePolicy(config);
  const segments = pathSegments(path.path);
  const { rule, params, audits } = policy.match(method, host.host, segments);
  lines.push(`rule:      ${rule.index === -1 ? `(no rule matched) → defaultRule: ${config.defaultRule}` : `#${rule.index} ${rule.name}`}`);
  // The first host pattern that matches is the one whose captures the rule got (policy/rules.ts).
  for (const pattern of rule.hosts ?? []) {
    const captured = pattern.match(host.host);
    if (captured === null) continue;
    if (pattern.paramNames.length > 0) lines.push(`host:      "${pattern.source}" captured ${JSON.stringify(captured)}`);
    break;
  }
  if (Object.keys(params).length > 0) lines.push(`params:    ${JSON.stringify(params)}`);
  lines.push(`access:    ${describeAccess(config, rule.index)}`);
  if (rule.corsPreflight !== null) lines.push(`cors:      preflights (OPTIONS with Origin and Access-Control-Request-Method) pass without credentials${rule.corsPreflight.origins === null ? '' : ` from ${[...rule.corsPreflight.origins].join(', ')}`}`);
  // Said whatever the rule: the token was checked before the question of whether the rule needs it.
  if (caller.kind === 'token') lines.push(caller.check.ok ? `token:     verified (${caller.check.facts})` : `token:     rejected: ${caller.check.auth.reason}: ${caller.check.detail}`);

  const built = caller.kind === 'claims' ? identityFromClaims(config, caller) : caller.kind === 'token' ? caller.check : undefined;
  if (built !== undefined && built !== null && built.ok) {
    const { identity } = built;
    lines.push(`identity:  ${config.identity.userIdHeader}=${identity.userId} ${config.identity.groupsHeader}=${identity.groupsHeaderValue}${identity.machine ? ' (a machine: machineIdentity)' : ''}${identity.audienceUnchecked ? ' (audience checked by the rules)' : ''}`);
  }
  // Audit-mode rules passed on the way: what each would have answered (it did not; the rule above did).
  for (const audit of audits ?? []) {
    lines.push(`audit:     #${audit.rule.index} ${audit.rule.name} (mode: audit, passed over) would answer ${answerOf(config, audit.rule, audit.params, caller, built)}`);
  }
  lines.push(`decision:  ${answerOf(config, rule, params, caller, built)}`);
  const warnings = lintPolicy(config, policy);
  const concerning = warnings.filter((warning) => concernsRequest(warning, rule.index, method, segments));
  let text = `${lines.join('\n')}\n`;
  for (const warning of concerning) text += formatWarning(warning);
  if (warnings.length > concerning.length) {
    const others = warnings.length - concerning.length;
    text += `note:      ${others} other policy warning${others === 1 ? '' : 's'} in this config (oidc-authz check-config lists every warning)\n`;
  }
  return text;
}

/** What `rule` answers this caller, as "STATUS kind (reason…)". */
function answerOf(config: Config, rule: CompiledRule, params: PathParams, caller: ExplainCaller, built: ReturnType<typeof identityFromClaims> | TokenCheck | undefined): string {
  const browserLogin = config.oidc ? ', or 302 to log in for a browser\'s page load' : '';
  if (rule.access.kind === 'anonymous') return '200 allow (anonymous; client identity headers removed)';
  if (rule.access.kind === 'deny') return `403 forbidden (${rule.index === -1 ? 'default_deny' : 'rule_deny'})`;
  if (caller.kind === 'unspecified') return `without credentials 401 unauthorized (no_credentials)${browserLogin}; pass --claims or --token to evaluate an identity`;
  if (caller.kind === 'anonymous') return `401 unauthorized (no_credentials)${browserLogin}`;
  if (built === undefined || built === null) return 'no sessions without oidc in the config';
  if (!built.ok) {
    const reason = 'auth' in built ? built.auth : { kind: 'invalid', reason: built.reason };
    return reason.kind === 'unavailable' ? `503 unavailable (${reason.reason})` : `401 unauthorized (${reason.reason})`;
  }
  const decision = authorize(rule, params, { kind: 'identity', identity: built.identity }, null);
  return decision.kind === 'allow'
    ? `200 allow (${decision.reason})`
    : `403 forbidden (${decision.reason}${decision.kind === 'forbidden' && decision.unmet ? `: ${decision.unmet} not met` : ''})`;
}

/**
 * A warning concerns the explained request when the rule that decided it is one of the pair and the
 * request is one of the overlapping requests: then the answer shown depends on the Host the client sent.
 */
function concernsRequest(warning: PolicyWarning, ruleIndex: number, method: string, segments: readonly string[]): boolean {
  if (warning.anonymous.index !== ruleIndex && warning.stricter.index !== ruleIndex) return false;
  return warning.overlaps.some((o) => (o.methods === null || o.methods.includes(method)) && compileTemplate(o.path).match(segments) !== null);
}

/** The path exactly as written (URL would resolve dot segments and so hide them). */
export function rawPathOf(url: string): string {
  const afterScheme = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  const end = afterScheme.search(/[?#]/);
  const path = end === -1 ? afterScheme : afterScheme.slice(0, end);
  return path === '' ? '/' : path;
}

function describeAccess(config: Config, index: number): string {
  if (index === -1) return config.defaultRule;
  const allow = config.rules[index]!.allow;
  return typeof allow === 'string' ? allow : JSON.stringify(allow);
}
