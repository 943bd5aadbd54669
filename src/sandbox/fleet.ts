/**
 * The local SANDBOX fleet: N sandbox servers on 127.0.0.1, each a real SSH endpoint (ssh-server.ts) with
 * its own host key and a home holding its tenants' directories, and the sandbox container runtime as
 * `docker`. `up` writes a registry (with the host keys pinned), a known_hosts and a client key, and starts
 * one background process serving every server; `down` stops it and every service it started, by PID.
 * Named a sandbox everywhere; nothing here is ever used for a real target.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { generateKeyPair, startSandboxSsh } from './ssh-server';

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

/** A port the kernel picks (from its ephemeral range) that is free on 127.0.0.1 now. */
function kernelPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const s = createServer();
    s.once('error', () => answer(false));
    s.listen(port, '127.0.0.1', () => s.close(() => answer(true)));
  });
}

/**
 * Where service ports come from: outside the kernel's ephemeral range (which outgoing connections — SSH
 * sessions, health probes — draw their local ports from), so that no connection made between choosing a
 * port and starting the service can be holding it. Linux only; elsewhere the kernel picks.
 */
function serviceWindow(): { from: number; to: number } | undefined {
  let lo: number, hi: number;
  try {
    [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number) as [number, number];
  } catch {
    return undefined;
  }
  if (lo - 1 - 10_000 >= 4_096) return { from: 10_000, to: lo - 1 };
  if (65_535 - hi >= 4_096) return { from: hi + 1, to: 65_535 };
  return undefined;
}

let cursor: number | undefined;

/**
 * A port free on 127.0.0.1 now, for a sandbox or test service that starts later: taken in turn from a
 * random point of the service window (free ones only), so one process never hands out a port twice and
 * two processes rarely meet.
 */
export async function freePort(): Promise<number> {
  const w = serviceWindow();
  if (w) {
    const size = w.to - w.from + 1;
    cursor ??= Math.floor(Math.random() * size);
    for (let tries = 0; tries < 256; tries++) {
      const port = w.from + (cursor++ % size);
      if (await canListen(port)) return port;
    }
  }
  return kernelPort();
}

