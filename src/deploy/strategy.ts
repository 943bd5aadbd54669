/**
 * How a target's release is switched. A strategy knows what a release is for its kind of tenant, how
 * to read the running one, how to fetch, switch to and switch back; the per-target run (target.ts) owns
 * the order, the lock, the health gate, hooks and history. A new way to switch (blue-green behind a
 * proxy, …) is a new file in strategies/, its member of `Strategy` (registry/model.ts) and its case in
 * `strategyFor`; the contract test (__tests__/strategy-contract.test.ts) runs every kind through this interface.
 */
import type { SlotName } from '../registry/model';
import type { Hibernation } from '../remote/containers';
import type { PullLogin } from '../remote/images';
import type { Prepared, PrepareReads } from '../remote/prepare';
import type { Script } from '../remote/shell';
import type { ContainerInfo, ContainerState, TenantInspection } from '../remote/status';
import type { History } from './history';
import type { CrashWatchSpec } from './crash-watch';
import type { Clock } from '../ports';
import type { ServerPulls } from './pulls';
import type { Release } from './result';
import type { TargetShell } from './shell';

/** One registry's login: the host it is for (as `registryHost` names an image's), never sent elsewhere. */
export interface RegistryLogin {
  host: string;
  username: string;
  /** Only ever on stdin. */
  password: string;
}

/** Credentials for the image registries, for a strategy that pulls: each for its own host. */
export interface RegistryCredentials {
  logins: readonly RegistryLogin[];
  /** Keep the login on the server (the engine's own config); else it is removed after the pull. */
  keep: boolean;
}

/** Image variable → the version (tag or digest) of that image, for the images not at the one version. */
export type ImageVersions = Readonly<Record<string, string>>;

/**
 * The release a deploy asks for: one version, and the images named in `versions` at their own. One
 * object, both fields required, so a strategy whose `release` took only the version would not compile
 * (a positional second parameter could be dropped silently; the contract test checks the rest).
 */
export interface ReleaseSpec {
  version: string;
  versions: ImageVersions;
}

/** What `promote` did: a detail for the report, and the downtime users saw through the proxy. */
export interface Promoted {
  detail: string;
  downtimeMs?: number;
}

/** What a strategy may use while it runs. */
export interface StrategyContext {
  shell: TargetShell;
  clock: Clock;
  signal?: AbortSignal;
  /** A pull, and a switch that may pull. */
  pullTimeoutMs: number;
  pullAttempts: number;
  /** Log in to the image registries for the pull. */
  registry?: RegistryCredentials;
  /** The server's pulls, shared by its targets (pulls.ts); absent: each target pulls for itself. */
  pulls?: ServerPulls;
  /** The target's ID, as a shared pull names the target that ran it. */
  targetId?: string;
}

/** A slot of a blue-green tenant in `fleet-deploy status`: the release it holds and its containers' state. */
export interface SlotStatus {
  version?: string;
  refs: Record<string, string>;
  state: ContainerState;
}

/** What a strategy makes of `fleet-deploy status`'s inspection of its tenant. */
export interface StrategyStatus {
  /** The release that serves users (compose: in .env; commands: what `current` prints). */
  version?: string;
  /** The containers that serve users (blue-green: the live slot's); their state is the target's. */
  containers: readonly ContainerInfo[];
  /** The target's state when no containers tell it (the user's commands: running). */
  state?: ContainerState;
  /** Blue-green: the live slot (none yet: the in-place stack serves) and what each slot holds. */
  slots?: { live?: SlotName } & Record<SlotName, SlotStatus>;
}

