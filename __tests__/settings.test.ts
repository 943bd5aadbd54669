/**
 * The one table of settings (src/settings.ts): every CLI command's flags and Options help, every action.yml
 * input and every reusable workflow input is a row of it and agrees with its defaults; flags and inputs give
 * the same typed settings.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEPLOY_FLAGS, DEPLOY_USAGE, ROLLBACK_FLAGS, ROLLBACK_USAGE } from '../src/cli/deploy';
import { COMMANDS } from '../src/cli/main';
import { parseRegistry, targetsOf } from '../src/registry';
import {
  defaultOf,
  flagOptions,
  REMOTE_FLAGS,
  remoteSettings,
  resolveRollout,
  type SettingName,
  fromFlags,
  fromInputs,
  identity,
  registryLogin,
  release,
  ROLLOUT_NAMES,
  rolloutSettings,
  SETTINGS,
  type Setting,
} from '../src/settings';

const rows = Object.entries(SETTINGS) as Array<[string, Setting]>;
const load = (file: string) => parse(readFileSync(file, 'utf8'));

const ACTIONS = ['action.yml', ...readdirSync('actions').map((a) => `actions/${a}/action.yml`)];
/** Every declaration of an input: the actions' `inputs` and the reusable workflows' `workflow_call` inputs. */
const declarations = [
  ...ACTIONS.map((file) => ({ file, inputs: load(file).inputs ?? {} })),
  ...readdirSync('.github/workflows')
    .map((f) => join('.github/workflows', f))
    .map((file) => ({ file, inputs: load(file).on?.workflow_call?.inputs ?? {} })),
] as Array<{ file: string; inputs: Record<string, { default?: unknown; description?: string }> }>;

const declared = rows
  .filter(([, r]) => r.input !== undefined)
  .flatMap(([name, r]) =>
    declarations
      .filter((d) => r.input! in d.inputs)
      .map((d) => [`${d.file}: ${r.input}`, name, r, d.inputs[r.input!]!] as const),
  );

test('the table is declared where it is read', () => {
  expect(declared.length).toBeGreaterThan(40);
});

test.each(declared)('%s has the default of the table', (_, name, row, spec) => {
  const yamlDefault = spec.default === undefined ? undefined : String(spec.default);
  if (row.default === undefined) expect([name, yamlDefault ?? '']).toEqual([name, '']);
  // an empty default the action fills in itself: the description says which
  else if (yamlDefault === undefined || yamlDefault === '') expect(spec.description).toContain(row.default);
  else expect([name, yamlDefault]).toEqual([name, row.default]);
});

test.each(['action.yml', 'actions/deploy/action.yml', 'actions/rollback/action.yml'])(
  '%s declares every rollout setting, described',
  (file) => {
    const inputs = load(file).inputs;
    for (const name of ROLLOUT_NAMES) {
      const input = SETTINGS[name].input!;
      expect([input, typeof inputs[input]?.description]).toEqual([input, 'string']);
    }
  },
);

test("docs/actions.md's input table shows the table's defaults", () => {
  const lines = readFileSync('docs/actions.md', 'utf8').split('\n');
  const documented = new Map(
    lines.flatMap((l) => {
      const m = /^\| `([\w-]+)`\s*\|([^|]*)\|/.exec(l);
      return m ? [[m[1]!, m[2]!.trim()] as const] : [];
    }),
  );
  for (const name of ROLLOUT_NAMES) {
    const r: Setting = SETTINGS[name];
    expect([r.input, documented.get(r.input!)]).toEqual([r.input, r.default ? `\`${r.default}\`` : '']);
  }
});

