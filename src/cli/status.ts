/**
 * `fleet-deploy status`: per target, what runs (version, image, digest), the release before it, the last
 * deploy, container state and health now, a lock left behind, and drift. The reading is `fleetStatus`
 * (src/fleet/read-status.ts), the rows `statusRows` (src/report/status-table.ts); this file is the command.
 */
import { fleetStatus } from '../fleet/read-status';
import { hasDrift } from '../fleet/status';
import { fetchUrl } from '../http/fetch';
import { jsonText } from '../report/sanitize';
import { statusRows, STATUS_HEADERS } from '../report/status-table';
import { plural, table } from '../report/table';
import { EXIT, FORMAT_FLAGS, outputFormat } from './args';
import type { CliIO } from './io';
import { defaultStepLimits, flagOptions, REMOTE_FLAGS } from '../settings';
import { openRemote, remoteFlags, remoteHelp, type Values } from './remote';

const STATUS_FLAGS = [...FORMAT_FLAGS, 'statusWaves', 'failOnDrift'] as const;

export const STATUS_USAGE = `fleet-deploy status [--select EXPR] [--waves SPEC] [--format table|json] [--json] [--fail-on-drift] [options]

For each selected target: the version, image and digest that run, the release before it and the last
deploy (from its history), the state of its containers (running, paused, stopped, restarting, missing),
health now (the containers' own checks and one probe of the registry's health check), a lock left in
place (its owner; live while its lease runs, "interrupted" once the lease ran out on the server's clock,
a lock without a lease judged by its age), and drift: it runs something other than its last recorded
release (.env or the running images), its Compose config-hash differs from the deployed one (when
recorded), or it runs another version than most of its wave. A blue-green target: its live slot (its
containers are the ones shown) and the release each slot holds. Reads only; takes no lock.

Options:
${remoteHelp(STATUS_FLAGS)}`;

export const STATUS_OPTIONS = flagOptions([...STATUS_FLAGS, ...REMOTE_FLAGS]);

export async function runStatus(values: Values, io: CliIO): Promise<number> {
  const format = outputFormat(values, ['table', 'json']);
  const remote = await openRemote(remoteFlags(values), io);
  const statuses = await fleetStatus({ ...remote, getUrl: fetchUrl, limits: defaultStepLimits() });
  const drifted = statuses.filter(hasDrift).length;
  if (format === 'json') io.stdout(`${jsonText(statuses, 2)}\n`);
  else {
    io.stdout(`${table(STATUS_HEADERS, statusRows(statuses))}\n`);
    io.stderr(
      `${plural(statuses.length, 'target')}: ${drifted} drifted, ${statuses.filter((s) => s.error).length} unreachable\n`,
    );
  }
  if (statuses.some((s) => s.error)) return 1;
  return values['fail-on-drift'] && drifted ? EXIT.drift : EXIT.ok;
}
