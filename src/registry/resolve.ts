/**
 * From the validated file to the Registry model: applies defaults (defaults.* → server.tenantDefaults →
 * tenant), substitutes {placeholders}, requires what no layer supplied, and checks what one field alone
 * cannot: duplicate names, and two tenants of one server sharing a directory, a health port or a project.
 * Every problem names the JSON path where the offending value was written (which may be in defaults).
 */
import { formatPath, show, type Problem } from '../errors';
import { parseHostKey, type PinnedHostKey } from './hostkey';
import type { BlueGreen, HealthCheck, Hook, Proxy, Registry, Server, Tenant } from './model';
import * as P from './patterns';
import {
  DEFAULT_RINGS,
  type RawServer,
  type RawTenant,
  type RawTenantFields,
  type RegistryFile,
} from './schema';

/**
 * A registry file in which entries that failed the schema are `undefined`, so the checks across entries
 * still run on the valid ones and every problem is reported at once, at its original index.
 */
export type SalvagedFile = Omit<RegistryFile, 'servers'> & {
  servers: Array<(Omit<RawServer, 'tenants'> & { tenants: Array<RawTenant | undefined> }) | undefined>;
};

type Path = Array<string | number>;
type RawHook = NonNullable<NonNullable<RawTenantFields['hooks']>['preDeploy']>[number];

interface Layer {
  at: Path;
  data: Record<string, unknown> | undefined;
}

interface Picked<T> {
  value: T;
  at: Path;
}

/** The value at `keys` from the most specific layer that sets it, and where it was written. */
function pick<T>(layers: readonly Layer[], ...keys: string[]): Picked<T> | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    let v: unknown = layers[i]!.data;
    for (const k of keys) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
    if (v !== undefined) return { value: v as T, at: [...layers[i]!.at, ...keys] };
  }
  return undefined;
}

function list<T>(value: T | readonly T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? [...value] : [value as T];
}

function hostKeys(value: string | string[] | undefined): PinnedHostKey[] {
  return list(value).map((k) => parseHostKey(k) as PinnedHostKey); // the schema has rejected bad keys
}

