/**
 * The deploy action (actions/deploy: one matrix entry or shard; the root action.yml: a whole selection
 * in waves, "fleet mode") and its post step, which releases the locks of a cancelled job.
 */
import type { AnalysisEvent } from '../deploy/analysis';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { core } from './log';
import { ConfigurationError } from '../errors';
import { deployFleet, prePullWave, type FleetOptions, type FleetReport } from '../deploy/fleet';
import { repositoryRoot, shipFiles } from '../files/local';
import { dryRunCommands } from '../deploy/dry-run';
import { describePrePull, type PrePullEvent } from '../deploy/prepull';
import { systemClock } from '../ports';
import type { LockEvent } from '../deploy/target';
import { fetchUrl } from '../http/fetch';
import { targetsOf, type Registry, type Target } from '../registry';
import { OUTCOME_ORDER, reason, renderReport, seconds } from '../report/render';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { resolveRollout, setting, SETTINGS, type Rollout } from '../settings';
import { actionInputs, sshKey } from './inputs';
import { actionRegistry } from './single';

/** The action's state: the locks this job holds, and the switch each is making (for the post step). */
export const STATE_LOCKS = 'fleet-deploy-locks';

/** The matrix entry's `targets` (ids separated by spaces or commas) as a selection, every id checked. */
function selection(registry: Registry): string {
  const targets = setting(actionInputs, 'targets');
  const select = setting(actionInputs, 'select') ?? '';
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
        source: actionInputs.name(SETTINGS.targets),
        message:
          `${unknown.map((u) => JSON.stringify(u)).join(', ')} ` +
          `${unknown.length === 1 ? 'is not a target' : 'are not targets'} of ${registry.source}`,
        hint: 'targets are "server/tenant" ids, as in the plan action\'s matrix',
      },
    ]);
  }
  return `id=${ids.join('|')}`;
}

/**
 * A cancelled job: the runner sends SIGINT (then SIGTERM, then kills). Like the CLI's first Ctrl-C, no
 * new target starts and a target between its switch and the end of its gate rolls back; what a kill
 * cuts short, the post step finishes (deploy-post.ts).
 */
function cancelOnSignals(): AbortSignal {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal); // every target in flight waits on it
  const cancel = (sig: NodeJS.Signals) => {
    if (!controller.signal.aborted)
      core.warning(`${sig}: cancelling — no new target starts; targets mid-switch roll back and unlock`);
    controller.abort();
  };
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  return controller.signal;
}

function worst(report: FleetReport): string {
  const outcomes = report.targets.map((t) => t.outcome).sort((a, b) => OUTCOME_ORDER[a] - OUTCOME_ORDER[b]);
  return outcomes[0] ?? 'skipped';
}

export async function runDeployAction(mode: 'deploy' | 'rollback' = 'deploy'): Promise<void> {
  const registry = await actionRegistry();
  const rollout = resolveRollout(actionInputs, mode, registry, {
    name: 'action',
    env: process.env,
    select: selection(registry),
  });
  const { plan, targets, options } = rollout;
  for (const l of options.registry?.logins ?? []) core.setSecret(l.password);
  // the files the release ships (registry `files`), from the caller's checkout; secret values masked in logs
  const files =
    mode === 'deploy'
      ? shipFiles(targets, { root: repositoryRoot(process.env), env: process.env })
      : undefined;
  for (const secret of files?.secrets ?? []) core.setSecret(secret);
  if (files?.releases.size) options.files = files.releases;
  const version = options.version;
  const prePullOnly = setting(actionInputs, 'prePullWave');
  if (prePullOnly !== undefined) return runPrePullWave(registry, rollout, prePullOnly);
  if (rollout.dryRun) return printDryRun(targets, options);
  const knownHosts = setting(actionInputs, 'knownHostsText') ?? '';
  checkTrust(registry, plan, knownHosts);
  const privateKey = sshKey('the SSH private key, from a secret');

  const held = new Map<string, LockEvent>();
  const saveLocks = (e: LockEvent) => {
    if (e.held) held.set(e.target, e);
    else held.delete(e.target);
    core.saveState(STATE_LOCKS, JSON.stringify([...held.values()]));
  };
  const signal = cancelOnSignals();
  core.info(
    `${options.rollback ? `Rolling back to ${options.rollback.to ?? 'the previous release'}` : `Deploying ${version}`} ` +
      `to ${plan.total} target(s) in ${plan.plan.length} wave(s)`,
  );
  const report = await deployFleet(plan, options, {
    connector: new SshConnector({ privateKey, knownHosts }),
    clock: systemClock,
    urlGet: fetchUrl,
    signal,
    onLock: saveLocks,
    onStep: (e) => {
      if (e.status !== 'start' || e.detail)
        core.info(
          `${e.target}  ${e.step}  ${e.status === 'start' ? '' : e.status}` +
            (e.ms !== undefined ? `  ${seconds(e.ms)}` : '') +
            (e.detail ? `  ${e.detail}` : ''),
        );
    },
    onWave: (w) => w.status === 'start' && core.info(`── wave ${w.wave} of ${w.of}: ${w.targets} target(s)`),
    onAnalysis: logAnalysis,
    onPrePull: logPrePull,
  });

  await publishReport(report);
}

