/** `fleet-deploy deploy`: flags → checked settings → the fleet engine over SSH (or --dry-run). */
import { ConfigurationError } from '../errors';
import { deployFleet, type FleetOptions } from '../deploy/fleet';
import { dryRunCommands } from '../deploy/dry-run';
import { staleLockProblem } from '../deploy/locks';
import { systemClock } from '../deploy/ports';
import { fetchUrl } from '../http/fetch';
import { planDeployment, type Plan } from '../plan/plan';
import type { Registry } from '../registry';
import { checkVersion } from '../remote/commands';
import { renderReport, succeeded } from '../report/render';
import { plural } from '../report/table';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { loadRegistry } from './args';
import { duration, percent, wholeNumber } from '../values';
import { readUserFile, type CliIO } from './io';
import { Progress } from './progress';

export const DEPLOY_USAGE = `fleet-deploy deploy --version TAG|DIGEST [--registry FILE] [--select EXPR] [--waves SPEC]
                    [--concurrency N] [--per-server N] [--max-failure-percent P] [--max-failures N]
                    [--report FILE] [--dry-run] [--key FILE] [--known-hosts FILE]

Deploys a version to the selected targets, wave by wave, over one SSH connection per server. Each target:
preflight, lock, record the running release, pull, switch the image variables in .env, compose up, health
gate; a failure after the switch rolls the target back by itself. After each wave the failure budget
decides whether the next wave starts.

Options:
  -r, --registry FILE          the server registry (default: $FLEET_REGISTRY or ${'servers/production.json'})
  -v, --version TAG|DIGEST     the image tag (v1.4.2) or digest (sha256:…) to deploy
  -s, --select EXPR            which targets (see \`fleet-deploy plan --help\`)
  -w, --waves SPEC             "1,5%,25%,100%", "rings" or "all" (default)
  -c, --concurrency N          targets deployed at once (default 10)
      --per-server N           targets of one server at once, on its one connection (default 4)
      --max-failure-percent P  stop after a wave when more than P% of the targets so far failed (default 0)
      --max-failures N         …or when more than N failed (replaces the percentage)
      --report FILE            write the JSON report there (see docs/report.md)
      --dry-run                print each target's remote commands; connect to nothing
      --key FILE               SSH private key (default: $FLEET_SSH_KEY holding the key, or $FLEET_SSH_KEY_FILE)
      --known-hosts FILE       trusted host keys besides the registry's pins (default: $FLEET_KNOWN_HOSTS text)
      --lock-wait DURATION     how long to wait for another deploy's lock (default 60s)
      --break-stale-locks AGE  break locks older than AGE (e.g. 2h) left by crashed deploys (default: never)
      --actor NAME             recorded in locks and history (default: $GITHUB_ACTOR or $USER)
  -h, --help                   show this help

Exit codes: 0 every target deployed or unchanged, 1 any target failed, rolled back or skipped, 2 bad input.`;

type Values = Record<string, string | boolean | undefined>;
const str = (v: Values, k: string) => v[k] as string | undefined;

