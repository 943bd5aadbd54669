/**
 * The fleet under test: S real OpenSSH servers on 127.0.0.1 (the fleet fixture's), T tenants each, a
 * known_hosts and a registry that pins the same host keys.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRegistry, targetsOf, type Target } from '../../src/registry';
import {
  DEPLOY_USER,
  freePort,
  handOver,
  makeKeyPair,
  sandboxRuntimeEnv,
  startOpenSsh,
  stopServices,
  writeTenantDir,
  type OpenSsh,
} from '../../src/testing';
import { run, type Session } from '../lib/session';
import type { Engine } from './engine';
import type { Knobs } from './knobs';

/** The health gate of every tenant (ours reads it from the registry; the floor and Ansible poll the same). */
export const HEALTH = { intervalS: 0.5, timeoutS: 2, deadlineS: 60, successes: 2 };

export interface Server extends OpenSsh {
  name: string;
  /** Where TRACE wrappers log each docker / docker-compose call (BENCH_TRACE=1). */
  traceLog?: string;
}

export interface BenchTarget {
  server: Server;
  id: string;
  dir: string;
  project: string;
  appPort: number;
  /** The registry's view of it (for the command builders). */
  target: Target;
}

export interface Fleet {
  servers: Server[];
  targets: BenchTarget[];
  key: string;
  knownHosts: string;
  registryFile: string;
}

const SYSTEM_PATH = '/usr/local/bin:/usr/bin:/bin';

/** Diagnostics: every docker / docker-compose call on this server timed into trace.log (wrappers first on PATH). */
function traceEnv(dir: string, env: Record<string, string>): Record<string, string> {
  const bin = join(dir, 'trace-bin');
  mkdirSync(bin);
  for (const tool of ['docker', 'docker-compose']) {
    const real = run('sh', ['-c', `PATH=${env.PATH}; command -v ${tool} || true`]).trim();
    if (!real) continue;
    writeFileSync(
      join(bin, tool),
      `#!/bin/sh\nexec /usr/bin/time -a -o "$FLEET_TRACE_LOG" -f '%e %U %S %C' ${real} "$@"\n`,
    );
    chmodSync(join(bin, tool), 0o755);
  }
  const traceLog = join(dir, 'trace.log');
  writeFileSync(traceLog, '');
  handOver(traceLog);
  return { ...env, PATH: `${bin}:${env.PATH}`, FLEET_TRACE_LOG: traceLog };
}

/** The session environment of one server: the engine's, or the sandbox runtime first on PATH. */
function sessionEnv(dir: string, engine: Engine): Record<string, string> {
  if (engine.kind === 'podman') return { ...engine.sessionEnv, PATH: SYSTEM_PATH };
  const env = sandboxRuntimeEnv(dir);
  mkdirSync(env.FLEET_SANDBOX_STATE!);
  handOver(env.FLEET_SANDBOX_STATE!);
  return env;
}

async function startServer(
  name: string,
  root: string,
  publicKey: string,
  engine: Engine,
  trace: boolean,
  session: Session,
): Promise<Server> {
  const dir = join(root, 'srv', name);
  mkdirSync(dir, { recursive: true });
  chmodSync(join(root, 'srv'), 0o755);
  let env = sessionEnv(dir, engine);
  if (trace) env = traceEnv(dir, env);
  const sshd = await startOpenSsh({ dir, user: DEPLOY_USER, authorizedKey: publicKey, env });
  session.onCleanup(() => sshd.stop());
  if (engine.kind === 'sandbox') session.onCleanup(() => stopServices([env.FLEET_SANDBOX_STATE!], 2000));
  return { ...sshd, name, traceLog: env.FLEET_TRACE_LOG };
}

function registryOf(servers: Server[], tenants: Omit<BenchTarget, 'target'>[], engine: Engine) {
  return {
    defaults: {
      tenant: {
        compose: { file: 'docker-compose.yml', command: engine.compose, project: 'app-{tenant}' },
        images: [{ variable: 'APP_IMAGE', repository: engine.repo }],
        health: {
          path: '/health',
          json: { version: '{version}' },
          interval: `${HEALTH.intervalS * 1000}ms`,
          timeout: `${HEALTH.timeoutS}s`,
          deadline: `${HEALTH.deadlineS}s`,
          successes: HEALTH.successes,
        },
        minFreeDiskMb: 1,
      },
    },
    servers: servers.map((s, k) => ({
      name: s.name,
      host: '127.0.0.1',
      port: s.port,
      user: DEPLOY_USER,
      hostKey: s.hostKey,
      region: k % 2 ? 'us' : 'eu',
      tenants: tenants
        .filter((t) => t.server === s)
        .map((t) => ({ id: t.id, path: t.dir, health: { port: t.appPort } })),
    })),
  };
}

/** Starts the servers, lays out their tenants on v1, writes known_hosts and the registry. */
export async function startFleet(
  root: string,
  knobs: Pick<Knobs, 'servers' | 'tenants' | 'trace'> & {
    tenantsOf?: (server: number) => number;
    /** The engine of server `s` (1-based) when each has its own (bench:rollout); else `engine` for all. */
    engineOf?: (server: number) => Engine;
  },
  engine: Engine,
  session: Session,
): Promise<Fleet> {
  const key = makeKeyPair(join(root, 'id_ed25519'), 'fleet-deploy-bench');
  const servers: Server[] = [];
  const tenants: Omit<BenchTarget, 'target'>[] = [];
  for (let s = 1; s <= knobs.servers; s++) {
    const own = knobs.engineOf?.(s) ?? engine;
    const server = await startServer(`srv-${s}`, root, key.publicKey, own, knobs.trace, session);
    servers.push(server);
    for (let i = 1; i <= (knobs.tenantsOf?.(s) ?? knobs.tenants); i++) {
      const id = `t${s}-${i}`;
      const dir = join(server.dir, 'tenants', id);
      const appPort = await freePort();
      const env = { SECRET_TOKEN: 'keep-me' };
      writeTenantDir(dir, { title: `tenant ${id}`, image: `${engine.repo}:v1`, port: appPort, env });
      tenants.push({ server, id, dir, project: `app-${id}`, appPort });
    }
    handOver(join(server.dir, 'tenants'));
  }
  const knownHosts = join(root, 'known_hosts');
  writeFileSync(knownHosts, servers.map((s) => `[127.0.0.1]:${s.port} ${s.hostKey}\n`).join(''));
  const registryFile = join(root, 'registry.json');
  const text = JSON.stringify(registryOf(servers, tenants, engine), null, 2);
  writeFileSync(registryFile, text);
  const byId = new Map(targetsOf(parseRegistry(text, registryFile)).map((t) => [t.id, t]));
  const targets = tenants.map((t) => ({ ...t, target: byId.get(`${t.server.name}/${t.id}`)! }));
  return { servers, targets, key: key.file, knownHosts, registryFile };
}

/** "Accepted publickey" lines in a server's log so far. */
export const acceptedCount = (s: Server) => (existsSync(s.log) ? s.handshakes() : 0);

/** The .env of a target now. */
export const envOf = (t: BenchTarget) => readFileSync(join(t.dir, '.env'), 'utf8');
