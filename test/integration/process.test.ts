/**
 * The real process (dist/cli.js): graceful shutdown on SIGTERM, start-up refusal of bad config,
 * check-config, explain and provider.
 */
import request from 'supertest';
import { createSigningKey, startIssuer } from '../support/issuer.js';
import { runCli, startServeProcess, writeTempConfig } from '../support/process.js';

describe('serve', () => {
  test('SIGTERM: readiness off, then no new connections, the in-flight check still answered, exit 0', async () => {
    const key = await createSigningKey('RS256', 'k1');
    const issuer = await startIssuer([key], '/idp');
    const configFile = writeTempConfig({
      listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
      issuers: [{ issuer: issuer.issuer, audiences: ['app'] }],
      rules: [{ name: 'all', paths: ['/**'], allow: 'authenticated' }],
      // The held key fetch must outlast the drain below on a loaded machine, not time out into a 503.
      jwks: { timeout: '30s' },
    });
    const proc = startServeProcess(configFile);
    try {
      const listening = await proc.waitForLog('listening');
      const url = `http://127.0.0.1:${listening.port as number}`;
      // The first token makes the service fetch discovery + JWKS; hold those so the check stays in flight.
      const hold = issuer.hold();
      const token = await issuer.sign({ aud: 'app', email: 'alice@example.com', email_verified: true });
      const inFlight = request(url).get('/authz/x').set('host', 'h').set('authorization', `Bearer ${token}`).then((r) => r);
      await hold.received;

      proc.child.kill('SIGTERM');
      const draining = await proc.waitForLog('draining');
      expect(draining.inFlight).toBe(1);
      // The listener closes once no request has come for a moment (drain.test.ts).
      await proc.waitForLog('stopped accepting');
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();

      hold.release();
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(res.headers['kubeflow-userid']).toBe('alice@example.com');
      expect(await proc.exited).toBe(0);
      expect(proc.logs.map((r) => r.msg)).toContain('stopped');
    } finally {
      proc.child.kill('SIGKILL');
      await issuer.stop();
    }
  });

  test('a host-scoped anonymous rule that a request with another Host would bypass: serve logs the warning once at start-up', async () => {
    const configFile = writeTempConfig({
      listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
      rules: [
        { name: 'docs-public', hosts: ['docs.example.com'], paths: ['/docs/**'], allow: 'anonymous' },
        { name: 'everything-else', paths: ['/**'], allow: 'deny' },
      ],
    });
    const proc = startServeProcess(configFile);
    try {
      await proc.waitForLog('listening');
      const warnings = proc.logs.filter((r) => r.msg === 'policy warning');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        level: 'warn', warning: 'host_scoped_anonymous', rule: 'docs-public', hosts: ['docs.example.com'], stricterRule: 'everything-else', requests: ['any method /docs/**'],
      });
      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  test('a bad config stops start-up with the field path and reason, before listening', async () => {
    const configFile = writeTempConfig({ listen: { port: 'eighty' }, rules: [{ name: 'x', paths: ['no-slash'], allow: 'anonymous' }] });
    const result = await runCli(['serve', '--config', configFile]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('listen.port');
    expect(result.stdout).not.toContain('listening');
  });

  test('a missing cookie secret (the Secret not created, its optional volume empty) stops start-up saying what to make, not a silent crash loop', async () => {
    const configFile = writeTempConfig({
      listen: { port: 0, metricsPort: 0 },
      allowedHosts: ['localhost:*'],
      oidc: { issuer: 'http://127.0.0.1:9/dex', clientId: 'kubeflow-oidc-authservice' },
      session: { secretsFile: '/var/run/secrets/oidc-authz/cookie-secrets' },
    });
    const result = await runCli(['serve', '--config', configFile]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('session.secretsFile: cannot read /var/run/secrets/oidc-authz/cookie-secrets: ENOENT (make one: openssl rand -base64 48; on Kubernetes put it under key cookie-secrets of the Secret the pods mount)');
    expect(result.stdout).not.toContain('listening');
  });
});

describe('check-config', () => {
  test('valid config → exit 0 with a summary', async () => {
    const file = writeTempConfig('rules:\n  - { name: all, paths: ["/**"], allow: authenticated }\n');
    const result = await runCli(['check-config', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ok (1 rules, default deny, 0 issuers)');
    expect(result.stderr).toBe('');
  });

  test('a host-scoped anonymous rule that a request with another Host would bypass: check-config warns, naming both rules, and exits 0', async () => {
    const file = writeTempConfig([
      'rules:',
      '  - { name: docs-public, hosts: [docs.example.com], paths: ["/docs/**"], allow: anonymous }',
      '  - { name: everything-else, paths: ["/**"], allow: authenticated }',
      '',
    ].join('\n'));
    const result = await runCli(['check-config', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${file}: ok (2 rules, default deny, 0 issuers); 1 warning (stderr)\n`);
    const lines = result.stderr.split('\n');
    expect(lines.slice(0, 2)).toEqual([
      'warning: rule #0 "docs-public" allows anonymous access for hosts docs.example.com, but rule #1 "everything-else" (every host) is stricter (authenticated) on the same requests:',
      '    any method /docs/**   (paths "/docs/**" and "/**")',
    ]);
    expect(result.stderr).toContain('anyone can send these requests with Host: docs.example.com and be let through anonymously');
    expect(result.stderr).toContain('allowedHosts and publicUrl do not restrict check requests');
    expect(result.stderr).toContain('fix: - drop hosts from "docs-public"');
  });

  test('every problem is listed with its path', async () => {
    const file = writeTempConfig({
      defaultRule: 'allow',
      rules: [
        { name: 'a', paths: ['/x/{a}'], allow: { groups: ['{b}'] } },
        { name: 'b', paths: ['/**'], allow: 'authenticated', extra: true },
      ],
      session: { maxAge: 'forever' },
    });
    const result = await runCli(['check-config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('defaultRule');
    expect(result.stderr).toContain('rules.1: unknown field(s) "extra"');
    expect(result.stderr).toContain('session.maxAge: "forever" is not a duration');
  });

  test('a {param} no path captures is refused naming the rule', async () => {
    const file = writeTempConfig({ rules: [{ name: 'a', paths: ['/x/{a}'], allow: { groups: ['{b}'] } }] });
    const result = await runCli(['check-config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('rules.0.allow: uses {b} but path "/x/{a}" does not capture it');
  });

  test('environment overrides are validated too', async () => {
    const file = writeTempConfig({});
    const result = await runCli(['check-config', file], { OIDC_AUTHZ_LISTEN__PORT: '70000' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('listen.port');
  });
});

describe('explain', () => {
  const file = () =>
    writeTempConfig({
      rules: [
        { name: 'static', paths: ['/static/**'], allow: 'anonymous' },
        { name: 'workspace', paths: ['/workspaces/{ws}/**'], allow: { groups: ['{ws}'] } },
      ],
    });

  test('names the rule, the captured parameters and the decision for given claims', async () => {
    const result = await runCli(['explain', 'GET', 'https://kf.example.com/workspaces/team-a/lab', '--config', file(), '--claims', '{"email":"a@example.com","email_verified":true,"groups":["team-b"]}']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('rule:      #1 workspace');
    expect(result.stdout).toContain('params:    {"ws":"team-a"}');
    expect(result.stdout).toContain('decision:  403 forbidden (requirement_not_met: groups not met)');
  });

  test('a hostile spelling is explained as the 400 it gets', async () => {
    const result = await runCli(['explain', 'GET', 'https://kf.example.com/static/..%2Fworkspaces/x', '--config', file()]);
    expect(result.stdout).toContain('decision:  400 bad_request (encoded_slash)');
  });

  test('a host-scoped anonymous rule that a request with another Host would bypass: explain shows the warning beside the rule it undercuts', async () => {
    const config = writeTempConfig({
      rules: [
        { name: 'docs-public', hosts: ['docs.example.com'], paths: ['/docs/**'], allow: 'anonymous' },
        { name: 'everything-else', paths: ['/**'], allow: 'authenticated' },
      ],
    });
    const concerned = await runCli(['explain', 'GET', 'https://kubeflow.example.com/docs/guide', '--config', config]);
    expect(concerned.code).toBe(0);
    expect(concerned.stdout).toContain('rule:      #1 everything-else');
    expect(concerned.stdout).toContain('warning: rule #0 "docs-public" allows anonymous access for hosts docs.example.com, but rule #1 "everything-else"');
    expect(concerned.stdout).not.toContain('note:');

    // The anonymous rule itself, asked with its own Host: the same warning.
    const anonymous = await runCli(['explain', 'GET', 'https://docs.example.com/docs/guide', '--config', config]);
    expect(anonymous.stdout).toContain('rule:      #0 docs-public');
    expect(anonymous.stdout).toContain('warning: rule #0 "docs-public"');

    // A request outside the overlap is not concerned; explain says the config has a warning elsewhere.
    const elsewhere = await runCli(['explain', 'GET', 'https://kubeflow.example.com/pipelines', '--config', config]);
    expect(elsewhere.stdout).not.toContain('warning:');
    expect(elsewhere.stdout).toContain('note:      1 other policy warning in this config (oidc-authz check-config lists every warning)');
  });

  test('no matching rule falls to the default rule', async () => {
    const result = await runCli(['explain', 'POST', '/other', '--config', file()]);
    expect(result.stdout).toContain('(no rule matched) → defaultRule: deny');
    expect(result.stdout).toContain('decision:  403 forbidden (default_deny)');
  });
});

test('provider prints the Istio extension provider with the header lists', async () => {
  const result = await runCli(['provider', '--config', writeTempConfig({}), '--service', 'oidc-authz.auth.svc.cluster.local', '--port', '8080']);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('statusOnError: "503"');
  expect(result.stdout).toContain('pathPrefix: /authz');
  expect(result.stdout).toMatch(/headersToUpstreamOnAllow:\n\s+- kubeflow-userid\n\s+- kubeflow-groups/);
});
