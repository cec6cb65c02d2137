/**
 * Path templates: "/workspaces/{ws}/**". Segments are literal, `{name}` (one segment, captured), `*`
 * (one segment) or `**` (zero or more segments, last only). A trailing slash is optional on both sides,
 * so "/admin" and "/admin/" are always governed by the same rule.
 */

export type PathParams = Readonly<Record<string, string>>;
export const NO_PARAMS: PathParams = Object.freeze({});

export type TemplateSegment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'any' };

export interface PathTemplate {
  readonly source: string;
  readonly paramNames: readonly string[];
  /** The segments before a final `**` (or all of them); read by the policy lint, not by matching. */
  readonly segments: readonly TemplateSegment[];
  /** Ends with `**`: matches any number of further segments, zero included. */
  readonly rest: boolean;
  /** Captured parameters, or null when the path does not match. */
  match(segments: readonly string[]): PathParams | null;
}

export class TemplateError extends Error {}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** Splits a normalized path into segments; "/" is [], "/a/b/" is ["a", "b"]. */
export function pathSegments(path: string): string[] {
  if (path === '/') return [];
  const end = path.endsWith('/') ? path.length - 1 : path.length;
  return path.slice(1, end).split('/');
}

export function compileTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new TemplateError('must start with "/"');
  const parts = pathSegments(source);
  const matchers: TemplateSegment[] = [];
  const paramNames: string[] = [];
  let rest = false;
  parts.forEach((part, index) => {
    if (part === '**') {
      if (index !== parts.length - 1) throw new TemplateError('"**" may only be the last segment');
      rest = true;
      return;
    }
    if (part === '*') return void matchers.push({ kind: 'any' });
    const param = PARAM.exec(part);
    if (param) {
      const name = param[1]!;
      if (paramNames.includes(name)) throw new TemplateError(`parameter {${name}} appears twice`);
      paramNames.push(name);
      return void matchers.push({ kind: 'param', name });
    }
    if (part === '') throw new TemplateError('empty segment ("//")');
    if (part === '.' || part === '..') throw new TemplateError('"." and ".." segments never reach the rules');
    if (/[{}*]/.test(part)) throw new TemplateError(`segment "${part}": "{", "}" and "*" only as a whole segment ({name}, *, **)`);
    if (/[\\;%\x00-\x1f\x7f]/.test(part)) throw new TemplateError(`segment "${part}": write it decoded, without "\\", ";", "%" or control characters`);
    matchers.push({ kind: 'literal', value: part });
  });

  const count = matchers.length;
  const hasParams = paramNames.length > 0;
  return {
    source,
    paramNames,
    segments: matchers,
    rest,
    match(segments) {
      if (rest ? segments.length < count : segments.length !== count) return null;
      let params: Record<string, string> | null = null;
      for (let i = 0; i < count; i++) {
        const matcher = matchers[i]!;
        const segment = segments[i]!;
        if (matcher.kind === 'literal') {
          if (matcher.value !== segment) return null;
        } else if (matcher.kind === 'param') {
          // A null-prototype object: a parameter named "__proto__" is data, not the prototype setter.
          (params ??= Object.create(null) as Record<string, string>)[matcher.name] = segment;
        }
      }
      return hasParams ? params! : NO_PARAMS;
    },
  };
}

/**
 * Host globs: "example.com" exactly, "*.example.com" any sub-domain (not the apex), "*" any host.
 * Hosts arrive normalized (lower case, no port, no trailing dot).
 */
export function compileHostGlob(glob: string): (host: string) => boolean {
  if (glob === '*') return () => true;
  if (glob.startsWith('*.')) {
    const suffix = glob.slice(1);
    return (host) => host.length > suffix.length && host.endsWith(suffix);
  }
  return (host) => host === glob;
}
