/**
 * The in-place Compose strategy (the default): a release is the image references of the tenant's
 * image variables in `.env`. Pull every image first; then switch `.env` atomically and `compose up -d`
 * in one round trip; switch back by writing the previous references and `up -d` again.
 */
import type { Image, Target, Tenant } from '../../registry/model';
import { IMAGE_REF } from '../../registry/patterns';
import { imageRef, registryHost, versionOf } from '../../registry/release';
import { COMPOSE_CHECKED_MARK, projectOf } from '../../remote/compose';
import {
  containerHealth,
  containerRuns,
  hibernate,
  type Hibernation,
  hibernationOf,
} from '../../remote/containers';
import { LOGIN_FAILED, SWITCH_FAILED } from '../../remote/exit-codes';
import { parseImages, pullImages } from '../../remote/images';
import { composeReads, type PrepareReads, type Prepared } from '../../remote/prepare';
import { parseConfigHash, update } from '../../remote/update';
import type { Script } from '../../remote/shell';
import { composeInspection, type TenantInspection } from '../../remote/status';
import type { CrashWatchSpec } from '../crash-watch';
import { composeApiVersion } from '../engine-api';
import type { PulledImage } from '../pulls';
import type { History } from '../history';
import type { Release } from '../result';
import { describe, StepFailure } from '../shell';
import {
  pullLogin,
  redactPasswords,
  type RegistryCredentials,
  type ReleaseSpec,
  type ReleaseStrategy,
  type StrategyContext,
  type StrategyStatus,
} from '../strategy';

export class ComposeStrategy implements ReleaseStrategy {
  readonly switchStep = 'update';
  /** The Compose project as derived on the server by `prepare` (the registry's when it sets one). */
  private project?: string;
  /** How the tenant slept when `prepare` read it, and its paused containers (woken for the switch). */
  private asleep?: Hibernation;
  private paused: string[] = [];
  /** Every container of the project when `prepare` read it (the crash watch counts new ones from zero). */
  private before: string[] = [];
  private running = false;
  /** The image references in .env when `prepare` read it. */
  private runningRefs: Readonly<Record<string, string>> = {};

  constructor(private readonly target: Target) {}

  private get tenant() {
    return this.target.tenant;
  }

  prepareReads(): PrepareReads {
    return composeReads(this.tenant);
  }

  inspect(): Script {
    return composeInspection(this.tenant);
  }

  /** The release in .env and the project's containers. */
  status(i: TenantInspection): StrategyStatus {
    const first = i.env[this.tenant.images[0]?.variable ?? ''];
    return { ...(first ? { version: versionOf(first) } : {}), containers: i.containers };
  }

  /**
   * The release in .env. Each reference is checked like user input: a value that is not an image
   * reference could neither be rolled back to nor safely written again, so the deploy stops here.
   */
  current(p: Prepared): Release {
    if (!p.project)
      throw new StepFailure(
        'prepare',
        `could not tell the Compose project of ${this.tenant.path} (from COMPOSE_PROJECT_NAME, the compose file's name: ` +
          'or the directory); set compose.project in the registry',
      );
    this.project = p.project;
    this.asleep = hibernationOf(p.containers);
    this.paused = p.containers.filter((c) => c.state === 'paused').map((c) => c.id);
    this.before = p.containers.map((c) => c.id);
    // (a server that lists bare image IDs gives no states: those are running containers)
    this.running = p.containers.length
      ? p.containers.some((c) => c.state === 'running')
      : p.running.length > 0;
    const refs: Record<string, string> = {};
    for (const i of this.tenant.images) {
      const ref = p.env[i.variable];
      if (ref === undefined || ref === '') continue;
      if (!IMAGE_REF.test(ref))
        throw new StepFailure(
          'prepare',
          `${i.variable} in ${this.tenant.path}/.env is ${JSON.stringify(ref)}, not an image reference ` +
            '(repository:tag or repository@sha256:…): it could not be rolled back to, so nothing is deployed over it; fix that line',
        );
      refs[i.variable] = ref;
    }
    this.runningRefs = refs;
    const first = p.env[this.tenant.images[0]!.variable];
    return {
      refs,
      ...(first ? { version: versionOf(first) } : {}),
      imageIds: p.running,
      digests: [],
      project: p.project,
    };
  }

