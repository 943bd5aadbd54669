/**
 * fleet-deploy's command line. `runCli(argv, io)` returns the exit code: 0 success, 1 failure,
 * 2 configuration error (bad registry, bad flags, a selection that matches nothing), 3 drift (`status
 * --fail-on-drift`): `EXIT` in args.ts.
 */
import type { Analysis } from '../analysis';
import { describeWaveAnalysis } from '../deploy/analysis';
import { strategyFor } from '../deploy/strategies';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigurationError, isConfigurationError, formatProblem } from '../errors';
import { placeholderProblems } from '../registry/placeholders';
import { wrapText } from './wrap';
import { targetsOf } from '../registry';
import { matrices, planDeployment, planJson, type Plan } from '../plan/plan';
import { sanitize } from '../report/sanitize';
import { plural, table } from '../report/table';
import { processIO, type CliIO } from './io';
import { VERSION } from '../version';
import { DEPLOY_FLAGS, DEPLOY_USAGE, ROLLBACK_FLAGS, ROLLBACK_USAGE, runDeploy } from './deploy';
import { HISTORY_OPTIONS, HISTORY_USAGE, runHistory } from './history';
import { planDiff } from './plan-diff';
import { runUnlock, UNLOCK_OPTIONS, UNLOCK_USAGE } from './unlock';
import { PRUNE_OPTIONS, PRUNE_USAGE, runPrune } from './prune';
import { LOGS_OPTIONS, LOGS_USAGE, runLogs } from './logs';
import { runStatus, STATUS_OPTIONS, STATUS_USAGE } from './status';
import {
  BACKUP_OPTIONS,
  BACKUP_USAGE,
  BACKUPS_USAGE,
  RESTORE_OPTIONS,
  RESTORE_USAGE,
  runBackup,
  runBackups,
  runRestore,
} from './backup';
import { runDemo } from './demo';
import { runSandbox, SANDBOX_USAGE } from './sandbox';
import { runSetupServer, SETUP_OPTIONS, SETUP_USAGE } from './setup-server';
import { EXIT, loadRegistry, outputFormat } from './args';
import { flagOptions, fromFlags, optionsHelp, setting } from '../settings';
import { closest } from '../registry/issues';
import { repositoryRoot, shipFiles } from '../files/local';
import {
  ADD_SERVER_USAGE,
  ADD_TENANT_USAGE,
  INIT_OPTIONS,
  INIT_USAGE,
  PIN_HOST_KEY_OPTIONS,
  PIN_HOST_KEY_USAGE,
  runAddServer,
  runPinHostKey,
  runAddTenant,
  runInit,
} from './init';
import { completionScript, SHELLS, type Completable, type Shell } from './completion';

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run: (
    values: Record<string, string | boolean | undefined>,
    io: CliIO,
    positionals: string[],
  ) => Promise<number>;
  /** Takes positional words besides its verbs (e.g. `add-tenant SERVER`). */
  positionals?: boolean;
  /** The words it takes first, one of which is required (`sandbox up|down|status`): checked, completed. */
  verbs?: readonly string[];
  /** Verbs that work but are not offered (`sandbox serve`, the background process). */
  hiddenVerbs?: readonly string[];
}

/** The flags of plan (rows of the settings table). */
const PLAN_FLAGS = [
  'registry',
  'planSelect',
  'planWaves',
  'maxPerJob',
  'planFormat',
  'jsonFormat',
  'planDiff',
  'serverConcurrency',
  'key',
  'knownHosts',
] as const;

const PLAN_LINE =
  'fleet-deploy plan [--registry FILE] [--select EXPR] [--waves SPEC] [--max-per-job N] ' +
  '[--format table|json|matrix] [--json] [--diff]';

