/**
 * Policy lint: rules that are valid but weaker than they read. Pure: config in, warnings out; the CLI
 * prints them, `serve` logs them once at start-up.
 *
 * Host-scoped anonymous rules. `hosts` is compared with the request's Host header, which the client
 * writes, and the gateway (not this service) decides which service a request with that Host reaches.
 * Kubeflow's Gateway and VirtualServices use `hosts: "*"`: every Host reaches every service, routed by
 * path alone. So `{ hosts: [docs.example.com], paths: ["/**"], allow: anonymous }` followed by
 * `{ paths: ["/**"], allow: authenticated }` opens every service to anyone who sends
 * `Host: docs.example.com`. `allowedHosts` and `publicUrl` do not change that: they govern the login
 * routes' own origin, not which Host a check request may carry.
 *
 * The contract of `lintPolicy`, in one place:
 * - A warning pairs an *anonymous rule* A (it has `hosts`, none of them "*", and `allow: anonymous`)
 *   with a *stricter rule* C after it that applies to every host (no `hosts`, or a "*" among them) and
 *   is not anonymous (authenticated, deny or a requirement). The default rule counts as such a C, after
 *   every rule: a request that no rule for every host catches falls to it.
 * - A and C overlap when one request could match both: a path both templates match (a literal segment
 *   matches only itself, `{param}` and `*` any one segment, `**` any rest, none included; a trailing
 *   slash is ignored as in matching) and a method in both method sets (GET implies HEAD, as in matching).
 * - An overlap is dropped when some other rule R for every host, before C, decides all of it (one of
 *   R's templates covers the overlap and R's methods include its methods): those requests never reach C
 *   (when R comes before A, they never reach A either). Only single rules are tried, so several rules
 *   that together cover an overlap still leave the warning: the lint errs towards warning.
 * - Warnings come ordered by A's position, then C's (the default rule last); each lists its overlaps in
 *   the order of A's paths, then C's.
 */
import type { Config, Rule } from '../config/schema.js';
import { compilePolicy, DEFAULT_RULE_NAME, type CompiledRule, type Policy } from './rules.js';
import { matchPieces, type PathTemplate, type TemplateSegment } from './template.js';

/** The part of a template the overlap tests read. */
export type TemplateShape = Pick<PathTemplate, 'segments' | 'rest'>;
/** A method set as compiled (GET already implies HEAD); null: every method. */
export type MethodSet = ReadonlySet<string> | null;

export interface RuleRef {
  readonly name: string;
  /** Position in `rules`; -1 for the default rule. */
  readonly index: number;
}

export interface Overlap {
  /** The requests both rules match, as a template ("*" for any one segment), e.g. "/docs/**". */
  readonly path: string;
  readonly anonymousPath: string;
  /** "/**" for the default rule. */
  readonly stricterPath: string;
  /** Sorted; null: every method. */
  readonly methods: readonly string[] | null;
}

export interface HostScopedAnonymousWarning {
  readonly kind: 'host_scoped_anonymous';
  readonly anonymous: RuleRef & { readonly hosts: readonly string[] };
  readonly stricter: RuleRef & { readonly access: string };
  readonly overlaps: readonly Overlap[];
  /** What is open to whom, in one sentence. */
  readonly summary: string;
  /** Why the Host scope does not hold. */
  readonly why: string;
  /** The ways out, any one of which is enough. */
  readonly fixes: readonly string[];
}

export type PolicyWarning = HostScopedAnonymousWarning;

// ---- Templates and method sets ----------------------------------------------------------------

/** Matches any one segment. A mixed segment ("{ws}.{c}") is neither this nor a literal. */
const isWildcard = (segment: TemplateSegment) => segment.kind === 'param' || segment.kind === 'any';

/** Whether a mixed segment matches a literal one. */
const mixedMatches = (mixed: TemplateSegment & { kind: 'mixed' }, literal: string) => matchPieces(mixed.pieces, literal, Object.create(null) as Record<string, string>);

/**
 * The segments both match, or null when none: a literal wins over anything that matches it; two mixed
 * segments are assumed to overlap (the lint errs towards warning) and the first is kept.
 */
function intersectSegments(x: TemplateSegment, y: TemplateSegment): TemplateSegment | null {
  if (isWildcard(y)) return x;
  if (isWildcard(x)) return y;
  if (x.kind === 'literal' && y.kind === 'literal') return x.value === y.value ? x : null;
  if (x.kind === 'mixed' && y.kind === 'literal') return mixedMatches(x, y.value) ? y : null;
  if (y.kind === 'mixed' && x.kind === 'literal') return mixedMatches(y, x.value) ? x : null;
  return x;
}