  /** Each image at its version in `versions`, else at `version`; the release's version is the first image's. */
  release({ version, versions }: ReleaseSpec): Release {
    const versionOf = (i: Image) => versions[i.variable] ?? version;
    const refs = Object.fromEntries(this.tenant.images.map((i) => [i.variable, imageRef(i, versionOf(i))]));
    return { refs, version: versionOf(this.tenant.images[0]!), imageIds: [], digests: [] };
  }

  /** Pulls `next`'s images, or waits for the same pull another tenant of the server started (pulls.ts). */
  async fetch(ctx: StrategyContext, next: Release): Promise<string | void> {
    // A release that names other images will be switched to: the server's first such target asks the
    // engine's API version for the switch now, beside the pull, not in line before its `up`.
    if (Object.entries(next.refs).some(([k, v]) => this.runningRefs[k] !== v))
      void composeApiVersion(ctx.shell, this.tenant);
    const refs = Object.values(next.refs);
    const pull = () => this.pull(ctx, refs);
    const shared = ctx.pulls && ctx.targetId ? ctx.pulls.share(refs, ctx.targetId, pull) : { images: pull() };
    for (const img of await shared.images) {
      next.imageIds.push(img.id);
      next.digests.push(...img.digests);
    }
    if (shared.sharedWith) return `shared: pulled once on this server, by ${shared.sharedWith}`;
  }

  private async pull(ctx: StrategyContext, refs: string[]): Promise<PulledImage[]> {
    const { login, stdin } = this.login(ctx.registry) ?? {};
    for (let attempt = 1; ; attempt++) {
      const r = await ctx.shell.exec(pullImages(this.tenant, refs, login), ctx.pullTimeoutMs, stdin);
      if (r.code === 0) return parseImages(r.stdout);
      const why = redactPasswords(describe(r), ctx.registry);
      if (r.code === LOGIN_FAILED) throw new StepFailure('pull', why);
      // an image that does not exist or may not be read will not appear on a retry: fail at once
      const permanent = PERMANENT_PULL_ERROR.test(why);
      if (permanent || attempt >= ctx.pullAttempts)
        throw new StepFailure(
          'pull',
          `pull ${refs.join(', ')} failed${permanent ? '' : ` after ${attempt} attempts`}: ${why}${login ? '' : credentialsHint(why)}`,
        );
      await ctx.clock.sleep(1000 * 2 ** (attempt - 1), ctx.signal);
    }
  }

  /** The login of the pull: the credentials of the registry hosts the tenant's images name. */
  private login(registry: RegistryCredentials | undefined) {
    return pullLogin(
      registry,
      this.tenant.images.map((i) => registryHost(i.repository)),
    );
  }

  unchanged(current: Release, next: Release): boolean {
    return (
      Object.entries(next.refs).every(([k, v]) => current.refs[k] === v) &&
      next.imageIds.every((id) => current.imageIds.includes(id))
    );
  }

  async switchTo(
    ctx: StrategyContext,
    next: Release,
    current: Release,
    switched: () => void,
  ): Promise<string | void> {
    // Noted in the lock first, so a deploy cut off here can be told and mended later (`unlock`).
    const note = JSON.stringify({
      from: current.version ?? null,
      to: next.version,
      fromRefs: current.refs,
      toRefs: next.refs,
    });
    const only = changedServices(this.tenant, current, next);
    const apiVersion = await composeApiVersion(ctx.shell, this.tenant);
    const r = await ctx.shell.exec(
      update(this.tenant, next.refs, {
        note,
        apiVersion,
        // paused containers are woken first: Compose recreates only what changed, and the rest must answer the gate
        unpause: this.paused,
        ...(this.project ? { configHash: { project: this.project } } : {}),
        ...(only ? { only } : {}),
      }),
      ctx.pullTimeoutMs,
    );
    if (r.code === SWITCH_FAILED)
      throw new StepFailure(
        'update',
        `switching the image in ${this.tenant.path}/.env failed: ${describe(r)}`,
      );
    switched(); // from here on a failure rolls back; .env is the old or the new file, never a mix
    if (r.code !== 0) throw new StepFailure('update', `compose up failed: ${describe(r)}`);
    const hash = parseConfigHash(r.stdout);
    if (hash) next.configHash = hash;
    if (r.stdout.includes(`${COMPOSE_CHECKED_MARK}\n`))
      return 'compose files checked (changed since their last check)';
  }