export const COMMANDS: Record<string, Command> = {
  validate: {
    summary: 'Check a server registry and report every problem with its line',
    usage: `fleet-deploy validate [--registry FILE]

Validates the registry against its schema and the checks across entries (unique names, one directory
and one health port per tenant on a server, known rings, …). Prints every problem at once, each with
FILE:LINE:COLUMN, the JSON path, the bad value and what would be valid.

Options:
${optionsHelp(['registry'])}`,
    options: flagOptions(['registry']),
    run: async (values, io) => {
      const registry = await loadRegistry(values, io);
      // what init wrote without knowing it, still unedited: a deploy would wait on a port nothing serves
      const placeholders = placeholderProblems(await io.readText(registry.source), registry.source);
      if (placeholders.length) throw new ConfigurationError(placeholders);
      const targets = targetsOf(registry);
      shipFiles(targets, { root: repositoryRoot(io.env), env: io.env, checkOnly: true }); // the files' paths and pins

      const regions = new Set(registry.servers.map((s) => s.region));
      const rings = registry.rings
        .map((r) => `${r} ${targets.filter((t) => t.tenant.ring === r).length}`)
        .join(', ');
      io.stdout(
        `${registry.source}: valid — ${plural(registry.servers.length, 'server')}, ` +
          `${plural(targets.length, 'tenant')} in ${plural(regions.size, 'region')} (rings: ${rings})\n`,
      );
      for (const s of registry.servers.filter((x) => x.hostKeys.length === 0))
        io.stderr(
          `warning: ${s.name} has no pinned host key: deploys refuse it unless a known_hosts text has its key; ` +
            `pin it: ${io.self ?? 'fleet-deploy'} pin-host-key --server ${s.name}\n`,
        );
      return EXIT.ok;
    },
  },
  deploy: {
    summary: 'Deploy a version to the selected targets in waves, with health gates and rollback',
    usage: DEPLOY_USAGE,
    options: flagOptions(DEPLOY_FLAGS),
    run: (values, io) => runDeploy(values, io),
  },
  rollback: {
    summary: 'Roll targets back to their previous release, or to a version from their history',
    usage: ROLLBACK_USAGE,
    options: flagOptions(ROLLBACK_FLAGS),
    run: (values, io) => runDeploy(values, io, 'rollback'),
  },
  history: {
    summary: "Show the selected targets' release history (the audit log on each server)",
    usage: HISTORY_USAGE,
    options: HISTORY_OPTIONS,
    run: (values, io) => runHistory(values, io),
  },
  unlock: {
    summary: "Show the selected targets' deploy locks and release those whose holder is gone",
    usage: UNLOCK_USAGE,
    options: UNLOCK_OPTIONS,
    run: (values, io) => runUnlock(values, io),
  },
  status: {
    summary:
      'What runs on each target: version, digest, state, health, locks, and drift from what was deployed',
    usage: STATUS_USAGE,
    options: STATUS_OPTIONS,
    run: (values, io) => runStatus(values, io),
  },
  logs: {
    summary: "Show or follow (-f) the selected tenants' container logs, prefixed by target",
    usage: LOGS_USAGE,
    options: LOGS_OPTIONS,
    run: (values, io) => runLogs(values, io),
  },
  prune: {
    summary: "Remove old releases' images no tenant of the server keeps (--dry-run: list them and the space)",
    usage: PRUNE_USAGE,
    options: PRUNE_OPTIONS,
    run: (values, io) => runPrune(values, io),
  },
  backup: {
    summary: "Back up the selected tenants' files and database dump into a checksummed archive on the server",
    usage: BACKUP_USAGE,
    options: BACKUP_OPTIONS,
    run: (values, io) => runBackup(values, io),
  },
  backups: {
    summary: "List the selected tenants' backups",
    usage: BACKUPS_USAGE,
    options: BACKUP_OPTIONS,
    run: (values, io) => runBackups(values, io),
  },
  restore: {
    summary: 'Restore a backup (checksum checked, what it replaces kept), optionally the database too',
    usage: RESTORE_USAGE,
    options: RESTORE_OPTIONS,
    run: (values, io) => runRestore(values, io),
  },
  'setup-server': {
    summary:
      'Provision servers and tenants as root: deploy user, key, directories, .env with secrets, systemd',
    usage: SETUP_USAGE,
    options: SETUP_OPTIONS,
    run: (values, io) => runSetupServer(values, io),
  },
  sandbox: {
    summary: 'A local sandbox fleet to try it without servers: up, down, status',
    usage: SANDBOX_USAGE,
    verbs: ['up', 'down', 'status'],
    hiddenVerbs: ['serve'],
    options: { dir: { type: 'string' }, servers: { type: 'string' }, tenants: { type: 'string' } },
    run: (values, io, positionals) => runSandbox(values, positionals, io),
  },
  demo: {
    summary: 'Deploy, break, roll back and roll out in waves on a sandbox fleet, then tear it down',
    usage: `fleet-deploy demo

Brings up a sandbox fleet of 3 servers × 3 tenants on 127.0.0.1 (no root, no Docker), deploys v1, then v2
in waves 1,34%,100% where one tenant's v2 is broken — once with a failure budget of 0 (the rollout stops)
and once with 30% (it goes on) — shows the history of that tenant and a manual rollback, then tears down.`,
    options: {},
    run: (values, io) => runDemo(values, io),
  },
  init: {
    summary: 'Write a starter registry for your servers (host keys fetched, pinned with your consent)',
    usage: INIT_USAGE,
    options: INIT_OPTIONS,
    run: (values, io) => runInit(values, io),
  },
  'add-server': {
    summary: 'Add a server to the registry (its host key fetched, pinned with your consent)',
    usage: ADD_SERVER_USAGE,
    options: INIT_OPTIONS,
    run: (values, io) => runAddServer(values, io),
  },
  'pin-host-key': {
    summary: "Pin (or re-pin) a registry server's host key, after showing its fingerprint",
    usage: PIN_HOST_KEY_USAGE,
    options: PIN_HOST_KEY_OPTIONS,
    run: (values, io) => runPinHostKey(values, io),
  },
  'add-tenant': {
    summary: 'Add a tenant to a server of the registry',
    usage: ADD_TENANT_USAGE,
    options: INIT_OPTIONS,
    run: (values, io) => runAddTenant(values, io),
  },
  plan: {
    summary: 'Select targets and cut them into waves and GitHub matrices',
    usage: `${PLAN_LINE}

Selects targets (a target is one tenant on one server, "server/tenant") and cuts them into waves.
With --diff, also shows what a release would change in each tenant's shipped files (docs/release-channels.md).

Options:
${optionsHelp(PLAN_FLAGS)}`,
    options: flagOptions(PLAN_FLAGS),
    run: async (values, io) => {
      const format = outputFormat(values, ['table', 'json', 'matrix']);
      if (values.diff && format !== 'table')
        throw new ConfigurationError('--diff prints text: use it without --format/--json');
      const registry = await loadRegistry(values, io);
      const flags = fromFlags(values);
      const plan = planDeployment(registry, {
        select: setting(flags, 'planSelect'),
        waves: setting(flags, 'planWaves'),
        maxPerJob: setting(flags, 'maxPerJob'),
      });
      if (format === 'json') io.stdout(`${JSON.stringify(planJson(plan), null, 2)}\n`);
      else if (format === 'matrix') io.stdout(`${JSON.stringify(matrices(plan))}\n`);
      else io.stdout(renderPlan(plan, registry.analysis));
      if (setting(flags, 'planDiff')) return planDiff(plan, registry, flags, io);
      return EXIT.ok;
    },
  },
  help: {
    summary: "Show the commands, or one command's options: help <command>",
    usage: `fleet-deploy help [COMMAND]

Without a command, lists the commands; with one, shows its usage and options (as COMMAND --help does).`,
    options: {},
    positionals: true,
    run: async (_values, io, [topic]) => {
      if (topic === undefined) {
        io.stdout(`${helpText(io, usage(io.self))}\n`);
        return EXIT.ok;
      }
      const command = COMMANDS[topic];
      if (!command) {
        const near = closest(topic, Object.keys(COMMANDS));
        return usageError(
          io,
          'fleet-deploy help',
          `unknown command ${JSON.stringify(topic)}`,
          near && JSON.stringify(near),
        );
      }
      io.stdout(`${helpText(io, command.usage)}\n`);
      return EXIT.ok;
    },
  },
  completion: {
    summary: 'Print shell completion for bash, zsh or fish',
    usage: `fleet-deploy completion bash|zsh|fish

Prints a completion script for the commands, their verbs and their flags. Install it:
  bash  echo 'eval "$(fleet-deploy completion bash)"' >> ~/.bashrc
  zsh   echo 'eval "$(fleet-deploy completion zsh)"' >> ~/.zshrc   (after compinit)
  fish  fleet-deploy completion fish > ~/.config/fish/completions/fleet-deploy.fish
(With npx: the same, as "npx fleet-deploy completion …"; the script completes both "fleet-deploy …" and
"npx fleet-deploy …".)`,
    options: {},
    verbs: SHELLS,
    run: async (_values, io, [shell]) => {
      io.stdout(completionScript(shell as Shell, completable()));
      return EXIT.ok;
    },
  },
};

