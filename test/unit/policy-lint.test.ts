import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput, Rule } from '../../src/config/schema.js';
import {
  formatWarning, intersectMethods, intersectTemplates, lintPolicy, templateCovers, templateSource, templatesOverlap,
  warningLogFields, type PolicyWarning, type TemplateShape,
} from '../../src/policy/lint.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { compileTemplate, pathSegments } from '../../src/policy/template.js';

const t = (source: string) => compileTemplate(source);

/** A concrete path inside a template: its literals, "x" for each wildcard, and one more segment under "**". */
function samplePath(shape: TemplateShape): string[] {
  const segments = shape.segments.map((s) => (s.kind === 'literal' ? s.value : 'x'));
  return shape.rest ? [...segments, 'more'] : segments;
}

describe('templatesOverlap: can one request path match both templates?', () => {
  test.each<{ what: string; a: string; b: string; expected: string | null }>([
    { what: 'equal literals', a: '/favicon.ico', b: '/favicon.ico', expected: '/favicon.ico' },
    { what: 'different literal segments', a: '/docs/**', b: '/api/**', expected: null },
    { what: 'different last literal', a: '/a/b', b: '/a/c', expected: null },
    { what: 'a {param} against a literal', a: '/workspaces/{ws}', b: '/workspaces/team-a', expected: '/workspaces/team-a' },
    { what: 'a * against a literal', a: '/pipelines/*/runs', b: '/pipelines/p1/runs', expected: '/pipelines/p1/runs' },
    { what: 'two wildcards stay a wildcard (names are dropped: they could clash)', a: '/w/{ws}/x', b: '/w/*/x', expected: '/w/*/x' },
    { what: 'a one-segment wildcard does not reach two segments', a: '/x/*', b: '/x/y/z', expected: null },
    { what: 'a wildcard does not make an empty segment', a: '/x/*', b: '/x', expected: null },
    { what: '** takes the rest', a: '/x/**', b: '/x/y/z', expected: '/x/y/z' },
    { what: '** takes zero segments too', a: '/x/**', b: '/x', expected: '/x' },
    { what: '** does not reach above its prefix', a: '/x/**', b: '/', expected: null },
    { what: '/** takes the root', a: '/**', b: '/', expected: '/' },
    { what: '/** takes everything under ** ', a: '/**', b: '/docs/**', expected: '/docs/**' },
    { what: 'two ** of different depth', a: '/a/**', b: '/a/b/c/**', expected: '/a/b/c/**' },
    { what: 'two ** that differ in a literal', a: '/a/**', b: '/b/c/**', expected: null },
    { what: 'a wildcard in one, a literal in the other, at several places', a: '/a/*/c', b: '/*/b/**', expected: '/a/b/c' },
    { what: 'a wildcard whose neighbour differs', a: '/a/*/c', b: '/a/b/d', expected: null },
    { what: 'a literal against a shorter fixed template', a: '/a/b', b: '/a', expected: null },
    { what: 'a trailing slash is ignored, as in matching', a: '/admin/', b: '/admin', expected: '/admin' },
    { what: 'a {param} under ** against a longer literal path', a: '/workspaces/{ws}/**', b: '/*/files', expected: '/workspaces/files' },
  ])('$what: "$a" and "$b"', ({ a, b, expected }) => {
    // Overlap is symmetric, and the intersection is the same template either way round.
    expect([templatesOverlap(t(a), t(b)), templatesOverlap(t(b), t(a))]).toEqual([expected !== null, expected !== null]);
    const ab = intersectTemplates(t(a), t(b));
    const ba = intersectTemplates(t(b), t(a));
    expect([ab && templateSource(ab), ba && templateSource(ba)]).toEqual([expected, expected]);
    if (ab !== null) {
      // Checked against the real matcher: a path inside the intersection matches both templates.
      const path = samplePath(ab);
      expect([t(a).match(path) !== null, t(b).match(path) !== null]).toEqual([true, true]);
    }
  });
});