  async switchBack(ctx: StrategyContext, previous: Release): Promise<void> {
    if (Object.keys(previous.refs).length === 0)
      throw new StepFailure('rollback', 'no previous release in .env to roll back to');
    // The failed release's containers go first, by force: one that crash-loops under a restart policy
    // would otherwise make `up -d` fail with "container state improper" and leave two containers.
    // Compose asks the engine's API version itself here (pinApiVersion: the way back does not rely on it).
    const replace = { project: previous.project ?? this.project ?? projectOf(this.tenant) };
    await ctx.shell.must('rollback', update(this.tenant, previous.refs, { replace }), ctx.pullTimeoutMs);
  }

  crashWatch(): CrashWatchSpec {
    return {
      script: containerRuns(this.tenant, this.project ?? projectOf(this.tenant)),
      before: this.before,
    };
  }

  /** The remote script that lists the containers' own health states. */
  containerHealth(): Script {
    return containerHealth(this.tenant, this.project);
  }

  hibernated(): Hibernation | undefined {
    return this.asleep;
  }

  stackRunning(): boolean {
    return this.running;
  }

  hibernate(how: Hibernation): Script {
    return hibernate(this.tenant, this.project ?? projectOf(this.tenant), how);
  }

  prunable(history: History, next: Release, current: Release): string[] {
    return history.prunable(
      next,
      current,
      this.tenant.keepReleases,
      this.tenant.images.map((i) => i.repository),
    );
  }

  preview(next: Release, registry?: RegistryCredentials) {
    return {
      fetch: pullImages(this.tenant, Object.values(next.refs), this.login(registry)?.login),
      switch: update(this.tenant, next.refs, { configHash: { project: projectOf(this.tenant) } }),
    };
  }
}

/** A command's output with the passwords cut out, should a registry or an engine ever echo one back. */
/**
 * What a registry or engine says of an image that is not there or not readable (docker, podman,
 * containerd): no retry brings it. Anything else (a timeout, a reset, a 5xx) is retried.
 */
const PERMANENT_PULL_ERROR = new RegExp(
  [
    'manifest unknown',
    'manifest for \\S+ not found',
    'not found: manifest',
    'name unknown',
    'repository does not exist',
    'pull access denied',
    'unauthorized',
    'authentication required',
    'invalid reference format',
  ].join('|'),
  'i',
);

/** What to do about a pull that a registry refused for want of credentials. */
function credentialsHint(why: string): string {
  return /unauthorized|authentication required|denied|no basic auth credentials|401/i.test(why)
    ? ' (the registry wants credentials: set FLEET_REGISTRY_HOST, FLEET_REGISTRY_USERNAME and FLEET_REGISTRY_PASSWORD ' +
        'for the CLI, or the registry-host, registry-username and registry-password inputs, for the host of that image; ' +
        'see docs/deploy.md)'
    : '';
}

/**
 * The services to restart when switching from `current` to `next`: those running an image whose
 * reference changed. Undefined (restart every service, as before) unless that is certain: some image
 * names no service, the running release lacks a reference (a first deploy starts everything), or no
 * reference changed (a re-pushed tag: which image moved is not known). `compose.services` still bounds it.
 */
export function changedServices(t: Tenant, current: Release, next: Release): string[] | undefined {
  if (t.images.some((i) => !i.services || !current.refs[i.variable])) return undefined;
  const changed = t.images.filter((i) => next.refs[i.variable] !== current.refs[i.variable]);
  if (changed.length === 0) return undefined;
  const services = [...new Set(changed.flatMap((i) => i.services!))];
  const bound = t.compose.services;
  const only = bound ? services.filter((s) => bound.includes(s)) : services;
  return only.length > 0 ? only : undefined;
}
