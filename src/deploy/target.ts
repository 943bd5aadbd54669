/**
 * One target's deploy, as a run of named steps (DEPLOY_STEPS): prepare (preflight, lock, what runs now),
 * pull, compare, backup, pre-deploy hooks, switch, health gate, post-deploy hooks, hibernate (a tenant
 * that was paused or stopped goes back to sleep) — and, when anything
 * after the switch fails, the automatic rollback. `finish` (history, prune, unlock) runs on every path
 * where the lock may be ours. How the release is switched is the target's strategy (strategy.ts).
 *
 * Every remote step checks its exit code, and a null code (lost connection) is a failure. Once
 * something failed, the recovery steps go over a new connection if the old one was lost
 * (`TargetShell.recovering`), so a dropped link does not leave a target half-deployed or locked.
 */
import { randomBytes } from 'node:crypto';
import type { Target } from '../registry/model';
import { finish, renewLease } from '../remote/lock';
import type { Prepared } from '../remote/prepare';
import { backup, backupId, parseBackupTaken } from '../remote/backup';
import { runGate, type GateResult } from '../health/gate';
import { crashWatch } from './crash-watch';
import {
  parseFilesNote,
  recordedRelease,
  restoreNoted,
  TargetFiles,
  type FileRelease,
  type FilesNote,
} from './files';
import { History, historyLine, parseHistory } from './history';
import { hookStep, OnceHooks, runHooks } from './hooks';
import { interruptedSwitch, Lease, leaseTerms } from './lease';
import { describeHolder, parseLockOwner, unlockCommand } from './locks';
import type { Clock, UrlGet } from '../ports';
import { prepareTarget } from './prepare';
import type { ServerPulls } from './pulls';
import { resultOf, type Release, type StepTiming, type TargetResult } from './result';
import { describe, StepFailure, TargetShell, type ServerSession } from './shell';
import type { ImageVersions, RegistryCredentials, ReleaseStrategy, StrategyContext } from './strategy';
import { strategyFor } from './strategies';

export { OnceHooks } from './hooks';
export type { ServerSession } from './shell';

export interface DeployOptions {
  /**
   * The version to deploy: of every image not named in `versions`. With `versions` naming every image,
   * only the rollout's label. Ignored for a rollback, whose versions come from each target's history.
   */
  version: string;
  /** Image variable → the version of that image, when images of a release differ (`--versions`). */
  versions?: ImageVersions;
  /** Log in to the image registries for the pull (the password goes on stdin only). */
  registry?: RegistryCredentials;
  /**
   * Roll back instead: to the release before the running one (`to` undefined), or to a named version
   * that must be in the target's release history (otherwise the target fails, listing the known ones).
   */
  rollback?: { to?: string; reason?: string };
  /** Who and what is deploying, recorded in the lock and the history. */
  actor: string;
  runId: string;
  /** How long to wait for a lock held by another deploy. */
  lockWaitMs: number;
  /** With a value, a lock older than this many ms is broken (a crashed deploy's leftover). */
  breakLocksOlderThanMs?: number;
  commandTimeoutMs: number;
  pullTimeoutMs: number;
  pullAttempts: number;
  /**
   * How long the recovery steps (rollback, history, unlock) keep opening new connections to a server
   * that dropped off, backing off between tries.
   */
  recoveryWindowMs: number;
  /**
   * How often the holder renews its lease on the lock (default: a quarter of the recovery window, 1–10 s).
   * 0: never, and the recovery steps are bounded by the window only — for tests on a fake clock.
   */
  leaseRenewMs?: number;
  /** The files each target's release ships (registry `files`), by target ID, read by src/files/local.ts. */
  files?: ReadonlyMap<string, FileRelease>;
}

export type StepEvent = {
  target: string;
  step: string;
  status: 'start' | 'ok' | 'fail';
  ms?: number;
  detail?: string;
};

/**
 * A lock this run took or released, and the switch it is making while it holds it: what a cancelled CI
 * job's post step needs to switch a target back and release what is left.
 */
export type LockEvent = {
  target: string;
  server: string;
  path: string;
  token: string;
  held: boolean;
  /** `files`: what its `install files` notes (FilesNote), when the switch changes files. */
  switching?: { from: Release; to: Release; files?: FilesNote };
};

