/**
 * The local SANDBOX fleet: N sandbox servers on 127.0.0.1, each a real SSH endpoint (ssh-server.ts) with
 * its own host key and a home holding its tenants' directories, and the sandbox container runtime as
 * `docker`. `up` writes a registry (with the host keys pinned), a known_hosts and a client key, and starts
 * one background process serving every server; `down` stops it and every service it started, by PID.
 * Named a sandbox everywhere; nothing here is ever used for a real target.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigurationError } from '../errors';
import { freePort } from './ports';
import { isRunning, stopProcesses } from './processes';
import { stopServices } from './services';
import { generateKeyPair, startSandboxSsh } from './ssh-server';
import { tenantDefaults, writeDockerShim, writeTenantDir } from './tenants';

export interface SandboxSpec {
  servers: number;
  tenantsPerServer: number;
  /**
   * The health gate written to the registry. By default it tolerates a loaded machine (a sandbox of many
   * servers deploying at high concurrency shares a laptop's few cores); the demo asks for a snappy one.
   */
  health?: { timeout: string; deadline: string };
}

export const SANDBOX_HEALTH = { timeout: '3s', deadline: '30s' };

interface ServerConfig {
  name: string;
  home: string;
  hostKey: string;
  hostPublic: string;
}

interface SandboxConfig {
  authorizedKey: string;
  runtime: string;
  servers: ServerConfig[];
}

export const SANDBOX_REPOSITORY = 'sandbox.local/acme/app';

/** Where the bundle lives: this module's directory in dist/index.js (the runtime is dist/sandbox/runtime.js). */
function distDir(): string {
  const here = typeof __dirname === 'string' ? __dirname : '';
  if (!here || !existsSync(join(here, 'sandbox', 'runtime.js')))
    throw new Error('the sandbox runs from the built bundle: node dist/cli.js sandbox …');
  return here;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sandboxPid(dir: string): number | undefined {
  const file = join(dir, 'sandbox.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8'));
  return Number.isInteger(pid) && isRunning(pid) ? pid : undefined;
}

interface SandboxTenant {
  server: string;
  id: string;
  path: string;
  port: number;
  ring: string;
}

/** The ring of the n-th tenant: the first in the first ring, about a quarter in the second, the rest in the third. */
function ringOf(n: number, spec: SandboxSpec, rings: readonly string[]): string {
  if (n === 0) return rings[0]!;
  return n < 1 + Math.max(1, Math.round((spec.servers * spec.tenantsPerServer) / 4)) ? rings[1]! : rings[2]!;
}

/** Each server's home: `bin/docker` (the sandbox runtime) and its tenants' directories. */
async function makeServers(
  dir: string,
  spec: SandboxSpec,
  rings: readonly string[],
  runtime: string,
): Promise<{ servers: ServerConfig[]; tenants: SandboxTenant[] }> {
  const servers: ServerConfig[] = [];
  const tenants: SandboxTenant[] = [];
  for (let s = 1; s <= spec.servers; s++) {
    const name = `sandbox-${s}`;
    const home = join(dir, 'servers', name);
    writeDockerShim(join(home, 'bin'), runtime);
    const host = generateKeyPair(name);
    servers.push({ name, home, hostKey: host.privateKey, hostPublic: host.publicKey });
    for (let t = 1; t <= spec.tenantsPerServer; t++) {
      const id = `tenant-${s}-${t}`;
      const path = join(home, 'tenants', id);
      const port = await freePort();
      writeTenantDir(path, { title: `sandbox tenant ${id}`, image: `${SANDBOX_REPOSITORY}:v0`, port });
      tenants.push({ server: name, id, path, port, ring: ringOf(tenants.length, spec, rings) });
    }
  }
  return { servers, tenants };
}

