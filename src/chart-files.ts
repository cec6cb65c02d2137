/**
 * The chart's generated files, computed from the code so the chart cannot drift from it
 * (scripts/chart-files.mjs writes them; test/chart compares the committed copies).
 */
import { z } from 'zod';
import { configSchema } from './config/schema.js';
import { ALWAYS_UPSTREAM_ON_ALLOW, AUTH_REQUEST_HEADERS, CHECK_REQUEST_HEADERS, DOWNSTREAM_ON_ALLOW, DOWNSTREAM_ON_DENY } from './envoy-contract.js';
import { RELOADABLE_FIELDS } from './reload/contract.js';

/** The fixed parts of the Istio extension provider; the chart adds service, port, prefix and the configured identity header names. */
export function chartContract() {
  return {
    includeRequestHeadersInCheck: [...CHECK_REQUEST_HEADERS],
    authRequestHeaders: [...AUTH_REQUEST_HEADERS],
    alwaysToUpstreamOnAllow: [...ALWAYS_UPSTREAM_ON_ALLOW],
    headersToDownstreamOnAllow: [...DOWNSTREAM_ON_ALLOW],
    headersToDownstreamOnDeny: [...DOWNSTREAM_ON_DENY],
    statusOnError: '503',
    failOpen: false,
  };
}

/**
 * What a hot reload applies (src/reload/contract.ts): the chart leaves these fields out of the checksum
 * that rolls the pods when reload.enabled, so only a change that needs a restart rolls them.
 */
export function chartReloadContract() {
  return { reloadableFields: [...RELOADABLE_FIELDS] };
}

/** The chart's values schema: the hand-written base plus the service config schema under `config`. */
export function chartValuesSchema(base: Record<string, unknown>): Record<string, unknown> {
  const service = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const { $defs, $schema: _schema, ...configProperties } = service;
  const properties = { ...(base.properties as Record<string, unknown>) };
  properties.config = {
    ...configProperties,
    description: 'The oidc-authz configuration (README "Configuration"); listen ports and secret file paths are set by the chart.',
  };
  return { ...base, properties, $defs: { ...((base.$defs as Record<string, unknown>) ?? {}), ...(($defs as Record<string, unknown>) ?? {}) } };
}
