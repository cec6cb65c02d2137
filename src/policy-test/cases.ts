/**
 * Cases files for `oidc-authz test`: requests, who sends them, and the answer the service must give.
 * YAML or JSON, validated by the schema below (the types are derived from it); every problem is
 * reported at once with its field path (`cases.3.expect.status: …`), like the config's.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Claims } from '../authn/claims.js';
import { formatIssuePath } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** The statuses the check answers (DESIGN §2). */
export const STATUSES = [200, 302, 400, 401, 403, 503] as const;

/** An HTTP field name (RFC 9110 token); compared in lower case. */
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a header name');

const absoluteUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '' && !url.username && !url.password;
  } catch {
    return false;
  }
}, 'an absolute http(s) URL with the host the client uses (https://kubeflow.example.com/path?query)');

const requestObject = z.strictObject({
  method: z.string().regex(/^[A-Za-z]+$/, 'an HTTP method').transform((method) => method.toUpperCase()).default('GET'),
  /** As the client sends it: the path is not normalized here (the check does that), so hostile spellings can be tested. */
  url: absoluteUrl,
  /** What the client sends; the check sees those Istio passes (includeRequestHeadersInCheck), the upstream all. */
  headers: z.record(headerName, z.string()).default({}),
});

/** `"GET https://host/path"` is short for `{ method: GET, url: https://host/path }`. */
const requestSchema = z.union([
  z.string().regex(/^[A-Za-z]+ +\S+$/, '"METHOD URL", or an object with method, url and headers').transform((line): z.input<typeof requestObject> => {
    const [method, url] = line.split(/ +/) as [string, string];
    return { method, url };
  }).pipe(requestObject),
  requestObject,
]);

const identitySchema = z.strictObject({
  /**
   * Claims as the service would have verified them: mapped with the settings of their `iss`. They stand in
   * for a credential without sending one: no Authorization header reaches `upstream` (a token identity's does).
   */
  claims: z.record(z.string(), z.unknown()).optional(),
  /** With claims: a browser session of the oidc issuer (cookie), not a bearer token. */
  session: z.boolean().optional(),
  /** A JWT, verified with the config's issuer settings against the file's `jwks` (else the issuers' own JWKS). */
  token: z.string().min(1).optional(),
  /** A file holding such a JWT, relative to the cases file. */
  tokenFile: z.string().min(1).optional(),
}).superRefine((identity, ctx) => {
  const given = (['claims', 'token', 'tokenFile'] as const).filter((key) => identity[key] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: 'custom', message: given.length === 0 ? 'name one of claims, token or tokenFile (no identity: leave identity out)' : `takes one of claims, token or tokenFile, not ${given.join(' and ')}` });
  if (identity.session !== undefined && identity.claims === undefined) ctx.addIssue({ code: 'custom', path: ['session'], message: 'goes with claims (a session is tested by its claims)' });
});

const headerExpectations = z.record(headerName, z.string().nullable());

const expectSchema = z.strictObject({
  status: z.literal(STATUSES),
  /** The rule that decided ("default" for defaultRule; null for a 400, which no rule decides). */
  rule: z.string().min(1).nullable().optional(),
  /** The decision's reason code: bearer, cookie, anonymous, no_credentials, requirement_not_met, token_expired, … */
  reason: z.string().min(1).optional(),
  /** Headers of the answer to Envoy: a value must be equal; null must be absent. */
  headers: headerExpectations.optional(),
  /** Headers of the request the upstream gets after Envoy applied the allow: a value must be equal; null must be absent. */
  upstream: headerExpectations.optional(),
}).refine((expect) => expect.upstream === undefined || expect.status === 200, { path: ['upstream'], message: 'only a 200 reaches the upstream' });

const caseSchema = z.strictObject({
  name: z.string().min(1),
  request: requestSchema,
  /** A name under `identities`, an identity, or absent: a request without credentials. */
  identity: z.union([z.string().min(1), identitySchema]).optional(),
  expect: expectSchema,
});