export function resolveRegistry(
  file: SalvagedFile,
  source: string,
): { registry: Registry; problems: Problem[] } {
  const problems: Problem[] = [];
  const problem = (path: Path, message: string, hint?: string) => problems.push({ path, message, hint });

  const rings = file.rings ?? [...DEFAULT_RINGS];
  rings.forEach((r, i) => {
    if (rings.indexOf(r) !== i) problem(['rings', i], `ring ${show(r)} is listed twice`);
  });
  const ringSet = new Set(rings);

  const serverDefaults = file.defaults?.server ?? {};
  const firstEndpoint = new Map<string, Path>();

  const servers: Server[] = [];
  file.servers.forEach((raw, si) => {
    if (!raw) return;
    const at: Path = ['servers', si];
    const region = raw.region ?? serverDefaults.region;
    if (region === undefined)
      problem(at, `server ${show(raw.name)} has no region`, 'set "region" here or in defaults.server');
    const port = raw.port ?? serverDefaults.port ?? 22;
    const endpoint = `${raw.host.toLowerCase()}:${port}`;
    const sameEndpoint = firstEndpoint.get(endpoint);
    if (sameEndpoint)
      problem(
        [...at, 'host'],
        `${endpoint} is already the address of ${formatPath(sameEndpoint)}`,
        'list each server once and put all its tenants under it',
      );
    else firstEndpoint.set(endpoint, at);

    const jump = raw.jump ?? serverDefaults.jump;
    const server: Server = {
      name: raw.name,
      host: raw.host,
      port,
      user: raw.user ?? serverDefaults.user ?? 'deploy',
      hostKeys: hostKeys(raw.hostKey),
      region: region ?? '',
      labels: { ...serverDefaults.labels, ...raw.labels },
      jump: jump && {
        host: jump.host,
        port: jump.port ?? 22,
        user: jump.user ?? raw.user ?? serverDefaults.user ?? 'deploy',
        hostKeys: hostKeys(jump.hostKey),
      },
      tenants: [],
      at,
    };

    const layers: Layer[] = [
      { at: ['defaults', 'tenant'], data: file.defaults?.tenant as Record<string, unknown> | undefined },
      { at: [...at, 'tenantDefaults'], data: raw.tenantDefaults as Record<string, unknown> | undefined },
    ];
    const paths = new Map<string, Path>();
    const healthPorts = new Map<number, Path>();
    const projects = new Map<string, Path>();

    const tenants: Tenant[] = [];
    server.tenants = tenants;
    raw.tenants.forEach((rawTenant, ti) => {
      if (!rawTenant) return;
      const tat: Path = [...at, 'tenants', ti];
      const tl = [...layers, { at: tat, data: rawTenant as Record<string, unknown> }];

      const ring = pick<string>(tl, 'ring') ?? { value: rings[rings.length - 1]!, at: tat };
      if (!ringSet.has(ring.value))
        problem(
          ring.at,
          `ring ${show(ring.value)} is not one of the registry's rings`,
          `use one of: ${rings.join(', ')}, or add it to "rings"`,
        );

      const vars = { tenant: rawTenant.id, server: raw.name, region: server.region, ring: ring.value };
      // The schema has allowed only known placeholders; the result is checked against the strict pattern.
      const fill = (p: Picked<string>, pattern?: P.Pattern, noun?: string): string => {
        const out = p.value.replace(/\{([a-z]+)\}/g, (_, name: keyof typeof vars) => vars[name]);
        if (pattern && out !== p.value && !pattern.re.test(out))
          problem(
            p.at,
            `${show(p.value)} becomes ${show(out)} for tenant ${rawTenant.id}, which is not a valid ${noun}`,
            `use ${pattern.valid}`,
          );
        return out;
      };
      const missing = (what: string, key: string) =>
        problem(
          tat,
          `tenant ${show(rawTenant.id)} has no ${what}`,
          `set "${key}" here, in ${formatPath([...at, 'tenantDefaults'])} or in defaults.tenant`,
        );

      const rawPath = pick<string>(tl, 'path');
      if (!rawPath) missing('path', 'path');
      const path = rawPath ? fill(rawPath, P.REMOTE_PATH, 'path') : '';
      if (rawPath) {
        const other = paths.get(path.replace(/\/+$/, ''));
        if (other)
          problem(
            rawPath.at,
            `path ${show(path)} is already the path of ${formatPath(other)} on server ${raw.name}`,
            'each tenant needs its own directory',
          );
        else paths.set(path.replace(/\/+$/, ''), tat);
      }

      const images = pick<Array<{ variable: string; repository: string; service?: string | string[] }>>(
        tl,
        'images',
      );
      if (!images) missing('images', 'images');
      else
        images.value.forEach((img, i) => {
          if (images.value.findIndex((o) => o.variable === img.variable) !== i)
            problem([...images.at, i, 'variable'], `variable ${show(img.variable)} is listed twice`);
        });

      const rawProject = pick<string>(tl, 'compose', 'project');
      const project = rawProject && fill(rawProject, P.COMPOSE_PROJECT, 'compose project name');
      if (rawProject && project) {
        const other = projects.get(project);
        if (other)
          problem(
            rawProject.at,
            `compose project ${show(project)} is already used by ${formatPath(other)} on server ${raw.name}`,
            "two stacks with one project name would replace each other's containers",
          );
        else projects.set(project, tat);
      }

      const health = resolveHealth(tl, tat, (p) => fill(p), missing, problem);
      if (health?.port !== undefined) {
        const other = healthPorts.get(health.port);
        const portAt = pick<number>(tl, 'health', 'port')!.at;
        if (other)
          problem(
            portAt,
            `health port ${health.port} is already the health port of ${formatPath(other)} on server ${raw.name}`,
            'each tenant on a server listens on its own port',
          );
        else healthPorts.set(health.port, tat);
      }

      const services = pick<string[]>(tl, 'compose', 'services')?.value;
      const hookList = (key: string): Hook[] =>
        (pick<RawHook[]>(tl, 'hooks', key)?.value ?? []).map((h) =>
          typeof h === 'string'
            ? { run: h, once: false, timeoutMs: 600_000 }
            : { run: h.run, once: h.once ?? false, timeoutMs: h.timeout ? P.durationMs(h.timeout) : 600_000 },
        );
      const backup = pick<NonNullable<RawTenantFields['backup']>>(tl, 'backup')?.value;
      const commands = pick<NonNullable<RawTenantFields['commands']>>(tl, 'commands')?.value;
      const blueGreen = resolveBlueGreen(tl, tat, fill, problem, Boolean(commands), health);
      const tenant: Tenant = {
        id: rawTenant.id,
        path,
        compose: {
          files: list(pick<string | string[]>(tl, 'compose', 'file')?.value ?? 'docker-compose.yml'),
          command: pick<Tenant['compose']['command']>(tl, 'compose', 'command')?.value ?? 'docker compose',
          ...(project ? { project } : {}),
          ...(services ? { services } : {}),
        },
        images: (images?.value ?? []).map(({ service, ...img }) =>
          service ? { ...img, services: list(service) } : img,
        ),
        health: health ?? (undefined as unknown as HealthCheck),
        hooks: {
          preDeploy: hookList('preDeploy'),
          postDeploy: hookList('postDeploy'),
          onRollback: hookList('onRollback'),
        },
        ...(backup
          ? {
              backup: {
                paths: backup.paths ?? [],
                keepDays: backup.keepDays ?? 7,
                ...(backup.keepCount ? { keepCount: backup.keepCount } : {}),
                ...(backup.command ? { command: backup.command } : {}),
                ...(backup.dump ? { dump: { ...backup.dump, file: backup.dump.file ?? 'dump.sql' } } : {}),
              },
            }
          : {}),
        ...(commands ? { commands } : {}),
        ...(blueGreen ? { blueGreen } : {}),
        keepReleases: pick<number>(tl, 'keepReleases')?.value ?? 3,
        minFreeDiskMb: pick<number>(tl, 'minFreeDiskMb')?.value ?? 1024,
        hibernated: pick<Tenant['hibernated']>(tl, 'hibernated')?.value ?? 'restore',
        ring: ring.value,
        labels: Object.assign({}, ...tl.map((l) => (l.data as RawTenantFields | undefined)?.labels ?? {})),
        at: tat,
      };
      tenants.push(tenant);
    });
    checkSlotPorts(tenants, raw.name, problem);
    servers.push(server);
  });

  return { registry: { source, rings, servers }, problems };
}