export interface TargetPorts {
  onLock?: (e: LockEvent) => void;
  session: ServerSession;
  clock: Clock;
  urlGet: UrlGet;
  onStep: (e: StepEvent) => void;
  once: OnceHooks;
  signal?: AbortSignal;
  /** The server's shared pulls (one pull per server and image); absent: the target pulls for itself. */
  pulls?: ServerPulls;
}

/**
 * A deploy's steps in order: `TargetRun` runs them, and --dry-run (dry-run.ts) prints the commands of
 * the same list. Each name is a method of both; a step with nothing to do for a tenant records nothing.
 */
export const DEPLOY_STEPS = [
  'prepare',
  'pull',
  'compare',
  'backup',
  'preDeploy',
  'switch',
  'health',
  'promote',
  'postDeploy',
  'retire',
  'hibernate',
] as const;
export type DeployStep = (typeof DEPLOY_STEPS)[number];

/** What a step returns to end the deploy early, successfully: the release already runs. */
const UNCHANGED = 'unchanged';
type StepReturn = Promise<void | typeof UNCHANGED>;

/** The gate's figures; its downtime only when it probed what users reach (not a slot no user sees yet). */
const gateDetail = (g: GateResult, usersSee = true) =>
  `${g.passed}/${g.probes} probes in ${(g.ms / 1000).toFixed(1)} s` +
  (g.downtimeMs && usersSee ? `, down ${(g.downtimeMs / 1000).toFixed(1)} s` : '');

export async function deployTarget(
  target: Target,
  wave: number,
  options: DeployOptions,
  ports: TargetPorts,
): Promise<TargetResult> {
  return new TargetRun(target, wave, options, ports).run();
}

export class TargetRun implements Record<DeployStep, () => StepReturn> {
  private readonly started: number;
  private readonly steps: StepTiming[] = [];
  private readonly result: TargetResult;
  private readonly token = randomBytes(12).toString('hex');
  private readonly shell: TargetShell;
  private readonly strategy: ReleaseStrategy;
  private readonly ctx: StrategyContext;
  private prepared?: Prepared;
  /** The deploy's gate failed without any probe reaching the health port (quickRollbackGate). */
  private portNeverAnswered = false;
  private current: Release = { refs: {}, imageIds: [], digests: [] };
  private next: Release;
  /** The lock may be ours: `finish` runs (and releases it only if it is). */
  private locked = false;
  /** Something changed on the server: a failure from here on rolls back. */
  private switched = false;
  /** A rollback to a version the history does not have: refused before anything, so nothing is recorded. */
  private unresolved = false;
  /** The run was cancelled while the gate waited: recorded as cancelled, not as a health failure. */
  private cancelled = false;
  /** The lease on the lock, renewed while it is held. */
  private readonly lease: Lease;
  /** The history line of a deploy whose expired lock this one took over, when it was cut off mid-switch. */
  private takenOverEntry?: string;
  /** When the switch started: the crash watch counts restarts from here. */
  private switchedAt = 0;
  /** The files the release ships, when the tenant has any (files.ts). */
  private files?: TargetFiles;

  constructor(
    private readonly target: Target,
    wave: number,
    private readonly options: DeployOptions,
    private readonly ports: TargetPorts,
  ) {
    this.started = ports.clock.now();
    this.result = {
      ...resultOf(target, wave),
      outcome: 'failed',
      steps: this.steps,
      startedAt: new Date(this.started).toISOString(),
      durationMs: 0,
    };
    this.shell = new TargetShell(ports.session, options.commandTimeoutMs, ports.clock);
    this.strategy = strategyFor(target);
    this.ctx = {
      shell: this.shell,
      clock: ports.clock,
      signal: ports.signal,
      pullTimeoutMs: options.pullTimeoutMs,
      pullAttempts: options.pullAttempts,
      targetId: target.id,
      ...(options.registry ? { registry: options.registry } : {}),
      ...(ports.pulls ? { pulls: ports.pulls } : {}),
    };
    this.next = { refs: {}, version: options.version, imageIds: [], digests: [] };
    const files = options.rollback ? undefined : options.files?.get(target.id);
    if (files) this.files = new TargetFiles(target.tenant, files, this.shell, options.commandTimeoutMs);
    const terms = this.leaseTerms();
    this.lease = new Lease(
      ports.clock,
      terms.holdMs,
      terms.everyMs,
      async () =>
        (await ports.session.transport()).exec(renewLease(target.tenant, this.token, terms.leaseS), {
          timeoutMs: terms.renewTimeoutMs,
        }),
      (why) => (this.shell.halted = `${target.id} stopped: ${why}`),
    );
  }