const casesFileSchema = z.strictObject({
  /**
   * JWKS file(s), relative to this file, that token identities are verified against instead of the issuers'
   * own: one for every issuer, or one per issuer URL. Without it, the issuers' JWKS are fetched.
   */
  jwks: z.union([z.string().min(1), z.record(z.string().min(1), z.string().min(1))]).optional(),
  /** The time tokens are verified at (exp, nbf), so committed tokens stay valid, or expired, for good. */
  now: z.iso.datetime({ offset: true }).optional(),
  /** Identities cases name (`identity: alice`). */
  identities: z.record(z.string().min(1), identitySchema).default({}),
  cases: z.array(caseSchema).min(1),
}).superRefine((file, ctx) => {
  const names = new Map<string, number>();
  file.cases.forEach((testCase, index) => {
    const earlier = names.get(testCase.name);
    if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: ['cases', index, 'name'], message: `duplicate case name (also cases.${earlier}): reports name cases by it` });
    names.set(testCase.name, index);
    if (typeof testCase.identity === 'string' && !Object.hasOwn(file.identities, testCase.identity)) {
      const known = Object.keys(file.identities);
      ctx.addIssue({ code: 'custom', path: ['cases', index, 'identity'], message: `"${testCase.identity}" is not under identities${known.length > 0 ? ` (${known.join(', ')})` : ''}` });
    }
  });
});

type IdentityInput = z.infer<typeof identitySchema>;
export type Expectation = z.infer<typeof expectSchema>;
export type CaseRequest = z.infer<typeof requestObject>;

export type CaseIdentity =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'claims'; readonly claims: Claims; readonly session: boolean }
  /** `source`: where the token came from, for reports (the token itself is never printed). */
  | { readonly kind: 'token'; readonly token: string; readonly source: string };

export interface PolicyCase {
  readonly name: string;
  readonly request: CaseRequest;
  readonly identity: CaseIdentity;
  /** The name under `identities`, when the case used one. */
  readonly identityName: string | null;
  readonly expect: Expectation;
}

export interface CasesFile {
  /** As given on the command line (reports name it so). */
  readonly file: string;
  /** Keys for token identities by issuer URL, or ANY_ISSUER for all; null: the issuers' own JWKS. */
  readonly jwks: ReadonlyMap<string, { readonly file: string; readonly keys: JSONWebKeySet }> | null;
  /** Epoch ms tokens are verified at; null: the clock. */
  readonly now: number | null;
  readonly cases: readonly PolicyCase[];
}

/** A cases file that cannot be run; `problems` are "path: reason" lines. */
export class CasesError extends Error {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(`invalid cases file (${file}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'CasesError';
  }
}

/** Every issuer: the key of a single JWKS file's entry. */
export const ANY_ISSUER = '*';

/** Reads, validates and resolves a cases file against the config it tests. */
export function loadCasesFile(file: string, config: Config): CasesFile {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'), { prettyErrors: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CasesError(file, [code !== undefined ? `(file): cannot read: ${code}` : `(file): not valid YAML/JSON: ${(error as Error).message.split('\n')[0]}`]);
  }
  const parsed = casesFileSchema.safeParse(raw);
  if (!parsed.success) throw new CasesError(file, describeCaseIssues(parsed.error.issues));
  const data = parsed.data;
  const problems: string[] = [];
  const base = dirname(file);

  const jwks = data.jwks === undefined ? null : loadJwks(data.jwks, base, config, problems);
  const identities = new Map<string, CaseIdentity>();
  for (const [name, input] of Object.entries(data.identities)) {
    identities.set(name, resolveIdentity(input, `identities.${name}`, base, config, problems));
  }
  const cases = data.cases.map((testCase, index): PolicyCase => {
    const at = `cases.${index}`;
    const identity = testCase.identity === undefined
      ? { kind: 'anonymous' as const }
      : typeof testCase.identity === 'string' ? identities.get(testCase.identity)! : resolveIdentity(testCase.identity, `${at}.identity`, base, config, problems);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(testCase.request.headers)) {
      const lower = name.toLowerCase();
      if (Object.hasOwn(headers, lower)) problems.push(`${at}.request.headers.${name}: given twice (header names are case-insensitive)`);
      headers[lower] = value;
    }
    if (Object.hasOwn(headers, 'host')) problems.push(`${at}.request.headers.host: the Host is the url's`);
    if (identity.kind === 'token' && Object.hasOwn(headers, 'authorization')) problems.push(`${at}.request.headers.authorization: a token identity is sent as the Authorization header; give one or the other`);
    return {
      name: testCase.name,
      request: { ...testCase.request, headers },
      identity,
      identityName: typeof testCase.identity === 'string' ? testCase.identity : null,
      expect: testCase.expect,
    };
  });
  if (problems.length > 0) throw new CasesError(file, problems);
  return { file, jwks, now: data.now === undefined ? null : Date.parse(data.now), cases };
}