/**
 * `pre-pull-wave: N` (the reusable workflow's prepull-N job, beside gate N-1): only the pre-pull of wave
 * N's images on its servers, each logged as in fleet mode. It fails nothing: a failed or skipped pre-pull
 * is a warning (the wave's own pull then does the work), and the step succeeds.
 */
async function runPrePullWave(registry: Registry, { plan, options, dryRun }: Rollout, wave: number) {
  core.setOutput('outcome', 'skipped');
  core.setOutput('report', '');
  if (!options.prePull || options.rollback || wave < 2 || wave > plan.plan.length) {
    const why = !options.prePull
      ? 'pre-pull is false'
      : options.rollback
        ? 'a rollback'
        : `the plan has no wave ${wave} after another`;
    return core.info(`No pre-pull of wave ${wave}: ${why}`);
  }
  if (dryRun) return core.info(`No pre-pull of wave ${wave}: a dry run connects to nothing`);
  const knownHosts = setting(actionInputs, 'knownHostsText') ?? '';
  checkTrust(registry, plan, knownHosts);
  const privateKey = sshKey('the SSH private key, from a secret');
  core.info(`Pre-pulling the images of wave ${wave} of ${plan.plan.length} on their servers`);
  const events = await prePullWave(plan, wave, options, {
    connector: new SshConnector({ privateKey, knownHosts }),
    clock: systemClock,
    signal: cancelOnSignals(),
    onPrePull: logPrePull,
  });
  const pulled = events.filter((e) => e.status === 'pulled').length;
  core.info(`Pre-pull of wave ${wave}: ${pulled} of ${events.length} server pull(s) done`);
}

/** A pre-pull in the job's log: pulled, or a warning (never a failure). */
const logPrePull = (e: PrePullEvent) =>
  (e.status === 'pulled' ? core.info : core.warning)(describePrePull(e));

/** The analysis between waves in the job's log: what it measures, each measurement, the outcome. */
export function logAnalysis(e: AnalysisEvent): void {
  if (e.status === 'start')
    core.info(`── analysis after wave ${e.wave}: soak ${seconds(e.soakMs)}, checks ${e.checks.join(', ')}`);
  else if (e.status === 'measurement')
    core.info(
      `check ${e.check.name}${e.check.dryRun ? ' (dry run)' : ''}  ${e.measurement.outcome}  ${e.measurement.value}` +
        (e.measurement.detail ? `  ${e.measurement.detail}` : ''),
    );
  else if (e.analysis.decision === 'proceed')
    core.info(`analysis after wave ${e.wave}: ${e.analysis.reason}`);
  else
    core.warning(`analysis after wave ${e.wave} ${e.analysis.outcome}: ${e.analysis.reason}`, {
      title: 'fleet-deploy analysis',
    });
}

/** Each target's steps in a log group, an error annotation per failed target, the table, the outputs. */
async function publishReport(report: FleetReport): Promise<void> {
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
      `${bad} of ${report.totals.targets} target(s) not deployed: ${report.totals.failed} failed, ` +
        `${report.totals['rolled-back']} rolled back, ${report.totals.skipped} skipped`,
    );
}

/** `dry-run: true`: each target's remote commands in a log group; nothing is connected to. */
function printDryRun(targets: readonly Target[], options: FleetOptions): void {
  for (const t of targets) {
    core.startGroup(`${t.id}: the remote commands a deploy of ${options.version} would run`);
    for (const c of dryRunCommands(t, options)) core.info(`[${c.step}] ${c.command}`);
    core.endGroup();
  }
  core.setOutput('outcome', 'skipped');
  core.setOutput('report', '');
}
