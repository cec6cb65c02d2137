/**
 * What Istio generates from our extension provider, as plain Envoy config: the ext_authz HTTP filter
 * built the way istio/istio `pilot/pkg/security/authz/builder/extauthz.go` builds it (header patterns
 * become case-insensitive matchers: "x-*" a prefix, "*-x" a suffix, anything else exact; the three
 * `headersTo*` lists map to `authorization_response`). The e2e tests run a real Envoy with this, and
 * the chart renders the provider from the same `extAuthzProvider()`, so the two cannot drift.
 */
import type { extAuthzProvider } from './envoy-contract.js';

export type ExtAuthzProvider = ReturnType<typeof extAuthzProvider>;

type StringMatcher = { exact: string; ignore_case: true } | { prefix: string; ignore_case: true } | { suffix: string; ignore_case: true };

/** Istio's conversion of one header name pattern (extauthz.go `generateHeaders`). */
export function istioHeaderMatcher(pattern: string): StringMatcher {
  if (pattern === '*') throw new Error('Istio refuses a lone "*" header pattern');
  if (pattern.endsWith('*')) return { prefix: pattern.slice(0, -1), ignore_case: true };
  if (pattern.startsWith('*')) return { suffix: pattern.slice(1), ignore_case: true };
  return { exact: pattern, ignore_case: true };
}

const listMatcher = (patterns: readonly string[]) => ({ patterns: patterns.map(istioHeaderMatcher) });

/** Seconds as Envoy's Duration string ("3s"); accepts Istio's "3s" / "500ms" forms. */
function envoyDuration(timeout: string): string {
  const ms = /^(\d+)ms$/.exec(timeout);
  if (ms) return `${Number(ms[1]) / 1000}s`;
  if (/^\d+(\.\d+)?s$/.test(timeout)) return timeout;
  throw new Error(`unsupported timeout "${timeout}"`);
}

/** The `envoy.filters.http.ext_authz` filter for a provider, pointing at `cluster`. */
export function extAuthzFilter(provider: ExtAuthzProvider, cluster: string) {
  const authorizationResponse: Record<string, unknown> = {};
  if (provider.headersToUpstreamOnAllow.length > 0) authorizationResponse.allowed_upstream_headers = listMatcher(provider.headersToUpstreamOnAllow);
  if (provider.headersToDownstreamOnDeny.length > 0) authorizationResponse.allowed_client_headers = listMatcher(provider.headersToDownstreamOnDeny);
  if (provider.headersToDownstreamOnAllow.length > 0) authorizationResponse.allowed_client_headers_on_success = listMatcher(provider.headersToDownstreamOnAllow);
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      transport_api_version: 'V3',
      failure_mode_allow: provider.failOpen,
      status_on_error: { code: Number(provider.statusOnError) },
      allowed_headers: listMatcher(provider.includeRequestHeadersInCheck),
      http_service: {
        server_uri: { uri: `http://${provider.service}`, cluster, timeout: envoyDuration(provider.timeout) },
        path_prefix: provider.pathPrefix,
        ...(Object.keys(authorizationResponse).length > 0 ? { authorization_response: authorizationResponse } : {}),
      },
    },
  };
}

export interface GatewayOptions {
  readonly listenPort: number;
  readonly authz: { host: string; port: number };
  readonly upstream: { host: string; port: number };
  readonly provider: ExtAuthzProvider;
  /** Paths routed to oidc-authz itself without a check (what the chart's VirtualService and the CUSTOM policy's notPaths do). */
  readonly authzRoutes: readonly string[];
  /** Other services behind the gateway, not checked (as Kubeflow routes /dex/ to Dex and excludes it). */
  readonly uncheckedRoutes?: ReadonlyArray<{ prefix: string; host: string; port: number }>;
  /** Envoy's own traces (what Istio's meshConfig tracing turns on), sent to an OTLP/HTTP collector. */
  readonly tracing?: EnvoyTracing;
}

export interface EnvoyTracing {
  readonly collector: { host: string; port: number };
  readonly serviceName: string;
}

/**
 * Envoy's OpenTelemetry tracer (envoy.tracers.opentelemetry) exporting OTLP/HTTP: a span for each request
 * and one for the ext_authz call, whose context Envoy sends to the check in `traceparent`. Every request
 * sampled; each finished span is exported at once (runtime min_flush_spans 1) instead of in fives.
 */
function tracingConfig(tracing: EnvoyTracing) {
  return {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
        http_service: {
          http_uri: { uri: `http://${tracing.collector.host}:${tracing.collector.port}/v1/traces`, cluster: 'otlp-collector', timeout: '2s' },
        },
        service_name: tracing.serviceName,
      },
    },
    random_sampling: { value: 100 },
  };
}

/**
 * A gateway as Istio configures an ingress gateway: HCM with `use_remote_address` and BASE path
 * normalization (normalize_path on, merge_slashes off, escaped slashes kept), ext_authz before the
 * router, /oauth2/ and /authservice/ routed to oidc-authz unchecked, everything else checked and
 * routed to the upstream.
 */
export function gatewayConfig(options: GatewayOptions) {
  const cluster = (name: string, target: { host: string; port: number }) => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: target.host, port_value: target.port } } } }] }],
    },
  });
  const unchecked = {
    'envoy.filters.http.ext_authz': {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
      disabled: true,
    },
  };
  return {
    static_resources: {
      listeners: [{
        name: 'ingress',
        address: { socket_address: { address: '127.0.0.1', port_value: options.listenPort } },
        // One listening socket (tests and the demo run one worker; the port is bound at start-up, so a
        // second Envoy on the same port fails instead of sharing it through SO_REUSEPORT).
        enable_reuse_port: false,
        filter_chains: [{
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'ingress',
              use_remote_address: true,
              normalize_path: true,
              merge_slashes: false,
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              ...(options.tracing === undefined ? {} : { tracing: tracingConfig(options.tracing) }),
              route_config: {
                virtual_hosts: [{
                  name: 'all',
                  domains: ['*'],
                  routes: [
                    ...options.authzRoutes.map((prefix) => ({ match: { prefix }, route: { cluster: 'oidc-authz' }, typed_per_filter_config: unchecked })),
                    ...(options.uncheckedRoutes ?? []).map((r, i) => ({ match: { prefix: r.prefix }, route: { cluster: `unchecked-${i}` }, typed_per_filter_config: unchecked })),
                    { match: { prefix: '/' }, route: { cluster: 'upstream' } },
                  ],
                }],
              },
              http_filters: [
                extAuthzFilter(options.provider, 'oidc-authz'),
                { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
              ],
            },
          }],
        }],
      }],
      clusters: [
        cluster('oidc-authz', options.authz),
        cluster('upstream', options.upstream),
        ...(options.uncheckedRoutes ?? []).map((r, i) => cluster(`unchecked-${i}`, r)),
        ...(options.tracing === undefined ? [] : [cluster('otlp-collector', options.tracing.collector)]),
      ],
    },
    ...(options.tracing === undefined ? {} : {
      layered_runtime: { layers: [{ name: 'tracing', static_layer: { 'tracing.opentelemetry.min_flush_spans': 1 } }] },
    }),
  };
}

/** Paths Istio sends to oidc-authz directly (VirtualService) and the CUSTOM policy leaves unchecked. */
export const AUTHZ_ROUTES = ['/oauth2/', '/authservice/'] as const;
