/**
 * --dry-run: the exact remote commands a deploy would run on each target, in order, on the path where
 * every step succeeds (a rollback would add the `switch` and `up` of the previous release). Connects to
 * nothing.
 */
import type { Target } from '../registry/model';
import * as R from '../remote/commands';

export function dryRunCommands(target: Target, version: string): Array<{ step: string; command: string }> {
  const t = target.tenant;
  const owner = JSON.stringify({ token: '<token>', run: '<run>', actor: '<actor>', version });
  const env = { FLEET_VERSION: version, FLEET_PREVIOUS_VERSION: '<previous>', FLEET_TARGET: target.id };
  const refs = Object.fromEntries(t.images.map((i) => [i.variable, R.imageRef(i, version)]));
  const out: Array<{ step: string; command: string }> = [];
  const add = (step: string, script: { text: string }) => out.push({ step, command: script.text });
  add('preflight', R.preflight(t));
  add('lock', R.acquireLock(t, owner));
  add('current', R.readCurrent(t));
  if (!t.commands) {
    for (const ref of Object.values(refs)) {
      add('pull', R.pullImage(t, ref));
      add('pull', R.inspectImage(t, ref));
    }
  }
  if (t.backup) add('backup', R.backup(t, '<time>'));
  for (const h of t.hooks.preDeploy) add('pre-deploy hook', R.runUserCommand(t, h.run, env));
  if (t.commands) add('deploy', R.runUserCommand(t, t.commands.deploy, env));
  else {
    add('switch', R.switchEnv(t, refs));
    add('up', R.composeUp(t));
  }
  const h = t.health;
  out.push({
    step: 'health',
    command: `# GET ${h.url ?? `http://127.0.0.1:${h.port}${h.path} (through the SSH connection)`} every ${h.intervalMs} ms until ${h.successes} healthy answers in a row, at most ${h.deadlineMs} ms`,
  });
  if (h.containerHealth) add('health', R.containerHealth(t));
  for (const k of t.hooks.postDeploy) add('post-deploy hook', R.runUserCommand(t, k.run, env));
  add('history', R.appendHistory(t, '<entry>'));
  if (!t.commands) {
    add('prune', R.readHistory(t));
    add('prune', R.listImages(t));
  }
  add('unlock', R.releaseLock(t, '<token>'));
  return out;
}