function resolveIdentity(input: IdentityInput, at: string, base: string, config: Config, problems: string[]): CaseIdentity {
  if (input.claims !== undefined) {
    const claims = input.claims as Claims;
    const session = input.session ?? false;
    if (session) {
      if (!config.oidc) problems.push(`${at}.session: the config has no oidc, so no browser sessions`);
      else if (claims.iss !== undefined && claims.iss !== config.oidc.issuer) problems.push(`${at}.claims.iss: a session's claims are the oidc issuer's (${config.oidc.issuer})`);
    }
    return { kind: 'claims', claims, session };
  }
  if (input.token !== undefined) return { kind: 'token', token: input.token.trim(), source: 'inline' };
  const tokenFile = input.tokenFile!;
  const path = resolve(base, tokenFile);
  try {
    return { kind: 'token', token: readFileSync(path, 'utf8').trim(), source: tokenFile };
  } catch (error) {
    problems.push(`${at}.tokenFile: cannot read ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    return { kind: 'anonymous' };
  }
}

/** Members of a JWK that hold private key material: a test JWKS is published, so it holds none. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

function loadJwks(spec: string | Record<string, string>, base: string, config: Config, problems: string[]): CasesFile['jwks'] {
  const entries: Array<[string, string, string]> = typeof spec === 'string'
    ? [[ANY_ISSUER, spec, 'jwks']]
    : Object.entries(spec).map(([issuer, path]) => [issuer, path, `jwks.${issuer}`]);
  const configured = new Set([...(config.oidc ? [config.oidc.issuer] : []), ...config.issuers.map((entry) => entry.issuer)]);
  const byIssuer = new Map<string, { file: string; keys: JSONWebKeySet }>();
  for (const [issuer, path, at] of entries) {
    if (issuer !== ANY_ISSUER && !configured.has(issuer)) problems.push(`${at}: not an issuer of the config (${[...configured].join(', ') || 'none'})`);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(resolve(base, path), 'utf8'));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(`${at}: ${code !== undefined ? `cannot read ${path}: ${code}` : `${path} is not JSON`}`);
      continue;
    }
    const keys = (value as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || keys.some((key) => typeof key !== 'object' || key === null)) {
      problems.push(`${at}: ${path} is not a JWK set ({"keys": [ … ]})`);
      continue;
    }
    if (keys.some((key: Record<string, unknown>) => PRIVATE_MEMBERS.some((member) => member in key))) {
      problems.push(`${at}: ${path} holds private key material: keep only the public keys beside the cases`);
      continue;
    }
    byIssuer.set(issuer, { file: path, keys: value as JSONWebKeySet });
  }
  return byIssuer;
}

/**
 * "path: reason" lines. A union (request as a line or an object, identity as a name or an object) is
 * reported as the branch the value was meant for: the one that failed inside rather than on its type.
 */
export function describeCaseIssues(issues: readonly z.core.$ZodIssue[], prefix: ReadonlyArray<PropertyKey> = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'invalid_union') {
      const meant = issue.errors.filter((branch) => !(branch.length === 1 && branch[0]!.code === 'invalid_type' && branch[0]!.path.length === 0));
      if (meant.length === 1) return describeCaseIssues(meant[0]!, path);
      const expected = issue.errors.flatMap((branch) => branch.filter((i) => i.code === 'invalid_type').map((i) => (i as { expected: string }).expected));
      return [`${formatIssuePath(path)}: expected ${[...new Set(expected)].join(' or ') || 'another value'}`];
    }
    if (issue.code === 'unrecognized_keys') return [`${formatIssuePath(path)}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`];
    return [`${formatIssuePath(path)}: ${issue.message}`];
  });
}
