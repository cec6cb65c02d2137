/**
 * The Kubeflow drop-in, built the way an operator builds it: our manifests/ copied into a Kubeflow tree as
 * common/oidc-authz, and example/kustomization.yaml changed as overlays/kubeflow/README.md says (the
 * oauth2-proxy line swapped for ours, our mesh Component added), then `kustomize build example`.
 *
 * The Kubeflow side is a stand-in with the objects that matter here, written from what kubeflow/manifests
 * holds (2026-04; shared/research/kubeflow-manifests.md): ConfigMap istio with Kubeflow's mesh and its
 * oauth2-proxy provider patch, the gateway and Dex with their labels, Dex's static client with the
 * relative redirect URI and example secret, and the NetworkPolicies of namespaces istio-system and auth.
 * The NetworkPolicies are evaluated (test/support/network-policy.ts), not grepped.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { extAuthzProvider } from '../../src/envoy-contract.js';
import { ingressAllowed, type Labels, type NetworkPolicy, type PodRef } from '../support/network-policy.js';

const ROOT = process.cwd();
const KUSTOMIZE = join(ROOT, '.tools/bin/kustomize');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** Kubeflow's mesh settings and its oauth2-proxy provider, as common/oauth2-proxy/components/istio-external-auth-patches sets them. */
const KUBEFLOW_OAUTH2_PROXY_MESH = {
  accessLogFile: '/dev/stdout',
  defaultConfig: { discoveryAddress: 'istiod.istio-system.svc:15012', proxyMetadata: {}, tracing: {} },
  enablePrometheusMerge: true,
  rootNamespace: 'istio-system',
  tcpKeepalive: { interval: '5s', probes: 3, time: '10s' },
  trustDomain: 'cluster.local',
  /** An operator's own setting, to show what the patch does to it. */
  defaultProviders: { accessLogging: ['envoy'] },
  extensionProviders: [{
    name: 'oauth2-proxy',
    envoyExtAuthzHttp: {
      service: 'oauth2-proxy.oauth2-proxy.svc.cluster.local', port: 80,
      includeRequestHeadersInCheck: ['authorization', 'cookie'],
      headersToUpstreamOnAllow: ['authorization', 'path', 'x-auth-request-email', 'x-auth-request-groups', 'x-auth-request-user'],
      headersToDownstreamOnDeny: ['content-type', 'set-cookie'],
    },
  }],
};
const DEX_EXAMPLE_CLIENT_SECRET = 'pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok';

const deployment = (name: string, namespace: string, labels: Labels, ports: Record<string, number>) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace, labels },
  spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name, image: 'example', ports: Object.entries(ports).map(([n, p]) => ({ name: n, containerPort: p })) }] } } },
});
const allowSameNamespace = (namespace: string) => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `default-allow-same-namespace-${namespace}`, namespace },
  spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }], policyTypes: ['Ingress'] },
});

/** The stand-in Kubeflow tree: path → objects (one kustomization per folder, listing its files). */
function kubeflowTree(): Record<string, unknown[]> {
  return {
    'common/istio/istio-namespace/base': [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
      allowSameNamespace('istio-system'),
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-istiod-control-plane', namespace: 'istio-system' }, spec: { podSelector: { matchLabels: { app: 'istiod' } }, ingress: [{ ports: [{ protocol: 'TCP', port: 15012 }] }], policyTypes: ['Ingress'] } },
    ],
    'common/istio/istio-install/overlays/oauth2-proxy': [
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: stringify(KUBEFLOW_OAUTH2_PROXY_MESH) } },
      deployment('istio-ingressgateway', 'istio-system', { app: 'istio-ingressgateway', istio: 'ingressgateway' }, { http2: 8080 }),
      deployment('istiod', 'istio-system', { app: 'istiod' }, { grpc: 15012 }),
    ],
    'common/dex/overlays/oauth2-proxy': [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'auth' } },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dex', namespace: 'auth' }, data: { 'config.yaml': stringify({
        issuer: 'http://dex.auth.svc.cluster.local:5556/dex',
        oauth2: { skipApprovalScreen: true },
        enablePasswordDB: true,
        staticClients: [{ idEnv: 'OIDC_CLIENT_ID', redirectURIs: ['/oauth2/callback'], name: 'Dex Login Application', secretEnv: 'OIDC_CLIENT_SECRET' }],
      }) } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dex-oidc-client', namespace: 'auth' }, stringData: { OIDC_CLIENT_ID: 'kubeflow-oidc-authservice', OIDC_CLIENT_SECRET: DEX_EXAMPLE_CLIENT_SECRET } },
      deployment('dex', 'auth', { app: 'dex' }, { http: 5556 }),
      allowSameNamespace('auth'),
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-istio-and-oauth2-proxy', namespace: 'auth' }, spec: {
        podSelector: { matchLabels: { app: 'dex' } },
        ingress: [{ from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' } }, podSelector: { matchLabels: { app: 'istio-ingressgateway' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' } }, podSelector: { matchLabels: { app: 'istiod' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'oauth2-proxy' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'oauth2-proxy' } } },
        ] }],
        policyTypes: ['Ingress'],
      } },
    ],
    'common/kubeflow-namespace/base': [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubeflow' } },
      deployment('jupyter-web-app', 'kubeflow', { app: 'jupyter-web-app' }, { http: 5000 }),
    ],
  };
}

