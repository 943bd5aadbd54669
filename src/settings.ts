/**
 * Every setting of every entry point in one table: per setting its CLI flag, its action input (or a
 * reusable workflow's own input), the check of its text (from values.ts), its default and its help line.
 * The rows: a command's (release, selection, SSH, report), the rollout engine's, the read commands' and
 * plan's, the actions' own (SSH key text, the single server, plan, gate, summary) and the workflows' own.
 * From the table come the typed settings each entry point resolves once (`resolveRollout` for a deploy or
 * rollback, CLI and actions alike; `remoteSettings` for the read commands), the CLI's option specs and the
 * Options part of every usage, and the reusable workflows' inputs (.ci/workflows.mjs).
 * __tests__/settings.test.ts holds every CLI flag and help line, every action.yml input and every workflow
 * input to it, defaults included. So a default is written once, here (and in the action.yml files, which
 * cannot import it, under that test).
 *
 * Pure: an edge hands in how to read its flags or inputs (a `SettingSource`).
 */
import type { FleetOptions } from './deploy/fleet';
import { staleLockProblem, type StepLimits } from './deploy/locks';
import type { RegistryCredentials, RegistryLogin } from './deploy/strategy';
import { ConfigurationError, type Problem } from './errors';
import { ENV_VAR } from './registry/patterns';
import type { Registry, Target } from './registry/model';
import { planDeployment, type Plan } from './plan/plan';
import { checkVersion } from './registry/release';
import {
  checkBoolean,
  checkDuration,
  checkPercent,
  checkWaveCount,
  checkWholeNumber,
  given,
  type Check,
} from './values';

export interface Setting<T = unknown> {
  /** The CLI flag without its dashes, and its one-letter form. */
  flag?: string;
  short?: string;
  /** What the flag takes, as the usage names it (`N`, `FILE`); none: the flag is a switch. */
  arg?: string;
  /** The action input (and the reusable workflows' input of the same name, when they pass it on). */
  input?: string;
  /** A reusable workflow's own input, which no action reads (the workflow uses it itself). */
  workflow?: string;
  /** The default as a person writes it; every action.yml that declares the input has it too. */
  default?: string;
  /** The default as the help tells it, when the command works it out (from the environment, say). */
  defaultHelp?: string;
  /** The usage shows it outside brackets. */
  required?: boolean;
  check: Check<T>;
  help: string;
}

/** The options of the fleet engine a person sets; the rest (version, actor, run) have functions below. */
export type RolloutSettings = Pick<
  FleetOptions,
  | 'concurrency'
  | 'perServer'
  | 'maxFailurePercent'
  | 'maxFailures'
  | 'lockWaitMs'
  | 'breakLocksOlderThanMs'
  | 'commandTimeoutMs'
  | 'pullTimeoutMs'
  | 'pullAttempts'
  | 'sharePulls'
  | 'prePull'
  | 'prePullWaves'
  | 'prePullMinFreeMb'
  | 'recoveryWindowMs'
  | 'onceHooks'
>;

/** One row per option; an option the engine needs has a default, so "not given" always has a value. */
type RolloutRows = {
  [K in keyof RolloutSettings]-?: undefined extends RolloutSettings[K]
    ? Setting<NonNullable<RolloutSettings[K]>>
    : Setting<RolloutSettings[K]> & { default: string };
};

const text: Check<string> = (t) => t;
const atLeast =
  (min: number): Check<number> =>
  (t, source) =>
    checkWholeNumber(t, source, min);
/** A remote command's timer: at least a second, and at most a day (far within what a Node timer can wait). */
const timeout: Check<number> = (t, source) => checkDuration(t, source, { min: '1s', max: '24h' });

/** The registry a command reads when none is named (the CLI: and $FLEET_REGISTRY is unset). */
export const DEFAULT_REGISTRY = 'servers/production.json';
/**
 * Targets a deploy works on at once, and servers a read command works on at once (one connection each):
 * the same 10, so a person who learnt one knows the other.
 */
const CONCURRENCY = '10';