  async run(): Promise<TargetResult> {
    try {
      await this.step('connect', () => this.shell.transport());
      this.result.outcome = await this.deploy();
    } catch (e) {
      await this.recover(e as Error);
    } finally {
      this.shell.recovering = true;
      await this.lease.end(); // finish then runs within the lease last renewed (and releases it)
      if (this.locked) await this.finish();
      this.result.previous = this.current;
      if (Object.keys(this.next.refs).length) this.result.next = this.next;
      this.result.durationMs = this.ports.clock.now() - this.started;
    }
    return this.result;
  }

  private async deploy(): Promise<'deployed' | 'unchanged'> {
    for (const step of DEPLOY_STEPS) if ((await this[step]()) === UNCHANGED) return 'unchanged';
    return 'deployed';
  }

  // ---- the steps: four round trips on the happy path (prepare, pull, switch, finish) ----

  async prepare(): StepReturn {
    this.prepared = await this.step(
      'prepare',
      async () => {
        const reads = this.strategy.prepareReads();
        const p = await prepareTarget(
          this.target,
          reads,
          this.shell,
          this.lockRequest(),
          this.prepareHooks(),
        );
        this.current = this.strategy.current(p); // checks what the server sent, like user input
        return p;
      },
      (p) => this.preparedDetail(p),
    );
    this.ports.onLock?.({ ...this.lockEvent(), held: true });
    if (this.prepared.tookOver)
      await this.step(
        'take over',
        () => this.takeOver(this.prepared!),
        (d) => d,
      );
    const { version, versions } = this.options.rollback ? this.rollbackRelease(this.prepared) : this.options;
    this.next = this.strategy.release({ version, versions: versions ?? {} });
    if (this.options.rollback && this.target.tenant.files) this.files = this.recordedFiles(version);
  }

  async pull(): StepReturn {
    const strategy = this.strategy;
    if (strategy.fetch)
      await this.step(
        'pull',
        () => strategy.fetch!(this.ctx, this.next),
        (d) => d || undefined,
      );
  }

  async compare(): StepReturn {
    const files = this.files;
    if (files)
      await this.step(
        'files',
        () => files.check(this.current, this.next),
        (d) => d,
      );
    if (this.strategy.unchanged(this.current, this.next) && !files?.changed) return UNCHANGED;
  }

  async backup(): StepReturn {
    const settings = this.target.tenant.backup;
    if (!settings) return;
    const id = backupId(new Date(this.ports.clock.now()));
    // The dump runs through the containers: with none running (a first deploy, a stopped or paused
    // tenant) it could only fail, and the database is not changing. The files are archived all the same.
    const withDump = this.strategy.stackRunning?.() ?? true;
    const noDump = settings.dump && !withDump ? ' without the database dump (no container was running)' : '';
    await this.step(
      'backup',
      async () => parseBackupTaken(await this.shell.must('backup', backup(this.target.tenant, id, withDump))),
      (taken) =>
        taken ? `backup ${taken.id}${taken.sha256 ? ` (sha256 ${taken.sha256})` : ''}${noDump}` : undefined,
    );
  }

  async preDeploy(): StepReturn {
    await this.hooks('preDeploy', this.version, this.previousVersion);
  }

  async switch(): StepReturn {
    this.ports.onLock?.({
      ...this.lockEvent(),
      held: true,
      switching: {
        from: this.current,
        to: this.next,
        ...(this.files?.changed ? { files: this.files.note() } : {}),
      },
    });
    this.switchedAt = this.ports.clock.now();
    const files = this.files;
    if (files?.changed) {
      this.switched = true; // a file may change from here: a failure restores the previous ones
      await this.step(
        'install files',
        () => files.install(this.current.project, this.keptFiles()),
        (d) => d,
      );
    }
    await this.step(
      this.strategy.switchStep,
      () => this.strategy.switchTo(this.ctx, this.next, this.current, () => (this.switched = true)),
      (d) => d || undefined,
    );
  }