function resolveHealth(
  layers: readonly Layer[],
  at: Path,
  fill: (p: Picked<string>) => string,
  missing: (what: string, key: string) => void,
  problem: (path: Path, message: string, hint?: string) => void,
): HealthCheck | undefined {
  const get = <T>(key: string) => pick<T>(layers, 'health', key);
  const port = get<number>('port');
  const url = get<string>('url');
  if (!port && !url) {
    missing('health check', 'health.port" or "health.url');
    return undefined;
  }
  if (port && url) {
    problem(
      at,
      `health has both a port (${formatPath(port.at)}) and a url (${formatPath(url.at)})`,
      'set one: "port" to probe through SSH, or "url" to probe from the runner',
    );
    return undefined;
  }
  const ms = (key: string, fallback: number) => {
    const v = get<string>(key);
    return v ? P.durationMs(v.value) : fallback;
  };
  const health: HealthCheck = {
    path: get<string>('path')?.value ?? '/health',
    expectStatus: get<number>('expectStatus')?.value ?? 200,
    intervalMs: ms('interval', 2_000),
    timeoutMs: ms('timeout', 5_000),
    deadlineMs: ms('deadline', 120_000),
    successes: get<number>('successes')?.value ?? 3,
    containerHealth: get<boolean>('containerHealth')?.value ?? false,
  };
  if (port) health.port = port.value;
  if (url) health.url = fill(url);
  const body = get<string>('bodyIncludes');
  if (body) health.bodyIncludes = body.value;
  const json = get<Record<string, string | number | boolean>>('json');
  if (json) health.json = json.value;
  if (health.timeoutMs > health.deadlineMs)
    problem(
      get<string>('timeout')!.at,
      `a probe timeout of ${health.timeoutMs} ms is longer than the deadline of ${health.deadlineMs} ms`,
      'make "timeout" shorter than "deadline"',
    );
  return health;
}

