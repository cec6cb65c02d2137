import { normalizePath } from '../../src/check/normalize.js';

describe('normalizePath', () => {
  test('keeps a plain path as is', () => {
    expect(normalizePath('/a/b')).toEqual({ ok: true, path: '/a/b' });
  });
});