const ROLLOUT_ROWS: RolloutRows = {
  concurrency: {
    flag: 'concurrency',
    short: 'c',
    arg: 'N',
    input: 'concurrency',
    default: CONCURRENCY,
    check: atLeast(1),
    help: 'targets deployed at once',
  },
  perServer: {
    flag: 'per-server',
    arg: 'N',
    input: 'per-server',
    default: '4',
    check: atLeast(1),
    help: 'targets of one server at once, on its one connection',
  },
  maxFailurePercent: {
    flag: 'max-failure-percent',
    arg: 'P',
    input: 'max-failure-percent',
    default: '0',
    check: checkPercent,
    help: 'stop after a wave when more than P% of the targets so far failed',
  },
  maxFailures: {
    flag: 'max-failures',
    arg: 'N',
    input: 'max-failures',
    check: atLeast(0),
    help: '…or when more than N failed (replaces the percentage)',
  },
  lockWaitMs: {
    flag: 'lock-wait',
    arg: 'DURATION',
    input: 'lock-wait',
    default: '60s',
    check: checkDuration,
    help: "how long to wait for another deploy's lock",
  },
  breakLocksOlderThanMs: {
    flag: 'break-stale-locks',
    arg: 'AGE',
    input: 'break-stale-locks',
    defaultHelp: 'never',
    check: checkDuration,
    help: 'break locks older than AGE (e.g. 2h) left by crashed deploys',
  },
  commandTimeoutMs: {
    flag: 'command-timeout',
    arg: 'DURATION',
    input: 'command-timeout',
    default: '2m',
    check: timeout,
    help: 'how long one remote command may run, but a pull or the switch',
  },
  pullTimeoutMs: {
    flag: 'pull-timeout',
    arg: 'DURATION',
    input: 'pull-timeout',
    default: '15m',
    check: timeout,
    help: 'how long one pull, or the switch (compose up), may run',
  },
  pullAttempts: {
    flag: 'pull-attempts',
    arg: 'N',
    input: 'pull-attempts',
    default: '3',
    check: atLeast(1),
    help: "tries of a target's pull before the target fails",
  },
  sharePulls: {
    flag: 'share-pulls',
    arg: 'BOOL',
    input: 'share-pulls',
    default: 'true',
    check: checkBoolean,
    help: 'tenants of one server deploying the same images share one pull (true), or each pulls its own (false)',
  },
  prePull: {
    flag: 'pre-pull',
    arg: 'BOOL',
    input: 'pre-pull',
    default: 'true',
    check: checkBoolean,
    help: "while a wave runs and gates, pull the next wave's images on their servers (true), or not (false)",
  },
  prePullWaves: {
    flag: 'pre-pull-waves',
    arg: 'N|all',
    input: 'pre-pull-waves',
    default: '1',
    check: checkWaveCount,
    help:
      'how many waves ahead to pre-pull: 1, the next wave while a wave runs and gates; all, every later wave from the ' +
      'first one on (more pulled if the rollout stops)',
  },
  prePullMinFreeMb: {
    flag: 'pre-pull-min-free',
    arg: 'MIB',
    input: 'pre-pull-min-free',
    default: '1024',
    check: atLeast(0),
    help: 'no pre-pull on a server whose tenant filesystem has less than MIB MiB free (a warning; the deploy pulls as usual)',
  },
  recoveryWindowMs: {
    flag: 'recovery-window',
    arg: 'DURATION',
    input: 'recovery-window',
    default: '60s',
    check: timeout,
    help: 'how long to keep reconnecting to a server that dropped off mid-deploy, to finish its rollback, history and unlock',
  },
  onceHooks: {
    input: 'once-hooks',
    default: 'true',
    check: checkBoolean,
    help: 'run the hooks marked "once" (true), or skip them: another job of the rollout runs them (false)',
  },
};

const row = <T>(r: Setting<T>) => r;
const REGISTRY = DEFAULT_REGISTRY;

