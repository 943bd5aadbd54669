/**
 * From the validated file to the Registry model: applies defaults (defaults.* → server.tenantDefaults →
 * tenant), substitutes {placeholders}, requires what no layer supplied, and checks what one field alone
 * cannot: duplicate names, and two tenants of one server sharing a directory, a health port or a project.
 * Every problem names the JSON path where the offending value was written (which may be in defaults).
 */
import { resolveAnalysis } from './analysis';
import { formatPath, show, type Problem } from '../errors';
import { parseHostKey, type PinnedHostKey } from './hostkey';
import type {
  BlueGreen,
  Commands,
  HealthCheck,
  Hook,
  Proxy,
  Registry,
  Server,
  Strategy,
  Tenant,
} from './model';
import { resolveFiles } from './files';
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

type Report = (path: Path, message: string, hint?: string) => void;
type Fill = (p: Picked<string>, pattern?: P.Pattern, noun?: string) => string;
type RawEntry = NonNullable<SalvagedFile['servers'][number]>;
type RawImage = { variable: string; repository: string; service?: string | string[] };

/** What every server's resolution reads: the file, its rings and where problems go. */
interface FileScope {
  file: SalvagedFile;
  rings: readonly string[];
  problem: Report;
}

/** One server's tenants: the layers above them and what two of them must not share. */
interface ServerScope extends FileScope {
  server: Server;
  layers: readonly Layer[];
  paths: Map<string, Path>;
  /** Each tenant's directory so far, as its parts: a tenant inside another's directory is refused. */
  dirs: Array<{ id: string; path: string; absolute: boolean; parts: string[] }>;
  healthPorts: Map<number, Path>;
  projects: Map<string, Path>;
}

/** One tenant: its layers (most specific last), where it was written and its placeholders. */
interface TenantScope extends ServerScope {
  id: string;
  at: Path;
  fill: Fill;
  missing: (what: string, key: string) => void;
}

export function resolveRegistry(
  file: SalvagedFile,
  source: string,
): { registry: Registry; problems: Problem[] } {
  const problems: Problem[] = [];
  const problem: Report = (path, message, hint) => void problems.push({ path, message, hint });
  const scope: FileScope = { file, rings: resolveRings(file.rings, problem), problem };
  const endpoints = new Map<string, Path>();
  const servers: Server[] = [];
  file.servers.forEach((raw, si) => {
    if (raw) servers.push(resolveServer(scope, raw, ['servers', si], endpoints));
  });
  const analysis = resolveAnalysis(file.rollout?.analysis, scope.rings, problem);
  return {
    registry: { source, rings: scope.rings as string[], servers, ...(analysis ? { analysis } : {}) },
    problems,
  };
}

/** The owner already recorded for `key`, or undefined after recording `owner` as its first. */
function claim<K>(owners: Map<K, Path>, key: K, owner: Path): Path | undefined {
  const other = owners.get(key);
  if (!other) owners.set(key, owner);
  return other;
}

function resolveRings(listed: RegistryFile['rings'], problem: Report): string[] {
  const rings = listed ?? [...DEFAULT_RINGS];
  rings.forEach((r, i) => {
    if (rings.indexOf(r) !== i) problem(['rings', i], `ring ${show(r)} is listed twice`);
  });
  return rings;
}

function resolveServer(scope: FileScope, raw: RawEntry, at: Path, endpoints: Map<string, Path>): Server {
  const defaults = scope.file.defaults?.server ?? {};
  const region = raw.region ?? defaults.region;
  if (region === undefined)
    scope.problem(at, `server ${show(raw.name)} has no region`, 'set "region" here or in defaults.server');
  const port = raw.port ?? defaults.port ?? 22;
  const endpoint = `${raw.host.toLowerCase()}:${port}`;
  const sameEndpoint = claim(endpoints, endpoint, at);
  if (sameEndpoint)
    scope.problem(
      [...at, 'host'],
      `${endpoint} is already the address of ${formatPath(sameEndpoint)}`,
      'list each server once and put all its tenants under it',
    );

  const user = raw.user ?? defaults.user ?? 'deploy';
  const jump = raw.jump ?? defaults.jump;
  const server: Server = {
    name: raw.name,
    host: raw.host,
    port,
    user,
    hostKeys: hostKeys(raw.hostKey),
    region: region ?? '',
    labels: { ...defaults.labels, ...raw.labels },
    jump: jump && {
      host: jump.host,
      port: jump.port ?? 22,
      user: jump.user ?? user,
      hostKeys: hostKeys(jump.hostKey),
    },
    tenants: [],
    at,
  };
  server.tenants = resolveTenants(scope, raw, server);
  return server;
}

