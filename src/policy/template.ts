/**
 * Path templates ("/workspaces/{ws}/**") and host patterns ("{ws}-default.example.org").
 *
 * Path segments are literal, `{name}` (one whole segment, captured), `*` (one segment) or `**` (zero or
 * more segments, last only). A trailing slash is optional on both sides, so "/admin" and "/admin/" are
 * always governed by the same rule. Host patterns are the same per label: literal, `{name}` (one whole
 * label), or `*` as the first label only, meaning any sub-domain (one or more labels).
 *
 * A segment or label may mix literal text and captures: `{ws}.{collection}`, `{ws}-default`,
 * `editor-{ws}-default`. One rule decides every split, with no backtracking:
 *   - a capture followed by literal text ends at the FIRST occurrence of that text, so it never contains
 *     the text that follows it ("ws-alice.crops.v2" against `{ws}.{collection}` gives ws "ws-alice",
 *     collection "crops.v2");
 *   - a capture is never empty (".crops" has no workspace: no match);
 *   - a capture at the end takes the rest;
 *   - the split must then account for the whole segment, or the segment does not match
 *     (`{ws}-default` does not match "a-default-default": ws would be "a").
 * Two captures side by side (`{a}{b}`) have no literal text to end the first one: refused.
 */

export type PathParams = Readonly<Record<string, string>>;
export const NO_PARAMS: PathParams = Object.freeze({});

/** Literal text or a capture inside a mixed segment; never two captures in a row. */
export type SegmentPiece = { readonly literal: string } | { readonly capture: string };

export type TemplateSegment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'any' }
  | { readonly kind: 'mixed'; readonly source: string; readonly pieces: readonly SegmentPiece[] };

export interface PathTemplate {
  readonly source: string;
  readonly paramNames: readonly string[];
  /** The segments before a final `**` (or all of them); read by the policy lint, not by matching. */
  readonly segments: readonly TemplateSegment[];
  /** Ends with `**`: matches any number of further segments, zero included. */
  readonly rest: boolean;
  /** Captured parameters, or null when the path does not match. */
  match(segments: readonly string[]): PathParams | null;
  /** A path this template matches, every capture and wildcard written "x": for the ambiguity check. */
  readonly sample: string;
}

export interface HostPattern {
  readonly source: string;
  readonly paramNames: readonly string[];
  /** Captured parameters, or null when the host does not match. */
  match(host: string): PathParams | null;
  /** A host this pattern matches, every capture written "x": for the ambiguity check. */
  readonly sample: string;
}

export class TemplateError extends Error {}

const NAME = '[A-Za-z_][A-Za-z0-9_]*';
const PARAM = new RegExp(`^\\{(${NAME})\\}$`);
const PIECES = new RegExp(`\\{(${NAME})\\}|[^{}]+`, 'g');
const SAMPLE = 'x';

/** Splits a normalized path into segments; "/" is [], "/a/b/" is ["a", "b"]. */
export function pathSegments(path: string): string[] {
  if (path === '/') return [];
  const end = path.endsWith('/') ? path.length - 1 : path.length;
  return path.slice(1, end).split('/');
}

/** What one segment (or host label) may be; `what` names it in errors. */
function compileSegment(part: string, what: 'segment' | 'label'): TemplateSegment {
  if (part === '*') return { kind: 'any' };
  const param = PARAM.exec(part);
  if (param) return { kind: 'param', name: param[1]! };
  if (part.includes('*')) throw new TemplateError(`${what} "${part}": "*" only as a whole ${what}`);
  if (!/[{}]/.test(part)) return { kind: 'literal', value: part };
  const pieces: SegmentPiece[] = [];
  let consumed = 0;
  for (const found of part.matchAll(PIECES)) {
    if (found.index !== consumed) break;
    consumed += found[0].length;
    const name = found[1];
    if (name === undefined) {
      pieces.push({ literal: found[0] });
      continue;
    }
    if (pieces.length > 0 && 'capture' in pieces[pieces.length - 1]!) {
      throw new TemplateError(`${what} "${part}": {${(pieces[pieces.length - 1] as { capture: string }).capture}}{${name}} is ambiguous, two captures need literal text between them`);
    }
    pieces.push({ capture: name });
  }
  if (consumed !== part.length) throw new TemplateError(`${what} "${part}": "{" and "}" only around a parameter name ({name}: a letter or "_", then letters, digits, "_")`);
  return { kind: 'mixed', source: part, pieces };
}

function capturesOf(segment: TemplateSegment): string[] {
  if (segment.kind === 'param') return [segment.name];
  if (segment.kind === 'mixed') return segment.pieces.flatMap((piece) => ('capture' in piece ? [piece.capture] : []));
  return [];
}

function sampleOf(segment: TemplateSegment): string {
  if (segment.kind === 'literal') return segment.value;
  if (segment.kind === 'mixed') return segment.pieces.map((piece) => ('literal' in piece ? piece.literal : SAMPLE)).join('');
  return SAMPLE;
}

