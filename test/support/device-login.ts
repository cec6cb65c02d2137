/**
 * The built CLI's `oidc-authz login` (dist/cli.js, `npm run build` first) as a child process, the way a
 * person runs it: it prints the verification URL on stderr and polls the IdP while a browser (headless
 * Chromium in the tests) approves the code. Each login gets its own XDG_CONFIG_HOME, so nothing touches
 * the real ~/.config, and `cli` runs later commands with the same one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli } from './process.js';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningDeviceLogin {
  /** The verification URL the CLI printed (verification_uri_complete when the IdP sent one) and the code. */
  readonly prompt: Promise<{ url: string; userCode: string }>;
  /** The login's exit, with everything it wrote. */
  readonly done: Promise<CliResult>;
  /** When the process was started (Date.now()). */
  readonly startedAt: number;
}

/** A user's machine: its own config directory, where tokens.json lands. */
export class CliUser {
  readonly configHome = mkdtempSync(join(tmpdir(), 'oidc-authz-xdg-'));
  readonly tokenFile = join(this.configHome, 'oidc-authz', 'tokens.json');

  get env(): NodeJS.ProcessEnv {
    return { XDG_CONFIG_HOME: this.configHome };
  }

  /** Starts `oidc-authz login ARGS`; `prompt` resolves once it has printed where to go. */
  login(args: string[]): RunningDeviceLogin {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [CLI, 'login', ...args], { env: { ...process.env, ...this.env } });
    let stdout = '';
    let stderr = '';
    let resolvePrompt!: (value: { url: string; userCode: string }) => void;
    let rejectPrompt!: (error: Error) => void;
    const prompt = new Promise<{ url: string; userCode: string }>((resolve, reject) => {
      resolvePrompt = resolve;
      rejectPrompt = reject;
    });
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const url = /^ {2}(http\S+)$/m.exec(stderr)?.[1];
      const userCode = /the code (\S+?)[.\s]/.exec(stderr)?.[1];
      if (url !== undefined && userCode !== undefined) resolvePrompt({ url, userCode });
    });
    const done = new Promise<CliResult>((resolve) =>
      child.on('exit', (code) => {
        rejectPrompt(new Error(`login exited (${code}) before printing a verification URL:\n${stderr}`));
        resolve({ code, stdout, stderr });
      }),
    );
    return { prompt, done, startedAt };
  }

  /** Runs another CLI command (token, logout) as this user. */
  cli(args: string[]): Promise<CliResult> {
    return runCli(args, this.env);
  }

  /** The stored entries (the test reads the file the CLI wrote). */
  tokens(): Record<string, { refreshToken?: string; idToken?: string; accessToken: string; issuer: string; clientId: string; scope: string }> {
    return (JSON.parse(readFileSync(this.tokenFile, 'utf8')) as { profiles: ReturnType<CliUser['tokens']> }).profiles;
  }
}