const SHOWN_PER_WAVE = 25;

export function renderPlan(plan: Plan, analysis?: Analysis): string {
  const out: string[] = [
    `Plan: ${plural(plan.total, 'target')} in ${plural(plan.plan.length, 'wave')} (select: ${plan.select || 'all'}; waves: ${plan.waves})`,
  ];
  let done = 0;
  for (const w of plan.plan) {
    done += w.targets.length;
    out.push(
      '',
      `Wave ${w.index} · ${plural(w.targets.length, 'target')} · ${plural(w.jobs.length, 'job')} · ` +
        `${Math.round((done / plan.total) * 1000) / 10}% done after it`,
    );
    if (w.index > 1) {
      const servers = new Set(w.targets.filter((t) => strategyFor(t).fetch).map((t) => t.server.name)).size;
      if (servers)
        out.push(
          `  its images pre-pulled on its ${plural(servers, 'server')} while wave ${w.index - 1} runs and gates ` +
            `(deploy --pre-pull-waves all: from wave 1 on; --pre-pull false: not)`,
        );
    }
    const rows = w.targets.slice(0, SHOWN_PER_WAVE).map((t) => [t.id, t.server.region, t.tenant.ring]);
    out.push(table(['TARGET', 'REGION', 'RING'], rows, '  '));
    if (w.targets.length > SHOWN_PER_WAVE)
      out.push(
        `  … and ${plural(w.targets.length - SHOWN_PER_WAVE, 'more target')} (--format json lists all)`,
      );
    out.push(...describeWaveAnalysis(analysis, plan, w, '{version}').map((l) => `  ${l}`));
  }
  return `${out.join('\n')}\n`;
}