/**
 * Matches one mixed segment under the rule in the header, writing captures into `params`; false when
 * the segment does not match (params may then hold partial captures: the caller drops them).
 */
export function matchPieces(pieces: readonly SegmentPiece[], text: string, params: Record<string, string>): boolean {
  let at = 0;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if ('literal' in piece) {
      if (!text.startsWith(piece.literal, at)) return false;
      at += piece.literal.length;
      continue;
    }
    const next = pieces[i + 1] as { literal: string } | undefined;
    // The first occurrence from the capture's start: the capture never contains the text after it, and
    // one that would be empty (the text comes at once) means no match.
    const end = next === undefined ? text.length : text.indexOf(next.literal, at);
    if (end <= at) return false;
    params[piece.capture] = text.slice(at, end);
    at = end;
  }
  return at === text.length;
}

function matchSegment(matcher: TemplateSegment, text: string, params: Record<string, string>): boolean {
  switch (matcher.kind) {
    case 'literal':
      return matcher.value === text;
    case 'param':
      params[matcher.name] = text;
      return true;
    case 'any':
      return true;
    case 'mixed':
      return matchPieces(matcher.pieces, text, params);
  }
}

function uniqueNames(segments: readonly TemplateSegment[]): string[] {
  const names: string[] = [];
  for (const name of segments.flatMap(capturesOf)) {
    if (names.includes(name)) throw new TemplateError(`parameter {${name}} appears twice`);
    names.push(name);
  }
  return names;
}

export function compileTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new TemplateError('must start with "/"');
  const parts = pathSegments(source);
  const matchers: TemplateSegment[] = [];
  let rest = false;
  parts.forEach((part, index) => {
    if (part === '**') {
      if (index !== parts.length - 1) throw new TemplateError('"**" may only be the last segment');
      rest = true;
      return;
    }
    if (part === '') throw new TemplateError('empty segment ("//")');
    if (part === '.' || part === '..') throw new TemplateError('"." and ".." segments never reach the rules');
    if (part.includes('**')) throw new TemplateError(`segment "${part}": "**" only as the whole last segment`);
    if (/[\\;%\x00-\x1f\x7f]/.test(part)) throw new TemplateError(`segment "${part}": write it decoded, without "\\", ";", "%" or control characters`);
    matchers.push(compileSegment(part, 'segment'));
  });
  const paramNames = uniqueNames(matchers);

  const count = matchers.length;
  const hasParams = paramNames.length > 0;
  return {
    source,
    paramNames,
    segments: matchers,
    rest,
    sample: `/${matchers.map(sampleOf).join('/')}`,
    match(segments) {
      if (rest ? segments.length < count : segments.length !== count) return null;
      if (!hasParams) {
        // Only literals and "*" here: a mixed segment always captures.
        for (let i = 0; i < count; i++) {
          const matcher = matchers[i]!;
          if (matcher.kind === 'literal' && matcher.value !== segments[i]) return null;
        }
        return NO_PARAMS;
      }
      // A null-prototype object: a parameter named "__proto__" is data, not the prototype setter.
      const params = Object.create(null) as Record<string, string>;
      for (let i = 0; i < count; i++) if (!matchSegment(matchers[i]!, segments[i]!, params)) return null;
      return params;
    },
  };
}

/**
 * Host patterns: "example.com" exactly, "*.example.com" any sub-domain (not the apex), "*" any host;
 * labels may capture ("{ws}.example.org", "editor-{ws}-default.example.org"). A capture lies within one
 * label: it never contains ".". Hosts arrive normalized (lower case, no port, no trailing dot).
 */
export function compileHostPattern(source: string): HostPattern {
  if (source === '*') return { source, paramNames: [], match: () => NO_PARAMS, sample: SAMPLE };
  const subdomains = source.startsWith('*.');
  const labels = (subdomains ? source.slice(2) : source).split('.').map((label) => {
    if (label === '') throw new TemplateError('empty label');
    if (label === '*') throw new TemplateError('"*" only as the first label ("*.example.com": any sub-domain)');
    return compileSegment(label, 'label');
  });
  const paramNames = uniqueNames(labels);
  const sample = `${subdomains ? `${SAMPLE}.` : ''}${labels.map(sampleOf).join('.')}`;
  if (paramNames.length === 0) {
    if (subdomains) {
      const suffix = source.slice(1);
      return { source, paramNames, sample, match: (host) => (host.length > suffix.length && host.endsWith(suffix) ? NO_PARAMS : null) };
    }
    return { source, paramNames, sample, match: (host) => (host === source ? NO_PARAMS : null) };
  }
  const count = labels.length;
  return {
    source,
    paramNames,
    sample,
    match(host) {
      const parts = host.split('.');
      if (subdomains ? parts.length <= count || parts.slice(0, parts.length - count).includes('') : parts.length !== count) return null;
      const offset = parts.length - count;
      const params = Object.create(null) as Record<string, string>;
      for (let i = 0; i < count; i++) if (!matchSegment(labels[i]!, parts[offset + i]!, params)) return null;
      return params;
    },
  };
}
