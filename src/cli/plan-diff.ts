/**
 * `fleet-deploy plan --diff` (issue 25): after the plan, what a release would change in each tenant's
 * shipped files — read from the servers read-only, one SSH connection per server — as unified diffs,
 * identical ones grouped across targets, values of secret variables never shown.
 */
import { renderChanges } from '../files/changes';
import { repositoryRoot, shipFiles } from '../files/local';
import { fleetFileChanges } from '../fleet/read-files';
import type { Plan } from '../plan/plan';
import type { Registry } from '../registry/model';
import { setting, type SettingSource } from '../settings';
import { SshConnector } from '../ssh/transport';
import { EXIT } from './args';
import { sshSettings } from './deploy';
import type { CliIO } from './io';

export async function planDiff(
  plan: Plan,
  registry: Registry,
  flags: SettingSource,
  io: CliIO,
): Promise<number> {
  const targets = plan.plan.flatMap((w) => w.targets);
  // the files and every declared variable checked before anything connects
  const files = shipFiles(targets, { root: repositoryRoot(io.env), env: io.env });
  if (!files.releases.size) {
    io.stdout('\nFiles: none of these targets ships files (registry "files")\n');
    return EXIT.ok;
  }
  const ssh = await sshSettings(
    { key: setting(flags, 'key'), knownHosts: setting(flags, 'knownHosts') },
    io,
    registry,
    plan,
  );
  const { groups, summary } = await fleetFileChanges({
    targets,
    releases: files.releases,
    secrets: files.secrets,
    connector: new SshConnector(ssh),
    concurrency: setting(flags, 'serverConcurrency')!,
  });
  io.stdout(`\n${renderChanges(groups, summary)}`);
  return summary.unread.length ? EXIT.failure : EXIT.ok;
}
