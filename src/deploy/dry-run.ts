/**
 * --dry-run: the exact remote commands a deploy would run on each target, in order, on the path where
 * every step succeeds (a rollback would add an `update` to the previous release). Connects to nothing.
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
  add('prepare', R.prepare(t, owner));
  if (!t.commands) add('pull', R.pullImages(t, Object.values(refs)));
  if (t.backup) add('backup', R.backup(t, '<time>'));
  for (const h of t.hooks.preDeploy) add('pre-deploy hook', R.runUserCommand(t, h.run, env));
  if (t.commands) add('deploy', R.runUserCommand(t, t.commands.deploy, env));
  else add('update', R.update(t, refs));
  const h = t.health;
  out.push({
    step: 'health',
    command: `# GET ${h.url ?? `http://127.0.0.1:${h.port}${h.path} (through the SSH connection)`} every ${h.intervalMs} ms until ${h.successes} healthy answers in a row, at most ${h.deadlineMs} ms`,
  });
  if (h.containerHealth) add('health', R.containerHealth(t));
  for (const k of t.hooks.postDeploy) add('post-deploy hook', R.runUserCommand(t, k.run, env));
  add(
    'finish',
    R.finish(t, { token: '<token>', history: '<entry>', remove: ['<images beyond the last releases>'] }),
  );
  return out;
}