export interface ReleaseStrategy {
  /** The name of the switch step in reports and dry runs ("update", "deploy"). */
  readonly switchStep: string;
  /** Its part of `prepare`: preflight checks before the lock, and what it reads of the running release. */
  prepareReads(): PrepareReads;
  /** Its part of `fleet-deploy status`'s inspection (one round trip, no lock: src/remote/status.ts). */
  inspect(): Script;
  /** What runs, from that inspection. */
  status(i: TenantInspection): StrategyStatus;
  /** The release that runs now, from what `prepare` read on the server. */
  current(prepared: Prepared): Release;
  /**
   * The release of `spec.version`, with the images named in `spec.versions` at their own version.
   * Its `version` is its first image's (the user's commands: the version of the first image).
   */
  release(spec: ReleaseSpec): Release;
  /** Fetches `next` before anything changes (the pull), filling its image IDs and digests; may return a detail. */
  fetch?(ctx: StrategyContext, next: Release): Promise<void | string>;
  /** True when `next` is what runs already: the deploy then changes nothing. */
  unchanged(current: Release, next: Release): boolean;
  /**
   * Switches to `next`. Calls `switched()` at the point from which a failure needs a switch back
   * (before it, nothing changed). May return a detail for the report.
   */
  switchTo(
    ctx: StrategyContext,
    next: Release,
    current: Release,
    switched: () => void,
  ): Promise<void | string>;
  /** Switches back to `previous` after `failed` did not come up. */
  switchBack(ctx: StrategyContext, previous: Release, failed: Release): Promise<void>;
  /**
   * The port on the server's 127.0.0.1 that the deploy's health gate probes, when `next` is started
   * beside the live release on a port of its own (blue-green: the new slot's); otherwise health.port.
   */
  gatePort?(): number | undefined;
  /**
   * After the gate passed: makes `next` the release users reach (blue-green: switches the proxy and
   * verifies through it). Returns a detail for the report and the downtime the tenant's users saw, as
   * the check through the proxy measured it (0: every probe answered); a strategy with a `gatePort`
   * reports downtime only here, since its gate probed a port no user reaches. A failure here rolls back
   * (`switchBack`).
   */
  promote?(ctx: StrategyContext, next: Release): Promise<Promoted>;
  /**
   * Last, after the post-deploy hooks: retires the release that ran before (blue-green: drains the old
   * slot, then stops it). Never fails the deploy: the new release is live; returns a detail.
   */
  retire?(ctx: StrategyContext): Promise<string>;
  /**
   * What the health gate's crash watch reads (crash-watch.ts): the script listing the release's
   * containers with their restart counts, and the IDs of those that ran before the switch.
   */
  crashWatch?(): CrashWatchSpec;
  /** The script that prints the health state of each of the tenant's containers, when it has containers. */
  containerHealth?(): Script;
  /** How the tenant slept before the deploy (every container paused, or stopped), from `current`. */
  hibernated?(): Hibernation | undefined;
  /** The script that puts it back to sleep that way after the deploy. */
  hibernate?(how: Hibernation): Script;
  /**
   * Whether a container of the tenant's stack runs (from `current`), when the strategy knows its stack
   * (in-place Compose). False: the pre-deploy backup leaves out the database dump, which runs through
   * the containers and could only fail (a first deploy, a stopped or paused tenant).
   */
  stackRunning?(): boolean;
  /** Images a deploy that brought `next` in may remove. */
  prunable(history: History, next: Release, current: Release): string[];
  /** The remote commands of the fetch (logging in with `registry`), the switch, promote and retire, for --dry-run. */
  preview(
    next: Release,
    registry?: RegistryCredentials,
  ): { fetch?: Script; switch: Script; promote?: Script[]; retire?: Script[] };
}

/**
 * The login of a pull: the credentials given for the registry hosts the pull's images name, and no
 * other (a GHCR token never goes to Docker Hub); their passwords on stdin, a line each, in the order of
 * the logins. None: no login.
 */
export function pullLogin(
  registry: RegistryCredentials | undefined,
  hosts: Iterable<string>,
): { login: PullLogin; stdin: string } | undefined {
  if (!registry) return undefined;
  const wanted = new Set(hosts);
  const logins = registry.logins.filter((l) => wanted.has(l.host));
  if (logins.length === 0) return undefined;
  return {
    login: { logins: logins.map(({ host, username }) => ({ host, username })), keep: registry.keep },
    stdin: logins.map((l) => `${l.password}\n`).join(''),
  };
}

/** `text` with every password of the logins given replaced by ***: a registry's error may echo one. */
export function redactPasswords(text: string, registry: RegistryCredentials | undefined): string {
  const passwords = registry?.logins.map((l) => l.password).filter(Boolean) ?? [];
  return passwords.reduce((t, p) => t.split(p).join('***'), text);
}
