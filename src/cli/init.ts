/**
 * `fleet-deploy init`, `add-server` and `add-tenant`: a starter registry for the person's own servers,
 * and the next servers and tenants added to it. Asks nothing when flags say it all. Each server's host key
 * is fetched (a connection that stops at the key exchange, never logs in) and its SHA256 fingerprint shown
 * to compare out of band; it is pinned only with consent: a "y" at the prompt on a terminal, or
 * `--accept-host-key SHA256:…` naming the key offered. Never silently. With `--discover`, it logs in and
 * lists the Compose projects and image variables already on the server. The result is validated by the
 * registry parser before it is written.
 */
import { Client } from 'ssh2';
import { ConfigurationError, type Problem } from '../errors';
import { fingerprintOf } from '../registry/hostkey';
import { parseRegistry } from '../registry';
import { ENV_VAR, HOST, IMAGE_REF, NAME, REMOTE_PATH, TENANT_ID, USER, matches } from '../registry/patterns';
import type { Server } from '../registry/model';
import { Script, sh } from '../remote/shell';
import { SshConnector } from '../ssh/transport';
import { DEFAULT_REGISTRY } from '../settings';
import { registryPath } from './args';
import { readUserFile, type CliIO } from './io';
import { sshCredentials } from './keys';

type Values = Readonly<Record<string, unknown>>;

export interface ServerSpec {
  name: string;
  user: string;
  host: string;
  port: number;
}
export interface TenantSpec {
  server?: string;
  id: string;
  path: string;
}

const bad = (source: string, message: string, hint?: string): ConfigurationError =>
  new ConfigurationError([{ path: [], source, message, ...(hint ? { hint } : {}) } satisfies Problem]);

/** `eu-1=deploy@203.0.113.10[:2222]` */
export function parseServerSpec(text: string): ServerSpec {
  const m = /^([^=]+)=([^@]+)@(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text);
  const example = 'e.g. --server eu-1=deploy@203.0.113.10 or eu-1=deploy@eu-1.example.com:2222';
  if (!m) throw bad('--server', `${JSON.stringify(text)} is not NAME=USER@HOST[:PORT]`, example);
  const [, name, user, rawHost, port] = m;
  const host = rawHost!.replace(/^\[|\]$/g, '');
  const spec = { name: name!, user: user!, host, port: port ? Number(port) : 22 };
  if (!matches(NAME, spec.name))
    throw bad('--server', `${JSON.stringify(spec.name)} is not a server name`, NAME.valid);
  if (!matches(USER, spec.user))
    throw bad('--server', `${JSON.stringify(spec.user)} is not a user name`, USER.valid);
  if (!matches(HOST, spec.host))
    throw bad('--server', `${JSON.stringify(spec.host)} is not a host`, HOST.valid);
  if (!(spec.port >= 1 && spec.port <= 65535)) throw bad('--server', `${spec.port} is not a port`);
  return spec;
}

/** `acme:/srv/app/acme`, or `eu-1/acme:/srv/app/acme` to name the server. */
export function parseTenantSpec(text: string): TenantSpec {
  const m = /^(?:([^/:]+)\/)?([^/:]+):(\/.*)$/.exec(text);
  if (!m)
    throw bad(
      '--tenant',
      `${JSON.stringify(text)} is not [SERVER/]ID:PATH`,
      'e.g. --tenant acme:/srv/app/acme',
    );
  const [, server, id, path] = m;
  if (!matches(TENANT_ID, id!))
    throw bad('--tenant', `${JSON.stringify(id)} is not a tenant id`, TENANT_ID.valid);
  if (!matches(REMOTE_PATH, path!))
    throw bad('--tenant', `${JSON.stringify(path)} is not a path`, REMOTE_PATH.valid);
  return { ...(server ? { server } : {}), id: id!, path: path! };
}

// ---- host keys ----

export interface OfferedKey {
  line: string;
  fingerprint: string;
}

/** The host key a server offers: a connection that ends at the key exchange (it never authenticates). */
export function fetchHostKey(server: ServerSpec, timeoutMs = 10_000): Promise<OfferedKey> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let offered: OfferedKey | undefined;
    const done = () => {
      client.end();
      if (offered) resolve(offered);
      else reject(new Error(`${server.name} (${server.host}:${server.port}) offered no host key`));
    };
    client.on('error', (e: Error) =>
      offered
        ? done()
        : reject(new Error(`cannot reach ${server.name} (${server.host}:${server.port}): ${e.message}`)),
    );
    client.on('close', done);
    client.connect({
      host: server.host,
      port: server.port,
      username: server.user,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        const type = key.subarray(4, 4 + key.readUInt32BE(0)).toString('latin1');
        offered = { line: `${type} ${key.toString('base64')}`, fingerprint: fingerprintOf(key) };
        return false; // stop here: nothing is sent on to a server not yet trusted
      },
    });
  });
}