function resolveTenants(scope: FileScope, raw: RawEntry, server: Server): Tenant[] {
  const layers: Layer[] = [
    { at: ['defaults', 'tenant'], data: scope.file.defaults?.tenant as Record<string, unknown> | undefined },
    { at: [...server.at, 'tenantDefaults'], data: raw.tenantDefaults as Record<string, unknown> | undefined },
  ];
  const serverScope: ServerScope = {
    ...scope,
    server,
    layers,
    paths: new Map(),
    dirs: [],
    healthPorts: new Map(),
    projects: new Map(),
  };
  const tenants: Tenant[] = [];
  raw.tenants.forEach((rawTenant, ti) => {
    if (rawTenant) tenants.push(resolveTenant(serverScope, rawTenant, [...server.at, 'tenants', ti]));
  });
  checkSlotPorts(tenants, raw.name, scope.problem);
  return tenants;
}

/** One tenant, its problems reported in the order of its fields. */
function resolveTenant(scope: ServerScope, rawTenant: RawTenant, at: Path): Tenant {
  const layers = [...scope.layers, { at, data: rawTenant as Record<string, unknown> }];
  const ring = resolveRing(scope, layers, at);
  const t = tenantScope({ ...scope, layers }, rawTenant.id, at, ring);
  const path = resolvePath(t);
  const images = resolveImages(t);
  const project = resolveProject(t);
  const health = resolveHealth(layers, at, (p) => t.fill(p), t.missing, t.problem);
  checkHealthPort(t, health);
  const services = pick<string[]>(layers, 'compose', 'services')?.value;
  const backup = pick<NonNullable<RawTenantFields['backup']>>(layers, 'backup')?.value;
  const strategy = resolveStrategy(layers, t.fill, t.problem, health);
  return {
    id: rawTenant.id,
    path,
    compose: {
      files: list(pick<string | string[]>(layers, 'compose', 'file')?.value ?? 'docker-compose.yml'),
      command: pick<Tenant['compose']['command']>(layers, 'compose', 'command')?.value ?? 'docker compose',
      ...(project ? { project } : {}),
      ...(services ? { services } : {}),
    },
    images: (images ?? []).map(({ service, ...img }) =>
      service ? { ...img, services: list(service) } : img,
    ),
    health: health ?? (undefined as unknown as HealthCheck),
    hooks: {
      preDeploy: hookList(layers, 'preDeploy'),
      postDeploy: hookList(layers, 'postDeploy'),
      onRollback: hookList(layers, 'onRollback'),
    },
    ...resolveFiles(
      pick(layers, 'files', 'ship'),
      layers.map((l) => (l.data as RawTenantFields | undefined)?.files?.variables),
      t.problem,
    ),
    ...(backup ? { backup: resolveBackup(backup) } : {}),
    strategy,
    keepReleases: pick<number>(layers, 'keepReleases')?.value ?? 3,
    minFreeDiskMb: pick<number>(layers, 'minFreeDiskMb')?.value ?? 1024,
    hibernated: pick<Tenant['hibernated']>(layers, 'hibernated')?.value ?? 'restore',
    ring,
    labels: Object.assign({}, ...layers.map((l) => (l.data as RawTenantFields | undefined)?.labels ?? {})),
    at,
  };
}

