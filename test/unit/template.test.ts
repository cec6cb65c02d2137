import { compileHostPattern, compileTemplate, NO_PARAMS, pathSegments, TemplateError, type PathParams } from '../../src/policy/template.js';

describe('pathSegments', () => {
  test.each<{ what: string; path: string; expected: string[] }>([
    { what: 'the root has no segments', path: '/', expected: [] },
    { what: 'one segment', path: '/a', expected: ['a'] },
    { what: 'several segments', path: '/a/b/c', expected: ['a', 'b', 'c'] },
    { what: 'a trailing slash adds no empty segment', path: '/a/b/', expected: ['a', 'b'] },
    { what: 'segments are not decoded or lowered', path: '/A%41/b c', expected: ['A%41', 'b c'] },
  ])('$what', ({ path, expected }) => {
    expect(pathSegments(path)).toEqual(expected);
  });
});

describe('compileTemplate matches normalized paths', () => {
  test.each<{ what: string; template: string; path: string; expected: PathParams | null }>([
    // Literals.
    { what: 'a literal matches itself', template: '/favicon.ico', path: '/favicon.ico', expected: {} },
    { what: 'a literal does not match another literal', template: '/favicon.ico', path: '/favicon.png', expected: null },
    { what: 'a literal is case-sensitive', template: '/static/x', path: '/STATIC/x', expected: null },
    { what: 'a literal does not match a prefix of itself', template: '/admin', path: '/adm', expected: null },
    { what: 'a literal does not match a longer segment', template: '/admin', path: '/administrator', expected: null },
    { what: 'a literal does not match deeper paths', template: '/admin', path: '/admin/x', expected: null },
    { what: 'a literal does not match a shorter path', template: '/a/b', path: '/a', expected: null },
    { what: 'a decoded literal with a space matches', template: '/a b', path: '/a b', expected: {} },
    // Trailing slash, both sides.
    { what: 'a template without trailing slash matches a path with one', template: '/admin', path: '/admin/', expected: {} },
    { what: 'a template with trailing slash matches a path without one', template: '/admin/', path: '/admin', expected: {} },
    { what: 'a template with trailing slash matches a path with one', template: '/admin/', path: '/admin/', expected: {} },
    // Root.
    { what: 'the root template matches the root', template: '/', path: '/', expected: {} },
    { what: 'the root template does not match anything deeper', template: '/', path: '/a', expected: null },
    // {name} captures.
    { what: 'a parameter captures one segment', template: '/workspaces/{ws}', path: '/workspaces/alice', expected: { ws: 'alice' } },
    { what: 'a parameter keeps the segment as is (case, dots)', template: '/workspaces/{ws}', path: '/workspaces/Al.ice', expected: { ws: 'Al.ice' } },
    { what: 'a parameter does not match a missing segment', template: '/workspaces/{ws}', path: '/workspaces', expected: null },
    { what: 'a parameter does not match two segments', template: '/workspaces/{ws}', path: '/workspaces/a/b', expected: null },
    { what: 'several parameters are captured', template: '/{ns}/{app}/x', path: '/kubeflow/jupyter/x', expected: { ns: 'kubeflow', app: 'jupyter' } },
    { what: 'a parameter named like an Object.prototype member is an own capture', template: '/{constructor}', path: '/x', expected: { constructor: 'x' } },
    // * (one segment).
    { what: '"*" matches any one segment', template: '/a/*/c', path: '/a/anything/c', expected: {} },
    { what: '"*" does not match zero segments', template: '/a/*', path: '/a', expected: null },
    { what: '"*" does not match two segments', template: '/a/*', path: '/a/b/c', expected: null },
    { what: '"*" captures nothing', template: '/*', path: '/x', expected: {} },
    // ** (zero or more, last only).
    { what: '"**" matches zero segments', template: '/static/**', path: '/static', expected: {} },
    { what: '"**" matches zero segments with a trailing slash', template: '/static/**', path: '/static/', expected: {} },
    { what: '"**" matches one segment', template: '/static/**', path: '/static/app.js', expected: {} },
    { what: '"**" matches many segments', template: '/static/**', path: '/static/a/b/c.js', expected: {} },
    { what: '"**" does not match another prefix', template: '/static/**', path: '/staticx/a', expected: null },
    { what: '"**" does not match a shorter path', template: '/a/b/**', path: '/a', expected: null },
    { what: '"/**" matches the root', template: '/**', path: '/', expected: {} },
    { what: '"/**" matches any path', template: '/**', path: '/a/b/c', expected: {} },
    { what: '"**" after a parameter captures the parameter', template: '/workspaces/{ws}/**', path: '/workspaces/alice/files/x', expected: { ws: 'alice' } },
    { what: '"**" after a parameter matches when nothing follows', template: '/workspaces/{ws}/**', path: '/workspaces/alice', expected: { ws: 'alice' } },
    { what: '"**" after a parameter still needs the parameter', template: '/workspaces/{ws}/**', path: '/workspaces', expected: null },
  ])('$what', ({ template, path, expected }) => {
    expect(compileTemplate(template).match(pathSegments(path))).toEqual(expected);
  });

  test('a parameter named "__proto__" is captured as an own property, not swallowed by the prototype setter', () => {
    const params = compileTemplate('/t/{__proto__}').match(['t', 'admins']);
    expect(params === null ? undefined : Object.getOwnPropertyDescriptor(params, '__proto__')?.value).toBe('admins');
  });

  test('a template without parameters returns the shared frozen NO_PARAMS', () => {
    expect(compileTemplate('/a/*/**').match(['a', 'b'])).toBe(NO_PARAMS);
    expect(Object.isFrozen(NO_PARAMS)).toBe(true);
  });

  test.each<{ what: string; template: string; expected: string[] }>([
    { what: 'no parameters', template: '/a/*/**', expected: [] },
    { what: 'parameters in order', template: '/{ns}/x/{app}/**', expected: ['ns', 'app'] },
  ])('paramNames lists $what', ({ template, expected }) => {
    expect(compileTemplate(template).paramNames).toEqual(expected);
  });

  test('the source is kept as written', () => {
    expect(compileTemplate('/admin/').source).toBe('/admin/');
  });
});

