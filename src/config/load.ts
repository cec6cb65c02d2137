/**
 * Loading: one YAML/JSON file, then OIDC_AUTHZ_* environment overrides, then the schema. Every
 * violation is reported at once, each with the field's path, so an operator fixes a config in one go.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { compilePolicy, PolicyError } from '../policy/rules.js';
import { configSchema, type Config } from './schema.js';

export const ENV_PREFIX = 'OIDC_AUTHZ_';

/** A config that cannot be used; `problems` are "path: reason" lines. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: string[]) {
    super(`invalid configuration (${source}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `rules.2.allow.groups.0` style paths, the way operators read YAML. */
export function formatIssuePath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `${formatIssuePath(issue.path)}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${formatIssuePath(issue.path)}: ${issue.message}`;
  });
}

/** SCREAMING_SNAKE → camelCase: CLIENT_ID → clientId. */
function camelCase(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * OIDC_AUTHZ_LISTEN__PORT=9000 sets listen.port; `__` separates levels, `_` separates words.
 * Values are JSON when they parse as JSON (numbers, booleans, lists), strings otherwise.
 */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const result: Record<string, unknown> = structuredClone(raw);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(camelCase);
    if (path.some((segment) => segment === '' || segment === '__proto__' || segment === 'constructor' || segment === 'prototype')) continue;
    let target: Record<string, unknown> = result;
    for (const segment of path.slice(0, -1)) {
      const next = target[segment];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) target[segment] = {};
      target = target[segment] as Record<string, unknown>;
    }
    target[path[path.length - 1]!] = parseEnvValue(value);
  }
  return result;
}

function parseEnvValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Validates an already-parsed object (tests and `explain` use this directly). */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, describeIssues(result.error));
  try {
    // Rules the schema accepts can still be unusable (a {param} no path captures): fail at start-up.
    compilePolicy(result.data);
  } catch (error) {
    if (error instanceof PolicyError) throw new ConfigError(source, [error.message]);
    throw error;
  }
  return deepFreeze(result.data);
}

/** Reads FILE (YAML or JSON), applies env overrides and validates. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`(file): cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  return parseConfigText(text, file, env).config;
}

/**
 * The config in a file's text (YAML or JSON), with env overrides applied and validated; `raw` is what the
 * schema was given (hot reload keeps it to put running values back into a new config).
 */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): { config: Config; raw: Record<string, unknown> } {
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (error) {
    throw new ConfigError(file, [`(file): not valid YAML/JSON: ${(error as Error).message.split('\n')[0]}`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(file, ['(root): must be a mapping of fields']);
  }
  const raw = applyEnvOverrides(parsed as Record<string, unknown>, env);
  return { config: parseConfig(raw, file), raw };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