function resolveRing(scope: ServerScope, layers: readonly Layer[], at: Path): string {
  const { rings } = scope;
  const ring = pick<string>(layers, 'ring') ?? { value: rings[rings.length - 1]!, at };
  if (!rings.includes(ring.value))
    scope.problem(
      ring.at,
      `ring ${show(ring.value)} is not one of the registry's rings`,
      `use one of: ${rings.join(', ')}, or add it to "rings"`,
    );
  return ring.value;
}

/** The tenant's scope: `fill` substitutes its placeholders, `missing` reports a field no layer set. */
function tenantScope(scope: ServerScope, id: string, at: Path, ring: string): TenantScope {
  const { server, problem } = scope;
  const vars = { tenant: id, server: server.name, region: server.region, ring };
  // The schema has allowed only known placeholders; the result is checked against the strict pattern.
  const fill: Fill = (p, pattern, noun) => {
    const out = p.value.replace(/\{([a-z]+)\}/g, (_, name: keyof typeof vars) => vars[name]);
    if (pattern && out !== p.value && !pattern.re.test(out))
      problem(
        p.at,
        `${show(p.value)} becomes ${show(out)} for tenant ${id}, which is not a valid ${noun}`,
        `use ${pattern.valid}`,
      );
    return out;
  };
  const missing = (what: string, key: string) =>
    problem(
      at,
      `tenant ${show(id)} has no ${what}`,
      `set "${key}" here, in ${formatPath([...server.at, 'tenantDefaults'])} or in defaults.tenant`,
    );
  return { ...scope, id, at, fill, missing };
}

function resolvePath(t: TenantScope): string {
  const rawPath = pick<string>(t.layers, 'path');
  if (!rawPath) {
    t.missing('path', 'path');
    return '';
  }
  const path = t.fill(rawPath, P.REMOTE_PATH, 'path');
  const other = claim(t.paths, path.replace(/\/+$/, ''), t.at);
  if (other)
    t.problem(
      rawPath.at,
      `path ${show(path)} is already the path of ${formatPath(other)} on server ${t.server.name}`,
      'each tenant needs its own directory',
    );
  else checkNested(t, path, rawPath.at);
  return path;
}

/**
 * Refuses a tenant directory inside another tenant's (or its `.fleet`), or one that holds another: the
 * outer tenant's deploys, backups and restores would read and replace the inner one's files, and the
 * inner one's writer could plant links in the outer one's directory. Paths are compared as written
 * (relative ones are under the same user's home).
 */
function checkNested(t: TenantScope, path: string, at: Path): void {
  const parts = path.split('/').filter((p) => p && p !== '.');
  const mine = { id: t.id, path, absolute: path.startsWith('/'), parts };
  const within = (inner: string[], outer: string[]) =>
    inner.length > outer.length && outer.every((p, i) => inner[i] === p);
  for (const d of t.dirs) {
    if (d.absolute !== mine.absolute) continue;
    const [inner, outer] = within(parts, d.parts) ? [mine, d] : within(d.parts, parts) ? [d, mine] : [];
    if (!inner || !outer) continue;
    const where = inner.parts[outer.parts.length] === '.fleet' ? 'the .fleet directory' : 'the directory';
    t.problem(
      at,
      `tenant ${show(inner.id)} (path ${show(inner.path)}) is inside ${where} of tenant ` +
        `${show(outer.id)} (path ${show(outer.path)}) on server ${t.server.name}`,
      "each tenant needs a directory of its own, not inside another tenant's: one's deploys, backups " +
        "and restores would reach into the other's files",
    );
  }
  t.dirs.push(mine);
}

function resolveImages(t: TenantScope): RawImage[] | undefined {
  const images = pick<RawImage[]>(t.layers, 'images');
  if (!images) {
    t.missing('images', 'images');
    return undefined;
  }
  images.value.forEach((img, i) => {
    if (images.value.findIndex((o) => o.variable === img.variable) !== i)
      t.problem([...images.at, i, 'variable'], `variable ${show(img.variable)} is listed twice`);
  });
  return images.value;
}