test.each([
  ['deploy', DEPLOY_USAGE, DEPLOY_FLAGS],
  ['rollback', ROLLBACK_USAGE, ROLLBACK_FLAGS],
] as const)('the %s usage names only flags of the table, and all of them', (_, usage, names) => {
  const flags = new Set(rows.flatMap(([, r]) => (r.flag ? [r.flag] : [])));
  const shown = new Set([...usage.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!));
  expect([...shown].filter((f) => f !== 'help' && !flags.has(f))).toEqual([]);
  expect(Object.keys(flagOptions(names)).filter((f) => !shown.has(f))).toEqual([]);
  for (const name of names) {
    const r: Setting = SETTINGS[name];
    if (r.defaultHelp !== undefined) expect(usage).toContain(`${r.help} (default: ${r.defaultHelp})`);
    else if (r.default !== undefined && r.arg) expect(usage).toContain(`${r.help} (default ${r.default})`);
  }
});

test('the CLI option specs: a string per flag with a value, a switch for --dry-run', () => {
  const options = flagOptions(DEPLOY_FLAGS);
  expect(options.concurrency).toEqual({ type: 'string', short: 'c' });
  expect(options['pull-timeout']).toEqual({ type: 'string' });
  expect(options['dry-run']).toEqual({ type: 'boolean' });
});

const registry = parseRegistry(readFileSync('servers/example.json', 'utf8'), 'servers/example.json');
const targets = targetsOf(registry);

test('nothing given: the defaults', () => {
  const expected = {
    concurrency: 10,
    perServer: 4,
    maxFailurePercent: 0,
    lockWaitMs: 60_000,
    commandTimeoutMs: 120_000,
    pullTimeoutMs: 900_000,
    pullAttempts: 3,
    sharePulls: true,
    prePull: true,
    prePullWaves: 1,
    prePullMinFreeMb: 1024,
    recoveryWindowMs: 60_000,
    onceHooks: true,
  };
  expect(rolloutSettings(fromFlags({}), targets)).toEqual(expected);
  expect(
    rolloutSettings(
      fromInputs(() => ''),
      targets,
    ),
  ).toEqual(expected);
});

test('flags and inputs give the same settings', () => {
  const given: Record<string, string> = {
    concurrency: '3',
    'per-server': '2',
    'max-failure-percent': '5%',
    'max-failures': '0',
    'lock-wait': '5m',
    'break-stale-locks': '2h',
    'command-timeout': '30s',
    'pull-timeout': '20m',
    'pull-attempts': '1',
    'share-pulls': 'false',
    'pre-pull': 'false',
    'pre-pull-waves': 'all',
    'pre-pull-min-free': '50',
  };
  const expected = {
    concurrency: 3,
    perServer: 2,
    maxFailurePercent: 5,
    maxFailures: 0,
    lockWaitMs: 300_000,
    breakLocksOlderThanMs: 7_200_000,
    commandTimeoutMs: 30_000,
    pullTimeoutMs: 1_200_000,
    pullAttempts: 1,
    sharePulls: false,
    prePull: false,
    prePullWaves: Number.POSITIVE_INFINITY,
    prePullMinFreeMb: 50,
    recoveryWindowMs: 60_000,
    onceHooks: true,
  };
  expect(rolloutSettings(fromFlags(given), targets)).toEqual(expected);
  const inputs = fromInputs((name) => ({ ...given, 'once-hooks': 'false' })[name] ?? '');
  expect(rolloutSettings(inputs, targets)).toEqual({ ...expected, onceHooks: false });
});

test.each([
  [fromFlags({ 'pull-timeout': '0s' }), '--pull-timeout: "0s" is not a duration from 1s to 24h'],
  [fromFlags({ 'command-timeout': '25h' }), '--command-timeout: "25h" is not a duration from 1s to 24h'],
  [fromFlags({ 'pull-attempts': '0' }), '--pull-attempts: "0" is not a whole number of at least 1'],
  [fromFlags({ 'max-failure-percent': '%' }), '--max-failure-percent: "%" is not a percentage from 0 to 100'],
  [
    fromInputs((n) => (n === 'pull-attempts' ? 'two' : '')),
    'input "pull-attempts": "two" is not a whole number of at least 1',
  ],
  [
    fromInputs((n) => (n === 'once-hooks' ? 'yes' : '')),
    'input "once-hooks": "yes" is neither true nor false',
  ],
])('a bad value names where it came from: %#', (source, message) => {
  expect(() => rolloutSettings(source, targets)).toThrow(message);
});

