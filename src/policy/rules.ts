/**
 * The policy: rules compiled once at start-up into matchers (host glob × path template × method set).
 * First match wins; no match falls to `defaultRule`. Compile errors name the config field.
 */
import type { Config, Rule } from '../config/schema.js';
import { compileRequirement, type CompiledRequirement } from './requirement.js';
import { compileHostGlob, compileTemplate, TemplateError, type PathParams, type PathTemplate } from './template.js';

export type Access =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'authenticated' }
  | { readonly kind: 'deny' }
  | { readonly kind: 'require'; readonly requirement: CompiledRequirement };

export interface CompiledRule {
  readonly name: string;
  /** Position in `rules`, or -1 for the default rule. */
  readonly index: number;
  readonly hosts: ReadonlyArray<(host: string) => boolean> | null;
  readonly templates: readonly PathTemplate[];
  readonly methods: ReadonlySet<string> | null;
  readonly access: Access;
}

export interface RuleMatch {
  readonly rule: CompiledRule;
  readonly params: PathParams;
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

export function compilePolicy(config: Pick<Config, 'rules' | 'defaultRule'>): Policy {
  const rules = config.rules.map(compileRule);
  const defaultRule: CompiledRule = {
    name: DEFAULT_RULE_NAME,
    index: -1,
    hosts: null,
    templates: [],
    methods: null,
    access: config.defaultRule === 'authenticated' ? { kind: 'authenticated' } : { kind: 'deny' },
  };
  return {
    rules,
    defaultRule,
    match(method, host, segments) {
      for (const rule of rules) {
        if (rule.methods !== null && !rule.methods.has(method)) continue;
        if (rule.hosts !== null && !rule.hosts.some((matches) => matches(host))) continue;
        for (const template of rule.templates) {
          const params = template.match(segments);
          if (params !== null) return { rule, params };
        }
      }
      return { rule: defaultRule, params: {} };
    },
  };
}

function compileRule(rule: Rule, index: number): CompiledRule {
  const at = `rules.${index}`;
  const templates = rule.paths.map((source, i) => {
    try {
      return compileTemplate(source);
    } catch (error) {
      if (error instanceof TemplateError) throw new PolicyError(`${at}.paths.${i}`, `"${source}": ${error.message}`);
      throw error;
    }
  });
  let access: Access;
  if (rule.allow === 'anonymous' || rule.allow === 'authenticated' || rule.allow === 'deny') {
    access = { kind: rule.allow };
  } else {
    const requirement = compileRequirement(rule.allow);
    for (const param of requirement.params) {
      const missing = templates.find((t) => !t.paramNames.includes(param));
      if (missing) throw new PolicyError(`${at}.allow`, `uses {${param}} but path "${missing.source}" does not capture it`);
    }
    access = { kind: 'require', requirement };
  }
  return {
    name: rule.name,
    index,
    hosts: rule.hosts?.map(compileHostGlob) ?? null,
    templates,
    // GET implies HEAD: a HEAD must never fall through to a later, weaker rule than its GET.
    methods: rule.methods ? new Set(rule.methods.includes('GET') ? [...rule.methods, 'HEAD'] : rule.methods) : null,
    access,
  };
}
