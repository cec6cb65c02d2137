/**
 * The chart's Grafana dashboard and PrometheusRule: both off by default; rendered, they are valid for their
 * schemas (the ConfigMap and the PrometheusRule against the Kubernetes / Prometheus-operator schemas, the
 * dashboard against Grafana's own dashboard model from @grafana/schema), every PromQL expression parses
 * (promtool check rules), the alerts fire and stay quiet on synthetic series (promtool test rules), and every
 * metric a query or an alert names is one the real service (dist/cli.js serve) exports.
 * Tools: helm, promtool and the dashboard schema in .tools/ (`make install`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { parseAllDocuments, stringify as toYaml } from 'yaml';
import { createSigningKey, startIssuer, type TestIssuer } from '../support/issuer.js';
import { startServeProcess, writeTempConfig, type ServeProcess } from '../support/process.js';

const ROOT = process.cwd();
const HELM = process.env.HELM ?? join(ROOT, '.tools/bin/helm');
const PROMTOOL = process.env.PROMTOOL ?? join(ROOT, '.tools/bin/promtool');
const CHART = join(ROOT, 'charts/oidc-authz');
const MAKEFILE = readFileSync(join(ROOT, 'Makefile'), 'utf8');
const GRAFANA_SCHEMA_DIR = join(ROOT, '.tools', `grafana-schema-${/^GRAFANA_SCHEMA_VERSION := (\S+)$/m.exec(MAKEFILE)![1]}`);
const DASHBOARD_FILE = join(CHART, 'files/dashboard.json');

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Record<string, unknown>; data?: Record<string, string> };
type Rule = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
type RuleGroup = { name: string; rules: Rule[] };
type Target = { refId: string; expr: string; datasource?: { type?: string; uid?: string } };
type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { type?: string; uid?: string }; targets?: Target[]; panels?: Panel[] };
type Variable = { name: string; type: string; query: unknown; datasource?: { type?: string; uid?: string } };
type Dashboard = { uid: string; title: string; panels: Panel[]; templating: { list: Variable[] } };

function run(command: string, args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function helmTemplate(args: string[]): K8sObject[] {
  const result = run(HELM, ['template', 'oidc-authz', CHART, '--namespace', 'oidc-authz', ...args]);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseAllDocuments(result.stdout).map((d) => d.toJS() as K8sObject).filter((o) => o !== null && typeof o === 'object');
}

const ON = ['--set', 'grafanaDashboard.enabled=true', '--set', 'prometheusRule.enabled=true'];
const dashboardConfigMaps = (objects: K8sObject[]) => objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard'));
const ruleOf = (objects: K8sObject[]) => {
  const rules = objects.filter((o) => o.kind === 'PrometheusRule');
  expect(rules).toHaveLength(1);
  return rules[0]!;
};
const groupsOf = (object: K8sObject) => (object.spec as { groups: RuleGroup[] }).groups;

/** The prometheus-operator model (kubernetes-models, generated from the CRD's openAPIV3Schema) or Kubernetes' own. */
async function validateObject(object: K8sObject): Promise<void> {
  const module = object.apiVersion === 'v1'
    ? `kubernetes-models/v1/${object.kind}`
    : `@kubernetes-models/prometheus-operator/${object.apiVersion}/${object.kind}`;
  const exported = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = exported[object.kind]!;
  new Model(object).validate();
}

