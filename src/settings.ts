/**
 * The settings of a rollout (a deploy or a rollback) in one table: per setting its CLI flag, its action
 * input, the check of its text (from values.ts), its default and its help line. From the table come the
 * fleet engine's typed options for the CLI and the actions alike, the CLI's option specs and the options
 * part of its usage text; __tests__/settings.test.ts holds every action.yml default to it. So a default is
 * written once, here (and in the action.yml files, which cannot import it, under that test).
 *
 * Pure: an edge hands in how to read its flags or inputs (a `SettingSource`).
 */
import type { FleetOptions } from './deploy/fleet';
import { staleLockProblem } from './deploy/locks';
import type { RegistryCredentials, RegistryLogin } from './deploy/strategy';
import { ConfigurationError, type Problem } from './errors';
import { ENV_VAR } from './registry/patterns';
import type { Target } from './registry/model';
import { checkVersion } from './registry/release';
import { checkBoolean, checkDuration, checkPercent, checkWholeNumber, given, type Check } from './values';

export interface Setting<T = unknown> {
  /** The CLI flag without its dashes, and its one-letter form. */
  flag?: string;
  short?: string;
  /** What the flag takes, as the usage names it (`N`, `FILE`); none: the flag is a switch. */
  arg?: string;
  /** The action input. */
  input?: string;
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
  | 'prePullMinFreeMb'
  | 'recoveryWindowMs'
  | 'skipOnceHooks'
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

const ROLLOUT_ROWS: RolloutRows = {
  concurrency: {
    flag: 'concurrency',
    short: 'c',
    arg: 'N',
    input: 'concurrency',
    default: '10',
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
    help: "while a wave gates, pull the next wave's images on their servers (true), or not (false)",
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
  skipOnceHooks: {
    input: 'once-hooks',
    default: 'true',
    check: (t, source) => !checkBoolean(t, source),
    help: 'run the hooks marked "once" (true), or skip them: another job of the rollout runs them (false)',
  },
};

const row = <T>(r: Setting<T>) => r;
const REGISTRY = 'servers/production.json';

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
    defaultHelp: '$FLEET_SSH_KEY (the key or its path), $FLEET_SSH_KEY_FILE, else the ssh-agent',
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

/** The one table. */
export const SETTINGS = { ...COMMAND_ROWS, ...ROLLOUT_ROWS };
export type SettingName = keyof typeof SETTINGS;
/** The rows that become the engine's options (`rolloutSettings`). */
export const ROLLOUT_NAMES = Object.keys(ROLLOUT_ROWS) as ReadonlyArray<keyof RolloutSettings>;
type ValueOf<K extends SettingName> = (typeof SETTINGS)[K] extends Setting<infer T> ? T : never;

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
    if (eq < 0 || !ENV_VAR.re.test(variable) || variable in out)
      throw new ConfigurationError([
        {
          path: [],
          source,
          message: `${JSON.stringify(pair)} is not ${eq < 0 || !ENV_VAR.re.test(variable) ? 'IMAGE_VARIABLE=VERSION' : 'the only version of its variable'}`,
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
  for (const t of targets) {
    const missing = t.tenant.images.map((i) => i.variable).filter((v) => !(v in versions));
    if (missing.length)
      problems.push({
        path: [],
        source: where,
        message: `names no version for ${missing.join(', ')} of ${t.id}`,
        hint: `add ${missing.map((m) => `${m}=…`).join(',')} to it, or give ${source.name(SETTINGS.version)} for the images it leaves out`,
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
      "name the host of the images it is for (ghcr.io for GitHub's registry, docker.io for Docker Hub); only those images log in, so a token never reaches another registry",
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