describe('templateCovers: does every path of the inner template match the outer one?', () => {
  test.each<{ what: string; outer: string; inner: string; expected: boolean }>([
    { what: '/** covers everything', outer: '/**', inner: '/docs/*/x', expected: true },
    { what: '/** covers /**', outer: '/**', inner: '/**', expected: true },
    { what: 'a prefix ** covers a deeper **', outer: '/docs/**', inner: '/docs/a/**', expected: true },
    { what: 'a deeper ** does not cover a prefix **', outer: '/docs/a/**', inner: '/docs/**', expected: false },
    { what: 'a fixed template does not cover a **', outer: '/docs/*', inner: '/docs/**', expected: false },
    { what: 'a wildcard covers a literal', outer: '/w/{ws}', inner: '/w/team-a', expected: true },
    { what: 'a literal does not cover a wildcard', outer: '/w/team-a', inner: '/w/*', expected: false },
    { what: 'a literal covers only itself', outer: '/a/b', inner: '/a/c', expected: false },
    { what: 'different lengths without **', outer: '/a/*', inner: '/a/b/c', expected: false },
  ])('$what', ({ outer, inner, expected }) => {
    expect(templateCovers(t(outer), t(inner))).toBe(expected);
  });
});

test.each<{ what: string; a: string[] | null; b: string[] | null; expected: string[] | null }>([
  { what: 'every method and a set', a: null, b: ['POST'], expected: ['POST'] },
  { what: 'two sets', a: ['GET', 'HEAD', 'POST'], b: ['HEAD', 'PUT'], expected: ['HEAD'] },
  { what: 'disjoint sets', a: ['POST'], b: ['GET', 'HEAD'], expected: [] },
  { what: 'every method twice', a: null, b: null, expected: null },
])('intersectMethods: $what', ({ a, b, expected }) => {
  const result = intersectMethods(a && new Set(a), b && new Set(b));
  expect(result === null ? null : [...result].sort()).toEqual(expected);
});

function lint(input: ConfigInput): PolicyWarning[] {
  const config = parseConfig(input);
  return lintPolicy(config, compilePolicy(config));
}

/** [anonymous rule, stricter rule, overlapping requests] per warning. */
function pairs(input: ConfigInput): Array<[string, string, string[]]> {
  return lint(input).map((w) => [w.anonymous.name, w.stricter.name, w.overlaps.map((o) => `${o.methods?.join(',') ?? '*'} ${o.path}`)]);
}

const DOCS_HOST = 'docs.example.com';

