/**
 * --dry-run: the exact remote commands a deploy would run on each target, in order, on the path where
 * every step succeeds (a rollback would add a switch back to the previous release). Connects to
 * nothing. It walks the same step list as the deploy itself (DEPLOY_STEPS), so the two cannot drift.
 */
import type { Target } from '../registry/model';
import { runUserCommand } from '../remote/hooks';
import { finish } from '../remote/lock';
import { prepare } from '../remote/prepare';
import { backup } from '../remote/backup';
import type { Script } from '../remote/shell';
import { hookEnv, HOOK_NAMES } from './hooks';
import { leaseTerms } from './lease';
import type { ReleaseStrategy } from './strategy';
import { strategyFor } from './strategies';
import { DEPLOY_STEPS, type DeployOptions, type DeployStep } from './target';

export interface PlannedCommand {
  step: string;
  command: string;
}

/** Each step's commands on the happy path, named as the deploy's report names them. */
class Preview implements Record<DeployStep, () => PlannedCommand[]> {
  private readonly strategy: ReleaseStrategy;
  private readonly next;

  private readonly version: string;

  constructor(
    private readonly target: Target,
    private readonly options: DryRunOptions,
  ) {
    this.strategy = strategyFor(target);
    this.next = this.strategy.release({ version: options.version, versions: options.versions ?? {} });
    this.version = this.next.version ?? options.version;
  }

  private get tenant() {
    return this.target.tenant;
  }

  private cmd(step: string, script: Script | undefined): PlannedCommand[] {
    return script ? [{ step, command: script.text }] : [];
  }

  private hooks(kind: 'preDeploy' | 'postDeploy'): PlannedCommand[] {
    const env = hookEnv(this.target, this.version, '<previous>');
    return this.tenant.hooks[kind].flatMap((h) =>
      this.cmd(HOOK_NAMES[kind], runUserCommand(this.tenant, h.run, env)),
    );
  }

  prepare() {
    const owner = JSON.stringify({ token: '<token>', run: '<run>', actor: '<actor>', version: this.version });
    return this.cmd(
      'prepare',
      prepare(
        this.tenant,
        { owner, leaseS: leaseTerms(this.options.recoveryWindowMs ?? 60_000).leaseS },
        this.strategy.prepareReads(),
      ),
    );
  }
  pull() {
    const registry = this.options.registry && { ...this.options.registry, password: '' };
    return this.cmd('pull', this.strategy.preview(this.next, registry).fetch).map((c) =>
      registry ? { ...c, command: `${c.command}  # stdin: ${PASSWORD_SHOWN}` } : c,
    );
  }
  compare() {
    return [];
  }
  backup() {
    return this.cmd('backup', this.tenant.backup && backup(this.tenant, '<time>'));
  }
  preDeploy() {
    return this.hooks('preDeploy');
  }
  switch() {
    return this.cmd(this.strategy.switchStep, this.strategy.preview(this.next).switch);
  }
  health() {
    const h = this.tenant.health;
    const url =
      h.url ??
      `http://127.0.0.1:${this.strategy.gatePort?.() ?? h.port}${h.path} (through the SSH connection)`;
    const probe = {
      step: 'health',
      command: `# GET ${url} every ${h.intervalMs} ms until ${h.successes} healthy answers in a row, at most ${h.deadlineMs} ms`,
    };
    return [probe, ...this.cmd('health', h.containerHealth ? this.strategy.containerHealth?.() : undefined)];
  }
  promote() {
    return (this.strategy.preview(this.next).promote ?? []).flatMap((s) => this.cmd('promote', s));
  }
  postDeploy() {
    return this.hooks('postDeploy');
  }
  retire() {
    return (this.strategy.preview(this.next).retire ?? []).flatMap((s) => this.cmd('retire', s));
  }
  hibernate() {
    if (this.tenant.hibernated === 'wake' || !this.strategy.hibernate) return [];
    const pause = this.strategy.hibernate('paused').text;
    return [{ step: 'hibernate', command: `# only if it was paused (stopped: "stop") before: ${pause}` }];
  }
  finish() {
    const remove = ['<images beyond the last releases>'];
    return this.cmd('finish', finish(this.tenant, { token: '<token>', history: '<entry>', remove }));
  }
}

/** What a dry run shows of the release and the registry login (never the password itself). */
export type DryRunOptions = Pick<DeployOptions, 'version' | 'versions' | 'registry'> &
  Partial<Pick<DeployOptions, 'recoveryWindowMs'>>;

/** Stands in the dry run for the registry password, which only ever goes on the pull's stdin. */
export const PASSWORD_SHOWN = '<password on stdin>';

export function dryRunCommands(target: Target, options: DryRunOptions): PlannedCommand[] {
  const preview = new Preview(target, options);
  return [...DEPLOY_STEPS.flatMap((s) => preview[s]()), ...preview.finish()];
}
