/**
 * The deploy action's post step, which runs even when the job was cancelled or its main step killed:
 * for every lock the main step still held (saved in the action's state with the switch it was making),
 * a target cut off between its switch and its end is switched back to the release it ran, a `cancelled`
 * entry goes into its history, and the lock is released — only ours, by token, and only while its lease
 * is still ours (renewed first and while the post step works: once it ran out, the next deploy mends it).
 *
 * GitHub force-stops a job about 5 minutes after a cancel. The post step's work is bounded to fit well
 * inside: every command, the switch back and the reconnecting share POST_BUDGET_MS (2 minutes), and the
 * reconnecting is bounded by the recovery window too; a target not mended by then is left to its lease,
 * which runs out by itself. A post step that is itself force-stopped leaves the same: a lease that runs out.
 */
import { core } from './log';
import { parseFilesNote, restoreNoted } from '../deploy/files';
import { historyLine } from '../deploy/history';
import { systemClock } from '../ports';
import { Session } from '../deploy/session';
import { TargetShell } from '../deploy/shell';
import { strategyFor } from '../deploy/strategies';
import type { LockEvent } from '../deploy/target';
import { targetsOf, type Target } from '../registry';
import { finish, renewLease } from '../remote/lock';
import { identity, setting } from '../settings';
import { Lease, leaseTerms } from '../deploy/lease';
import { SshConnector } from '../ssh/transport';
import { STATE_LOCKS } from './deploy';
import { actionInputs, sshKey } from './inputs';
import { actionRegistry } from './single';

/** The post step's whole work: every command and reconnect of every target (a connect in flight may add its timeout). */
export const POST_BUDGET_MS = 2 * 60_000;

export async function runDeployPost(): Promise<void> {
  const held = JSON.parse(core.getState(STATE_LOCKS) || '[]') as LockEvent[];
  if (held.length === 0) return core.info('No fleet-deploy lock left to release.');
  const registry = await actionRegistry();
  const targets = new Map(targetsOf(registry).map((t) => [t.id, t]));
  const deadline = Date.now() + POST_BUDGET_MS;
  // the table's default when not given (every rollout row has one)
  const windowMs = Math.min(setting(actionInputs, 'recoveryWindowMs')!, POST_BUDGET_MS);
  const connector = new SshConnector({
    privateKey: sshKey('the SSH private key, from a secret'),
    knownHosts: setting(actionInputs, 'knownHostsText') ?? '',
    connectAttempts: 2,
    connectTimeoutMs: 15_000,
  });
  const byServer = new Map<string, Array<{ lock: LockEvent; target: Target }>>();
  for (const lock of held) {
    const target = targets.get(lock.target);
    if (!target) {
      core.warning(`${lock.target}: not in the registry any more; its lock at ${lock.path} stays`);
      continue;
    }
    byServer.set(lock.server, [...(byServer.get(lock.server) ?? []), { lock, target }]);
  }
  await Promise.all(
    [...byServer.values()].map(async (list) => {
      const session = new Session(list[0]!.target.server, connector, systemClock, windowMs, list.length);
      try {
        for (const { lock, target } of list) {
          if (Date.now() >= deadline) {
            core.warning(
              `${target.id}: not mended within the post step's ${POST_BUDGET_MS / 60_000} minutes: its lock's ` +
                `lease runs out by itself and the next deploy takes it over and switches it back`,
            );
            continue;
          }
          await mend(lock, target, { session, deadline, windowMs });
        }
      } finally {
        await session.close();
      }
    }),
  );
}

interface PostBounds {
  session: Session;
  /** When the post step's budget ends. */
  deadline: number;
  windowMs: number;
}

/**
 * Switches a target cut off mid-switch back, notes it in its history, and releases its lock — each only
 * while the lock's lease is still ours (renewed first, and in the background while this works).
 */
async function mend(
  lock: LockEvent,
  target: Target,
  { session, deadline, windowMs }: PostBounds,
): Promise<void> {
  const left = () => Math.max(1000, deadline - Date.now());
  const shell = new TargetShell(session, left(), systemClock);
  shell.recovering = true; // a connection that drops is opened again, within the window and the budget
  shell.giveUpBy = () => Math.min(deadline, lease.until);
  const terms = leaseTerms(windowMs);
  const renew = async () =>
    (await session.transport(true, deadline)).exec(renewLease(target.tenant, lock.token, terms.leaseS), {
      timeoutMs: Math.min(left(), terms.renewTimeoutMs),
    });
  const lease = new Lease(systemClock, terms.holdMs, terms.everyMs, renew, (why) => (shell.halted = why));
  let history: string | undefined;
  try {
    const sent = Date.now();
    const first = await renew().catch((e: Error) => ({ code: null, stdout: '', stderr: e.message }));
    if (!first.stdout.includes('@@lease ok')) {
      const why = first.stdout.includes('@@lease')
        ? 'its lease ran out or the lock is no longer ours: the next deploy takes it over and mends it'
        : `the server did not answer (${first.stderr.trim().split('\n').at(-1) || `exit ${first.code}`}): ` +
          `its lease runs out by itself and the next deploy takes it over and mends it`;
      core.warning(`${target.id}: left as it is: ${why}`);
      return;
    }
    lease.taken(sent);
    if (lock.switching) {
      const { from, to } = lock.switching;
      const ctx = { shell, clock: systemClock, pullTimeoutMs: left(), pullAttempts: 1 };
      // its `install files` may have run: the files it replaced go back too (checked, as server text is)
      const noted = lock.switching.files ? parseFilesNote(JSON.stringify(lock.switching.files)) : undefined;
      const what = noted ? ' and its files' : '';
      let error =
        'the job was cancelled during the switch; its post step switched back to ' +
        `${from.version ?? 'the previous release'}${what}`;
      try {
        if (noted) {
          await restoreNoted(target.tenant, shell, noted, left());
          Object.assign(from, { files: noted.fromFiles, fileModes: noted.fromFileModes });
          Object.assign(to, { files: noted.files, fileModes: noted.fileModes });
        }
        await strategyFor(target).switchBack(ctx, from, to);
        core.info(
          `${target.id}: cut off during the switch to ${to.version}: switched back to ${from.version}${what}`,
        );
      } catch (e) {
        error = `the job was cancelled during the switch and switching back failed: ${(e as Error).message}`;
        core.warning(`${target.id}: ${error}`);
      }
      const who = identity(actionInputs, process.env, 'action');
      history = historyLine({
        time: new Date(),
        actor: who.actor,
        run: who.runId,
        target: target.id,
        outcome: 'cancelled',
        previous: to,
        next: from,
        rollback: true,
        error,
      });
    }
    const r = await shell.exec(finish(target.tenant, { token: lock.token, history }));
    core.info(
      `${target.id}: ` +
        (r.stdout.includes('@@unlock released')
          ? 'lock released'
          : r.code === 0
            ? 'lock was no longer ours'
            : `could not release the lock (exit ${r.code})`),
    );
  } catch (e) {
    core.warning(`${target.id}: could not release its lock at ${lock.path}: ${(e as Error).message}`);
  } finally {
    await lease.end();
  }
}
