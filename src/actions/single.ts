/**
 * One server without a registry: the target is given by inputs — typically from repository secrets — and
 * becomes a one-server, one-tenant registry, validated by the same schema, so a team can start with one
 * server and move to a registry file later without changing tools.
 */
import { readFile } from 'node:fs/promises';
import { ConfigurationError, type Problem } from '../errors';
import { parseRegistry, type Registry } from '../registry';
import { DEFAULT_REGISTRY, setting, SETTINGS } from '../settings';
import { actionInputs } from './inputs';

type SingleRow =
  | 'host'
  | 'sshUser'
  | 'sshPort'
  | 'hostKey'
  | 'path'
  | 'composeCommand'
  | 'healthPort'
  | 'healthUrl'
  | 'healthPath';
const number = (v: string) => (/^\d+$/.test(v) ? Number(v) : v);
/** The settings row of each input (src/settings.ts) → the registry path it sets, so errors name the input. */
const FIELDS = (
  [
    ['host', 'servers.0.host'],
    ['sshUser', 'servers.0.user'],
    ['sshPort', 'servers.0.port', number],
    ['hostKey', 'servers.0.hostKey'],
    ['path', 'servers.0.tenants.0.path'],
    ['composeCommand', 'servers.0.tenants.0.compose.command'],
    ['healthPort', 'servers.0.tenants.0.health.port', number],
    ['healthUrl', 'servers.0.tenants.0.health.url'],
    ['healthPath', 'servers.0.tenants.0.health.path'],
  ] as Array<[SingleRow, string, ((v: string) => unknown)?]>
).map(([row, path, convert]) => [SETTINGS[row].input!, path, convert ?? ((v: string) => v), row] as const);

export function singleServerRequested(): boolean {
  return setting(actionInputs, 'host') !== undefined;
}

export function registryFromInputs(): Registry {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- built key by key, then checked by the schema
  const raw: any = {
    servers: [{ name: 'server', region: 'default', tenants: [{ id: 'app', images: [{}] }] }],
  };
  for (const [, path, convert, row] of FIELDS) {
    const v = setting(actionInputs, row);
    if (v === undefined) continue;
    const keys = path.split('.');
    let o = raw;
    for (const k of keys.slice(0, -1)) o = o[k] ??= {};
    o[keys.at(-1)!] = convert(v);
  }
  raw.servers[0].tenants[0].images[0] = {
    variable: setting(actionInputs, 'imageVariable'),
    repository: setting(actionInputs, 'imageRepository') ?? '',
  };
  try {
    return parseRegistry(JSON.stringify(raw), 'inputs');
  } catch (e) {
    if (!(e instanceof ConfigurationError)) throw e;
    const byPath = new Map(FIELDS.map(([input, path]) => [path, input]));
    byPath.set('servers.0.tenants.0.images.0.variable', 'image-variable');
    byPath.set('servers.0.tenants.0.images.0.repository', 'image-repository');
    throw new ConfigurationError(
      e.problems.map((p): Problem => {
        const input = byPath.get(p.path.join('.'));
        const missing = /has no (health check|path)/.exec(p.message);
        const named =
          input ?? (missing ? (missing[1] === 'path' ? 'path' : 'health-port" or "health-url') : undefined);
        return {
          path: [],
          source: named ? `input "${named}"` : 'inputs',
          message: p.message,
          ...(p.hint ? { hint: p.hint } : {}),
        };
      }),
    );
  }
}

/** The registry of an action: the file named by `registry`, or the single server given by inputs. */
export async function actionRegistry(row: 'registry' | 'analysisRegistry' = 'registry'): Promise<Registry> {
  if (singleServerRequested()) return registryFromInputs();
  const input = SETTINGS[row].input;
  // the analysis registry has no default: the gate reads it only when given
  const path = setting(actionInputs, row) ?? DEFAULT_REGISTRY;
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${input}"`,
        message: `cannot read ${JSON.stringify(path)}: ${(e as NodeJS.ErrnoException).code ?? e}`,
        hint:
          'check out the repository first (actions/checkout) and give the path from its root, or give a ' +
          'single server with the host, path, image-repository and health-port inputs',
      },
    ]);
  }
  return parseRegistry(source, path);
}
