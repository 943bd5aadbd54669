/**
 * The deploy action (actions/deploy: one matrix entry or shard; the root action.yml: a whole selection
 * in waves, "fleet mode") and its post step, which releases the locks of a cancelled job.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { core } from './log';
import { ConfigurationError } from '../errors';
import { deployFleet, type FleetOptions, type FleetReport } from '../deploy/fleet';
import { dryRunCommands } from '../deploy/dry-run';
import { staleLockProblem } from '../deploy/locks';
import { systemClock } from '../deploy/ports';
import type { LockEvent } from '../deploy/target';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { targetsOf, type Registry } from '../registry';
import { checkVersion, releaseLock } from '../remote/commands';
import { OUTCOME_ORDER, reason, renderReport, seconds } from '../report/render';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { durationInput, percentInput, positiveInt, text } from './inputs';
import { actionRegistry } from './single';

export const DEPLOY_INPUTS = {
  registry: 'registry',
  version: 'version',
  targets: 'targets',
  select: 'select',
  waves: 'waves',
  concurrency: 'concurrency',
  perServer: 'per-server',
  maxFailurePercent: 'max-failure-percent',
  maxFailures: 'max-failures',
  sshKey: 'ssh-key',
  knownHosts: 'known-hosts',
  lockWait: 'lock-wait',
  breakStaleLocks: 'break-stale-locks',
} as const;

const STATE_LOCKS = 'fleet-deploy-locks';

function sshKey(): string {
  const key = core.getInput(DEPLOY_INPUTS.sshKey);
  if (!key.trim())
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${DEPLOY_INPUTS.sshKey}"`,
        message: 'is required: the SSH private key, from a secret',
        hint: 'ssh-key: ${{ secrets.SSH_PRIVATE_KEY }}',
      },
    ]);
  core.setSecret(key);
  for (const line of key.split('\n'))
    if (line.trim().length > 8 && !line.startsWith('-----')) core.setSecret(line.trim());
  return key.endsWith('\n') ? key : `${key}\n`;
}

/** The matrix entry's `targets` (ids separated by spaces or commas) as a selection, every id checked. */
function selection(registry: Registry): string {
  const targets = core.getInput(DEPLOY_INPUTS.targets).trim();
  const select = core.getInput(DEPLOY_INPUTS.select).trim();
  if (targets && select)
    throw new ConfigurationError([
      { path: [], source: 'inputs', message: 'give "targets" or "select", not both' },
    ]);
  if (!targets) return select;
  const ids = targets.split(/[\s,]+/).filter(Boolean);
  const known = new Set(targetsOf(registry).map((t) => t.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length) {
    throw new ConfigurationError([
      {
        path: [],
        source: `input "${DEPLOY_INPUTS.targets}"`,
        message: `${unknown.map((u) => JSON.stringify(u)).join(', ')} ${unknown.length === 1 ? 'is not a target' : 'are not targets'} of ${registry.source}`,
        hint: 'targets are "server/tenant" ids, as in the plan action\'s matrix',
      },
    ]);
  }
  return `id=${ids.join('|')}`;
}

function worst(report: FleetReport): string {
  const outcomes = report.targets.map((t) => t.outcome).sort((a, b) => OUTCOME_ORDER[a] - OUTCOME_ORDER[b]);
  return outcomes[0] ?? 'skipped';
}

export async function runDeployAction(mode: 'deploy' | 'rollback' = 'deploy'): Promise<void> {
  const registry = await actionRegistry();
  let version: string;
  let rollback: { to?: string } | undefined;
  if (mode === 'rollback') {
    const to = core.getInput('to').trim();
    rollback = to ? { to: checkVersion(to, 'input "to"') } : {};
    version = rollback.to ?? 'previous';
  } else {
    version = checkVersion(core.getInput(DEPLOY_INPUTS.version).trim(), `input "${DEPLOY_INPUTS.version}"`);
  }
  const plan = planDeployment(registry, {
    select: selection(registry),
    waves: text(DEPLOY_INPUTS.waves, 'all'),
  });
  const maxFailures = core.getInput(DEPLOY_INPUTS.maxFailures).trim();
  const options: FleetOptions = {
    version,
    ...(rollback ? { rollback } : {}),
    actor: process.env.GITHUB_ACTOR ?? 'github-actions',
    runId: `${process.env.GITHUB_REPOSITORY ?? ''}#${process.env.GITHUB_RUN_ID ?? ''}.${process.env.GITHUB_RUN_ATTEMPT ?? '1'}`,
    lockWaitMs: durationInput(DEPLOY_INPUTS.lockWait, 60_000),
    ...(core.getInput(DEPLOY_INPUTS.breakStaleLocks).trim()
      ? { breakLocksOlderThanMs: durationInput(DEPLOY_INPUTS.breakStaleLocks, 0) }
      : {}),
    commandTimeoutMs: 120_000,
    pullTimeoutMs: 900_000,
    pullAttempts: 3,
    concurrency: positiveInt(DEPLOY_INPUTS.concurrency, 10),
    perServer: positiveInt(DEPLOY_INPUTS.perServer, 4),
    maxFailurePercent: percentInput(DEPLOY_INPUTS.maxFailurePercent, 0),
    ...(maxFailures ? { maxFailures: positiveInt(DEPLOY_INPUTS.maxFailures, 0, 0) } : {}),
    skipOnceHooks: core.getInput('once-hooks').trim() === 'false',
  };
  if (options.breakLocksOlderThanMs !== undefined) {
    const problem = staleLockProblem(
      options.breakLocksOlderThanMs,
      plan.plan.flatMap((w) => w.targets),
      options,
      `input "${DEPLOY_INPUTS.breakStaleLocks}"`,
    );
    if (problem) throw new ConfigurationError([problem]);
  }
  if (core.getInput('dry-run').trim() === 'true') {
    for (const t of plan.plan.flatMap((w) => w.targets)) {
      core.startGroup(`${t.id}: the remote commands a deploy of ${version} would run`);
      for (const c of dryRunCommands(t, version)) core.info(`[${c.step}] ${c.command}`);
      core.endGroup();
    }
    core.setOutput('outcome', 'skipped');
    core.setOutput('report', '');
    return;
  }
  const knownHosts = core.getInput(DEPLOY_INPUTS.knownHosts);
  checkTrust(registry, plan, knownHosts);
  const privateKey = sshKey();

  const held = new Map<string, LockEvent>();
  const saveLocks = (e: LockEvent) => {
    if (e.held) held.set(e.target, e);
    else held.delete(e.target);
    core.saveState(STATE_LOCKS, JSON.stringify([...held.values()]));
  };
  core.info(
    `${rollback ? `Rolling back to ${rollback.to ?? 'the previous release'}` : `Deploying ${version}`} to ${plan.total} target(s) in ${plan.plan.length} wave(s)`,
  );
  const report = await deployFleet(plan, options, {
    connector: new SshConnector({ privateKey, knownHosts }),
    clock: systemClock,
    urlGet: fetchUrl,
    onLock: saveLocks,
    onStep: (e) => {
      if (e.status !== 'start' || e.detail)
        core.info(
          `${e.target}  ${e.step}  ${e.status === 'start' ? '' : e.status}${e.ms !== undefined ? `  ${seconds(e.ms)}` : ''}${e.detail ? `  ${e.detail}` : ''}`,
        );
    },
    onWave: (w) => w.status === 'start' && core.info(`── wave ${w.wave} of ${w.of}: ${w.targets} target(s)`),
  });

  for (const r of report.targets) {
    core.startGroup(`${r.id}: ${r.outcome} (${seconds(r.durationMs)})`);
    for (const s of r.steps)
      core.info(`${s.ok ? '✓' : '✗'} ${s.step.padEnd(16)} ${seconds(s.ms).padStart(7)}  ${s.detail ?? ''}`);
    core.endGroup();
    if (r.outcome === 'failed' || r.outcome === 'rolled-back')
      core.error(`${r.id}: ${r.outcome}: ${reason(r)}`, { title: `fleet-deploy: ${r.id} ${r.outcome}` });
  }
  core.info(renderReport(report));

  const file = join(
    process.env.RUNNER_TEMP ?? '.',
    `fleet-deploy-report-${process.env.GITHUB_JOB ?? 'job'}-${randomBytes(6).toString('hex')}.json`,
  );
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  core.setOutput('outcome', worst(report));
  core.setOutput('report', JSON.stringify(report));
  core.setOutput('report-file', file);
  for (const o of ['deployed', 'unchanged', 'rolled-back', 'failed', 'skipped'] as const)
    core.setOutput(o, String(report.totals[o]));
  if (report.stopped) core.warning(`Rollout stopped: ${report.stopped}`);
  const bad = report.totals.failed + report.totals['rolled-back'] + report.totals.skipped;
  if (bad > 0)
    core.setFailed(
      `${bad} of ${report.totals.targets} target(s) not deployed: ${report.totals.failed} failed, ${report.totals['rolled-back']} rolled back, ${report.totals.skipped} skipped`,
    );
}

/** Post step: release the locks a cancelled or killed main step still held (only ours, by token). */
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
  const byServer = new Map<string, LockEvent[]>();
  for (const e of held) byServer.set(e.server, [...(byServer.get(e.server) ?? []), e]);
  for (const [, locks] of byServer) {
    const first = targets.get(locks[0]!.target);
    if (!first) continue;
    let transport;
    try {
      transport = await connector.connect(first.server);
      for (const lock of locks) {
        const t = targets.get(lock.target);
        if (!t) continue;
        const r = await transport.exec(releaseLock(t.tenant, lock.token), { timeoutMs: 30_000 });
        core.info(
          `${lock.target}: ${r.stdout.includes('released') ? 'lock released' : r.code === 0 ? 'lock was no longer ours' : `could not release the lock (${r.stderr.trim()})`}`,
        );
      }
    } catch (e) {
      core.warning(`could not release locks on ${first.server.name}: ${(e as Error).message}`);
    } finally {
      await transport?.close();
    }
  }
}
