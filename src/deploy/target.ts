/**
 * One target's deploy: preflight, lock, record the current release, backup and hooks, pull, switch the
 * image variables in .env, compose up, health gate, then history and prune — or, when anything after the
 * switch fails, the automatic rollback. The lock is released on every path.
 *
 * Every remote step checks its exit code, and a null code (lost connection) is a failure. When the
 * connection is lost, the rollback and the lock release go over a new connection (`session.transport()`
 * reconnects), so a dropped link does not leave a target half-deployed or locked.
 */
import { randomBytes } from 'node:crypto';
import type { Hook, Target } from '../registry/model';
import * as R from '../remote/commands';
import type { Script } from '../remote/shell';
import { runGate } from '../health/gate';
import type { Clock, ExecResult, Transport, UrlGet } from './ports';
import type { Release, StepTiming, TargetResult } from './result';

export interface DeployOptions {
  /** The version to deploy; ignored for a rollback, whose version comes from each target's history. */
  version: string;
  /**
   * Roll back instead: to the release before the running one (`to` undefined), or to a named version
   * that must be in the target's release history (otherwise the target fails, listing the known ones).
   */
  rollback?: { to?: string };
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
}

export interface ServerSession {
  /**
   * The server's shared connection. A lost connection stays lost (its commands fail with a null exit
   * code) unless `reconnect` is set, which only the rollback, history and unlock steps do.
   */
  transport(reconnect?: boolean): Promise<Transport>;
}

/**
 * Hooks marked `once` run on the first target of a rollout only; the other targets wait for that run
 * and fail if it failed (a migration must finish before any new version starts).
 */
export class OnceHooks {
  private readonly runs = new Map<string, Promise<void>>();
  constructor(private readonly skip = false) {}
  async run(hook: Hook, fn: () => Promise<unknown>): Promise<void> {
    if (this.skip) return;
    let p = this.runs.get(hook.run);
    if (!p) {
      p = fn().then(() => undefined);
      this.runs.set(hook.run, p);
      return p;
    }
    await p.catch((e: Error) => {
      throw new Error(`the once-per-rollout hook failed on another target: ${e.message}`);
    });
  }
}

export type StepEvent = {
  target: string;
  step: string;
  status: 'start' | 'ok' | 'fail';
  ms?: number;
  detail?: string;
};

/** A lock this run took or released, so a cancelled CI job's post step can release what is left. */
export type LockEvent = { target: string; server: string; path: string; token: string; held: boolean };

export interface TargetPorts {
  onLock?: (e: LockEvent) => void;
  session: ServerSession;
  clock: Clock;
  urlGet: UrlGet;
  onStep: (e: StepEvent) => void;
  once: OnceHooks;
  signal?: AbortSignal;
}

class StepFailure extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

function tail(text: string, n = 400): string {
  const t = text.trim();
  return t.length > n ? `…${t.slice(-n)}` : t;
}

function describe(r: ExecResult): string {
  if (r.code === null)
    return `connection lost or command timed out${r.stderr ? `: ${tail(r.stderr, 200)}` : ''}`;
  const out = tail(r.stderr) || tail(r.stdout);
  return `exit code ${r.code}${out ? `: ${out}` : ''}`;
}

