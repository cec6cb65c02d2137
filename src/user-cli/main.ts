/**
 * Flag parsing for `oidc-authz login | token | logout` (src/cli.ts hands these commands over), and the one
 * place a UserCliError becomes a message on stderr and its exit code.
 */
import { parseArgs } from 'node:util';
import { parseDurationMs } from '../config/duration.js';
import { DEFAULT_MIN_VALID_MS, EXIT, UserCliError } from './contract.js';
import { login, logout, printToken, type UserCliIo } from './commands.js';
import { realSleep } from './device-flow.js';
import { profileName, resolveSettings } from './settings.js';

export const USER_CLI_COMMANDS = ['login', 'token', 'logout'] as const;

export const USER_CLI_USAGE = `  oidc-authz login [--issuer URL] [--client-id ID] [--scope "S1 S2"] [--audience AUD] [--profile NAME]
                                                   device login (RFC 8628) at the IdP as a public client; tokens
                                                   go to $XDG_CONFIG_HOME/oidc-authz/tokens.json (0600). Settings
                                                   also from OIDC_AUTHZ_ISSUER, OIDC_AUTHZ_CLIENT_ID, OIDC_AUTHZ_SCOPE,
                                                   OIDC_AUTHZ_AUDIENCE, OIDC_AUTHZ_PROFILE or oidc-authz/cli.yaml
  oidc-authz token [--id-token | --access-token] [--min-valid 60s] [--profile NAME]
                                                   print one valid token (ID token by default) on stdout,
                                                   refreshing it first when it expires within --min-valid
  oidc-authz logout [--profile NAME]               forget the stored tokens and revoke the refresh token
`;

export function defaultIo(): UserCliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    now: Date.now,
    sleep: realSleep,
  };
}

/** Runs one user command; every expected failure is a sentence on stderr and its exit code. */
export async function runUserCli(command: (typeof USER_CLI_COMMANDS)[number], args: string[], io: UserCliIo = defaultIo()): Promise<number> {
  try {
    return await dispatch(command, args, io);
  } catch (error) {
    if (error instanceof UserCliError) {
      io.stderr(`oidc-authz ${command}: ${error.message}\n`);
      return error.exitCode;
    }
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      io.stderr(`oidc-authz ${command}: ${(error as Error).message}\n${USER_CLI_USAGE}`);
      return EXIT.usage;
    }
    io.stderr(`oidc-authz ${command}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}

async function dispatch(command: (typeof USER_CLI_COMMANDS)[number], args: string[], io: UserCliIo): Promise<number> {
  switch (command) {
    case 'login': {
      const { values } = parseArgs({
        args,
        options: {
          issuer: { type: 'string' }, 'client-id': { type: 'string' }, scope: { type: 'string' },
          audience: { type: 'string' }, profile: { type: 'string' },
        },
      });
      const settings = resolveSettings({ issuer: values.issuer, clientId: values['client-id'], scope: values.scope, audience: values.audience, profile: values.profile }, io.env);
      return login(settings, io);
    }
    case 'token': {
      const { values } = parseArgs({
        args,
        options: { 'id-token': { type: 'boolean' }, 'access-token': { type: 'boolean' }, 'min-valid': { type: 'string' }, profile: { type: 'string' } },
      });
      if (values['id-token'] && values['access-token']) throw new UserCliError('--id-token or --access-token, not both', EXIT.usage);
      const minValidMs = values['min-valid'] === undefined ? DEFAULT_MIN_VALID_MS : parseDurationMs(values['min-valid']);
      if (minValidMs === undefined) throw new UserCliError(`--min-valid "${values['min-valid']}": use a duration like 60s, 5m or 1h`, EXIT.usage);
      return printToken({ profile: profileName({ profile: values.profile }, io.env), kind: values['access-token'] ? 'access' : 'id', minValidMs }, io);
    }
    case 'logout': {
      const { values } = parseArgs({ args, options: { profile: { type: 'string' } } });
      return logout(profileName({ profile: values.profile }, io.env), io);
    }
  }
}