function writeTree(root: string): void {
  for (const [folder, objects] of Object.entries(kubeflowTree())) {
    const dir = join(root, folder);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'objects.yaml'), objects.map((o) => stringify(o)).join('---\n'));
    writeFileSync(join(dir, 'kustomization.yaml'), stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['objects.yaml'] }));
  }
  // Our manifests as the operator copies them, with the cookie secret replaced as the README says.
  cpSync(join(ROOT, 'manifests'), join(root, 'common/oidc-authz'), { recursive: true });
  writeFileSync(join(root, 'common/oidc-authz/overlays/kubeflow/secrets/cookie-secrets'), 'an-operator-made-secret-0123456789abcdefghijklmnopq\n');
  // example/kustomization.yaml after the swap: Kubeflow's lines, ours in place of m2m-dex-only, our Component.
  const example = join(root, 'example/kustomization.yaml');
  mkdirSync(dirname(example), { recursive: true });
  writeFileSync(example, stringify({
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: [
      '../common/istio/istio-namespace/base',
      '../common/istio/istio-install/overlays/oauth2-proxy',
      '../common/oidc-authz/overlays/kubeflow',
      '../common/dex/overlays/oauth2-proxy',
      '../common/kubeflow-namespace/base',
    ],
    components: ['../common/oidc-authz/components/kubeflow-istio-mesh'],
  }));
}

let objects: K8sObject[];