/** Whether the person consents to pinning `key` for `server`. */
async function consent(server: ServerSpec, key: OfferedKey, setup: Setup, io: CliIO): Promise<boolean> {
  const accepted = setup.accepted;
  io.stderr(
    `${server.name} (${server.host}:${server.port}) offers ${key.line.split(' ')[0]} ${key.fingerprint}\n` +
      `  Compare it out of band, on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub (or your provider's console)\n`,
  );
  if (accepted.length) {
    if (accepted.includes(key.fingerprint)) return true;
    throw bad(
      '--accept-host-key',
      `${server.name} offered ${key.fingerprint}, not ${accepted.join(' or ')}`,
      'the key changed or this is not the server you meant: do not pin it; check the fingerprint out of band',
    );
  }
  if (!setup.ask) return false;
  const answer = await setup.ask(`Pin this key for ${server.name}? [y/N] `);
  return /^y(es)?$/i.test(answer.trim());
}

/** What to run once the fingerprint is compared: the server is in the registry by then. */
function notPinned(io: CliIO, server: string, fingerprint: string, file: string): string {
  const r = file === registryPath({}, io) ? '' : ` -r ${file}`;
  return (
    `  Not pinned. Once you have compared it: ${io.self ?? 'fleet-deploy'} pin-host-key --server ` +
    `${server}${r} --accept-host-key ${fingerprint}\n`
  );
}

// ---- discovery ----

export interface Discovered {
  path: string;
  composeFile: string;
  images: Array<{ variable: string; ref: string }>;
}

const COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

/** The shell that lists Compose projects under `roots` and the image variables of their .env files. */
export function discoverScript(roots: readonly string[]): Script {
  const where = roots.length ? sh`${[...roots]}` : new Script('/srv /opt "$HOME"');
  const named = new Script(`\\( ${COMPOSE_FILES.map((f) => `-name ${f}`).join(' -o ')} \\)`);
  const project = sh`d=$(dirname -- "$f"); printf '@@project %s %s\n' "$d" "$(basename -- "$f")"`;
  const images = sh`if [ -f "$d/.env" ]; then grep -E '^[A-Za-z0-9_]*IMAGE[A-Za-z0-9_]*=' "$d/.env"; fi`;
  return sh`find ${where} -maxdepth 3 -type f ${named} 2>/dev/null | sort | while IFS= read -r f; do ${project}; ${images}; done; true`;
}

/** What the server sent, each value checked like user input; the rest dropped. */
export function parseDiscovery(stdout: string): Discovered[] {
  const out: Discovered[] = [];
  for (const line of stdout.split('\n')) {
    const project = /^@@project (\/\S*) (\S+)$/.exec(line);
    if (project) {
      if (matches(REMOTE_PATH, project[1]!) && COMPOSE_FILES.includes(project[2]!))
        out.push({ path: project[1]!, composeFile: project[2]!, images: [] });
      continue;
    }
    const v = /^([A-Za-z_][A-Za-z0-9_]*)=["']?([^"'\s]+)["']?$/.exec(line);
    if (v && out.length && matches(ENV_VAR, v[1]!) && IMAGE_REF.test(v[2]!))
      out.at(-1)!.images.push({ variable: v[1]!, ref: v[2]! });
  }
  return out;
}

async function discover(
  server: ServerSpec,
  hostKey: string,
  roots: readonly string[],
  io: CliIO,
  key?: string,
) {
  const credentials = await sshCredentials(key, io);
  const connector = new SshConnector({ ...credentials, connectAttempts: 1 });
  const asServer = {
    name: server.name,
    host: server.host,
    port: server.port,
    user: server.user,
    hostKeys: [{ fingerprint: hostKey }],
  } as unknown as Server;
  const transport = await connector.connect(asServer);
  try {
    const r = await transport.exec(discoverScript(roots), { timeoutMs: 30_000 });
    if (r.code !== 0)
      throw new Error(`discovery on ${server.name} failed: exit code ${r.code}: ${r.stderr.trim()}`);
    return parseDiscovery(r.stdout);
  } finally {
    await transport.close();
  }
}