/** What a command reads besides: the release, which targets, the SSH trust, the report, who deploys. */
const COMMAND_ROWS = {
  version: row({
    flag: 'version',
    short: 'v',
    arg: 'TAG|DIGEST',
    input: 'version',
    check: checkVersion,
    help: 'the image tag (v1.4.2) or digest (sha256:…) to deploy: of every image not named in --versions',
  }),
  versions: row({
    flag: 'versions',
    arg: 'VAR=VERSION,…',
    input: 'versions',
    check: checkVersions,
    help: 'a version per image, e.g. "APP_IMAGE=sha256:…,WORKER_IMAGE=v3" (comma or newline separated)',
  }),
  to: row({
    flag: 'to',
    short: 't',
    arg: 'VERSION',
    input: 'to',
    defaultHelp: "each target's previous release",
    check: checkVersion,
    help: 'the version to go back to, from the history',
  }),
  registry: row({
    flag: 'registry',
    short: 'r',
    arg: 'FILE',
    input: 'registry',
    default: REGISTRY,
    defaultHelp: `$FLEET_REGISTRY or ${REGISTRY}`,
    check: text,
    help: 'the server registry',
  }),
  select: row({
    flag: 'select',
    short: 's',
    arg: 'EXPR',
    input: 'select',
    defaultHelp: 'every target',
    check: text,
    help: 'which targets, as `fleet-deploy plan --help` tells',
  }),
  waves: row({
    flag: 'waves',
    short: 'w',
    arg: 'SPEC',
    input: 'waves',
    default: 'all',
    check: text,
    help: '"1,5%,25%,100%", "rings" or "all"',
  }),
  report: row({
    flag: 'report',
    arg: 'FILE',
    check: text,
    help: 'write the JSON report there (see docs/report.md)',
  }),
  json: row({
    flag: 'json',
    check: checkBoolean,
    help: 'write the JSON report to stdout instead of the table (progress stays on stderr)',
  }),
  dryRun: row({
    flag: 'dry-run',
    input: 'dry-run',
    default: 'false',
    check: checkBoolean,
    help: "print each target's remote commands; connect to nothing",
  }),
  key: row({
    flag: 'key',
    arg: 'FILE',
    defaultHelp:
      '$FLEET_SSH_KEY (the key or its path), $FLEET_SSH_KEY_FILE, else the ssh-agent at $SSH_AUTH_SOCK',
    check: text,
    help: 'SSH private key',
  }),
  knownHosts: row({
    flag: 'known-hosts',
    arg: 'FILE',
    defaultHelp: '$FLEET_KNOWN_HOSTS text, else ~/.ssh/known_hosts when not in CI',
    check: text,
    help: "trusted host keys besides the registry's pins",
  }),
  registryHost: row({
    flag: 'registry-host',
    arg: 'HOST',
    input: 'registry-host',
    defaultHelp: '$FLEET_REGISTRY_HOST',
    check: checkRegistryHost,
    help: 'the registry host the login is for (ghcr.io; docker.io for Docker Hub): only images of that host log in',
  }),
  registryLogins: row({
    input: 'registry-logins',
    defaultHelp: '$FLEET_REGISTRY_LOGINS',
    check: text,
    help: 'more registry logins, from a secret: one a line, "HOST USERNAME PASSWORD"; each sent only to its host',
  }),
  registryUsername: row({
    flag: 'registry-username',
    arg: 'USER',
    input: 'registry-username',
    defaultHelp: '$FLEET_REGISTRY_USERNAME',
    check: text,
    help: 'log in to the image registries for the pull as USER; the password comes from $FLEET_REGISTRY_PASSWORD, never a flag',
  }),
  registryPassword: row({
    input: 'registry-password',
    defaultHelp: '$FLEET_REGISTRY_PASSWORD',
    check: text,
    help: 'the password or token of registry-username, from a secret: masked, sent to the servers on stdin only',
  }),
  keepRegistryLogin: row({
    flag: 'keep-registry-login',
    input: 'keep-registry-login',
    default: 'false',
    check: checkBoolean,
    help: "leave the registry login on the servers (the engine's own config) instead of removing it after the pull",
  }),
  actor: row({
    flag: 'actor',
    arg: 'NAME',
    defaultHelp: '$GITHUB_ACTOR or $USER',
    check: text,
    help: 'recorded in locks and history',
  }),
};

/** What the read-and-maintain commands (status, logs, history, backup, restore, prune, unlock) and plan read besides. */
const READ_ROWS = {
  serverConcurrency: row({
    flag: 'concurrency',
    short: 'c',
    arg: 'N',
    input: 'concurrency',
    default: CONCURRENCY,
    check: atLeast(1),
    help: 'servers worked on at once, one SSH connection each',
  }),
  format: row({ flag: 'format', short: 'f', arg: 'FORMAT', check: text, help: 'table (default) or json' }),
  planFormat: row({
    flag: 'format',
    short: 'f',
    arg: 'FORMAT',
    check: text,
    help: 'table (default), json (the whole plan) or matrix (one GitHub matrix per wave)',
  }),
  jsonFormat: row({ flag: 'json', check: checkBoolean, help: 'the same as --format json' }),
  planDiff: row({
    flag: 'diff',
    check: checkBoolean,
    help:
      "connect read-only (one SSH connection per server) and print a unified diff of each tenant's shipped files " +
      'against what a release would ship, identical changes grouped, values of secret variables redacted',
  }),
  planSelect: row({
    flag: 'select',
    short: 's',
    arg: 'EXPR',
    defaultHelp: 'every target',
    check: text,
    help:
      'which targets: clauses KEY=VALUE or KEY!=VALUE joined by "," (AND), alternatives by "|", "*" as a wildcard. ' +
      'Keys: tenant, server, region, ring, id, or a label. e.g. "region=eu,ring!=sandbox", "tenant=acme-*|globex", "tier=enterprise"',
  }),
  planWaves: row({
    flag: 'waves',
    short: 'w',
    arg: 'SPEC',
    check: text,
    help:
      'cumulative steps, counts or shares rounded up, ending at 100%: "1,5%,25%,100%"; ' +
      'or "rings" for one wave per ring; or "all" (default) for one wave',
  }),
  maxPerJob: row({
    flag: 'max-per-job',
    arg: 'N',
    input: 'max-per-job',
    default: '1',
    check: atLeast(1),
    help: 'targets per GitHub matrix job; a wave never exceeds 256 jobs',
  }),
  statusWaves: row({
    flag: 'waves',
    short: 'w',
    arg: 'SPEC',
    defaultHelp: 'all targets are one wave',
    check: text,
    help: 'the waves "most of its wave" compares within',
  }),
  failOnDrift: row({
    flag: 'fail-on-drift',
    input: 'fail-on-drift',
    default: 'false',
    check: checkBoolean,
    help: 'exit 3 when any target drifted (for scheduled checks)',
  }),
  limit: row({
    flag: 'limit',
    short: 'n',
    arg: 'N',
    default: '10',
    check: atLeast(1),
    help: 'entries per target',
  }),
  tail: row({
    flag: 'tail',
    short: 'n',
    arg: 'N',
    default: '100',
    check: atLeast(0),
    help: 'lines per container',
  }),
  since: row({
    flag: 'since',
    arg: 'TIME',
    check: text,
    help: 'only lines since TIME: a duration (10m, 2h, 1d) or a date (2024-05-01T12:00:00Z)',
  }),
  follow: row({
    flag: 'follow',
    short: 'f',
    check: checkBoolean,
    help: "keep following (at most 10 tenants a server: sshd's MaxSessions)",
  }),
  pruneDryRun: row({
    flag: 'dry-run',
    check: checkBoolean,
    help: 'list what would be removed and the space it would free; remove nothing',
  }),
  backup: row({
    flag: 'backup',
    arg: 'ID',
    check: text,
    help: 'the backup to restore (see fleet-deploy backups)',
  }),
  sha256: row({
    flag: 'sha256',
    arg: 'HEX',
    check: text,
    help: "the archive's sha256 as fleet-deploy backup printed it (kept off the server)",
  }),
  database: row({
    flag: 'database',
    check: checkBoolean,
    help:
      'also restore the database dump (needs backup.dump.restore); ' +
      "when none of the stack's containers runs, starts it first (compose up -d) for the dumps",
  }),
  up: row({ flag: 'up', check: checkBoolean, help: 'compose up -d after the restore' }),
  force: row({
    flag: 'force',
    check: checkBoolean,
    help: 'release locks that still look in use (their deploy was killed, say)',
  }),
};

