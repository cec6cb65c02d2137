/**
 * The Cookie header read once (src/session/cookie-header.ts): the session under exact names only, two
 * copies of it refused, and the header the upstream gets without any cookie of ours, the rest byte for byte.
 */
import { CHUNK_SIZE, chunkSessionValue } from '../../src/session/cookies.js';
import { MAX_COOKIE_PAIRS, findCookie, readCookieHeader, type CookieNames } from '../../src/session/cookie-header.js';

const NAMES: CookieNames = { base: 'oidc_authz', sessionPrefix: '' };
const HOST_NAMES: CookieNames = { base: 'oidc_authz', sessionPrefix: '__Host-' };
const ALICE = 'Fe26.2**alice-seal';
const BOB = 'Fe26.2**bob-seal';
const read = (header: string | undefined, names = NAMES) => readCookieHeader(header, names);

describe('the upstream gets the Cookie header without our cookies', () => {
  test.each<{ what: string; header: string | undefined; upstream: string | null }>([
    { what: 'no header: nothing to change', header: undefined, upstream: null },
    { what: 'none of ours: the header is left as it is', header: 'theme=dark; _ga=GA1.2.3', upstream: null },
    { what: 'the session alone: the header is removed', header: `oidc_authz=${ALICE}`, upstream: '' },
    { what: 'the session first', header: `oidc_authz=${ALICE}; theme=dark; _ga=GA1.2.3`, upstream: 'theme=dark; _ga=GA1.2.3' },
    { what: 'the session in the middle', header: `theme=dark; oidc_authz=${ALICE}; _ga=GA1.2.3`, upstream: 'theme=dark; _ga=GA1.2.3' },
    { what: 'the session last', header: `theme=dark;  _ga=GA1.2.3; oidc_authz=${ALICE}`, upstream: 'theme=dark;  _ga=GA1.2.3' },
    {
      what: 'a chunked session between other cookies',
      header: `a=1; oidc_authz.0=x~2~a; b=2; oidc_authz.1=x~2~b; c=3`,
      upstream: 'a=1; b=2; c=3',
    },
    { what: 'login transactions and the sign-out hand-over', header: 'oidc_authz_login_AbC=t; a=1; oidc_authz_logout=l', upstream: 'a=1' },
    {
      what: 'every prefix form and stray chunk numbers are ours too',
      header: '__Host-oidc_authz=h; __Secure-oidc_authz_login_x=t; a=1; oidc_authz.123=z; oidc_authz.x=y',
      upstream: 'a=1',
    },
    {
      what: 'two Cookie lines joined by Envoy with ","',
      header: `a=1; oidc_authz=${ALICE},b=2; c=3`,
      upstream: 'a=1; b=2; c=3',
    },
    {
      what: 'values with commas, quotes and blanks inside are kept byte for byte',
      header: `json={"a":1,"b":[2,3]}; oidc_authz=${ALICE}; q="quoted value"; sp=a b; eq=a=b=c`,
      upstream: 'json={"a":1,"b":[2,3]}; q="quoted value"; sp=a b; eq=a=b=c',
    },
    { what: 'a cookie without "=" is kept', header: `lonely; oidc_authz=${ALICE}; a=1`, upstream: 'lonely; a=1' },
    {
      what: 'look-alike names are not ours',
      header: `oidc_authzX=1; my_oidc_authz=2; oidc_authz_prefs=3; oidc_authz=${ALICE}`,
      upstream: 'oidc_authzX=1; my_oidc_authz=2; oidc_authz_prefs=3',
    },
    { what: 'empty pairs around ours', header: `;; oidc_authz=${ALICE};; a=1;`, upstream: 'a=1' },
  ])('$what', ({ header, upstream }) => {
    expect(read(header).upstream).toBe(upstream);
  });
});