// ---- the registry file ----

type Json = Record<string, unknown>;

/** A server entry for the file: the pinned key when consented to, else none (deploys refuse it until then). */
function serverEntry(spec: ServerSpec, region: string, hostKey: string | undefined, tenants: Json[]): Json {
  return {
    name: spec.name,
    host: spec.host,
    ...(spec.port !== 22 ? { port: spec.port } : {}),
    user: spec.user,
    ...(hostKey ? { hostKey } : {}),
    region,
    tenants,
  };
}

const repositoryOf = (ref: string) => ref.replace(/@sha256:[a-f0-9]{64}$/, '').replace(/:[^:/]+$/, '');

/** A tenant entry: its path, the image variables found there (if discovered), a health port to edit. */
function tenantEntry(t: TenantSpec, found: Discovered | undefined, port: number): Json {
  return {
    id: t.id,
    path: t.path,
    ...(found && found.composeFile !== 'docker-compose.yml' ? { compose: { file: found.composeFile } } : {}),
    ...(found?.images.length
      ? { images: found.images.map((i) => ({ variable: i.variable, repository: repositoryOf(i.ref) })) }
      : {}),
    health: { port, path: '/health' },
  };
}

/** Text of a registry, checked by the parser (exit 2 with every problem, nothing written, when invalid). */
function checked(registry: Json, file: string): string {
  const text = `${JSON.stringify(registry, null, 2)}\n`;
  parseRegistry(text, file);
  return text;
}

interface Setup {
  file: string;
  region: string;
  accepted: string[];
  discover: boolean;
  /** Who answers the host key question; none: only --accept-host-key pins. */
  ask?: (question: string) => Promise<string>;
  key?: string;
}

function setupOf(values: Values, io: CliIO): Setup {
  return {
    file: registryPath(values, io),
    region: (values.region as string | undefined) ?? 'default',
    accepted: (values['accept-host-key'] as string[] | undefined) ?? [],
    discover: Boolean(values.discover),
    ...(io.ask && !values.yes ? { ask: io.ask } : {}),
    ...(values.key ? { key: values.key as string } : {}),
  };
}

/** One server's entry: its host key (fetched, shown, pinned with consent), its tenants (discovered if asked). */
async function buildServer(
  spec: ServerSpec,
  tenants: TenantSpec[],
  setup: Setup,
  io: CliIO,
  firstPort: number,
) {
  const offered = await fetchHostKey(spec);
  const pinned = (await consent(spec, offered, setup, io)) ? offered.line : undefined;
  if (!pinned) io.stderr(notPinned(io, spec.name, offered.fingerprint, setup.file));
  let found: Discovered[] = [];
  if (setup.discover) {
    if (!pinned) throw bad('--discover', `logs in to ${spec.name}, which needs its host key pinned first`);
    found = await discover(
      spec,
      offered.fingerprint,
      tenants.map((t) => t.path),
      io,
      setup.key,
    );
    for (const d of found)
      io.stderr(
        `  found ${d.path} (${d.composeFile})${d.images.length ? `: ${d.images.map((i) => `${i.variable}=${i.ref}`).join(', ')}` : ''}\n`,
      );
  }
  const list = tenants.length
    ? tenants
    : found.map((d) => ({
        id: d.path
          .split('/')
          .pop()!
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-'),
        path: d.path,
      }));
  const entries = list.map((t, i) =>
    tenantEntry(
      t,
      found.find((d) => d.path === t.path),
      firstPort + i,
    ),
  );
  return serverEntry(spec, setup.region, pinned, entries);
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined ? [] : [String(v)]);

/** Which server each tenant goes to: the one it names, else the only server. */
function tenantsFor(servers: ServerSpec[], tenants: TenantSpec[]): Map<string, TenantSpec[]> {
  const by = new Map(servers.map((s) => [s.name, [] as TenantSpec[]]));
  for (const t of tenants) {
    const name = t.server ?? (servers.length === 1 ? servers[0]!.name : undefined);
    if (!name || !by.has(name))
      throw bad(
        '--tenant',
        `${t.id}: which server? ${t.server ? `"${t.server}" is not one of ${[...by.keys()].join(', ')}` : 'there are several'}`,
        `name it: --tenant ${servers[0]?.name ?? 'eu-1'}/${t.id}:${t.path}`,
      );
    by.get(name)!.push(t);
  }
  return by;
}