describe('compileTemplate refuses templates that could not mean one thing', () => {
  test.each<{ what: string; template: string; message: RegExp }>([
    { what: '"**" before another segment', template: '/a/**/b', message: /"\*\*" may only be the last segment/ },
    { what: '"**" twice', template: '/**/**', message: /"\*\*" may only be the last segment/ },
    { what: 'the same parameter twice', template: '/{ws}/x/{ws}', message: /parameter \{ws\} appears twice/ },
    { what: 'an empty segment ("//")', template: '/a//b', message: /empty segment/ },
    { what: 'only "//"', template: '//', message: /empty segment/ },
    { what: 'a "." segment', template: '/a/./b', message: /"\." and "\.\." segments/ },
    { what: 'a ".." segment', template: '/a/../b', message: /"\." and "\.\." segments/ },
    { what: 'a partial wildcard "a*"', template: '/a*', message: /only as a whole segment/ },
    { what: 'a partial wildcard "*.js"', template: '/static/*.js', message: /only as a whole segment/ },
    { what: 'a partial double wildcard "a**"', template: '/a**', message: /"\*\*" only as the whole last segment/ },
    { what: 'a wildcard beside a capture', template: '/{ws}*', message: /only as a whole segment/ },
    { what: 'a parameter name starting with a digit', template: '/{1ws}', message: /only around a parameter name/ },
    { what: 'an empty parameter name', template: '/{}', message: /only around a parameter name/ },
    { what: 'an unclosed brace', template: '/{ws', message: /only around a parameter name/ },
    { what: 'a stray closing brace', template: '/ws}.x', message: /only around a parameter name/ },
    { what: 'two captures side by side', template: '/{ws}{collection}', message: /\{ws\}\{collection\} is ambiguous, two captures need literal text between them/ },
    { what: 'two captures side by side after text', template: '/c-{a}{b}.json', message: /ambiguous/ },
    { what: 'the same parameter twice in one segment', template: '/{a}.{a}', message: /parameter \{a\} appears twice/ },
    { what: 'the same parameter in a mixed and a whole segment', template: '/{a}/x-{a}', message: /parameter \{a\} appears twice/ },
    { what: 'a "%" escape', template: '/a%2fb', message: /write it decoded/ },
    { what: 'a ";" parameter', template: '/a;x=1', message: /write it decoded/ },
    { what: 'a backslash', template: '/a\\b', message: /write it decoded/ },
    { what: 'a control character', template: '/a\nb', message: /write it decoded/ },
    { what: 'no leading slash', template: 'admin/**', message: /must start with "\/"/ },
    { what: 'an empty template', template: '', message: /must start with "\/"/ },
  ])('$what', ({ template, message }) => {
    expect(() => compileTemplate(template)).toThrow(TemplateError);
    expect(() => compileTemplate(template)).toThrow(message);
  });
});

