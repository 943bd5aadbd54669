/**
 * The user's own commands (registry `commands`): a release is a version; `current` prints the running
 * one, `deploy` switches to FLEET_VERSION, `rollback` (or `deploy` again) switches back. Nothing is
 * pulled or pruned by the tool: the commands own the images.
 */
import type { Commands, Target } from '../../registry/model';
import { runUserCommand } from '../../remote/hooks';
import type { PrepareReads, Prepared } from '../../remote/prepare';
import { sh, type Script } from '../../remote/shell';
import { currentInspection, type TenantInspection } from '../../remote/status';
import { hookEnv } from '../hooks';
import type { Release } from '../result';
import { StepFailure } from '../shell';
import type { ReleaseSpec, ReleaseStrategy, StrategyContext, StrategyStatus } from '../strategy';

export class CommandsStrategy implements ReleaseStrategy {
  readonly switchStep = 'deploy';

  constructor(
    private readonly target: Target,
    private readonly commands: Commands,
  ) {}

  /** No preflight checks (the commands own the stack); the version `current` prints. */
  prepareReads(): PrepareReads {
    return { checks: [], state: [sh`echo '@@current'; sh -c ${this.commands.current} || exit 1`] };
  }

  inspect(): Script {
    return currentInspection(this.commands.current);
  }

  /** What `current` printed; the tool sees no containers, so the target counts as running. */
  status(i: TenantInspection): StrategyStatus {
    return { ...(i.current ? { version: i.current } : {}), containers: i.containers, state: 'running' };
  }

  current(p: Prepared): Release {
    return p.current
      ? { refs: { version: p.current }, version: p.current, imageIds: [], digests: [] }
      : { refs: {}, imageIds: [], digests: [] };
  }

  /** The version of the tenant's first image when `versions` names it (what `current` reports), else `version`. */
  release({ version, versions }: ReleaseSpec): Release {
    const v = versions[this.target.tenant.images[0]?.variable ?? ''] ?? version;
    return { refs: { version: v }, version: v, imageIds: [], digests: [] };
  }

  unchanged(current: Release, next: Release): boolean {
    return current.version === next.version;
  }

  private run(command: string, to: string, from: string) {
    return runUserCommand(this.target.tenant, command, hookEnv(this.target, to, from));
  }

  async switchTo(ctx: StrategyContext, next: Release, current: Release, switched: () => void): Promise<void> {
    switched(); // the user's command may change anything: a failure from here on rolls back
    await ctx.shell.must(
      'deploy',
      this.run(this.commands.deploy, next.version!, current.version ?? ''),
      ctx.pullTimeoutMs,
    );
  }

  async switchBack(ctx: StrategyContext, previous: Release, failed: Release): Promise<void> {
    if (!previous.version) throw new StepFailure('rollback', 'no previous version to roll back to');
    const command = this.commands.rollback ?? this.commands.deploy;
    await ctx.shell.must(
      'rollback',
      this.run(command, previous.version, failed.version ?? ''),
      ctx.pullTimeoutMs,
    );
  }

  prunable(): string[] {
    return [];
  }

  preview(next: Release) {
    return { switch: this.run(this.commands.deploy, next.version!, '<previous>') };
  }
}
