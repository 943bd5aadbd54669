/**
 * The status action (actions/status): `fleet-deploy status` in a workflow. Writes the status table into
 * the job summary, sets outputs (drifted, unreachable, statuses as JSON, drift-list as Markdown) and, with
 * `fail-on-drift`, fails
 * the step when a target drifted. The work is the CLI's (`fleetStatus`), given the inputs as its flags.
 */
import { readFile } from 'node:fs/promises';
import { core } from './log';
import { fleetStatus, statusRows, STATUS_HEADERS } from '../cli/status';
import { hasDrift, type TargetStatus } from '../deploy/status';
import { jsonText } from '../report/sanitize';
import { driftList, renderStatusSummary } from '../report/status-summary';
import { setting } from '../settings';
import { actionInputs, sshKey } from './inputs';

/** A target that needs a look: drifted, unreachable, not running, or a lock left in place. */
const attention = (s: TargetStatus) =>
  hasDrift(s) || Boolean(s.error) || s.state !== 'running' || Boolean(s.lock) || s.probe?.ok === false;

export async function runStatusAction(): Promise<void> {
  const failOnDrift = setting(actionInputs, 'failOnDrift')!;
  const select = setting(actionInputs, 'select');
  const settings = {
    registry: setting(actionInputs, 'registry')!,
    ...(select !== undefined ? { select } : {}),
    waves: setting(actionInputs, 'waves')!,
    concurrency: setting(actionInputs, 'serverConcurrency')!,
  };
  const io = {
    stdout: (t: string) => core.info(t.trimEnd()),
    stderr: (t: string) => core.info(t.trimEnd()),
    readText: (p: string) => readFile(p, 'utf8'),
    env: {
      FLEET_SSH_KEY: sshKey('status reads every server over SSH'),
      FLEET_KNOWN_HOSTS: setting(actionInputs, 'knownHostsText') ?? '',
    },
  };
  const statuses = await fleetStatus(settings, io);
  const rows = statusRows(statuses);
  const drifted = statuses.filter(hasDrift).length;
  const unreachable = statuses.filter((s) => s.error).length;
  for (const [i, s] of statuses.entries())
    core.info(`${s.id}: ${rows[i]!.slice(1).filter(Boolean).join(' · ')}`);
  await core.summary
    .addRaw(
      renderStatusSummary({
        headers: STATUS_HEADERS,
        rows,
        attention: statuses.map(attention),
        drifted,
        unreachable,
      }),
      true,
    )
    .write();
  core.setOutput('drifted', String(drifted));
  core.setOutput('unreachable', String(unreachable));
  core.setOutput('statuses', jsonText(statuses));
  core.setOutput('drift-list', driftList(statuses.filter(hasDrift)));
  if (unreachable) core.setFailed(`${unreachable} of ${statuses.length} target(s) could not be read`);
  else if (failOnDrift && drifted)
    core.setFailed(
      `${drifted} of ${statuses.length} target(s) drifted: ${statuses
        .filter(hasDrift)
        .map((s) => `${s.id} (${s.drift.join('; ')})`)
        .join(', ')}`,
    );
}
