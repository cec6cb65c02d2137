/* eslint-disable @typescript-eslint/no-explicit-any -- rendered YAML is walked by path; expect() checks each shape */
/**
 * The Helm chart and the kustomize manifests, with the real helm and kustomize (built from the Go
 * module proxy into .tools/bin by `make install`): lint, render, validate every object against the
 * Kubernetes, Istio and Prometheus-operator schemas, and prove the chart cannot drift from the code.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { chartContract, chartReloadContract, chartValuesSchema } from '../../src/chart-files.js';
import { parseConfig } from '../../src/config/load.js';
import { AUTHZ_ROUTES } from '../../src/envoy-config.js';
import { extAuthzProvider, upstreamHeaderPlan } from '../../src/envoy-contract.js';

const ROOT = process.cwd();
const HELM = process.env.HELM ?? join(ROOT, '.tools/bin/helm');
const KUSTOMIZE = process.env.KUSTOMIZE ?? join(ROOT, '.tools/bin/kustomize');
const CHART = join(ROOT, 'charts/oidc-authz');
const CI_VALUES = ['bearer-only-values.yaml', 'kubeflow-dex-values.yaml', 'workspaces-values.yaml', 'eoepca-values.yaml', 'redis-sentinel-values.yaml', 'redis-demo-values.yaml'];

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; spec?: Record<string, unknown>; data?: Record<string, string> };

function run(command: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: ROOT });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function helmTemplate(args: string[], namespace = 'oidc-authz'): K8sObject[] {
  const result = run(HELM, ['template', 'oidc-authz', CHART, '--namespace', namespace, ...args]);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseObjects(result.stdout);
}

function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text).map((d) => d.toJS() as K8sObject).filter((o) => o !== null && typeof o === 'object');
}

/** The model class of an object's apiVersion/kind from kubernetes-models and its Istio / Prometheus-operator packages. */
async function validateObject(object: K8sObject): Promise<void> {
  // kustomize's secretGenerator wraps long base64 values over several lines; the API server's decoder
  // skips the newlines, the schema's "byte" format does not.
  if (object.kind === 'Secret' && object.data !== null && typeof object.data === 'object') {
    object = { ...object, data: Object.fromEntries(Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')])) };
  }
  const slash = object.apiVersion.indexOf('/');
  const group = slash === -1 ? '' : object.apiVersion.slice(0, slash);
  const version = object.apiVersion.slice(slash + 1);
  let module: string;
  if (group === '') module = `kubernetes-models/${version}/${object.kind}`;
  else if (group.endsWith('.istio.io')) module = `@kubernetes-models/istio/${group}/${version}/${object.kind}`;
  else if (group === 'monitoring.coreos.com') module = `@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`;
  else module = `kubernetes-models/${group}/${version}/${object.kind}`;
  const exported = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = exported[object.kind] ?? exported.default;
  if (Model === undefined) throw new Error(`no model for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

const find = (objects: K8sObject[], kind: string, name?: string) => {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind} ${name ?? ''} rendered`);
  return found;
};
const dataOf = (object: K8sObject, key: string): string => {
  const value = object.data?.[key];
  if (value === undefined) throw new Error(`${object.kind} ${object.metadata.name} has no data.${key}`);
  return value;
};
/** NOTES.txt as `helm install` prints it (helm template does not): rendered through a throw-away copy of the chart. */
function renderNotes(args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-notes-'));
  try {
    cpSync(CHART, join(dir, 'chart'), { recursive: true });
    writeFileSync(join(dir, 'chart/templates/zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: notes }\ndata:\n  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | toJson }}\n');
    const result = run(HELM, ['template', 'oidc-authz', join(dir, 'chart'), '--namespace', 'oidc-authz', '--show-only', 'templates/zz-notes.yaml', ...args]);
    if (result.status !== 0 || result.stderr !== '') throw new Error(`helm template (NOTES.txt) failed: ${result.stderr}`);
    return dataOf(parseObjects(result.stdout)[0]!, 'notes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const renderedConfig = (objects: K8sObject[]) => parseConfig(parseYaml(dataOf(find(objects, 'ConfigMap', 'oidc-authz'), 'config.yaml')));
const renderedProvider = (objects: K8sObject[]) => {
  const mesh = parseYaml(dataOf(find(objects, 'ConfigMap', 'oidc-authz-istio-mesh-config'), 'istiod-values.yaml')) as {
    meshConfig: { extensionProviders: Array<{ name: string; envoyExtAuthzHttp: Record<string, unknown> }> };
  };
  return mesh.meshConfig.extensionProviders[0]!;
};

describe.each([['default values', [] as string[]], ...CI_VALUES.map((file) => [file, ['-f', join(CHART, 'ci', file)]] as [string, string[]])])('%s', (_name, args) => {
  const objects = () => helmTemplate(['--set', 'fullnameOverride=oidc-authz', ...args]);

  test('helm lint passes', () => {
    const result = run(HELM, ['lint', CHART, '--strict', ...args]);
    expect(result.stderr + result.stdout).not.toMatch(/\[ERROR\]/);
    expect(result.status).toBe(0);
  });

  test('every rendered object is valid for its Kubernetes / Istio / Prometheus-operator schema', async () => {
    const rendered = objects();
    expect(rendered.length).toBeGreaterThanOrEqual(7);
    for (const object of rendered) await expect(validateObject(object)).resolves.toBeUndefined();
  });

  test('the rendered config is accepted by the service and the provider matches the code', () => {
    const rendered = objects();
    const config = renderedConfig(rendered);
    expect(config.listen.port).toBe(8080);
    expect(config.session.secretsFile).toBe('/etc/oidc-authz/secrets/cookie-secrets');
    const provider = renderedProvider(rendered);
    expect(provider.envoyExtAuthzHttp).toEqual(
      extAuthzProvider(config, { service: 'oidc-authz.oidc-authz.svc.cluster.local', port: 8080, timeout: '3s' }),
    );
    expect(provider.envoyExtAuthzHttp.headersToUpstreamOnAllow).toEqual(upstreamHeaderPlan(config).upstreamOnAllow);
  });

  test('hardened pods: non-root, read-only root, no capabilities, seccomp, probes, the restart-only config checksum', () => {
    const deployment = find(objects(), 'Deployment') as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string> }; spec: { securityContext: Record<string, unknown>; containers: Array<Record<string, any>> } } };
    };
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0]!;
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(deployment.spec.template.metadata.annotations['checksum/config-restart']).toMatch(/^[0-9a-f]{64}$/);
  });
});

test('ci/eoepca-values.yaml installs examples/eoepca/config.yaml, whose cases `make test` runs (the secret files are the chart\'s)', () => {
  const example = parseYaml(readFileSync(join(ROOT, 'examples/eoepca/config.yaml'), 'utf8')) as Record<string, any>;
  const rules = parseConfig(example).rules;
  delete example.oidc.clientSecretFile;
  delete example.session.secretsFile;
  const values = parseYaml(readFileSync(join(CHART, 'ci', 'eoepca-values.yaml'), 'utf8')) as { config: unknown };
  expect(values.config).toEqual(example);
  const rendered = renderedConfig(helmTemplate(['--set', 'fullnameOverride=oidc-authz', '-f', join(CHART, 'ci', 'eoepca-values.yaml')]));
  expect(rendered.rules).toEqual(rules);
});

describe('Istio wiring', () => {
  const kubeflow = () => helmTemplate(['-f', join(CHART, 'ci', 'kubeflow-dex-values.yaml')]);

  test('the CUSTOM policy checks everything except /oauth2/* and /authservice/* (and only the documented extra exclusions)', () => {
    const policy = find(helmTemplate([]), 'AuthorizationPolicy') as unknown as { spec: Record<string, any> };
    expect(policy.spec.action).toBe('CUSTOM');
    expect(policy.spec.provider.name).toBe('oidc-authz');
    expect(policy.spec.rules).toEqual([{ to: [{ operation: { notPaths: ['/oauth2/*', '/authservice/*'] } }] }]);
    const kf = find(kubeflow(), 'AuthorizationPolicy') as unknown as { metadata: { name: string; namespace: string }; spec: Record<string, any> };
    expect(kf.metadata).toMatchObject({ name: 'istio-ingressgateway-oauth2-proxy', namespace: 'istio-system' });
    expect(kf.spec.rules[0].to[0].operation.notPaths).toEqual(['/oauth2/*', '/authservice/*', '/dex/*']);
  });

  test('RequestAuthentications verify tokens only: never outputClaimToHeaders', () => {
    const all = [...helmTemplate(['-f', join(CHART, 'ci', 'bearer-only-values.yaml')]), ...kubeflow()].filter((o) => o.kind === 'RequestAuthentication');
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const ra of all) {
      for (const rule of (ra.spec as { jwtRules: Array<Record<string, unknown>> }).jwtRules) expect(rule.outputClaimToHeaders).toBeUndefined();
    }
    expect(all.filter((o) => o.metadata.namespace === 'istio-system').map((o) => o.metadata.name)).toEqual(expect.arrayContaining(['dex-jwt', 'm2m-token-issuer']));
  });

  test("Kubeflow's model: forwardIdToken adds authorization to the provider; claim mapping only with it", () => {
    const mapping = [
      '--set', 'istio.requestAuthentication.rules[0].name=dex-jwt',
      '--set', 'istio.requestAuthentication.rules[0].issuer=http://dex.auth.svc.cluster.local:5556/dex',
      '--set', 'istio.requestAuthentication.rules[0].outputClaimToHeaders[0].header=kubeflow-userid',
      '--set', 'istio.requestAuthentication.rules[0].outputClaimToHeaders[0].claim=email',
    ];
    const refused = run(HELM, ['template', 'oidc-authz', CHART, '-f', join(CHART, 'ci', 'kubeflow-dex-values.yaml'), ...mapping]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('istio.requestAuthentication.rules[0].outputClaimToHeaders: needs config.identity.forwardIdToken');

    const objects = helmTemplate(['-f', join(CHART, 'ci', 'kubeflow-dex-values.yaml'), '--set', 'config.identity.forwardIdToken=true', ...mapping]);
    const config = renderedConfig(objects);
    expect(config.identity.forwardIdToken).toBe(true);
    const provider = renderedProvider(objects);
    expect(provider.envoyExtAuthzHttp.headersToUpstreamOnAllow).toContain('authorization');
    expect(provider.envoyExtAuthzHttp).toEqual(extAuthzProvider(config, { service: 'oidc-authz.oidc-authz.svc.cluster.local', port: 8080, timeout: '3s' }));
    const ra = find(objects, 'RequestAuthentication', 'dex-jwt') as unknown as { spec: { jwtRules: Array<Record<string, unknown>> } };
    expect(ra.spec.jwtRules[0]!.outputClaimToHeaders).toEqual([{ header: 'kubeflow-userid', claim: 'email' }]);
  });

  test('the VirtualService routes /oauth2/ and /authservice/ to the service', () => {
    const vs = find(kubeflow(), 'VirtualService') as unknown as { spec: Record<string, any> };
    expect(vs.spec.gateways).toEqual(['kubeflow/kubeflow-gateway']);
    expect(vs.spec.http[0].match).toEqual([{ uri: { prefix: '/oauth2/' } }, { uri: { prefix: '/authservice/' } }]);
    expect(vs.spec.http[0].route[0].destination).toEqual({ host: 'oidc-authz.oidc-authz.svc.cluster.local', port: { number: 8080 } });
  });

  test.each<[string, string[]]>([
    ['custom header names', ['--set', 'config.identity.userIdHeader=x-user', '--set', 'config.identity.groupsHeader=x-groups']],
    ['custom header names with the x-auth-request-* headers on', ['--set', 'config.identity.userIdHeader=x-forwarded-user', '--set', 'config.identity.groupsHeader=x-forwarded-groups', '--set', 'config.identity.authRequestHeaders=true']],
    ['an offline-token route (its header set by the hand-over only)', ['--set', 'config.identity.userIdHeader=x-user', '--set', 'config.identity.groupsHeader=x-groups', '--set-json', 'config.rules=[{"name":"grant","paths":["/jobs/grant"],"allow":"authenticated","offlineToken":{"header":"x-offline-token"}},{"name":"grant-2","paths":["/jobs/grant-2"],"allow":"authenticated","offlineToken":{"header":"x-offline-token"}}]']],
    ['custom header names and a rule exchanging tokens', ['--set', 'config.identity.userIdHeader=x-user', '--set', 'config.identity.groupsHeader=x-groups', '--set-json', 'config.rules=[{"name":"pipelines","paths":["/pipelines/**"],"allow":"authenticated","upstreamToken":{"exchange":{"audience":"ml-pipeline"}}}]']],
  ])('%s: headersToUpstreamOnAllow is what upstreamHeaderPlan says', (_name, args) => {
    const objects = helmTemplate(['--set', 'fullnameOverride=oidc-authz', ...args]);
    const config = renderedConfig(objects);
    const provider = renderedProvider(objects).envoyExtAuthzHttp;
    expect(provider.headersToUpstreamOnAllow).toEqual(upstreamHeaderPlan(config).upstreamOnAllow);
    expect(provider.headersToUpstreamOnAllow).toEqual(expect.arrayContaining([config.identity.userIdHeader, config.identity.groupsHeader, 'x-auth-request-user']));
    expect(provider.headersToUpstreamOnAllow).not.toContain('kubeflow-userid');
    expect(provider).toEqual(extAuthzProvider(config, { service: 'oidc-authz.oidc-authz.svc.cluster.local', port: 8080, timeout: '3s' }));
  });

  test('NOTES.txt shows the same provider as the code (and the mesh config step)', () => {
    const args = ['-f', join(CHART, 'ci', 'kubeflow-dex-values.yaml'), '--set', 'config.identity.userIdHeader=x-user'];
    const notes = renderNotes(args);
    const block = /^meshConfig:\n(?: .*\n)+/m.exec(notes);
    expect(block).not.toBeNull();
    const mesh = parseYaml(block![0]) as { meshConfig: { extensionProviders: Array<{ name: string; envoyExtAuthzHttp: unknown }> } };
    const config = renderedConfig(helmTemplate(args));
    expect(mesh.meshConfig.extensionProviders).toEqual([
      { name: 'oauth2-proxy', envoyExtAuthzHttp: extAuthzProvider(config, { service: 'oidc-authz.oidc-authz.svc.cluster.local', port: 8080, timeout: '3s' }) },
    ]);
    expect(notes).toContain('helm upgrade istiod istio/istiod -n istio-system --reuse-values -f istiod-values.yaml');
    expect(notes).toContain('register https://kubeflow.example.com/oauth2/callback');
    // Cookie sessions: nothing about Redis.
    expect(notes).not.toMatch(/redis|backchannel/i);
  });

  test('terminationGracePeriodSeconds must outlast config.listen.shutdownTimeout', () => {
    const grace = (args: string[]) =>
      (find(helmTemplate(args), 'Deployment') as unknown as { spec: { template: { spec: { terminationGracePeriodSeconds: number } } } }).spec.template.spec.terminationGracePeriodSeconds;
    expect(grace([])).toBeGreaterThan(20);
    expect(grace(['--set-string', 'config.listen.shutdownTimeout=1m30s', '--set', 'terminationGracePeriodSeconds=91'])).toBe(91);
    for (const args of [['--set-string', 'config.listen.shutdownTimeout=45s'], ['--set', 'config.listen.shutdownTimeout=30'], ['--set-string', 'config.listen.shutdownTimeout=1h']]) {
      const result = run(HELM, ['template', 'oidc-authz', CHART, ...args]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('terminationGracePeriodSeconds: 30 must be longer than config.listen.shutdownTimeout');
    }
  });

  test('the cluster CA is trusted for HTTPS JWKS on the API server (and can be switched off)', () => {
    const pod = (args: string[]) =>
      (find(helmTemplate(args), 'Deployment') as unknown as { spec: { template: { spec: { automountServiceAccountToken: boolean; containers: Array<Record<string, any>>; volumes: Array<Record<string, any>> } } } }).spec.template.spec;
    const on = pod([]);
    expect(on.automountServiceAccountToken).toBe(false);
    expect(on.containers[0]!.env).toEqual([{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/oidc-authz/cluster-ca/ca.crt' }]);
    expect(on.volumes).toContainEqual({ name: 'cluster-ca', configMap: { name: 'kube-root-ca.crt', optional: true, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    const off = pod(['--set', 'trustClusterCA=false']);
    expect(off.containers[0]!.env).toBeUndefined();
    expect(off.volumes.map((v) => v.name)).not.toContain('cluster-ca');
  });

});

describe('hot reload (reload.enabled): which changes roll the pods', () => {
  type Pod = { metadata: { annotations: Record<string, string> }; spec: { containers: Array<Record<string, any>>; volumes: Array<Record<string, any>> } };
  const login = ['--set', 'config.publicUrl=https://k.example.com', '--set', 'config.oidc.issuer=https://idp.example.com', '--set', 'config.oidc.clientId=c', '--set', 'secrets.clientSecret=client-secret-1'];
  const podOf = (args: string[]) => (find(helmTemplate([...login, ...args]), 'Deployment') as unknown as { spec: { template: Pod } }).spec.template;
  const annotations = (args: string[] = []) => podOf(args).metadata.annotations;

  test('the config is mounted as a directory (kubelet updates it; a subPath it never would) and the service watches it', () => {
    const pod = podOf([]);
    const container = pod.spec.containers[0]!;
    expect(container.args).toEqual(['serve', '--config', '/etc/oidc-authz/config/config.yaml']);
    expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/oidc-authz/config', readOnly: true });
    for (const mount of container.volumeMounts as Array<Record<string, unknown>>) expect(mount.subPath).toBeUndefined();
    expect(renderedConfig(helmTemplate(login)).reload).toEqual({ watch: true, debounce: 200 });
  });

  test('on (the default): no checksum of the whole ConfigMap or Secret; what a reload applies rolls nothing', () => {
    const base = annotations();
    expect(Object.keys(base).sort()).toEqual(['checksum/client-secret', 'checksum/config-restart']);
    for (const change of [
      ['--set', 'config.defaultRule=authenticated'],
      ['--set', 'config.rules[0].name=all', '--set', 'config.rules[0].paths[0]=/**', '--set', 'config.rules[0].allow=anonymous'],
      ['--set', 'config.identity.userIdClaim=preferred_username', '--set', 'config.identity.groupsClaim=roles', '--set', 'config.identity.userIdPrefix=p:'],
      ['--set', 'config.issuers[0].issuer=https://k8s.example.com', '--set', 'config.issuers[0].audiences[0]=gw', '--set', 'config.issuers[0].userIdPrefix=sa:'],
      ['--set', 'config.oidc.audiences[0]=other', '--set', 'config.log.level=debug'],
      ['--set', 'secrets.cookieSecrets[0]=a-new-first-cookie-secret-0123456789', '--set', 'secrets.cookieSecrets[1]=the-old-cookie-secret-0123456789abcd'],
    ]) expect(annotations(change)).toEqual(base);
  });

  test.each<[string, string[], string]>([
    ['a port', ['--set', 'service.port=8081'], 'checksum/config-restart'],
    ['the oidc issuer', ['--set', 'config.oidc.issuer=https://idp2.example.com'], 'checksum/config-restart'],
    ['an identity header name (Envoy\'s contract)', ['--set', 'config.identity.userIdHeader=x-user'], 'checksum/config-restart'],
    ['the session cookie name', ['--set', 'config.session.cookieName=other'], 'checksum/config-restart'],
    ['the client secret (read at start-up only)', ['--set', 'secrets.clientSecret=client-secret-2'], 'checksum/client-secret'],
  ])('on: %s needs a restart, so it rolls the pods', (_what, change, annotation) => {
    const before = annotations();
    const after = annotations(change);
    expect(after[annotation]).not.toBe(before[annotation]);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });

  test('on: the client secret\'s checksum is a slow salted hash, not its SHA-256', () => {
    expect(annotations()['checksum/client-secret']).not.toBe(createHash('sha256').update('client-secret-1').digest('hex'));
    expect(annotations(['--set', 'secrets.existingSecret=mine'])['checksum/client-secret']).toBeUndefined();
  });

  test('off: any change to the ConfigMap or the Secret rolls the pods, and the service does not watch', () => {
    const off = ['--set', 'reload.enabled=false'];
    const base = annotations(off);
    expect(Object.keys(base).sort()).toEqual(['checksum/config', 'checksum/secret']);
    expect(annotations([...off, '--set', 'config.defaultRule=authenticated'])['checksum/config']).not.toBe(base['checksum/config']);
    expect(annotations([...off, '--set', 'secrets.cookieSecrets[0]=a-new-first-cookie-secret-0123456789'])['checksum/secret']).not.toBe(base['checksum/secret']);
    expect(renderedConfig(helmTemplate([...login, ...off])).reload.watch).toBe(false);
    // The config's own setting wins over the chart's choice.
    expect(renderedConfig(helmTemplate([...login, '--set', 'config.reload.watch=false'])).reload.watch).toBe(false);
  });
});

describe('no drift between code, chart and manifests', () => {
  test('files/envoy-contract.json is what src/envoy-contract.ts says', () => {
    expect(JSON.parse(readFileSync(join(CHART, 'files/envoy-contract.json'), 'utf8'))).toEqual(chartContract());
  });

  test('files/reload-contract.json is what src/reload/contract.ts says (fields at most two deep: the chart\'s checksum follows those)', () => {
    const contract = JSON.parse(readFileSync(join(CHART, 'files/reload-contract.json'), 'utf8')) as { reloadableFields: string[] };
    expect(contract).toEqual(chartReloadContract());
    for (const field of contract.reloadableFields) expect(field.split('.').length).toBeLessThanOrEqual(2);
  });

  test('values.schema.json holds the service config schema of src/config/schema.ts', () => {
    const base = JSON.parse(readFileSync(join(ROOT, 'scripts/values.base.schema.json'), 'utf8')) as Record<string, unknown>;
    expect(JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'))).toEqual(chartValuesSchema(base));
  });

  test.each([
    ['manifests/base/oidc-authz.yaml', 'oidc-authz', 'manifests/values/base.yaml'],
    ['manifests/overlays/kubeflow/oidc-authz.yaml', 'oauth2-proxy', 'manifests/values/kubeflow.yaml'],
  ])('%s is what the chart renders (make manifests)', (file, namespace, values) => {
    const result = run(HELM, ['template', 'oidc-authz', CHART, '--namespace', namespace, '-f', join(ROOT, values)]);
    expect(result.status).toBe(0);
    expect(readFileSync(join(ROOT, file), 'utf8')).toBe(result.stdout);
  });

  test.each([
    ['charts/oidc-authz/istiod-values.yaml', 'oidc-authz', undefined, 'oidc-authz'],
    ['manifests/overlays/kubeflow/istiod-values.yaml', 'oauth2-proxy', 'manifests/values/kubeflow.yaml', 'oauth2-proxy'],
  ])('%s (values for istiod\'s chart) is what the chart renders, and its provider is the code\'s', (file, namespace, values, providerName) => {
    const valuesArgs = values === undefined ? [] : ['-f', join(ROOT, values)];
    const objects = helmTemplate(valuesArgs, namespace);
    const committed = readFileSync(join(ROOT, file), 'utf8');
    const rendered = dataOf(find(objects, 'ConfigMap', 'oidc-authz-istio-mesh-config'), 'istiod-values.yaml');
    expect(committed).toBe(`# Generated by \`make manifests\` from charts/oidc-authz (release oidc-authz, namespace ${namespace}); do not edit.\n${rendered}`);
    const config = renderedConfig(objects);
    expect(parseYaml(committed)).toEqual({
      meshConfig: { extensionProviders: [{ name: providerName, envoyExtAuthzHttp: extAuthzProvider(config, { service: `oidc-authz.${namespace}.svc.cluster.local`, port: 8080, timeout: '3s' }) }] },
    });
  });

  test.each(['manifests/base', 'manifests/overlays/kubeflow'])('kustomize build %s: every object valid', async (dir) => {
    const result = run(KUSTOMIZE, ['build', join(ROOT, dir)]);
    expect(result.stderr).toBe('');
    const objects = parseObjects(result.stdout);
    expect(objects.some((o) => o.kind === 'Deployment')).toBe(true);
    for (const object of objects) await expect(validateObject(object)).resolves.toBeUndefined();
  });

  test('the Kubeflow overlay replaces the oauth2-proxy wiring: provider oauth2-proxy, Dex issuer, sub for service accounts', () => {
    const objects = parseObjects(run(KUSTOMIZE, ['build', join(ROOT, 'manifests/overlays/kubeflow')]).stdout);
    const config = renderedConfig(objects);
    expect(config.oidc?.issuer).toBe('http://dex.auth.svc.cluster.local:5556/dex');
    expect(config.issuers[0]).toMatchObject({ issuer: 'https://kubernetes.default.svc.cluster.local', userIdClaim: 'sub' });
    expect(config.identity).toMatchObject({ userIdHeader: 'kubeflow-userid', groupsHeader: 'kubeflow-groups' });
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-<hash>')}/${o.metadata.namespace ?? ''}`).sort()).toEqual([
      'AuthorizationPolicy/istio-ingressgateway-oauth2-proxy/istio-system',
      'ConfigMap/oidc-authz-istio-mesh-config/oauth2-proxy',
      'ConfigMap/oidc-authz/oauth2-proxy',
      'Deployment/cluster-jwks-proxy/istio-system',
      'Deployment/oidc-authz/oauth2-proxy',
      'Namespace/oauth2-proxy/',
      'NetworkPolicy/allow-istio-ingressgateway-to-oidc-authz/oauth2-proxy',
      'NetworkPolicy/allow-oidc-authz-to-cluster-jwks-proxy/istio-system',
      'NetworkPolicy/allow-oidc-authz-to-dex/auth',
      'NetworkPolicy/default-allow-same-namespace-oauth2-proxy/oauth2-proxy',
      'PodDisruptionBudget/oidc-authz/oauth2-proxy',
      'RequestAuthentication/dex-jwt/istio-system',
      'RequestAuthentication/m2m-token-issuer/istio-system',
      'Secret/oidc-authz-secrets-<hash>/oauth2-proxy',
      'Service/cluster-jwks-proxy/istio-system',
      'Service/oidc-authz/oauth2-proxy',
      'ServiceAccount/cluster-jwks-proxy/istio-system',
      'ServiceAccount/oidc-authz/oauth2-proxy',
      'VirtualService/oidc-authz/oauth2-proxy',
    ]);
    // Kubeflow's own objects select the gateway by app: istio-ingressgateway; ours replace them by name and
    // verify tokens only (Kubeflow's map claims to kubeflow-userid, which would strip ours).
    for (const object of objects.filter((o) => o.metadata.namespace === 'istio-system' && o.apiVersion.includes('istio.io'))) {
      expect(object.spec?.selector).toEqual({ matchLabels: { app: 'istio-ingressgateway' } });
      for (const rule of (object.spec?.jwtRules as Array<Record<string, unknown>> | undefined) ?? []) expect(rule.outputClaimToHeaders).toBeUndefined();
    }

    const provider = renderedProvider(objects);
    expect(provider.name).toBe('oauth2-proxy');
    expect(provider.envoyExtAuthzHttp).toEqual(extAuthzProvider(config, { service: 'oidc-authz.oauth2-proxy.svc.cluster.local', port: 8080, timeout: '3s' }));
  });
});

describe('bad values are refused at install time, naming the field', () => {
  test.each<[string, string[], RegExp]>([
    ['a string replica count', ['--set-string', 'replicaCount=two'], /replicaCount/],
    ['an unknown top-level value', ['--set', 'replicas=3'], /replicas/],
    ['a bad pull policy', ['--set', 'image.pullPolicy=Sometimes'], /pullPolicy/],
    ['a short cookie secret', ['--set', 'secrets.cookieSecrets[0]=short'], /cookieSecrets/],
    ['an unknown defaultRule', ['--set', 'config.defaultRule=allow'], /defaultRule/],
    ['an unknown config field', ['--set', 'config.listenPort=1'], /listenPort/],
    ['a rule with an unknown allow', ['--set', 'config.rules[0].name=x', '--set', 'config.rules[0].paths[0]=/x', '--set', 'config.rules[0].allow=maybe'], /allow/],
    ['an identity header with "_"', ['--set', 'config.identity.userIdHeader=kubeflow_userid'], /userIdHeader/],
    ['a boolean where a string belongs', ['--set', 'istio.providerTimeout=true'], /providerTimeout/],
    ['an unknown Istio value', ['--set', 'istio.authorizationPolicy.excludedPaths[0]=/static/*'], /excludedPaths/],
    ['a bad service type', ['--set', 'service.type=Ingress'], /service.*type|type.*Ingress/],
    ['an excluded path without a leading "/"', ['--set', 'istio.authorizationPolicy.extraExcludedPaths[0]=static/*'], /extraExcludedPaths/],
    ['oidc without a client secret', ['--set', 'config.oidc.issuer=https://idp.example.com', '--set', 'config.oidc.clientId=x', '--set', 'config.publicUrl=https://k.example.com'], /secrets\.clientSecret/],
  ])('%s', (_name, args, field) => {
    const result = run(HELM, ['template', 'oidc-authz', CHART, ...args]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(field);
  });
});

describe('sessions in Redis (config.session.store: redis)', () => {
  type Pod = { spec: { containers: Array<Record<string, any>>; volumes: Array<Record<string, any>> } };
  type Policy = { spec: { policyTypes: string[]; podSelector: { matchLabels: Record<string, string> }; ingress: Array<Record<string, any>>; egress?: Array<Record<string, any>> } };
  const podOf = (objects: K8sObject[], name = 'oidc-authz') => (find(objects, 'Deployment', name) as unknown as { spec: { template: Pod } }).spec.template.spec;
  const policyOf = (objects: K8sObject[], name = 'oidc-authz') => find(objects, 'NetworkPolicy', name) as unknown as Policy;
  const login = ['--set', 'config.publicUrl=https://k.example.com', '--set', 'config.oidc.issuer=https://idp.example.com', '--set', 'config.oidc.clientId=c', '--set', 'secrets.clientSecret=x'];
  const redisUrl = (url: string) => ['--set', 'config.session.store=redis', '--set', `config.session.redis.url=${url}`];
  const render = (...args: string[]) => helmTemplate(['--set', 'fullnameOverride=oidc-authz', ...login, ...args]);
  /** The egress rule that carries Redis' ports (the only one with a port other than DNS's). */
  const redisRule = (policy: Policy) => policy.spec.egress?.find((rule) => (rule.ports as Array<{ port: unknown }>).some((p) => p.port !== 53));

  test('cookie sessions (the default): no Redis in the config, no Redis volumes, no demo objects', () => {
    const objects = render();
    expect(renderedConfig(objects).session.store).toBe('cookie');
    expect(renderedConfig(objects).session.redis).toBeUndefined();
    expect(podOf(objects).volumes.map((v) => v.name)).not.toEqual(expect.arrayContaining(['redis-password']));
    expect(objects.filter((o) => o.metadata.name.includes('redis'))).toEqual([]);
    // redis.* values are ignored with cookie sessions (switching back to cookies needs no other change).
    const ignored = render('--set', 'redis.existingSecret=redis-auth', '--set', 'redis.tls.caSecret=redis-ca');
    expect(renderedConfig(ignored).session.redis).toBeUndefined();
    expect(podOf(ignored).volumes.map((v) => v.name)).toEqual(podOf(objects).volumes.map((v) => v.name));
  });

  test('store redis + existingSecret: the password is mounted from the Secret and set as passwordFile; the config is the service\'s', async () => {
    const objects = render(...redisUrl('redis://redis-master.redis.svc.cluster.local:6379/2'), '--set', 'config.session.redis.username=oidc-authz',
      '--set', 'redis.existingSecret=redis-auth', '--set', 'redis.existingSecretPasswordKey=password');
    const config = renderedConfig(objects);
    expect(config.session.store).toBe('redis');
    expect(config.session.redis).toMatchObject({
      url: 'redis://redis-master.redis.svc.cluster.local:6379/2', username: 'oidc-authz', passwordFile: '/etc/oidc-authz/redis/password',
      keyPrefix: 'oidc-authz:', cacheFor: 5_000, commandTimeout: 500, connectTimeout: 2_000, refreshLease: 5_000,
    });
    const pod = podOf(objects);
    // defaultMode 0400: octal for Kubernetes (YAML 1.1), read as 400 by the yaml package (YAML 1.2), like the other secret volume.
    expect(pod.volumes).toContainEqual({
      name: 'redis-password',
      secret: { secretName: 'redis-auth', defaultMode: 400, optional: true, items: [{ key: 'password', path: 'password' }] },
    });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 'redis-password', mountPath: '/etc/oidc-authz/redis', readOnly: true });
    expect(objects.filter((o) => o.metadata.name.includes('redis-demo'))).toEqual([]);
    for (const object of objects) await expect(validateObject(object)).resolves.toBeUndefined();
  });

  test('Sentinel with its own password, TLS with a CA from a ConfigMap or a Secret (ci/redis-sentinel-values.yaml)', () => {
    const objects = helmTemplate(['--set', 'fullnameOverride=oidc-authz', '-f', join(CHART, 'ci', 'redis-sentinel-values.yaml')]);
    const redis = renderedConfig(objects).session.redis!;
    expect(redis.passwordFile).toBe('/etc/oidc-authz/redis/password');
    expect(redis.sentinel).toMatchObject({ name: 'sessions', passwordFile: '/etc/oidc-authz/redis/sentinel-password' });
    expect(redis.tls).toEqual({ enabled: true, caFile: '/etc/oidc-authz/redis-ca/ca.crt', serverName: 'redis.redis.svc.cluster.local' });
    const volumes = podOf(objects).volumes;
    expect(volumes).toContainEqual({
      name: 'redis-password',
      secret: { secretName: 'redis-auth', defaultMode: 400, optional: true, items: [{ key: 'oidc-authz-password', path: 'password' }, { key: 'sentinel-password', path: 'sentinel-password' }] },
    });
    expect(volumes).toContainEqual({ name: 'redis-ca', configMap: { name: 'redis-ca', optional: true, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
    const fromSecret = podOf(helmTemplate(['--set', 'fullnameOverride=oidc-authz', '-f', join(CHART, 'ci', 'redis-sentinel-values.yaml'),
      '--set', 'redis.tls.caConfigMap=', '--set', 'redis.tls.caSecret=redis-tls', '--set', 'redis.tls.caKey=tls-ca.pem'])).volumes;
    expect(fromSecret).toContainEqual({ name: 'redis-ca', secret: { secretName: 'redis-tls', optional: true, items: [{ key: 'tls-ca.pem', path: 'ca.crt' }] } });
  });

  test('the demo Redis: one pod, no persistence, its own password and labels; the config points at it; NOTES says it is a demo', async () => {
    const args = ['--set', 'fullnameOverride=oidc-authz', '-f', join(CHART, 'ci', 'redis-demo-values.yaml')];
    const objects = helmTemplate(args);
    const config = renderedConfig(objects);
    expect(config.session).toMatchObject({ store: 'redis', redis: { url: 'redis://oidc-authz-redis-demo.oidc-authz.svc.cluster.local:6379', passwordFile: '/etc/oidc-authz/redis/password' } });

    const demo = find(objects, 'Deployment', 'oidc-authz-redis-demo') as unknown as { spec: { replicas: number; strategy: { type: string }; selector: { matchLabels: Record<string, string> }; template: Pod & { spec: Record<string, any> } } };
    expect(demo.spec.replicas).toBe(1);
    expect(demo.spec.strategy.type).toBe('Recreate');
    const redis = demo.spec.template.spec.containers[0]!;
    expect(redis.image).toBe('redis:7.0');
    expect(redis.args).toEqual(['--save', '', '--appendonly', 'no', '--requirepass', '$(REDIS_PASSWORD)']);
    expect(redis.env).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'oidc-authz-redis-demo', key: 'redis-password' } } }]);
    expect(redis.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(demo.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });
    expect(demo.spec.template.spec.volumes).toEqual([{ name: 'data', emptyDir: { sizeLimit: '64Mi' } }]);
    const password = (find(objects, 'Secret', 'oidc-authz-redis-demo') as unknown as { stringData: Record<string, string> }).stringData['redis-password']!;
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(podOf(objects).volumes).toContainEqual(expect.objectContaining({ name: 'redis-password', secret: expect.objectContaining({ secretName: 'oidc-authz-redis-demo', items: [{ key: 'redis-password', path: 'password' }] }) }));
    // The Service reaches the demo pod; none of the service's selectors (Service, PDB, policies, spread) matches it.
    const service = find(objects, 'Service', 'oidc-authz-redis-demo') as unknown as { spec: { selector: Record<string, string>; ports: Array<Record<string, unknown>> } };
    expect(service.spec.selector).toEqual(demo.spec.selector.matchLabels);
    expect(service.spec.ports).toEqual([{ name: 'tcp-redis', port: 6379, targetPort: 'redis', protocol: 'TCP' }]);
    const demoPodLabels = (demo.spec.template as unknown as { metadata: { labels: Record<string, string> } }).metadata.labels;
    const main = (find(objects, 'Service', 'oidc-authz') as unknown as { spec: { selector: Record<string, string> } }).spec.selector;
    expect(Object.entries(main).every(([k, v]) => demoPodLabels[k] === v)).toBe(false);
    // Only oidc-authz's pods may reach it.
    const demoPolicy = policyOf(objects, 'oidc-authz-redis-demo');
    expect(demoPolicy.spec.podSelector.matchLabels).toEqual(demo.spec.selector.matchLabels);
    expect(demoPolicy.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: main } }], ports: [{ port: 'redis', protocol: 'TCP' }] }]);
    for (const object of objects) await expect(validateObject(object)).resolves.toBeUndefined();

    // redis.existingSecret: the demo uses that password instead of generating one.
    const own = helmTemplate([...args, '--set', 'redis.existingSecret=my-redis', '--set', 'redis.existingSecretPasswordKey=pw']);
    expect(own.filter((o) => o.kind === 'Secret' && o.metadata.name.includes('redis'))).toEqual([]);
    expect((find(own, 'Deployment', 'oidc-authz-redis-demo') as unknown as { spec: { template: Pod } }).spec.template.spec.containers[0]!.env[0].valueFrom).toEqual({ secretKeyRef: { name: 'my-redis', key: 'pw' } });

    const notes = renderNotes(args);
    expect(notes).toContain('DEMO REDIS - NOT FOR PRODUCTION');
    expect(notes).toMatch(/NO persistence/);
    expect(notes).toContain("point config.session.redis at your platform's own Redis");
    expect(notes).toMatch(/register\s+https:\/\/kubeflow\.example\.com\/oauth2\/backchannel_logout as the client's back-channel logout URL/);
    expect(notes).toContain('dist/cli.js sessions revoke --user');
  });

  test('NetworkPolicy egress: off by default; when on, a Redis rule only with the Redis store, its ports from the config', () => {
    const base = ['--set', 'networkPolicy.enabled=true'];
    const egressOn = [...base, '--set', 'networkPolicy.egress.enabled=true'];
    // Egress not restricted (the default), cookie or Redis: an Ingress-only policy.
    for (const args of [base, [...base, ...redisUrl('redis://redis:6379')]]) {
      const policy = policyOf(render(...args));
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      expect(policy.spec.egress).toBeUndefined();
    }
    // Restricted, cookie sessions: DNS only.
    const cookie = policyOf(render(...egressOn));
    expect(cookie.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(cookie.spec.egress).toEqual([{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] }]);
    // Restricted, Redis: its port, from the url (6379 when it names none), the Sentinels' and the nodes'.
    expect(redisRule(policyOf(render(...egressOn, ...redisUrl('rediss://redis.example.com:6380')))))
      .toEqual({ ports: [{ port: 6380, protocol: 'TCP' }] });
    expect(redisRule(policyOf(render(...egressOn, ...redisUrl('redis://redis.redis.svc')))))
      .toEqual({ ports: [{ port: 6379, protocol: 'TCP' }] });
    const sentinel = render(...egressOn, '--set', 'config.session.store=redis', '--set', 'config.session.redis.sentinel.name=m',
      '--set', 'config.session.redis.sentinel.nodes[0]=s-0.redis:26379', '--set', 'config.session.redis.sentinel.nodes[1]=s-1.redis:26379');
    expect(redisRule(policyOf(sentinel))!.ports).toEqual([{ port: 26379, protocol: 'TCP' }, { port: 6379, protocol: 'TCP' }]);
    const cluster = render(...egressOn, '--set', 'config.session.store=redis', '--set', 'config.session.redis.cluster.nodes[0]=[fd00::1]:7000', '--set', 'config.session.redis.cluster.nodes[1]=r-1:7001');
    expect(redisRule(policyOf(cluster))!.ports).toEqual([{ port: 7000, protocol: 'TCP' }, { port: 7001, protocol: 'TCP' }]);
    // Explicit ports and peers (a selector, a CIDR), and extra rules for the IdP.
    const explicit = policyOf(render(...egressOn, ...redisUrl('redis://redis:6379'), '--set', 'networkPolicy.egress.redis.ports[0]=6390',
      '--set', 'networkPolicy.egress.redis.to[0].ipBlock.cidr=10.20.0.0/16',
      '--set', 'networkPolicy.egress.extra[0].to[0].ipBlock.cidr=203.0.113.10/32', '--set', 'networkPolicy.egress.extra[0].ports[0].port=443'));
    expect(redisRule(explicit)).toEqual({ ports: [{ port: 6390, protocol: 'TCP' }], to: [{ ipBlock: { cidr: '10.20.0.0/16' } }] });
    expect(explicit.spec.egress!.at(-1)).toEqual({ to: [{ ipBlock: { cidr: '203.0.113.10/32' } }], ports: [{ port: 443 }] });
    // The demo Redis: its pod only.
    const demo = helmTemplate(['--set', 'fullnameOverride=oidc-authz', '-f', join(CHART, 'ci', 'redis-demo-values.yaml'), '--set', 'networkPolicy.egress.enabled=true']);
    expect(redisRule(policyOf(demo))).toEqual({
      ports: [{ port: 6379, protocol: 'TCP' }],
      to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'oidc-authz-redis-demo', 'app.kubernetes.io/instance': 'oidc-authz' } } }],
    });
    // extraIngress: an IdP that sends back-channel logouts to the Service directly.
    const idp = policyOf(render(...base, '--set', 'networkPolicy.extraIngress[0].from[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=keycloak', '--set', 'networkPolicy.extraIngress[0].ports[0].port=http'));
    expect(idp.spec.ingress.at(-1)).toEqual({ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keycloak' } } }], ports: [{ port: 'http' }] });
  });

  test('the back-channel logout endpoint is routed to the service and not checked, like the other /oauth2/ endpoints', () => {
    const objects = helmTemplate([]);
    const vs = find(objects, 'VirtualService') as unknown as { spec: { http: Array<{ match: Array<{ uri: { prefix: string } }> }> } };
    const prefixes = vs.spec.http[0]!.match.map((m) => m.uri.prefix);
    const notPaths = (find(objects, 'AuthorizationPolicy') as unknown as { spec: { rules: Array<{ to: Array<{ operation: { notPaths: string[] } }> }> } }).spec.rules[0]!.to[0]!.operation.notPaths;
    // The chart and the e2e gateway (src/envoy-config.ts) route the same paths.
    expect(prefixes).toEqual([...AUTHZ_ROUTES]);
    expect(notPaths).toEqual(AUTHZ_ROUTES.map((prefix) => `${prefix}*`));
    // Istio's "/x/*" is a prefix match.
    for (const path of ['/oauth2/backchannel_logout', '/oauth2/callback', '/oauth2/sign_out']) {
      expect(prefixes.some((prefix) => path.startsWith(prefix))).toBe(true);
      expect(notPaths.some((pattern) => pattern.endsWith('*') && path.startsWith(pattern.slice(0, -1)))).toBe(true);
    }
  });

  test.each<[string, string[], RegExp]>([
    ['the demo beside config.session.redis.url', ['--set', 'redis.demo.enabled=true', ...redisUrl('redis://redis:6379')], /redis\.demo\.enabled: points config\.session\.redis\.url at the demo Redis/],
    ['the demo with store cookie', ['--set', 'redis.demo.enabled=true', '--set', 'config.session.store=cookie'], /config\.session\.store is "cookie"/],
    ['store redis without url, sentinel or cluster', ['--set', 'config.session.store=redis'], /needs config\.session\.redis with one of url, sentinel or cluster/],
    ['existingSecret beside passwordFile', [...redisUrl('redis://redis:6379'), '--set', 'redis.existingSecret=s', '--set', 'config.session.redis.passwordFile=/x'], /config\.session\.redis\.passwordFile: the chart sets it/],
    ['a CA from a Secret and a ConfigMap', [...redisUrl('rediss://redis:6379'), '--set', 'redis.tls.caSecret=a', '--set', 'redis.tls.caConfigMap=b'], /set caSecret or caConfigMap, not both/],
    ['a Sentinel password key without Sentinel', [...redisUrl('redis://redis:6379'), '--set', 'redis.existingSecret=s', '--set', 'redis.existingSecretSentinelPasswordKey=k'], /only for config\.session\.redis\.sentinel/],
    ['an unknown redis value', ['--set', 'redis.password=x'], /password/],
    ['an unknown session.redis field', [...redisUrl('redis://redis:6379'), '--set', 'config.session.redis.existingSecret=s'], /existingSecret/],
  ])('refused: %s', (_name, args, message) => {
    const result = run(HELM, ['template', 'oidc-authz', CHART, ...login, ...args]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  test('refused: store redis without browser login', () => {
    const result = run(HELM, ['template', 'oidc-authz', CHART, ...redisUrl('redis://redis:6379')]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('config.session.store: redis keeps browser sessions, which need config.oidc');
  });
});
