/**
 * What every command that works on servers starts with: the registry, the selected targets, the SSH key
 * and trusted host keys (checked like a deploy's), and a connector; and the options they share.
 */
import type { Connector } from '../ports';
import { plannedTargets } from '../fleet/read-status';
import { planDeployment } from '../plan/plan';
import type { Registry, Target } from '../registry/model';
import { SshConnector, type SshOptions } from '../ssh/transport';
import { wholeNumber } from '../values';
import { loadRegistry } from './args';
import { sshSettings } from './deploy';
import type { CliIO } from './io';

export type Values = Record<string, string | boolean | undefined>;

/** The flags of every remote command. */
export const REMOTE_OPTIONS = {
  registry: { type: 'string', short: 'r' },
  select: { type: 'string', short: 's' },
  key: { type: 'string' },
  'known-hosts': { type: 'string' },
  concurrency: { type: 'string', short: 'c' },
} as const;

/** Their help lines, for each command's usage. */
export const REMOTE_HELP = `  -r, --registry FILE   the server registry (default: $FLEET_REGISTRY or servers/production.json)
  -s, --select EXPR     which targets (default: every target)
  -c, --concurrency N   servers worked on at once, one SSH connection each (default 10)
      --key FILE        SSH private key (default: $FLEET_SSH_KEY (the key or its path),
                        $FLEET_SSH_KEY_FILE, else the ssh-agent at $SSH_AUTH_SOCK)
      --known-hosts FILE  trusted host keys besides the registry's pins (default: $FLEET_KNOWN_HOSTS
                        text, else ~/.ssh/known_hosts when not in CI)
  -h, --help            show this help`;

export interface Remote {
  registry: Registry;
  targets: Target[];
  /** target id → its wave in the plan (--waves, when the command takes it; else all are wave 1) */
  waveOf: Map<string, number>;
  connector: Connector;
  concurrency: number;
}

export async function openRemote(values: Values, io: CliIO, ssh: Partial<SshOptions> = {}): Promise<Remote> {
  const registry = await loadRegistry(values, io);
  const plan = planDeployment(registry, {
    select: values.select as string | undefined,
    waves: values.waves as string | undefined,
  });
  const trust = await sshSettings(values, io, registry, plan);
  return {
    registry,
    ...plannedTargets(plan),
    connector: new SshConnector({ ...trust, ...ssh }),
    concurrency: wholeNumber(values.concurrency as string | undefined, '--concurrency', 10),
  };
}