beforeAll(() => {
  const root = mkdtempSync(join(tmpdir(), 'kubeflow-tree-'));
  writeTree(root);
  const result = spawnSync(KUSTOMIZE, ['build', join(root, 'example')], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kustomize build example failed: ${result.stderr}`);
  objects = parseAllDocuments(result.stdout).map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
});

/** The object by kind and name (a generated object's name may carry kustomize's 10-character hash). */
function find(kind: string, name: string, namespace?: string): K8sObject {
  const named = new RegExp(`^${name}(-[a-z0-9]{10})?$`);
  const found = objects.find((o) => o.kind === kind && named.test(o.metadata.name) && (namespace === undefined || o.metadata.namespace === namespace));
  if (found === undefined) throw new Error(`no ${kind} ${name} in the build`);
  return found;
}

const renderedConfig = () => parseConfig(parseYaml(find('ConfigMap', 'oidc-authz', 'oauth2-proxy').data!['config.yaml']!));

describe('kustomize build example, after the swap', () => {
  test('the mesh provider Kubeflow\'s CUSTOM policy names resolves to our Service and port, with our path prefix and header lists', () => {
    const mesh = parseYaml(find('ConfigMap', 'istio', 'istio-system').data!.mesh!) as typeof KUBEFLOW_OAUTH2_PROXY_MESH;
    const policy = objects.find((o) => o.kind === 'AuthorizationPolicy' && (o.spec as { action?: string }).action === 'CUSTOM')!;
    const providerName = (policy.spec as { provider: { name: string } }).provider.name;
    const providers = mesh.extensionProviders.filter((p) => p.name === providerName);
    expect(providers).toHaveLength(1);
    const provider = providers[0]!.envoyExtAuthzHttp as ReturnType<typeof extAuthzProvider>;
    const service = objects.find((o) => o.kind === 'Service' && `${o.metadata.name}.${o.metadata.namespace}.svc.cluster.local` === provider.service);
    expect(service).toBeDefined();
    expect((service!.spec as { ports: Array<{ port: number }> }).ports.map((p) => p.port)).toContain(provider.port);
    expect(provider).toEqual(extAuthzProvider(renderedConfig(), { service: provider.service, port: provider.port, timeout: '3s' }));
    // Kubeflow's mesh settings (as of 2026-04) come through; like Kubeflow's own patch, ours replaces the
    // whole string, so a setting an operator added (defaultProviders here) is gone: the overlay README says so.
    const { extensionProviders: _ours, ...rest } = mesh;
    const { extensionProviders: _theirs, defaultProviders: _operators, ...kubeflow } = KUBEFLOW_OAUTH2_PROXY_MESH;
    expect(rest).toEqual(kubeflow);
  });

  test('Dex\'s client accepts our redirect URI and our client secret, as Kubeflow ships them', () => {
    const config = renderedConfig();
    const dex = parseYaml(find('ConfigMap', 'dex', 'auth').data!['config.yaml']!) as { staticClients: Array<{ redirectURIs: string[] }> };
    expect(dex.staticClients[0]!.redirectURIs).toContain(config.oidc!.redirectUri);
    const dexSecret = find('Secret', 'dex-oidc-client', 'auth') as unknown as { stringData: Record<string, string> };
    expect(dexSecret.stringData.OIDC_CLIENT_ID).toBe(config.oidc!.clientId);
    const ours = find('Secret', 'oidc-authz-secrets', 'oauth2-proxy');
    expect(Buffer.from(ours.data!['client-secret']!, 'base64').toString('utf8').trim()).toBe(dexSecret.stringData.OIDC_CLIENT_SECRET);
  });

  test('the Secret exists and is the one the pods mount (its hashed name), with both keys', () => {
    const secret = find('Secret', 'oidc-authz-secrets', 'oauth2-proxy');
    expect(Object.keys(secret.data!).sort()).toEqual(['client-secret', 'cookie-secrets']);
    const pod = (find('Deployment', 'oidc-authz', 'oauth2-proxy').spec as { template: { spec: { volumes: Array<{ secret?: { secretName: string } }> } } }).template.spec;
    expect(pod.volumes.map((v) => v.secret?.secretName).filter(Boolean)).toEqual([secret.metadata.name]);
  });

  test.each([
    { deployment: 'oidc-authz', namespace: 'oauth2-proxy' },
    { deployment: 'cluster-jwks-proxy', namespace: 'istio-system' },
  ])('$deployment meets the Pod Security level of $namespace (restricted, as Kubeflow labels it)', ({ deployment, namespace }) => {
    expect(find('Namespace', namespace).metadata.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    type SecurityContext = { runAsNonRoot?: boolean; allowPrivilegeEscalation?: boolean; seccompProfile?: { type: string }; capabilities?: { drop?: string[] } };
    const pod = (find('Deployment', deployment, namespace).spec as { template: { spec: { securityContext?: SecurityContext; containers: Array<{ securityContext: SecurityContext }> } } }).template.spec;
    for (const container of pod.containers) {
      const context = { ...pod.securityContext, ...container.securityContext };
      expect(context).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } });
      expect(container.securityContext.capabilities?.drop).toEqual(['ALL']);
    }
  });

  test('the machine-token issuers: both Kubernetes issuer URLs, their own audience and the Pipelines PodDefault\'s, keys through cluster-jwks-proxy', () => {
    const config = renderedConfig();
    // Their ids stay in system:serviceaccount: (a Dex person cannot take one), one space for both URLs.
    const serviceAccounts = { userIdClaim: 'sub', userIdMustStartWith: 'system:serviceaccount:', userIdSpace: 'kubernetes-service-accounts' };
    expect(config.issuers.map((i) => ({ issuer: i.issuer, audiences: i.audiences, userIdClaim: i.userIdClaim, userIdMustStartWith: i.userIdMustStartWith, userIdSpace: i.userIdSpace }))).toEqual([
      { issuer: 'https://kubernetes.default.svc.cluster.local', audiences: ['https://kubernetes.default.svc.cluster.local', 'pipelines.kubeflow.org'], ...serviceAccounts },
      { issuer: 'https://kubernetes.default.svc', audiences: ['https://kubernetes.default.svc', 'pipelines.kubeflow.org'], ...serviceAccounts },
    ]);
    const proxy = find('Service', 'cluster-jwks-proxy', 'istio-system');
    for (const issuer of config.issuers) expect(issuer.jwksUri).toBe(`http://${proxy.metadata.name}.${proxy.metadata.namespace}.svc.cluster.local/openid/v1/jwks`);
    // One place adds an issuer: Istio's RequestAuthentications are rendered from the same list.
    const rules = objects.filter((o) => o.kind === 'RequestAuthentication').flatMap((o) => (o.spec as { jwtRules: Array<{ issuer: string }> }).jwtRules.map((r) => r.issuer));
    expect(rules.sort()).toEqual([config.oidc!.issuer, ...config.issuers.map((i) => i.issuer)].sort());
  });
});

