/**
 * The whole product on 127.0.0.1, as it runs behind Istio: the dev OpenID Provider, oidc-authz, an
 * echo upstream and a real Envoy configured from our extension provider (src/envoy-config.ts).
 * Browsers talk to Envoy only; publicUrl is Envoy's address.
 */
import { startDevIdp, type DevIdp, type DevIdpUser } from '../../demo/dev-idp.js';
import { startEcho, type Echo } from '../../demo/echo.js';
import { startEnvoy, type RunningEnvoy } from '../../demo/envoy.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { extAuthzProvider } from '../../src/envoy-contract.js';
import { AUTHZ_ROUTES, type EnvoyTracing, type ExtAuthzProvider } from '../../src/envoy-config.js';
import { freePort, startService, tempFile, type RunningService } from './service.js';

export const STACK_CLIENT = { clientId: 'kubeflow-oidc-authservice', clientSecret: 'e2e-client-secret' };
export const STACK_USERS: Record<string, DevIdpUser> = {
  alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a', 'ml'], name: 'Alice' },
  bob: { password: 'bob-pw', email: 'bob@example.com', groups: ['team-b'], name: 'Bob' },
};

export interface Stack {
  /** Envoy's URL: what a browser opens. */
  readonly url: string;
  readonly idp: DevIdp;
  readonly echo: Echo;
  readonly authz: RunningService;
  readonly envoy: RunningEnvoy;
  stop(): Promise<void>;
}

export const STACK_RULES: NonNullable<ConfigInput['rules']> = [
  { name: 'static', paths: ['/static/**', '/favicon.ico'], allow: 'anonymous' },
  { name: 'team-a', paths: ['/team-a/**'], allow: { groups: ['team-a'] } },
  { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
];

/** oidc-authz, an echo upstream and Envoy in front, for an IdP that is already running. */
export interface Gateway {
  /** Envoy's URL: what a browser opens. */
  readonly url: string;
  readonly echo: Echo;
  readonly authz: RunningService;
  readonly envoy: RunningEnvoy;
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Envoy's port, chosen before the IdP starts when the IdP must know the redirect URI. */
  readonly port: number;
  /** The service's config; publicUrl and the listen address are filled in. */
  readonly config: ConfigInput;
  readonly now?: () => number;
  /** Prefixes Envoy routes to another address without a check (Kubeflow's /dex/). */
  readonly uncheckedRoutes?: ReadonlyArray<{ prefix: string; host: string; port: number }>;
  /** The extension provider as a mesh config states it (its service and port are pointed at the service here); default: extAuthzProvider(config). */
  readonly provider?: ExtAuthzProvider;
  /** Envoy's own OpenTelemetry traces, to this collector. */
  readonly envoyTracing?: EnvoyTracing;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const url = `http://127.0.0.1:${options.port}`;
  const echo = await startEcho();
  const authz = await startService({ publicUrl: url, trustForwardedProto: true, ...options.config }, options.now ? { now: options.now } : {});
  const authzPort = Number(new URL(authz.url).port);
  // 10s, not the chart's 3s: a check here may call a real IdP that stalls on a loaded test machine (a cold JVM
  // path, a GC pause); what Envoy does at its timeout is not what these tests are about.
  const provider = options.provider === undefined
    ? extAuthzProvider(authz.service.config, { service: '127.0.0.1', port: authzPort, timeout: '10s' })
    : { ...options.provider, service: '127.0.0.1', port: authzPort };
  const envoy = await startEnvoy({
    listenPort: options.port,
    authz: { host: '127.0.0.1', port: authzPort },
    upstream: { host: '127.0.0.1', port: echo.port },
    provider,
    authzRoutes: AUTHZ_ROUTES,
    uncheckedRoutes: options.uncheckedRoutes ?? [],
    ...(options.envoyTracing === undefined ? {} : { tracing: options.envoyTracing }),
  });
  return {
    url,
    echo,
    authz,
    envoy,
    async stop() {
      await envoy.stop();
      await authz.close();
      await echo.stop();
    },
  };
}

/**
 * `idpBehindGateway`: Kubeflow's topology — the IdP's issuer is an address browsers cannot use, the
 * gateway routes /dex/ to it unchecked, and oidc.authorizationEndpoint sends browsers to /dex/auth.
 */
export async function startStack(overrides: Partial<ConfigInput> = {}, options: { now?: () => number; idpBehindGateway?: boolean } = {}): Promise<Stack> {
  const envoyPort = await freePort();
  const url = `http://127.0.0.1:${envoyPort}`;
  const idp = await startDevIdp({
    issuerPath: '/dex',
    users: structuredClone(STACK_USERS),
    clients: [{ ...STACK_CLIENT, redirectUris: [`${url}/oauth2/callback`], postLogoutRedirectUris: [`${url}/oauth2/signed_out`] }],
    log: () => undefined,
  });
  const gateway = await startGateway({
    port: envoyPort,
    config: {
      oidc: {
        issuer: idp.issuer,
        clientId: STACK_CLIENT.clientId,
        clientSecretFile: tempFile(STACK_CLIENT.clientSecret),
        ...(options.idpBehindGateway ? { authorizationEndpoint: '/dex/auth' } : {}),
      },
      issuers: [],
      session: { secretsFile: tempFile('e2e-cookie-secret-0123456789abcdefghijklmnop'), secure: false },
      rules: STACK_RULES,
      ...overrides,
    },
    ...(options.now ? { now: options.now } : {}),
    uncheckedRoutes: options.idpBehindGateway ? [{ prefix: '/dex/', host: '127.0.0.1', port: Number(new URL(idp.url).port) }] : [],
  });
  return {
    ...gateway,
    idp,
    async stop() {
      await gateway.stop();
      await idp.stop();
    },
  };
}
