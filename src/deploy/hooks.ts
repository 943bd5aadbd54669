/** The tenant's hooks (pre-deploy, post-deploy, on-rollback) and the environment they run with. */
import type { Hook, Hooks, Target } from '../registry/model';
import { runUserCommand } from '../remote/hooks';
import type { TargetShell } from './shell';

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
      shell.must(`${kind} hook`, runUserCommand(target.tenant, hook.run, env), hook.timeoutMs);
    if (hook.once) await once.run(hook, run);
    else await run();
  }
}
