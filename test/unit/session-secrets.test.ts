/**
 * Cookie secrets (src/session/secrets.ts, DESIGN.md §5): one per line, the first seals, every line
 * unseals, ids derived from the secret so they survive rotation; short secrets, empty and unreadable
 * files are refused with a SecretsError that never contains a secret.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIN_SECRET_LENGTH, readSecretsFile, SecretsError, secretsFromLines, type SealingSecrets } from '../../src/session/secrets.js';

const A = 'first-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = 'second-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbb';
const C = 'third-secret-cccccccccccccccccccccccccccc';
const EXACTLY_32 = 'x'.repeat(32);
const SHORT_31 = 'short-secret-ssssssssssssssssss'; // 31 characters

const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-secrets-'));
let fileCount = 0;
function fileWith(text: string): string {
  const file = join(dir, `secrets-${fileCount++}`);
  writeFileSync(file, text);
  return file;
}

const idOf = (secrets: SealingSecrets, secret: string): string => {
  const entry = Object.entries(secrets.unseal).find(([, s]) => s === secret);
  if (entry === undefined) throw new Error('secret not found');
  return entry[0];
};

describe('secretsFromLines: the first line seals, every line unseals', () => {
  test.each<{ what: string; lines: string[]; seal: string; unseal: string[] }>([
    { what: 'one secret seals and unseals', lines: [A], seal: A, unseal: [A] },
    { what: 'two secrets: the first seals, both unseal', lines: [B, A], seal: B, unseal: [A, B] },
    { what: 'three secrets: the first seals, all unseal', lines: [C, B, A], seal: C, unseal: [A, B, C] },
    { what: 'blank lines and comments are ignored', lines: ['', '# rotated 2026-11', A, '   ', '#B', B, ''], seal: A, unseal: [A, B] },
    { what: 'a comment before the first secret does not seal', lines: [`# ${A}`, B], seal: B, unseal: [B] },
    { what: 'surrounding whitespace and a carriage return are trimmed', lines: [`  ${A}\t\r`, ` ${B}`], seal: A, unseal: [A, B] },
    { what: 'exactly 32 characters is long enough', lines: [EXACTLY_32], seal: EXACTLY_32, unseal: [EXACTLY_32] },
    { what: 'a repeated secret is one entry', lines: [A, A], seal: A, unseal: [A] },
  ])('$what', ({ lines, seal, unseal }) => {
    const secrets = secretsFromLines(lines);
    expect(Object.values(secrets.seal)).toEqual([seal]);
    expect(Object.keys(secrets.seal)).toHaveLength(1);
    expect(Object.values(secrets.unseal).sort()).toEqual([...unseal].sort());
    expect(secrets.unseal[Object.keys(secrets.seal)[0]!]).toBe(seal);
  });

  test('ids are positive integers (iron-session reads them as numbers) and differ between secrets', () => {
    const secrets = secretsFromLines([C, B, A]);
    const ids = Object.keys(secrets.unseal);
    expect(ids).toHaveLength(3);
    for (const id of ids) expect(id).toMatch(/^[1-9][0-9]*$/);
    expect(new Set(ids).size).toBe(3);
  });

  test.each<{ what: string; before: string[]; after: string[]; secret: string }>([
    { what: 'a new first line keeps the old first secret\'s id', before: [A], after: [B, A], secret: A },
    { what: 'a new first line keeps every old id (first of two)', before: [B, A], after: [C, B, A], secret: B },
    { what: 'a new first line keeps every old id (second of two)', before: [B, A], after: [C, B, A], secret: A },
    { what: 'dropping the last line keeps the remaining ids', before: [C, B, A], after: [C, B], secret: B },
    { what: 'dropping the last line keeps the sealing id', before: [C, B, A], after: [C, B], secret: C },
    { what: 'comments and blank lines do not change ids', before: [A], after: ['# new', '', A], secret: A },
  ])('$what', ({ before, after, secret }) => {
    expect(idOf(secretsFromLines(after), secret)).toBe(idOf(secretsFromLines(before), secret));
  });

  test('the sealing id after rotation is the new secret\'s id, not the old one', () => {
    const before = secretsFromLines([A]);
    const after = secretsFromLines([B, A]);
    expect(Object.keys(after.seal)).toEqual([idOf(after, B)]);
    expect(Object.keys(after.seal)).not.toEqual(Object.keys(before.seal));
  });

  test('MIN_SECRET_LENGTH is 32', () => {
    expect(MIN_SECRET_LENGTH).toBe(32);
  });
});

describe('secretsFromLines refuses', () => {
  test.each<{ what: string; lines: string[]; message: RegExp; secret?: string }>([
    { what: 'a short only secret (line 1)', lines: [SHORT_31], message: /line 1\b.*shorter than 32 characters/, secret: SHORT_31 },
    { what: 'a short second secret (line 2)', lines: [A, SHORT_31], message: /line 2\b.*shorter than 32 characters/, secret: SHORT_31 },
    { what: 'a short third secret (line 3)', lines: [A, B, SHORT_31], message: /line 3\b.*shorter than 32 characters/, secret: SHORT_31 },
    { what: 'a 31-character secret after whitespace is trimmed', lines: [` ${SHORT_31} `], message: /line 1\b.*shorter than 32 characters/, secret: SHORT_31 },
    // After a comment line, the short secret is on line 2 of the file and line 2 of the non-empty lines.
    { what: 'a short secret after a comment line is named as line 2', lines: ['# rotated 2026-11', SHORT_31], message: /line 2\b.*shorter than 32 characters/, secret: SHORT_31 },
    { what: 'the placeholder the Kubeflow overlay ships (kustomize cannot generate one)', lines: ['REPLACE-ME-with-the-output-of-openssl-rand-base64-48'], message: /line 1 is the placeholder shipped with the manifests: anyone could forge sessions/ },
    { what: 'the placeholder after a real secret', lines: [A, 'REPLACE-ME-with-the-output-of-openssl-rand-base64-48'], message: /line 2 is the placeholder/ },
    { what: 'no lines at all', lines: [], message: /holds no secret/ },
    { what: 'only blank lines', lines: ['', '  ', '\t'], message: /holds no secret/ },
    { what: 'only comments', lines: ['# one', '#two'], message: /holds no secret/ },
  ])('$what', ({ lines, message, secret }) => {
    let error: unknown;
    try {
      secretsFromLines(lines);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecretsError);
    expect((error as Error).message).toMatch(message);
    if (secret !== undefined) expect((error as Error).message).not.toContain(secret);
  });
});

describe('readSecretsFile', () => {
  test.each<{ what: string; text: string; seal: string; unseal: string[] }>([
    { what: 'one secret per line', text: `${A}\n${B}\n`, seal: A, unseal: [A, B] },
    { what: 'no newline at the end', text: `${A}\n${B}`, seal: A, unseal: [A, B] },
    { what: 'CRLF line endings', text: `${B}\r\n${A}\r\n`, seal: B, unseal: [A, B] },
    { what: 'comments and blank lines', text: `# cookie secrets\n\n${C}\n# old:\n${A}\n\n`, seal: C, unseal: [A, C] },
  ])('reads $what', ({ text, seal, unseal }) => {
    const secrets = readSecretsFile(fileWith(text));
    expect(Object.values(secrets.seal)).toEqual([seal]);
    expect(Object.values(secrets.unseal).sort()).toEqual([...unseal].sort());
  });

  test('ids read from a file equal ids from the same lines', () => {
    expect(readSecretsFile(fileWith(`${B}\n${A}\n`))).toEqual(secretsFromLines([B, A]));
  });

  const directory = join(dir, 'a-directory');
  mkdirSync(directory);
  const aFile = fileWith(`${A}\n`);

  test.each<{ what: string; file: () => string; message: RegExp }>([
    { what: 'an empty file', file: () => fileWith(''), message: /holds no secret/ },
    { what: 'a file of blank lines and comments', file: () => fileWith('\n# nothing yet\n\n'), message: /holds no secret/ },
    { what: 'a file with a short secret', file: () => fileWith(`${A}\n${SHORT_31}\n`), message: /line 2\b.*shorter than 32/ },
    { what: 'a missing file', file: () => join(dir, 'missing'), message: /^cannot read .*missing: ENOENT$/ },
    { what: 'a directory', file: () => directory, message: /^cannot read .*a-directory: EISDIR$/ },
    { what: 'a path through a file', file: () => join(aFile, 'child'), message: /^cannot read .*child: ENOTDIR$/ },
  ])('refuses $what', ({ file, message }) => {
    let error: unknown;
    try {
      readSecretsFile(file());
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SecretsError);
    expect((error as Error).message).toMatch(message);
    for (const secret of [A, B, C, SHORT_31]) expect((error as Error).message).not.toContain(secret);
  });
});