/** Help fitted to the terminal's width, 80 columns when not a terminal. */
const helpText = (io: CliIO, text: string) =>
  wrapText(renamer(io.self)?.(text) ?? text, io.columns?.() ?? 80);

function usage(self = 'fleet-deploy'): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  return `fleet-deploy ${VERSION} — deploy tenant stacks to a fleet of servers over SSH

Usage: ${self} <command> [options]

Commands:
${names.map((n) => `  ${n.padEnd(width)}  ${COMMANDS[n]!.summary}`).join('\n')}

Run "${self} help <command>" for a command's options.
Exit codes: 0 success, 1 failure, 2 configuration error.`;
}

/** The command table as shells complete it (completion.ts). */
function completable(): Completable[] {
  return Object.entries(COMMANDS).map(([name, c]) => ({
    name,
    summary: c.summary,
    flags: [...Object.keys(c.options), 'help'],
    verbs: c.verbs ?? [],
  }));
}

/** A mistake in how the command was typed: one line, the nearest right word, exit 2. */
function usageError(io: CliIO, where: string, message: string, near?: string, helpFor?: string): number {
  const self = io.self ?? 'fleet-deploy';
  io.stderr(
    `${where}: ${message}${near ? `; did you mean ${near}?` : ''} (${self} help${helpFor ? ` ${helpFor}` : ''})\n`,
  );
  return EXIT.configuration;
}

/** parseArgs' errors, as one line naming the nearest flag. */
function parseError(io: CliIO, name: string, command: Command, e: Error): number {
  const where = `fleet-deploy ${name}`;
  const code = (e as NodeJS.ErrnoException).code;
  const flags = [...Object.keys(command.options), 'help'];
  const unknown = /Unknown option '(-{1,2})([^'=]+)/.exec(e.message);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
    const near = closest(unknown[2]!, flags);
    return usageError(io, where, `unknown option ${unknown[1]}${unknown[2]}`, near && `--${near}`, name);
  }
  const positional = /Unexpected argument '([^']*)'/.exec(e.message);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' && positional) {
    const near = closest(positional[1]!, flags);
    return usageError(
      io,
      where,
      `unexpected argument ${JSON.stringify(positional[1])}`,
      near && `--${near}`,
      name,
    );
  }
  const missing = /Option '(?:-\w, )?(--[\w-]+)/.exec(e.message);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && missing)
    return usageError(io, where, `${missing[1]} needs a value`, undefined, name);
  return usageError(io, where, e.message.split('\n')[0]!, undefined, name);
}

