/**
 * The test browser's cookie jar and form parser (test/support/browser.ts): the rules the login-flow
 * tests depend on, checked without a server.
 */
import { CookieJar, parseForms } from '../support/browser.js';

const A = 'http://127.0.0.1:4000';
const B = 'http://127.0.0.1:5000';

test('cookies are scoped to host:port', () => {
  const jar = new CookieJar();
  jar.storeSetCookie(`${A}/x`, 'sid=1; Path=/');
  expect(jar.header(`${A}/anything`)).toBe('sid=1');
  expect(jar.header(`${B}/anything`)).toBeUndefined();
  expect(jar.list(B)).toEqual([]);
  expect(jar.list(A)).toHaveLength(1);
});

test('Path: explicit, default (directory of the request path), and matching on segment boundaries', () => {
  const jar = new CookieJar();
  jar.storeSetCookie(`${A}/dex/interaction/abc`, 'i=1; Path=/dex/interaction/abc');
  jar.storeSetCookie(`${A}/oauth2/callback`, 'd=2'); // default path /oauth2
  expect(jar.header(`${A}/dex/interaction/abc`)).toBe('i=1');
  expect(jar.header(`${A}/dex/interaction/abcd`)).toBeUndefined();
  expect(jar.header(`${A}/dex/interaction/abc/more`)).toBe('i=1');
  expect(jar.get(`${A}/oauth2/start`, 'd')?.path).toBe('/oauth2');
  expect(jar.header(`${A}/oauth2x`)).toBeUndefined();
  expect(jar.header(`${A}/`)).toBeUndefined();
});

test('same name on different paths: both kept, the longer path sent first', () => {
  const jar = new CookieJar();
  jar.storeSetCookie(`${A}/`, 'n=root; Path=/');
  jar.storeSetCookie(`${A}/`, 'n=deep; Path=/a/b');
  expect(jar.header(`${A}/a/b/c`)).toBe('n=deep; n=root');
  expect(jar.get(`${A}/a/b/c`, 'n')?.value).toBe('deep');
  expect(jar.get(`${A}/z`, 'n')?.value).toBe('root');
});

test('Max-Age and Expires: future keeps, past or zero deletes, and time is the injected clock', () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const jar = new CookieJar({ now: () => now });
  jar.storeSetCookie(A, 'short=1; Max-Age=60; Path=/');
  jar.storeSetCookie(A, 'dated=1; Expires=Tue, 01 Jan 2030 00:10:00 GMT; Path=/');
  jar.storeSetCookie(A, 'both=1; Max-Age=600; Expires=Tue, 01 Jan 2030 00:00:01 GMT; Path=/'); // Max-Age wins
  expect(jar.list(A).map((c) => c.name)).toEqual(['short', 'dated', 'both']);
  now += 61_000;
  expect(jar.list(A).map((c) => c.name)).toEqual(['dated', 'both']);
  now += 10 * 60_000;
  expect(jar.list(A)).toEqual([]);

  jar.storeSetCookie(A, 'gone=1; Path=/');
  jar.storeSetCookie(A, 'gone=; Max-Age=0; Path=/');
  jar.storeSetCookie(A, 'old=1; Path=/');
  jar.storeSetCookie(A, 'old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/');
  expect(jar.list(A)).toEqual([]);
});

test('Secure cookies over http: kept and sent by default, refused with secureOverHttp: false', () => {
  const lenient = new CookieJar();
  expect(lenient.storeSetCookie(A, '__Host-session=s; Path=/; Secure; HttpOnly; SameSite=Lax')).toBe(true);
  expect(lenient.get(A, '__Host-session')).toMatchObject({ secure: true, httpOnly: true, sameSite: 'lax' });
  expect(lenient.header(A)).toBe('__Host-session=s');

  const strict = new CookieJar({ secureOverHttp: false });
  expect(strict.storeSetCookie(A, 'sid=s; Path=/; Secure')).toBe(false);
  expect(strict.header(A)).toBeUndefined();
  expect(strict.storeSetCookie('https://example.test/', 'sid=s; Path=/; Secure')).toBe(true);
  expect(strict.header('https://example.test/')).toBe('sid=s');
});

test('__Secure- and __Host- prefixes are enforced as browsers do', () => {
  const jar = new CookieJar();
  expect(jar.storeSetCookie(A, '__Secure-a=1; Path=/')).toBe(false);
  expect(jar.storeSetCookie(A, '__Host-b=1; Secure')).toBe(false); // no Path=/
  expect(jar.storeSetCookie(A, '__Host-c=1; Secure; Path=/; Domain=127.0.0.1')).toBe(false);
  expect(jar.storeSetCookie(A, '__Secure-d=1; Secure; Path=/x')).toBe(true);
  expect(jar.list(A).map((c) => c.name)).toEqual(['__Secure-d']);
});

test('set, get, delete and list let tests tamper with cookies', () => {
  const jar = new CookieJar();
  jar.set(A, 'session', 'original');
  jar.set(A, 'session', 'tampered');
  jar.set(A, 'other', 'x', { path: '/p', secure: true });
  expect(jar.get(A, 'session')?.value).toBe('tampered');
  expect(jar.list(A)).toHaveLength(2);
  expect(jar.delete(A, 'session')).toBe(1);
  expect(jar.delete(A, 'session')).toBe(0);
  expect(jar.list(A).map((c) => `${c.name}@${c.path}`)).toEqual(['other@/p']);
  jar.clear();
  expect(jar.list()).toEqual([]);
});

test('storeFromResponse applies every Set-Cookie header', () => {
  const jar = new CookieJar();
  const headers = new Headers();
  headers.append('set-cookie', 'a=1; Path=/');
  headers.append('set-cookie', 'b=2; Path=/; Domain=127.0.0.1');
  jar.storeFromResponse(`${A}/`, headers);
  expect(jar.header(A)).toBe('a=1; b=2');
  expect(jar.get(A, 'b')?.domain).toBe('127.0.0.1');
});

test('parseForms: action resolved, entities decoded, only submitted inputs listed', () => {
  const html = `
    <form id="op.logoutForm" method="post" action="/dex/session/end/confirm?x=1&amp;y=2">
      <input type="hidden" name="xsrf" value="a&quot;b"/>
      <input type="checkbox" name="remember">
      <input type="checkbox" name="agree" checked>
      <input type="submit" name="go" value="Go">
      <input name="plain" value='single'>
      <textarea name="note">x &lt; y</textarea>
    </form>
    <form><input type="password" name="pw"></form>`;
  expect(parseForms(html, 'http://127.0.0.1:9/dex/session/end')).toEqual([
    {
      id: 'op.logoutForm',
      action: 'http://127.0.0.1:9/dex/session/end/confirm?x=1&y=2',
      method: 'POST',
      inputs: [
        { name: 'xsrf', type: 'hidden', value: 'a"b' },
        { name: 'agree', type: 'checkbox', value: 'on' },
        { name: 'plain', type: 'text', value: 'single' },
        { name: 'note', type: 'textarea', value: 'x < y' },
      ],
    },
    { id: undefined, action: 'http://127.0.0.1:9/dex/session/end', method: 'GET', inputs: [{ name: 'pw', type: 'password', value: '' }] },
  ]);
});
