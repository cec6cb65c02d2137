/**
 * `oidc-authz test` as CI runs it (the built dist/cli.js): every example's cases pass against the config
 * beside them; a wrong expectation exits 1 with expected, actual and the explain text; JUnit XML that a
 * real parser reads; a malformed cases file exits 2 naming the field; the config's secret files unread.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/process.js';

const EXAMPLES = join(process.cwd(), 'examples');
const KUBEFLOW_CONFIG = join(EXAMPLES, 'kubeflow', 'config.yaml');
/** Every examples/<name>/ with a cases.yaml: adding an example adds it here. */
const examples = readdirSync(EXAMPLES).filter((name) => existsSync(join(EXAMPLES, name, 'cases.yaml')));

function casesFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'oidc-authz-cases-')), 'cases.yaml');
  writeFileSync(file, text);
  return file;
}

/** Python's expat: the report is well-formed XML; returns the (testcase name, failure message) pairs. */
function parseJunit(xml: string): Array<[string, string | null]> {
  const script = 'import sys, json, xml.etree.ElementTree as ET\nroot = ET.parse(sys.stdin).getroot()\nassert root.tag == "testsuites"\nprint(json.dumps([[c.get("name"), c.find("failure").get("message") if c.find("failure") is not None else None] for c in root.iter("testcase")]))';
  const parsed = spawnSync('python3', ['-c', script], { input: xml, encoding: 'utf8' });
  if (parsed.status !== 0) throw new Error(`not valid JUnit XML: ${parsed.stderr}`);
  return JSON.parse(parsed.stdout) as Array<[string, string | null]>;
}

const WRONG = `
cases:
  - name: static is public
    request: "GET http://localhost:8080/static/app.js"
    expect: { status: 200, rule: dashboard-assets }
  - name: alice opens team-b's notebook
    request: { method: GET, url: "http://localhost:8080/notebook/team-b/lab/", headers: { accept: application/json } }
    identity: { session: true, claims: { iss: "http://dex.auth.svc.cluster.local:5556/dex", email: alice@example.com, email_verified: true, groups: [team-a] } }
    expect: { status: 200, reason: cookie, headers: { kubeflow-userid: alice@example.com } }
`;

test('the examples: each examples/*/cases.yaml passes against its config.yaml', async () => {
  expect(examples).toContain('kubeflow');
  for (const name of examples) {
    const result = await runCli(['test', join(EXAMPLES, name, 'config.yaml'), join(EXAMPLES, name, 'cases.yaml')]);
    expect({ example: name, code: result.code, stderr: result.stderr }).toEqual({ example: name, code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^\d+ cases? in 1 file: \d+ passed, 0 failed$/m);
    expect(result.stdout).not.toContain('FAIL');
  }
});

test('the config\'s secret files are never read: the example passes with them pointing nowhere', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-nosecrets-'));
  const config = readFileSync(KUBEFLOW_CONFIG, 'utf8').replaceAll('/etc/oidc-authz/secrets/', `${dir}/absent/`);
  expect(config).toContain(`secretsFile: ${dir}/absent/cookie-secrets`);
  writeFileSync(join(dir, 'config.yaml'), config);
  const result = await runCli(['test', join(dir, 'config.yaml'), join(EXAMPLES, 'kubeflow', 'cases.yaml')]);
  expect(result.code).toBe(0);
  // The login redirect is computed without the client secret or the cookie secrets.
  expect(result.stdout).toContain('ok    a browser without a session is sent to log in');
});

