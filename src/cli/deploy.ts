/** `fleet-deploy deploy`: flags → checked settings → the fleet engine over SSH (or --dry-run). */
import { describeWaveAnalysis } from '../deploy/analysis';
import { deployFleet, type FleetOptions } from '../deploy/fleet';
import { dryRunCommands, type DryRunOptions } from '../deploy/dry-run';
import { describePrePull, prePullJobs, prePullPreview } from '../deploy/prepull';
import { systemClock } from '../ports';
import { fetchUrl } from '../http/fetch';
import type { Plan } from '../plan/plan';
import type { Registry } from '../registry';
import { renderReport, succeeded } from '../report/render';
import { sanitizeLine } from '../report/sanitize';
import { plural } from '../report/table';
import { jsonText } from '../report/sanitize';
import { fromFlags, optionsHelp, resolveRollout, setting, synopsis, type SettingName } from '../settings';
import { checkTrust } from '../ssh/known-hosts';
import { userInfo } from 'node:os';
import { SshConnector, type SshOptions } from '../ssh/transport';
import { loadRegistry } from './args';
import { repositoryRoot, shipFiles } from '../files/local';
import { FilesPreview } from '../files/preview';
import type { CliIO } from './io';
import { knownHostsText, sshCredentials } from './keys';
import { Progress } from './progress';
import { colorWanted } from './style';

/** The flags of a deploy and a rollback besides the release: which targets, how fast, SSH, locks, report. */
const ROLLOUT_FLAGS = [
  'registry',
  'select',
  'waves',
  'concurrency',
  'perServer',
  'maxFailurePercent',
  'maxFailures',
  'report',
  'key',
  'knownHosts',
  'lockWaitMs',
  'breakLocksOlderThanMs',
  'commandTimeoutMs',
  'pullTimeoutMs',
  'pullAttempts',
  'sharePulls',
  'prePull',
  'prePullWaves',
  'prePullMinFreeMb',
  'recoveryWindowMs',
  'registryHost',
  'registryUsername',
  'keepRegistryLogin',
  'actor',
  'json',
] as const satisfies readonly SettingName[];

export const DEPLOY_FLAGS: readonly SettingName[] = ['version', 'versions', ...ROLLOUT_FLAGS, 'dryRun'];
export const ROLLBACK_FLAGS: readonly SettingName[] = ['to', ...ROLLOUT_FLAGS];

const EXIT_CODES =
  'Exit codes: 0 every target deployed or unchanged, 1 any target failed, rolled back or skipped, 2 bad input.';

export const DEPLOY_USAGE = `${synopsis('deploy', DEPLOY_FLAGS)}

Deploys a version to the selected targets, wave by wave, over one SSH connection per server. Each target:
preflight, lock, record the running release, pull, switch the image variables in .env, compose up, health
gate; a failure after the switch rolls the target back by itself. After each wave the failure budget
decides whether the next wave starts.

Options:
${optionsHelp(DEPLOY_FLAGS)}

${EXIT_CODES}`;

export const ROLLBACK_USAGE = `${synopsis('rollback', ROLLBACK_FLAGS)}

Rolls each selected target back to the release before the one it runs (from its history), or with --to to
a version in its history; a target whose history does not have that version fails, listing the versions it
knows. The rollback is a deploy like any other: lock, pull, switch, compose up, health gate, and an
automatic rollback if it fails.

Options:
${optionsHelp(ROLLBACK_FLAGS)}

${EXIT_CODES}`;

type Values = Record<string, string | boolean | undefined>;

