/**
 * One container engine per benchmark server, as real servers have: its own podman API service (its own
 * socket, storage root and run root), so that a layer one server pulled is not in another's store. Each
 * engine reaches the registry through its own link (bench/lib/links.ts): registries.conf names the
 * server's link as a mirror of the registry, so the images keep their one name (REGISTRY/fleet/big:vN)
 * and every byte a server pulls goes through its link.
 *
 * Every service is started here and stopped by its PID at clean-up; its containers are removed through
 * podman's CLI on the same storage, its mounts unmounted and its directory removed.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asDeployUser, DEPLOY_USER } from '../../src/testing';
import { run, tryRun, type Session } from '../lib/session';

export interface ServerEngine {
  dir: string;
  pid: number;
  /** DOCKER_HOST for the server's SSH sessions. */
  dockerHost: string;
  /** The environment of podman's CLI on this engine's storage. */
  env: NodeJS.ProcessEnv;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function configure(dir: string, registry: string, linkPort: number): NodeJS.ProcessEnv {
  for (const d of ['storage', 'run', 'tmp', 'cni', 'logs']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    join(dir, 'containers.conf'),
    `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/logs/events.log"
tmp_dir = "${dir}/tmp"

[network]
network_config_dir = "${dir}/cni"
`,
  );
  writeFileSync(
    join(dir, 'registries.conf'),
    `unqualified-search-registries = []

[[registry]]
location = "${registry}"
insecure = true

[[registry.mirror]]
location = "127.0.0.1:${linkPort}"
insecure = true
`,
  );
  writeFileSync(
    join(dir, 'storage.conf'),
    `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`,
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
  };
  for (const k of ['DOCKER_HOST', 'CONTAINER_HOST', 'CONTAINER_CONNECTION']) delete env[k];
  return env;
}

/** Stops one engine: its containers, its service (by PID), its mounts, its directory. */
function stop(e: ServerEngine): void {
  tryRun('podman', ['rm', '--all', '--force', '--time', '2'], { env: e.env, timeoutMs: 60_000 });
  try {
    process.kill(e.pid, 'SIGTERM');
  } catch {
    // gone already
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(e.pid, 0);
      run('sleep', ['0.1']);
    } catch {
      break;
    }
  }
  try {
    process.kill(e.pid, 'SIGKILL');
  } catch {
    // gone
  }
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${e.dir}/`))
    .sort()
    .reverse();
  for (const m of mounts) tryRun('umount', ['-l', m]);
  rmSync(e.dir, { recursive: true, force: true });
}

/** Starts the engine of one server under `dir` (short: the socket path must fit 108 bytes). */
export async function startEngine(
  dir: string,
  registry: string,
  linkPort: number,
  session: Session,
): Promise<ServerEngine> {
  const env = configure(dir, registry, linkPort);
  const sock = join(dir, 'podman.sock');
  const out = openSync(join(dir, 'logs', 'service.log'), 'a');
  const child = spawn('podman', ['system', 'service', '--time=0', `unix://${sock}`], {
    env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  child.unref();
  const engine: ServerEngine = { dir, pid: child.pid!, dockerHost: `unix://${sock}`, env };
  session.onCleanup(() => stop(engine));
  for (let i = 0; ; i++) {
    const r = tryRun('curl', ['-fsS', '--max-time', '2', '--unix-socket', sock, 'http://d/_ping']);
    if (r.status === 0) break;
    if (i >= 100) throw new Error(`podman service in ${dir} did not answer: see ${dir}/logs/service.log`);
    await sleep(100);
  }
  // The deploy user reaches the engine through a group that owns the socket (like the docker group).
  run('chgrp', [run('id', ['-gn', DEPLOY_USER]).trim(), sock]);
  chmodSync(sock, 0o660);
  chmodSync(dir, 0o755);
  asDeployUser(['docker', 'version', '--format', '{{.Server.Version}}'], {
    cwd: '/',
    env: { DOCKER_HOST: engine.dockerHost },
    timeoutMs: 30_000,
  });
  return engine;
}

/** Pulls `ref` into the engine (podman's CLI on its storage, through its link). */
export function pullInto(e: ServerEngine, ref: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', ['pull', '-q', ref], { env: e.env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`podman pull ${ref} in ${e.dir}: ${err.slice(-500)}`)),
    );
  });
}

/** Removes `ref` from the engine, so the next deploy pulls its new layers again. */
export function dropFrom(e: ServerEngine, ref: string): void {
  tryRun('podman', ['rmi', '-f', ref], { env: e.env, timeoutMs: 60_000 });
}
