/** The tenant's hooks (pre-deploy, post-deploy, on-rollback) and the environment they run with. */
import type { Hook, Hooks, Target } from '../registry/model';
import { runUserCommand } from '../remote/hooks';
import type { TargetShell } from './shell';

/**
 * Each kind of hook in words, the one name used everywhere: a failure's message and a dry-run line name
 * one hook (`pre-deploy hook`), the step that runs a kind's hooks in order is the plural (`hookStep`).
 */
export const HOOK_NAMES: Record<keyof Hooks, string> = {
  preDeploy: 'pre-deploy hook',
  postDeploy: 'post-deploy hook',
  onRollback: 'on-rollback hook',
};

/** The step that runs a kind's hooks, as reports and progress name it: `pre-deploy hooks`. */
export const hookStep = (kind: keyof Hooks) => `${HOOK_NAMES[kind]}s`;

/** What a hook or a user's deploy command is told: FLEET_VERSION, FLEET_PREVIOUS_VERSION, FLEET_TARGET. */
export function hookEnv(target: Target, version: string, previous: string): Record<string, string> {
  return { FLEET_VERSION: version, FLEET_PREVIOUS_VERSION: previous, FLEET_TARGET: target.id };
}

/**
 * Hooks marked `once` run on the first target of a rollout only; the other targets wait for that run
 * and fail if it failed (a migration must finish before any new version starts).
 */
export class OnceHooks {
  private readonly runs = new Map<string, Promise<void>>();
  constructor(private readonly skip = false) {}
  async run(hook: Hook, fn: () => Promise<unknown>): Promise<void> {
    if (this.skip) return;
    let p = this.runs.get(hook.run);
    if (!p) {
      p = fn().then(() => undefined);
      this.runs.set(hook.run, p);
      return p;
    }
    await p.catch((e: Error) => {
      throw new Error(`the once-per-rollout hook failed on another target: ${e.message}`);
    });
  }
}

/** Runs a kind of hook in order; the first failure stops them. */
export async function runHooks(
  kind: keyof Hooks,
  target: Target,
  shell: TargetShell,
  once: OnceHooks,
  version: string,
  previous: string,
): Promise<void> {
  const env = hookEnv(target, version, previous);
  for (const hook of target.tenant.hooks[kind]) {
    const run = () =>
      shell.must(HOOK_NAMES[kind], runUserCommand(target.tenant, hook.run, env), hook.timeoutMs);
    if (hook.once) await once.run(hook, run);
    else await run();
  }
}
