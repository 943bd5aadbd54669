/** The registry after validation, defaults and templating: what planning and deploying work on. */
import type { Analysis } from '../analysis/model';
import type { PinnedHostKey } from './hostkey';
import type { composeCommands } from './schema';

export type ComposeCommand = (typeof composeCommands)[number];

export interface Image {
  /** Variable in the tenant's .env, e.g. APP_IMAGE. */
  variable: string;
  /** Repository without tag, e.g. ghcr.io/acme/app. */
  repository: string;
  /** The Compose services that run it (registry `service`); absent: unknown, so all are restarted. */
  services?: readonly string[];
}

export interface HealthCheck {
  /** Probed through the SSH connection on the server's 127.0.0.1; absent when `url` is used. */
  port?: number;
  path: string;
  /** Probed from the runner; may hold {version}. */
  url?: string;
  expectStatus: number;
  bodyIncludes?: string;
  json?: Readonly<Record<string, string | number | boolean>>;
  intervalMs: number;
  timeoutMs: number;
  deadlineMs: number;
  successes: number;
  containerHealth: boolean;
}

export interface Hook {
  run: string;
  once: boolean;
  timeoutMs: number;
}

export interface Hooks {
  preDeploy: readonly Hook[];
  postDeploy: readonly Hook[];
  onRollback: readonly Hook[];
}

export interface Backup {
  paths: readonly string[];
  keepDays: number;
  /** Only the newest N archives are kept, when set. */
  keepCount?: number;
  command?: string;
  /** A database dump through the tenant's containers: its stdout goes into the archive as `file`. */
  dump?: { command: string; restore?: string; file: string };
}

/** A file or directory of the caller's repository shipped with each release (files.ts). */
export interface ShippedFile {
  /** Relative to the repository's root; a directory ends in "/". */
  from: string;
  /** Relative to the tenant directory; a directory ends in "/". */
  to: string;
  /** The expected sha256 of the file as read (before templating). */
  sha256?: string;
  template: boolean;
  /** JSON path of this entry, for messages. */
  at: ReadonlyArray<string | number>;
}

/** A variable of templated files: a value, or one from the runner's environment (secret unless said). */
export type FileVariable = { value: string } | { env: string; secret: boolean };

export interface TenantFiles {
  ship: readonly ShippedFile[];
  variables: Readonly<Record<string, FileVariable>>;
}

/** The in-place switch (the default): the image variables in .env, then `compose up -d`. */
export interface InPlace {
  kind: 'in-place';
}

/** A deploy by the user's own commands instead of Compose. */
export interface Commands {
  kind: 'commands';
  deploy: string;
  rollback?: string;
  current: string;
}

/** The reverse proxy in front of a blue-green tenant's slots. */
export type Proxy =
  | { kind: 'flag-file' }
  | { kind: 'caddy'; adminPort: number; route: string }
  | { kind: 'nginx'; upstreamFile: string; check: string; reload: string }
  | { kind: 'command'; switch: string; current: string };

export const SLOTS = ['blue', 'green'] as const;
export type SlotName = (typeof SLOTS)[number];

/** Two slots behind a proxy: the new release starts beside the live one. */
export interface BlueGreen {
  kind: 'blue-green';
  slots: Readonly<Record<SlotName, { port: number }>>;
  portVariable: string;
  proxy: Proxy;
  drainTimeoutMs: number;
}

/**
 * How a tenant's release is switched: one member per kind, each deployed by its own file in
 * src/deploy/strategies/ (`strategyFor` switches on `kind`, exhaustively).
 */
export type Strategy = InPlace | Commands | BlueGreen;
export type StrategyKind = Strategy['kind'];

/** Every kind of `Strategy`, as a list (a kind missing here or not in the union does not compile). */
export const STRATEGY_KINDS = Object.keys({
  'in-place': true,
  commands: true,
  'blue-green': true,
} satisfies Record<StrategyKind, true>) as StrategyKind[];

export interface Tenant {
  id: string;
  path: string;
  compose: {
    files: readonly string[];
    command: ComposeCommand;
    project?: string;
    services?: readonly string[];
  };
  images: readonly Image[];
  health: HealthCheck;
  hooks: Hooks;
  /** Files shipped with each release (absent: none; the release is the images only). */
  files?: TenantFiles;
  backup?: Backup;
  strategy: Strategy;
  keepReleases: number;
  minFreeDiskMb: number;
  /** A deploy to a paused or stopped tenant puts it back afterwards ("restore") or leaves it running ("wake"). */
  hibernated: 'restore' | 'wake';
  ring: string;
  labels: Readonly<Record<string, string>>;
  /** JSON path of this tenant in the registry file, for messages. */
  at: ReadonlyArray<string | number>;
}

export interface JumpHost {
  host: string;
  port: number;
  user: string;
  hostKeys: readonly PinnedHostKey[];
}

export interface Server {
  name: string;
  host: string;
  port: number;
  user: string;
  hostKeys: readonly PinnedHostKey[];
  region: string;
  labels: Readonly<Record<string, string>>;
  jump?: JumpHost;
  tenants: readonly Tenant[];
  at: ReadonlyArray<string | number>;
}

export interface Registry {
  /** Where it was read from, for messages. */
  source: string;
  /** Ring names in deploy order. */
  rings: readonly string[];
  servers: readonly Server[];
  /** Checks between waves (`rollout.analysis`), when the registry has them. */
  analysis?: Analysis;
}

/** One tenant on one server: the unit that is deployed, locked, health-gated and rolled back. */
export interface Target {
  /** "server/tenant" */
  id: string;
  server: Server;
  tenant: Tenant;
  /** Server labels overridden by tenant labels. */
  labels: Readonly<Record<string, string>>;
}

export function targetsOf(registry: Registry): Target[] {
  const out: Target[] = [];
  for (const server of registry.servers) {
    for (const tenant of server.tenants) {
      out.push({
        id: `${server.name}/${tenant.id}`,
        server,
        tenant,
        labels: { ...server.labels, ...tenant.labels },
      });
    }
  }
  return out;
}