function resolveProject(t: TenantScope): string | undefined {
  const rawProject = pick<string>(t.layers, 'compose', 'project');
  const project = rawProject && t.fill(rawProject, P.COMPOSE_PROJECT, 'compose project name');
  if (!rawProject || !project) return project;
  const other = claim(t.projects, project, t.at);
  if (other)
    t.problem(
      rawProject.at,
      `compose project ${show(project)} is already used by ${formatPath(other)} on server ${t.server.name}`,
      "two stacks with one project name would replace each other's containers",
    );
  return project;
}

function checkHealthPort(t: TenantScope, health: HealthCheck | undefined): void {
  if (health?.port === undefined) return;
  const other = claim(t.healthPorts, health.port, t.at);
  if (other)
    t.problem(
      pick<number>(t.layers, 'health', 'port')!.at,
      `health port ${health.port} is already the health port of ${formatPath(other)} on server ${t.server.name}`,
      'each tenant on a server listens on its own port',
    );
}

function hookList(layers: readonly Layer[], key: string): Hook[] {
  return (pick<RawHook[]>(layers, 'hooks', key)?.value ?? []).map((h) =>
    typeof h === 'string'
      ? { run: h, once: false, timeoutMs: 600_000 }
      : { run: h.run, once: h.once ?? false, timeoutMs: h.timeout ? P.durationMs(h.timeout) : 600_000 },
  );
}

function resolveBackup(backup: NonNullable<RawTenantFields['backup']>): NonNullable<Tenant['backup']> {
  return {
    paths: backup.paths ?? [],
    keepDays: backup.keepDays ?? 7,
    ...(backup.keepCount ? { keepCount: backup.keepCount } : {}),
    ...(backup.command ? { command: backup.command } : {}),
    ...(backup.dump ? { dump: { ...backup.dump, file: backup.dump.file ?? 'dump.sql' } } : {}),
  };
}

function resolveHealth(
  layers: readonly Layer[],
  at: Path,
  fill: (p: Picked<string>) => string,
  missing: (what: string, key: string) => void,
  problem: Report,
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

/**
 * The tenant's strategy: `strategy` (in place when no layer sets one), or the user's `commands` — the
 * older spelling of `"strategy": {"kind": "commands", …}`, which it wins over an in-place `strategy`.
 */
function resolveStrategy(
  layers: readonly Layer[],
  fill: (p: Picked<string>) => string,
  problem: Report,
  health: HealthCheck | undefined,
): Strategy {
  const commands = pick<NonNullable<RawTenantFields['commands']>>(layers, 'commands');
  const picked = pick<RawStrategy>(layers, 'strategy');
  const kind = picked?.value.kind ?? 'in-place';
  if (commands && kind !== 'in-place')
    problem(
      picked!.at,
      kind === 'blue-green'
        ? 'a tenant deployed by its own commands cannot use the blue-green strategy'
        : 'the commands are set twice, in "commands" and in "strategy"',
      'remove one of "commands" and "strategy"',
    );
  if (commands) return userCommands(commands.value);
  switch (picked?.value.kind) {
    case undefined:
    case 'in-place':
      return { kind: 'in-place' };
    case 'commands':
      return userCommands(picked.value);
    case 'blue-green':
      return resolveBlueGreen(picked as Picked<RawBlueGreen>, fill, problem, health);
  }
}

function userCommands({ deploy, rollback, current }: Omit<Commands, 'kind'>): Commands {
  return { kind: 'commands', deploy, ...(rollback !== undefined ? { rollback } : {}), current };
}

/** The blue-green settings with their defaults. */
function resolveBlueGreen(
  picked: Picked<RawBlueGreen>,
  fill: (p: Picked<string>) => string,
  problem: Report,
  health: HealthCheck | undefined,
): BlueGreen {
  const raw = picked.value;
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
    case 'flag-file':
      return { kind: 'flag-file' };
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
function checkSlotPorts(tenants: readonly Tenant[], server: string, problem: Report): void {
  const owners = new Map<number, string>();
  for (const t of tenants)
    if (t.health?.port !== undefined) owners.set(t.health.port, `the health port of ${t.id}`);
  for (const t of tenants) {
    for (const name of ['blue', 'green'] as const) {
      const port = t.strategy.kind === 'blue-green' ? t.strategy.slots[name].port : undefined;
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