/** init never overwrites a registry: checked before any question or connection, and again before writing. */
async function refuseExisting(io: CliIO, file: string): Promise<void> {
  const exists = await io.readText(file).then(
    () => true,
    () => false,
  );
  if (exists)
    throw bad(
      '--registry',
      `${file} exists already`,
      `add to it: ${io.self ?? 'fleet-deploy'} add-server / ` +
        `add-tenant${file === DEFAULT_REGISTRY ? '' : ` -r ${file}`}; or write another file: -r FILE`,
    );
}

async function writeNew(io: CliIO, file: string, text: string, mayExist: boolean): Promise<void> {
  if (!mayExist) await refuseExisting(io, file);
  if (!io.writeText) throw new Error('this environment cannot write files');
  await io.writeText(file, text);
}

const PLACEHOLDER_IMAGE = { variable: 'APP_IMAGE', repository: 'ghcr.io/your-org/your-app' };

function nextSteps(io: CliIO, file: string): string {
  const self = io.self ?? 'fleet-deploy';
  // the file the commands read anyway needs no -r: the steps then read as the README's quick start
  const r = file === registryPath({}, io) ? '' : ` -r ${file}`;
  return `Next: edit what it could not know (each tenant's health port; the images, if not discovered:
${PLACEHOLDER_IMAGE.variable}=${PLACEHOLDER_IMAGE.repository} stands in for them), then
  ${self} validate${r}
  ${self} plan${r}
  ${self} deploy${r} --version TAG --select server=NAME
`;
}

/**
 * Lists in `placeholders` what was just written without being known — each new tenant's health port, and
 * the stand-in image of a tenant whose images were not discovered — so `validate` flags them until edited.
 */
function notePlaceholders(registry: Json, fresh: ReadonlySet<Json>): void {
  const noted = { ...((registry.placeholders as Json | undefined) ?? {}) };
  (registry.servers as Json[]).forEach((s, si) =>
    ((s.tenants as Json[] | undefined) ?? []).forEach((t, ti) => {
      if (!fresh.has(t)) return;
      noted[`servers[${si}].tenants[${ti}].health.port`] = (t.health as Json).port;
      const images = ((registry.defaults as Json | undefined)?.tenant as Json | undefined)?.images as Json[];
      if (!t.images && images?.[0]?.repository === PLACEHOLDER_IMAGE.repository)
        noted['defaults.tenant.images[0].repository'] = PLACEHOLDER_IMAGE.repository;
    }),
  );
  if (Object.keys(noted).length) registry.placeholders = noted;
}

const tenantsOf = (servers: Json[]) =>
  new Set(servers.flatMap((s) => (s.tenants as Json[] | undefined) ?? []));

export async function runInit(values: Values, io: CliIO): Promise<number> {
  const setup = setupOf(values, io);
  const servers = list(values.server).map(parseServerSpec);
  if (!servers.length)
    throw bad('--server', 'at least one server is needed', 'e.g. --server eu-1=deploy@203.0.113.10');
  const byServer = tenantsFor(servers, list(values.tenant).map(parseTenantSpec));
  await refuseExisting(io, setup.file);
  const entries: Json[] = [];
  let port = 8080;
  for (const s of servers) {
    const entry = await buildServer(s, byServer.get(s.name)!, setup, io, port);
    port += (entry.tenants as Json[]).length;
    entries.push(entry);
  }
  const registry = {
    $schema: 'https://unpkg.com/fleet-deploy/servers/registry.schema.json',
    version: 1,
    // The images of a tenant not discovered: a stand-in to replace with your own.
    defaults: { tenant: { images: [PLACEHOLDER_IMAGE] } },
    servers: entries,
  };
  notePlaceholders(registry, tenantsOf(entries));
  await writeNew(io, setup.file, checked(registry, setup.file), false);
  io.stdout(
    `Wrote ${setup.file}: ${entries.length} server(s), ` +
      `${entries.flatMap((e) => e.tenants as Json[]).length} tenant(s).\n${nextSteps(io, setup.file)}`,
  );
  return 0;
}

async function readRegistryJson(io: CliIO, file: string): Promise<Json> {
  const text = await readUserFile(io, file, '--registry');
  parseRegistry(text, file); // start from a valid file, so a problem after the edit is the edit's
  return JSON.parse(text) as Json;
}