/** Inputs only the actions have: the SSH key as text, the single server, the plan's, gate's and summary's own. */
const ACTION_ROWS = {
  sshKey: row({
    input: 'ssh-key',
    check: text,
    help: 'the SSH private key of the deploy user, from a secret (masked)',
  }),
  knownHostsText: row({
    input: 'known-hosts',
    check: text,
    help: 'known_hosts lines trusted besides the host keys pinned in the registry',
  }),
  targets: row({
    input: 'targets',
    check: text,
    help: 'target ids separated by spaces or commas (a matrix entry), or select',
  }),
  prePullWave: row({
    input: 'pre-pull-wave',
    check: atLeast(1),
    help: "only pre-pull wave N's images on their servers",
  }),
  expectedVersion: row({
    input: 'version',
    check: text,
    help: 'the version the health check expects (for {version} in its URL or body)',
  }),
  maxJobsPerServer: row({
    input: 'max-jobs-per-server',
    default: '1',
    check: atLeast(1),
    help: 'matrix jobs of one wave on one server',
  }),
  environment: row({
    input: 'environment',
    default: 'production',
    check: text,
    help: 'the GitHub environment',
  }),
  waveEnvironments: row({ input: 'wave-environments', check: text, help: 'a GitHub environment per wave' }),
  reports: row({
    input: 'reports',
    default: 'fleet-deploy-reports',
    check: text,
    help: "the directory of the waves' JSON reports",
  }),
  wave: row({ input: 'wave', check: atLeast(1), help: 'the wave just finished' }),
  expectedTargets: row({
    input: 'expected-targets',
    check: atLeast(0),
    help: 'targets the waves so far planned',
  }),
  analysisUrl: row({
    input: 'analysis-url',
    check: text,
    help: 'an HTTP(S) URL whose 2xx answer lets the rollout go on',
  }),
  analysisCommand: row({
    input: 'analysis-command',
    check: text,
    help: 'a command whose exit code 0 lets the rollout go on',
  }),
  analysisRegistry: row({
    input: 'analysis-registry',
    check: text,
    help: 'the registry whose rollout.analysis the gate measures',
  }),
  // the summary action's
  stopped: row({
    input: 'stopped',
    check: text,
    help: 'why the rollout stopped, when the reports do not say',
  }),
  title: row({ input: 'title', check: text, help: 'the title of the summary and the Deployment' }),
  reportLink: row({
    input: 'report-link',
    default: 'the fleet-deploy-reports artifact',
    check: text,
    help: 'where the summary points for the reports',
  }),
  deployment: row({
    input: 'deployment',
    default: 'none',
    check: text,
    help: 'start, finish or none: the GitHub Deployment',
  }),
  deploymentId: row({ input: 'deployment-id', check: text, help: 'the Deployment to finish' }),
  environmentUrl: row({
    input: 'environment-url',
    check: text,
    help: 'URL shown on the environment and the Deployment',
  }),
  ref: row({ input: 'ref', check: text, help: "the commit of the Deployment (default: the run's)" }),
  token: row({
    input: 'token',
    default: '${{ github.token }}',
    check: text,
    help: 'the token that writes the Deployment',
  }),
  failOnFailure: row({
    input: 'fail-on-failure',
    default: 'true',
    check: checkBoolean,
    help: 'fail the step when a target was not deployed',
  }),
  // one server without a registry (src/actions/single.ts): each the registry field it stands for
  host: row({ input: 'host', check: text, help: "the server's host (servers[0].host)" }),
  sshUser: row({ input: 'ssh-user', check: text, help: 'the deploy user (servers[0].user)' }),
  sshPort: row({ input: 'ssh-port', check: text, help: 'the SSH port (servers[0].port)' }),
  hostKey: row({ input: 'host-key', check: text, help: "the server's pinned host key (servers[0].hostKey)" }),
  path: row({ input: 'path', check: text, help: "the tenant's directory" }),
  composeCommand: row({ input: 'compose-command', check: text, help: 'the Compose command' }),
  healthPort: row({ input: 'health-port', check: text, help: 'the health check port on the server' }),
  healthUrl: row({ input: 'health-url', check: text, help: 'the health check URL' }),
  healthPath: row({ input: 'health-path', check: text, help: 'the health check path' }),
  imageVariable: row({
    input: 'image-variable',
    default: 'APP_IMAGE',
    check: text,
    help: 'the variable in .env that holds the image',
  }),
  imageRepository: row({ input: 'image-repository', check: text, help: 'the image repository' }),
};

