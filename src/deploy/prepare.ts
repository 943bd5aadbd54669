/**
 * The first round trip of a target's deploy: preflight, the lock, and what runs now (see
 * `prepare` in src/remote/prepare.ts). This module waits for a lock another deploy holds, within
 * `lockWaitMs`, and turns each preflight exit code into a message that says what to fix.
 */
import type { Target } from '../registry/model';
import { LOCK_HELD, PREFLIGHT } from '../remote/exit-codes';
import type { LockTerms } from '../remote/lock';
import { parsePrepared, prepare, type PrepareReads, type Prepared } from '../remote/prepare';
import { describeHolder, unlockCommand } from './locks';
import type { Clock } from '../ports';
import { describe, StepFailure, type TargetShell } from './shell';

export interface LockRequest extends LockTerms {
  waitMs: number;
}

export interface PrepareHooks {
  clock: Clock;
  signal?: AbortSignal;
  /** Called whenever the lock may be ours (taken, or taken and then refused for free disk), with when its command was sent. */
  locked(sentAt: number): void;
  /** A note for the progress line (a stale lock was broken). */
  note(detail: string): void;
}

/** What each preflight exit code means, for this target. */
function preflightProblem(target: Target, code: number | null, stdout: string): string | undefined {
  const t = target.tenant;
  switch (code) {
    case PREFLIGHT.noDirectory:
      return `directory ${t.path} does not exist on ${target.server.name} (or is not accessible to ${target.server.user})`;
    case PREFLIGHT.noComposeFile:
      return `compose file ${stdout.trim().split('\n').at(-1)} not found in ${t.path}`;
    case PREFLIGHT.noEnvFile:
      return `no .env in ${t.path}: the image variables (${t.images.map((i) => i.variable).join(', ')}) live there`;
    case PREFLIGHT.lockUnwritable: {
      const free = parsePrepared(stdout).freeMb;
      return (
        `cannot write the deploy lock in ${t.path}/.fleet on ` +
        `${target.server.name}${free === undefined ? '' : ` (${free} MiB free)`}: is the disk full? ` +
        `Nothing was changed`
      );
    }
    case PREFLIGHT.noComposeCommand:
      return (
        `compose command "${t.compose.command}" does not run on ${target.server.name}; install it or set ` +
        `compose.command in the registry`
      );
    default:
      return undefined;
  }
}

function lockedBy(target: Target, p: Prepared, waitedMs: number): string {
  const holder = describeHolder(p.lock?.owner ?? '', p.lock?.ageS ?? 0);
  const left = p.lock?.leaseLeftS;
  const lease =
    left === undefined
      ? `it has no lease (a restore's, or an older fleet-deploy's): if that deploy is gone, release it: ${unlockCommand(target.id)}`
      : `its lease runs ${left} s more; if its holder is gone, a deploy after that takes the lock over`;
  return (
    `${target.tenant.path} on ${target.server.name} is locked by another deploy: ${holder}; waited ` +
    `${Math.round(waitedMs / 1000)} s; ${lease}`
  );
}

/** Runs `prepare` until the lock is ours, or fails the step saying why. */
export async function prepareTarget(
  target: Target,
  reads: PrepareReads,
  shell: TargetShell,
  lock: LockRequest,
  hooks: PrepareHooks,
): Promise<Prepared> {
  const t = target.tenant;
  const deadline = hooks.clock.now() + lock.waitMs;
  for (let attempt = 0; ; attempt++) {
    const sent = hooks.clock.now();
    const r = await shell.exec(prepare(t, lock, reads));
    const problem = preflightProblem(target, r.code, r.stdout);
    if (problem) throw new StepFailure('prepare', problem);
    const p = parsePrepared(r.stdout);
    const held = r.code === LOCK_HELD;
    // Past preflight and not refused: the lock may be ours (finish releases it only if it is).
    if (!held) hooks.locked(sent);
    if (!held && p.freeMb !== undefined && p.freeMb < t.minFreeDiskMb) {
      // Checked before anything changes; the lock just taken is released by `finish`.
      throw new StepFailure(
        'prepare',
        `only ${p.freeMb} MiB free on the filesystem of ${t.path}; minFreeDiskMb is ${t.minFreeDiskMb}`,
      );
    }
    if (r.code === 0) {
      if (p.brokeStale !== undefined)
        hooks.note(`broke a stale lock held by ${p.brokeStale || 'an unknown owner'}`);
      return p;
    }
    if (!held) throw new StepFailure('prepare', `prepare failed: ${describe(r)}`);
    if (hooks.clock.now() >= deadline || hooks.signal?.aborted)
      throw new StepFailure('prepare', lockedBy(target, p, lock.waitMs));
    await hooks.clock.sleep(
      Math.min(1000 * (attempt + 1), 5000, Math.max(0, deadline - hooks.clock.now())),
      hooks.signal,
    );
  }
}