/** A command's first word when it takes verbs (`sandbox up`): one of them, else a one-line error. */
function checkVerb(io: CliIO, name: string, command: Command, positionals: string[]): number | undefined {
  const verbs = command.verbs;
  if (!verbs) return undefined;
  const verb = positionals[0];
  if (verb !== undefined && (verbs.includes(verb) || command.hiddenVerbs?.includes(verb))) return undefined;
  const list = `${verbs.slice(0, -1).join(', ')} or ${verbs.at(-1)}`;
  if (verb === undefined)
    return usageError(io, `fleet-deploy ${name}`, `say which: ${list}`, undefined, name);
  const near = closest(verb, verbs);
  return usageError(
    io,
    `fleet-deploy ${name}`,
    `${JSON.stringify(verb)} is not ${list}`,
    near && JSON.stringify(near),
    name,
  );
}

/** The message of an unexpected failure; its stack only when asked (FLEET_DEBUG=1). */
function failure(io: CliIO, name: string, e: unknown): number {
  const debug = Boolean(io.env.FLEET_DEBUG);
  const text =
    e instanceof Error
      ? debug
        ? (e.stack ?? e.message)
        : `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}`
      : String(e);
  io.stderr(`fleet-deploy ${name} failed: ${sanitize(text)}\n`);
  return EXIT.failure;
}

/**
 * The tool named as the person started it in everything it prints: "fleet-deploy unlock …" in a lock's
 * message (written by the engine, which knows no invocation) and in help texts reads "npx fleet-deploy
 * unlock …" under npx, so every hint runs as printed.
 */
export function asStarted(io: CliIO): CliIO {
  const name = renamer(io.self);
  if (!name) return io;
  return { ...io, stdout: (t) => io.stdout(name(t)), stderr: (t) => io.stderr(name(t)) };
}

/** "fleet-deploy COMMAND" → "SELF COMMAND"; none when the tool runs as fleet-deploy. */
function renamer(self = 'fleet-deploy'): ((text: string) => string) | undefined {
  if (self === 'fleet-deploy') return undefined;
  const words = [...Object.keys(COMMANDS), 'help'].join('|');
  const command = new RegExp(`(?<![\\w./-])(?<!npx )fleet-deploy (?=(?:${words})\\b)`, 'g');
  return (text) => text.replace(command, `${self} `);
}

export async function runCli(argv: readonly string[], given: CliIO = processIO()): Promise<number> {
  const io = asStarted(given);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    io.stdout(`${helpText(io, usage(io.self))}\n`);
    return name === undefined ? EXIT.configuration : EXIT.ok;
  }
  if (name === '--version' || name === '-V' || name === '-v') {
    io.stdout(`${VERSION}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    const near = closest(name, Object.keys(COMMANDS));
    return usageError(
      io,
      'fleet-deploy',
      `unknown command ${JSON.stringify(name)}`,
      near && JSON.stringify(near),
    );
  }
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: Boolean(command.positionals || command.verbs),
      strict: true,
    });
    values = parsed.values as typeof values;
    positionals = parsed.positionals;
  } catch (e) {
    return parseError(io, name, command, e as Error);
  }
  if (values.help) {
    io.stdout(`${helpText(io, command.usage)}\n`);
    return EXIT.ok;
  }
  const badVerb = checkVerb(io, name, command, positionals);
  if (badVerb !== undefined) return badVerb;
  try {
    return await command.run(values, io, positionals);
  } catch (e) {
    if (isConfigurationError(e)) {
      // a problem can quote server text (a lock's owner, a history value): printed safe
      io.stderr(`${e.problems.map((p) => `error: ${sanitize(formatProblem(p))}`).join('\n')}\n`);
      if (e.problems.length > 1) io.stderr(`${e.problems.length} problems\n`);
      return EXIT.configuration;
    }
    return failure(io, name, e);
  }
}