test('a lock age to break is checked against the timeouts given', () => {
  const tooShort =
    'input "break-stale-locks": 10m could break the lock of a deploy still at work: one may leave its lock untouched for up to 19m (the switch and the health gate of eu-2/initech) (give at least twice that, e.g. 37m)';
  const inputs = (extra: Record<string, string>) =>
    fromInputs((name) => ({ 'break-stale-locks': '10m', ...extra })[name] ?? '');
  expect(() => rolloutSettings(inputs({}), targets)).toThrow(tooShort);
  // With pulls (and the switch) held to a minute, a live deploy touches its lock often enough.
  expect(rolloutSettings(inputs({ 'pull-timeout': '1m' }), targets).breakLocksOlderThanMs).toBe(600_000);
});

test('the release: a version is required for a deploy; a rollback goes to the one given, else the previous', () => {
  expect(release(fromFlags({ version: 'v2' }), 'deploy', targets)).toEqual({ version: 'v2' });
  expect(() => release(fromFlags({}), 'deploy', targets)).toThrow(
    '--version: is required (or --versions): the image tag or digest to deploy (e.g. --version v1.4.2)',
  );
  expect(() =>
    release(
      fromInputs(() => ' '),
      'deploy',
      targets,
    ),
  ).toThrow(
    'input "version": is required (or input "versions"): the image tag or digest to deploy (e.g. version: v1.4.2)',
  );
  expect(() =>
    release(
      fromInputs((n) => (n === 'version' ? 'v2;reboot' : '')),
      'deploy',
      targets,
    ),
  ).toThrow('input "version": "v2;reboot" is neither an image tag nor a digest');
  expect(release(fromFlags({ version: 'v2' }), 'rollback', targets)).toEqual({
    version: 'previous',
    rollback: {},
  });
  expect(
    release(
      fromInputs((n) => (n === 'to' ? 'v1' : '')),
      'rollback',
      targets,
    ),
  ).toEqual({
    version: 'v1',
    rollback: { to: 'v1' },
  });
});

describe('a version per image', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const flag = (versions: string, version?: string) =>
    release(fromFlags({ versions, ...(version ? { version } : {}) }), 'deploy', targets);
  const input = (versions: string, version = '') =>
    release(
      fromInputs((n) => ({ versions, version })[n] ?? ''),
      'deploy',
      targets,
    );

  test('flags and inputs give the same release: comma or newline separated, every image named', () => {
    const expected = {
      version: `OPENCLAW_IMAGE=${digest},SAFETY_WRAPPER_IMAGE=v3`,
      versions: { OPENCLAW_IMAGE: digest, SAFETY_WRAPPER_IMAGE: 'v3' },
    };
    expect(flag(`OPENCLAW_IMAGE=${digest},SAFETY_WRAPPER_IMAGE=v3`)).toEqual(expected);
    expect(input(`OPENCLAW_IMAGE=${digest}\n  SAFETY_WRAPPER_IMAGE = v3\n`)).toEqual(expected);
  });

  test('--version gives the version of every image versions leaves out', () => {
    expect(flag('SAFETY_WRAPPER_IMAGE=v3', 'v2')).toEqual({
      version: 'v2',
      versions: { SAFETY_WRAPPER_IMAGE: 'v3' },
    });
    expect(() => flag('SAFETY_WRAPPER_IMAGE=v3')).toThrow(
      '--versions: names no version for OPENCLAW_IMAGE of eu-1/internal-qa (add OPENCLAW_IMAGE=… to it, or give --version for the images it leaves out)',
    );
  });

  test('a variable no selected target has, a bad version or a bad pair is refused, naming it', () => {
    expect(() => flag('APP_IMAGE=v3', 'v2')).toThrow(
      '--versions: APP_IMAGE is not an image variable of any selected target (the image variables of the selection: OPENCLAW_IMAGE, SAFETY_WRAPPER_IMAGE)',
    );
    expect(() => input('OPENCLAW_IMAGE=v3;reboot', 'v2')).toThrow(
      'input "versions": "v3;reboot" is neither an image tag nor a digest',
    );
    expect(() => flag('OPENCLAW_IMAGE', 'v2')).toThrow(
      '--versions: "OPENCLAW_IMAGE" is not IMAGE_VARIABLE=VERSION',
    );
    expect(() => flag('OPENCLAW_IMAGE=v1,OPENCLAW_IMAGE=v2', 'v2')).toThrow(
      '--versions: "OPENCLAW_IMAGE=v2" is not the only version of its variable',
    );
  });
});