describe('NetworkPolicies, evaluated', () => {
  const policies = () => objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as NetworkPolicy[];
  /** The pod a Deployment runs, as the policies see it. */
  const podOf = (name: string, namespace: string): PodRef => {
    const spec = find('Deployment', name, namespace).spec as { template: { metadata: { labels: Labels }; spec: { containers: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> } } };
    const ports = Object.fromEntries(spec.template.spec.containers.flatMap((c) => c.ports ?? []).filter((p) => p.name).map((p) => [p.name!, p.containerPort]));
    return { namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels: spec.template.metadata.labels, ports };
  };
  const ours = () => podOf('oidc-authz', 'oauth2-proxy');

  test.each([
    { what: 'the gateway → oidc-authz (checks, /oauth2/*)', from: () => podOf('istio-ingressgateway', 'istio-system'), to: ours, port: 8080, allowed: true },
    { what: 'oidc-authz → Dex (discovery, code exchange, refresh)', from: ours, to: () => podOf('dex', 'auth'), port: 5556, allowed: true },
    { what: 'oidc-authz → cluster-jwks-proxy (service-account keys)', from: ours, to: () => podOf('cluster-jwks-proxy', 'istio-system'), port: 8080, allowed: true },
    { what: 'istiod → cluster-jwks-proxy (the m2m RequestAuthentication)', from: () => podOf('istiod', 'istio-system'), to: () => podOf('cluster-jwks-proxy', 'istio-system'), port: 8080, allowed: true },
    { what: 'a Kubeflow app → oidc-authz', from: () => podOf('jupyter-web-app', 'kubeflow'), to: ours, port: 8080, allowed: false },
    { what: 'a Kubeflow app → Dex', from: () => podOf('jupyter-web-app', 'kubeflow'), to: () => podOf('dex', 'auth'), port: 5556, allowed: false },
    { what: 'a Kubeflow app → cluster-jwks-proxy', from: () => podOf('jupyter-web-app', 'kubeflow'), to: () => podOf('cluster-jwks-proxy', 'istio-system'), port: 8080, allowed: false },
    { what: 'the gateway → oidc-authz\'s metrics port', from: () => podOf('istio-ingressgateway', 'istio-system'), to: ours, port: 9090, allowed: false },
  ])('$what: $allowed', ({ from, to, port, allowed }) => {
    expect(ingressAllowed(policies(), from(), to(), port)).toBe(allowed);
  });

  test('before the swap\'s policies, Kubeflow\'s own would have kept oidc-authz from Dex and the JWKS proxy', () => {
    const kubeflowOnly = policies().filter((p) => !p.metadata.name.includes('oidc-authz'));
    expect(ingressAllowed(kubeflowOnly, ours(), podOf('dex', 'auth'), 5556)).toBe(false);
    expect(ingressAllowed(kubeflowOnly, ours(), podOf('cluster-jwks-proxy', 'istio-system'), 8080)).toBe(false);
  });
});
