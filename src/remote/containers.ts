/**
 * A tenant's containers through the engine, by the Compose project's label (no Compose process): their
 * IDs, their states in the words status and the deploy use, hibernation, and their HEALTHCHECK states.
 *
 * What the health gate reads of a tenant's containers through the engine (no Compose process): each
 * container's state, restart count, last exit code and restart policy, in one round trip; and the last
 * log lines of one container. What the server sends back is parsed and checked here; the judging is
 * src/health/crash.ts.
 */
import type { Tenant } from '../registry/model';
import { engineOf, projectOf } from './compose';
import { named, Script, sh } from './shell';
import { enter, touchLock } from './tenant-dir';

/** IDs of the project's running containers (`-a`: all of them), by label through the engine (no Compose process). */
export function containersOf(t: Tenant, project: string | Script, all = false): Script {
  const label =
    project instanceof Script
      ? sh`"label=com.docker.compose.project=${project}"`
      : sh`${`label=com.docker.compose.project=${project}`}`;
  return sh`${engineOf(t.compose.command)} ps ${all ? '-aq' : '-q'} --filter ${label}`;
}

/** A container's state in the five words status and the deploy use. */
export const CONTAINER_STATES = ['running', 'paused', 'stopped', 'restarting', 'missing'] as const;
export type ContainerState = (typeof CONTAINER_STATES)[number];

/** The engine's state (`.State.Status`) in those words. */
export function containerState(engineState: string): ContainerState {
  if (engineState === 'running' || engineState === 'paused' || engineState === 'restarting')
    return engineState;
  return 'stopped'; // created, exited, dead, removing, configured, stopping
}

/** How a tenant sleeps: every container paused, or none running and some stopped. */
export type Hibernation = 'paused' | 'stopped';

export function hibernationOf(containers: readonly { state: ContainerState }[]): Hibernation | undefined {
  if (!containers.length || containers.some((c) => c.state === 'running' || c.state === 'restarting'))
    return undefined;
  return containers.every((c) => c.state === 'paused') ? 'paused' : 'stopped';
}

/** Enters the tenant directory, keeps the lock fresh and sets `$ids` to the project's containers (`all`: stopped ones too). */
const idsOf = (t: Tenant, project: string, all = false) =>
  sh`${enter(t)} && ${touchLock} && ids=$(${containersOf(t, project, all)})`;

/** Puts a hibernated tenant back to sleep after a deploy: its project's running containers paused or stopped. */
export function hibernate(t: Tenant, project: string, how: Hibernation): Script {
  const sleep = sh`${engineOf(t.compose.command)} ${how === 'paused' ? 'pause' : 'stop'} $ids >/dev/null`;
  return named('hibernate', sh`${idsOf(t, project)} && { [ -z "$ids" ] || ${sleep}; }`);
}

/** Removes every container of the project, with force, until none is left (five tries a second apart). */
export function removeContainers(t: Tenant, project: string): Script {
  const all = containersOf(t, project, true);
  const remove = sh`${engineOf(t.compose.command)} rm -f $ids >/dev/null 2>&1 || sleep 1`;
  const removeOnce = sh`ids=$(${all}) || exit 1; [ -n "$ids" ] || break; ${remove}`;
  return sh`for try in 1 2 3 4 5; do ${removeOnce}; done; [ -z "$(${all})" ]`;
}

const HEALTH_FORMAT = '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}';

/** The containers' own HEALTHCHECK states: healthy, unhealthy, starting, or none. */
export function containerHealth(t: Tenant, project: string = projectOf(t)): Script {
  const inspect = sh`${engineOf(t.compose.command)} inspect --format ${HEALTH_FORMAT} $ids`;
  return named('containerHealth', sh`${idsOf(t, project)} && [ -n "$ids" ] && ${inspect}`);
}

export interface ContainerRun {
  id: string;
  /** The engine's `.State.Status` (running, restarting, exited, stopped, …). */
  status: string;
  restarts: number;
  exitCode: number;
  /** The restart policy's name (`no`, `always`, `unless-stopped`, `on-failure`; empty for none). */
  policy: string;
}

const FORMAT =
  '{{.Id}} {{.State.Status}} {{.RestartCount}} {{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}';

/** Every container of the project (stopped ones too) as one `ID STATUS RESTARTS EXIT POLICY` line each. */
export function containerRuns(t: Tenant, project: string): Script {
  const inspect = sh`${engineOf(t.compose.command)} inspect --format ${FORMAT} $ids`;
  return named('containerRuns', sh`${idsOf(t, project, true)} && { [ -z "$ids" ] || ${inspect}; }`);
}

const LINE = /^([a-f0-9]{12,64}) ([a-z]{1,20}) (\d{1,9}) (-?\d{1,5}) ?([a-z-]{0,20})$/;

/** The lines of `containerRuns`; a line that is not one (server text) is left out. */
export function parseContainerRuns(stdout: string): ContainerRun[] {
  const out: ContainerRun[] = [];
  for (const line of stdout.split('\n')) {
    const m = LINE.exec(line.trim());
    if (m)
      out.push({ id: m[1]!, status: m[2]!, restarts: Number(m[3]), exitCode: Number(m[4]), policy: m[5]! });
  }
  return out;
}

/** The last `lines` lines a container wrote (stdout and stderr), at most 2,000 bytes. */
export function containerLogTail(t: Tenant, id: string, lines = 5): Script {
  if (!/^[a-f0-9]{12,64}$/.test(id)) throw new Error(`not a container ID: ${JSON.stringify(id)}`);
  const logs = sh`${engineOf(t.compose.command)} logs --tail ${lines} ${id} 2>&1`;
  return named('containerLogs', sh`${enter(t)} && { ${logs}; echo "@@logs-exit $?"; } | tail -c 2000`);
}

/**
 * The container's last log lines from `containerLogTail`'s output (both of its streams), or undefined when
 * the engine did not give them: what it printed then is its own error (podman, reading a container that
 * is restarting: "read /proc/…/cgroup: no such process"), not the container's.
 */
export function parseLogTail(stdout: string): string[] | undefined {
  const m = /(?:^|\n)@@logs-exit (\d+)\n?$/.exec(stdout);
  if (!m || m[1] !== '0') return undefined;
  return stdout.slice(0, m.index).split('\n');
}