/** The reusable workflows' own inputs (.ci/workflows.mjs), which they use themselves. */
const WORKFLOW_ROWS = {
  maxParallel: row({
    workflow: 'max-parallel',
    default: '20',
    check: atLeast(1),
    help: 'matrix jobs of one wave running at once',
  }),
  approvalEnvironment: row({
    workflow: 'analysis-approval-environment',
    default: 'fleet-deploy-approval',
    check: text,
    help: 'the environment whose reviewers approve a paused rollout',
  }),
  prePullEnvironment: row({
    workflow: 'pre-pull-environment',
    check: text,
    help: 'the environment of the prepull-N jobs',
  }),
  mode: row({
    workflow: 'mode',
    default: 'matrix',
    check: text,
    help: 'matrix (a job per wave and server) or fleet (one job)',
  }),
  deployments: row({
    workflow: 'deployments',
    default: 'false',
    check: checkBoolean,
    help: 'create a GitHub Deployment',
  }),
  waveTimeout: row({
    workflow: 'wave-timeout-minutes',
    default: '60',
    check: atLeast(1),
    help: "a wave job's time limit",
  }),
  fleetDeployRef: row({
    workflow: 'fleet-deploy-ref',
    check: text,
    help: 'the fleet-deploy commit, on older GitHub Enterprise Server',
  }),
  fleetDeployRepository: row({
    workflow: 'fleet-deploy-repository',
    check: text,
    help: 'the fleet-deploy repository, on older GitHub Enterprise Server',
  }),
  callKey: row({ workflow: 'call-key', check: text, help: "names this call's report artifacts" }),
};

/** The one table. */
export const SETTINGS = { ...COMMAND_ROWS, ...ROLLOUT_ROWS, ...READ_ROWS, ...ACTION_ROWS, ...WORKFLOW_ROWS };
export type SettingName = keyof typeof SETTINGS;
/** The rows that become the engine's options (`rolloutSettings`). */
export const ROLLOUT_NAMES = Object.keys(ROLLOUT_ROWS) as ReadonlyArray<keyof RolloutSettings>;
type ValueOf<K extends SettingName> = (typeof SETTINGS)[K] extends Setting<infer T> ? T : never;

/** A setting's default, checked: for code that needs it without a person's flags or inputs. */
/** The step limits a deploy runs with by default: how a lock without a lease is judged. */
export function defaultStepLimits(): StepLimits {
  return { commandTimeoutMs: defaultOf('commandTimeoutMs'), pullTimeoutMs: defaultOf('pullTimeoutMs') };
}

export function defaultOf<K extends SettingName>(name: K): ValueOf<K> {
  const r = SETTINGS[name] as Setting<ValueOf<K>>;
  if (r.default === undefined) throw new Error(`settings.${name} has no default`);
  return r.check(r.default, `the default of ${name}`);
}

/** Where a command's settings come from: CLI flags or action inputs. */
export interface SettingSource {
  /** The text given for a row; undefined or blank: not given. */
  read(row: Setting): string | undefined;
  /** The flag or input as an error names it. */
  name(row: Setting): string;
  /** The row given a value, as a person would write it. */
  example(row: Setting, value: string): string;
}

export function fromFlags(values: Readonly<Record<string, string | boolean | undefined>>): SettingSource {
  return {
    read: (r) => {
      const v = r.flag === undefined ? undefined : values[r.flag];
      return v === undefined ? undefined : String(v);
    },
    // A setting without a flag (a password) is read from the environment: named as its variable.
    name: (r) => (r.flag !== undefined ? `--${r.flag}` : (r.defaultHelp ?? `input "${r.input}"`)),
    example: (r, value) => `--${r.flag} ${value}`,
  };
}

/** `getInput` is `@actions/core`'s, handed in by the action (this module stays pure). */
export function fromInputs(getInput: (name: string) => string): SettingSource {
  return {
    read: (r) => (r.input === undefined ? undefined : getInput(r.input)),
    name: (r) => `input "${r.input}"`,
    example: (r, value) => `${r.input}: ${value}`,
  };
}

