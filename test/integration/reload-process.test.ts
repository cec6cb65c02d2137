/**
 * Hot reload in the real process (dist/cli.js, `make build` first): SIGHUP applies a new config, and many
 * reloads under a steady load of checks lose no check, keep every answer whole (rules and identity mapping
 * of one config, never a mix) and refetch no JWKS. The figures of the load run are printed and written to
 * test-artifacts/reload-under-load.json; nothing here asserts on time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { ConfigInput } from '../../src/config/schema.js';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startServeProcess, writeTempConfig, type ServeProcess } from '../support/process.js';
import { metricValue, replaceFile } from '../support/reload.js';
import { pollUntil } from '../support/service.js';

const yaml = (config: ConfigInput) => `${JSON.stringify(config, null, 2)}\n`;

interface Answer {
  readonly status: number;
  readonly userId: string | undefined;
}

/** One check over a keep-alive connection: status and the user id header, or the connection error. */
function check(agent: Agent, port: number, path: string, token: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ agent, host: '127.0.0.1', port, path: `/authz${path}`, headers: { host: 'kubeflow.example.com', authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, userId: res.headers['kubeflow-userid'] as string | undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const countLogs = (proc: ServeProcess, ...messages: string[]) => proc.logs.filter((line) => messages.includes(line.msg as string)).length;

describe('the serve process', () => {
  let issuer: TestIssuer;
  beforeAll(async () => {
    issuer = await startIssuer([await createSigningKey('RS256', 'k1')], '/idp');
  });
  afterAll(() => issuer.stop());

  /**
   * Two valid configs that differ in a rule and in the identity mapping: /a is allowed by A, /b by B, and
   * B prefixes user ids with "b:". An allowed /a with a "b:" id (or /b without one) would be a check that
   * saw the rules of one config and the mapping of the other.
   */
  const configA = (): ConfigInput => ({
    listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
    reload: { watch: false },
    issuers: [{ issuer: issuer.issuer, audiences: ['app'] }],
    rules: [
      { name: 'a', paths: ['/a/**'], allow: 'authenticated' },
      { name: 'b', paths: ['/b/**'], allow: 'deny' },
    ],
  });
  const configB = (): ConfigInput => ({
    ...configA(),
    identity: { userIdPrefix: 'b:' },
    rules: [
      { name: 'a', paths: ['/a/**'], allow: 'deny' },
      { name: 'b', paths: ['/b/**'], allow: 'authenticated' },
    ],
  });

  test('SIGHUP applies a new config; SIGTERM still drains and exits 0', async () => {
    const file = writeTempConfig(yaml(configA()));
    const proc = startServeProcess(file);
    try {
      const { port } = (await proc.waitForLog('listening')) as { port: number };
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const token = await issuer.sign({ aud: 'app', email: 'alice@example.com', email_verified: true });
      expect(await check(agent, port, '/b/x', token)).toEqual({ status: 403, userId: undefined });

      replaceFile(file, yaml(configB()));
      proc.child.kill('SIGHUP');
      expect(await proc.waitForLog('config reloaded')).toMatchObject({ trigger: 'signal', changed: ['identity.userIdPrefix', 'rules'] });
      expect(await check(agent, port, '/b/x', token)).toEqual({ status: 200, userId: 'b:alice@example.com' });
      agent.destroy();

      proc.child.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  test('under load: 40 reloads (two configs in turn, some broken) while 16 clients check: no error, no 5xx, every answer from one whole config', async () => {
    const CLIENTS = 16;
    const RELOADS = 40;
    /** Checks answered between two reloads, at least: the load keeps running through each swap. */
    const CHECKS_BETWEEN = 60;
    const broken = [
      'rules: [ { name: a, paths: [/a/**]\n',
      yaml({ ...configA(), defaultRule: 'allow' as 'deny' }),
      yaml({ ...configB(), identity: { userIdTransformers: [{ match: '(', replace: '' }] } }),
    ];
    const file = writeTempConfig(yaml(configA()));
    const proc = startServeProcess(file);
    const agents = Array.from({ length: CLIENTS }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      const { port, metricsPort } = (await proc.waitForLog('listening')) as { port: number; metricsPort: number };
      const token = await issuer.sign({ aud: 'app', email: 'alice@example.com', email_verified: true });

      const jwksBefore = issuer.hitsOf('/jwks');
      const problems: string[] = [];
      let answered = 0;
      /** Latencies once the load is warm (the first checks wait for the JWKS): during a reload, and between reloads. */
      const during: number[] = [];
      const between: number[] = [];
      let measuring = false;
      let reloading = false;
      let stop = false;
      const client = async (agent: Agent, index: number) => {
        for (let n = index; !stop; n++) {
          const path = n % 2 === 0 ? '/a/x' : '/b/x';
          const startedAt = performance.now();
          const overlapsReload = reloading;
          let answer: Answer;
          try {
            answer = await check(agent, port, path, token);
          } catch (error) {
            problems.push(`${path}: ${(error as Error).message}`);
            continue;
          }
          const latency = performance.now() - startedAt;
          answered++;
          if (measuring) (overlapsReload || reloading ? during : between).push(latency);
          // Config A: /a → 200 "alice@…", /b → 403. Config B: /a → 403, /b → 200 "b:alice@…". Either is fine.
          const expected = answer.status === 403 ? undefined : path === '/a/x' ? 'alice@example.com' : 'b:alice@example.com';
          if ((answer.status !== 200 && answer.status !== 403) || answer.userId !== expected) problems.push(`${path}: ${answer.status} ${answer.userId ?? '(no user)'}`);
        }
      };
      const load = agents.map((agent, index) => client(agent, index));
      await pollUntil(async () => answered, (n) => n >= CHECKS_BETWEEN);
      measuring = true;

      let expectedSuccesses = 0;
      let expectedFailures = 0;
      let swapped = 0;
      for (let i = 1; i <= RELOADS; i++) {
        const bad = i % 7 === 0;
        const text = bad ? broken[(i / 7) % broken.length]! : yaml(swapped++ % 2 === 0 ? configB() : configA());
        const done = countLogs(proc, 'config reloaded', 'config reload failed');
        const answeredBefore = answered;
        replaceFile(file, text);
        reloading = true;
        proc.child.kill('SIGHUP');
        await pollUntil(async () => countLogs(proc, 'config reloaded', 'config reload failed'), (n) => n > done);
        reloading = false;
        if (bad) expectedFailures++;
        else expectedSuccesses++;
        await pollUntil(async () => answered - answeredBefore, (n) => n >= CHECKS_BETWEEN);
      }
      stop = true;
      await Promise.all(load);

      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const summary = (latencies: number[]) => {
        const sorted = [...latencies].sort((a, b) => a - b);
        const at = (q: number) => Number((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0).toFixed(2));
        return { checks: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: at(1) };
      };
      const reloadLines = proc.logs.filter((line) => line.msg === 'config reloaded' || line.msg === 'config reload failed');
      const figures = {
        clients: CLIENTS,
        reloads: RELOADS,
        successfulReloads: metricValue(metrics, 'oidc_authz_config_reloads_total', 'result="success"'),
        failedReloads: metricValue(metrics, 'oidc_authz_config_reloads_total', 'result="failure"'),
        checksAnswered: answered,
        errors: problems.length,
        // A check counts as during a reload when it was under way at any time between the SIGHUP and the
        // moment the test read the reload's log line (so each window is a little longer than the reload).
        duringReloads: summary(during),
        betweenReloads: summary(between),
        // In the service: the whole reload (file reads included, queued behind the checks), and the part that
        // holds the event loop (parse, validate, build, swap), the only time a check can wait for a reload.
        reloadTookMs: summary(reloadLines.map((line) => line.tookMs as number)),
        reloadBuildMs: summary(reloadLines.map((line) => line.buildMs as number)),
        jwksFetches: issuer.hitsOf('/jwks') - jwksBefore,
      };
      mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true });
      writeFileSync(join(process.cwd(), 'test-artifacts', 'reload-under-load.json'), `${JSON.stringify(figures, null, 2)}\n`);
      console.log(`reload under load: ${JSON.stringify(figures)}`);

      expect(problems.slice(0, 10)).toEqual([]);
      expect(figures.successfulReloads).toBe(expectedSuccesses);
      expect(figures.failedReloads).toBe(expectedFailures);
      expect(during.length).toBeGreaterThan(0);
      // Identity-mapping changes build a new bearer verifier each time; the issuer's keys are kept.
      expect(figures.jwksFetches).toBe(1);
      expect(metricValue(metrics, 'oidc_authz_checks_total', 'decision="unavailable",reason="internal_error",rule="none"')).toBeUndefined();
    } finally {
      for (const agent of agents) agent.destroy();
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  }, 120_000);
});