/** Whether every segment `inner` matches is matched by `outer` (two different mixed segments: not known, so no). */
function segmentCovers(outer: TemplateSegment, inner: TemplateSegment): boolean {
  if (isWildcard(outer)) return true;
  if (inner.kind === 'literal') return outer.kind === 'literal' ? outer.value === inner.value : outer.kind === 'mixed' && mixedMatches(outer, inner.value);
  return outer.kind === 'mixed' && inner.kind === 'mixed' && outer.source === inner.source;
}

/** Whether some path matches both templates. */
export function templatesOverlap(a: TemplateShape, b: TemplateShape): boolean {
  return intersectTemplates(a, b) !== null;
}

/**
 * The paths both templates match, as one template, or null when there is none. Position by position a
 * literal wins over a wildcard, two literals must be equal; past the shorter template's segments only
 * its `**` can go on, so the longer one's segments are kept.
 */
export function intersectTemplates(a: TemplateShape, b: TemplateShape): TemplateShape | null {
  const [short, long] = a.segments.length <= b.segments.length ? [a, b] : [b, a];
  // Without `**` a template matches exactly its number of segments.
  if (!short.rest && short.segments.length !== long.segments.length) return null;
  const segments: TemplateSegment[] = [];
  for (let i = 0; i < long.segments.length; i++) {
    const x = long.segments[i]!;
    const y = short.segments[i];
    const both = y === undefined ? x : intersectSegments(x, y);
    if (both === null) return null;
    segments.push(both);
  }
  return { segments, rest: a.rest && b.rest };
}

/** Whether every path `inner` matches is matched by `outer`. */
export function templateCovers(outer: TemplateShape, inner: TemplateShape): boolean {
  const o = outer.segments.length;
  const n = inner.segments.length;
  if (inner.rest ? !outer.rest || o > n : outer.rest ? o > n : o !== n) return false;
  return outer.segments.every((segment, i) => segmentCovers(segment, inner.segments[i]!));
}

/** The template's text with every wildcard written "*" (two templates' parameter names could clash); mixed segments as written. */
export function templateSource(shape: TemplateShape): string {
  const parts = shape.segments.map((s) => (s.kind === 'literal' ? s.value : s.kind === 'mixed' ? s.source : '*'));
  if (shape.rest) parts.push('**');
  return `/${parts.join('/')}`;
}

/** The methods in both sets: null is every method, an empty set none. */
export function intersectMethods(a: MethodSet, b: MethodSet): MethodSet {
  if (a === null) return b;
  if (b === null) return a;
  return new Set([...a].filter((m) => b.has(m)));
}

function methodsCover(outer: MethodSet, inner: MethodSet): boolean {
  if (outer === null) return true;
  if (inner === null) return false;
  return [...inner].every((m) => outer.has(m));
}

// ---- The lint ---------------------------------------------------------------------------------

/** "/**" with every method: the default rule's reach. */
const EVERYTHING: TemplateShape = { segments: [], rest: true };

interface Candidate {
  readonly rule: CompiledRule;
  /** The order in which the policy tries it; the default rule after every rule. */
  readonly order: number;
  readonly templates: readonly (TemplateShape & { readonly source: string })[];
}

export function lintPolicy(config: Pick<Config, 'rules' | 'defaultRule'>, policy: Policy = compilePolicy(config)): PolicyWarning[] {
  const everyHost = (index: number) => {
    const hosts = config.rules[index]?.hosts;
    return hosts === undefined || hosts.includes('*');
  };
  // Audit-mode rules never decide: they neither open nor close anything.
  const deciding = policy.rules.filter((rule) => !rule.audit);
  const forEveryHost: Candidate[] = [
    ...deciding.filter((rule) => everyHost(rule.index)).map((rule) => ({ rule, order: rule.index, templates: rule.templates })),
    { rule: policy.defaultRule, order: policy.rules.length, templates: [{ ...EVERYTHING, source: '/**' }] },
  ];
  const warnings: PolicyWarning[] = [];
  for (const anonymous of deciding) {
    if (anonymous.access.kind !== 'anonymous' || everyHost(anonymous.index)) continue;
    for (const stricter of forEveryHost) {
      if (stricter.order <= anonymous.index || stricter.rule.access.kind === 'anonymous') continue;
      const overlaps = overlapsOf(anonymous, stricter, forEveryHost);
      if (overlaps.length > 0) warnings.push(hostScopedAnonymous(config, anonymous, stricter.rule, overlaps));
    }
  }
  return warnings;
}

