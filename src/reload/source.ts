/**
 * What a reload reads: the config file and the files it names whose content can change under a running
 * service (Kubernetes swaps a mounted ConfigMap's or Secret's `..data` symlink; an operator edits a file).
 * Read asynchronously, so a reload never blocks checks on the disk; the content is then hashed, parsed and
 * validated in one synchronous step.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { HASH_LENGTH } from './contract.js';

/** The HASH_LENGTH first hex digits of the text's SHA-256 (for a file: what `sha256sum FILE` starts with). */
export function hashOfText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * The files' texts, or the problem reading each, by config field ("(file)" for the config file itself):
 * a field path and an errno code, never a file's content.
 */
export interface FileTexts {
  readonly texts: ReadonlyMap<string, string>;
  readonly problems: readonly string[];
}

/** Reads each file; `files` maps a config field ("session.secretsFile") to its path. */
export async function readTexts(files: ReadonlyMap<string, string>): Promise<FileTexts> {
  const texts = new Map<string, string>();
  const problems: string[] = [];
  await Promise.all([...files].map(async ([field, path]) => {
    try {
      texts.set(field, await readFile(path, 'utf8'));
    } catch (error) {
      problems.push(`${field}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
  }));
  return { texts, problems: problems.sort() };
}

/**
 * One fingerprint of everything a reload reads (the config and every watched file), to tell "nothing
 * changed" from a change; internal only (the exposed hash is the config file's alone, since secrets are in here).
 */
export function fingerprintOf(texts: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256');
  for (const [field, text] of [...texts].sort(([a], [b]) => a.localeCompare(b))) hash.update(`${field}\0${createHash('sha256').update(text).digest('hex')}\0`);
  return hash.digest('hex');
}