type RawStrategy = NonNullable<RawTenantFields['strategy']>;
type RawBlueGreen = Extract<RawStrategy, { kind: 'blue-green' }>;

/** The blue-green settings with their defaults, or undefined for the in-place switch. */
function resolveBlueGreen(
  layers: readonly Layer[],
  at: Path,
  fill: (p: Picked<string>) => string,
  problem: (path: Path, message: string, hint?: string) => void,
  hasCommands: boolean,
  health: HealthCheck | undefined,
): BlueGreen | undefined {
  const picked = pick<RawStrategy>(layers, 'strategy');
  if (!picked || picked.value.kind !== 'blue-green') return undefined;
  const raw = picked.value as RawBlueGreen;
  if (hasCommands)
    problem(
      picked.at,
      'a tenant deployed by its own commands cannot use the blue-green strategy',
      'remove one of "commands" and "strategy"',
    );
  if (health?.url !== undefined)
    problem(
      picked.at,
      'the blue-green strategy verifies through the proxy on health.port, but health has a url',
      'set health.port to the port the proxy serves this tenant on (127.0.0.1)',
    );
  const { blue, green } = raw.slots;
  if (blue.port === green.port)
    problem(
      [...picked.at, 'slots', 'green', 'port'],
      `both slots use port ${blue.port}`,
      'give each slot its own port',
    );
  for (const name of ['blue', 'green'] as const)
    if (raw.slots[name].port === health?.port)
      problem(
        [...picked.at, 'slots', name, 'port'],
        `slot ${name} uses port ${health.port}, the health port (the proxy's)`,
        'the proxy listens on health.port; the slots need ports of their own',
      );
  return {
    kind: 'blue-green',
    slots: { blue: { port: blue.port }, green: { port: green.port } },
    portVariable: raw.portVariable ?? 'APP_PORT',
    proxy: resolveProxy(raw.proxy, [...picked.at, 'proxy'], fill),
    drainTimeoutMs: raw.drainTimeout ? P.durationMs(raw.drainTimeout) : 30_000,
  };
}

function resolveProxy(raw: RawBlueGreen['proxy'], at: Path, fill: (p: Picked<string>) => string): Proxy {
  switch (raw.kind) {
    case 'caddy':
      return {
        kind: 'caddy',
        adminPort: raw.admin ?? 2019,
        route: fill({ value: raw.route ?? 'fleet-{tenant}', at: [...at, 'route'] }),
      };
    case 'nginx':
      return {
        kind: 'nginx',
        upstreamFile: fill({ value: raw.upstreamFile, at: [...at, 'upstreamFile'] }),
        check: raw.check ?? 'nginx -t -q',
        reload: raw.reload ?? 'nginx -s reload',
      };
    case 'command':
      return { kind: 'command', switch: raw.switch, current: raw.current };
  }
}

/** A slot's port must not be any other port a tenant of the server listens on. */
function checkSlotPorts(
  tenants: readonly Tenant[],
  server: string,
  problem: (path: Path, message: string, hint?: string) => void,
): void {
  const owners = new Map<number, string>();
  for (const t of tenants)
    if (t.health?.port !== undefined) owners.set(t.health.port, `the health port of ${t.id}`);
  for (const t of tenants) {
    for (const name of ['blue', 'green'] as const) {
      const port = t.blueGreen?.slots[name].port;
      if (port === undefined) continue;
      const other = owners.get(port);
      if (other && !other.endsWith(` ${t.id}`))
        problem(
          [...t.at, 'strategy', 'slots', name, 'port'],
          `slot port ${port} is already ${other} on server ${server}`,
          'each tenant on a server listens on ports of its own',
        );
      owners.set(port, `the ${name} slot of ${t.id}`);
    }
  }
}
