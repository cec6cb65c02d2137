/**
 * The one source of truth for configuration: the schema validates the file (plus env overrides) at
 * start-up, and every config type in the code is derived from it with z.infer / z.input.
 */
import { z } from 'zod';
import { parseDurationMs } from './duration.js';
import { describeClash, issuerEntries, sharedNameMismatches, spaceClashes, userIdSpaces } from './user-id-spaces.js';

/** Where the login callback is served. */
export const CALLBACK_PATH = '/oauth2/callback';

/** A duration such as "30s", "10m", "7d" or a number of seconds; parsed into milliseconds. */
const duration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((value, ctx) => {
      const ms = parseDurationMs(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (examples: 30s, 10m, 12h, 7d)` });
        return z.NEVER;
      }
      return ms;
    });

/** host:port of a Redis node (Sentinel or Cluster). */
const redisNode = z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'host:port');

/**
 * session.redis: where sessions live with session.store "redis". One of url (a single Redis or a proxy in
 * front of one), sentinel or cluster. Secrets come from files (mounted Secrets), never the config itself.
 */
const redisSchema = z.strictObject({
  /** redis://host:port/db or rediss://… (TLS); no password in it (passwordFile). */
  url: z.string().refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'redis:' || url.protocol === 'rediss:') && !url.username && !url.password && !url.search && !url.hash;
    } catch {
      return false;
    }
  }, 'must be redis://host:port[/db] or rediss://… without user or password (use username and passwordFile)').optional(),
  sentinel: z.strictObject({
    /** The monitored master's name (Sentinel's `sentinel monitor <name> …`). */
    name: z.string().min(1),
    nodes: z.array(redisNode).min(1),
    /** Sentinels' own password, when they have one (`requirepass` on the sentinels). */
    passwordFile: z.string().min(1).optional(),
  }).optional(),
  cluster: z.strictObject({ nodes: z.array(redisNode).min(1) }).optional(),
  username: z.string().min(1).optional(),
  /** The Redis (ACL user's) password, one line. */
  passwordFile: z.string().min(1).optional(),
  /** TLS to Redis (rediss:// turns it on too): the CA to trust, and the name on the server's certificate. */
  tls: z.strictObject({
    enabled: z.boolean().default(true),
    caFile: z.string().min(1).optional(),
    serverName: z.string().min(1).optional(),
  }).optional(),
  /** Every key this service writes starts with this (several installations can share one Redis). */
  keyPrefix: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/, '1–64 letters, digits, "_", ":", "." or "-"').default('oidc-authz:'),
  connectTimeout: duration('2s'),
  /** A command not answered within this fails (the check answers 503): Redis slow never means a stuck check. */
  commandTimeout: duration('500ms').refine((ms) => ms >= 10 && ms <= 10_000, 'must be between 10ms and 10s'),
  /**
   * How long a replica trusts a session it read from Redis before reading it again: Redis sees at most one
   * read per session per this time per replica, and a session revoked elsewhere is refused within it.
   */
  cacheFor: duration('5s').refine((ms) => ms <= 300_000, 'must be at most 5m (it is how long a revoked session still works)'),
  /** The refresh lock's lease, renewed while the IdP call runs (a crashed holder frees it after this). */
  refreshLease: duration('5s').refine((ms) => ms >= 1_000 && ms <= 60_000, 'must be between 1s and 60s'),
});

const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password && !url.hash;
  } catch {
    return false;
  }
}, 'must be an absolute http(s) URL without credentials or fragment');

/** An absolute http(s) URL, or a path ("/x") resolved against the request's public origin. */
const urlOrPath = z
  .string()
  .refine((value) => (value.startsWith('/') && !value.startsWith('//')) || /^https?:\/\/[^/@\s]+(\/\S*)?$/.test(value), 'an absolute http(s) URL or a path starting with "/"')
  .refine((value) => !/[#\s\\]/.test(value), 'without fragment, spaces or backslashes');

/** Host patterns: "host", "host:port", "host:*", ".domain" (the domain and its sub-domains), "[::1]:port". */
const hostPattern = z.string().regex(/^(\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(:(\d{1,5}|\*))?$/, 'a lower-case host, host:port, host:* or .domain');

/**
 * Identity header names: lower case letters, digits and "-". No "_": upstreams behind WSGI/CGI read
 * "a_b" and "a-b" as one header, and the removal of forged spellings relies on "-" being canonical.
 */
const headerName = z
  .string()
  .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be a lower-case header name of letters, digits and "-" (no "_")');

/** Only asymmetric algorithms: a shared-secret (HS*) token could be forged with the public key. */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
] as const;
const algorithms = z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).optional();

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

const claimValue = z.union([z.string(), z.number(), z.boolean()]);

export interface RequirementInput {
  groups?: string[] | undefined;
  audiences?: string[] | undefined;
  authorizedParties?: string[] | undefined;
  claims?: Record<string, z.infer<typeof claimValue> | Array<z.infer<typeof claimValue>>> | undefined;
  emailDomains?: string[] | undefined;
  users?: string[] | undefined;
  anyOf?: RequirementInput[] | undefined;
}

/** What a matched rule demands of the identity. Kinds are ANDed; values inside one kind are any-of. */
export const requirementSchema: z.ZodType<RequirementInput> = z.lazy(() =>
  z
    .strictObject({
      groups: z.array(z.string().min(1)).min(1).optional(),
      /** The token's `aud` (a string or an array) holds one of these; {param}s are filled from the captures. */
      audiences: z.array(z.string().min(1)).min(1).optional(),
      /** The token's `azp` (the client that asked for it) is one of these. */
      authorizedParties: z.array(z.string().min(1)).min(1).optional(),
      claims: z.record(z.string().min(1), z.union([claimValue, z.array(claimValue).min(1)])).optional(),
      emailDomains: z.array(z.string().min(1).regex(/^[^@\s]+$/, 'a domain, without "@"')).min(1).optional(),
      users: z.array(z.string().min(1)).min(1).optional(),
      anyOf: z.array(requirementSchema).min(1).optional(),
    })
    .refine((r) => Object.values(r).some((v) => v !== undefined), 'name at least one of groups, audiences, authorizedParties, claims, emailDomains, users, anyOf'),
);

/** Labels of letters, digits and "-", any of them holding {name} captures; an optional "*." first; or "*". */
const HOST_PATTERN = /^(\*|(\*\.)?([a-z0-9-]|\{[A-Za-z_][A-Za-z0-9_]*\})([a-z0-9.-]|\{[A-Za-z_][A-Za-z0-9_]*\})*)$/;

/** Whether a requirement checks `aud` or `azp` whichever way it is met (on every `anyOf` branch). */
export function requirementChecksAudience(requirement: RequirementInput): boolean {
  if (requirement.audiences !== undefined || requirement.authorizedParties !== undefined) return true;
  return requirement.anyOf !== undefined && requirement.anyOf.every(requirementChecksAudience);
}

export const ruleSchema = z.strictObject({
  /** Appears in 403 bodies, logs and the `rule` metric label. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63 characters'),
  /**
   * Host patterns ("kubeflow.example.com", "*.example.com", "{ws}.example.org", "editor-{ws}-default.example.org");
   * absent means every host. The first that matches gives the host's captures (policy/template.ts).
   */
  hosts: z.array(z.string().regex(HOST_PATTERN, 'a lower-case host name, optionally starting with "*.", whose labels may hold {name} captures')).min(1).optional(),
  /** Path templates: literal segments, {name}, * (one segment), ** (the rest, last only); a segment may mix text and captures ({ws}.{collection}). */
  paths: z.array(z.string().min(1)).min(1),
  /** Absent means every method. */
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  allow: z.union([z.enum(['anonymous', 'authenticated', 'deny']), requirementSchema]),
  /**
   * "enforce" (absent: the same) decides. "audit": the rule is evaluated and its would-be decision logged and counted (oidc_authz_audit_decisions_total),
   * then the request goes on to the next rule, as if this one were not there. For rolling out a stricter rule.
   */
  mode: z.enum(['enforce', 'audit']).optional(),
  /**
   * CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) for the requests this rule decides
   * are let through without credentials, identity headers removed. The rule is found with the method the
   * preflight asks about. `origins`: only preflights from these origins; absent: any origin.
   */
  cors: z.strictObject({
    preflight: z.literal('allow'),
    origins: z.array(z.string().regex(/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$|^\*$/, 'an origin: scheme://host[:port] in lower case, without a path, or "*"')).min(1).optional(),
  }).optional(),
  /**
   * The token this rule's upstream gets in `authorization: Bearer …` on allow. `exchange`: the caller's
   * access token (its bearer token, or its session's) exchanged at the IdP (RFC 8693, as oidc.clientId) for one restricted to
   * `audience` and `scope`; the caller's own Authorization header never reaches this upstream. Refused by
   * the IdP → 403 exchange_refused; IdP unreachable → 503 exchange_unavailable (README "Token exchange").
   */
  upstreamToken: z.strictObject({
    exchange: z.strictObject({
      /** The audience asked for (at Keycloak: a client id). */
      audience: z.string().regex(/^[\x21-\x7e]{1,255}$/, 'printable ASCII without spaces, at most 255 characters'),
      /** Space-separated scopes asked for; absent: the IdP's default. */
      scope: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/, 'scope tokens separated by single spaces (RFC 6749 §3.3)').optional(),
    }),
  }).optional(),
  /**
   * Delegated access for long jobs (README): a browser on this rule's paths (exact paths only) is sent through a
   * login asking `offline_access` with consent, and the next request to the same path hands the offline
   * (refresh) token to the upstream in `header`, once. Every other allow removes that header.
   */
  offlineToken: z.strictObject({
    header: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a lower-case header name (letters, digits, "-")'),
  }).optional(),
});

/**
 * Keycloak puts "account" into the `aud` of every token it issues to any client of a realm (the
 * account-console roles), so accepting it accepts tokens meant for every other application too.
 */
const REALM_WIDE_AUDIENCES = new Set(['account']);
const audienceList = z.array(z.string().min(1)).refine(
  (list) => !list.some((a) => REALM_WIDE_AUDIENCES.has(a)),
  'must not contain "account": Keycloak puts it into the aud of tokens issued to every client of the realm, so any of them would be accepted; add an audience mapper for your client (docs/idp/keycloak.md) or use authorizedParties',
);
/** `azp` values (the client a token was issued to) accepted in place of an audience. */
const authorizedParties = z.array(z.string().min(1)).default([]);

/**
 * Tokens without a person in them (OAuth client credentials: Keycloak service accounts) are told apart
 * by a claim only such tokens carry, and get a user id of their own with a prefix: a user-id space of its
 * own (config/user-id-spaces.ts), so a machine can never pose as a person or a person as a machine.
 */
const machineIdentitySchema = z.strictObject({
  /** A token carrying this claim is a machine's (Keycloak service-account tokens carry client_id). */
  when: z.string().min(1).default('client_id'),
  /** The claim holding the machine's name; default: the `when` claim. */
  userIdClaim: z.string().min(1).optional(),
  userIdPrefix: z.string().regex(/^[\x21-\x7e]+$/, 'one or more printable ASCII characters without spaces').default('service-account:'),
  groupsClaim: z.string().min(1).optional(),
});

/**
 * Per issuer (under `oidc` and each `issuers[]` entry): where its people's user ids live, and whether an
 * email it sends without `email_verified` counts as verified. See config/user-id-spaces.ts for the rules.
 */
const issuerIdentityFields = {
  /** Replaces identity.userIdPrefix for this issuer's people (machines have machineIdentity.userIdPrefix). */
  userIdPrefix: z.string().regex(/^[\x21-\x7e]*$/, 'printable ASCII characters without spaces (may be empty)').optional(),
  /**
   * Every user id of this issuer's people starts with this once the transformers ran (before the prefix is
   * added); one that does not is refused (invalid_user_id). It narrows the issuer's user-id space:
   * Kubernetes service-account tokens' sub always starts with "system:serviceaccount:".
   */
  userIdMustStartWith: z.string().regex(/^[\x21-\x7e]+$/, 'one or more printable ASCII characters without spaces').optional(),
  /**
   * Issuers that name the same userIdSpace are one population (one IdP reachable under two issuer URLs):
   * they may, and must, have the same user-id space. Any other two issuers with one space are refused.
   */
  userIdSpace: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63 characters').optional(),
  /**
   * Whether an `email` without an `email_verified` claim counts as verified. Off: some IdPs let users
   * set any address and say nothing about it (nOAuth), so silence is not proof.
   */
  emailVerifiedWhenAbsent: z.boolean().default(false),
};

/**
 * Who checks that a bearer token is meant for us. "issuer" (the default): its `aud` holds one of audiences or
 * its `azp` is one of authorizedParties, before any rule runs. "rules": no check here; instead only rules whose
 * requirement names audiences or authorizedParties (on every branch) can let this issuer's tokens through,
 * every other rule refuses them (403). For platforms whose audiences follow the resource (Keycloak's audience
 * resolution puts the workspace client in aud): `/workspaces/{ws}/**` requires audiences ["{ws}"].
 */
const audienceCheckedBy = z.enum(['issuer', 'rules']).default('issuer');

/**
 * RFC 7662 token introspection for one issuer (authn/introspection.ts). Opaque (non-JWT) bearer tokens carry
 * no issuer, so one issuer at most takes them (opaqueTokens); with `jwt: always` this issuer's verified JWTs
 * are introspected as well, so a token revoked at the IdP (Keycloak: the user's session ended) stops working
 * within cacheFor instead of at its exp.
 */
const introspectionSchema = z.strictObject({
  /** The introspection endpoint; by default discovery's `introspection_endpoint`. */
  endpoint: httpUrl.optional(),
  /** The client that authenticates to the endpoint (client_secret_basic). */
  clientId: z.string().min(1),
  /** Its secret, first line of the file; read at start-up and when a reload rebuilds the bearer verifier. */
  clientSecretFile: z.string().min(1),
  /**
   * Whether non-JWT bearer tokens go to this issuer. Default: true when this is the only issuer with
   * introspection; with several, each must say, and at most one may say true.
   */
  opaqueTokens: z.boolean().optional(),
  /** "always": this issuer's JWTs, once verified, are introspected too (and refused when inactive). */
  jwt: z.enum(['never', 'always']).default('never'),
  /** An active answer is trusted this long (never past the token's exp): how late a revocation is seen. */
  cacheFor: duration('60s').refine((ms) => ms <= 3_600_000, 'must be at most 1h (it is how long a revoked token still works)'),
  /** An inactive answer is remembered this long, so a flood of junk tokens costs one request per token per window. */
  inactiveCacheFor: duration('10s').refine((ms) => ms <= 300_000, 'must be at most 5m'),
  /** After a failed request (IdP down), every token of this issuer is answered 503 for this long without asking. */
  unavailableFor: duration('1s').refine((ms) => ms <= 30_000, 'must be at most 30s'),
  timeout: duration('5s').refine((ms) => ms >= 100 && ms <= 60_000, 'must be between 100ms and 60s'),
}).refine((entry) => entry.opaqueTokens !== false || entry.jwt === 'always', { path: ['opaqueTokens'], message: 'false with jwt: never would introspect nothing: set jwt: always, or remove introspection' });
export type IntrospectionConfig = z.infer<typeof introspectionSchema>;

const issuerSchema = z.strictObject({
  issuer: httpUrl,
  /** The token's `aud` must contain one of these, or its `azp` be one of authorizedParties. */
  audiences: audienceList.default([]),
  authorizedParties,
  audienceCheckedBy,
  /** Where the keys are; by default taken from the issuer's OpenID discovery document. */
  jwksUri: httpUrl.optional(),
  algorithms,
  /** Per-issuer overrides of the identity mapping (service-account tokens carry no email). */
  userIdClaim: z.string().min(1).optional(),
  groupsClaim: z.string().min(1).optional(),
  ...issuerIdentityFields,
  machineIdentity: machineIdentitySchema.optional(),
  introspection: introspectionSchema.optional(),
}).superRefine((entry, ctx) => {
  const listed = entry.audiences.length + entry.authorizedParties.length > 0;
  if (entry.audienceCheckedBy === 'issuer' && !listed) {
    ctx.addIssue({ code: 'custom', path: ['audiences'], message: 'name at least one of audiences or authorizedParties (a token must be meant for us), or set audienceCheckedBy: rules and check it in the rules' });
  }
  if (entry.audienceCheckedBy === 'rules' && listed) {
    ctx.addIssue({ code: 'custom', path: ['audienceCheckedBy'], message: '"rules" checks the audience in the rules only: remove audiences and authorizedParties here (or keep them with audienceCheckedBy: issuer)' });
  }
});

/** Where a browser session's claims come from; the first source that has a claim wins. */
export const CLAIM_SOURCES = ['id_token', 'access_token', 'userinfo'] as const;
export type ClaimSource = (typeof CLAIM_SOURCES)[number];
/** Asked for when `oidc.scopes` is not set; those the IdP's discovery does not list are left out. */
export const DEFAULT_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'] as const;

const transformerSchema = z.strictObject({
  match: z.string().min(1).refine((source) => {
    try {
      new RegExp(source, 'u');
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression'),
  replace: z.string(),
});

export const configSchema = z
  .strictObject({
    listen: z
      .strictObject({
        host: z.string().min(1).default('0.0.0.0'),
        /** 0 picks a free port (tests). */
        port: z.number().int().min(0).max(65535).default(8080),
        metricsHost: z.string().min(1).optional(),
        metricsPort: z.number().int().min(0).max(65535).default(9090),
        /** Envoy forwards up to 60 KiB of request headers; Node's default of 16 KiB would answer 431. */
        maxHeaderBytes: z.number().int().min(16_384).max(1_048_576).default(65_536),
        /** How long SIGTERM waits for in-flight checks before exiting anyway. */
        shutdownTimeout: duration('20s'),
      })
      .prefault({}),
    checkPathPrefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/, 'must start with "/", have no trailing "/" and only unreserved characters')
      .default('/authz'),
    /** Trust x-forwarded-proto from the gateway (true when Envoy terminates TLS or sets it itself). */
    trustForwardedProto: z.boolean().default(false),
    /** Where /oauth2/* is reachable from browsers. Without it, each request's own Host (on allowedHosts) is used. */
    publicUrl: httpUrl.optional(),
    /**
     * The hosts browsers may use when publicUrl is not set (Kubeflow's `kubectl port-forward … 8080:80`
     * gives localhost:8080, a real install its host name): the public origin is then the request's
     * scheme (x-forwarded-proto when trusted) and Host, refused unless listed here.
     */
    allowedHosts: z.array(hostPattern).default([]),
    oidc: z
      .strictObject({
        issuer: httpUrl,
        clientId: z.string().min(1),
        clientSecretFile: z.string().min(1).optional(),
        /**
         * Sent as written. When absent: DEFAULT_SCOPES, minus those the IdP's discovery document does
         * not list in scopes_supported (Keycloak has no "groups" scope and refuses the whole login).
         */
        scopes: z.array(z.string().min(1)).min(1).refine((list) => list.includes('openid'), 'must include "openid"').optional(),
        /** Extra audiences accepted for bearer tokens of this issuer besides clientId. */
        audiences: audienceList.default([]),
        /** Bearer tokens whose `azp` is one of these are accepted too (Keycloak access tokens: azp = the client that asked). */
        authorizedParties,
        /** For bearer tokens of this issuer (see issuers[].audienceCheckedBy); browser sessions are always for clientId. */
        audienceCheckedBy,
        /**
         * Where a browser session's claims come from, first source wins on conflicts. The access token
         * counts only when it is a JWT of this issuer for this client; userinfo costs a request per
         * login and refresh. Protocol claims (iss, sub, aud, exp, …) always come from the ID token.
         */
        claimsFrom: z
          .array(z.enum(CLAIM_SOURCES))
          .min(1)
          .refine((list) => list[0] === 'id_token', 'must start with id_token (the ID token is the identity; others add to it)')
          .refine((list) => new Set(list).size === list.length, 'must not repeat a source')
          .default(['id_token', 'access_token']),
        /** Identity of bearer tokens of this issuer without a person in them (client credentials). */
        machineIdentity: machineIdentitySchema.optional(),
        ...issuerIdentityFields,
        jwksUri: httpUrl.optional(),
        algorithms,
        /** RFC 7662 introspection of bearer tokens of this issuer (see issuers[].introspection). */
        introspection: introspectionSchema.optional(),
        /** Where sign-out lands (passed to the IdP as post_logout_redirect_uri); default <public origin>/oauth2/signed_out. */
        afterLogoutUrl: urlOrPath.optional(),
        /**
         * The redirect_uri sent to the IdP; default <public origin>/oauth2/callback. A path is sent as
         * written (Kubeflow's Dex registers "/oauth2/callback", and compares redirect URIs as strings):
         * the IdP then redirects the browser relative to its own address, which must be the gateway.
         */
        redirectUri: urlOrPath
          .refine((value) => (value.startsWith('/') ? value === CALLBACK_PATH : new URL(value).pathname.endsWith(CALLBACK_PATH)), `must be ${CALLBACK_PATH}, or an absolute URL ending with it (where the callback is served)`)
          .optional(),
        /**
         * After a login, go here first with ?next=<the page the user asked for> (oidc-authservice's
         * AFTER_LOGIN_URL: a platform can create the user's profile before the first page loads).
         */
        afterLoginUrl: urlOrPath.optional(),
        /** Optional `prompt` for the authorization request (e.g. "login", "consent", "select_account"). */
        prompt: z.string().regex(/^[a-z_ ]+$/).optional(),
        /**
         * Where browsers are sent to log in, when discovery's authorization_endpoint is an address only
         * the cluster can reach (Kubeflow's Dex: issuer http://dex.auth.svc.cluster.local:5556/dex, browsers
         * use https://<host>/dex/auth). An absolute URL, or a path on publicUrl.
         */
        authorizationEndpoint: z
          .string()
          .refine((value) => (value.startsWith('/') && !value.startsWith('//')) || /^https?:\/\/[^/@]+(\/.*)?$/.test(value), 'an absolute http(s) URL or a path starting with "/"')
          .refine((value) => !/[?#]/.test(value), 'without query or fragment')
          .optional(),
        /** How long a started login may take before its transaction cookie expires. */
        loginTimeout: duration('10m'),
        /** Timeout of each request to the IdP (discovery, code exchange, refresh). */
        timeout: duration('5s'),
      })
      .optional(),
    issuers: z.array(issuerSchema).default([]),
    jwks: z
      .strictObject({
        /** After this age keys are refreshed in the background; stale keys keep working if that fails. */
        maxAge: duration('10m'),
        /** An unknown `kid` triggers a refetch at most this often per issuer. */
        cooldown: duration('30s'),
        timeout: duration('5s'),
      })
      .prefault({}),
    bearer: z
      .strictObject({
        clockSkew: duration('30s'),
        maxTokenBytes: z.number().int().min(1024).max(65_536).default(16_384),
        /** Verified tokens are remembered (by SHA-256) until they expire; this bounds how many. */
        cacheMaxEntries: z.number().int().min(0).max(1_000_000).default(3_500),
      })
      .prefault({}),
    session: z
      .strictObject({
        cookieName: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"')
          .refine((name) => !/^__(host|secure)-/i.test(name), 'without a __Host- or __Secure- prefix (set cookiePrefixes: true instead)')
          .default('oidc_authz'),
        secretsFile: z.string().min(1).optional(),
        maxAge: duration('7d'),
        /**
         * A session with a refresh token is refreshed with the IdP at least this often, so a user signed out,
         * disabled or deleted there loses access within this time on every replica (and a stolen cookie
         * with them). Without a refresh token a session lives as long as its ID token.
         */
        revalidateAfter: duration('5m').refine((ms) => ms >= 30_000, 'must be at least 30s (the shortest time between two refreshes of one session)'),
        /** Secure cookies; "auto": Secure when the request came over https (x-forwarded-proto, trusted). */
        secure: z.union([z.boolean(), z.literal('auto')]).default(true),
        domain: z.string().min(1).optional(),
        /**
         * Name the session cookie `__Host-<cookieName>` and the login and sign-out cookies
         * `__Secure-<cookieName>_…`: browsers then keep the session only as set by this host over https
         * for Path=/ (no script and no sibling sub-domain can plant one beside it). Needs secure: true, no domain.
         */
        cookiePrefixes: z.boolean().default(false),
        /**
         * Where sessions live. "cookie": sealed in the cookie itself (no shared state, any replica answers).
         * "redis": in Redis (session.redis), the cookie holds only a sealed handle; sessions can be revoked
         * (sign-out, `oidc-authz sessions revoke`, OIDC back-channel logout) and refreshed once cluster-wide.
         */
        store: z.enum(['cookie', 'redis']).default('cookie'),
        redis: redisSchema.optional(),
      })
      .prefault({}),
    identity: z
      .strictObject({
        userIdHeader: headerName.default('kubeflow-userid'),
        userIdClaim: z.string().min(1).default('email'),
        userIdPrefix: z.string().default(''),
        /** Applied in order; the first whose `match` matches rewrites the user id, the rest are skipped. */
        userIdTransformers: z.array(transformerSchema).default([]),
        groupsHeader: headerName.default('kubeflow-groups'),
        groupsClaim: z.string().min(1).default('groups'),
        /**
         * Applied to each group name, first match wins (Keycloak's full group path "/ws-a" → "ws-a":
         * { match: "^/(.*)$", replace: "$1" }). A name that becomes empty is dropped.
         */
        groupTransformers: z.array(transformerSchema).default([]),
        /**
         * Every `email` counts as verified, even with `email_verified: false` (per issuer, the weaker
         * emailVerifiedWhenAbsent accepts only an email the IdP says nothing about).
         */
        allowUnverifiedEmail: z.boolean().default(false),
        /** Also send x-auth-request-user/-email/-groups (oauth2-proxy's names) upstream. */
        authRequestHeaders: z.boolean().default(false),
        /**
         * Kubeflow's own model: for cookie sessions also send `authorization: Bearer <ID token>` upstream,
         * so an Istio RequestAuthentication can map its claims. Bearer requests keep their own header.
         */
        forwardIdToken: z.boolean().default(false),
      })
      .prefault({}),
    /**
     * Remove x-http-method-override, x-http-method and x-method-override upstream on every allow: the rules
     * judge the request's method, and a framework that honours them would run another one.
     */
    removeMethodOverrideHeaders: z.boolean().default(true),
    redirectAllowList: z.array(z.string().min(1)).default([]),
    defaultRule: z.enum(['deny', 'authenticated']).default('deny'),
    rules: z.array(ruleSchema).default([]),
    log: z
      .strictObject({
        level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
        /**
         * Lines a client can make us write for free (one per denied check) are limited per reason: at most
         * `perReason` lines of one reason per `window`; the rest are counted
         * (oidc_authz_log_lines_suppressed_total) and summed up in one warn line per window. At level
         * debug every decision is logged and this limit does not apply.
         */
        rateLimit: z
          .strictObject({
            perReason: z.number().int().min(1).max(1_000_000).default(20),
            window: duration('10s').refine((ms) => ms >= 1000, 'must be at least 1s'),
          })
          .prefault({}),
        /**
         * The decision log: one JSON line ("msg": "decision") per check with decision, status, reason, rule,
         * user, issuer, method, host, path (never the query), and the trace id from traceparent; never a token
         * or cookie. Written whatever the level; sampled (sampleRate) and capped (maxPerSecond), the lines left
         * out counted in oidc_authz_decision_log_dropped_total.
         */
        decisions: z
          .strictObject({
            enabled: z.boolean().default(false),
            sampleRate: z.number().gt(0).max(1).default(1),
            maxPerSecond: z.number().int().min(1).max(1_000_000).default(100),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Hot reload (README "Reloading config and secrets"): SIGHUP always reloads; with `watch` the directories
     * of the config file and of session.secretsFile and oidc.clientSecretFile are watched too (Kubernetes
     * replaces a mounted ConfigMap's or Secret's files by swapping a `..data` symlink), and a burst of changes
     * is read once, `debounce` after the last.
     */
    reload: z
      .strictObject({
        watch: z.boolean().default(true),
        debounce: duration('200ms').refine((ms) => ms >= 10 && ms <= 60_000, 'must be between 10ms and 60s'),
      })
      .prefault({}),
    /**
     * OpenTelemetry traces (src/tracing/contract.ts, README "Tracing"): a span per check, joined to Envoy's
     * trace through the `traceparent` Envoy sends, and spans for JWKS fetches, session refreshes, token
     * exchanges, introspection and Redis commands. Off: the SDK is never loaded and a check does no extra work.
     * Restart-only.
     */
    tracing: z
      .strictObject({
        enabled: z.boolean().default(false),
        /** OTLP/HTTP (JSON) traces endpoint, the full URL: http://otel-collector.observability:4318/v1/traces. */
        endpoint: httpUrl.optional(),
        /** service.name of every span. */
        serviceName: z.string().regex(/^[\x21-\x7e]{1,128}$/, '1–128 printable ASCII characters without spaces').default('oidc-authz'),
        /**
         * Share of traces started here that are recorded (0–1). A check whose caller (Envoy) sent a
         * traceparent follows the caller's sampled flag instead (parent-based sampling).
         */
        sampleRatio: z.number().min(0).max(1).default(1),
        /** Extra request headers of every export that are no secret (a tenant id); secrets go in headersFile. */
        headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a header name'), z.string().regex(/^[\x20-\x7e]*$/, 'printable ASCII')).default({}),
        /** A file of `Name: value` lines sent with every export (an API key), read at start-up; never in the YAML. */
        headersFile: z.string().min(1).optional(),
        /** One export request may take this long; spans of a failed export are dropped and counted. */
        timeout: duration('5s').refine((ms) => ms >= 100 && ms <= 60_000, 'must be between 100ms and 60s'),
      })
      .prefault({})
      .superRefine((tracing, ctx) => {
        if (tracing.enabled && tracing.endpoint === undefined) ctx.addIssue({ code: 'custom', path: ['endpoint'], message: 'is required with tracing.enabled (the collector\'s OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces)' });
      }),
  })
  .superRefine((config, ctx) => {
    const names = new Set<string>();
    config.rules.forEach((rule, index) => {
      if (names.has(rule.name)) ctx.addIssue({ code: 'custom', path: ['rules', index, 'name'], message: `duplicate rule name "${rule.name}"` });
      names.add(rule.name);
    });
    const issuers = new Set<string>(config.oidc ? [config.oidc.issuer] : []);
    config.issuers.forEach((entry, index) => {
      if (issuers.has(entry.issuer)) ctx.addIssue({ code: 'custom', path: ['issuers', index, 'issuer'], message: `issuer "${entry.issuer}" is configured twice${config.oidc?.issuer === entry.issuer ? ' (bearer tokens of the oidc issuer are configured under oidc: audiences, authorizedParties, machineIdentity)' : ''}` });
      issuers.add(entry.issuer);
    });
    if (config.oidc) {
      if (!config.publicUrl && config.allowedHosts.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['publicUrl'], message: 'is required with oidc unless allowedHosts lists the hosts browsers use (the public origin is then taken from each request)' });
      }
      if (!config.session.secretsFile) ctx.addIssue({ code: 'custom', path: ['session', 'secretsFile'], message: 'is required with oidc (cookie secrets, one per line)' });
    }
    if (config.session.secure === 'auto' && !config.publicUrl && !config.trustForwardedProto) {
      ctx.addIssue({ code: 'custom', path: ['session', 'secure'], message: '"auto" decides by the request\'s scheme, which without publicUrl comes from x-forwarded-proto: set trustForwardedProto: true (behind a gateway that sets it), or publicUrl, or true/false' });
    }
    if (config.session.cookiePrefixes && config.session.secure !== true) {
      ctx.addIssue({ code: 'custom', path: ['session', 'cookiePrefixes'], message: 'needs session.secure: true (browsers drop __Host- and __Secure- cookies that are not Secure)' });
    }
    if (config.session.store === 'redis') {
      const redis = config.session.redis;
      const modes = redis === undefined ? [] : (['url', 'sentinel', 'cluster'] as const).filter((mode) => redis[mode] !== undefined);
      if (modes.length !== 1) ctx.addIssue({ code: 'custom', path: ['session', 'redis'], message: modes.length === 0 ? 'is required with session.store "redis": one of url, sentinel or cluster' : `takes one of url, sentinel or cluster, not ${modes.join(' and ')}` });
      if (!config.oidc) ctx.addIssue({ code: 'custom', path: ['session', 'store'], message: '"redis" keeps browser sessions, which need oidc' });
    } else if (config.session.redis !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['session', 'redis'], message: 'is used only with session.store: redis (set it, or remove session.redis)' });
    }
    if (config.session.cookiePrefixes && config.session.domain !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['session', 'cookiePrefixes'], message: 'cannot be used with session.domain (a __Host- cookie belongs to one host and carries no Domain)' });
    }
    // User-id spaces (config/user-id-spaces.ts): two issuers whose ids nothing tells apart are refused.
    // An issuer configured twice is reported above; its second entry would only repeat it as a clash.
    const entries = issuerEntries(config).filter((entry, index, all) => all.findIndex((other) => other.settings.issuer === entry.settings.issuer) === index);
    const spaces = userIdSpaces(entries, config.identity.userIdPrefix);
    // A field its own rule already refused (an empty machine prefix) is not reported a second time.
    const refused = new Set(ctx.issues.map((issue) => issue.path?.join('.')));
    for (const clash of spaceClashes(spaces)) {
      const problem = describeClash(clash);
      if (!refused.has(problem.path.join('.'))) ctx.addIssue({ code: 'custom', ...problem });
    }
    for (const { later, earlier } of sharedNameMismatches(spaces)) {
      ctx.addIssue({
        code: 'custom',
        path: [...later.issuer, 'userIdSpace'],
        message: `"${later.shared}" is also the userIdSpace of ${earlier.issuer.join('.')}, whose people's user ids start with "${earlier.start}", but this issuer's start with "${later.start}": issuers of one userIdSpace are one population and need the same userIdPrefix and userIdMustStartWith`,
      });
    }
    if (config.oidc?.audienceCheckedBy === 'rules' && config.oidc.audiences.length + config.oidc.authorizedParties.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['oidc', 'audienceCheckedBy'], message: '"rules" checks the audience of bearer tokens in the rules only: remove oidc.audiences and oidc.authorizedParties (or keep them with audienceCheckedBy: issuer)' });
    }
    // An issuer whose audience the rules check, with no rule that checks it, could never get a token through.
    if (!config.rules.some((rule) => rule.mode !== 'audit' && typeof rule.allow === 'object' && requirementChecksAudience(rule.allow))) {
      for (const { path, settings } of issuerEntries(config)) {
        if (settings.audienceCheckedBy === 'rules') ctx.addIssue({ code: 'custom', path: [...path, 'audienceCheckedBy'], message: '"rules", but no rule requires audiences or authorizedParties: every bearer token of this issuer would be refused' });
      }
    }
    // Opaque tokens name no issuer: with several introspecting issuers, each says whether it takes them.
    const introspecting = [
      ...(config.oidc?.introspection ? [{ path: ['oidc', 'introspection'], settings: config.oidc.introspection }] : []),
      ...config.issuers.flatMap((entry, index) => (entry.introspection ? [{ path: ['issuers', index, 'introspection'], settings: entry.introspection }] : [])),
    ];
    if (introspecting.length > 1) {
      let taker: string | null = null;
      for (const { path, settings } of introspecting) {
        if (settings.opaqueTokens === undefined) {
          ctx.addIssue({ code: 'custom', path: [...path, 'opaqueTokens'], message: 'is required when several issuers have introspection (true on at most one: opaque tokens name no issuer)' });
        } else if (settings.opaqueTokens) {
          if (taker !== null) ctx.addIssue({ code: 'custom', path: [...path, 'opaqueTokens'], message: `true on ${taker} already: opaque tokens name no issuer, so at most one issuer takes them` });
          taker ??= path.join('.');
        }
      }
    }
    if (config.identity.userIdHeader === config.identity.groupsHeader) {
      ctx.addIssue({ code: 'custom', path: ['identity', 'groupsHeader'], message: 'must differ from identity.userIdHeader' });
    }
  });

/** Config as written by operators (before defaults). */
export type ConfigInput = z.input<typeof configSchema>;
/** Validated config with defaults filled in and durations in milliseconds. */
export type Config = z.infer<typeof configSchema>;
export type Rule = z.infer<typeof ruleSchema>;
export type IssuerConfig = z.infer<typeof issuerSchema>;
export type IdentityConfig = Config['identity'];
export type MachineIdentityConfig = z.infer<typeof machineIdentitySchema>;
export type RedisConfig = z.infer<typeof redisSchema>;
export type TracingConfig = Config['tracing'];

/** Whether the issuer whose introspection settings these are takes opaque tokens (opaqueTokens, or the only one). */
export function takesOpaqueTokens(config: Pick<Config, 'oidc' | 'issuers'>, settings: IntrospectionConfig): boolean {
  if (settings.opaqueTokens !== undefined) return settings.opaqueTokens;
  const count = (config.oidc?.introspection ? 1 : 0) + config.issuers.filter((entry) => entry.introspection).length;
  return count === 1;
}