/** Runs promtool in a temporary directory holding `files`; the directory is removed afterwards. */
function promtool(args: string[], files: Record<string, string>): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-authz-promtool-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const result = run(PROMTOOL, args, dir);
    return { status: result.status, out: result.stdout + result.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
const allPanels = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
/** The selector inside a Grafana `label_values(selector, label)` variable query. */
const variableSelector = (query: unknown): string => {
  const text = typeof query === 'string' ? query : String((query as { query: string }).query);
  const match = /^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(text);
  if (!match) throw new Error(`not a label_values() query: ${text}`);
  return match[1]!;
};
/** Grafana's built-in intervals as Prometheus durations, the dashboard's own variables as match-all regexes. */
const asPromQL = (expr: string): string =>
  expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h').replace(/\$\{?[a-zA-Z_]\w*\}?/g, '.*');
/** Every PromQL expression of the dashboard: panel queries and the variables' selectors. */
function dashboardExpressions(d: Dashboard): Array<{ name: string; expr: string }> {
  const exprs: Array<{ name: string; expr: string }> = [];
  for (const panel of allPanels(d)) for (const target of panel.targets ?? []) exprs.push({ name: `dashboard:panel_${panel.id}_${target.refId}`, expr: target.expr });
  for (const variable of d.templating.list.filter((v) => v.type === 'query')) exprs.push({ name: `dashboard:variable_${variable.name}`, expr: variableSelector(variable.query) });
  return exprs;
}

/** Metric names an expression selects: every `name{` and every oidc_authz_* word. */
function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const match of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) names.add(match[1]!);
  for (const match of expr.matchAll(/\boidc_authz_[a-z0-9_]+/g)) names.add(match[0]);
  return [...names];
}
/** Metric names that rate() or increase() is applied to (they must be counters, or a histogram's series). */
const ratedNames = (expr: string): string[] => [...expr.matchAll(/\b(?:rate|increase)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/g)].map((m) => m[1]!);
/** Label matchers of each `name{…}` selector: [metric, label]. */
const matcherLabels = (expr: string): Array<[string, string]> =>
  [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].flatMap((m) => [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => [m[1]!, l[1]!] as [string, string]));

function renderedRules(args: string[] = []): Rule[] {
  return groupsOf(ruleOf(helmTemplate([...ON, ...args]))).flatMap((g) => g.rules);
}

describe('off by default', () => {
  test('helm lint --strict passes with both on', () => {
    const result = run(HELM, ['lint', CHART, '--strict', ...ON, '--set', 'grafanaDashboard.folder=Platform', '--set', 'prometheusRule.alertLabels.team=platform']);
    expect(result.stderr + result.stdout).not.toMatch(/\[(ERROR|WARNING)\]/);
    expect(result.status).toBe(0);
  });


  test('no dashboard ConfigMap and no PrometheusRule unless enabled', () => {
    const objects = helmTemplate([]);
    expect(dashboardConfigMaps(objects)).toEqual([]);
    expect(objects.filter((o) => o.kind === 'PrometheusRule')).toEqual([]);
  });
});