describe('lintPolicy: a host-scoped anonymous rule that a request with another Host would bypass', () => {
  test('the Kubeflow shape: docs public on one host, a catch-all for every host requires a login', () => {
    const warnings = lint({
      rules: [
        { name: 'docs-public', hosts: [DOCS_HOST], paths: ['/**'], allow: 'anonymous' },
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    });
    expect(warnings).toHaveLength(1);
    const [warning] = warnings;
    expect({ anonymous: warning!.anonymous, stricter: warning!.stricter, overlaps: warning!.overlaps }).toEqual({
      anonymous: { name: 'docs-public', index: 0, hosts: [DOCS_HOST] },
      stricter: { name: 'everything-else', index: 1, access: 'authenticated' },
      overlaps: [{ path: '/**', anonymousPath: '/**', stricterPath: '/**', methods: null }],
    });
    expect(warning!.summary).toBe('rule #0 "docs-public" allows anonymous access for hosts docs.example.com, but rule #1 "everything-else" (every host) requires authenticated for the same requests: any method /**');
    expect(warning!.why).toContain('anyone can send these requests with Host: docs.example.com and be let through anonymously');
    expect(warning!.why).toContain('hosts: "*"');
    expect(warning!.why).toContain('allowedHosts and publicUrl do not restrict check requests');
    expect(warning!.fixes).toEqual([
      'drop hosts from "docs-public" if these requests may be anonymous on every host',
      'or, before it, add a rule for the same hosts that requires what rule #1 "everything-else" requires (authenticated), so that "docs-public" opens only what must be public',
      'or make sure the gateway routes requests for docs.example.com only to the services meant for them (a Gateway and VirtualService for those hosts, not "*")',
    ]);
  });

  test('names the overlapping paths and methods, not the whole rules', () => {
    expect(pairs({
      rules: [
        { name: 'hooks', hosts: ['hooks.example.com'], paths: ['/hooks/{id}', '/status'], methods: ['POST', 'GET'], allow: 'anonymous' },
        { name: 'api-write', paths: ['/hooks/**'], methods: ['POST', 'PUT'], allow: { groups: ['writers'] } },
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    })).toEqual([
      ['hooks', 'api-write', ['POST /hooks/*']],
      // api-write decides POST /hooks/* but not GET or HEAD, so it does not decide the whole overlap with the
      // catch-all: the lint subtracts only what one rule decides entirely, and errs towards warning.
      ['hooks', 'everything-else', ['GET,HEAD,POST /hooks/*', 'GET,HEAD,POST /status']],
    ]);
  });

  test('GET implies HEAD: a later HEAD-only rule is stricter for the HEAD a GET rule lets through', () => {
    expect(pairs({
      rules: [
        { name: 'probe', hosts: [DOCS_HOST], paths: ['/x/**'], methods: ['GET'], allow: 'anonymous' },
        { name: 'no-head', paths: ['/x/**'], methods: ['HEAD'], allow: 'deny' },
        { name: 'x-get', paths: ['/x/**'], methods: ['GET'], allow: 'anonymous' },
      ],
    })).toEqual([['probe', 'no-head', ['HEAD /x/**']]]);
  });

  test('a requirement and a denying default rule are named with what they demand', () => {
    const warnings = lint({
      defaultRule: 'deny',
      rules: [
        { name: 'public', hosts: ['*.apps.example.com'], paths: ['/public/**', '/admin/**'], allow: 'anonymous' },
        { name: 'admins', paths: ['/admin/**'], allow: { groups: ['admins'] } },
      ],
    });
    expect(warnings.map((w) => [w.stricter.name, w.stricter.index, w.stricter.access, w.overlaps.map((o) => o.path)])).toEqual([
      ['admins', 1, '{"groups":["admins"]}', ['/admin/**']],
      ['default', -1, 'defaultRule: deny', ['/public/**']],
    ]);
    expect(warnings[1]!.summary).toContain('but the default rule (every host) denies the same requests: any method /public/**');
    // A glob's sub-domains are the client's to choose too.
    expect(warnings[0]!.why).toContain('Host: anything.apps.example.com');
  });

  test('the default rule counts: host-scoped rules everywhere still leave every other Host to the default', () => {
    expect(pairs({
      defaultRule: 'authenticated',
      rules: [
        { name: 'docs-public', hosts: [DOCS_HOST], paths: ['/**'], allow: 'anonymous' },
        { name: 'kubeflow', hosts: ['kubeflow.example.com'], paths: ['/**'], allow: 'authenticated' },
      ],
    })).toEqual([['docs-public', 'default', ['* /**']]]);
  });

  test('formatWarning prints both rules, each overlapping request with its two paths, why and the fixes', () => {
    const [warning] = lint({
      rules: [
        { name: 'docs-public', hosts: [DOCS_HOST], paths: ['/docs/**'], methods: ['GET'], allow: 'anonymous' },
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    });
    const text = formatWarning(warning!);
    expect(text.split('\n').slice(0, 2)).toEqual([
      'warning: rule #0 "docs-public" allows anonymous access for hosts docs.example.com, but rule #1 "everything-else" (every host) is stricter (authenticated) on the same requests:',
      '    GET, HEAD /docs/**   (paths "/docs/**" and "/**")',
    ]);
    expect(text).toContain('  why: hosts is compared with the Host header');
    expect(text).toContain('  fix: - drop hosts from "docs-public"');
    expect(text).toContain('       - or make sure the gateway routes requests for docs.example.com');
  });

  test('the log record carries the same facts as fields', () => {
    const [warning] = lint({ rules: [{ name: 'docs-public', hosts: [DOCS_HOST], paths: ['/docs/**'], allow: 'anonymous' }] });
    expect(warningLogFields(warning!)).toMatchObject({
      warning: 'host_scoped_anonymous', rule: 'docs-public', hosts: [DOCS_HOST], stricterRule: 'default', requests: ['any method /docs/**'],
    });
  });
});

describe('lintPolicy: what must not warn', () => {
  const anonymousDocs: Rule = { name: 'docs-public', hosts: [DOCS_HOST], paths: ['/docs/**'], allow: 'anonymous' };

  test('a later stricter rule on different literal segments is not paired (only the default rule is, for /docs/**)', () => {
    expect(pairs({ rules: [anonymousDocs, { name: 'api', paths: ['/api/**', '/doc/**'], allow: 'deny' }] })).toEqual([['docs-public', 'default', ['* /docs/**']]]);
  });

  test('a later stricter rule on disjoint methods is not paired', () => {
    expect(pairs({
      rules: [
        { name: 'hooks', hosts: [DOCS_HOST], paths: ['/hooks/**'], methods: ['POST'], allow: 'anonymous' },
        { name: 'hooks-read', paths: ['/hooks/**'], methods: ['GET'], allow: 'authenticated' },
        { name: 'hooks-post', paths: ['/hooks/**'], methods: ['POST'], allow: 'anonymous' },
      ],
    })).toEqual([]);
  });

  test('a later rule that is itself anonymous: the requests are public on every host anyway', () => {
    expect(pairs({
      rules: [anonymousDocs, { name: 'docs-everywhere', paths: ['/docs/**'], allow: 'anonymous' }, { name: 'everything-else', paths: ['/**'], allow: 'authenticated' }],
    })).toEqual([]);
  });

  test('a later stricter rule with hosts is not paired: it is no rule for every host (the default rule still is)', () => {
    expect(pairs({
      rules: [anonymousDocs, { name: 'kubeflow', hosts: ['kubeflow.example.com'], paths: ['/docs/**'], allow: 'authenticated' }],
    })).toEqual([['docs-public', 'default', ['* /docs/**']]]);
  });

  test('an anonymous rule for hosts "*" is not host-scoped', () => {
    expect(pairs({ rules: [{ ...anonymousDocs, hosts: ['*'] }, { name: 'everything-else', paths: ['/**'], allow: 'authenticated' }] })).toEqual([]);
  });

  test('an earlier rule for every host decides the overlap, so the anonymous rule never applies there', () => {
    expect(pairs({
      rules: [
        { name: 'docs-login', paths: ['/docs/**'], allow: 'authenticated' },
        anonymousDocs,
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    })).toEqual([]);
  });

  test('an earlier stricter rule is not "later": only rules after the anonymous one can be bypassed', () => {
    expect(pairs({
      rules: [
        { name: 'admin', paths: ['/docs/admin/**'], allow: { groups: ['admins'] } },
        anonymousDocs,
        { name: 'rest', paths: ['/docs/**'], allow: 'anonymous' },
      ],
    })).toEqual([]);
  });

  test('an audit-mode rule decides nothing: it neither hides a warning nor makes one', () => {
    expect(pairs({
      rules: [
        { name: 'docs-login-audit', paths: ['/docs/**'], allow: 'authenticated', mode: 'audit' },
        anonymousDocs,
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    }).length).toBeGreaterThan(0);
    expect(lint({ rules: [{ name: 'docs-audit', hosts: [DOCS_HOST], paths: ['/**'], allow: 'anonymous', mode: 'audit' }, { name: 'all', paths: ['/**'], allow: 'authenticated' }] })).toEqual([]);
  });

  test('a host pattern with captures is named by a host it matches', () => {
    const [warning] = lint({ rules: [{ name: 'ws-public', hosts: ['{ws}-default.example.org'], paths: ['/**'], allow: 'anonymous' }, { name: 'all', paths: ['/**'], allow: 'authenticated' }] });
    expect(warning!.why).toContain('Host: x-default.example.org');
  });

  test('no host-scoped anonymous rule, no warning', () => {
    expect(lint({ rules: [{ name: 'static', paths: ['/static/**'], allow: 'anonymous' }, { name: 'kf', hosts: ['kf.example.com'], paths: ['/**'], allow: 'authenticated' }] })).toEqual([]);
  });
});

test('overlap paths are templates the real matcher accepts (explain matches requests against them)', () => {
  const warnings = lint({
    rules: [
      { name: 'w', hosts: [DOCS_HOST], paths: ['/w/{a}/{b}/**'], allow: 'anonymous' },
      { name: 'x', paths: ['/w/{b}/{a}/x'], allow: 'deny' },
    ],
  });
  const overlap = warnings[0]!.overlaps[0]!;
  expect(overlap.path).toBe('/w/*/*/x');
  expect(compileTemplate(overlap.path).match(pathSegments('/w/1/2/x'))).not.toBeNull();
});
