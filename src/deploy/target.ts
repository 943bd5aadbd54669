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
  version: string;
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

/** Hooks marked `once` run on the first target of a rollout only. */
export class OnceHooks {
  private readonly claimed = new Set<string>();
  claim(hook: Hook): boolean {
    if (this.claimed.has(hook.run)) return false;
    this.claimed.add(hook.run);
    return true;
  }
}

export type StepEvent = {
  target: string;
  step: string;
  status: 'start' | 'ok' | 'fail';
  ms?: number;
  detail?: string;
};

export interface TargetPorts {
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
      if (hook.once && !ports.once.claim(hook)) continue;
      await must(`${kind} hook`, R.runUserCommand(t, hook.run, hookEnv(version, previous)), hook.timeoutMs);
    }
  }

  async function gate(version: string) {
    const check = t.health;
    const probe =
      check.url !== undefined
        ? () => ports.urlGet(check.url!, check.timeoutMs)
        : async () =>
            (await ports.session.transport(recovering)).get(check.port!, check.path, check.timeoutMs);
    const g = await runGate(check, version, probe, ports.clock, ports.signal);
    if (!g.ok) throw new StepFailure('health', `health gate failed: ${g.reason}`);
    if (check.containerHealth) {
      const states = (await must('container health', R.containerHealth(t))).split('\n').filter(Boolean);
      const bad = states.filter((s) => s !== 'healthy' && s !== 'none');
      if (bad.length) throw new StepFailure('health', `containers are not healthy: ${bad.join(', ')}`);
    }
    return g;
  }

  // ---- the steps ----
  const previous: Release = { refs: {}, imageIds: [], digests: [] };
  const next: Release = { refs: {}, version: options.version, imageIds: [], digests: [] };
  let locked = false;
  let switched = false;

  try {
    await step(
      'connect',
      () => ports.session.transport(),
      () => undefined,
    );
    await step(
      'preflight',
      async () => {
        const r = await exec(R.preflight(t));
        if (r.code === R.PREFLIGHT.noDirectory)
          throw new StepFailure(
            'preflight',
            `directory ${t.path} does not exist on ${target.server.name} (or is not accessible to ${target.server.user})`,
          );
        if (r.code === R.PREFLIGHT.noComposeFile)
          throw new StepFailure('preflight', `compose file ${r.stdout.trim()} not found in ${t.path}`);
        if (r.code === R.PREFLIGHT.noEnvFile)
          throw new StepFailure(
            'preflight',
            `no .env in ${t.path}: the image variables (${t.images.map((i) => i.variable).join(', ')}) live there`,
          );
        if (r.code === R.PREFLIGHT.noComposeCommand)
          throw new StepFailure(
            'preflight',
            `compose command "${t.compose.command}" does not run on ${target.server.name}; install it or set compose.command in the registry`,
          );
        if (r.code !== 0) throw new StepFailure('preflight', `preflight failed: ${describe(r)}`);
        const { freeMb } = R.parsePreflight(r.stdout);
        if (freeMb !== undefined && freeMb < t.minFreeDiskMb)
          throw new StepFailure(
            'preflight',
            `only ${freeMb} MiB free on the filesystem of ${t.path}; minFreeDiskMb is ${t.minFreeDiskMb}`,
          );
        return freeMb;
      },
      (mb) => (mb !== undefined ? `${mb} MiB free` : undefined),
    );

    await step('lock', async () => {
      const owner = JSON.stringify({
        token,
        run: options.runId,
        actor: options.actor,
        version: options.version,
        since: new Date(ports.clock.now()).toISOString(),
      });
      const deadline = ports.clock.now() + options.lockWaitMs;
      for (let attempt = 0; ; attempt++) {
        const lock = R.parseLock(await must('lock', R.acquireLock(t, owner)));
        if (lock.acquired) return (locked = true);
        if (
          options.breakLocksOlderThanMs !== undefined &&
          lock.ageS * 1000 >= options.breakLocksOlderThanMs
        ) {
          await must('lock', R.breakLock(t, Math.floor(options.breakLocksOlderThanMs / 1000)));
          ports.onStep({
            target: target.id,
            step: 'lock',
            status: 'start',
            detail: `broke a stale lock (${lock.ageS} s old) held by ${lock.owner}`,
          });
          continue;
        }
        if (ports.clock.now() >= deadline || ports.signal?.aborted) {
          throw new StepFailure(
            'lock',
            `${t.path} on ${target.server.name} is locked by another deploy: ${lock.owner} (for ${lock.ageS} s); waited ${Math.round(options.lockWaitMs / 1000)} s`,
          );
        }
        await ports.clock.sleep(
          Math.min(2000 * (attempt + 1), 5000, Math.max(0, deadline - ports.clock.now())),
          ports.signal,
        );
      }
    });

    const unchanged = await step(
      'current',
      async () => {
        const out = await must('current', R.readCurrent(t));
        if (t.commands) {
          previous.version = out.trim().split('\n').at(-1) ?? '';
          previous.refs = { version: previous.version };
          next.refs = { version: options.version };
          return previous.version === options.version;
        }
        const cur = R.parseCurrent(out);
        previous.refs = Object.fromEntries(
          t.images.filter((i) => cur.env[i.variable]).map((i) => [i.variable, cur.env[i.variable]!]),
        );
        previous.imageIds = cur.running;
        const first = previous.refs[t.images[0]!.variable];
        if (first) previous.version = R.versionOf(first);
        next.refs = Object.fromEntries(t.images.map((i) => [i.variable, R.imageRef(i, options.version)]));
        return false;
      },
      () => (previous.version ? `running ${previous.version}` : 'no previous release'),
    );

    if (!t.commands) {
      await step('pull', async () => {
        for (const ref of Object.values(next.refs)) {
          for (let attempt = 1; attempt <= options.pullAttempts; attempt++) {
            const r = await exec(R.pullImage(t, ref), options.pullTimeoutMs);
            if (r.code === 0) break;
            if (attempt === options.pullAttempts)
              throw new StepFailure('pull', `pull ${ref} failed after ${attempt} attempts: ${describe(r)}`);
            await ports.clock.sleep(1000 * 2 ** (attempt - 1), ports.signal);
          }
          const img = R.parseImage(await must('pull', R.inspectImage(t, ref)));
          next.imageIds.push(img.id);
          next.digests.push(...img.digests);
        }
      });
    }

    const same =
      unchanged ||
      (!t.commands &&
        Object.entries(next.refs).every(([k, v]) => previous.refs[k] === v) &&
        next.imageIds.every((id) => previous.imageIds.includes(id)));
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
      await step('pre-deploy hooks', () => runHooks('preDeploy', options.version, prevVersion));

    if (t.commands) {
      switched = true;
      await step('deploy', () =>
        must(
          'deploy',
          R.runUserCommand(t, t.commands!.deploy, hookEnv(options.version, prevVersion)),
          options.pullTimeoutMs,
        ),
      );
    } else {
      switched = true; // from here on, a failure rolls back (the switch itself is atomic: old or new .env)
      await step('switch', () => must('switch', R.switchEnv(t, next.refs)));
      await step('up', () => must('up', R.composeUp(t), options.pullTimeoutMs));
    }
    await step(
      'health',
      () => gate(options.version),
      (g) => `${g.passed}/${g.probes} probes in ${(g.ms / 1000).toFixed(1)} s`,
    );
    if (t.hooks.postDeploy.length)
      await step('post-deploy hooks', () => runHooks('postDeploy', options.version, prevVersion));
    result.outcome = 'deployed';
  } catch (e) {
    result.error = (e as Error).message;
    recovering = true;
    if (switched) await rollback();
  } finally {
    recovering = true;
    if (locked) {
      if (result.outcome !== 'unchanged') await recordHistory();
      if (result.outcome === 'deployed' && !t.commands) await prune();
      await releaseLock();
    }
    result.previous = previous;
    if (Object.keys(next.refs).length) result.next = next;
    result.durationMs = ports.clock.now() - started;
  }
  return result;

  async function rollback() {
    const prevVersion = previous.version;
    try {
      await step('rollback', async () => {
        if (t.commands) {
          if (!prevVersion) throw new StepFailure('rollback', 'no previous version to roll back to');
          await must(
            'rollback',
            R.runUserCommand(
              t,
              t.commands.rollback ?? t.commands.deploy,
              hookEnv(prevVersion, options.version),
            ),
            options.pullTimeoutMs,
          );
        } else {
          if (Object.keys(previous.refs).length === 0)
            throw new StepFailure('rollback', 'no previous release in .env to roll back to');
          await must('rollback', R.switchEnv(t, previous.refs));
          await must('rollback', R.composeUp(t), options.pullTimeoutMs);
        }
      });
      await step(
        'rollback health',
        () => gate(prevVersion ?? ''),
        (g) => `${g.passed}/${g.probes} probes in ${(g.ms / 1000).toFixed(1)} s`,
      );
      result.outcome = 'rolled-back';
      if (t.hooks.onRollback.length)
        await step('on-rollback hooks', () => runHooks('onRollback', prevVersion ?? '', options.version));
    } catch (e) {
      if (result.outcome !== 'rolled-back') {
        result.outcome = 'failed';
        result.rollbackError = (e as Error).message;
      } else {
        result.error = `${result.error}; then ${(e as Error).message}`;
      }
    }
  }

  async function recordHistory() {
    const entry = {
      time: new Date(ports.clock.now()).toISOString(),
      actor: options.actor,
      run: options.runId,
      target: target.id,
      outcome: result.outcome,
      from: previous.version ?? null,
      to: options.version,
      fromRefs: previous.refs,
      toRefs: next.refs,
      fromImages: previous.imageIds,
      toImages: next.imageIds,
      digests: next.digests,
      ...(result.error ? { error: result.error } : {}),
    };
    await step('history', () => must('history', R.appendHistory(t, JSON.stringify(entry)))).catch(
      () => undefined,
    );
  }

  async function prune() {
    await step(
      'prune',
      async () => {
        const history = (await must('prune', R.readHistory(t)))
          .split('\n')
          .filter(Boolean)
          .flatMap((l) => {
            try {
              return [JSON.parse(l) as { outcome: string; toRefs?: Record<string, string> }];
            } catch {
              return [];
            }
          });
        const keep = new Set<string>([...Object.values(next.refs), ...Object.values(previous.refs)]);
        const releases = history.filter((h) => h.outcome === 'deployed').reverse();
        for (const h of releases.slice(0, t.keepReleases))
          for (const r of Object.values(h.toRefs ?? {})) keep.add(r);
        const local = (await must('prune', R.listImages(t)))
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.endsWith(':<none>'));
        const drop = local.filter((ref) => !keep.has(ref));
        if (drop.length) await exec(R.removeImages(t, drop));
        return drop;
      },
      (drop) => (drop.length ? `removed ${drop.join(', ')}` : 'nothing to remove'),
    ).catch(() => undefined);
  }

  async function releaseLock() {
    await step('unlock', async () => {
      let last = '';
      for (let attempt = 1; attempt <= 3; attempt++) {
        try {
          const r = await exec(R.releaseLock(t, token));
          if (r.code === 0) return r.stdout.trim();
          last = describe(r);
        } catch (e) {
          last = (e as Error).message;
        }
        await ports.clock.sleep(500 * attempt);
      }
      throw new StepFailure('unlock', `could not release the lock on ${t.path}: ${last}`);
    }).catch((e: Error) => {
      result.error = result.error ? `${result.error}; ${e.message}` : e.message;
      if (result.outcome === 'deployed' || result.outcome === 'unchanged') result.outcome = 'failed';
    });
  }
}
