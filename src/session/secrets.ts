/**
 * Cookie secrets: one per line in `session.secretsFile`. The first line seals, every line unseals,
 * so rotation is "add a new first line, roll the pods, later drop the old line". Each secret's id in
 * the seal is derived from the secret itself, so ids stay stable when lines are added or removed.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const MIN_SECRET_LENGTH = 32;
/**
 * Marks the placeholder the Kubeflow overlay ships (kustomize cannot generate a random secret): a
 * cookie secret anyone can read would let anyone seal a session, so the service refuses to start.
 */
export const PLACEHOLDER_MARK = 'REPLACE-ME';

export interface SealingSecrets {
  /** Only the newest secret: iron-session seals with the highest id it is given. */
  readonly seal: Readonly<Record<string, string>>;
  /** Every secret, by id. */
  readonly unseal: Readonly<Record<string, string>>;
}

export class SecretsError extends Error {}

export function secretsFromLines(lines: readonly string[]): SealingSecrets {
  // Line numbers are the file's (blank and comment lines count), so an operator can find the line.
  const numbered = lines.map((line, index) => ({ secret: line.trim(), line: index + 1 })).filter(({ secret }) => secret.length > 0 && !secret.startsWith('#'));
  if (numbered.length === 0) throw new SecretsError('holds no secret (one per line, the first seals)');
  for (const { secret, line } of numbered) {
    if (secret.includes(PLACEHOLDER_MARK)) throw new SecretsError(`the secret on line ${line} is the placeholder shipped with the manifests: anyone could forge sessions with it; replace it with a secret of your own`);
    if (secret.length < MIN_SECRET_LENGTH) throw new SecretsError(`the secret on line ${line} is shorter than ${MIN_SECRET_LENGTH} characters`);
  }
  const secrets = numbered.map(({ secret }) => secret);
  const unseal: Record<string, string> = {};
  for (const secret of secrets) unseal[idOf(secret)] = secret;
  return { seal: { [idOf(secrets[0]!)]: secrets[0]! }, unseal };
}

export function readSecretsFile(file: string): SealingSecrets {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new SecretsError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return secretsFromLines(text.split('\n'));
}

/** A stable numeric id (iron-session ids are numbers) from the secret's hash; reveals nothing useful. */
function idOf(secret: string): string {
  return String(parseInt(createHash('sha256').update(secret).digest('hex').slice(0, 8), 16) + 1);
}

/** Where sealing reads its secrets: a fixed set, or a ring that hot reload replaces. */
export interface SecretSource {
  readonly current: SealingSecrets;
}

/**
 * The cookie secrets now (hot reload, src/reload/): one reference replaced whole, so a seal or an unseal
 * uses one consistent list (seal with its first secret, unseal with any), the list before a replace or the
 * one after. A secrets file with a bad line never reaches replace(): it keeps the running list.
 */
export class SecretRing implements SecretSource {
  constructor(private secrets: SealingSecrets) {}

  get current(): SealingSecrets {
    return this.secrets;
  }

  replace(next: SealingSecrets): void {
    this.secrets = next;
  }
}

/** Secrets themselves or their source, as a source. */
export function secretSource(secrets: SealingSecrets | SecretSource): SecretSource {
  return 'current' in secrets ? secrets : { current: secrets };
}

/** Same secrets in the same order (a reload with an unchanged secrets file keeps sealing as it was). */
export function sameSecrets(a: SealingSecrets, b: SealingSecrets): boolean {
  const ids = (s: SealingSecrets) => `${Object.keys(s.seal).join(',')}|${Object.keys(s.unseal).join(',')}`;
  return ids(a) === ids(b) && Object.entries(a.unseal).every(([id, secret]) => b.unseal[id] === secret);
}
