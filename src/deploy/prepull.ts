/**
 * Pre-pull: while wave N runs, gates and soaks, the images of wave N+1 are pulled on their servers, so
 * that wave starts with its images present. It starts at wave N's first successful pull (the release is
 * then known to be pullable; with wave N's own images pre-pulled, that is at once; see `watch`), runs at
 * most `concurrency` servers at once, one script per server and set of image references, over the
 * server's one connection, and holds no lock. With
 * `prePullWaves` k, the waves N+1 … N+k start then (all later waves: from the first wave on), queued in
 * wave order, so a pull longer than one wave's gate and soak is hidden by several. A pre-pull
 * never changes what runs (src/remote/prepull.ts), never fails the deploy: a disk with less than
 * `prePullMinFreeMb` free stops it on that server with a warning, and a failed one is a warning too (the
 * wave's own pull then does the work). A server's images are pre-pulled once in the rollout, for the
 * earliest wave that needs them there (never where wave 1 pulls them); images a wave's own pull already
 * fetched, ahead of a pre-pull still queued, are skipped.
 * A rollout that stops leaves what was pulled to the usual retention (`prune`).
 */
import type { Plan } from '../plan/plan';
import type { Target } from '../registry/model';
import { registryHost } from '../registry/release';
import { parsePrePull, prePullImages } from '../remote/prepull';
import type { Clock } from '../ports';
import { composeApiVersion } from './engine-api';
import type { ServerPulls } from './pulls';
import { describe, TargetShell, type ServerSession } from './shell';
import { pullLogin, redactPasswords, type ImageVersions, type RegistryCredentials } from './strategy';
import { strategyFor } from './strategies';

export interface PrePullOptions {
  version: string;
  versions?: ImageVersions;
  registry?: RegistryCredentials;
  /** A rollback takes each target's own previous release: nothing is known to pre-pull. */
  rollback?: unknown;
  concurrency: number;
  pullTimeoutMs: number;
  prePullMinFreeMb: number;
  /** How many waves ahead (1: the next; Infinity: all later). Default 1. */
  prePullWaves?: number;
}

/** One pre-pull: a server's images for a later wave. */
export interface PrePullJob {
  /** The wave whose images these are; pulled while the wave before it runs. */
  wave: number;
  server: string;
  refs: string[];
  /** The target whose tenant directory and compose command the script uses. */
  target: Target;
}

export interface PrePullEvent {
  wave: number;
  server: string;
  refs: string[];
  status: 'pulled' | 'skipped' | 'failed';
  ms: number;
  /** Why it was skipped or failed: a warning, never a failure of the deploy. */
  detail?: string;
}

/**
 * What pre-pulls before each wave: per server, the distinct image references of its targets (Compose
 * tenants), once in the rollout — at the earliest wave that needs them there; none where wave 1 pulls them.
 */
export function prePullJobs(
  plan: Plan,
  options: Pick<PrePullOptions, 'version' | 'versions' | 'rollback'>,
): PrePullJob[] {
  if (options.rollback) return [];
  const jobs: PrePullJob[] = [];
  const seen = new Set<string>();
  for (const wave of plan.plan) {
    for (const t of wave.targets) {
      const strategy = strategyFor(t);
      if (!strategy.fetch) continue; // nothing to pull: the user's commands own their images
      const refs = Object.values(
        strategy.release({ version: options.version, versions: options.versions ?? {} }).refs,
      );
      const key = `${t.server.name}\n${[...refs].sort().join('\n')}`;
      if (refs.length === 0 || seen.has(key)) continue;
      seen.add(key);
      if (wave.index > 1) jobs.push({ wave: wave.index, server: t.server.name, refs, target: t });
    }
  }
  return jobs;
}

export interface PrePullPorts {
  sessions: ReadonlyMap<string, ServerSession>;
  pulls: (server: string) => ServerPulls | undefined;
  /** The switches to come share the server's sessions: ask the engine's API version beside the pre-pull. */
  askApiVersion?: boolean;
  clock: Clock;
  signal?: AbortSignal;
  onPrePull?: (e: PrePullEvent) => void;
}

export class PrePull {
  private readonly jobs: PrePullJob[];
  private readonly running: Promise<void>[] = [];
  private readonly started = new Set<number>();
  /** The last wave with a pre-pull. */
  private readonly lastWave: number;
  /** The jobs of the waves started, in wave order, and the workers taking them (at most `concurrency`). */
  private readonly queue: PrePullJob[] = [];
  private workers = 0;
  /** Servers whose disk was too full: no more pre-pulls there in this rollout. */
  private readonly lowDisk = new Set<string>();
  readonly events: PrePullEvent[] = [];

  constructor(
    plan: Plan,
    private readonly options: PrePullOptions,
    private readonly ports: PrePullPorts,
  ) {
    this.jobs = prePullJobs(plan, options);
    this.lastWave = this.jobs.reduce((w, j) => Math.max(w, j.wave), 0);
  }

