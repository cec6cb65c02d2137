/**
 * The Kubeflow overlay as shipped, against a real Dex configured like Kubeflow's and a real Envoy configured
 * from the overlay's own mesh Component: the service runs with the overlay's rendered config, only hosts
 * and ports rewritten to 127.0.0.1 (Dex stands in for dex.auth.svc, a local JWKS for cluster-jwks-proxy),
 * and the client secret read from the overlay's own secret file. A person opens Kubeflow the documented
 * way (`kubectl port-forward … 8080:80` → http://localhost:<port>/) in headless Chromium; machines send the
 * service-account tokens Kubeflow's tools mint.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.js';
import type { ExtAuthzProvider } from '../../src/envoy-config.js';
import { launchChromium, Profiles, screenshot, SLOW } from '../support/chromium.js';
import { startDex, type DexClient, type RunningDex } from '../support/dex.js';
import { apiCall, bearer } from '../support/gateway-client.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { freePort, startService, tempFile } from '../support/service.js';
import { startGateway, type Gateway } from '../support/stack.js';

const OVERLAY = join(process.cwd(), 'manifests/overlays/kubeflow');
const KUBEFLOW_USER = { email: 'user@example.com', username: 'user', password: '12341234' };
const PROFILE_SA = 'system:serviceaccount:kubeflow-user-example-com:default-editor';

/** The service config the overlay renders (ConfigMap oidc-authz, key config.yaml). */
function overlayConfig(): ConfigInput {
  const objects = parseAllDocuments(readFileSync(join(OVERLAY, 'oidc-authz.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data?: Record<string, string> });
  const configMap = objects.find((o) => o?.kind === 'ConfigMap' && o.metadata.name === 'oidc-authz')!;
  return parseYaml(configMap.data!['config.yaml']!) as ConfigInput;
}

/** The provider of the overlay's mesh Component (what the gateway is configured with). */
function meshProvider(): ExtAuthzProvider {
  const patch = parseYaml(readFileSync(join(process.cwd(), 'manifests/components/kubeflow-istio-mesh/cm.istio-mesh.yaml'), 'utf8')) as { data: { mesh: string } };
  const mesh = parseYaml(patch.data.mesh) as { extensionProviders: Array<{ name: string; envoyExtAuthzHttp: ExtAuthzProvider }> };
  return mesh.extensionProviders.find((p) => p.name === 'oauth2-proxy')!.envoyExtAuthzHttp;
}

let dex: RunningDex;
let apiServer: TestIssuer;
let gateway: Gateway;
let chromium: Browser;
let profiles: Profiles;
/** http://localhost:<port>: what `kubectl port-forward svc/istio-ingressgateway -n istio-system <port>:80` gives. */
let kubeflowUrl: string;

beforeAll(async () => {
  const port = await freePort();
  kubeflowUrl = `http://localhost:${port}`;
  // Dex as Kubeflow configures it: the static client registers the path only, the example secret, the example user.
  const client: DexClient = { id: 'kubeflow-oidc-authservice', name: 'Dex Login Application', secret: readFileSync(join(OVERLAY, 'secrets/client-secret'), 'utf8').trim(), redirectURIs: ['/oauth2/callback'] };
  dex = await startDex({ users: [{ ...KUBEFLOW_USER, groups: [] }], clients: [client] });
  // The API server's keys, as cluster-jwks-proxy serves them.
  apiServer = await startIssuer([await createSigningKey('RS256', 'sa-key-1')], '/openid/v1');
  const shipped = overlayConfig();
  gateway = await startGateway({
    port,
    config: {
      ...shipped,
      // As shipped: no publicUrl (the gateway helper would otherwise fix one).
      publicUrl: undefined,
      oidc: { ...shipped.oidc!, issuer: dex.issuer, clientSecretFile: join(OVERLAY, 'secrets/client-secret') },
      issuers: shipped.issuers!.map((issuer) => ({ ...issuer, jwksUri: apiServer.jwksUri })),
      session: { ...shipped.session, secretsFile: tempFile('an-operator-made-secret-0123456789abcdefghijklmnopq') },
    },
    provider: meshProvider(),
    // The gateway routes /dex/ to Dex unchecked, as Kubeflow's VirtualService and AuthorizationPolicy do.
    uncheckedRoutes: [{ prefix: '/dex/', host: '127.0.0.1', port: dex.port }],
  });
  chromium = await launchChromium();
  profiles = new Profiles(chromium);
}, SLOW);

afterAll(async () => {
  await profiles?.closeAll();
  await chromium?.close();
  await gateway?.stop();
  await apiServer?.stop();
  await dex?.stop();
}, SLOW);

const onDexLogin = (url: URL) => url.origin === kubeflowUrl && url.pathname === '/dex/auth/local/login';

async function logIn(page: Page, path: string): Promise<void> {
  await page.goto(`${kubeflowUrl}${path}`);
  await page.waitForURL(onDexLogin);
  await page.getByLabel('Email Address').fill(KUBEFLOW_USER.email);
  await page.getByLabel('Password').fill(KUBEFLOW_USER.password);
  await page.getByRole('button', { name: 'Login' }).click();
  await page.waitForURL(`${kubeflowUrl}${path}`);
}

test('the overlay\'s shipped cookie secret is a placeholder the service refuses, saying why and how to make one', async () => {
  const shipped = overlayConfig();
  await expect(startService({ ...shipped, oidc: { ...shipped.oidc!, issuer: dex.issuer, clientSecretFile: join(OVERLAY, 'secrets/client-secret') }, session: { ...shipped.session, secretsFile: join(OVERLAY, 'secrets/cookie-secrets') } }))
    .rejects.toThrow(/session\.secretsFile: the secret on line 1 is the placeholder shipped with the manifests: anyone could forge sessions with it; .*openssl rand -base64 48/);
});

describe('a person at http://localhost:<port> (the port-forward), on Dex configured like Kubeflow\'s', () => {
  test('/jupyter/ → Dex\'s form through the gateway → back on /jupyter/ as user@example.com; cookies without Secure over http', async () => {
    const { context, page } = await profiles.open();
    const authorize = page.waitForRequest((r) => r.url().startsWith(`${kubeflowUrl}/dex/auth?`));
    const seen = gateway.echo.received.length;
    await logIn(page, '/jupyter/');
    // The relative redirect URI Kubeflow's Dex registered, sent as written.
    expect(new URL((await authorize).url()).searchParams.get('redirect_uri')).toBe('/oauth2/callback');
    expect(await page.locator('#user').textContent()).toBe('user@example.com');
    expect(gateway.echo.received.slice(seen).find((r) => r.path === '/jupyter/')?.headers['kubeflow-userid']).toBe('user@example.com');
    const session = (await context.cookies(kubeflowUrl)).find((c) => c.name === 'oidc_authz')!;
    expect(session).toMatchObject({ domain: 'localhost', httpOnly: true, secure: false });
    await screenshot(page, 'kubeflow-jupyter.png');
  }, SLOW);

  test('the dashboard\'s logout (GET /oauth2/sign_out) ends the session; the next page load asks Dex again', async () => {
    const { context, page } = await profiles.open();
    await logIn(page, '/');
    expect((await context.cookies(kubeflowUrl)).map((c) => c.name)).toContain('oidc_authz');
    // Central dashboard v1.10: window.top.location.href = LOGOUT_URL (Kubeflow sets /oauth2/sign_out).
    const signOut = page.waitForResponse((r) => r.url() === `${kubeflowUrl}/oauth2/sign_out`);
    await page.goto(`${kubeflowUrl}/oauth2/sign_out`);
    expect((await signOut).status()).toBe(302);
    // Dex has no end-session endpoint: the landing is our signed-out page, on the same origin.
    await page.waitForURL(`${kubeflowUrl}/oauth2/signed_out`);
    expect((await context.cookies(kubeflowUrl)).filter((c) => c.name.startsWith('oidc_authz'))).toEqual([]);
    await page.goto(`${kubeflowUrl}/jupyter/`);
    await page.waitForURL(onDexLogin);
  }, SLOW);
});

describe('machine tokens through the gateway (Kubernetes service accounts; keys through the stand-in JWKS proxy)', () => {
  const saToken = (claims: Record<string, unknown>) =>
    apiServer.sign({ sub: PROFILE_SA, 'kubernetes.io': { namespace: 'kubeflow-user-example-com', serviceaccount: { name: 'default-editor' } }, ...claims });

  test.each([
    { what: '`kubectl create token default-editor` (issuer …cluster.local, the API server\'s audience)', iss: 'https://kubernetes.default.svc.cluster.local', aud: ['https://kubernetes.default.svc.cluster.local'] },
    { what: 'the same on a cluster whose issuer is https://kubernetes.default.svc', iss: 'https://kubernetes.default.svc', aud: ['https://kubernetes.default.svc'] },
    { what: 'the Pipelines PodDefault token (aud pipelines.kubeflow.org)', iss: 'https://kubernetes.default.svc.cluster.local', aud: ['pipelines.kubeflow.org'] },
  ])('$what → 200 as the service account; forged identity headers are replaced', async ({ iss, aud }) => {
    const token = await saToken({ iss, aud });
    const answer = await apiCall(kubeflowUrl.replace('localhost', '127.0.0.1'), '/pipeline/apis/v2beta1/runs', {
      ...bearer(token), 'kubeflow-userid': 'admin@example.com', kubeflow_userid: 'admin@example.com', 'kubeflow-groups': 'admins',
    });
    expect(answer.status).toBe(200);
    expect(answer.echoed?.headers['kubeflow-userid']).toBe(PROFILE_SA);
    expect(answer.echoed?.headers['kubeflow-groups']).toBe('');
    expect(answer.echoed?.rawHeaderNames.map((n) => n.toLowerCase()).filter((n) => n === 'kubeflow_userid')).toEqual([]);
  });

  test('a token for another audience is refused (audiences stay checked), and a forged kubeflow-userid alone never passes', async () => {
    const other = await saToken({ iss: 'https://kubernetes.default.svc.cluster.local', aud: ['vault'] });
    const refused = await apiCall(kubeflowUrl.replace('localhost', '127.0.0.1'), '/pipeline/apis/v2beta1/runs', bearer(other));
    expect(refused.status).toBe(401);
    expect(refused.json).toEqual({ error: 'unauthorized', reason: 'wrong_audience' });
    const before = gateway.echo.received.length;
    const forged = await apiCall(kubeflowUrl.replace('localhost', '127.0.0.1'), '/pipeline/apis/v2beta1/runs', { 'kubeflow-userid': PROFILE_SA });
    expect(forged.status).toBe(401);
    expect(gateway.echo.received.length).toBe(before);
  });
});