describe('the session is read under exact names only', () => {
  test('a session smuggled in after a space is part of another cookie\'s value, not a session', () => {
    const view = read(`oidc_authz=${ALICE}; prefs=x oidc_authz=${BOB}`);
    expect(view.session).toEqual({ kind: 'present', value: ALICE, names: ['oidc_authz'] });
    expect(view.upstream).toBe(`prefs=x oidc_authz=${BOB}`);
  });

  test('a session smuggled in after "," (inside a cookie value a script set) is removed, never read', () => {
    const view = read(`oidc_authz=${ALICE}; prefs=x,oidc_authz=${BOB}`);
    expect(view.session).toEqual({ kind: 'present', value: ALICE, names: ['oidc_authz'] });
    expect(view.upstream).toBe('prefs=x');
    expect(read(`prefs=x,oidc_authz=${BOB}`).session).toEqual({ kind: 'none' });
  });

  test('with cookie prefixes on, a __Host- session after "," is not read either (the cookie is named "prefs": no browser rule stops it)', () => {
    expect(read(`prefs=x,__Host-oidc_authz=${BOB}`, HOST_NAMES)).toEqual({ session: { kind: 'none' }, upstream: 'prefs=x', overflow: false });
    expect(read(`__Host-oidc_authz=${ALICE}; prefs=x,__Host-oidc_authz=${BOB}`, HOST_NAMES).session).toEqual({ kind: 'present', value: ALICE, names: ['__Host-oidc_authz'] });
  });

  test('chunk names are read only as written by us (.0 … .11); others are removed, never read', () => {
    const view = read('oidc_authz.00=a; oidc_authz.12=b; oidc_authz.99=c; oidc_authz.01=d; x=1');
    expect(view).toEqual({ session: { kind: 'none' }, upstream: 'x=1', overflow: false });
    expect(read('oidc_authz.11=a').session).toMatchObject({ kind: 'invalid', names: ['oidc_authz.11'] });
    expect(read('oidc_authz.10=a').session).toMatchObject({ kind: 'invalid', names: ['oidc_authz.10'] });
  });

  test.each<{ what: string; header: string }>([
    { what: 'a plain duplicate', header: `oidc_authz=${ALICE}; oidc_authz=${BOB}` },
    { what: 'the same value twice', header: `oidc_authz=${ALICE}; oidc_authz=${ALICE}` },
    { what: 'a duplicate chunk', header: 'oidc_authz.0=t~2~a; oidc_authz.1=t~2~b; oidc_authz.1=u~2~c' },
    { what: 'two chunk sets', header: 'oidc_authz.0=t~2~a; oidc_authz.1=t~2~b; oidc_authz.0=u~2~c; oidc_authz.1=u~2~d' },
  ])('two copies are invalid: $what', ({ header }) => {
    const view = read(header);
    expect(view.session.kind).toBe('invalid');
    expect(view.session.kind === 'invalid' && view.session.reason).toBe('duplicate');
    expect(view.upstream).toBe('');
  });

  test('a chunked session round-trips amid other cookies', () => {
    const sealed = 'S'.repeat(2 * CHUNK_SIZE + 10);
    const chunks = chunkSessionValue('oidc_authz', sealed);
    const header = `a=1; ${chunks.map((c) => `${c.name}=${c.value}`).join('; ')}; b=2`;
    expect(read(header)).toEqual({ session: { kind: 'present', value: sealed, names: chunks.map((c) => c.name) }, upstream: 'a=1; b=2', overflow: false });
  });

  test('with cookie prefixes on, only __Host-<name> is the session; the unprefixed one is removed but not read', () => {
    const view = read(`oidc_authz=${BOB}; __Host-oidc_authz=${ALICE}; a=1`, HOST_NAMES);
    expect(view.session).toEqual({ kind: 'present', value: ALICE, names: ['__Host-oidc_authz'] });
    expect(view.upstream).toBe('a=1');
    expect(read(`oidc_authz=${BOB}; a=1`, HOST_NAMES).session).toEqual({ kind: 'none' });
  });

  test('a value longer than any cookie we set is not ours to unseal', () => {
    expect(read(`oidc_authz=${'x'.repeat(CHUNK_SIZE + 65)}`).session).toMatchObject({ kind: 'invalid', reason: 'oversized' });
    expect(read(`oidc_authz=${'x'.repeat(CHUNK_SIZE + 64)}`).session).toMatchObject({ kind: 'present' });
  });
});

describe('hostile headers', () => {
  test('59 KB of repeated "oidc_authz= " is one cookie with a 59 KB value: invalid, not unsealed', () => {
    const header = 'oidc_authz= '.repeat(5000);
    const view = read(header);
    expect(view.session).toEqual({ kind: 'invalid', reason: 'oversized', names: ['oidc_authz'] });
    expect(view.upstream).toBe('');
  });

  test('thousands of empty session cookies are two copies at the second one', () => {
    expect(read('oidc_authz=;'.repeat(900)).session).toMatchObject({ kind: 'invalid', reason: 'duplicate' });
  });

  test('empty pairs count toward the limit (";;;…" costs a step each)', () => {
    expect(read(`${';'.repeat(MAX_COOKIE_PAIRS)} oidc_authz=${ALICE}`).overflow).toBe(true);
    expect(read(`${';'.repeat(MAX_COOKIE_PAIRS - 1)}oidc_authz=${ALICE}`).overflow).toBe(false);
  });

  test(`more than ${MAX_COOKIE_PAIRS} pairs: reading stops, nothing in it is trusted`, () => {
    const header = `${'a=1;'.repeat(MAX_COOKIE_PAIRS)} oidc_authz=${ALICE}`;
    expect(read(header)).toEqual({ session: { kind: 'none' }, upstream: null, overflow: true });
    expect(read(`${'a=1;'.repeat(MAX_COOKIE_PAIRS - 1)} oidc_authz=${ALICE}`)).toMatchObject({ session: { kind: 'present', value: ALICE }, overflow: false });
    expect(findCookie(`${'a=1;'.repeat(MAX_COOKIE_PAIRS)} b=2`, 'b')).toBeNull();
  });
});

describe('findCookie', () => {
  test.each<{ what: string; header: string | undefined; value: string | null }>([
    { what: 'no header', header: undefined, value: null },
    { what: 'absent', header: 'a=1; bb=2', value: null },
    { what: 'present, blanks trimmed', header: 'a=1;  b = two ; c=3', value: 'two' },
    { what: 'after "," (another Cookie line, or inside a value): not read', header: 'a=1,b=2', value: null },
    { what: 'the one before "; " is read, the one after "," is not', header: 'b=1; a=x,b=2', value: '1' },
    { what: 'twice: neither', header: 'b=1; a=0; b=2', value: null },
    { what: 'inside another value after a space: not a cookie', header: 'a=x b=2', value: null },
    { what: 'a longer name is another cookie', header: 'bb=1; b_=2', value: null },
    { what: 'an empty value', header: 'b=', value: '' },
  ])('$what', ({ header, value }) => {
    expect(findCookie(header, 'b')).toBe(value);
  });
});