describe('the registry login', () => {
  const login = (host: string, username: string, password: string) => ({ host, username, password });

  test('the host and username from the flags or the environment, the password from the environment only', () => {
    const env = {
      FLEET_REGISTRY_HOST: 'ghcr.io',
      FLEET_REGISTRY_USERNAME: 'bot',
      FLEET_REGISTRY_PASSWORD: 's3cret',
    };
    expect(registryLogin(fromFlags({}), {})).toBeUndefined();
    expect(registryLogin(fromFlags({}), env)).toEqual({
      logins: [login('ghcr.io', 'bot', 's3cret')],
      keep: false,
    });
    expect(
      registryLogin(
        fromFlags({
          'registry-host': 'localhost:5000',
          'registry-username': 'alice',
          'keep-registry-login': true,
        }),
        env,
      ),
    ).toEqual({ logins: [login('localhost:5000', 'alice', 's3cret')], keep: true });
    expect(flagOptions(DEPLOY_FLAGS)).not.toHaveProperty('registry-password');
    expect(flagOptions(DEPLOY_FLAGS)).not.toHaveProperty('registry-logins');
    expect(() =>
      registryLogin(fromFlags({ 'registry-username': 'alice', 'registry-host': 'ghcr.io' }), {}),
    ).toThrow('$FLEET_REGISTRY_PASSWORD: is needed to log in to the image registries as alice');
  });

  test('a login names its host: without one it is refused before anything connects', () => {
    const env = { FLEET_REGISTRY_USERNAME: 'bot', FLEET_REGISTRY_PASSWORD: 's3cret' };
    expect(() => registryLogin(fromFlags({}), env)).toThrow(
      '--registry-host: is needed with a registry login: the registry host the login of bot is for',
    );
    expect(() => registryLogin(fromFlags({ 'registry-host': 'ghcr.io/acme' }), env)).toThrow(
      '--registry-host: "ghcr.io/acme" is not a registry host',
    );
    expect(() =>
      registryLogin(fromFlags({ 'registry-host': 'ghcr.io' }), { ...env, FLEET_REGISTRY_PASSWORD: 'a\nb' }),
    ).toThrow('holds a line break');
  });

  test('inputs: registry-host, registry-username, registry-password, registry-logins, keep-registry-login', () => {
    const inputs = (given: Record<string, string>) => fromInputs((n) => given[n] ?? '');
    expect(
      registryLogin(
        inputs({
          'registry-host': 'ghcr.io',
          'registry-username': 'bot',
          'registry-password': 'tok',
          'keep-registry-login': 'true',
          'registry-logins':
            '# Docker Hub and our mirror\n docker.io  hubuser  hub-pat \n\nregistry.example.com:5000 ci p@ss:w0rd\n',
        }),
        {},
      ),
    ).toEqual({
      logins: [
        login('ghcr.io', 'bot', 'tok'),
        login('docker.io', 'hubuser', 'hub-pat'),
        login('registry.example.com:5000', 'ci', 'p@ss:w0rd'),
      ],
      keep: true,
    });
    expect(() => registryLogin(inputs({ 'registry-password': 'tok' }), {})).toThrow(
      'input "registry-username": is needed with a registry password: the user to log in as',
    );
  });

  test('registry-logins: a bad line is named by its number, never quoted (it holds a password); one login a host', () => {
    const inputs = (given: Record<string, string>) => fromInputs((n) => given[n] ?? '');
    const bad = () => registryLogin(inputs({ 'registry-logins': 'ghcr.io bot\n' }), {});
    expect(bad).toThrow('input "registry-logins": line 1 has 2 words, not 3');
    expect(() => registryLogin(inputs({ 'registry-logins': 'ghcr.io bot secret-one two' }), {})).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret-one') }),
    );
    expect(() => registryLogin(inputs({ 'registry-logins': 'gh cr.io a b\n' }), {})).toThrow(
      'line 1 has 4 words',
    );
    expect(() => registryLogin(inputs({ 'registry-logins': 'http://ghcr.io a b' }), {})).toThrow(
      'input "registry-logins" line 1: "http://ghcr.io" is not a registry host',
    );
    expect(() =>
      registryLogin(
        inputs({
          'registry-host': 'ghcr.io',
          'registry-username': 'a',
          'registry-password': 'b',
          'registry-logins': 'ghcr.io c d',
        }),
        {},
      ),
    ).toThrow('input "registry-logins": names the registry host ghcr.io twice');
    expect(registryLogin(fromFlags({}), { FLEET_REGISTRY_LOGINS: 'ghcr.io u p' })).toEqual({
      logins: [login('ghcr.io', 'u', 'p')],
      keep: false,
    });
  });
});