  async health(): StepReturn {
    // A gate on a port of its own (blue-green's idle slot) measures that slot's boot, which no user
    // sees: the downtime users saw is then measured through the proxy by `promote`.
    const port = this.strategy.gatePort?.();
    const usersSee = port === undefined;
    const g = await this.step(
      'health',
      () => this.gate(this.version, true, port),
      (g) => gateDetail(g, usersSee),
    );
    if (usersSee && g.downtimeMs !== undefined) this.result.downtimeMs = g.downtimeMs;
  }

  async promote(): StepReturn {
    const strategy = this.strategy;
    if (!strategy.promote) return;
    const p = await this.step(
      'promote',
      () => strategy.promote!(this.ctx, this.next),
      (p) => p.detail,
    );
    if (p.downtimeMs !== undefined) this.result.downtimeMs = p.downtimeMs;
  }

  async postDeploy(): StepReturn {
    await this.hooks('postDeploy', this.version, this.previousVersion);
  }

  async retire(): StepReturn {
    const strategy = this.strategy;
    if (strategy.retire)
      await this.step(
        'retire',
        () => strategy.retire!(this.ctx),
        (d) => d,
      );
  }

  /**
   * A tenant that was paused or stopped before the deploy (hibernated) is put back so once the release
   * passed its gate — or, with `hibernated: "wake"`, left running; either way the step says so.
   */
  async hibernate(): StepReturn {
    const how = this.strategy.hibernated?.();
    if (!how) return;
    if (this.target.tenant.hibernated === 'wake') {
      await this.step(
        'hibernate',
        async () => `was ${how}; left running (hibernated: "wake")`,
        (d) => d,
      );
      return;
    }
    await this.step(
      'hibernate',
      () => this.shell.must('hibernate', this.strategy.hibernate!(how)),
      () => `${how} again, as before the deploy`,
    );
  }

  // ---- when a step failed ----

  private async recover(e: Error): Promise<void> {
    this.result.error = e.message;
    this.shell.recovering = true;
    if (this.switched) await this.rollback();
  }

  /**
   * The lock was another deploy's, whose lease had run out (it gave up): said so, and what it left is
   * mended first. Cut off mid-switch (its note in the lock), the tenant is switched back to the release
   * it ran before — the last one that passed its gate — and the history records the cut-off deploy; with
   * no switch noted, nothing had changed (.env, the containers and the history still agree).
   */
  private async takeOver(p: Prepared): Promise<string> {
    const old = p.tookOver!;
    const holder = describeHolder(old.owner, old.pastS).replace(/; last active .*$/, '');
    const said = `took over the lock of ${holder}: its lease ran out ${old.pastS} s ago`;
    const cut = old.switchNote ? interruptedSwitch(old.switchNote, this.target.tenant) : undefined;
    // its `install files` ran (noted): the files it replaced go back first, byte for byte
    const noted = old.filesNote ? parseFilesNote(old.filesNote) : undefined;
    const put = noted ? await this.restoreTakenOver(said, noted) : undefined;
    const andFiles = put ? ` and its files (${put})` : '';
    if (!cut)
      return put
        ? `${said}; it was cut off after installing its files: ${put}`
        : `${said}; it had not begun a switch, so nothing needed mending`;
    if (!cut.from)
      return (
        `${said}; it was cut off switching to ${cut.to.version} with no earlier release to go back to` +
        `${put ? ` (${put})` : ''}: this deploy's switch replaces it`
      );
    if (noted) {
      Object.assign(cut.from, { files: noted.fromFiles, fileModes: noted.fromFileModes });
      Object.assign(cut.to, { files: noted.files, fileModes: noted.fileModes });
    }
    const owner = parseLockOwner(old.owner);
    let error =
      `cut off during the switch to ${cut.to.version}; its lease ran out and run ${this.options.runId} ` +
      `took the lock over and switched back to ${cut.from.version}${noted ? ' and its files' : ''}`;
    try {
      await this.strategy.switchBack(this.ctx, { ...cut.from, project: this.current.project }, cut.to);
      this.current = { ...this.current, refs: cut.from.refs, version: cut.from.version, imageIds: [] };
    } catch (e) {
      error =
        `cut off during the switch to ${cut.to.version}; switching back to ${cut.from.version} after ` +
        `taking the lock over failed: ${(e as Error).message}`;
      throw new StepFailure('take over', `${said}; ${error}`);
    } finally {
      this.takenOverEntry = historyLine({
        time: new Date(this.ports.clock.now()),
        actor: owner?.actor ?? 'unknown',
        run: owner?.run ?? 'unknown',
        target: this.target.id,
        outcome: 'failed',
        previous: cut.from,
        next: cut.to,
        rollback: false,
        error,
      });
    }
    return (
      `${said}; it was cut off switching ${cut.from.version} → ${cut.to.version}: switched back to ` +
      `${cut.from.version}${andFiles} (reverted), history noted`
    );
  }