export async function runAddServer(values: Values, io: CliIO): Promise<number> {
  const setup = setupOf(values, io);
  const registry = await readRegistryJson(io, setup.file);
  const servers = (registry.servers as Json[]) ?? [];
  const specs = list(values.server).map(parseServerSpec);
  if (!specs.length) throw bad('--server', 'which server?', 'e.g. --server eu-2=deploy@203.0.113.11');
  const byServer = tenantsFor(specs, list(values.tenant).map(parseTenantSpec));
  for (const s of specs) {
    if (servers.some((e) => e.name === s.name))
      throw bad(
        '--server',
        `${s.name} is in ${setup.file} already`,
        `to pin or re-pin its host key: ${io.self ?? 'fleet-deploy'} pin-host-key --server ${s.name}`,
      );
    servers.push(await buildServer(s, byServer.get(s.name)!, setup, io, 8080));
  }
  registry.servers = servers;
  notePlaceholders(registry, tenantsOf(servers.slice(-specs.length)));
  await writeNew(io, setup.file, checked(registry, setup.file), true);
  io.stdout(`Added ${specs.map((s) => s.name).join(', ')} to ${setup.file}.\n${nextSteps(io, setup.file)}`);
  return 0;
}

export async function runAddTenant(values: Values, io: CliIO): Promise<number> {
  const setup = setupOf(values, io);
  const registry = await readRegistryJson(io, setup.file);
  const servers = (registry.servers as Json[]) ?? [];
  const tenants = list(values.tenant).map(parseTenantSpec);
  if (!tenants.length) throw bad('--tenant', 'which tenant?', 'e.g. --tenant eu-1/acme:/srv/app/acme');
  const added = new Set<Json>();
  for (const t of tenants) {
    const name = t.server ?? (servers.length === 1 ? (servers[0]!.name as string) : undefined);
    const server = servers.find((s) => s.name === name);
    if (!server)
      throw bad(
        '--tenant',
        `${t.id}: which server? ${name ? `"${name}" is not in ${setup.file}` : 'there are several'}`,
        `name it: --tenant SERVER/${t.id}:${t.path}`,
      );
    const list = (server.tenants as Json[] | undefined) ?? [];
    const ports = list
      .map((x) => (x.health as Json | undefined)?.port)
      .filter((p): p is number => typeof p === 'number');
    const entry = tenantEntry(t, undefined, ports.length ? Math.max(...ports) + 1 : 8080);
    added.add(entry);
    list.push(entry);
    server.tenants = list;
  }
  notePlaceholders(registry, added);
  await writeNew(io, setup.file, checked(registry, setup.file), true);
  io.stdout(`Added ${tenants.map((t) => t.id).join(', ')} to ${setup.file}.\n${nextSteps(io, setup.file)}`);
  return 0;
}

/** `pin-host-key --server NAME`: fetch the key a server of the registry offers, show it, pin it with consent. */
export async function runPinHostKey(values: Values, io: CliIO): Promise<number> {
  const setup = setupOf(values, io);
  const name = values.server as string | undefined;
  if (!name) throw bad('--server', 'which server?', 'e.g. --server eu-1');
  const registry = parseRegistry(await readUserFile(io, setup.file, '--registry'), setup.file);
  const server = registry.servers.find((s) => s.name === name);
  if (!server)
    throw bad(
      '--server',
      `${JSON.stringify(name)} is not in ${setup.file}`,
      `servers: ${registry.servers.map((s) => s.name).join(', ')}`,
    );
  if (server.jump)
    throw bad(
      '--server',
      `${name} is reached through a jump host, which this command does not go through`,
      `on the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub, then set "hostKey" to that SHA256:… in ${setup.file}`,
    );
  const spec = { name, user: server.user, host: server.host, port: server.port };
  const offered = await fetchHostKey(spec);
  const pins = server.hostKeys.map((k) => k.fingerprint);
  if (pins.includes(offered.fingerprint)) {
    io.stdout(
      `${name} offers ${offered.fingerprint}, the key already pinned in ${setup.file}: nothing to do.\n`,
    );
    return 0;
  }
  if (pins.length)
    io.stderr(
      `${name} is pinned to ${pins.join(', ')} in ${setup.file}, but now offers another key. Re-pin ` +
        `only if the server was rebuilt or its key rotated; otherwise this may be a man-in-the-middle.\n`,
    );
  if (!(await consent(spec, offered, setup, io))) {
    io.stderr(notPinned(io, name, offered.fingerprint, setup.file));
    return 1;
  }
  const raw = JSON.parse(await readUserFile(io, setup.file, '--registry')) as Json;
  const entry = (raw.servers as Json[]).find((s) => s.name === name)!;
  entry.hostKey = offered.line;
  await writeNew(io, setup.file, checked(raw, setup.file), true);
  io.stdout(`Pinned ${name}'s key (${offered.fingerprint}) in ${setup.file}.\n`);
  return 0;
}

