/**
 * Runs a cases file: each case through the real pipeline (pipeline.ts), its answer compared with what
 * the case expects. A failing case carries the differences, the answer and what `explain` says.
 */
import type { Config } from '../config/schema.js';
import type { CasesFile, Expectation, PolicyCase } from './cases.js';
import { explain, type ExplainCaller } from './explain.js';
import { tokenContextFor } from './keys.js';
import { createCheckSimulator, type CheckOutcome } from './pipeline.js';
import { checkToken, type TokenCheckContext } from './token.js';

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  /** "status: expected 200, got 403" lines; empty when passed. */
  readonly problems: readonly string[];
  /** The answer in one line, for a failure report. */
  readonly answer: string | null;
  /** What `oidc-authz explain` prints for the case's request and identity; only for a failure. */
  readonly explain: string | null;
  /** The case could not be run (a bug, not a mismatch): the error's message. */
  readonly error: string | null;
  readonly seconds: number;
}

export interface FileResult {
  readonly file: string;
  readonly results: readonly CaseResult[];
  readonly seconds: number;
}

export async function runCasesFile(config: Config, cases: CasesFile): Promise<FileResult> {
  const started = performance.now();
  const tokens = tokenContextFor(config, cases);
  const simulator = createCheckSimulator(config, tokens);
  const results: CaseResult[] = [];
  for (const testCase of cases.cases) {
    const caseStarted = performance.now();
    const seconds = () => (performance.now() - caseStarted) / 1000;
    let outcome: CheckOutcome;
    try {
      outcome = await simulator.check(testCase.request, testCase.identity);
    } catch (error) {
      results.push({ name: testCase.name, passed: false, problems: [], answer: null, explain: null, error: error instanceof Error ? error.message : String(error), seconds: seconds() });
      continue;
    }
    const problems = compare(testCase.expect, outcome);
    results.push(problems.length === 0
      ? { name: testCase.name, passed: true, problems, answer: null, explain: null, error: null, seconds: seconds() }
      : { name: testCase.name, passed: false, problems, answer: describeAnswer(outcome), explain: await explainCase(config, testCase, tokens), error: null, seconds: seconds() });
  }
  return { file: cases.file, results, seconds: (performance.now() - started) / 1000 };
}

/** The differences between what a case expects and the answer, one line each. */
export function compare(expected: Expectation, outcome: CheckOutcome): string[] {
  const problems: string[] = [];
  const { decision } = outcome;
  if (outcome.status !== expected.status) problems.push(`status: expected ${expected.status}, got ${outcome.status}`);
  const rule = decision.rule?.name ?? null;
  if (expected.rule !== undefined && expected.rule !== rule) problems.push(`rule: expected ${quoted(expected.rule)}, got ${quoted(rule)}`);
  if (expected.reason !== undefined && expected.reason !== decision.reason) problems.push(`reason: expected ${quoted(expected.reason)}, got ${quoted(decision.reason)}`);
  for (const [name, want] of Object.entries(expected.headers ?? {})) {
    const values = outcome.headers.get(name.toLowerCase());
    const got = values === undefined ? null : values.join(', ');
    if (got !== want) problems.push(`header ${name.toLowerCase()}: expected ${shown(name, want)}, got ${shown(name, got)}`);
  }
  if (expected.upstream !== undefined) {
    const upstream = outcome.upstream;
    if (upstream === null) {
      problems.push(`upstream: expected the request to reach it, but the answer is ${outcome.status}`);
    } else {
      for (const [name, want] of Object.entries(expected.upstream)) {
        const got = upstream.get(name.toLowerCase()) ?? null;
        if (got !== want) problems.push(`upstream ${name.toLowerCase()}: expected ${shown(name, want)}, got ${shown(name, got)}`);
      }
    }
  }
  return problems;
}

function describeAnswer(outcome: CheckOutcome): string {
  const { decision } = outcome;
  const unmet = decision.kind === 'forbidden' && decision.unmet ? `: ${decision.unmet} not met` : '';
  const user = (decision.kind === 'allow' || decision.kind === 'forbidden') && decision.identity ? `, user ${decision.identity.userId}` : '';
  const location = decision.kind === 'login' ? `, location ${decision.location}` : '';
  return `${outcome.status} ${decision.kind} (rule ${decision.rule?.name ?? '(none)'}, reason ${decision.reason}${unmet}${user}${location})`;
}

/** The explain text for the case's request and identity; a token is checked as the pipeline checked it. */
async function explainCase(config: Config, testCase: PolicyCase, tokens: TokenCheckContext): Promise<string> {
  const { identity, request } = testCase;
  let caller: ExplainCaller;
  switch (identity.kind) {
    case 'anonymous':
      caller = { kind: 'anonymous' };
      break;
    case 'claims':
      caller = { kind: 'claims', claims: identity.claims, session: identity.session };
      break;
    case 'token':
      caller = { kind: 'token', check: await checkToken(identity.token, tokens) };
      break;
  }
  return explain(config, request.method, request.url, caller);
}

function quoted(value: string | null): string {
  return value === null ? '(none)' : JSON.stringify(value);
}

/**
 * Header values in reports. A token identity's token travels in Authorization (to the upstream too):
 * only its scheme is printed. Other values come from the cases file or the service's answer.
 */
export function shown(name: string, value: string | null): string {
  if (value === null) return '(absent)';
  return JSON.stringify(name.toLowerCase() === 'authorization' ? `${value.split(' ', 1)[0]} [redacted]` : value);
}