export async function runDeploy(
  values: Values,
  io: CliIO,
  mode: 'deploy' | 'rollback' = 'deploy',
): Promise<number> {
  let version: string;
  let rollback: { to?: string } | undefined;
  if (mode === 'rollback') {
    const to = str(values, 'to');
    rollback = to === undefined ? {} : { to: checkVersion(to, '--to') };
    version = rollback.to ?? 'previous';
  } else {
    const rawVersion = str(values, 'version');
    if (!rawVersion) {
      throw new ConfigurationError([
        {
          path: [],
          source: '--version',
          message: 'is required: the image tag or digest to deploy',
          hint: 'e.g. --version v1.4.2',
        },
      ]);
    }
    version = checkVersion(rawVersion);
  }
  const registry = await loadRegistry(values, io);
  const plan = planDeployment(registry, { select: str(values, 'select'), waves: str(values, 'waves') });
  const maxFailures = str(values, 'max-failures');
  const options: FleetOptions = {
    version,
    ...(rollback ? { rollback } : {}),
    actor: str(values, 'actor') ?? io.env.GITHUB_ACTOR ?? io.env.USER ?? 'unknown',
    runId: io.env.GITHUB_RUN_ID
      ? `${io.env.GITHUB_REPOSITORY ?? ''}#${io.env.GITHUB_RUN_ID}`
      : `cli-${new Date().toISOString()}`,
    lockWaitMs: duration(str(values, 'lock-wait'), '--lock-wait', 60_000),
    ...(values['break-stale-locks'] !== undefined
      ? { breakLocksOlderThanMs: duration(str(values, 'break-stale-locks'), '--break-stale-locks', 0) }
      : {}),
    commandTimeoutMs: 120_000,
    pullTimeoutMs: 900_000,
    pullAttempts: 3,
    concurrency: wholeNumber(str(values, 'concurrency'), '--concurrency', 10),
    perServer: wholeNumber(str(values, 'per-server'), '--per-server', 4),
    maxFailurePercent: percent(str(values, 'max-failure-percent'), '--max-failure-percent', 0),
    ...(maxFailures !== undefined ? { maxFailures: wholeNumber(maxFailures, '--max-failures', 0, 0) } : {}),
  };

  if (options.breakLocksOlderThanMs !== undefined) {
    const problem = staleLockProblem(
      options.breakLocksOlderThanMs,
      plan.plan.flatMap((w) => w.targets),
      options,
      '--break-stale-locks',
    );
    if (problem) throw new ConfigurationError([problem]);
  }

  if (values['dry-run'] && mode === 'deploy') {
    io.stdout(
      `Dry run: ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')}, version ${version}. Nothing is contacted.\n`,
    );
    for (const wave of plan.plan) {
      io.stdout(`\n== wave ${wave.index}\n`);
      for (const t of wave.targets) {
        io.stdout(
          `\n# ${t.id}  (ssh ${t.server.user}@${t.server.host}:${t.server.port}${t.server.jump ? ` via ${t.server.jump.host}` : ''})\n`,
        );
        for (const c of dryRunCommands(t, version)) io.stdout(`[${c.step}] ${c.command}\n`);
      }
    }
    return 0;
  }

  // Everything below touches servers: check the trust anchors and the key first.
  const { privateKey, knownHosts } = await sshSettings(values, io, registry, plan);

  const progress = new Progress({
    write: io.stderr,
    tty: Boolean(io.tty),
    color: Boolean(io.tty) && !io.env.NO_COLOR,
    total: plan.total,
  });
  io.stderr(
    `${mode === 'rollback' ? `Rolling back to ${rollback?.to ?? 'the previous release'}` : `Deploying ${version}`} to ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')} (concurrency ${options.concurrency}, failure budget ${options.maxFailures !== undefined ? `${options.maxFailures} targets` : `${options.maxFailurePercent}%`})\n`,
  );
  const report = await deployFleet(plan, options, {
    connector: new SshConnector({ privateKey, knownHosts, passphrase: io.env.FLEET_SSH_PASSPHRASE }),
    clock: systemClock,
    urlGet: fetchUrl,
    signal: io.signal,
    onStep: progress.onStep,
    onTarget: progress.onTarget,
    onWave: progress.onWave,
  });
  progress.finish();
  const reportFile = str(values, 'report');
  if (reportFile) {
    if (!io.writeText) throw new Error('this environment cannot write files');
    await io.writeText(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  }
  io.stdout(`\n${renderReport(report)}`);
  return succeeded(report) ? 0 : 1;
}

/** The SSH key and host-key trust for a command that connects, checked before anything does. */
export async function sshSettings(
  values: Values,
  io: CliIO,
  registry: Registry,
  plan: Plan,
): Promise<{ privateKey: string; knownHosts: string }> {
  const keyFile = str(values, 'key') ?? io.env.FLEET_SSH_KEY_FILE;
  const privateKey = keyFile ? await readUserFile(io, keyFile, '--key') : io.env.FLEET_SSH_KEY;
  if (!privateKey?.trim()) {
    throw new ConfigurationError([
      {
        path: [],
        source: '--key',
        message: 'no SSH private key',
        hint: 'pass --key FILE, or put the key in $FLEET_SSH_KEY (or its path in $FLEET_SSH_KEY_FILE)',
      },
    ]);
  }
  const knownHostsFile = str(values, 'known-hosts');
  const knownHosts = knownHostsFile
    ? await readUserFile(io, knownHostsFile, '--known-hosts')
    : (io.env.FLEET_KNOWN_HOSTS ?? '');
  checkTrust(registry, plan, knownHosts);
  return { privateKey, knownHosts };
}