export const PIN_HOST_KEY_USAGE = `fleet-deploy pin-host-key --server NAME [--accept-host-key SHA256:…] [--yes] [-r FILE]

Pins the host key of a server already in the registry, or re-pins it after the server was rebuilt: it
fetches the key the server offers (the connection stops at the key exchange; nothing logs in), prints its
SHA256 fingerprint for you to compare out of band (on the server: ssh-keygen -lf
/etc/ssh/ssh_host_ed25519_key.pub), and writes it as the server's "hostKey" only with your consent: "y"
at the prompt on a terminal, or --accept-host-key with that fingerprint.
e.g. fleet-deploy pin-host-key --server eu-1

Options:
  -r, --registry FILE         the registry file (default: $FLEET_REGISTRY or ${DEFAULT_REGISTRY})
      --server NAME           the server, by its name in the registry
      --accept-host-key SHA256:…  pin the key offered only if it has this fingerprint
      --yes                   ask nothing (the key is then pinned only by --accept-host-key)
  -h, --help                  show this help`;

export const PIN_HOST_KEY_OPTIONS = {
  registry: { type: 'string', short: 'r' },
  server: { type: 'string' },
  'accept-host-key': { type: 'string', multiple: true },
  yes: { type: 'boolean' },
} as const;

const COMMON = `  -r, --registry FILE         the registry file (default: $FLEET_REGISTRY or ${DEFAULT_REGISTRY})
      --server NAME=USER@HOST[:PORT]   a server (repeat for several)
      --tenant [SERVER/]ID:PATH        a tenant and its directory on the server (repeat for several)
      --region NAME               the servers' region (default "default")
      --accept-host-key SHA256:…  pin the key offered only if it has this fingerprint (repeatable)
      --discover                  log in and list the Compose projects and image variables found
                                  (under the tenants' paths, else /srv, /opt and ~); needs a pinned key
      --key FILE                  SSH private key for --discover (default: as deploy: $FLEET_SSH_KEY, …, the agent)
      --yes                       ask nothing (a host key is then pinned only by --accept-host-key)
  -h, --help                      show this help`;

const INIT_LINE =
  'fleet-deploy init --server NAME=USER@HOST[:PORT] [--tenant [SERVER/]ID:PATH]… [--region NAME] ' +
  '[--discover] [--accept-host-key SHA256:…] [--yes] [-r FILE]';

export const INIT_USAGE = `${INIT_LINE}

Writes a starter registry for your servers. For each server it fetches the host key (the connection stops
at the key exchange; nothing logs in), prints its SHA256 fingerprint for you to compare out of band, and
pins it only with your consent: "y" at the prompt on a terminal, or --accept-host-key with that
fingerprint. A key not pinned is left out, and deploys refuse the server until it is. The file is validated
before it is written; an existing file is never overwritten (use add-server / add-tenant).
e.g. fleet-deploy init --server eu-1=deploy@203.0.113.10 --tenant acme:/srv/app/acme --region eu

Options:
${COMMON}`;

const ADD_SERVER_LINE =
  'fleet-deploy add-server --server NAME=USER@HOST[:PORT] [--tenant [SERVER/]ID:PATH]… [--region NAME] ' +
  '[--discover] [--accept-host-key SHA256:…] [-r FILE]';

export const ADD_SERVER_USAGE = `${ADD_SERVER_LINE}

Adds servers to an existing registry, their host keys fetched and pinned as init does.

Options:
${COMMON}`;

export const ADD_TENANT_USAGE = `fleet-deploy add-tenant --tenant [SERVER/]ID:PATH… [-r FILE]

Adds tenants to servers of an existing registry (SERVER/ may be left out when there is one server); each
gets the next free health port to edit.

Options:
${COMMON}`;

export const INIT_OPTIONS = {
  registry: { type: 'string', short: 'r' },
  server: { type: 'string', multiple: true },
  tenant: { type: 'string', multiple: true },
  region: { type: 'string' },
  'accept-host-key': { type: 'string', multiple: true },
  discover: { type: 'boolean' },
  key: { type: 'string' },
  yes: { type: 'boolean' },
} as const;
