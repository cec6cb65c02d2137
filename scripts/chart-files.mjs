#!/usr/bin/env node
/**
 * Writes the chart's generated files from the code (run by `make manifests`, checked by test/chart):
 * - charts/oidc-authz/files/envoy-contract.json: the header lists of src/envoy-contract.ts;
 * - charts/oidc-authz/files/reload-contract.json: the fields a hot reload applies (src/reload/contract.ts);
 * - charts/oidc-authz/values.schema.json: scripts/values.base.schema.json with the service's config
 *   schema (src/config/schema.ts, as JSON Schema) under `config`, so `helm install` refuses what the
 *   service would refuse at start-up.
 * Needs `make build` first (it imports dist/).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { chartContract, chartReloadContract, chartValuesSchema } = await import(join(root, 'dist/chart-files.js'));
const base = JSON.parse(readFileSync(join(root, 'scripts/values.base.schema.json'), 'utf8'));
writeFileSync(join(root, 'charts/oidc-authz/files/envoy-contract.json'), `${JSON.stringify(chartContract(), null, 2)}\n`);
writeFileSync(join(root, 'charts/oidc-authz/files/reload-contract.json'), `${JSON.stringify(chartReloadContract(), null, 2)}\n`);
writeFileSync(join(root, 'charts/oidc-authz/values.schema.json'), `${JSON.stringify(chartValuesSchema(base), null, 2)}\n`);
console.log('wrote charts/oidc-authz/files/envoy-contract.json, files/reload-contract.json and charts/oidc-authz/values.schema.json');