test('a wrong expectation: exit 1, expected and actual, the answer and the explain text; the passing case still reported', async () => {
  const result = await runCli(['test', KUBEFLOW_CONFIG, casesFile(WRONG)]);
  expect(result.code).toBe(1);
  expect(result.stdout).toContain('  ok    static is public\n');
  expect(result.stdout).toContain([
    '  FAIL  alice opens team-b\'s notebook',
    '          status: expected 200, got 403',
    '          reason: expected "cookie", got "requirement_not_met"',
    '          header kubeflow-userid: expected "alice@example.com", got (absent)',
    '          answer: 403 forbidden (rule notebooks, reason requirement_not_met: groups not met, user alice@example.com)',
    '          explain:',
    '            request:   GET localhost:8080/notebook/team-b/lab/',
    '            normalized: /notebook/team-b/lab/',
    '            rule:      #2 notebooks',
    '            params:    {"namespace":"team-b"}',
    '            access:    {"groups":["{namespace}","kubeflow-admins"]}',
    '            identity:  kubeflow-userid=alice@example.com kubeflow-groups=team-a',
    '            decision:  403 forbidden (requirement_not_met: groups not met)',
  ].join('\n'));
  expect(result.stdout).toMatch(/2 cases in 1 file: 1 passed, 1 failed\n$/);
});

test('--format junit: valid XML on stdout with the failure; with --output, the XML in the file and the text on stdout', async () => {
  const wrong = casesFile(WRONG);
  const example = join(EXAMPLES, 'kubeflow', 'cases.yaml');
  const result = await runCli(['test', KUBEFLOW_CONFIG, wrong, example, '--format', 'junit']);
  expect(result.code).toBe(1);
  const cases = parseJunit(result.stdout);
  expect(cases[0]).toEqual(['static is public', null]);
  expect(cases[1]).toEqual(['alice opens team-b\'s notebook', 'status: expected 200, got 403']);
  expect(cases.slice(2).every(([, failure]) => failure === null)).toBe(true);
  expect(result.stdout).toMatch(/<testsuites name="oidc-authz test" tests="\d+" failures="1" errors="0"/);
  expect(result.stdout.match(/<testsuite /g)).toHaveLength(2);

  const output = join(mkdtempSync(join(tmpdir(), 'oidc-authz-junit-')), 'report.xml');
  const toFile = await runCli(['test', KUBEFLOW_CONFIG, wrong, '--format', 'junit', '--output', output]);
  expect(toFile.code).toBe(1);
  expect(parseJunit(readFileSync(output, 'utf8'))).toHaveLength(2);
  expect(toFile.stdout).toContain('  FAIL  alice opens team-b\'s notebook');
});

test('a malformed cases file: exit 2, each problem with its field path, nothing run', async () => {
  const result = await runCli(['test', KUBEFLOW_CONFIG, casesFile(`
cases:
  - name: a
    request: "GET http://localhost:8080/"
    expect: { status: 200 }
  - name: b
    request: "GET http://localhost:8080/"
    identity: { claims: { sub: x }, tokenFile: t.jwt }
    expect: { status: 20O, rule: everything }
`)]);
  expect(result.code).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).toContain('cases.1.identity: takes one of claims, token or tokenFile, not claims and tokenFile');
  expect(result.stderr).toContain('cases.1.expect.status: Invalid option: expected one of 200|302|400|401|403|503');
});

test('usage and file errors exit 2: no cases file, an unknown format, a missing file, an invalid config', async () => {
  const noCases = await runCli(['test', KUBEFLOW_CONFIG]);
  expect(noCases.code).toBe(2);
  expect(noCases.stderr).toContain('test needs CONFIG and at least one CASES file');
  const format = await runCli(['test', KUBEFLOW_CONFIG, casesFile(WRONG), '--format', 'tap']);
  expect(format.code).toBe(2);
  expect(format.stderr).toContain('--format is text or junit, not "tap"');
  const missing = await runCli(['test', KUBEFLOW_CONFIG, '/nonexistent/cases.yaml']);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('invalid cases file (/nonexistent/cases.yaml):\n  - (file): cannot read: ENOENT');
  const config = casesFile('rules: [{ name: x, paths: [no-slash], allow: anonymous }]');
  const badConfig = await runCli(['test', config, casesFile(WRONG)]);
  expect(badConfig.code).toBe(2);
  expect(badConfig.stderr).toContain('rules.0.paths.0');
  const unknownOption = await runCli(['test', KUBEFLOW_CONFIG, casesFile(WRONG), '--verbose']);
  expect(unknownOption.code).toBe(2);
});
