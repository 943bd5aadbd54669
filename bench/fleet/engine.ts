/**
 * The container engine the fleet's servers share: the real podman stack of the end-to-end tests
 * (__tests__/e2e/engine-up.sh: podman's Docker API, a registry, images fleet/app:v1,v2,bad; docker-compose
 * 1.29 as the compose command), or the SANDBOX runtime double (dist/sandbox/runtime.js as `docker`).
 */
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { asDeployUser, DEPLOY_USER } from '../../src/testing';
import { run, tryRun, type Session } from '../lib/session';

export interface Engine {
  kind: 'podman' | 'sandbox';
  /** The image repository (no tag). */
  repo: string;
  compose: 'docker-compose' | 'docker compose';
  /** What every SSH session needs to reach the engine (podman: DOCKER_HOST). */
  sessionEnv: Record<string, string>;
  /** CPU seconds of the engine's daemons so far (podman API service, registry, their reaped children). */
  cpuS(): number | undefined;
  /** Removes an image, so that the next run pulls it from the registry (podman only). */
  dropImage(version: string): void;
}

const log = (msg: string) => process.stderr.write(`bench:fleet: ${msg}\n`);

function daemonCpuS(dir: string): number {
  let sum = 0;
  for (const f of ['podman.pid', 'registry.pid']) {
    try {
      const pid = readFileSync(join(dir, f), 'utf8').trim();
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8')
        .replace(/^.*\) /, '')
        .split(' ')
        .map(Number);
      // after "(comm) ": state=0 … utime=11 stime=12 cutime=13 cstime=14
      sum += (st[11]! + st[12]! + st[13]! + st[14]!) / 100;
    } catch {
      // not running
    }
  }
  return sum;
}

function podmanUp(session: Session, repoDir: string, dir: string, root: string): Engine {
  log('bringing up the podman stack (engine-up.sh)');
  const r = tryRun('bash', [join(repoDir, '__tests__/e2e/engine-up.sh'), dir], { timeoutMs: 900_000 });
  // Whatever happened, engine-down is the way back.
  session.onCleanup(() => {
    log('engine-down.sh --purge');
    const d = tryRun('bash', [join(repoDir, '__tests__/e2e/engine-down.sh'), '--purge', dir], {
      timeoutMs: 180_000,
    });
    if (d.status !== 0) log(`engine-down failed: ${(d.stderr || '').trim().slice(-500)}`);
  });
  if (r.status !== 0)
    throw new Error(`engine-up.sh failed: ${(r.stderr || r.error?.message || '').trim().slice(-1500)}`);
  const vars: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) vars[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
  }
  const dockerHost = vars.DOCKER_HOST!;
  const sock = dockerHost.replace(/^unix:\/\//, '');
  // The deploy user reaches the engine through a group that owns the socket (like the docker group).
  run('chgrp', [run('id', ['-gn', DEPLOY_USER]).trim(), sock]);
  chmodSync(sock, 0o660);
  for (let d = dirname(sock); d.startsWith(root); d = dirname(d)) chmodSync(d, 0o755);
  asDeployUser(['docker', 'version', '--format', '{{.Server.Version}}'], {
    cwd: '/',
    env: { DOCKER_HOST: dockerHost },
    timeoutMs: 30_000,
  });
  const repo = `${vars.FLEET_E2E_REGISTRY}/fleet/app`;
  return {
    kind: 'podman',
    repo,
    compose: 'docker-compose',
    sessionEnv: { DOCKER_HOST: dockerHost },
    cpuS: () => daemonCpuS(dir),
    dropImage: (version) =>
      void tryRun('docker', ['image', 'rm', `${repo}:${version}`], {
        env: { ...process.env, DOCKER_HOST: dockerHost },
      }),
  };
}

const SANDBOX: Engine = {
  kind: 'sandbox',
  repo: 'registry.test/acme/app',
  compose: 'docker compose',
  sessionEnv: {},
  cpuS: () => undefined,
  dropImage: () => undefined,
};

/** The engine asked for; with "auto", podman when it works here, else the sandbox runtime. */
export function engineUp(
  wanted: 'auto' | 'podman' | 'sandbox',
  session: Session,
  repoDir: string,
  root: string,
): Engine {
  if (wanted === 'sandbox') return SANDBOX;
  try {
    return podmanUp(session, repoDir, join(root, 'engine'), root);
  } catch (e) {
    if (wanted === 'podman') throw e;
    log(`podman does not work here (${(e as Error).message.split('\n')[0]}); using the sandbox runtime`);
    return SANDBOX;
  }
}