describe('compileHostPattern without captures (globs)', () => {
  test.each<{ what: string; glob: string; host: string; expected: boolean }>([
    { what: 'an exact host matches itself', glob: 'kubeflow.example.com', host: 'kubeflow.example.com', expected: true },
    { what: 'an exact host does not match a sub-domain', glob: 'example.com', host: 'a.example.com', expected: false },
    { what: 'an exact host does not match a longer name', glob: 'example.com', host: 'example.com.evil.net', expected: false },
    { what: 'an exact host does not match a suffix of itself', glob: 'kubeflow.example.com', host: 'example.com', expected: false },
    { what: '"*.example.com" matches a sub-domain', glob: '*.example.com', host: 'kubeflow.example.com', expected: true },
    { what: '"*.example.com" matches a deeper sub-domain', glob: '*.example.com', host: 'a.b.example.com', expected: true },
    { what: '"*.example.com" does not match the apex', glob: '*.example.com', host: 'example.com', expected: false },
    { what: '"*.example.com" does not match "evil-example.com"', glob: '*.example.com', host: 'evil-example.com', expected: false },
    { what: '"*.example.com" does not match "evilexample.com"', glob: '*.example.com', host: 'evilexample.com', expected: false },
    { what: '"*.example.com" does not match ".example.com" (empty label)', glob: '*.example.com', host: '.example.com', expected: false },
    { what: '"*.example.com" does not match a host that only contains it', glob: '*.example.com', host: 'a.example.com.evil.net', expected: false },
    { what: '"*" matches any host', glob: '*', host: 'anything.example.org', expected: true },
    { what: '"*" matches an IPv6 literal', glob: '*', host: '[::1]', expected: true },
  ])('$what', ({ glob, host, expected }) => {
    expect(compileHostPattern(glob).match(host) !== null).toBe(expected);
  });
});

describe('a segment mixing text and captures: one capture ends at the first occurrence of the text after it', () => {
  test.each<{ what: string; template: string; path: string; expected: PathParams | null }>([
    // EOEPCA's collections: the workspace is the text before the first dot.
    { what: 'text before the first dot, the rest after it', template: '/stac/collections/{ws}.{collection}', path: '/stac/collections/ws-alice.crops', expected: { ws: 'ws-alice', collection: 'crops' } },
    { what: 'the last capture keeps further dots', template: '/stac/collections/{ws}.{collection}', path: '/stac/collections/ws-alice.crops.v2', expected: { ws: 'ws-alice', collection: 'crops.v2' } },
    { what: 'no dot: no match (a public collection is another rule)', template: '/stac/collections/{ws}.{collection}', path: '/stac/collections/sentinel-2', expected: null },
    { what: 'a leading dot leaves the first capture empty: no match', template: '/c/{ws}.{collection}', path: '/c/.crops', expected: null },
    { what: 'a trailing dot leaves the last capture empty: no match', template: '/c/{ws}.{collection}', path: '/c/ws-alice.', expected: null },
    { what: 'a capture never contains the text after it, even at its start ("..x": ws would be empty)', template: '/c/{ws}.{collection}', path: '/c/..x', expected: null },
    { what: 'the last capture may hold the text that separates ("a..b": collection ".b")', template: '/c/{ws}.{collection}', path: '/c/a..b', expected: { ws: 'a', collection: '.b' } },
    { what: 'a suffix right at the start leaves the capture empty: no match', template: '/ui/{ws}-default', path: '/ui/-default-default', expected: null },
    { what: 'deeper paths after a mixed segment with "**"', template: '/stac/collections/{ws}.{collection}/**', path: '/stac/collections/ws-a.b/items/1', expected: { ws: 'ws-a', collection: 'b' } },
    // Literal prefix and suffix.
    { what: 'a suffix', template: '/ui/{ws}-default', path: '/ui/ws-alice-default', expected: { ws: 'ws-alice' } },
    { what: 'a prefix and a suffix', template: '/ui/editor-{ws}-default', path: '/ui/editor-ws-alice-default', expected: { ws: 'ws-alice' } },
    { what: 'the prefix must be there', template: '/ui/editor-{ws}-default', path: '/ui/ws-alice-default', expected: null },
    { what: 'the suffix must be there', template: '/ui/{ws}-default', path: '/ui/ws-alice', expected: null },
    { what: 'the text after the split must be all that is left', template: '/ui/{ws}-default', path: '/ui/ws-alice-default-x', expected: null },
    { what: 'no backtracking: the first "-default" ends the capture, so a repeated suffix does not match', template: '/ui/{ws}-default', path: '/ui/a-default-default', expected: null },
    { what: 'the prefix alone (an empty capture) does not match', template: '/ui/editor-{ws}', path: '/ui/editor-', expected: null },
    { what: 'matching stays case-sensitive', template: '/ui/{ws}-Default', path: '/ui/ws-default', expected: null },
    { what: 'text-only segments around captures in several segments', template: '/{ns}/v-{version}/{file}.json', path: '/kf/v-2/run.json', expected: { ns: 'kf', version: '2', file: 'run' } },
    { what: 'a capture followed by text that repeats inside the segment stops at the first', template: '/f/{name}.tar.gz', path: '/f/a.tar.gz', expected: { name: 'a' } },
    { what: 'the whole following text is searched for, not its first character ("a.b.tar.gz": name "a.b")', template: '/f/{name}.tar.gz', path: '/f/a.b.tar.gz', expected: { name: 'a.b' } },
  ])('$what', ({ template, path, expected }) => {
    const params = compileTemplate(template).match(pathSegments(path));
    expect(params === null ? null : { ...params }).toEqual(expected);
  });

  test('a mixed segment without captures is impossible: literal text is a literal segment', () => {
    expect(compileTemplate('/a.b').segments).toEqual([{ kind: 'literal', value: 'a.b' }]);
  });

  test('paramNames and the sample name every capture in order', () => {
    const template = compileTemplate('/{ns}/editor-{ws}-default/{a}.{b}/**');
    expect(template.paramNames).toEqual(['ns', 'ws', 'a', 'b']);
    expect(template.sample).toBe('/x/editor-x-default/x.x');
  });
});

