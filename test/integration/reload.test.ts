/**
 * Hot reload of the config and the cookie secrets, with the real service started from files as `serve`
 * starts it, real JWKS issuers, a real OpenID Provider for the logins, and directories written the way
 * kubelet writes mounted ConfigMaps and Secrets. SIGHUP itself (the real process) and reloads under load:
 * test/integration/reload-process.test.ts.
 */
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { startDevIdp, type DevIdp } from '../../demo/dev-idp.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createSealer } from '../../src/session/seal.js';
import { secretsFromLines } from '../../src/session/secrets.js';
import { Browser, type Page } from '../support/browser.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { writeTempConfig } from '../support/process.js';
import { KubernetesVolume, metricValue, replaceFile, startFromFile, type ReloadableService } from '../support/reload.js';
import { freePort, pollUntil, tempFile } from '../support/service.js';

const sha12 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);
const yaml = (config: ConfigInput) => `${JSON.stringify(config, null, 2)}\n`;
const lastLog = (svc: ReloadableService, msg: string) => [...svc.logs].reverse().find((line) => line.msg === msg);
const metricsText = async (svc: ReloadableService) => (await fetch(`${svc.metricsUrl}/metrics`)).text();

describe('reload on demand (what SIGHUP runs), watching off', () => {
  let idp: TestIssuer;
  let cluster: TestIssuer;
  let svc: ReloadableService;
  let file: string;
  const config = (change: Partial<ConfigInput> = {}): ConfigInput => ({
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    reload: { watch: false },
    log: { level: 'debug' },
    issuers: [{ issuer: idp.issuer, audiences: ['app'] }],
    rules: [
      { name: 'admin', paths: ['/admin/**'], allow: { groups: ['admins'] } },
      { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
    ],
    ...change,
  });
  const aliceToken = () => idp.sign({ aud: 'app', sub: 'alice', email: 'alice@example.com', email_verified: true, groups: ['users'] });
  const check = (path: string, token: string) => fetch(`${svc.url}/authz${path}`, { headers: { host: 'kubeflow.example.com', authorization: `Bearer ${token}` } });
  const rewrite = (text: string) => replaceFile(file, text);

  beforeAll(async () => {
    idp = await startIssuer([await createSigningKey('RS256', 'idp-1')], '/idp');
    cluster = await startIssuer([await createSigningKey('ES256', 'k8s-1')], '/k8s');
    file = writeTempConfig(yaml(config()));
    svc = await startFromFile(file);
  });

  afterAll(async () => {
    await svc.close();
    await Promise.all([idp.stop(), cluster.stop()]);
  });

  test('a rule change: a path that was 403 becomes 200; the token cache and the JWKS are kept; the hash is the file\'s', async () => {
    const token = await aliceToken();
    expect((await check('/admin/users', token)).status).toBe(403);
    expect((await check('/pipelines', token)).status).toBe(200);
    const jwksFetches = idp.hitsOf('/jwks');
    expect(jwksFetches).toBe(1);
    const cachedTokens = svc.service.bearer!.cacheSize;

    const text = yaml(config({ rules: [{ name: 'admin', paths: ['/admin/**'], allow: 'authenticated' }, { name: 'everything-else', paths: ['/**'], allow: 'authenticated' }] }));
    rewrite(text);
    const outcome = await svc.reloader.reload('signal');
    expect(outcome).toEqual({ result: 'success', hash: sha12(text), problems: [], restartRequired: [] });
    expect(svc.reloader.activeHash).toBe(sha12(text));

    expect((await check('/admin/users', token)).status).toBe(200);
    // Only the rules changed: the same bearer verifier, its cache and keys.
    expect(svc.service.bearer!.cacheSize).toBe(cachedTokens);
    expect(idp.hitsOf('/jwks')).toBe(jwksFetches);
    expect(lastLog(svc, 'config reloaded')).toMatchObject({ level: 'info', trigger: 'signal', hash: sha12(text), changed: ['rules'] });
  });

  test('identity mapping and issuers: a cached token is mapped by the new config, a new issuer\'s tokens are accepted, unchanged issuers\' keys are not fetched again', async () => {
    const token = await aliceToken();
    expect((await check('/pipelines', token)).headers.get('kubeflow-userid')).toBe('alice@example.com');
    const jwksFetches = idp.hitsOf('/jwks');

    rewrite(yaml(config({
      identity: { userIdPrefix: 'idp:' },
      issuers: [
        { issuer: idp.issuer, audiences: ['app'] },
        // Its own user-id space: no prefix, ids that start with system:serviceaccount:.
        { issuer: cluster.issuer, audiences: ['gw'], userIdClaim: 'sub', userIdPrefix: '', userIdMustStartWith: 'system:serviceaccount:' },
      ],
      rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
    })));
    expect((await svc.reloader.reload('signal')).result).toBe('success');
    expect(lastLog(svc, 'config reloaded')!.changed).toEqual(['identity.userIdPrefix', 'issuers', 'rules']);

    expect((await check('/pipelines', token)).headers.get('kubeflow-userid')).toBe('idp:alice@example.com');
    const machine = await cluster.sign({ aud: 'gw', sub: 'system:serviceaccount:kubeflow:pipeline-runner' });
    const res = await check('/pipelines', machine);
    expect(res.status).toBe(200);
    expect(res.headers.get('kubeflow-userid')).toBe('system:serviceaccount:kubeflow:pipeline-runner');
    // A new verifier, the same keys for the unchanged issuer: no refetch storm after a reload.
    expect(idp.hitsOf('/jwks')).toBe(jwksFetches);
  });

  test.each<[string, () => string, RegExp]>([
    ['bad YAML', () => 'rules: [ { name: x, paths: [/x]\n', /^\(file\): not valid YAML\/JSON/],
    ['a schema error', () => yaml(config({ defaultRule: 'allow' as 'deny' })), /^defaultRule: Invalid option/],
    ['a bad regular expression', () => yaml(config({ identity: { userIdTransformers: [{ match: '(', replace: '' }] } })), /^identity\.userIdTransformers\.0\.match: must be a valid regular expression$/],
    ['a rule the schema accepts but the compiler cannot use', () => yaml(config({ rules: [{ name: 'ws', paths: ['/ws/**'], allow: { groups: ['{ws}'] } }] })), /^rules\.0\.allow: uses \{ws\}/],
    ['an empty file (caught mid-write)', () => '', /^\(file\): is empty/],
  ])('%s: the running config stays, the failure is counted and every problem logged with its field', async (_what, text, problem) => {
    const token = await aliceToken();
    const before = await check('/pipelines', token);
    expect(before.status).toBe(200);
    const hash = svc.reloader.activeHash;
    const failures = metricValue(await metricsText(svc), 'oidc_authz_config_reloads_total', 'result="failure"') ?? 0;

    rewrite(text());
    const outcome = await svc.reloader.reload('signal');
    expect(outcome.result).toBe('failure');
    expect(outcome.hash).toBe(hash);
    expect(outcome.problems.length).toBeGreaterThan(0);
    expect(outcome.problems.some((p) => problem.test(p))).toBe(true);

    const after = await check('/pipelines', token);
    expect(after.status).toBe(200);
    expect(after.headers.get('kubeflow-userid')).toBe(before.headers.get('kubeflow-userid'));
    expect(svc.reloader.activeHash).toBe(hash);
    expect(metricValue(await metricsText(svc), 'oidc_authz_config_reloads_total', 'result="failure"')).toBe(failures + 1);
    expect(lastLog(svc, 'config reload failed')).toMatchObject({ level: 'error', trigger: 'signal', hash, problems: outcome.problems });
  });

  test('the config file gone: failure naming it, the running config stays', async () => {
    rmSync(file);
    const outcome = await svc.reloader.reload('signal');
    expect(outcome.result).toBe('failure');
    expect(outcome.problems).toEqual([expect.stringMatching(/^\(file\): cannot read .*ENOENT$/)]);
    expect((await check('/pipelines', await aliceToken())).status).toBe(200);
  });

  test('a restart-only change (the port) is named in one warn line and keeps its running value; the rest applies', async () => {
    const port = new URL(svc.url).port;
    const base = config({ rules: [{ name: 'nothing', paths: ['/**'], allow: 'deny' }] });
    rewrite(yaml({ ...base, listen: { host: '127.0.0.1', port: 1, metricsPort: 0 }, checkPathPrefix: '/ext-authz' }));
    const outcome = await svc.reloader.reload('signal');
    expect(outcome).toMatchObject({ result: 'success', restartRequired: ['checkPathPrefix', 'listen.port'] });
    expect(lastLog(svc, 'config changes need a restart: they keep their running values until then')).toMatchObject({ level: 'warn', fields: ['checkPathPrefix', 'listen.port'] });
    expect(svc.service.config.listen.port).toBe(0);
    expect(svc.service.config.checkPathPrefix).toBe('/authz');
    // Still on the same port and prefix, with the new rule.
    expect(new URL(svc.url).port).toBe(port);
    expect((await check('/pipelines', await aliceToken())).status).toBe(403);
    expect(metricValue(await metricsText(svc), 'oidc_authz_config_restart_required')).toBe(1);

    // Back to the running values: nothing waits for a restart any more.
    rewrite(yaml(base));
    expect(await svc.reloader.reload('signal')).toMatchObject({ result: 'success', restartRequired: [] });
    expect(metricValue(await metricsText(svc), 'oidc_authz_config_restart_required')).toBe(0);
  });

  test('metrics: reloads by result, one hash label (the active file\'s), the last success time; an unchanged file is "unchanged"', async () => {
    const text = yaml(config());
    rewrite(text);
    expect((await svc.reloader.reload('signal')).result).toBe('success');
    const before = await metricsText(svc);
    expect(await svc.reloader.reload('signal')).toEqual({ result: 'unchanged', hash: sha12(text), problems: [], restartRequired: [] });
    const after = await metricsText(svc);

    expect(metricValue(after, 'oidc_authz_config_reloads_total', 'result="success"')).toBe(5);
    expect(metricValue(after, 'oidc_authz_config_reloads_total', 'result="failure"')).toBe(6);
    expect(metricValue(after, 'oidc_authz_config_reloads_total', 'result="unchanged"')).toBe((metricValue(before, 'oidc_authz_config_reloads_total', 'result="unchanged"') ?? 0) + 1);
    expect(after.split('\n').filter((line) => line.startsWith('oidc_authz_config_hash_info{'))).toEqual([`oidc_authz_config_hash_info{hash="${sha12(text)}"} 1`]);
    const reloadedAt = metricValue(after, 'oidc_authz_config_last_reload_success_timestamp_seconds')!;
    expect(Math.abs(reloadedAt - Date.now() / 1000)).toBeLessThan(60);
    expect(after).toContain('oidc_authz_config_info{rules="2",issuers="1",default_rule="deny"} 1');
  });
});

describe('watching the files', () => {
  const config = (access: 'deny' | 'anonymous', debounce = '50ms'): ConfigInput => ({
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    reload: { debounce },
    rules: [{ name: 'x', paths: ['/x/**'], allow: access }],
  });
  const statusOf = async (svc: ReloadableService) => (await fetch(`${svc.url}/authz/x/y`, { headers: { host: 'h' } })).status;

  test('a ConfigMap mounted as a directory: kubelet\'s ..data symlink swap is seen, the new rule applies', async () => {
    const volume = new KubernetesVolume({ 'config.yaml': yaml(config('deny')) });
    const svc = await startFromFile(volume.path('config.yaml'));
    try {
      expect(lastLog(svc, 'watching the config files for changes')).toMatchObject({ directories: [volume.dir], debounceMs: 50 });
      expect(await statusOf(svc)).toBe(403);
      const text = yaml(config('anonymous'));
      volume.update({ 'config.yaml': text });
      await pollUntil(() => statusOf(svc), (status) => status === 200);
      expect(lastLog(svc, 'config reloaded')).toMatchObject({ trigger: 'watch', hash: sha12(text), changed: ['rules'] });
      // Only the new generation is left, as kubelet leaves it.
      expect(readdirSync(volume.dir).filter((name) => name.startsWith('..2026')).length).toBe(1);

      // A broken update: the running config stays, the failure is logged.
      volume.update({ 'config.yaml': 'rules: {' });
      await pollUntil(async () => lastLog(svc, 'config reload failed'), (line) => line !== undefined);
      expect(await statusOf(svc)).toBe(200);
    } finally {
      await svc.close();
    }
  });

  test('a plain file replaced by a rename (as editors and `mv` do) is seen', async () => {
    const file = writeTempConfig(yaml(config('deny')));
    const svc = await startFromFile(file);
    try {
      expect(await statusOf(svc)).toBe(403);
      replaceFile(file, yaml(config('anonymous')));
      await pollUntil(() => statusOf(svc), (status) => status === 200);
    } finally {
      await svc.close();
    }
  });

  test('reload.watch: false watches nothing (SIGHUP still reloads)', async () => {
    const file = writeTempConfig(yaml({ ...config('deny'), reload: { watch: false } }));
    const svc = await startFromFile(file);
    try {
      replaceFile(file, yaml({ ...config('anonymous'), reload: { watch: false } }));
      expect(lastLog(svc, 'watching the config files for changes')).toBeUndefined();
      expect(await statusOf(svc)).toBe(403);
      // "success", not "unchanged": no watcher read the new file first.
      expect((await svc.reloader.reload('signal')).result).toBe('success');
      expect(await statusOf(svc)).toBe(200);
    } finally {
      await svc.close();
    }
  });
});

describe('cookie secrets (session.secretsFile in a mounted Secret)', () => {
  const OLD = 'old-cookie-secret-for-reload-0123456789abcdef';
  const NEW = 'new-cookie-secret-for-reload-0123456789abcdef';
  const CLIENT = { clientId: 'kubeflow', clientSecret: 'client-secret-for-reload' };
  let idp: DevIdp;
  let port: number;
  let publicUrl: string;

  beforeAll(async () => {
    port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    idp = await startDevIdp({
      users: { alice: { password: 'alice-pw', email: 'alice@example.com', groups: ['team-a'] } },
      clients: [{ ...CLIENT, redirectUris: [`${publicUrl}/oauth2/callback`], postLogoutRedirectUris: [`${publicUrl}/`] }],
      log: () => undefined,
    });
  });
  afterAll(() => idp.stop());

  const check = (browser: Browser, path = '/x'): Promise<Page> =>
    browser.get(`${publicUrl}/authz${path}`, { host: `127.0.0.1:${port}`, 'sec-fetch-mode': 'navigate' });
  async function login(browser: Browser): Promise<string> {
    const first = await check(browser);
    expect(first.status).toBe(302);
    const callback = await browser.get(await browser.loginAtIdp(first.location!, 'alice', 'alice-pw'));
    expect(callback.status).toBe(302);
    return browser.jar.list(publicUrl).find((c) => c.name === 'oidc_authz')!.value;
  }
  const opensWith = async (cookie: string, ...secrets: string[]) => (await createSealer(secretsFromLines(secrets)).unseal(cookie, 3600)) !== null;

  test('rotation: a new first line seals new sessions, old cookies still open; dropping the old line ends them; a bad line keeps the ring', async () => {
    const secrets = new KubernetesVolume({ 'cookie-secrets': `${OLD}\n`, 'client-secret': CLIENT.clientSecret });
    const configDir = new KubernetesVolume({
      'config.yaml': yaml({
        listen: { host: '127.0.0.1', port, metricsPort: 0 },
        reload: { debounce: '50ms' },
        publicUrl,
        oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile: secrets.path('client-secret') },
        session: { secretsFile: secrets.path('cookie-secrets'), secure: false },
        rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }],
      }),
    });
    const svc = await startFromFile(configDir.path('config.yaml'));
    try {
      expect(lastLog(svc, 'watching the config files for changes')!.directories).toEqual([configDir.dir, secrets.dir]);
      await pollUntil(async () => (await fetch(`${publicUrl}/readyz`)).status, (status) => status === 200);
      const before = new Browser();
      const oldCookie = await login(before);
      expect(await opensWith(oldCookie, OLD)).toBe(true);
      expect((await check(before)).status).toBe(200);

      const reloads = () => svc.logs.filter((line) => line.msg === 'config reloaded').length;
      const reloaded = reloads();
      secrets.update({ 'cookie-secrets': `${NEW}\n${OLD}\n`, 'client-secret': CLIENT.clientSecret });
      await pollUntil(async () => reloads(), (count) => count > reloaded);
      expect(lastLog(svc, 'config reloaded')).toMatchObject({ trigger: 'watch', changed: ['session.secretsFile (its content)'] });
      // The hash is the config file's: a secrets change does not show (and no secret goes into it).
      expect(lastLog(svc, 'config reloaded')!.hash).toBe(lastLog(svc, 'config reloaded')!.previousHash);
      expect((await check(before)).status).toBe(200);
      const after = new Browser();
      const newCookie = await login(after);
      expect(await opensWith(newCookie, NEW)).toBe(true);
      expect(await opensWith(newCookie, OLD)).toBe(false);

      // A secrets file with a bad line: refused, the ring stays [NEW, OLD].
      const failed = svc.logs.filter((line) => line.msg === 'config reload failed').length;
      secrets.update({ 'cookie-secrets': `${NEW}\nshort\n`, 'client-secret': CLIENT.clientSecret });
      await pollUntil(async () => svc.logs.filter((line) => line.msg === 'config reload failed').length, (count) => count > failed);
      const problems = lastLog(svc, 'config reload failed')!.problems as string[];
      expect(problems).toEqual([expect.stringMatching(/^session\.secretsFile: the secret on line 2 is shorter than 32 characters/)]);
      expect(JSON.stringify(svc.logs)).not.toContain(NEW);
      expect(JSON.stringify(svc.logs)).not.toContain(OLD);
      expect((await check(before)).status).toBe(200);

      // The old line dropped: sessions sealed with it end, the new ones go on.
      const count = reloads();
      secrets.update({ 'cookie-secrets': `${NEW}\n`, 'client-secret': CLIENT.clientSecret });
      await pollUntil(async () => reloads(), (n) => n > count);
      expect((await check(before)).status).toBe(302);
      expect((await check(after)).status).toBe(200);
    } finally {
      await svc.close();
    }
  });

  test('the client secret file changed: named as needing a restart, nothing else changes', async () => {
    const secretsFile = tempFile(`${OLD}\n`);
    const clientSecretFile = `${secretsFile}-client`;
    writeFileSync(clientSecretFile, CLIENT.clientSecret);
    const file = writeTempConfig(yaml({
      listen: { host: '127.0.0.1', port, metricsPort: 0 },
      reload: { watch: false },
      publicUrl,
      oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile },
      session: { secretsFile, secure: false },
    }));
    const svc = await startFromFile(file);
    try {
      replaceFile(clientSecretFile, 'another-client-secret');
      expect(await svc.reloader.reload('signal')).toMatchObject({ result: 'success', restartRequired: ['oidc.clientSecretFile (its content)'] });
      expect(JSON.stringify(svc.logs)).not.toContain('another-client-secret');
    } finally {
      await svc.close();
    }
  });

  test('rules that would need other headers from Envoy (an offline-token or exchange rule) are refused: the mesh config lists them at start-up', async () => {
    const secretsFile = tempFile(`${OLD}\n`);
    const clientSecretFile = `${secretsFile}-client`;
    writeFileSync(clientSecretFile, CLIENT.clientSecret);
    const base = {
      listen: { host: '127.0.0.1', port, metricsPort: 0 },
      reload: { watch: false },
      publicUrl,
      oidc: { issuer: idp.issuer, clientId: CLIENT.clientId, clientSecretFile },
      session: { secretsFile, secure: false },
    };
    const file = writeTempConfig(yaml({ ...base, rules: [{ name: 'everything', paths: ['/**'], allow: 'authenticated' }] }));
    const svc = await startFromFile(file);
    try {
      for (const rule of [
        { name: 'grant', paths: ['/jobs/grant'], allow: 'authenticated', offlineToken: { header: 'x-offline-token' } },
        { name: 'api', paths: ['/api/**'], allow: 'authenticated', upstreamToken: { exchange: { audience: 'api' } } },
      ]) {
        replaceFile(file, yaml({ ...base, rules: [rule, { name: 'everything', paths: ['/**'], allow: 'authenticated' }] }));
        const outcome = await svc.reloader.reload('signal');
        expect(outcome.result).toBe('failure');
        expect(outcome.problems.join('\n')).toContain('change the headers Envoy must pass');
      }
    } finally {
      await svc.close();
    }
  });
});