export async function deployTarget(
  target: Target,
  wave: number,
  options: DeployOptions,
  ports: TargetPorts,
): Promise<TargetResult> {
  const t = target.tenant;
  const started = ports.clock.now();
  const steps: StepTiming[] = [];
  const result: TargetResult = {
    id: target.id,
    server: target.server.name,
    tenant: t.id,
    region: target.server.region,
    ring: t.ring,
    wave,
    outcome: 'failed',
    steps,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
  };
  const token = randomBytes(12).toString('hex');
  /** For a rollback, resolved from the target's history during `prepare`. */
  let version = options.version;

  /** Set once something failed: from then on (rollback, history, unlock) a lost connection is re-opened. */
  let recovering = false;

  async function exec(script: Script, timeoutMs = options.commandTimeoutMs): Promise<ExecResult> {
    const transport = await ports.session.transport(recovering);
    return transport.exec(script, { timeoutMs });
  }

  async function step<T>(
    name: string,
    fn: () => Promise<T>,
    detail?: (v: T) => string | undefined,
  ): Promise<T> {
    const t0 = ports.clock.now();
    ports.onStep({ target: target.id, step: name, status: 'start' });
    try {
      const v = await fn();
      const d = detail?.(v);
      const ms = ports.clock.now() - t0;
      steps.push({ step: name, ms, ok: true, ...(d ? { detail: d } : {}) });
      ports.onStep({ target: target.id, step: name, status: 'ok', ms, ...(d ? { detail: d } : {}) });
      return v;
    } catch (e) {
      const ms = ports.clock.now() - t0;
      const message = e instanceof StepFailure ? e.message : (e as Error).message;
      steps.push({ step: name, ms, ok: false, detail: message });
      ports.onStep({ target: target.id, step: name, status: 'fail', ms, detail: message });
      throw e instanceof StepFailure ? e : new StepFailure(name, message);
    }
  }

  /** Runs a script that must succeed; returns its stdout. */
  async function must(name: string, script: Script, timeoutMs?: number): Promise<string> {
    const r = await exec(script, timeoutMs);
    if (r.code !== 0) throw new StepFailure(name, `${name} failed: ${describe(r)}`);
    return r.stdout;
  }

  const hookEnv = (version: string, previous: string) => ({
    FLEET_VERSION: version,
    FLEET_PREVIOUS_VERSION: previous,
    FLEET_TARGET: target.id,
  });

  async function runHooks(
    kind: 'preDeploy' | 'postDeploy' | 'onRollback',
    version: string,
    previous: string,
  ) {
    for (const hook of t.hooks[kind]) {
      const run = () =>
        must(`${kind} hook`, R.runUserCommand(t, hook.run, hookEnv(version, previous)), hook.timeoutMs);
      if (hook.once) await ports.once.run(hook, run);
      else await run();
    }
  }

  /** The gate of a deploy stops when the run is cancelled; the rollback's gate runs to the end. */
  async function gate(version: string, cancellable = true) {
    const check = t.health;
    const probe =
      check.url !== undefined
        ? (timeoutMs: number) => ports.urlGet(check.url!, timeoutMs)
        : async (timeoutMs: number) =>
            (await ports.session.transport(recovering)).get(check.port!, check.path, timeoutMs);
    const g = await runGate(check, version, probe, ports.clock, cancellable ? ports.signal : undefined);
    if (!g.ok) throw new StepFailure('health', `health gate failed: ${g.reason}`);
    if (check.containerHealth) {
      const states = (await must('container health', R.containerHealth(t))).split('\n').filter(Boolean);
      const bad = states.filter((s) => s !== 'healthy' && s !== 'none');
      if (bad.length) throw new StepFailure('health', `containers are not healthy: ${bad.join(', ')}`);
    }
    return g;
  }

  // ---- the steps: four round trips on the happy path (prepare, pull, update, finish) ----
  const previous: Release = { refs: {}, imageIds: [], digests: [] };
  const next: Release = { refs: {}, version: version, imageIds: [], digests: [] };
  let prepared: R.Prepared | undefined;
  let locked = false;
  let switched = false;

  try {
    await step(
      'connect',
      () => ports.session.transport(),
      () => undefined,
    );

    prepared = await step(
      'prepare',
      async () => {
        const owner = JSON.stringify({
          token,
          run: options.runId,
          actor: options.actor,
          version: version,
          since: new Date(ports.clock.now()).toISOString(),
        });
        const breakAfterS =
          options.breakLocksOlderThanMs === undefined
            ? undefined
            : Math.floor(options.breakLocksOlderThanMs / 1000);
        const deadline = ports.clock.now() + options.lockWaitMs;
        for (let attempt = 0; ; attempt++) {
          const r = await exec(R.prepare(t, owner, breakAfterS));
          if (r.code === R.PREFLIGHT.noDirectory)
            throw new StepFailure(
              'prepare',
              `directory ${t.path} does not exist on ${target.server.name} (or is not accessible to ${target.server.user})`,
            );
          if (r.code === R.PREFLIGHT.noComposeFile)
            throw new StepFailure(
              'prepare',
              `compose file ${r.stdout.trim().split('\n').at(-1)} not found in ${t.path}`,
            );
          if (r.code === R.PREFLIGHT.noEnvFile)
            throw new StepFailure(
              'prepare',
              `no .env in ${t.path}: the image variables (${t.images.map((i) => i.variable).join(', ')}) live there`,
            );
          if (r.code === R.PREFLIGHT.noComposeCommand)
            throw new StepFailure(
              'prepare',
              `compose command "${t.compose.command}" does not run on ${target.server.name}; install it or set compose.command in the registry`,
            );
          const p = R.parsePrepared(r.stdout);
          // Past preflight and not refused: the lock may be ours (finish releases it only if it is).
          locked = r.code !== R.LOCK_HELD;
          if (p.freeMb !== undefined && p.freeMb < t.minFreeDiskMb && r.code !== R.LOCK_HELD) {
            // Checked before anything changes; the lock just taken is released in `finally`.
            throw new StepFailure(
              'prepare',
              `only ${p.freeMb} MiB free on the filesystem of ${t.path}; minFreeDiskMb is ${t.minFreeDiskMb}`,
            );
          }
          if (r.code === 0) {
            locked = true;
            ports.onLock?.({
              target: target.id,
              server: target.server.name,
              path: t.path,
              token,
              held: true,
            });
            if (p.brokeStale !== undefined)
              ports.onStep({
                target: target.id,
                step: 'prepare',
                status: 'start',
                detail: `broke a stale lock held by ${p.brokeStale || 'an unknown owner'}`,
              });
            return p;
          }
          if (r.code !== R.LOCK_HELD) {
            throw new StepFailure('prepare', `prepare failed: ${describe(r)}`);
          }
          if (ports.clock.now() >= deadline || ports.signal?.aborted) {
            throw new StepFailure(
              'prepare',
              `${t.path} on ${target.server.name} is locked by another deploy: ${p.lock?.owner || 'unknown owner'} (for ${p.lock?.ageS ?? 0} s); waited ${Math.round(options.lockWaitMs / 1000)} s`,
            );
          }
          await ports.clock.sleep(
            Math.min(1000 * (attempt + 1), 5000, Math.max(0, deadline - ports.clock.now())),
            ports.signal,
          );
        }
      },
      (p) =>
        [
          p.freeMb !== undefined ? `${p.freeMb} MiB free` : '',
          previousVersion(p) ? `running ${previousVersion(p)}` : 'no previous release',
        ]
          .filter(Boolean)
          .join(', '),
    );

    previous.version = previousVersion(prepared);
    if (options.rollback) {
      version = rollbackVersion(prepared, previous.version, options.rollback.to);
      next.version = version;
    }

    if (t.commands) {
      previous.version = prepared.current;
      if (previous.version) previous.refs = { version: previous.version };
      next.refs = { version: version };
    } else {
      previous.refs = Object.fromEntries(
        t.images
          .filter((i) => prepared!.env[i.variable])
          .map((i) => [i.variable, prepared!.env[i.variable]!]),
      );
      previous.imageIds = prepared.running;
      previous.version = previousVersion(prepared);
      next.refs = Object.fromEntries(t.images.map((i) => [i.variable, R.imageRef(i, version)]));

      await step('pull', async () => {
        const refs = Object.values(next.refs);
        for (let attempt = 1; ; attempt++) {
          const r = await exec(R.pullImages(t, refs), options.pullTimeoutMs);
          if (r.code === 0) {
            for (const img of R.parseImages(r.stdout)) {
              next.imageIds.push(img.id);
              next.digests.push(...img.digests);
            }
            return;
          }
          if (attempt >= options.pullAttempts)
            throw new StepFailure(
              'pull',
              `pull ${refs.join(', ')} failed after ${attempt} attempts: ${describe(r)}`,
            );
          await ports.clock.sleep(1000 * 2 ** (attempt - 1), ports.signal);
        }
      });
    }

    const same = t.commands
      ? previous.version === version
      : Object.entries(next.refs).every(([k, v]) => previous.refs[k] === v) &&
        next.imageIds.every((id) => previous.imageIds.includes(id));
    if (same) {
      result.outcome = 'unchanged';
      return result;
    }

    const prevVersion = previous.version ?? '';
    if (t.backup)
      await step(
        'backup',
        async () =>
          (
            await must('backup', R.backup(t, new Date(ports.clock.now()).toISOString().replace(/[:.]/g, '-')))
          ).trim(),
        (f) => f,
      );
    if (t.hooks.preDeploy.length)
      await step('pre-deploy hooks', () => runHooks('preDeploy', version, prevVersion));

    if (t.commands) {
      switched = true;
      await step('deploy', () =>
        must(
          'deploy',
          R.runUserCommand(t, t.commands!.deploy, hookEnv(version, prevVersion)),
          options.pullTimeoutMs,
        ),
      );
    } else {
      await step('update', async () => {
        const r = await exec(R.update(t, next.refs), options.pullTimeoutMs);
        if (r.code === R.SWITCH_FAILED)
          throw new StepFailure('update', `switching the image in ${t.path}/.env failed: ${describe(r)}`);
        switched = true; // from here on a failure rolls back; .env is the old or the new file, never a mix
        if (r.code !== 0) throw new StepFailure('update', `compose up failed: ${describe(r)}`);
      });
    }
    await step(
      'health',
      () => gate(version),
      (g) => `${g.passed}/${g.probes} probes in ${(g.ms / 1000).toFixed(1)} s`,
    );
    if (t.hooks.postDeploy.length)
      await step('post-deploy hooks', () => runHooks('postDeploy', version, prevVersion));
    result.outcome = 'deployed';
  } catch (e) {
    result.error = (e as Error).message;
    recovering = true;
    if (switched) await rollback();
  } finally {
    recovering = true;
    if (locked) await finishTarget();
    result.previous = previous;
    if (Object.keys(next.refs).length) result.next = next;
    result.durationMs = ports.clock.now() - started;
  }
  return result;

  /** The version a rollback goes to, from the history read by `prepare`; a StepFailure when there is none. */
  function rollbackVersion(p: R.Prepared, running: string | undefined, to: string | undefined): string {
    const releases = releasesOf(p.history);
    if (to !== undefined) {
      if (releases.includes(to)) return to;
      throw new StepFailure(
        'prepare',
        `version ${to} is not in the release history of ${target.id}; known versions: ${releases.length ? releases.join(', ') : 'none (no history yet)'}`,
      );
    }
    const before = releases.filter((v) => v !== running);
    if (before.length === 0)
      throw new StepFailure(
        'prepare',
        `${target.id} has no earlier release in its history to roll back to (running ${running ?? 'nothing'})`,
      );
    return before[0]!;
  }

  function previousVersion(p: R.Prepared): string | undefined {
    if (t.commands) return p.current;
    const first = p.env[t.images[0]!.variable];
    return first ? R.versionOf(first) : undefined;
  }

  async function rollback() {
    const prevVersion = previous.version;
    try {
      await step('rollback', async () => {
        if (t.commands) {
          if (!prevVersion) throw new StepFailure('rollback', 'no previous version to roll back to');
          await must(
            'rollback',
            R.runUserCommand(t, t.commands.rollback ?? t.commands.deploy, hookEnv(prevVersion, version)),
            options.pullTimeoutMs,
          );
        } else {
          if (Object.keys(previous.refs).length === 0)
            throw new StepFailure('rollback', 'no previous release in .env to roll back to');
          await must('rollback', R.update(t, previous.refs), options.pullTimeoutMs);
        }
      });
      await step(
        'rollback health',
        () => gate(prevVersion ?? '', false),
        (g) => `${g.passed}/${g.probes} probes in ${(g.ms / 1000).toFixed(1)} s`,
      );
      result.outcome = 'rolled-back';
      if (t.hooks.onRollback.length)
        await step('on-rollback hooks', () => runHooks('onRollback', prevVersion ?? '', version));
    } catch (e) {
      if (result.outcome !== 'rolled-back') {
        result.outcome = 'failed';
        result.rollbackError = (e as Error).message;
      } else {
        result.error = `${result.error}; then ${(e as Error).message}`;
      }
    }
  }

  /**
   * Images to remove after a deploy: those of this tool's own earlier releases (from the history) that
   * fell out of the last `keepReleases`, never the running or the previous one. Found from the history
   * rather than by listing the engine's images, so pruning costs no extra command; images this tool did
   * not deploy are left alone.
   */
  function pruneList(): string[] {
    if (t.commands || result.outcome !== 'deployed' || !prepared) return [];
    const releases: Array<Record<string, string>> = [next.refs];
    for (const line of [...prepared.history].reverse()) {
      try {
        const h = JSON.parse(line) as {
          outcome?: string;
          toRefs?: Record<string, string>;
          fromRefs?: Record<string, string>;
        };
        if (h.outcome === 'deployed' && h.toRefs) releases.push(h.toRefs);
        if (h.outcome === 'deployed' && h.fromRefs) releases.push(h.fromRefs);
      } catch {
        // a line we cannot read keeps nothing and removes nothing
      }
    }
    const keep = new Set<string>([...Object.values(next.refs), ...Object.values(previous.refs)]);
    const distinct: Array<Record<string, string>> = [];
    for (const refs of releases)
      if (!distinct.some((d) => JSON.stringify(d) === JSON.stringify(refs))) distinct.push(refs);
    for (const refs of distinct.slice(0, t.keepReleases)) for (const r of Object.values(refs)) keep.add(r);
    return [...new Set(distinct.slice(t.keepReleases).flatMap((refs) => Object.values(refs)))].filter(
      (r) => !keep.has(r),
    );
  }

  /** History entry, pruning and the lock release, in one round trip; retried over a new connection if needed. */
  async function finishTarget() {
    const history =
      result.outcome === 'unchanged'
        ? undefined
        : JSON.stringify({
            time: new Date(ports.clock.now()).toISOString(),
            actor: options.actor,
            run: options.runId,
            target: target.id,
            outcome: result.outcome,
            from: previous.version ?? null,
            to: version,
            fromRefs: previous.refs,
            toRefs: next.refs,
            fromImages: previous.imageIds,
            toImages: next.imageIds,
            digests: next.digests,
            ...(options.rollback ? { rollback: true } : {}),
            ...(result.error ? { error: result.error } : {}),
          });
    const remove = pruneList();
    await step(
      'finish',
      async () => {
        let last = '';
        for (let attempt = 1; attempt <= 3; attempt++) {
          try {
            const r = await exec(R.finish(t, { token, ...(history ? { history } : {}), remove }));
            if (r.code === 0) {
              ports.onLock?.({
                target: target.id,
                server: target.server.name,
                path: t.path,
                token,
                held: false,
              });
              return r.stdout;
            }
            last = describe(r);
          } catch (e) {
            last = (e as Error).message;
          }
          await ports.clock.sleep(500 * attempt);
        }
        throw new StepFailure('finish', `could not release the lock on ${t.path}: ${last}`);
      },
      (out) =>
        [
          history ? (out.includes('@@history-failed') ? 'history NOT written' : 'history written') : '',
          remove.length ? `pruned ${remove.join(', ')}` : '',
          out.includes('@@unlock released') ? 'unlocked' : 'lock was not ours',
        ]
          .filter(Boolean)
          .join(', '),
    ).catch((e: Error) => {
      result.error = result.error ? `${result.error}; ${e.message}` : e.message;
      if (result.outcome === 'deployed' || result.outcome === 'unchanged') result.outcome = 'failed';
    });
  }
}

/**
 * The versions a target has run, newest first, from its history lines: the `to` of every deployed
 * release and the `from` it replaced (so the release before the first recorded deploy counts too).
 */
export function releasesOf(history: readonly string[]): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string' && v && !out.includes(v)) out.push(v);
  };
  for (const line of [...history].reverse()) {
    try {
      const h = JSON.parse(line) as { outcome?: string; to?: string; from?: string | null };
      if (h.outcome === 'deployed') {
        add(h.to);
        add(h.from);
      }
    } catch {
      // an unreadable line adds nothing
    }
  }
  return out;
}

/**
 * The release before `running`: the `from` of the newest forward deploy (not a rollback) that brought
 * `running` in. So rolling back twice goes further back (v3 → v2 → v1), never forward again.
 */
export function previousRelease(history: readonly string[], running: string | undefined): string | undefined {
  for (const line of [...history].reverse()) {
    try {
      const h = JSON.parse(line) as {
        outcome?: string;
        to?: string;
        from?: string | null;
        rollback?: boolean;
      };
      if (h.outcome === 'deployed' && !h.rollback && h.to === running && h.from && h.from !== running)
        return h.from;
    } catch {
      // an unreadable line says nothing
    }
  }
  return undefined;
}
