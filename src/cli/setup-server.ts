/**
 * `fleet-deploy setup-server`: idempotent provisioning of the selected servers over SSH as a privileged
 * user (root, or a user with password-less sudo): the deploy user, its engine group and key; each
 * selected tenant's directory, compose file, `.env` (secrets made on the server, never sent back) and
 * optional systemd unit. Every step says unchanged, changed or failed; a second run changes nothing.
 * Prints the host key each server offered, to pin in the registry.
 */
import { eachServer } from '../fleet/each-server';
import { describe } from '../deploy/shell';
import { ConfigurationError } from '../errors';
import { fingerprintOf } from '../registry/hostkey';
import type { Target } from '../registry/model';
import { USER } from '../registry/patterns';
import { sanitizeLine } from '../report/sanitize';
import { plural, table } from '../report/table';
import type { Script } from '../remote/shell';
import { asRoot, parseSteps, secretsOf, setupServer, setupTenant, type SetupStep } from '../remote/setup';
import { readUserFile, type CliIO } from './io';
import { DEFAULT_REGISTRY, SETTINGS } from '../settings';
import { openRemote, remoteFlags, REMOTE_OPTIONS, type Values } from './remote';

export const SETUP_USAGE = `fleet-deploy setup-server --admin-key FILE --deploy-key-pub FILE [--select EXPR] [options]

Provisions the selected servers and tenants, logging in as a privileged user to each server's host and
port from the registry (host keys checked as for a deploy). Safe to run again: each step looks before it
changes, and reports unchanged, changed or failed.

  per server: the deploy user (the registry's "user"; home, bash, no password — key login only), its
              membership of the container engine's group, its authorized key
  per tenant: its directory (owned by the deploy user; a relative path is under its home), the compose
              file (--compose-source; replaced when it differs), a .env from --env-template when there
              is none — an existing .env is never touched — and with --systemd a unit that runs
              "compose up -d" at boot (enabled where systemd runs)

In the template, {{secret:NAME:LENGTH}} becomes LENGTH random letters and digits made on the server
(the same NAME twice gets the same value); {tenant} and {server} are filled in. Secrets never leave the
server: they are not printed, logged or sent back. The new .env is mode 0600, owned by the deploy user.

Options:
      --admin-user USER     who logs in to provision (default root; another user runs sudo -n)
      --admin-key FILE      that user's SSH private key (required)
      --deploy-key-pub FILE the deploy user's public key (required)
      --group NAME          the group that gives access to the container engine (default docker)
      --compose-source FILE the compose file to copy into each tenant directory: the first install (later changes
                            ship with releases, registry "files": docs/release-channels.md)
      --env-template FILE   the .env template for tenants that have no .env yet
      --systemd             write a systemd unit per tenant stack
      --systemd-dir DIR     where the units go (default /etc/systemd/system)
  -r, --registry FILE       the server registry (default: $FLEET_REGISTRY or ${DEFAULT_REGISTRY})
  -s, --select EXPR         which targets (default: every target)
  -c, --concurrency N       servers worked on at once (default ${SETTINGS.serverConcurrency.default})
      --known-hosts FILE    trusted host keys besides the registry's pins (a new server's, checked by you)
  -h, --help                show this help`;

const { key: _key, ...remote } = REMOTE_OPTIONS;
export const SETUP_OPTIONS = {
  ...remote,
  'admin-user': { type: 'string' },
  'admin-key': { type: 'string' },
  'deploy-key-pub': { type: 'string' },
  group: { type: 'string' },
  'compose-source': { type: 'string' },
  'env-template': { type: 'string' },
  systemd: { type: 'boolean' },
  'systemd-dir': { type: 'string' },
} as const;

/** Compose files and templates travel inside the command line, which sshd hands to one shell argument. */
const MAX_FILE = 100 * 1024;

const problem = (source: string, message: string, hint?: string) =>
  new ConfigurationError([{ path: [], source, message, ...(hint ? { hint } : {}) }]);

function name(values: Values, flag: string, fallback: string): string {
  const v = (values[flag] as string | undefined) ?? fallback;
  if (!USER.re.test(v)) throw problem(`--${flag}`, `${JSON.stringify(v)} is not ${USER.valid}`);
  return v;
}

async function optionalFile(values: Values, io: CliIO, flag: string): Promise<string | undefined> {
  const path = values[flag] as string | undefined;
  if (path === undefined) return undefined;
  const text = await readUserFile(io, path, `--${flag}`);
  if (text.length > MAX_FILE) throw problem(`--${flag}`, `${path} is larger than ${MAX_FILE / 1024} KiB`);
  if (text.includes('\0')) throw problem(`--${flag}`, `${path} is not a text file`);
  return text;
}

interface Inputs {
  adminUser: string;
  group: string;
  publicKey: string;
  compose?: string;
  envTemplate?: string;
  systemdDir?: string;
}