/** One setting: the checked text given, else the default, else undefined. */
export function setting<K extends SettingName>(source: SettingSource, name: K): ValueOf<K> | undefined {
  const r = SETTINGS[name] as Setting<ValueOf<K>>;
  const t = given(source.read(r)) ?? r.default;
  return t === undefined ? undefined : r.check(t, source.name(r));
}

/**
 * The engine's options from `source`, each checked, and a lock age to break checked against the longest
 * stretch a live deploy of `targets` leaves its lock untouched (breaking a working deploy's lock is worse
 * than waiting).
 */
export function rolloutSettings(source: SettingSource, targets: readonly Target[]): RolloutSettings {
  const values = ROLLOUT_NAMES.map((n) => [n, setting(source, n)] as const).filter(
    ([, v]) => v !== undefined,
  );
  // Complete: every option the engine needs has a default (RolloutRows).
  const settings = Object.fromEntries(values) as unknown as RolloutSettings;
  const age = settings.breakLocksOlderThanMs;
  if (age !== undefined) {
    const problem = staleLockProblem(age, targets, settings, source.name(SETTINGS.breakLocksOlderThanMs));
    if (problem) throw new ConfigurationError([problem]);
  }
  return settings;
}

/**
 * What a rollout deploys: the version given, and a version per image (`versions`), each of whose
 * variables must be an image variable of a selected target; without `version`, `versions` must name
 * every image of every selected target. For a rollback, the version to go back to, if given.
 */
export function release(
  source: SettingSource,
  mode: 'deploy' | 'rollback',
  targets: readonly Target[],
): Pick<FleetOptions, 'version' | 'versions' | 'rollback'> {
  if (mode === 'rollback') {
    const to = setting(source, 'to');
    return { version: to ?? 'previous', rollback: to === undefined ? {} : { to } };
  }
  const version = setting(source, 'version');
  const versions = setting(source, 'versions');
  if (version === undefined && versions === undefined)
    throw new ConfigurationError([
      {
        path: [],
        source: source.name(SETTINGS.version),
        message: `is required (or ${source.name(SETTINGS.versions)}): the image tag or digest to deploy`,
        hint: `e.g. ${source.example(SETTINGS.version, 'v1.4.2')}`,
      },
    ]);
  if (versions === undefined) return { version: version! };
  const problems = versionsProblems(source, versions, version, targets);
  if (problems.length) throw new ConfigurationError(problems);
  const label = Object.entries(versions)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return { version: version ?? label, versions };
}

/** `VAR=VERSION` pairs, separated by commas or newlines: each variable a name, each version a tag or digest. */
function checkVersions(text: string, source: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(/[,\n]/).map((p) => p.trim())) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const variable = pair.slice(0, eq).trim();
    const malformed = eq < 0 || !ENV_VAR.re.test(variable);
    if (malformed || variable in out)
      throw new ConfigurationError([
        {
          path: [],
          source,
          message: `${JSON.stringify(pair)} is not ${malformed ? 'IMAGE_VARIABLE=VERSION' : 'the only version of its variable'}`,
          hint: 'give each image variable once, e.g. "APP_IMAGE=sha256:…,WORKER_IMAGE=v3"',
        },
      ]);
    out[variable] = checkVersion(pair.slice(eq + 1).trim(), source);
  }
  return out;
}

/** Variables no selected target has; without `version`, images of a target that `versions` leaves out. */
function versionsProblems(
  source: SettingSource,
  versions: Readonly<Record<string, string>>,
  version: string | undefined,
  targets: readonly Target[],
): Problem[] {
  const where = source.name(SETTINGS.versions);
  const known = [...new Set(targets.flatMap((t) => t.tenant.images.map((i) => i.variable)))];
  const problems: Problem[] = Object.keys(versions)
    .filter((v) => !known.includes(v))
    .map((v) => ({
      path: [],
      source: where,
      message: `${v} is not an image variable of any selected target`,
      hint: `the image variables of the selection: ${known.join(', ') || 'none (no target selected)'}`,
    }));
  if (version !== undefined) return problems;
  const versionName = source.name(SETTINGS.version);
  for (const t of targets) {
    const missing = t.tenant.images.map((i) => i.variable).filter((v) => !(v in versions));
    if (missing.length)
      problems.push({
        path: [],
        source: where,
        message: `names no version for ${missing.join(', ')} of ${t.id}`,
        hint: `add ${missing.map((m) => `${m}=…`).join(',')} to it, or give ${versionName} for the images it leaves out`,
      });
  }
  return problems;
}

/** A registry host as images name it: a DNS name or address, and a port (ghcr.io, localhost:5000). */
const REGISTRY_HOST = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(?::\d{1,5})?$/;
function checkRegistryHost(t: string, source: string): string {
  if (REGISTRY_HOST.test(t)) return t;
  throw new ConfigurationError([
    {
      path: [],
      source,
      message: `${JSON.stringify(t)} is not a registry host`,
      hint: 'the host part of the image names it is for, e.g. ghcr.io, registry.example.com:5000, or docker.io for Docker Hub',
    },
  ]);
}

