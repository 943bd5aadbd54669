/**
 * Real OpenSSH servers for integration tests: each an `sshd -D` on 127.0.0.1 with its own host key,
 * run as the current user (so no account is created), and the SANDBOX container runtime (the docker
 * double, dist/sandbox/runtime.js) first on the PATH of every session. Every process started is
 * stopped by PID in `stop()`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../../src/sandbox/fleet';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';

export const SSHD = '/usr/sbin/sshd';
export const haveSshd = existsSync(SSHD);

/**
 * The account the test servers log in as. As root, a dedicated user `fleetdeploy` (created once, like a
 * server's deploy user, with Debian's default dotfiles), so the tests do not depend on root's shell
 * start-up files; otherwise the current user.
 */
export const DEPLOY_USER = process.getuid?.() === 0 ? 'fleetdeploy' : userInfo().username;

export function ensureDeployUser(): void {
  if (process.getuid?.() !== 0) return;
  try {
    execFileSync('id', [DEPLOY_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/bash', DEPLOY_USER]);
    execFileSync('usermod', ['-p', '*', DEPLOY_USER]); // unlocked for key login, no password
  }
}

/** Gives the deploy user a directory tree the tests made (as root). */
export function handOver(path: string): void {
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${DEPLOY_USER}:`, path]);
}

/** Runs a command as the deploy user. */
export function asDeployUser(argv: string[], options: { cwd: string; env: Record<string, string> }): void {
  const [cmd, ...args] =
    process.getuid?.() === 0
      ? [
          'runuser',
          '-u',
          DEPLOY_USER,
          '--',
          'env',
          ...Object.entries(options.env).map(([k, v]) => `${k}=${v}`),
          ...argv,
        ]
      : argv;
  execFileSync(cmd!, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: 'ignore' });
}

export interface ClientKey {
  privateKey: string;
  publicKey: string;
}

export function makeClientKey(dir: string): ClientKey {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'client_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'fleet-deploy-test', '-f', file]);
  return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

export { freePort };

/** Resolves once the server sends its SSH banner (bounded: 100 tries, 10 s). */
async function waitForBanner(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      const t = setTimeout(() => (s.destroy(), r(false)), 100);
      s.once('data', (d) => (clearTimeout(t), s.destroy(), r(d.toString().startsWith('SSH-'))));
      s.once('error', () => (clearTimeout(t), r(false)));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd on port ${port} did not answer within 10 s`);
}

export interface TestSshd {
  name: string;
  port: number;
  user: string;
  hostKey: string;
  dir: string;
  log: string;
  process: ChildProcess;
  /** "Accepted publickey" lines in the log: one per SSH handshake that authenticated. */
  handshakes(): number;
  /** Kills the per-connection sshd processes (drops every open connection), keeps the listener. */
  dropConnections(): void;
  stop(): Promise<void>;
}

export async function startSshd(
  name: string,
  root: string,
  key: ClientKey,
  env: Record<string, string> = {},
  /** More sshd_config lines (e.g. "PermitOpen none"). */
  extraConfig: string[] = [],
): Promise<TestSshd> {
  ensureDeployUser();
  const dir = join(root, `sshd-${name}`);
  mkdirSync(dir, { recursive: true });
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const hostKeyFile = join(dir, 'host_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', hostKeyFile]);
  writeFileSync(join(dir, 'authorized_keys'), `${key.publicKey}\n`);
  // sshd reads it as the user it logs in; StrictModes is off, so world-readable is accepted here.
  chmodSync(join(dir, 'authorized_keys'), 0o644);
  chmodSync(dir, 0o755);
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const runtime = join(bin, 'sandbox-runtime.js');
  copyFileSync(resolve('dist/sandbox/runtime.js'), runtime);
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/sh\n# SANDBOX container runtime (test double of the docker CLI)\nexec ${process.execPath} ${runtime} "$@"\n`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  const allEnv = {
    PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`,
    FLEET_SANDBOX_STATE: join(dir, 'sandbox'),
    ...env,
  };
  const log = join(dir, 'sshd.log');
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'sshd_config');
    writeFileSync(
      config,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyFile}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'UsePAM no',
        'StrictModes no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        `AllowUsers ${DEPLOY_USER}`,
        'LogLevel VERBOSE',
        'MaxSessions 30',
        'MaxStartups 100',
        `SetEnv ${Object.entries(allEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
        ...extraConfig,
        '',
      ].join('\n'),
    );
    const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let logText = '';
    child.stderr!.on('data', (d: Buffer) => {
      logText += d.toString();
      writeFileSync(log, logText);
    });
    try {
      await waitForBanner(port);
    } catch (e) {
      child.kill('SIGKILL');
      if (attempt < 3) continue;
      throw new Error(`${(e as Error).message}\n${logText}`, { cause: e });
    }
    const hostKey = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    return {
      name,
      port,
      user: DEPLOY_USER,
      hostKey,
      dir,
      log,
      process: child,
      handshakes: () => (logText.match(/Accepted publickey for /g) ?? []).length,
      dropConnections: () => {
        // Every process under the listener: the per-connection monitor and its unprivileged child,
        // which holds the socket. The listener itself stays up, so a new connection can be made.
        const descendants = (pid: number): number[] => {
          let kids: number[];
          try {
            kids = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
              .split('\n')
              .filter(Boolean)
              .map(Number);
          } catch {
            kids = [];
          }
          return kids.flatMap((k) => [k, ...descendants(k)]);
        };
        for (const pid of descendants(child.pid!)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      },
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
          clearTimeout(timer);
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
        stopSandboxServices(join(dir, 'sandbox'));
      },
    };
  }
}

/** Stops the service processes the sandbox runtime started (their PIDs are in its state). */
export function stopSandboxServices(stateDir: string): void {
  const projects = join(stateDir, 'projects');
  if (!existsSync(projects)) return;
  for (const f of readdirSync(projects)) {
    try {
      const { pid } = JSON.parse(readFileSync(join(projects, f), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

export function tempRoot(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