test('who and which run: one rule for the CLI and the actions', () => {
  const now = new Date('2026-01-02T03:04:05.000Z');
  const github = {
    GITHUB_REPOSITORY: 'acme/app',
    GITHUB_RUN_ID: '812',
    GITHUB_ACTOR: 'alice',
    USER: 'runner',
  };
  const expected = { actor: 'alice', runId: 'acme/app#812.1' };
  expect(
    identity(
      fromInputs(() => ''),
      github,
      'action',
      now,
    ),
  ).toEqual(expected);
  expect(identity(fromFlags({}), github, 'cli', now)).toEqual(expected);
  expect(identity(fromFlags({}), { ...github, GITHUB_RUN_ATTEMPT: '2' }, 'cli', now).runId).toBe(
    'acme/app#812.2',
  );
  expect(identity(fromFlags({ actor: 'bob' }), { USER: 'carol' }, 'cli', now)).toEqual({
    actor: 'bob',
    runId: 'cli-2026-01-02T03:04:05.000Z',
  });
  expect(identity(fromFlags({}), { USER: 'carol' }, 'cli', now).actor).toBe('carol');
  expect(
    identity(
      fromInputs(() => ''),
      {},
      'action',
      now,
    ),
  ).toEqual({
    actor: 'unknown',
    runId: 'action-2026-01-02T03:04:05.000Z',
  });
});