const loginProblem = (source: string, message: string, hint: string): ConfigurationError =>
  new ConfigurationError([{ path: [], source, message, hint }]);

/** The one login of registry-host, registry-username and registry-password (or their variables). */
function singleLogin(
  source: SettingSource,
  env: Readonly<Record<string, string | undefined>>,
): RegistryLogin[] {
  const username = setting(source, 'registryUsername') ?? given(env.FLEET_REGISTRY_USERNAME);
  const password = setting(source, 'registryPassword') ?? given(env.FLEET_REGISTRY_PASSWORD);
  const host =
    setting(source, 'registryHost') ??
    (given(env.FLEET_REGISTRY_HOST) && checkRegistryHost(env.FLEET_REGISTRY_HOST!, '$FLEET_REGISTRY_HOST'));
  if (username === undefined && password === undefined) return [];
  if (username === undefined || password === undefined)
    throw loginProblem(
      source.name(username === undefined ? SETTINGS.registryUsername : SETTINGS.registryPassword),
      username === undefined
        ? 'is needed with a registry password: the user to log in as'
        : `is needed to log in to the image registries as ${username}`,
      'give both the registry username and password, or neither (the servers are logged in already, or the images are public)',
    );
  if (!host)
    throw loginProblem(
      source.name(SETTINGS.registryHost),
      `is needed with a registry login: the registry host the login of ${username} is for`,
      "name the host of the images it is for (ghcr.io for GitHub's registry, docker.io for Docker Hub); " +
        'only those images log in, so a token never reaches another registry',
    );
  if (/[\r\n]/.test(password))
    throw loginProblem(
      source.name(SETTINGS.registryPassword),
      'holds a line break',
      'a registry password is one line',
    );
  return [{ host, username, password }];
}

/** The logins of registry-logins (or $FLEET_REGISTRY_LOGINS): "HOST USERNAME PASSWORD", one a line. */
function moreLogins(
  source: SettingSource,
  env: Readonly<Record<string, string | undefined>>,
): RegistryLogin[] {
  const fromSetting = setting(source, 'registryLogins');
  const text = fromSetting ?? given(env.FLEET_REGISTRY_LOGINS) ?? '';
  const where = fromSetting !== undefined ? source.name(SETTINGS.registryLogins) : '$FLEET_REGISTRY_LOGINS';
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ words: line.trim().split(/\s+/).filter(Boolean), n: i + 1 }))
    .filter(({ words }) => words.length > 0 && !words[0]!.startsWith('#'))
    .map(({ words, n }) => {
      // The line itself is never quoted: it holds a password.
      if (words.length !== 3)
        throw loginProblem(
          where,
          `line ${n} has ${words.length} words, not 3`,
          'write each login as "HOST USERNAME PASSWORD"',
        );
      return {
        host: checkRegistryHost(words[0]!, `${where} line ${n}`),
        username: words[1]!,
        password: words[2]!,
      };
    });
}

/**
 * The logins to the image registries for the pull, each for the registry host it names: the one of
 * registry-host, registry-username and registry-password (the flags or inputs, else $FLEET_REGISTRY_HOST,
 * $FLEET_REGISTRY_USERNAME, $FLEET_REGISTRY_PASSWORD), then the lines of registry-logins (else
 * $FLEET_REGISTRY_LOGINS). A password never comes from a flag, which a process listing or a shell history
 * would show. One login per host.
 */
export function registryLogin(
  source: SettingSource,
  env: Readonly<Record<string, string | undefined>>,
): RegistryCredentials | undefined {
  const logins = [...singleLogin(source, env), ...moreLogins(source, env)];
  if (logins.length === 0) return undefined;
  const twice = logins.find((l, i) => logins.findIndex((m) => m.host === l.host) !== i);
  if (twice)
    throw loginProblem(
      source.name(SETTINGS.registryLogins),
      `names the registry host ${twice.host} twice`,
      'give one login per registry host',
    );
  return { logins, keep: setting(source, 'keepRegistryLogin') ?? false };
}

/**
 * Who deploys and which run, recorded in locks, history and the report. One rule for the CLI and the
 * actions: the actor given, else GitHub's, else the login user; the GitHub run and its attempt when there
 * is one, else the edge and the time it started.
 */
export function identity(
  source: SettingSource,
  env: Readonly<Record<string, string | undefined>>,
  edge: 'cli' | 'action',
  now = new Date(),
): Pick<FleetOptions, 'actor' | 'runId'> {
  return {
    actor: setting(source, 'actor') ?? (env.GITHUB_ACTOR || env.USER || 'unknown'),
    runId: env.GITHUB_RUN_ID
      ? `${env.GITHUB_REPOSITORY ?? ''}#${env.GITHUB_RUN_ID}.${env.GITHUB_RUN_ATTEMPT || '1'}`
      : `${edge}-${now.toISOString()}`,
  };
}