function overlapsOf(anonymous: CompiledRule, stricter: Candidate, forEveryHost: readonly Candidate[]): Overlap[] {
  const methods = intersectMethods(anonymous.methods, stricter.rule.methods);
  if (methods !== null && methods.size === 0) return [];
  // Rules for every host that the policy tries before the stricter one (not the anonymous rule itself).
  const deciders = forEveryHost.filter((c) => c.order < stricter.order && c.rule !== anonymous);
  const overlaps: Overlap[] = [];
  for (const a of anonymous.templates) {
    for (const c of stricter.templates) {
      const both = intersectTemplates(a, c);
      if (both === null) continue;
      const decided = deciders.some((d) => methodsCover(d.rule.methods, methods) && d.templates.some((t) => templateCovers(t, both)));
      if (decided) continue;
      overlaps.push({ path: templateSource(both), anonymousPath: a.source, stricterPath: c.source, methods: methods === null ? null : [...methods].sort() });
    }
  }
  return overlaps;
}

function describeAccess(config: Pick<Config, 'rules' | 'defaultRule'>, rule: CompiledRule): string {
  if (rule.index === -1) return `defaultRule: ${config.defaultRule}`;
  const allow: Rule['allow'] = config.rules[rule.index]!.allow;
  return typeof allow === 'string' ? allow : JSON.stringify(allow);
}

function ruleLabel(rule: RuleRef): string {
  return rule.index === -1 ? 'the default rule' : `rule #${rule.index} "${rule.name}"`;
}

/** "GET, HEAD /docs/**" or "any method /docs/**". */
export function describeOverlap(overlap: Overlap): string {
  return `${overlap.methods === null ? 'any method' : overlap.methods.join(', ')} ${overlap.path}`;
}

function hostScopedAnonymous(config: Pick<Config, 'rules' | 'defaultRule'>, anonymous: CompiledRule, stricter: CompiledRule, overlaps: Overlap[]): HostScopedAnonymousWarning {
  const hosts = config.rules[anonymous.index]!.hosts!;
  const access = describeAccess(config, stricter);
  const hostList = hosts.join(', ');
  const demands = stricter.access.kind === 'deny' ? 'denies' : `requires ${access} for`;
  // A glob's sub-domains and a pattern's captures are the client's to pick too: name a host that matches.
  const first = hosts[0]!;
  const sampleHost = first.startsWith('*.') ? first.replace(/^\*\./, 'anything.') : anonymous.hosts![0]!.sample;
  return {
    kind: 'host_scoped_anonymous',
    anonymous: { name: anonymous.name, index: anonymous.index, hosts },
    stricter: { name: stricter.index === -1 ? DEFAULT_RULE_NAME : stricter.name, index: stricter.index, access },
    overlaps,
    summary: `${ruleLabel(anonymous)} allows anonymous access for hosts ${hostList}, but ${ruleLabel(stricter)} (every host) ${demands} the same requests: ${overlaps.map(describeOverlap).join('; ')}`,
    why: 'hosts is compared with the Host header, which the client writes; the gateway decides which service a request with that Host reaches. '
      + 'Behind a gateway that routes every host to the same services (Kubeflow\'s Gateway and VirtualServices use hosts: "*"), '
      + `anyone can send these requests with Host: ${sampleHost} and be let through anonymously, to whichever service the path selects. `
      + 'allowedHosts and publicUrl do not restrict check requests (they only govern the login routes).',
    fixes: [
      `drop hosts from "${anonymous.name}" if these requests may be anonymous on every host`,
      `or, before it, add a rule for the same hosts that requires what ${ruleLabel(stricter)} requires (${access}), so that "${anonymous.name}" opens only what must be public`,
      `or make sure the gateway routes requests for ${hostList} only to the services meant for them (a Gateway and VirtualService for those hosts, not "*")`,
    ],
  };
}

/** The warning as the CLI prints it: a headline, the overlapping requests, then why and how to fix. */
export function formatWarning(warning: PolicyWarning): string {
  const { anonymous, stricter } = warning;
  const lines = [`warning: ${ruleLabel(anonymous)} allows anonymous access for hosts ${anonymous.hosts.join(', ')}, but ${ruleLabel(stricter)} (every host) is stricter (${stricter.access}) on the same requests:`];
  for (const overlap of warning.overlaps) lines.push(`    ${describeOverlap(overlap)}   (paths "${overlap.anonymousPath}" and "${overlap.stricterPath}")`);
  lines.push(`  why: ${warning.why}`);
  warning.fixes.forEach((fix, i) => lines.push(`  ${i === 0 ? 'fix:' : '    '} - ${fix}`));
  return `${lines.join('\n')}\n`;
}

/** The warning as one structured log record's fields (`serve` logs each once at start-up). */
export function warningLogFields(warning: PolicyWarning): Record<string, unknown> {
  return {
    warning: warning.kind,
    rule: warning.anonymous.name,
    hosts: warning.anonymous.hosts,
    stricterRule: warning.stricter.name,
    requests: warning.overlaps.map(describeOverlap),
    summary: warning.summary,
    why: warning.why,
    fixes: warning.fixes,
  };
}
