/**
 * The real container stack of the end-to-end tests, for one test file: engine-up.sh (podman's Docker API,
 * a registry, images v1/v2/bad) in a temp dir, the deploy user reaching the engine's socket through its
 * group, and one real sshd whose sessions get the real docker/docker-compose. `down()` stops the sshd and
 * runs engine-down.sh --purge, then deletes the temp dir.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEPLOY_USER, ensureDeployUser, handOver, haveSshd } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from '../helpers/sshd';

const E2E_DIR = resolve('__tests__/e2e');

export const e2eSkipReason =
  process.getuid?.() !== 0
    ? 'e2e test needs root (engine-up.sh installs packages and runs podman): skipped'
    : !haveSshd
      ? 'e2e test needs /usr/sbin/sshd (apt-get install openssh-server): skipped'
      : undefined;

/** Runs a command asynchronously (so jest's timers keep working), bounded by `timeoutMs`. */
export function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => (clearTimeout(timer), reject(e)));
    child.once('close', (code) => (clearTimeout(timer), resolveP({ code, stdout, stderr })));
  });
}

/** The `export` lines engine-up.sh wrote, as bash reads them (values are %q-quoted). */
function readEngineEnv(file: string): Record<string, string> {
  const out = execFileSync('bash', ['-c', 'set -a && . "$1" && env -0', 'read-env', file], {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin' },
  });
  const vars: Record<string, string> = {};
  for (const entry of out.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) vars[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return vars;
}

export interface Stack {
  root: string;
  env: Record<string, string>;
  repo: string;
  key: ClientKey;
  sshd: TestSshd;
  /** The engine's view, as root straight through the socket (not through the tool). */
  docker(args: string[]): string;
  /** IDs of a Compose project's running containers. */
  running(project: string): string[];
  /** The registry's entry for the stack's one server (its sshd, host key pinned), without tenants. */
  server(name: string): {
    name: string;
    host: string;
    port: number;
    user: string;
    hostKey: string;
    region: string;
  };
  down(): Promise<void>;
}

export async function stackUp(prefix: string, timeoutMs: number): Promise<Stack> {
  ensureDeployUser();
  const root = tempRoot(prefix);
  chmodSync(root, 0o711); // the deploy user may traverse, not list
  const state = join(root, 'engine');
  mkdirSync(state, { mode: 0o700 });
  let sshd: TestSshd | undefined;
  const down = async () => {
    await sshd?.stop();
    const r = await run('bash', [join(E2E_DIR, 'engine-down.sh'), '--purge', state], 110_000);
    if (r.code !== 0) throw new Error(`engine-down.sh failed (exit ${r.code}):\n${r.stderr}`);
    rmSync(root, { recursive: true, force: true }); // only once the engine is down (no mounts left)
  };
  try {
    const up = await run('bash', [join(E2E_DIR, 'engine-up.sh'), state], timeoutMs);
    if (up.code !== 0) throw new Error(`engine-up.sh failed (exit ${up.code}):\n${up.stderr}`);
    const env = readEngineEnv(join(state, 'env'));
    const group = execFileSync('id', ['-gn', DEPLOY_USER], { encoding: 'utf8' }).trim();
    const sock = join(state, 'podman.sock');
    execFileSync('chgrp', [group, state, sock]);
    chmodSync(state, 0o710);
    chmodSync(sock, 0o660);
    const key = makeClientKey(join(root, 'client'));
    sshd = await startSshd('e2e', root, key, {
      PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin',
      DOCKER_HOST: env.DOCKER_HOST!,
    });
    handOver(sshd.dir); // authorized_keys is read as the deploy user
    const dockerEnv = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: root, DOCKER_HOST: env.DOCKER_HOST };
    const docker = (args: string[]) =>
      execFileSync('docker', args, { env: dockerEnv, encoding: 'utf8', timeout: 30_000 }).trim();
    const running = (project: string) =>
      docker(['ps', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`])
        .split('\n')
        .filter(Boolean);
    const server = (name: string) => ({
      name,
      host: '127.0.0.1',
      port: sshd!.port,
      user: sshd!.user,
      hostKey: sshd!.hostKey,
      region: 'local',
    });
    return {
      root,
      env,
      repo: `${env.FLEET_E2E_REGISTRY}/fleet/app`,
      key,
      sshd,
      docker,
      running,
      server,
      down,
    };
  } catch (e) {
    await down().catch(() => undefined);
    throw e;
  }
}
