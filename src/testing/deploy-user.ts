/**
 * The account local OpenSSH servers (tests, benchmarks) log in as. As root, a dedicated user `fleetdeploy`
 * (created once, like a server's deploy user, with Debian's default dotfiles), so nothing depends on
 * root's shell start-up files; otherwise the current user.
 */
import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';

const isRoot = process.getuid?.() === 0;

export const DEPLOY_USER = isRoot ? 'fleetdeploy' : userInfo().username;

export function ensureDeployUser(): void {
  if (!isRoot) return;
  try {
    execFileSync('id', [DEPLOY_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', DEPLOY_USER]);
    execFileSync('usermod', ['-p', '*', DEPLOY_USER]); // unlocked for key login, no password
  }
}

/** Gives the deploy user a directory tree made as root. */
export function handOver(path: string): void {
  if (isRoot) execFileSync('chown', ['-R', `${DEPLOY_USER}:`, path]);
}

/** Runs a command as the deploy user, with these variables added; returns its stdout, throws on failure. */
export function asDeployUser(
  argv: readonly string[],
  o: { cwd: string; env?: Readonly<Record<string, string>>; timeoutMs?: number },
): string {
  const env = o.env ?? {};
  const [cmd, ...args] = isRoot
    ? [
        'runuser',
        '-u',
        DEPLOY_USER,
        '--',
        'env',
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...argv,
      ]
    : argv;
  return execFileSync(cmd!, args, {
    cwd: o.cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: o.timeoutMs ?? 60_000,
  });
}