export async function runDeploy(
  values: Values,
  io: CliIO,
  mode: 'deploy' | 'rollback' = 'deploy',
): Promise<number> {
  const flags = fromFlags(values);
  const registry = await loadRegistry(values, io);
  // Every flag checked once, before anything connects. With $USER unset (a container, cron), the OS
  // account rather than "unknown".
  const rollout = resolveRollout(flags, mode, registry, {
    name: 'cli',
    env: { ...io.env, USER: io.env.USER || osUser() },
  });
  const { plan, options } = rollout;
  const files =
    mode === 'deploy' ? shipFiles(rollout.targets, { root: repositoryRoot(io.env), env: io.env }) : undefined;
  if (files?.releases.size) options.files = files.releases;
  if (rollout.dryRun) return printDryRun(plan, { ...options, analysis: registry.analysis }, io);

  // Everything below touches servers: check the trust anchors and the key first.
  const ssh = await sshSettings(
    { key: setting(flags, 'key'), knownHosts: setting(flags, 'knownHosts') },
    io,
    registry,
    plan,
  );

  const progress = new Progress({
    write: io.stderr,
    tty: Boolean(io.tty),
    color: colorWanted(io.env, Boolean(io.tty)),
    total: plan.total,
    columns: io.columns,
    onResize: io.onResize,
  });
  const previous = plan.total === 1 ? 'its previous release' : 'their previous releases';
  const what = options.rollback
    ? `Rolling ${plural(plan.total, 'target')} back to ${options.rollback.to ?? previous}`
    : `Deploying ${options.version} to ${plural(plan.total, 'target')}`;
  const budget =
    options.maxFailures !== undefined ? `${options.maxFailures} targets` : `${options.maxFailurePercent}%`;
  io.stderr(
    `${what} in ${plural(plan.plan.length, 'wave')} (concurrency ${options.concurrency}, failure budget ${budget})\n`,
  );
  const report = await deployFleet(plan, options, {
    connector: new SshConnector(ssh),
    clock: systemClock,
    urlGet: fetchUrl,
    signal: io.signal,
    onLock: io.onLock,
    onStep: progress.onStep,
    onTarget: progress.onTarget,
    onWave: progress.onWave,
    onAnalysis: progress.onAnalysis,
    onPrePull: (e) => e.status !== 'pulled' && io.stderr(`warning: ${sanitizeLine(describePrePull(e))}\n`),
  });
  progress.finish();
  if (rollout.report) {
    if (!io.writeText) throw new Error('this environment cannot write files');
    await io.writeText(rollout.report, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (rollout.json) io.stdout(`${jsonText(report, 2)}\n`);
  else io.stdout(`\n${renderReport(report, { rollback: Boolean(options.rollback) })}`);
  return succeeded(report) ? 0 : 1;
}

function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined; // no passwd entry for this uid
  }
}

/** The SSH credentials and host-key trust for a command that connects, checked before anything does. */
export async function sshSettings(
  given: { key?: string; knownHosts?: string },
  io: CliIO,
  registry: Registry,
  plan: Plan,
): Promise<SshOptions> {
  const known = await knownHostsText(given.knownHosts, io);
  checkTrust(registry, plan, known.text, (s) => `${io.self ?? 'fleet-deploy'} pin-host-key --server ${s}`);
  const { from, ...credentials } = await sshCredentials(given.key, io);
  // Say where the key and the trust came from when the person did not name them (an environment
  // variable that may hold a path or a key, the agent, ~/.ssh/known_hosts).
  const said = [
    given.key ? '' : from,
    known.from && known.from !== given.knownHosts ? `known hosts from ${known.from}` : '',
  ].filter(Boolean);
  if (said.length) io.stderr(`SSH: ${said.join('; ')}\n`);
  return { ...credentials, knownHosts: known.text };
}

/** `--dry-run`: each target's remote commands, wave by wave; nothing is contacted. */
function printDryRun(plan: Plan, options: DryRunOptions & Partial<FleetOptions>, io: CliIO): number {
  const jobs = prePullJobs(plan, options);
  const files = new FilesPreview();
  io.stdout(
    `Dry run: ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')}, version ${options.version}. Nothing is contacted.\n`,
  );
  for (const wave of plan.plan) {
    io.stdout(`\n== wave ${wave.index}\n`);
    if (options.prePull) for (const line of prePullPreview(jobs, wave.index, options)) io.stdout(`${line}\n`);
    for (const t of wave.targets) {
      io.stdout(
        `\n# ${t.id}  (ssh ${t.server.user}@${t.server.host}:${t.server.port}${t.server.jump ? ` via ${t.server.jump.host}` : ''})\n`,
      );
      for (const c of dryRunCommands(t, options)) io.stdout(`[${c.step}] ${c.command}\n`);
      for (const line of files.lines(t.id, options.files?.get(t.id))) io.stdout(`${line}\n`);
    }
    const analysis = describeWaveAnalysis(options.analysis, plan, wave, options.version);
    if (analysis.length) io.stdout(`\n${analysis.join('\n')}\n`);
  }
  return 0;
}