  /** The files a taken-over deploy replaced, back in place (restoreNoted); a failure stops this deploy. */
  private async restoreTakenOver(said: string, noted: FilesNote): Promise<string> {
    try {
      return await restoreNoted(this.target.tenant, this.shell, noted, this.options.commandTimeoutMs);
    } catch (e) {
      throw new StepFailure(
        'take over',
        `${said}; putting back the files it replaced failed: ${(e as Error).message}`,
      );
    }
  }

  /**
   * A first deploy (no history) whose gate never reached the health port at all — nothing listened there,
   * most likely a wrong health.port — gates the rollback for one round of probes, not its whole deadline
   * again: the release before it was never seen on that port either.
   */
  private quickRollbackGate(): number | undefined {
    if (!this.portNeverAnswered || parseHistory(this.prepared?.history ?? []).length > 0) return undefined;
    const h = this.target.tenant.health;
    return Math.min(h.deadlineMs, h.timeoutMs + h.intervalMs * (h.successes + 1));
  }

  /** The automatic rollback: switch back, gate the previous release (to the end), on-rollback hooks. */
  private async rollback(): Promise<void> {
    const previous = this.previousVersion;
    try {
      await this.step('rollback', async () => {
        await this.files?.restore(); // the previous files first: the switch back starts the stack on them
        await this.strategy.switchBack(this.ctx, this.current, this.next);
      });
      await this.step(
        'rollback health',
        () => this.gate(previous, false, undefined, this.quickRollbackGate()),
        gateDetail,
      );
      this.result.outcome = 'rolled-back';
      await this.hooks('onRollback', previous, this.version);
      await this.hibernate(); // the previous release goes back to sleep too
    } catch (e) {
      if (this.result.outcome !== 'rolled-back') {
        this.result.outcome = 'failed';
        this.result.rollbackError = (e as Error).message;
      } else {
        this.result.error = `${this.result.error}; then ${(e as Error).message}`;
      }
    }
  }

  /** History entry, pruning and the lock release, in one round trip. */
  private async finish(): Promise<void> {
    const own = this.result.outcome === 'unchanged' || this.unresolved ? undefined : this.historyEntry();
    const history = [this.takenOverEntry, own].filter(Boolean).join('\n') || undefined;
    const remove = this.pruneList();
    await this.step(
      'finish',
      () => this.release(history, remove),
      (out) => finishDetail(out, own !== undefined, remove),
    ).catch((e: Error) => {
      const message = `${e.message}; left on the server: ${this.leftOnServer()}`;
      this.result.error = this.result.error ? `${this.result.error}; ${message}` : message;
      if (this.result.outcome === 'deployed' || this.result.outcome === 'unchanged')
        this.result.outcome = 'failed';
    });
  }

