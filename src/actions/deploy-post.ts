/**
 * The deploy action's post step, which runs even when the job was cancelled or its main step killed:
 * for every lock the main step still held (saved in the action's state with the switch it was making),
 * a target cut off between its switch and its end is switched back to the release it ran, a `cancelled`
 * entry goes into its history, and the lock is released — only ours, by token.
 */
import { core } from './log';
import { historyLine } from '../deploy/history';
import { systemClock } from '../deploy/ports';
import { Session } from '../deploy/session';
import { TargetShell } from '../deploy/shell';
import { strategyFor } from '../deploy/strategies';
import type { LockEvent } from '../deploy/target';
import { targetsOf, type Target } from '../registry';
import { finish } from '../remote/commands';
import { identity } from '../settings';
import { SshConnector } from '../ssh/transport';
import { DEPLOY_INPUTS, sshKey, STATE_LOCKS } from './deploy';
import { actionInputs } from './inputs';
import { actionRegistry } from './single';

const TIMEOUT_MS = 5 * 60_000;

export async function runDeployPost(): Promise<void> {
  const held = JSON.parse(core.getState(STATE_LOCKS) || '[]') as LockEvent[];
  if (held.length === 0) return core.info('No fleet-deploy lock left to release.');
  const registry = await actionRegistry();
  const targets = new Map(targetsOf(registry).map((t) => [t.id, t]));
  const connector = new SshConnector({
    privateKey: sshKey(),
    knownHosts: core.getInput(DEPLOY_INPUTS.knownHosts),
    connectAttempts: 2,
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
      const session = new Session(list[0]!.target.server, connector, systemClock, 60_000, list.length);
      try {
        for (const { lock, target } of list) await mend(lock, target, new TargetShell(session, TIMEOUT_MS));
      } finally {
        await session.close();
      }
    }),
  );
}

/** Switches a target cut off mid-switch back, notes it in its history, and releases its lock. */
async function mend(lock: LockEvent, target: Target, shell: TargetShell): Promise<void> {
  shell.recovering = true; // a connection that drops is opened again
  let history: string | undefined;
  try {
    if (lock.switching) {
      const { from, to } = lock.switching;
      const ctx = { shell, clock: systemClock, pullTimeoutMs: TIMEOUT_MS, pullAttempts: 1 };
      let error = `the job was cancelled during the switch; its post step switched back to ${from.version ?? 'the previous release'}`;
      try {
        await strategyFor(target).switchBack(ctx, from, to);
        core.info(
          `${target.id}: cut off during the switch to ${to.version}: switched back to ${from.version}`,
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
      `${target.id}: ${r.stdout.includes('@@unlock released') ? 'lock released' : r.code === 0 ? 'lock was no longer ours' : `could not release the lock (exit ${r.code})`}`,
    );
  } catch (e) {
    core.warning(`${target.id}: could not release its lock at ${lock.path}: ${(e as Error).message}`);
  }
}