async function readInputs(values: Values, io: CliIO): Promise<Inputs> {
  if (!values['admin-key'])
    throw problem('--admin-key', 'is required', 'the private key of the user that provisions (root)');
  if (!values['deploy-key-pub'])
    throw problem('--deploy-key-pub', 'is required', "the deploy user's public key, e.g. deploy_ed25519.pub");
  const publicKey = (await readUserFile(io, values['deploy-key-pub'] as string, '--deploy-key-pub')).trim();
  if (!/^(ssh-|ecdsa-|sk-)[\w@.-]+ [A-Za-z0-9+/]+=* ?[^\r\n]*$/.test(publicKey))
    throw problem('--deploy-key-pub', 'is not one public key line ("ssh-ed25519 AAAA… comment")');
  const envTemplate = await optionalFile(values, io, 'env-template');
  const secrets = envTemplate === undefined ? [] : secretsOf(envTemplate);
  if (typeof secrets === 'string') throw problem('--env-template', secrets, 'write {{secret:NAME:48}}');
  const compose = await optionalFile(values, io, 'compose-source');
  const systemdDir = (values['systemd-dir'] as string | undefined) ?? '/etc/systemd/system';
  if (!/^\/[\w./-]*$/.test(systemdDir))
    throw problem('--systemd-dir', `${systemdDir} is not an absolute path`);
  return {
    adminUser: name(values, 'admin-user', 'root'),
    group: name(values, 'group', 'docker'),
    publicKey,
    ...(compose !== undefined ? { compose } : {}),
    ...(envTemplate !== undefined ? { envTemplate } : {}),
    ...(values.systemd ? { systemdDir } : {}),
  };
}

const fill = (template: string, t: Target) =>
  template.replaceAll('{tenant}', t.tenant.id).replaceAll('{server}', t.server.name);

/** The host key line a connection accepted, and its fingerprint. */
function keyLine(blob: Buffer): string {
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  return `${type} ${blob.toString('base64')}  (${fingerprintOf(blob)})`;
}

export async function runSetupServer(values: Values, io: CliIO): Promise<number> {
  const inputs = await readInputs(values, io);
  const hostKeys = new Map<string, string>();
  const { targets, connector, concurrency } = await openRemote(
    remoteFlags({ ...values, key: values['admin-key'] }),
    io,
    {
      onHostKey: (server, key) => hostKeys.set(server, keyLine(key)),
    },
  );
  const done = new Set<string>();
  const results = await eachServer(
    targets,
    connector,
    async (t, transport) => {
      const run = async (script: Script) => {
        const r = await transport.exec(asRoot(inputs.adminUser, script), { timeoutMs: 120_000 });
        const steps = parseSteps(r.stdout);
        if (r.code !== 0 && !steps.length) throw new Error(describe(r));
        return steps;
      };
      const server = done.has(t.server.name) ? [] : await serverSteps(t, inputs, run);
      done.add(t.server.name);
      return { server, tenant: await run(tenantScript(t, inputs)) };
    },
    { concurrency, as: (s) => ({ ...s, user: inputs.adminUser }) },
  );
  return report(targets, results, hostKeys, io);
}

function serverSteps(t: Target, i: Inputs, run: (s: Script) => Promise<SetupStep[]>) {
  return run(setupServer({ user: t.server.user, group: i.group, publicKey: i.publicKey }));
}

function tenantScript(t: Target, i: Inputs): Script {
  return setupTenant({
    user: t.server.user,
    tenant: t.tenant,
    ...(i.compose !== undefined ? { compose: i.compose } : {}),
    ...(i.envTemplate !== undefined ? { envTemplate: fill(i.envTemplate, t) } : {}),
    ...(i.systemdDir !== undefined ? { systemdDir: i.systemdDir } : {}),
  });
}

type Results = Awaited<ReturnType<typeof eachServer<{ server: SetupStep[]; tenant: SetupStep[] }>>>;

function report(
  targets: readonly Target[],
  results: Results,
  hostKeys: Map<string, string>,
  io: CliIO,
): number {
  const rows: string[][] = [];
  const counts = { unchanged: 0, changed: 0, failed: 0 };
  const add = (who: string, s: SetupStep) => {
    counts[s.result]++;
    rows.push([who, s.step, s.result, sanitizeLine(s.detail)]);
  };
  for (const t of targets) {
    const r = results.get(t.id)!;
    if (!r.ok) {
      counts.failed++;
      rows.push([t.id, 'connect', 'failed', sanitizeLine(r.error)]);
      continue;
    }
    for (const s of r.value.server) add(t.server.name, s);
    for (const s of r.value.tenant) add(t.id, s);
  }
  io.stdout(`${table(['WHERE', 'STEP', 'RESULT', 'DETAIL'], rows)}\n`);
  const servers = [...new Set(targets.map((t) => t.server.name))];
  for (const s of servers)
    if (hostKeys.has(s)) io.stdout(`${s}: host key to pin (servers[].hostKey): ${hostKeys.get(s)}\n`);
  io.stdout(
    counts.changed || counts.failed
      ? `${plural(rows.length, 'step')}: ${counts.changed} changed, ${counts.unchanged} unchanged, ${counts.failed} failed\n`
      : `${plural(rows.length, 'step')}, all unchanged: nothing to do\n`,
  );
  return counts.failed ? 1 : 0;
}
