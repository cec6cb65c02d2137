/**
 * The Authorization header's Bearer token (src/authn/authenticate.ts bearerTokenOf): the scheme in any case,
 * exactly one token, other schemes not ours.
 */
import { bearerTokenOf } from '../../src/authn/authenticate.js';

test.each<[string | string[] | undefined, string | null]>([
  ['Bearer abc.def.ghi', 'abc.def.ghi'],
  ['bearer abc', 'abc'],
  ['BEARER abc', 'abc'],
  ['BeArEr abc ', 'abc'],
  ['Bearer ', ''],
  ['Bearer a b', ''],
  ['Bearer  abc', 'abc'],
  ['Basic YWxhZGRpbjpvcGVuc2VzYW1l', null],
  ['Bearerabc', null],
  ['Bearer', null],
  ['Bearar abc', null],
  ['BEARE\u0012 abc', null],
  ['Token abc', null],
  [undefined, null],
  [['Bearer a', 'Bearer b'], null],
])('%j → %j', (header, token) => {
  expect(bearerTokenOf(header)).toBe(token);
});