/** Running: exists and is not a zombie waiting to be reaped (an exited process is not running). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

async function stopProcess(pid: number): Promise<void> {
  if (!running(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 60 && running(pid); i++) await sleep(50);
  if (running(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 20 && running(pid); i++) await sleep(50);
}

export function sandboxPid(dir: string): number | undefined {
  const file = join(dir, 'sandbox.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8'));
  return Number.isInteger(pid) && running(pid) ? pid : undefined;
}

/** Creates the sandbox's files and starts its servers. Returns the registry path. */
export async function sandboxUp(
  dir: string,
  spec: SandboxSpec,
  rings = ['sandbox', 'canary', 'general'],
): Promise<{ registry: string; keyFile: string; knownHosts: string }> {
  dir = resolve(dir);
  if (sandboxPid(dir))
    throw new Error(`a sandbox is already running in ${dir} (fleet-deploy sandbox down --dir ${dir})`);
  mkdirSync(dir, { recursive: true });
  const client = generateKeyPair('fleet-deploy-sandbox');
  const keyFile = join(dir, 'client_key');
  writeFileSync(keyFile, client.privateKey, { mode: 0o600 });
  const runtime = join(distDir(), 'sandbox', 'runtime.js');
  const servers: ServerConfig[] = [];
  const tenants: Array<{ server: string; id: string; path: string; port: number; ring: string }> = [];
  let n = 0;
  for (let s = 1; s <= spec.servers; s++) {
    const name = `sandbox-${s}`;
    const home = join(dir, 'servers', name);
    mkdirSync(join(home, 'bin'), { recursive: true });
    writeFileSync(
      join(home, 'bin', 'docker'),
      `#!/bin/sh\n# the SANDBOX container runtime, standing in for docker on this sandbox server\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(runtime)} "$@"\n`,
    );
    chmodSync(join(home, 'bin', 'docker'), 0o755);
    const host = generateKeyPair(name);
    servers.push({ name, home, hostKey: host.privateKey, hostPublic: host.publicKey });
    for (let t = 1; t <= spec.tenantsPerServer; t++, n++) {
      const id = `tenant-${s}-${t}`;
      const path = join(home, 'tenants', id);
      mkdirSync(path, { recursive: true });
      const appPort = await freePort();
      writeFileSync(
        join(path, 'docker-compose.yml'),
        'services:\n  app:\n    image: ${APP_IMAGE}\n    network_mode: host\n    environment:\n      APP_PORT: ${APP_PORT}\n',
      );
      writeFileSync(
        join(path, '.env'),
        `# sandbox tenant ${id}\nAPP_IMAGE=${SANDBOX_REPOSITORY}:v0\nAPP_PORT=${appPort}\n`,
      );
      const ring =
        n === 0
          ? rings[0]!
          : n < 1 + Math.max(1, Math.round((spec.servers * spec.tenantsPerServer) / 4))
            ? rings[1]!
            : rings[2]!;
      tenants.push({ server: name, id, path, port: appPort, ring });
    }
  }
  const config: SandboxConfig = { authorizedKey: client.publicKey, runtime, servers };
  writeFileSync(join(dir, 'sandbox.json'), JSON.stringify(config, null, 2), { mode: 0o600 });

  // One background process serves every server; it reports the ports it listens on.
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
  let ports: Record<string, number> | undefined;
  for (let i = 0; i < 200 && !ports; i++) {
    await sleep(50);
    const text = existsSync(portsFile) ? readFileSync(portsFile, 'utf8') : '';
    if (text) ports = JSON.parse(text) as Record<string, number>;
    if (!running(child.pid!))
      throw new Error(
        `the sandbox servers did not start: ${readFileSync(join(dir, 'sandbox.log'), 'utf8').slice(-500)}`,
      );
  }
  if (!ports) throw new Error('the sandbox servers did not report their ports within 10 s');

  const registry = {
    rings,
    defaults: {
      server: { user: process.env.USER || 'sandbox', region: 'local' },
      tenant: {
        images: [{ variable: 'APP_IMAGE', repository: SANDBOX_REPOSITORY }],
        health: {
          path: '/health',
          json: { status: 'ok', version: '{version}' },
          interval: '250ms',
          ...(spec.health ?? SANDBOX_HEALTH),
          successes: 2,
        },
        minFreeDiskMb: 1,
        keepReleases: 3,
      },
    },
    servers: servers.map((s) => ({
      name: s.name,
      host: '127.0.0.1',
      port: ports![s.name],
      hostKey: s.hostPublic.split(' ').slice(0, 2).join(' '),
      region: Number(s.name.split('-')[1]) % 2 ? 'eu' : 'us',
      tenants: tenants
        .filter((t) => t.server === s.name)
        .map((t) => ({ id: t.id, path: t.path, ring: t.ring, health: { port: t.port } })),
    })),
  };
  const registryFile = join(dir, 'registry.json');
  writeFileSync(registryFile, `${JSON.stringify(registry, null, 2)}\n`);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(
    knownHosts,
    servers
      .map((s) => `[127.0.0.1]:${ports![s.name]} ${s.hostPublic.split(' ').slice(0, 2).join(' ')}\n`)
      .join(''),
  );
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
  await Promise.race([Promise.all(closers.map((c) => c())), sleep(2000)]);
  process.exit(0);
}

/** Stops the servers and every service process the sandbox runtime started. Returns what it stopped. */
export async function sandboxDown(dir: string): Promise<{ servers: boolean; services: number }> {
  dir = resolve(dir);
  const pid = sandboxPid(dir);
  if (pid) await stopProcess(pid);
  const stops: Array<Promise<void>> = [];
  const root = join(dir, 'servers');
  if (existsSync(root)) {
    for (const server of readdirSync(root)) {
      const projects = join(root, server, '.sandbox-runtime', 'projects');
      if (!existsSync(projects)) continue;
      for (const f of readdirSync(projects)) {
        try {
          const { pid: svc } = JSON.parse(readFileSync(join(projects, f), 'utf8')) as { pid: number };
          if (running(svc)) stops.push(stopProcess(svc));
        } catch {
          // gone
        }
      }
    }
  }
  await Promise.all(stops);
  return { servers: Boolean(pid), services: stops.length };
}

export function sandboxDirDefault(): string {
  return resolve(process.env.FLEET_SANDBOX_DIR ?? '.fleet-sandbox');
}
