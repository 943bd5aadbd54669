/**
 * A fleet of real sshd servers on 127.0.0.1 with tenants whose stacks run on the SANDBOX runtime (the
 * docker double), and the registry that describes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseRegistry, type Registry } from '../../src/registry';
import { asDeployUser, freePort, handOver, tenantDefaults, writeTenantDir } from '../../src/testing';
import { makeClientKey, startSshd, tempRoot, type ClientKey, type TestSshd } from './sshd';

export const REPO = 'registry.test/acme/app';

export interface TestTenant {
  server: string;
  id: string;
  dir: string;
  port: number;
}

export interface TestFleet {
  root: string;
  key: ClientKey;
  sshds: Map<string, TestSshd>;
  tenants: TestTenant[];
  registryText: string;
  registry: Registry;
  env(t: TestTenant): string;
  health(t: TestTenant): Promise<string>;
  stop(): Promise<void>;
}

export interface FleetSpec {
  servers: number;
  tenantsPerServer: number;
  health?: Record<string, unknown>;
  /** Edits the registry object before it is written (e.g. break a host key). */
  edit?: (registry: any) => void;
  /** Run v1 on every tenant before the test (through the runtime, as an operator would). */
  startWith?: string;
  /** More sshd_config lines for every server. */
  sshdConfig?: string[];
}

export async function startFleet(spec: FleetSpec): Promise<TestFleet> {
  const root = tempRoot('fd-it-');
  const key = makeClientKey(root);
  const sshds = new Map<string, TestSshd>();
  const tenants: TestTenant[] = [];
  const servers: any[] = [];
  try {
    for (let s = 1; s <= spec.servers; s++) {
      const name = `srv-${s}`;
      const sshd = await startSshd(name, root, key, {}, spec.sshdConfig);
      sshds.set(name, sshd);
      const list: any[] = [];
      for (let i = 1; i <= spec.tenantsPerServer; i++) {
        const id = `t${s}-${i}`;
        const dir = join(root, 'srv', name, id);
        const port = await freePort();
        writeTenantDir(dir, {
          title: `tenant ${id}`,
          image: `${REPO}:${spec.startWith ?? 'v1'}`,
          port,
          env: { SECRET_TOKEN: 'keep-me' },
        });
        tenants.push({ server: name, id, dir, port });
        list.push({ id, path: dir, health: { port } });
      }
      servers.push({
        name,
        host: '127.0.0.1',
        port: sshd.port,
        user: sshd.user,
        hostKey: sshd.hostKey,
        region: s % 2 ? 'eu' : 'us',
        tenants: list,
      });
    }
    const registry: any = {
      defaults: {
        tenant: tenantDefaults(REPO, { interval: '150ms', timeout: '1s', deadline: '4s', ...spec.health }),
      },
      servers,
    };
    spec.edit?.(registry);
    handOver(root);
    const registryText = JSON.stringify(registry, null, 2);
    writeFileSync(join(root, 'registry.json'), registryText);
    const fleet: TestFleet = {
      root,
      key,
      sshds,
      tenants,
      registryText,
      registry: parseRegistry(registryText, join(root, 'registry.json')),
      env: (t) => readFileSync(join(t.dir, '.env'), 'utf8'),
      health: async (t) => {
        const r = await fetch(`http://127.0.0.1:${t.port}/health`).catch(() => undefined);
        return r ? `${r.status} ${await r.text()}` : 'down';
      },
      stop: async () => {
        await Promise.all([...sshds.values()].map((s) => s.stop()));
        rmSync(root, { recursive: true, force: true }); // it holds the client's private key
      },
    };
    if (spec.startWith) {
      for (const t of tenants) {
        asDeployUser([process.execPath, resolve('dist/sandbox/runtime.js'), 'compose', 'up', '-d'], {
          cwd: t.dir,
          env: { FLEET_SANDBOX_STATE: join(sshds.get(t.server)!.dir, 'sandbox') },
        });
      }
    }
    return fleet;
  } catch (e) {
    await Promise.all([...sshds.values()].map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

export const lockExists = (t: TestTenant) => existsSync(join(t.dir, '.fleet', 'lock'));
export const historyOf = (t: TestTenant) =>
  existsSync(join(t.dir, '.fleet', 'history.jsonl'))
    ? readFileSync(join(t.dir, '.fleet', 'history.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
    : [];

/** The bundled CLI against a test fleet's registry and a key file, as an operator named "op" runs it. */
export function fleetCli(fleet: TestFleet, keyFile: string) {
  return (...args: string[]) =>
    spawnSync(
      process.execPath,
      ['dist/cli.js', ...args, '-r', join(fleet.root, 'registry.json'), '--key', keyFile],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', USER: 'op' }, timeout: 60_000 },
    );
}