  /**
   * The finish round trip, tried again (over a new connection when needed) until the server's recovery
   * window ends — the one its other steps and targets share, so a rollback that spent it leaves none.
   */
  private async release(history: string | undefined, remove: string[]): Promise<string> {
    const clock = this.ports.clock;
    const started = clock.now();
    let last: string;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await this.shell.exec(finish(this.target.tenant, { token: this.token, history, remove }));
        if (r.code === 0) {
          this.ports.onLock?.({ ...this.lockEvent(), held: false });
          return r.stdout;
        }
        last = describe(r);
      } catch (e) {
        last = (e as Error).message;
      }
      const own = started + this.options.recoveryWindowMs; // a server that answers with failures is not retried for ever
      const left = Math.min(own, this.shell.recoveryDeadline(own)) - clock.now();
      if (left <= 0)
        throw new StepFailure('finish', `could not release the lock on ${this.target.tenant.path}: ${last}`);
      await clock.sleep(Math.min(500 * attempt, left));
    }
  }

  /** What a target whose last round trip never reached its server was left with, and how to mend it. */
  private leftOnServer(): string {
    const t = this.target;
    const until = this.lease.until;
    const lock = Number.isFinite(until)
      ? `the lock stays at ${t.tenant.path}/.fleet/lock until its lease runs out ` +
        `(${new Date(until).toISOString()} or a few seconds later): the next deploy then takes it over ` +
        `and mends what was left, no person needed (or release it now: ${unlockCommand(t.id)} --force)`
      : `the lock stays at ${t.tenant.path}/.fleet/lock (release it: ${unlockCommand(t.id)})`;
    const parts = [lock, 'no history entry was written'];
    if (this.switched && this.result.outcome !== 'rolled-back')
      parts.push(
        `the switch to ${this.version} was not rolled back, so the tenant may run ${this.version} or ` +
          `${this.previousVersion || 'its old release'}: finish it with a deploy or a rollback`,
      );
    return parts.join('; ');
  }

  // ---- helpers of the steps ----

  /** Runs one step: times it, reports its start and end, and turns any error into a StepFailure. */
  private async step<T>(
    name: string,
    fn: () => Promise<T>,
    detail?: (v: T) => string | undefined,
  ): Promise<T> {
    const t0 = this.ports.clock.now();
    const event = (status: StepEvent['status'], extra: Partial<StepEvent> = {}) =>
      this.ports.onStep({ target: this.target.id, step: name, status, ...extra });
    event('start');
    try {
      const v = await fn();
      const d = detail?.(v);
      const ms = this.ports.clock.now() - t0;
      this.steps.push({ step: name, ms, ok: true, ...(d ? { detail: d } : {}) });
      event('ok', { ms, ...(d ? { detail: d } : {}) });
      return v;
    } catch (e) {
      const ms = this.ports.clock.now() - t0;
      const message = (e as Error).message;
      this.steps.push({ step: name, ms, ok: false, detail: message });
      event('fail', { ms, detail: message });
      throw e instanceof StepFailure ? e : new StepFailure(name, message);
    }
  }

  private async hooks(kind: 'preDeploy' | 'postDeploy' | 'onRollback', version: string, previous: string) {
    if (this.target.tenant.hooks[kind].length === 0) return;
    await this.step(hookStep(kind), () =>
      runHooks(kind, this.target, this.shell, this.ports.once, version, previous),
    );
  }

  /**
   * The gate of a deploy stops when the run is cancelled; the rollback's gate runs to the end. `port`:
   * probe this port through the SSH connection instead of the registry's check (a new blue-green slot).
   */
  private async gate(
    version: string,
    cancellable: boolean,
    port?: number,
    deadlineMs?: number,
  ): Promise<GateResult> {
    const check = { ...this.target.tenant.health, ...(deadlineMs ? { deadlineMs } : {}) };
    const probe =
      check.url !== undefined && port === undefined
        ? (timeoutMs: number) => this.ports.urlGet(check.url!, timeoutMs)
        : async (timeoutMs: number) =>
            (await this.shell.transport()).get(port ?? check.port!, check.path, timeoutMs);
    // the deploy's gate watches for a crash loop; the rollback's runs to its end
    const spec = cancellable ? this.strategy.crashWatch?.() : undefined;
    const watch = spec && crashWatch(this.target.tenant, spec, this.shell, this.ports.clock, this.switchedAt);
    const g = await runGate(
      check,
      version,
      probe,
      this.ports.clock,
      cancellable ? this.ports.signal : undefined,
      watch,
    );
    if (!g.ok && g.reason === 'cancelled') {
      this.cancelled = true;
      throw new StepFailure('health', 'cancelled');
    }
    if (!g.ok && !g.reached && port === undefined && check.url === undefined) this.portNeverAnswered = true;
    if (!g.ok) throw new StepFailure('health', `health gate failed: ${g.reason}`);
    const containers = check.containerHealth && this.strategy.containerHealth?.();
    if (containers) {
      const out = await this.shell.must('container health', containers);
      const bad = out.split('\n').filter((s) => s && s !== 'healthy' && s !== 'none');
      if (bad.length) throw new StepFailure('health', `containers are not healthy: ${bad.join(', ')}`);
    }
    return g;
  }

  private get version(): string {
    return this.next.version ?? this.options.version;
  }

  private get previousVersion(): string {
    return this.current.version ?? '';
  }

  private lockRequest() {
    const owner = JSON.stringify({
      token: this.token,
      run: this.options.runId,
      actor: this.options.actor,
      version: this.options.version,
      since: new Date(this.ports.clock.now()).toISOString(),
    });
    const breakMs = this.options.breakLocksOlderThanMs;
    return {
      owner,
      leaseS: this.leaseTerms().leaseS,
      waitMs: this.options.lockWaitMs,
      ...(breakMs === undefined ? {} : { breakAfterS: Math.floor(breakMs / 1000) }),
    };
  }

  private leaseTerms() {
    const o = this.options;
    return leaseTerms(o.recoveryWindowMs, o.commandTimeoutMs, o.leaseRenewMs);
  }

  private prepareHooks() {
    return {
      clock: this.ports.clock,
      signal: this.ports.signal,
      locked: (sentAt: number) => {
        this.locked = true;
        this.lease.taken(sentAt);
        this.shell.giveUpBy = () => this.lease.until;
      },
      note: (detail: string) =>
        this.ports.onStep({ target: this.target.id, step: 'prepare', status: 'start', detail }),
    };
  }

  private lockEvent() {
    return {
      target: this.target.id,
      server: this.target.server.name,
      path: this.target.tenant.path,
      token: this.token,
    };
  }

  private preparedDetail(p: Prepared): string {
    const running = this.current.version;
    return [
      p.freeMb !== undefined ? `${p.freeMb} MiB free` : '',
      running ? `running ${running}` : 'no previous release',
    ]
      .filter(Boolean)
      .join(', ');
  }

  /** The release a rollback goes to, each image at the version recorded, from the history read by `prepare`. */
  private rollbackRelease(p: Prepared): { version: string; versions?: ImageVersions } {
    const choice = History.parse(p.history).rollbackTarget(
      this.target.id,
      this.current,
      this.options.rollback?.to,
    );
    if ('error' in choice) {
      this.unresolved = true;
      throw new StepFailure('prepare', choice.error);
    }
    return choice;
  }

  /** The file hashes of the releases the tenant keeps (`keepReleases`): its store keeps their files. */
  private keptFiles(): string[] {
    return History.parse(this.prepared?.history ?? []).keptFiles(this.target.tenant.keepReleases);
  }

  /** A rollback's files: those the history recorded for the release it goes back to, when it has them. */
  private recordedFiles(version: string): TargetFiles | undefined {
    const recorded = History.parse(this.prepared?.history ?? []).filesOf(version);
    if (!recorded) return undefined;
    const release = recordedRelease(recorded.files, recorded.modes);
    return new TargetFiles(this.target.tenant, release, this.shell, this.options.commandTimeoutMs);
  }

  private historyEntry(): string {
    return historyLine({
      time: new Date(this.ports.clock.now()),
      actor: this.options.actor,
      run: this.options.runId,
      target: this.target.id,
      outcome: this.cancelled ? 'cancelled' : this.result.outcome,
      previous: this.current,
      next: this.next,
      rollback: Boolean(this.options.rollback),
      ...(this.result.error ? { error: this.result.error } : {}),
      ...(this.options.rollback?.reason ? { reason: this.options.rollback.reason.slice(0, 1000) } : {}),
    });
  }

  private pruneList(): string[] {
    if (this.result.outcome !== 'deployed' || !this.prepared) return [];
    return this.strategy.prunable(History.parse(this.prepared.history), this.next, this.current);
  }
}

function finishDetail(out: string, wroteHistory: boolean, removed: readonly string[]): string {
  return [
    wroteHistory ? (out.includes('@@history-failed') ? 'history NOT written' : 'history written') : '',
    removed.length ? `pruned ${removed.join(', ')}` : '',
    out.includes('@@unlock released') ? 'unlocked' : 'lock was not ours',
  ]
    .filter(Boolean)
    .join(', ');
}
