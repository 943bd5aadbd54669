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
import { ConfigurationError } from '../errors';
import { fetchUrl } from '../http/fetch';
import { planDeployment } from '../plan/plan';
import { jsonText } from '../report/sanitize';
import { driftList, renderStatusSummary } from '../report/status-summary';
import { statusRows, STATUS_HEADERS } from '../report/status-table';
import { checkTrust } from '../ssh/known-hosts';
import { SshConnector } from '../ssh/transport';
import { checkBoolean } from '../values';
import { positiveInt, text } from './inputs';
import { actionRegistry } from './single';

/** A target that needs a look: drifted, unreachable, not running, or a lock left in place. */
const attention = (s: TargetStatus) =>
  hasDrift(s) || Boolean(s.error) || s.state !== 'running' || Boolean(s.lock) || s.probe?.ok === false;

function sshKey(): string {
  const key = core.getInput('ssh-key');
  if (!key.trim())
    throw new ConfigurationError([
      { path: [], source: 'input "ssh-key"', message: 'is required: status reads every server over SSH' },
    ]);
  core.setSecret(key);
  return key;
}

export async function runStatusAction(): Promise<void> {
  const failOnDrift = checkBoolean(text('fail-on-drift', 'false'), 'input "fail-on-drift"');
  const concurrency = positiveInt('concurrency', 8);
  const privateKey = sshKey();
  const registry = await actionRegistry();
  const plan = planDeployment(registry, {
    select: core.getInput('select').trim() || undefined,
    waves: core.getInput('waves').trim() || undefined,
  });
  const knownHosts = core.getInput('known-hosts');
  checkTrust(registry, plan, knownHosts);
  const statuses = await fleetStatus({
    ...plannedTargets(plan),
    connector: new SshConnector({ privateKey, knownHosts }),
    concurrency,
    getUrl: fetchUrl,
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