describe('compileHostPattern with captures: one label each, never a dot', () => {
  test.each<{ what: string; pattern: string; host: string; expected: PathParams | null }>([
    { what: 'the first label', pattern: '{ws}.lab.example.org', host: 'ws-alice.lab.example.org', expected: { ws: 'ws-alice' } },
    { what: 'the first label must be one label', pattern: '{ws}.lab.example.org', host: 'a.b.lab.example.org', expected: null },
    { what: 'the domain must be the same', pattern: '{ws}.lab.example.org', host: 'ws-alice.lab.example.org.evil.net', expected: null },
    { what: 'the apex alone does not match', pattern: '{ws}.lab.example.org', host: 'lab.example.org', expected: null },
    { what: 'a suffix inside the label', pattern: '{ws}-default.lab.example.org', host: 'ws-alice-default.lab.example.org', expected: { ws: 'ws-alice' } },
    { what: 'a prefix and a suffix inside the label', pattern: 'editor-{ws}-default.lab.example.org', host: 'editor-ws-alice-default.lab.example.org', expected: { ws: 'ws-alice' } },
    { what: 'a suffix after the marker', pattern: '{ws}-default-editor.lab.example.org', host: 'ws-alice-default-editor.lab.example.org', expected: { ws: 'ws-alice' } },
    { what: 'without the marker: no match', pattern: '{ws}-default.lab.example.org', host: 'ws-alice.lab.example.org', expected: null },
    { what: 'captures in two labels', pattern: '{app}.{ws}.apps.example.org', host: 'jupyter.ws-bob.apps.example.org', expected: { app: 'jupyter', ws: 'ws-bob' } },
    { what: 'a capture under "*." (any sub-domain in front)', pattern: '*.{ws}.example.org', host: 'a.b.ws-c.example.org', expected: { ws: 'ws-c' } },
    { what: '"*." still needs a label in front', pattern: '*.{ws}.example.org', host: 'ws-c.example.org', expected: null },
    { what: 'an empty label never matches', pattern: '*.{ws}.example.org', host: '.ws-c.example.org', expected: null },
    { what: 'an IPv6 literal is not a name', pattern: '{ws}.example.org', host: '[::1]', expected: null },
  ])('$what', ({ pattern, host, expected }) => {
    const params = compileHostPattern(pattern).match(host);
    expect(params === null ? null : { ...params }).toEqual(expected);
  });

  test.each<{ what: string; pattern: string; message: RegExp }>([
    { what: '"*" after the first label', pattern: 'a.*.example.org', message: /only as the first label/ },
    { what: '"*" inside a label', pattern: 'ws-*.example.org', message: /only as a whole label/ },
    { what: 'an empty label', pattern: 'a..example.org', message: /empty label/ },
    { what: 'two captures side by side', pattern: '{a}{b}.example.org', message: /ambiguous/ },
    { what: 'the same capture in two labels', pattern: '{ws}.{ws}.example.org', message: /appears twice/ },
  ])('refuses $what', ({ pattern, message }) => {
    expect(() => compileHostPattern(pattern)).toThrow(message);
  });
});
