/**
 * Real OpenSSH servers on 127.0.0.1 for tests and benchmarks: each an `sshd -D` with its own host key,
 * config and log in its own directory, logging in one user with one key. Stopped by PID.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { freePort } from '../sandbox/ports';
import { stopProcesses } from '../sandbox/processes';
import { writeDockerShim } from '../sandbox/tenants';

export const SSHD = '/usr/sbin/sshd';
export const haveSshd = existsSync(SSHD);

export interface KeyPair {
  /** The private key's file (the public one is beside it, `.pub`). */
  file: string;
  privateKey: string;
  /** "ssh-ed25519 AAAA… comment" */
  publicKey: string;
}

/** An ed25519 key pair made by ssh-keygen, without a passphrase. */
export function makeKeyPair(file: string, comment: string): KeyPair {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  chmodSync(file, 0o600);
  return {
    file,
    privateKey: readFileSync(file, 'utf8'),
    publicKey: readFileSync(`${file}.pub`, 'utf8').trim(),
  };
}

export interface SshdOptions {
  /** Its own directory: host key, config, authorized_keys, pid file, log. */
  dir: string;
  /** The one user it lets in (AllowUsers). */
  user: string;
  /** The one public key it accepts. */
  authorizedKey: string;
  /** The environment of every session (SetEnv). */
  env: Readonly<Record<string, string>>;
  /** More sshd_config lines (e.g. "PermitOpen none"). */
  extraConfig?: readonly string[];
}

/** The config of a throwaway sshd: no PAM, key login only, verbose log (one line per login). */
export function sshdConfig(o: SshdOptions, port: number): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(o.dir, 'host_ed25519')}`,
    `PidFile ${join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(o.dir, 'authorized_keys')}`,
    'UsePAM no',
    'StrictModes no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `AllowUsers ${o.user}`,
    'LogLevel VERBOSE',
    'MaxSessions 30',
    'MaxStartups 100',
    `SetEnv ${Object.entries(o.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    ...(o.extraConfig ?? []),
    '',
  ].join('\n');
}

/** Resolves true once the server on `port` sends its SSH banner (bounded: 100 tries). */
async function answers(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1');
      const t = setTimeout(() => (s.destroy(), r(false)), 200);
      s.once('data', (d) => (clearTimeout(t), s.destroy(), r(d.toString().startsWith('SSH-'))));
      s.once('error', () => (clearTimeout(t), r(false)));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** The processes under `pid` (pgrep -P, recursively). */
export function descendants(pid: number): number[] {
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
}

/** The per-connection monitors and their unprivileged children, which hold the sockets: at once. */
function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface OpenSsh {
  port: number;
  pid: number;
  /** "ssh-ed25519 AAAA…", as a registry pins it. */
  hostKey: string;
  dir: string;
  log: string;
  /** "Accepted publickey" lines in the log: one per SSH handshake that authenticated. */
  handshakes(): number;
  /** Kills the per-connection sshd processes (drops every open connection), keeps the listener. */
  dropConnections(): void;
  /** The server goes down: the listener and every connection are killed (restart() brings it back). */
  kill(): void;
  /** Starts the listener again on the same port, with the same keys and config. */
  restart(): Promise<void>;
  stop(): void;
}

function prepareDir(o: SshdOptions): string {
  mkdirSync(o.dir, { recursive: true });
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const hostKey = makeKeyPair(join(o.dir, 'host_ed25519'), '').publicKey;
  writeFileSync(join(o.dir, 'authorized_keys'), `${o.authorizedKey}\n`);
  // sshd reads it as the user it logs in; StrictModes is off, so world-readable is accepted here.
  chmodSync(join(o.dir, 'authorized_keys'), 0o644);
  chmodSync(o.dir, 0o755);
  return hostKey.split(' ').slice(0, 2).join(' ');
}

function launch(config: string, log: string): number {
  const fd = openSync(log, 'a');
  const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  child.unref();
  return child.pid!;
}

/** Starts an sshd on a free port (a few tries, should another process take the port first). */
export async function startOpenSsh(o: SshdOptions): Promise<OpenSsh> {
  const hostKey = prepareDir(o);
  const log = join(o.dir, 'sshd.log');
  const config = join(o.dir, 'sshd_config');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(config, sshdConfig(o, port));
    let pid = launch(config, log);
    if (await answers(port)) {
      return {
        port,
        pid,
        hostKey,
        dir: o.dir,
        log,
        handshakes: () => (readFileSync(log, 'utf8').match(/Accepted publickey for /g) ?? []).length,
        dropConnections: () => killAll(descendants(pid)),
        kill: () => {
          const children = descendants(pid);
          stopProcesses([pid], 500);
          killAll(children);
        },
        restart: async () => {
          pid = launch(config, log);
          if (!(await answers(port))) throw new Error(`sshd in ${o.dir} did not come back on port ${port}`);
        },
        stop: () => void stopProcesses([pid]),
      };
    }
    stopProcesses([pid], 500);
    if (attempt === 4)
      throw new Error(`sshd in ${o.dir} did not start; its log:\n${readFileSync(log, 'utf8').slice(-2000)}`);
  }
}

/**
 * Puts the SANDBOX container runtime (the docker double) first on a server's PATH as `docker`: the built
 * runtime is copied into `dir/bin` (so that the deploy user can read it wherever the checkout is) and its
 * state kept in `dir/sandbox`. Returns the session environment that does so.
 */
export function sandboxRuntimeEnv(
  dir: string,
  built = resolve('dist/sandbox/runtime.js'),
): Record<string, string> {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const runtime = join(bin, 'sandbox-runtime.js');
  copyFileSync(built, runtime);
  writeDockerShim(bin, runtime);
  return { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, FLEET_SANDBOX_STATE: join(dir, 'sandbox') };
}
