/**
 * `oidc-authz test CONFIG CASES…`: policy tests kept beside the config and run in CI. Exit 0 when every
 * case passes, 1 when one fails, 2 when the config or a cases file cannot be used (nothing is run then).
 * The config is read as the service reads it (file, OIDC_AUTHZ_* overrides, schema) but its secret files
 * are not: testing a policy needs no cookie secret and no client secret.
 */
import { writeFileSync } from 'node:fs';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { CasesError, loadCasesFile, type CasesFile } from './cases.js';
import { junitReport, textReport, totalsOf } from './report.js';
import { runCasesFile, type FileResult } from './run.js';

export interface TestOptions {
  readonly format: 'text' | 'junit';
  /** Where the report goes instead of stdout; with junit, stdout still gets the text report. */
  readonly output?: string | undefined;
}

export interface Output {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export async function runPolicyTests(configFile: string, casesFiles: readonly string[], options: TestOptions, out: Output): Promise<number> {
  let config: Config;
  try {
    config = loadConfigFile(configFile);
  } catch (error) {
    if (error instanceof ConfigError) {
      out.stderr(`oidc-authz: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  // Every file is read before any case runs: a broken file is a usage error, never half a report.
  const loaded: CasesFile[] = [];
  const broken: CasesError[] = [];
  for (const file of casesFiles) {
    try {
      loaded.push(loadCasesFile(file, config));
    } catch (error) {
      if (!(error instanceof CasesError)) throw error;
      broken.push(error);
    }
  }
  if (broken.length > 0) {
    for (const error of broken) out.stderr(`oidc-authz: ${error.message}\n`);
    return 2;
  }
  const results: FileResult[] = [];
  for (const cases of loaded) results.push(await runCasesFile(config, cases));

  const text = textReport(results);
  const report = options.format === 'junit' ? junitReport(results) : text;
  if (options.output === undefined) {
    out.stdout(report);
  } else {
    try {
      writeFileSync(options.output, report);
    } catch (error) {
      out.stderr(`oidc-authz: --output ${options.output}: cannot write: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
      return 2;
    }
    if (options.format === 'junit') out.stdout(text);
  }
  const totals = totalsOf(results);
  return totals.failed + totals.errors === 0 ? 0 : 1;
}
