/**
 * The runtime: everything a check reads, built whole from one validated config and one list of cookie
 * secrets, and never changed afterwards. The service holds the runtime in force in one reference and a hot
 * reload replaces it in one assignment (http/server.ts), so a check — which reads the reference once, when
 * it starts — sees one config from its first step to its answer.
 *
 * Building a runtime is where a new config can still fail (the policy compiler, the identity mappings);
 * nothing of the running one is touched until it is complete. Parts whose inputs did not change are taken
 * over from the running runtime instead of built again, so a reload of the rules alone keeps the verified
 * tokens and opened sessions cached, and a new bearer verifier keeps the JWKS of unchanged issuers.
 */
import { isDeepStrictEqual } from 'node:util';
import { createAuthenticator } from '../authn/authenticate.js';
import type { BearerVerifier } from '../authn/bearer.js';
import { buildBearer } from '../authn/issuers.js';
import type { IssuerKeys } from '../authn/jwks.js';
import type { SessionAuthenticator, SessionMemory } from '../authn/session.js';
import type { DecideDeps } from '../check/decide.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BrowserLogin } from '../oidc/setup.js';
import { compilePolicy, PolicyError, type Policy } from '../policy/rules.js';
import type { TokenExchanger } from '../token-exchange/contract.js';
import { createTokenExchanger, DEFAULT_EXCHANGE_CACHE_ENTRIES } from '../token-exchange/exchanger.js';
import { cookieNamesOf } from '../session/cookie-header.js';
import { sameSecrets, type SealingSecrets } from '../session/secrets.js';

export interface Runtime {
  readonly config: Config;
  /** HASH_LENGTH hex digits of the config file's SHA-256 (reload/contract.ts). */
  readonly configHash: string;
  readonly policy: Policy;
  readonly bearer: BearerVerifier | null;
  /** The bearer verifier's key sources (authn/issuers.ts), for the next runtime to keep. */
  readonly issuerKeys: ReadonlyMap<string, IssuerKeys>;
  /** The cookie secrets (null without browser login). */
  readonly secrets: SealingSecrets | null;
  readonly sessions: SessionAuthenticator | null;
  /** Token exchange for rules' upstreamToken (null without browser login); one for the process, its cache kept across reloads. */
  readonly exchange: TokenExchanger | null;
  /** What the check pipeline reads (check/decide.ts). */
  readonly decide: DecideDeps;
}

export interface RuntimeDeps {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** The browser login's long-lived parts (null without oidc). */
  readonly login: BrowserLogin | null;
  readonly memory: SessionMemory;
}

/** What the bearer verifier is built from (the whole oidc block: its restart-only fields never differ here). */
const bearerInputs = (config: Config) => [config.oidc, config.issuers, config.identity, config.bearer, config.jwks];
/** What the session authenticator's identity mapping is built from (user-id spaces span every issuer). */
const mappingInputs = (config: Config) => [config.oidc, config.issuers, config.identity];

/**
 * A runtime for `config`; `running` is the runtime in force (null at start-up), whose unchanged parts are
 * taken over. Throws what the builders throw (PolicyError for rules the schema let through).
 */
export function buildRuntime(config: Config, secrets: SealingSecrets | null, configHash: string, running: Runtime | null, deps: RuntimeDeps): Runtime {
  const policy = running !== null && isDeepStrictEqual([running.config.rules, running.config.defaultRule], [config.rules, config.defaultRule])
    ? running.policy
    : compilePolicy(config);
  const keepBearer = running !== null && isDeepStrictEqual(bearerInputs(running.config), bearerInputs(config));
  const bearerSetup = keepBearer ? { verifier: running.bearer, keys: running.issuerKeys } : buildBearer(config, deps.metrics, deps.logger, deps.now, running?.issuerKeys);
  const { login } = deps;
  let sessions: SessionAuthenticator | null = null;
  if (login !== null && secrets !== null) {
    // Its refreshes verify access tokens with this runtime's bearer verifier: kept only along with it.
    const keepSessions = keepBearer && running.sessions !== null && running.secrets !== null
      && sameSecrets(running.secrets, secrets) && isDeepStrictEqual(mappingInputs(running.config), mappingInputs(config));
    sessions = keepSessions ? running.sessions : login.sessionsFor(config, secrets, deps.memory, bearerSetup.verifier);
  }
  const authenticator = createAuthenticator(bearerSetup.verifier, sessions, login?.servedOverHttps);
  const offlineRule = config.rules.findIndex((rule) => rule.offlineToken !== undefined);
  if (offlineRule !== -1 && login === null) throw new PolicyError(`rules.${offlineRule}.offlineToken`, 'needs oidc with session.secretsFile: the grant comes from a browser login');
  const identityHeaders = [config.identity.userIdHeader, config.identity.groupsHeader];
  config.rules.forEach((rule, index) => {
    if (rule.offlineToken !== undefined && identityHeaders.includes(rule.offlineToken.header)) throw new PolicyError(`rules.${index}.offlineToken.header`, `"${rule.offlineToken.header}" is an identity header (identity.userIdHeader/groupsHeader)`);
  });
  const exchanging = config.rules.findIndex((rule) => rule.upstreamToken !== undefined);
  // The exchange is made as oidc.clientId with its secret: the browser login's client.
  if (exchanging !== -1 && login === null) throw new PolicyError(`rules.${exchanging}.upstreamToken`, 'needs oidc with session.secretsFile: the exchange is made as oidc.clientId, the browser login\'s client');
  const exchange = running?.exchange ?? (login === null ? null : createTokenExchanger({
    issuer: config.oidc!.issuer,
    grant: (subjectToken, target) => login.client.exchangeToken(subjectToken, target, deps.now()),
    now: deps.now,
    maxEntries: DEFAULT_EXCHANGE_CACHE_ENTRIES,
    count: (result, error) => deps.metrics.tokenExchanges.inc({ result, error: error === '' ? 'none' : error }),
  }));
  return {
    config,
    configHash,
    policy,
    bearer: bearerSetup.verifier,
    issuerKeys: bearerSetup.keys,
    secrets,
    sessions,
    exchange,
    decide: { policy, authenticator, loginUrl: login ? login.loginUrl : null, cookieNames: cookieNamesOf(config.session), exchange, offline: login?.offline ?? null },
  };
}