/** Starts the one background process that serves every server; returns the ports it listens on. */
async function startServing(dir: string): Promise<Record<string, number>> {
  const portsFile = join(dir, 'ports.json');
  if (existsSync(portsFile)) writeFileSync(portsFile, '');
  const log = openSync(join(dir, 'sandbox.log'), 'a');
  const cli = process.argv[1] && existsSync(process.argv[1]) ? process.argv[1] : join(distDir(), 'cli.js');
  const child = spawn(process.execPath, [cli, 'sandbox', 'serve', '--dir', dir], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
  writeFileSync(join(dir, 'sandbox.pid'), String(child.pid));
  for (let i = 0; i < 200; i++) {
    await sleep(50);
    const text = existsSync(portsFile) ? readFileSync(portsFile, 'utf8') : '';
    if (text) return JSON.parse(text) as Record<string, number>;
    if (!isRunning(child.pid!))
      throw new Error(
        `the sandbox servers did not start: ${readFileSync(join(dir, 'sandbox.log'), 'utf8').slice(-500)}`,
      );
  }
  throw new Error('the sandbox servers did not report their ports within 10 s');
}

const publicLine = (s: ServerConfig) => s.hostPublic.split(' ').slice(0, 2).join(' ');

function registryOf(
  spec: SandboxSpec,
  rings: readonly string[],
  servers: ServerConfig[],
  tenants: SandboxTenant[],
  ports: Record<string, number>,
) {
  return {
    rings,
    defaults: {
      server: { user: process.env.USER || 'sandbox', region: 'local' },
      tenant: {
        ...tenantDefaults(SANDBOX_REPOSITORY, { interval: '250ms', ...(spec.health ?? SANDBOX_HEALTH) }),
        keepReleases: 3,
      },
    },
    servers: servers.map((s) => ({
      name: s.name,
      host: '127.0.0.1',
      port: ports[s.name],
      hostKey: publicLine(s),
      region: Number(s.name.split('-')[1]) % 2 ? 'eu' : 'us',
      tenants: tenants
        .filter((t) => t.server === s.name)
        .map((t) => ({ id: t.id, path: t.path, ring: t.ring, health: { port: t.port } })),
    })),
  };
}

/** Creates the sandbox's files and starts its servers. Returns the registry path. */
export async function sandboxUp(
  dir: string,
  spec: SandboxSpec,
  rings = ['sandbox', 'canary', 'general'],
  /** The command as the person runs it, for the hint (`fleet-deploy` or `npx fleet-deploy`). */
  self = 'fleet-deploy',
): Promise<{ registry: string; keyFile: string; knownHosts: string }> {
  dir = resolve(dir);
  if (sandboxPid(dir))
    throw new ConfigurationError([
      {
        path: [],
        source: '--dir',
        message: `a sandbox is already running in ${dir}`,
        hint: `use it, or stop it first: ${self} sandbox down --dir ${dir}`,
      },
    ]);
  mkdirSync(dir, { recursive: true });
  const client = generateKeyPair('fleet-deploy-sandbox');
  const keyFile = join(dir, 'client_key');
  writeFileSync(keyFile, client.privateKey, { mode: 0o600 });
  const runtime = join(distDir(), 'sandbox', 'runtime.js');
  const { servers, tenants } = await makeServers(dir, spec, rings, runtime);
  const config: SandboxConfig = { authorizedKey: client.publicKey, runtime, servers };
  writeFileSync(join(dir, 'sandbox.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
  const ports = await startServing(dir);
  const registryFile = join(dir, 'registry.json');
  const registry = registryOf(spec, rings, servers, tenants, ports);
  writeFileSync(registryFile, `${JSON.stringify(registry, null, 2)}\n`);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, servers.map((s) => `[127.0.0.1]:${ports[s.name]} ${publicLine(s)}\n`).join(''));
  return { registry: registryFile, keyFile, knownHosts };
}

/** Runs in the background process: serves every sandbox server until SIGTERM. */
export async function sandboxServe(dir: string): Promise<void> {
  const config = JSON.parse(readFileSync(join(dir, 'sandbox.json'), 'utf8')) as SandboxConfig;
  const ports: Record<string, number> = {};
  const closers: Array<() => Promise<void>> = [];
  for (const s of config.servers) {
    const srv = await startSandboxSsh({
      hostKey: s.hostKey,
      authorizedKey: config.authorizedKey,
      port: 0,
      home: s.home,
      env: {
        PATH: `${join(s.home, 'bin')}:/usr/local/bin:/usr/bin:/bin`,
        FLEET_SANDBOX_STATE: join(s.home, '.sandbox-runtime'),
        LANG: 'C.UTF-8',
      },
    });
    ports[s.name] = srv.port;
    closers.push(srv.close);
  }
  writeFileSync(join(dir, 'ports.json'), JSON.stringify(ports));
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  // Close what closes at once; open client connections need no goodbye (the OS closes them on exit), and
  // waiting for them would hold up a demo being torn down.
  await Promise.race([Promise.all(closers.map((c) => c())), sleep(250)]);
  process.exit(0);
}

/**
 * Stops the servers and every service process the sandbox runtime started. Returns what it stopped.
 * Synchronous and bounded (stopProcesses), so an 'exit' handler can run it when the process must quit.
 */
export function sandboxDown(dir: string): { servers: boolean; services: number } {
  dir = resolve(dir);
  const pid = sandboxPid(dir);
  if (pid) stopProcesses([pid]);
  const root = join(dir, 'servers');
  const states = existsSync(root)
    ? readdirSync(root).map((server) => join(root, server, '.sandbox-runtime'))
    : [];
  return { servers: Boolean(pid), services: stopServices(states) };
}

export function sandboxDirDefault(): string {
  return resolve(process.env.FLEET_SANDBOX_DIR ?? '.fleet-sandbox');
}
