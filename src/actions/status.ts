/**
 * The status action (actions/status): `fleet-deploy status` in a workflow. Writes the status table into
 * the job summary, sets outputs (drifted, unreachable, statuses as JSON, drift-list as Markdown) and, with
 * `fail-on-drift`, fails
 * the step when a target drifted. It reads and renders the status as `fleet-deploy status` does
 * (`fleetStatus`, `statusRows`).
 */
import { core } from './log';
import { fleetStatus, plannedTargets } from '../fleet/read-status';
import { hasDrift, type TargetStatus } from '../fleet/status';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { jsonText } from '../report/sanitize';
import { driftList, renderStatusSummary } from '../report/status-summary';
import { statusRows, STATUS_HEADERS } from '../report/status-table';
import { defaultStepLimits, setting } from '../settings';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { actionInputs, sshKey } from './inputs';
import { actionRegistry } from './single';

/** A target that needs a look: drifted, unreachable, not running, or a lock left in place. */
const attention = (s: TargetStatus) =>
  hasDrift(s) || Boolean(s.error) || s.state !== 'running' || Boolean(s.lock) || s.probe?.ok === false;

export async function runStatusAction(): Promise<void> {
  const failOnDrift = setting(actionInputs, 'failOnDrift')!;
  const concurrency = setting(actionInputs, 'serverConcurrency')!;
  const privateKey = sshKey('status reads every server over SSH');
  const registry = await actionRegistry();
  const plan = planDeployment(registry, {
    select: setting(actionInputs, 'select'),
    waves: setting(actionInputs, 'waves'),
  });
  const knownHosts = setting(actionInputs, 'knownHostsText') ?? '';
  checkTrust(registry, plan, knownHosts);
  const statuses = await fleetStatus({
    ...plannedTargets(plan),
    connector: new SshConnector({ privateKey, knownHosts }),
    concurrency,
    getUrl: fetchUrl,
    limits: defaultStepLimits(),
  });
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