describe('Grafana dashboard (grafanaDashboard.enabled)', () => {
  test('a ConfigMap with the sidecar label (configurable), the folder annotation only with a folder, the dashboard as JSON', async () => {
    const [configMap] = dashboardConfigMaps(helmTemplate(ON));
    expect(configMap!.metadata).toMatchObject({ name: 'oidc-authz-dashboard', namespace: 'oidc-authz', labels: { grafana_dashboard: '1', 'app.kubernetes.io/name': 'oidc-authz' } });
    expect(configMap!.metadata.annotations).toBeUndefined();
    expect(Object.keys(configMap!.data!)).toEqual(['oidc-authz.json']);
    expect(JSON.parse(configMap!.data!['oidc-authz.json']!)).toEqual(dashboard());
    // A ConfigMap holds at most 1 MiB.
    expect(Buffer.byteLength(configMap!.data!['oidc-authz.json']!)).toBeLessThan(1024 * 1024);
    await expect(validateObject(configMap!)).resolves.toBeUndefined();

    const custom = dashboardConfigMaps(helmTemplate([...ON, '--set', 'grafanaDashboard.label=dashboards', '--set', 'grafanaDashboard.labelValue=oidc',
      '--set', 'grafanaDashboard.folder=Platform/Auth', '--set', 'grafanaDashboard.namespace=monitoring', '--set', 'grafanaDashboard.labels.team=platform',
      '--set', 'grafanaDashboard.annotations.owner=sre']))[0]!;
    expect(custom.metadata.namespace).toBe('monitoring');
    expect(custom.metadata.labels).toMatchObject({ dashboards: 'oidc', team: 'platform' });
    expect(custom.metadata.labels!.grafana_dashboard).toBeUndefined();
    expect(custom.metadata.annotations).toEqual({ 'k8s-sidecar-target-directory': 'Platform/Auth', owner: 'sre' });
    const otherKey = dashboardConfigMaps(helmTemplate([...ON, '--set', 'grafanaDashboard.folder=Auth', '--set', 'grafanaDashboard.folderAnnotation=grafana_folder']))[0]!;
    expect(otherKey.metadata.annotations).toEqual({ grafana_folder: 'Auth' });
    await expect(validateObject(custom)).resolves.toBeUndefined();
  });

  test("valid for Grafana's dashboard model (the Dashboard type of @grafana/schema as JSON Schema)", () => {
    const require = createRequire(join(GRAFANA_SCHEMA_DIR, 'node_modules', 'index.js'));
    const Ajv = require('ajv') as new (options: Record<string, unknown>) => { compile(schema: unknown): ((data: unknown) => boolean) & { errors?: unknown[] | null } };
    const schema = JSON.parse(readFileSync(join(GRAFANA_SCHEMA_DIR, 'dashboard.schema.json'), 'utf8')) as { definitions: Record<string, { additionalProperties?: boolean }> };
    // The model is strict (no unknown fields on the dashboard, panels, variables, grid positions).
    expect(schema.definitions.Dashboard!.additionalProperties).toBe(false);
    expect(schema.definitions.Panel!.additionalProperties).toBe(false);
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const ok = validate(dashboard());
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    // And it notices a mistake.
    const broken = dashboard() as unknown as Record<string, unknown>;
    broken.pannels = broken.panels;
    expect(validate(broken)).toBe(false);
  });

  test('datasource is a variable; ids, uids and refIds unique; panels on the 24-column grid without overlaps', () => {
    const d = dashboard();
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const datasource = d.templating.list.find((v) => v.type === 'datasource');
    expect(datasource).toMatchObject({ name: 'datasource', query: 'prometheus' });
    const byVariable = { type: 'prometheus', uid: '${datasource}' };
    for (const variable of d.templating.list.filter((v) => v.type === 'query')) expect(variable.datasource).toEqual(byVariable);
    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = panels.filter((p) => p.type !== 'row');
    expect(queried.length).toBeGreaterThanOrEqual(30);
    for (const panel of queried) {
      expect(panel.datasource).toEqual(byVariable);
      expect(panel.targets?.length).toBeGreaterThan(0);
      const refIds = panel.targets!.map((t) => t.refId);
      expect(new Set(refIds).size).toBe(refIds.length);
      for (const target of panel.targets!) expect(target.datasource).toEqual(byVariable);
    }
    const cells = new Set<string>();
    for (const { gridPos: g, title } of panels) {
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
        expect([title, cells.has(`${x},${y}`)]).toEqual([title, false]);
        cells.add(`${x},${y}`);
      }
    }
    // What an operator looks for first is there.
    const titles = panels.map((p) => p.title);
    for (const title of ['Checks per second', '503 share', 'Check latency percentiles', 'Denials by reason', 'Checks by rule', 'JWKS and discovery fetches',
      'Session refreshes', 'Bearer token cache entries', 'Session cache entries', 'Session store operations', 'Config reloads']) expect(titles).toContain(title);
  });

  test('every query parses as PromQL (promtool check rules, as recording rules)', () => {
    const rules = dashboardExpressions(dashboard()).map(({ name, expr }) => ({ record: name, expr: asPromQL(expr) }));
    const result = promtool(['check', 'rules', 'dashboard.rules.yaml'], { 'dashboard.rules.yaml': toYaml({ groups: [{ name: 'dashboard', rules }] }) });
    expect(result.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(result.status).toBe(0);
    // promtool does notice a broken one.
    const broken = promtool(['check', 'rules', 'r.yaml'], { 'r.yaml': toYaml({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum(rate(oidc_authz_checks_total[5m])' }] }] }) });
    expect(broken.status).not.toBe(0);
  });
});

describe('PrometheusRule (prometheusRule.enabled)', () => {
  test('shape: apiVersion, kind, metadata, spec.groups; valid for the Prometheus-operator schema', async () => {
    const rule = ruleOf(helmTemplate([...ON, '--set', 'prometheusRule.labels.release=kube-prometheus-stack']));
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.metadata).toMatchObject({ name: 'oidc-authz', namespace: 'oidc-authz', labels: { release: 'kube-prometheus-stack', 'app.kubernetes.io/instance': 'oidc-authz' } });
    expect(Object.keys(rule.spec!)).toEqual(['groups']);
    const groups = groupsOf(rule);
    expect(groups.map((g) => g.name)).toEqual(['oidc-authz']);
    expect(groups[0]!.rules.map((r) => r.alert)).toEqual([
      'OidcAuthzChecksUnavailable', 'OidcAuthzJwksFetchFailing', 'OidcAuthzSessionRefreshFailing', 'OidcAuthzCheckLatencyHigh',
      'OidcAuthzSessionStoreDown', 'OidcAuthzConfigReloadFailing', 'OidcAuthzRestartRequired', 'OidcAuthzAbsent',
    ]);
    for (const r of groups[0]!.rules) {
      expect(Object.keys(r).sort()).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
      expect(r.labels!.severity).toMatch(/^(critical|warning)$/);
      expect(Object.keys(r.annotations!).sort()).toEqual(['description', 'summary']);
      // Every expression picks this release's series.
      expect(r.expr).toContain('namespace="oidc-authz", job="oidc-authz"');
    }
    await expect(validateObject(rule)).resolves.toBeUndefined();
  });

  test('promtool check rules accepts the rendered groups (expressions, durations, annotation templates)', () => {
    for (const args of [[], ['--set', 'prometheusRule.runbookUrl=https://runbooks.example.com/oidc-authz', '--set', 'prometheusRule.alertLabels.team=platform',
      '--set-json', 'prometheusRule.extraRules=[{"record":"oidc_authz:checks:rate5m","expr":"sum by (namespace, job) (rate(oidc_authz_checks_total[5m]))"}]']]) {
      const groups = groupsOf(ruleOf(helmTemplate([...ON, ...args])));
      const count = groups[0]!.rules.length;
      const result = promtool(['check', 'rules', 'rules.yaml'], { 'rules.yaml': toYaml({ groups }) });
      expect(result.out).toContain(`SUCCESS: ${count} rules found`);
      expect(result.status).toBe(0);
    }
    // A broken annotation template is caught.
    const broken = promtool(['check', 'rules', 'r.yaml'], { 'r.yaml': toYaml({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'vector(1)', annotations: { description: '{{ $value | nosuchfunction }}' } }] }] }) });
    expect(broken.status).not.toBe(0);
  });

  test('values: thresholds, windows, severities, labels, runbook, selector, switching alerts off, extra rules', () => {
    const rules = renderedRules([
      '--set-json', 'prometheusRule.alerts.unavailable.ratio=0.2', '--set', 'prometheusRule.alerts.unavailable.window=10m', '--set', 'prometheusRule.alerts.unavailable.severity=page',
      '--set-json', 'prometheusRule.alerts.latency.thresholdSeconds=0.5', '--set-json', 'prometheusRule.alerts.latency.quantile=0.999', '--set', 'prometheusRule.alerts.latency.for=20m',
      '--set', 'prometheusRule.alerts.absent.enabled=false', '--set', 'prometheusRule.alertLabels.team=platform',
      '--set', 'prometheusRule.runbookUrl=https://runbooks.example.com/oidc-authz', '--set', 'prometheusRule.selector=job="authz"',
      '--set-json', 'prometheusRule.extraRules=[{"alert":"Mine","expr":"vector(1)"}]',
    ]);
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const unavailable = byName.get('OidcAuthzChecksUnavailable')!;
    expect(unavailable.expr).toMatch(/\) > 0\.2\n/);
    expect(unavailable.expr).toContain('oidc_authz_checks_total{job="authz", decision="unavailable"}[10m]');
    expect(unavailable.labels).toEqual({ severity: 'page', team: 'platform' });
    expect(unavailable.annotations!.summary).toBe('More than 20% of checks answer 503');
    expect(unavailable.annotations!.runbook_url).toBe('https://runbooks.example.com/oidc-authz#oidcauthzchecksunavailable');
    const latency = byName.get('OidcAuthzCheckLatencyHigh')!;
    expect(latency.expr).toMatch(/^histogram_quantile\(0\.999, .*\) > 0\.5$/);
    expect(latency.for).toBe('20m');
    expect(latency.annotations!.description).toContain('The 99.9th percentile');
    expect(byName.has('OidcAuthzAbsent')).toBe(false);
    expect(rules.at(-1)).toEqual({ alert: 'Mine', expr: 'vector(1)' });
    for (const r of rules.slice(0, -1)) expect(r.expr).not.toContain('namespace=');
  });

  test.each<[string, string[], RegExp]>([
    ['a ratio above 1', ['--set', 'prometheusRule.alerts.unavailable.ratio=5'], /ratio/],
    ['a window that is no duration', ['--set', 'prometheusRule.alerts.jwksFailing.window=ten minutes'], /window/],
    ['an unknown alert', ['--set', 'prometheusRule.alerts.slow.enabled=true'], /slow/],
    ['a quantile of 1', ['--set', 'prometheusRule.alerts.latency.quantile=1'], /quantile/],
    ['an unknown dashboard value', ['--set', 'grafanaDashboard.folderName=x'], /folderName/],
    ['a label key with a space', ['--set', 'grafanaDashboard.label=grafana dashboard'], /label/],
  ])('refused: %s', (_name, args, field) => {
    const result = run(HELM, ['template', 'oidc-authz', CHART, ...ON, ...args]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(field);
  });

  test('promtool test rules: each alert fires on its failure and stays quiet when healthy', () => {
    // Annotations are checked by promtool check rules above; here the alerts' names, labels and timing.
    const groups = groupsOf(ruleOf(helmTemplate(ON))).map((g) => ({ ...g, rules: g.rules.map(({ annotations: _annotations, ...r }) => r) }));
    const sel = 'namespace="oidc-authz", job="oidc-authz"';
    const who = { namespace: 'oidc-authz', job: 'oidc-authz' };
    const checks = (labels: string) => `oidc_authz_checks_total{${sel}, instance="a", ${labels}}`;
    const bucket = (le: string) => `oidc_authz_check_duration_seconds_bucket{${sel}, instance="a", decision="allow", le="${le}"}`;
    /** A histogram where every observation falls in the bucket ending at `slowLe` and above. */
    const histogram = (slowLe: string, perMinute: number) => ['0.005', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '+Inf'].map((le) => ({
      series: bucket(le),
      values: Number(le === '+Inf' ? Infinity : le) >= Number(slowLe) ? `0+${perMinute}x40` : '0x40',
    }));
    const tests = [
      { // 503s: 1/s of 11/s (9 %) for long enough fires; the same share at 0.05/s (below minRate) does not.
        input_series: [
          { series: checks('decision="allow", reason="bearer", rule="api"'), values: '0+600x40' },
          { series: checks('decision="unavailable", reason="jwks_unavailable", rule="api"'), values: '0+60x40' },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'OidcAuthzChecksUnavailable', exp_alerts: [] },
          { eval_time: '15m', alertname: 'OidcAuthzChecksUnavailable', exp_alerts: [{ exp_labels: { ...who, severity: 'critical' } }] },
        ],
      },
      {
        input_series: [
          { series: checks('decision="allow", reason="bearer", rule="api"'), values: '0+2x40' },
          { series: checks('decision="unavailable", reason="jwks_unavailable", rule="api"'), values: '0+1x40' },
        ],
        alert_rule_test: [{ eval_time: '20m', alertname: 'OidcAuthzChecksUnavailable', exp_alerts: [] }],
      },
      { // JWKS: only errors for one issuer fires for it; errors beside successes for the other do not.
        input_series: [
          { series: `oidc_authz_jwks_fetches_total{${sel}, instance="a", issuer="https://down.example.com", result="error"}`, values: '0+1x40' },
          { series: `oidc_authz_jwks_fetches_total{${sel}, instance="a", issuer="https://flaky.example.com", result="error"}`, values: '0+1x40' },
          { series: `oidc_authz_jwks_fetches_total{${sel}, instance="a", issuer="https://flaky.example.com", result="ok"}`, values: '0+1x40' },
        ],
        alert_rule_test: [
          { eval_time: '3m', alertname: 'OidcAuthzJwksFetchFailing', exp_alerts: [] },
          { eval_time: '20m', alertname: 'OidcAuthzJwksFetchFailing', exp_alerts: [{ exp_labels: { ...who, issuer: 'https://down.example.com', severity: 'critical' } }] },
        ],
      },
      { // Refreshes: the IdP unreachable for 1 of 3 fires; users' refresh tokens refused (invalid_grant) do not.
        input_series: [
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="ok", error="none"}`, values: '0+20x40' },
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="unavailable", error="unreachable"}`, values: '0+10x40' },
        ],
        alert_rule_test: [{ eval_time: '25m', alertname: 'OidcAuthzSessionRefreshFailing', exp_alerts: [{ exp_labels: { ...who, severity: 'warning' } }] }],
      },
      {
        input_series: [
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="ok", error="none"}`, values: '0+20x40' },
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="rejected", error="invalid_grant"}`, values: '0+20x40' },
        ],
        alert_rule_test: [{ eval_time: '25m', alertname: 'OidcAuthzSessionRefreshFailing', exp_alerts: [] }],
      },
      { // Our client refused by the IdP (a wrong client secret) counts as failing.
        input_series: [
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="rejected", error="misconfigured"}`, values: '0+5x40' },
          { series: `oidc_authz_session_refreshes_total{${sel}, instance="a", result="ok", error="none"}`, values: '0+5x40' },
        ],
        alert_rule_test: [{ eval_time: '25m', alertname: 'OidcAuthzSessionRefreshFailing', exp_alerts: [{ exp_labels: { ...who, severity: 'warning' } }] }],
      },
      { // Latency: every check between 0.25 s and 0.5 s fires; every check under 5 ms does not.
        input_series: histogram('0.5', 60),
        alert_rule_test: [
          { eval_time: '10m', alertname: 'OidcAuthzCheckLatencyHigh', exp_alerts: [] },
          { eval_time: '20m', alertname: 'OidcAuthzCheckLatencyHigh', exp_alerts: [{ exp_labels: { ...who, severity: 'warning' } }] },
        ],
      },
      { input_series: histogram('0.005', 60), alert_rule_test: [{ eval_time: '20m', alertname: 'OidcAuthzCheckLatencyHigh', exp_alerts: [] }] },
      { // Redis: pod b loses it after 5 minutes; pod a keeps it.
        input_series: [
          { series: `oidc_authz_session_store_up{${sel}, instance="a"}`, values: '1x20' },
          { series: `oidc_authz_session_store_up{${sel}, instance="b"}`, values: '1x5 0x15' },
        ],
        alert_rule_test: [
          { eval_time: '6m', alertname: 'OidcAuthzSessionStoreDown', exp_alerts: [] },
          { eval_time: '8m', alertname: 'OidcAuthzSessionStoreDown', exp_alerts: [{ exp_labels: { ...who, instance: 'b', severity: 'critical' } }] },
        ],
      },
      { // Reloads: a failure at minute 10 fires at once and clears 15 minutes later; successes never fire.
        input_series: [
          { series: `oidc_authz_config_reloads_total{${sel}, instance="a", result="failure"}`, values: '0x10 1x30' },
          { series: `oidc_authz_config_reloads_total{${sel}, instance="a", result="success"}`, values: '0+1x40' },
        ],
        alert_rule_test: [
          { eval_time: '9m', alertname: 'OidcAuthzConfigReloadFailing', exp_alerts: [] },
          { eval_time: '11m', alertname: 'OidcAuthzConfigReloadFailing', exp_alerts: [{ exp_labels: { ...who, instance: 'a', severity: 'warning' } }] },
          { eval_time: '30m', alertname: 'OidcAuthzConfigReloadFailing', exp_alerts: [] },
        ],
      },
      { // Restart required: fires after 30 minutes, not before.
        input_series: [{ series: `oidc_authz_config_restart_required{${sel}, instance="a"}`, values: '1x60' }],
        alert_rule_test: [
          { eval_time: '20m', alertname: 'OidcAuthzRestartRequired', exp_alerts: [] },
          { eval_time: '40m', alertname: 'OidcAuthzRestartRequired', exp_alerts: [{ exp_labels: { ...who, instance: 'a', severity: 'warning' } }] },
        ],
      },
      { // Absent: fires once this release's series are gone for 5 minutes (another release's do not count).
        input_series: [
          { series: `oidc_authz_config_info{${sel}, instance="a", rules="3", issuers="1", default_rule="deny"}`, values: '1x10' },
          { series: 'oidc_authz_config_info{namespace="other", job="oidc-authz", instance="x", rules="1", issuers="1", default_rule="deny"}', values: '1x40' },
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'OidcAuthzAbsent', exp_alerts: [] },
          { eval_time: '25m', alertname: 'OidcAuthzAbsent', exp_alerts: [{ exp_labels: { ...who, severity: 'critical' } }] },
        ],
      },
    ];
    const result = promtool(['test', 'rules', 'tests.yaml'], {
      'rules.yaml': toYaml({ groups }),
      'tests.yaml': toYaml({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests: tests.map((t) => ({ interval: '1m', ...t })) }),
    });
    expect(result.out).toContain('SUCCESS');
    expect(result.status).toBe(0);
    // Every alert is exercised.
    const tested = new Set(tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    expect([...tested].sort()).toEqual(groups[0]!.rules.map((r) => r.alert).sort());
  });
});

test('promtool test rules: the annotations render with the alert\'s value and labels', () => {
  const groups = groupsOf(ruleOf(helmTemplate([...ON, '--set', 'prometheusRule.runbookUrl=https://runbooks.example.com/oidc-authz'])));
  const rule = groups[0]!.rules.find((r) => r.alert === 'OidcAuthzChecksUnavailable')!;
  const sel = 'namespace="oidc-authz", job="oidc-authz", instance="a"';
  // 1 of 11 checks per second answers 503: 9.091 %.
  const expanded = Object.fromEntries(Object.entries(rule.annotations!).map(([k, v]) => [k, v
    .replace('{{ $value | humanizePercentage }}', '9.091%').replace('{{ $labels.namespace }}', 'oidc-authz').replace('{{ $labels.job }}', 'oidc-authz')]));
  expect(expanded.description).toMatch(/^9\.091% of the checks of oidc-authz\/oidc-authz answered 503 \(decision unavailable\) over 5m/);
  const tests = [{
    interval: '1m',
    input_series: [
      { series: `oidc_authz_checks_total{${sel}, decision="allow", reason="bearer", rule="api"}`, values: '0+600x30' },
      { series: `oidc_authz_checks_total{${sel}, decision="unavailable", reason="jwks_unavailable", rule="api"}`, values: '0+60x30' },
    ],
    alert_rule_test: [{ eval_time: '15m', alertname: 'OidcAuthzChecksUnavailable', exp_alerts: [{ exp_labels: { namespace: 'oidc-authz', job: 'oidc-authz', severity: 'critical' }, exp_annotations: expanded }] }],
  }];
  const result = promtool(['test', 'rules', 'tests.yaml'], {
    'rules.yaml': toYaml({ groups: [{ name: 'oidc-authz', rules: [rule] }] }),
    'tests.yaml': toYaml({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }),
  });
  expect(result.out).toContain('SUCCESS');
  expect(result.status).toBe(0);
});

describe('metric names: what the dashboard and the alerts query is what the service exports', () => {
  let issuer: TestIssuer;
  let proc: ServeProcess;
  let scrape: string;

  beforeAll(async () => {
    const key = await createSigningKey('RS256', 'k1');
    issuer = await startIssuer([key], '/idp');
    // The real process (dist/cli.js serve: default process metrics included), a bearer issuer, two rules.
    proc = startServeProcess(writeTempConfig({
      listen: { host: '127.0.0.1', port: 0, metricsPort: 0 },
      issuers: [{ issuer: issuer.issuer, audiences: ['api'] }],
      rules: [{ name: 'public', paths: ['/public/**'], allow: 'anonymous' }, { name: 'api', paths: ['/api/**'], allow: 'authenticated' }],
    }));
    const listening = await proc.waitForLog('listening');
    const url = `http://127.0.0.1:${listening.port as number}`;
    // Traffic, so that labelled series exist: an allowed token (a JWKS fetch), a denial, an anonymous route.
    const token = await issuer.sign({ aud: 'api', sub: 'u1', email: 'u1@example.com', email_verified: true });
    expect((await request(url).get('/authz/api/x').set('host', 'h').set('authorization', `Bearer ${token}`)).status).toBe(200);
    expect((await request(url).get('/authz/api/x').set('host', 'h')).status).toBe(401);
    expect((await request(url).get('/authz/public/x').set('host', 'h')).status).toBe(200);
    scrape = await fetch(`http://127.0.0.1:${listening.metricsPort as number}/metrics`).then((r) => r.text());
  });

  afterAll(async () => {
    proc.child.kill('SIGTERM');
    await proc.exited;
    await issuer.stop();
  });

  /** `# TYPE` of each family, and the label names of each sample name seen. */
  const exposition = () => {
    const types = new Map<string, string>();
    const samples = new Map<string, Set<string>>();
    for (const line of scrape.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) types.set(type[1]!, type[2]!);
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
      if (sample) {
        const labels = samples.get(sample[1]!) ?? new Set<string>();
        for (const label of (sample[2] ?? '').matchAll(/([a-zA-Z_]\w*)="/g)) labels.add(label[1]!);
        samples.set(sample[1]!, labels);
      }
    }
    return { types, samples };
  };
  /** The family and type of a name a query uses (a histogram's _bucket/_sum/_count belong to the histogram). */
  const familyOf = (types: Map<string, string>, name: string): { family: string; type: string } | undefined => {
    if (types.has(name)) return { family: name, type: types.get(name)! };
    const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
    if (histogram && types.get(histogram[1]!) === 'histogram') return { family: histogram[1]!, type: 'histogram' };
    return undefined;
  };
  const expressions = (): Array<{ where: string; expr: string }> => [
    ...dashboardExpressions(dashboard()).map(({ name, expr }) => ({ where: name, expr })),
    ...renderedRules().map((r) => ({ where: `alert ${r.alert!}`, expr: r.expr })),
  ];
  /** Labels the scrape does not carry: Prometheus adds them (target labels) or histogram_quantile uses le. */
  const TARGET_LABELS = new Set(['namespace', 'job', 'instance', 'pod', 'service']);

  test('the scrape has the families the queries rely on, with samples for the histogram', () => {
    const { types, samples } = exposition();
    expect(types.get('oidc_authz_check_duration_seconds')).toBe('histogram');
    for (const suffix of ['_bucket', '_sum', '_count']) expect(samples.has(`oidc_authz_check_duration_seconds${suffix}`)).toBe(true);
    expect(samples.get('oidc_authz_checks_total')).toEqual(new Set(['decision', 'reason', 'rule']));
    expect(samples.get('oidc_authz_jwks_fetches_total')).toEqual(new Set(['issuer', 'result']));
    expect(types.get('oidc_authz_process_resident_memory_bytes')).toBe('gauge');
  });

  test('every metric name of every dashboard query and alert expression is exported, rate() only of counters and histograms', () => {
    const { types, samples } = exposition();
    const missing: string[] = [];
    const wrongType: string[] = [];
    const wrongLabel: string[] = [];
    let names = 0;
    for (const { where, expr } of expressions()) {
      for (const name of metricNames(expr)) {
        names++;
        const family = familyOf(types, name);
        if (!family) missing.push(`${where}: ${name}`);
        else if (family.type === 'histogram' && !samples.has(name)) missing.push(`${where}: ${name} (no samples)`);
      }
      for (const name of ratedNames(expr)) {
        const family = familyOf(types, name);
        if (family && family.type !== 'counter' && family.type !== 'histogram') wrongType.push(`${where}: rate of ${family.type} ${name}`);
      }
      // A label matcher names a label the metric has (checked where the scrape has its samples).
      for (const [name, label] of matcherLabels(expr)) {
        const labels = samples.get(name);
        if (labels && !TARGET_LABELS.has(label) && label !== 'le' && !labels.has(label)) wrongLabel.push(`${where}: ${name} has no label ${label}`);
      }
    }
    expect(names).toBeGreaterThan(50);
    expect(missing).toEqual([]);
    expect(wrongType).toEqual([]);
    expect(wrongLabel).toEqual([]);
  });
});
