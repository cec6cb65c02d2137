#!/usr/bin/env node
/**
 * oidc-authz serve [--config FILE]
 * oidc-authz check-config FILE
 * oidc-authz explain METHOD URL [--config FILE] [--claims JSON | --token FILE]
 * oidc-authz test CONFIG CASES... [--format text|junit] [--output FILE]
 * oidc-authz provider [--config FILE] [--service HOST] [--port N]
 * oidc-authz sessions revoke (--user ID | --subject SUB | --sid SID) [--issuer ISS] [--config FILE]
 * oidc-authz login | token | logout                (for users: src/user-cli/contract.ts)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { Claims } from './authn/claims.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { extAuthzProvider } from './envoy-contract.js';
import { serve } from './main.js';
import { formatWarning, lintPolicy } from './policy/lint.js';
import { runPolicyTests } from './policy-test/command.js';
import { explain, type ExplainCaller } from './policy-test/explain.js';
import { bareToken, checkToken, networkTokenContext } from './policy-test/token.js';
import { revokeSessions, type RevokeTarget } from './session-store/revoke-cli.js';
import { runUserCli, USER_CLI_USAGE } from './user-cli/main.js';

const DEFAULT_CONFIG = '/etc/oidc-authz/config.yaml';
const USAGE = `usage:
  oidc-authz serve [--config FILE]                 run the service (default config ${DEFAULT_CONFIG})
  oidc-authz check-config FILE                     validate a config file (warnings on stderr) and exit
  oidc-authz explain METHOD URL [--config FILE] [--claims JSON | --token FILE]
                                                   which rule matches and what it decides, for claims
                                                   or a token verified with the configured issuers' keys
  oidc-authz test CONFIG CASES... [--format text|junit] [--output FILE]
                                                   policy tests: run each case's request through the
                                                   check and compare the answer; exit 1 on a failure
  oidc-authz provider [--config FILE] [--service HOST] [--port N]
                                                   Istio extension provider for this config (YAML)
  oidc-authz sessions revoke (--user ID | --subject SUB | --sid SID) [--issuer ISS] [--config FILE]
                                                   end sessions kept in Redis (session.store: redis) on
                                                   every replica: a user's (kubeflow-userid value), a
                                                   subject's or an IdP session's (--issuer: default oidc.issuer)
For users (tokens for scripts and SDKs; no service config needed):
${USER_CLI_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      await serve(values.config ?? DEFAULT_CONFIG);
      return -1;
    }
    case 'check-config': {
      const { positionals, values } = parseArgs({ args: rest, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
      const file = positionals[0] ?? values.config;
      if (!file) return usage('check-config needs a FILE');
      const config = loadConfigFile(file);
      // Warnings are about a valid config: they go to stderr beside errors, and the exit code stays 0.
      const warnings = lintPolicy(config);
      for (const warning of warnings) process.stderr.write(formatWarning(warning));
      const warned = warnings.length === 0 ? '' : `; ${warnings.length} warning${warnings.length === 1 ? '' : 's'} (stderr)`;
      process.stdout.write(`${file}: ok (${config.rules.length} rules, default ${config.defaultRule}, ${config.issuers.length + (config.oidc ? 1 : 0)} issuers)${warned}\n`);
      return 0;
    }
    case 'explain': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { config: { type: 'string', short: 'c' }, claims: { type: 'string' }, token: { type: 'string' } },
      });
      const [method, url] = positionals;
      if (!method || !url) return usage('explain needs METHOD and URL');
      if (values.claims !== undefined && values.token !== undefined) return usage('explain takes --claims or --token, not both');
      const config = loadConfigFile(values.config ?? DEFAULT_CONFIG);
      let caller: ExplainCaller = { kind: 'unspecified' };
      if (values.claims !== undefined) {
        const claims = parseClaims(values.claims);
        if (claims === null) return usage('--claims takes a JSON object of claims, e.g. \'{"email":"a@example.com","email_verified":true}\'');
        caller = { kind: 'claims', claims, session: false };
      } else if (values.token !== undefined) {
        let text: string;
        try {
          text = readFileSync(values.token, 'utf8');
        } catch (error) {
          return usage(`--token ${values.token}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        }
        // The issuers' real keys, fetched as the service fetches them: the same checks, the same answer.
        caller = { kind: 'token', check: await checkToken(bareToken(text), networkTokenContext(config)) };
      }
      process.stdout.write(explain(config, method.toUpperCase(), url, caller));
      return 0;
    }
    case 'test': {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { format: { type: 'string', default: 'text' }, output: { type: 'string', short: 'o' } },
      });
      const [config, ...cases] = positionals;
      if (!config || cases.length === 0) return usage('test needs CONFIG and at least one CASES file');
      if (values.format !== 'text' && values.format !== 'junit') return usage(`--format is text or junit, not "${values.format}"`);
      return runPolicyTests(config, cases, { format: values.format, output: values.output }, {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
      });
    }
    case 'provider': {
      const { values } = parseArgs({
        args: rest,
        options: { config: { type: 'string', short: 'c' }, service: { type: 'string' }, port: { type: 'string' } },
      });
      const config = loadConfigFile(values.config ?? DEFAULT_CONFIG);
      const provider = extAuthzProvider(config, {
        service: values.service ?? 'oidc-authz.oidc-authz.svc.cluster.local',
        port: Number(values.port ?? config.listen.port),
      });
      process.stdout.write(stringify({ extensionProviders: [{ name: 'oidc-authz', envoyExtAuthzHttp: provider }] }));
      return 0;
    }
    case 'sessions': {
      const [sub, ...args] = rest;
      if (sub !== 'revoke') return usage('sessions takes one subcommand: revoke');
      const { values } = parseArgs({
        args,
        options: { config: { type: 'string', short: 'c' }, user: { type: 'string' }, subject: { type: 'string' }, sid: { type: 'string' }, issuer: { type: 'string' } },
      });
      const given = [values.user, values.subject, values.sid].filter((v) => v !== undefined);
      if (given.length !== 1 || given[0] === '') return usage('sessions revoke needs one of --user, --subject or --sid');
      const config = loadConfigFile(values.config ?? DEFAULT_CONFIG);
      const issuer = values.issuer ?? config.oidc?.issuer ?? '';
      const target: RevokeTarget = values.user !== undefined
        ? { kind: 'user', userId: values.user }
        : values.subject !== undefined ? { kind: 'subject', issuer, subject: values.subject } : { kind: 'idp-session', issuer, sid: values.sid! };
      const ended = await revokeSessions(config, target);
      process.stdout.write(`${ended} session${ended === 1 ? '' : 's'} ended; every replica refuses ${ended === 1 ? 'it' : 'them'} within session.redis.cacheFor (${config.session.redis!.cacheFor / 1000} s)\n`);
      return 0;
    }
    case 'login':
    case 'token':
    case 'logout':
      return runUserCli(command, rest);
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      return usage(`unknown command "${command}"`);
  }
}

/** A JSON object of claims, or null. */
function parseClaims(json: string): Claims | null {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Claims) : null;
  } catch {
    return null;
  }
}

function usage(problem: string): number {
  process.stderr.write(`oidc-authz: ${problem}\n${USAGE}`);
  return 2;
}

const isEntry = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.argv[1]?.endsWith('/oidc-authz')) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof ConfigError) process.stderr.write(`oidc-authz: ${error.message}\n`);
      else process.stderr.write(`oidc-authz: ${error instanceof Error ? error.message : String(error)}\n`);
      // An unknown option or a missing value is a usage error, as `test` promises CI (2, not 1: a failed case).
      const code = (error as { code?: unknown }).code;
      process.exitCode = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_') ? 2 : 1;
    },
  );
}