/** A deploy or rollback resolved once from its flags or inputs: the plan, the engine's options, what to print. */
export interface Rollout {
  plan: Plan;
  targets: Target[];
  options: FleetOptions;
  /** Print each target's remote commands, connect to nothing (a deploy only). */
  dryRun: boolean;
  /** The CLI's: where to write the JSON report, and whether to print it instead of the table. */
  report?: string;
  json: boolean;
}

/**
 * Every setting of a deploy or rollback, checked, before anything connects: the selection (`select`,
 * else the setting), the waves, the release, who deploys, the engine's options and the registry logins.
 * The CLI and the actions both call it; `env` gives the variables a setting falls back to.
 */
export function resolveRollout(
  source: SettingSource,
  mode: 'deploy' | 'rollback',
  registry: Registry,
  edge: { name: 'cli' | 'action'; env: Readonly<Record<string, string | undefined>>; select?: string },
): Rollout {
  const plan = planDeployment(registry, {
    select: edge.select ?? setting(source, 'select'),
    waves: setting(source, 'waves'),
  });
  const targets = plan.plan.flatMap((w) => w.targets);
  const login = registryLogin(source, edge.env);
  const options: FleetOptions = {
    ...release(source, mode, targets),
    ...identity(source, edge.env, edge.name),
    ...rolloutSettings(source, targets),
    ...(login ? { registry: login } : {}),
    ...(mode === 'deploy' && registry.analysis ? { analysis: registry.analysis } : {}),
  };
  const report = setting(source, 'report');
  return {
    plan,
    targets,
    options,
    dryRun: mode === 'deploy' && (setting(source, 'dryRun') ?? false),
    ...(report !== undefined ? { report } : {}),
    json: setting(source, 'json') ?? false,
  };
}

/** The flags every command that works on servers takes (status, logs, history, backup, restore, prune). */
export const REMOTE_FLAGS = ['registry', 'select', 'serverConcurrency', 'key', 'knownHosts'] as const;

/** What a command that works on servers reads from them, resolved once. */
export interface RemoteSettings {
  registry?: string;
  select?: string;
  waves?: string;
  concurrency: number;
  key?: string;
  knownHosts?: string;
}

export function remoteSettings(source: SettingSource): RemoteSettings {
  const named = {
    // not its default: the CLI then reads $FLEET_REGISTRY first (cli/args.ts registryPath)
    registry: given(source.read(SETTINGS.registry)),
    select: setting(source, 'select'),
    waves: setting(source, 'statusWaves'),
    key: setting(source, 'key'),
    knownHosts: setting(source, 'knownHosts'),
  };
  return {
    ...Object.fromEntries(Object.entries(named).filter(([, v]) => v !== undefined)),
    concurrency: setting(source, 'serverConcurrency')!,
  };
}

// The CLI's side: option specs for parseArgs and the usage text, from the same rows.

const flagRows = (names: readonly SettingName[]): Setting[] =>
  names.map((n): Setting => SETTINGS[n]).filter((r) => r.flag !== undefined);
const flagWords = (r: Setting) => `--${r.flag}${r.arg ? ` ${r.arg}` : ''}`;

/** `parseArgs` option specs: a flag with an `arg` takes a string, one without is a switch. */
export function flagOptions(
  names: readonly SettingName[],
): Record<string, { type: 'string' | 'boolean'; short?: string }> {
  return Object.fromEntries(
    flagRows(names).map((r) => [
      r.flag!,
      { type: r.arg ? ('string' as const) : ('boolean' as const), ...(r.short ? { short: r.short } : {}) },
    ]),
  );
}

const WIDTH = 110;

/** `fleet-deploy deploy --version TAG|DIGEST [--registry FILE] …`, wrapped under the command. */
export function synopsis(command: string, names: readonly SettingName[]): string {
  const head = `fleet-deploy ${command}`;
  const rows = flagRows(names);
  const words = [
    ...rows.filter((r) => r.required).map(flagWords),
    ...rows.filter((r) => !r.required).map((r) => `[${flagWords(r)}]`),
  ];
  const lines = [head];
  for (const w of words) {
    if (lines.at(-1)!.length + 1 + w.length > WIDTH) lines.push(' '.repeat(head.length));
    lines[lines.length - 1] += ` ${w}`;
  }
  return lines.join('\n');
}

const defaultText = (r: Setting) =>
  r.defaultHelp !== undefined
    ? ` (default: ${r.defaultHelp})`
    : r.default !== undefined && r.arg
      ? ` (default ${r.default})`
      : '';

/** The "Options:" lines of a usage: one per flag, aligned, with its default; then --help. */
export function optionsHelp(names: readonly SettingName[]): string {
  const lines = flagRows(names).map((r) => ({
    left: `${r.short ? `-${r.short},` : '   '} ${flagWords(r)}`,
    right: `${r.help}${defaultText(r)}`,
  }));
  lines.push({ left: '-h, --help', right: 'show this help' });
  const width = Math.max(...lines.map((l) => l.left.length)) + 2;
  return lines.map((l) => `  ${l.left.padEnd(width)}${l.right}`).join('\n');
}