  /**
   * Watches wave `index` (its targets' IDs): the pre-pulls of the next `prePullWaves` waves start at the
   * wave's first pull that succeeds — the release is then known to be there and pullable, so a missing
   * tag or a refused login fails one pull, not one per server of the waves after — or, in a wave that
   * pulled nothing (every target unchanged), once every target is done; never after a wave whose every
   * pull failed. A wave whose images were pre-pulled has its first pull done at once, so the next wave's
   * pre-pulls run beside all of it: its switches, its gate and its soak. Returns the hooks for the wave.
   */
  watch(index: number, targets: readonly string[]) {
    const done = new Set<string>();
    let pullFailed = false;
    const until = Math.min(index + (this.options.prePullWaves ?? 1), this.lastWave);
    const begin = () => {
      for (let w = index + 1; w <= until; w++) this.start(w);
    };
    return {
      onStep: (e: { target: string; step: string; status: string }) => {
        if (e.step !== 'pull' || e.status === 'start') return;
        if (e.status === 'ok') begin();
        else pullFailed = true;
      },
      onTarget: (r: { id: string }) => {
        done.add(r.id);
        if (done.size >= targets.length && !pullFailed) begin();
      },
    };
  }

  /** Starts the pre-pull of wave `wave` (once): its jobs join the queue; at most `concurrency` run at once. */
  start(wave: number): void {
    if (this.started.has(wave) || this.ports.signal?.aborted) return;
    this.started.add(wave);
    this.queue.push(...this.jobs.filter((j) => j.wave === wave));
    const worker = async () => {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) await this.run(job);
      this.workers--;
    };
    while (this.workers < this.options.concurrency && this.workers < this.queue.length) {
      this.workers++;
      this.running.push(worker());
    }
  }

  /** Waits for every pre-pull started (they never reject). */
  async settle(): Promise<void> {
    await Promise.all(this.running);
  }

  private async run(job: PrePullJob): Promise<void> {
    const t0 = this.ports.clock.now();
    const done = (status: PrePullEvent['status'], detail?: string) => {
      const e = {
        wave: job.wave,
        server: job.server,
        refs: job.refs,
        status,
        ms: this.ports.clock.now() - t0,
      };
      const event: PrePullEvent = detail ? { ...e, detail } : e;
      this.events.push(event);
      this.ports.onPrePull?.(event);
    };
    if (this.ports.signal?.aborted) return done('skipped', 'cancelled');
    if (this.lowDisk.has(job.server)) return done('skipped', 'the disk was too full for a pre-pull');
    if (this.ports.pulls(job.server)?.has(job.refs)) return; // pulled in this rollout already: nothing to do
    const session = this.ports.sessions.get(job.server);
    if (!session) return done('skipped', 'no connection');
    const auth = pullLogin(this.options.registry, job.refs.map(hostOf));
    const script = prePullImages(job.target.tenant, job.refs, this.options.prePullMinFreeMb, auth?.login);
    try {
      const exec = session.transport().then((t) =>
        t.exec(script, {
          timeoutMs: this.options.pullTimeoutMs,
          ...(auth ? { stdin: auth.stdin } : {}),
        }),
      );
      this.ports.pulls(job.server)?.prePulling(job.refs, exec);
      const r = await exec;
      const said = r.code === 0 ? parsePrePull(r.stdout) : undefined;
      if (said && 'lowDiskMb' in said) {
        this.lowDisk.add(job.server);
        return done(
          'skipped',
          `only ${said.lowDiskMb} MiB free on the filesystem of ${job.target.tenant.path}, under the ` +
            `pre-pull's ${this.options.prePullMinFreeMb} MiB: pre-pull stopped on ${job.server} (the deploy ` +
            `pulls as usual)`,
        );
      }
      if (said) {
        // the switches to come on this server will want the engine's API version (Compose v1): ask it now,
        // while the wave before them runs, gates and soaks, not in line before the first of them
        if (this.ports.askApiVersion)
          void composeApiVersion(new TargetShell(session, this.options.pullTimeoutMs), job.target.tenant);
        return done('pulled');
      }
      done('failed', redactPasswords(describe(r), this.options.registry));
    } catch (e) {
      done('failed', (e as Error).message);
    }
  }
}

/** The registry host of an image reference (its repository's). */
function hostOf(ref: string): string {
  const at = ref.indexOf('@');
  const repo = at >= 0 ? ref.slice(0, at) : ref.replace(/:[^/:]+$/, '');
  return registryHost(repo);
}

/** A pre-pull in one line, for a log: what was pulled where, or the warning. (Server text: sanitize it.) */
export function describePrePull(e: PrePullEvent): string {
  const what = `pre-pull of wave ${e.wave}'s ${e.refs.join(', ')} on ${e.server}`;
  if (e.status === 'pulled') return `${what}: pulled in ${(e.ms / 1000).toFixed(1)} s`;
  return `${what}: ${e.status}${e.detail ? `: ${e.detail}` : ''}`;
}

/**
 * For --dry-run: per wave (from the second), its pre-pulls and the wave they run beside: the one before
 * it, or with `prePullWaves` k the wave k before it (the first wave at the earliest).
 */
export function prePullPreview(
  jobs: readonly PrePullJob[],
  wave: number,
  options: { prePullWaves?: number; prePullMinFreeMb?: number },
): string[] {
  const beside = Math.max(1, wave - (options.prePullWaves ?? 1));
  const free = options.prePullMinFreeMb ?? 0;
  return jobs
    .filter((j) => j.wave === wave)
    .map(
      (j) =>
        `# pre-pull, while wave ${beside} runs and gates (from its first pull), on ${j.server} ` +
        `if ${free} MiB are free: ${j.refs.join(', ')}`,
    );
}