describe('every entry point from the one table', () => {
  /** CLI commands whose flags are their own (they write or provision, and take none of the table's). */
  const OWN_FLAGS = [
    'init',
    'add-server',
    'add-tenant',
    'pin-host-key',
    'sandbox',
    'setup-server',
    'completion',
  ];
  const byFlag = (flag: string) => rows.filter(([, r]) => r.flag === flag);
  const tabled = Object.entries(COMMANDS).filter(([name]) => !OWN_FLAGS.includes(name));

  test('every commands is either tabled or named as having its own flags', () => {
    expect(tabled.length).toBeGreaterThanOrEqual(14);
    for (const name of OWN_FLAGS) expect(COMMANDS).toHaveProperty([name]);
  });

  test.each(tabled)('%s: each flag is a row of the table, one-letter forms unique', (_, command) => {
    const specs = Object.entries(command.options);
    for (const [flag, spec] of specs) {
      const candidates = byFlag(flag).map(([name]) =>
        JSON.stringify(flagOptions([name as SettingName])[flag]),
      );
      expect([flag, candidates.includes(JSON.stringify(spec))]).toEqual([flag, true]);
    }
    const shorts = specs.flatMap(([, s]) => ('short' in s && s.short ? [s.short] : []));
    expect(new Set([...shorts, 'h']).size).toBe(shorts.length + 1);
  });

  test.each(tabled.filter(([, c]) => Object.keys(c.options).length > 0))(
    "%s: the usage's Options show each flag and its row's help and default",
    (_, command) => {
      const options = command.usage.slice(command.usage.indexOf('\nOptions:'));
      const shown = new Set(
        [...options.matchAll(/^ {2}(?:-\w, | {4})--([a-z][a-z0-9-]*)/gm)].map((m) => m[1]!),
      );
      expect([...shown].sort()).toEqual([...Object.keys(command.options), 'help'].sort());
      for (const flag of Object.keys(command.options)) {
        const said = byFlag(flag).some(([, r]) => options.includes(`--${flag}`) && options.includes(r.help));
        expect([flag, said]).toEqual([flag, true]);
      }
    },
  );

  test('every action input and every reusable workflow input is a row of the table', () => {
    const inputs = new Set(rows.flatMap(([, r]) => (r.input ? [r.input] : [])));
    const workflowOnly = new Set(rows.flatMap(([, r]) => (r.workflow ? [r.workflow] : [])));
    const unknown = declarations.flatMap(({ file, inputs: declared }) =>
      Object.keys(declared)
        .filter((i) => !inputs.has(i) && !(file.startsWith('.github') && workflowOnly.has(i)))
        .map((i) => `${file}: ${i}`),
    );
    // the reusable workflows' secrets-like inputs are passed on as the actions' inputs of the same name
    expect(unknown).toEqual([]);
  });

  test.each(
    declarations
      .filter((d) => d.file.startsWith('.github'))
      .flatMap((d) =>
        rows
          .filter(([, r]) => r.workflow !== undefined && r.workflow in d.inputs)
          .map(([name, r]) => [`${d.file}: ${r.workflow}`, name, r, d.inputs[r.workflow!]!] as const),
      ),
  )("%s (a workflow's own input) has the default of the table", (_, name, row, spec) => {
    const yamlDefault = spec.default === undefined ? '' : String(spec.default);
    expect([name, yamlDefault]).toEqual([name, row.default ?? '']);
  });

  test('defaults written once: the read commands and the status action work on as many servers as a deploy on targets', () => {
    expect(defaultOf('serverConcurrency')).toBe(defaultOf('concurrency'));
    expect(flagOptions(REMOTE_FLAGS)).toEqual({
      registry: { type: 'string', short: 'r' },
      select: { type: 'string', short: 's' },
      concurrency: { type: 'string', short: 'c' },
      key: { type: 'string' },
      'known-hosts': { type: 'string' },
    });
    expect(remoteSettings(fromFlags({}))).toEqual({ concurrency: 10 });
    expect(remoteSettings(fromFlags({ concurrency: '3', waves: 'rings', key: 'k' }))).toEqual({
      concurrency: 3,
      waves: 'rings',
      key: 'k',
    });
    expect(() => remoteSettings(fromFlags({ concurrency: '0' }))).toThrow(
      '--concurrency: "0" is not a whole number of at least 1',
    );
  });

  test('a deploy resolved once: the same typed rollout from flags and from inputs', () => {
    const flags = { version: 'v2', waves: '1,100%', 'dry-run': true, concurrency: '3' };
    const inputs = fromInputs(
      (n) => ({ version: 'v2', waves: '1,100%', 'dry-run': 'true', concurrency: '3' })[n] ?? '',
    );
    const env = { GITHUB_ACTOR: 'ana', GITHUB_RUN_ID: '7' };
    const cli = resolveRollout(fromFlags(flags), 'deploy', registry, { name: 'cli', env });
    const action = resolveRollout(inputs, 'deploy', registry, { name: 'action', env });
    expect(cli).toEqual(action);
    expect(cli.dryRun).toBe(true);
    expect(cli.options).toMatchObject({ version: 'v2', concurrency: 3, actor: 'ana', onceHooks: true });
    expect(cli.plan.plan.map((w) => w.targets.length)).toEqual([1, targets.length - 1]);
    const rollback = resolveRollout(fromFlags(flags), 'rollback', registry, { name: 'cli', env });
    expect([rollback.dryRun, rollback.options.version]).toEqual([false, 'previous']);
  });
});
