/**
 * What every command that works on servers starts with: the registry, the selected targets, the SSH key
 * and trusted host keys (checked like a deploy's), and a connector; and the flags they share (the settings
 * table's REMOTE_FLAGS).
 */
import type { Connector } from '../ports';
import { plannedTargets } from '../fleet/read-status';
import { planDeployment } from '../plan/plan';
import type { Registry, Target } from '../registry/model';
import {
  flagOptions,
  fromFlags,
  optionsHelp,
  REMOTE_FLAGS,
  remoteSettings,
  type RemoteSettings,
} from '../settings';
import { SshConnector, type SshOptions } from '../ssh/transport';
import { loadRegistry } from './args';
import { sshSettings } from './deploy';
import type { CliIO } from './io';

export type Values = Record<string, string | boolean | undefined>;

/** The flags of every remote command. */
export const REMOTE_OPTIONS = flagOptions(REMOTE_FLAGS);

/** A remote command's "Options:" lines: its own flags (rows of the settings table), then the shared ones. */
export const remoteHelp = (own: Parameters<typeof optionsHelp>[0] = []) =>
  optionsHelp([...own, ...REMOTE_FLAGS]);

export interface Remote {
  registry: Registry;
  targets: Target[];
  /** target id → its wave in the plan (--waves, when the command takes it; else all are wave 1) */
  waveOf: Map<string, number>;
  connector: Connector;
  concurrency: number;
}

/** The flags of a remote command, resolved once (checked, defaults applied). */
export const remoteFlags = (values: Values): RemoteSettings => remoteSettings(fromFlags(values));

export async function openRemote(
  settings: RemoteSettings,
  io: CliIO,
  ssh: Partial<SshOptions> = {},
): Promise<Remote> {
  const registry = await loadRegistry(settings, io);
  const plan = planDeployment(registry, { select: settings.select, waves: settings.waves });
  const trust = await sshSettings(settings, io, registry, plan);
  return {
    registry,
    ...plannedTargets(plan),
    connector: new SshConnector({ ...trust, ...ssh }),
    concurrency: settings.concurrency,
  };
}
