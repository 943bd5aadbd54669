/**
 * What the health gate reads of a tenant's containers through the engine (no Compose process): each
 * container's state, restart count, last exit code and restart policy, in one round trip; and the last
 * log lines of one container. What the server sends back is parsed and checked here; the judging is
 * src/health/crash.ts.
 */
import type { Tenant } from '../registry/model';
import { containersOf, engineOf, enter, touchLock } from './commands';
import { named, type Script, sh } from './shell';

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
  return named(
    'containerRuns',
    sh`${enter(t)} && ${touchLock} && ids=$(${containersOf(t, project, true)}) && { [ -z "$ids" ] || ${engineOf(t.compose.command)} inspect --format ${FORMAT} $ids; }`,
  );
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
  return named(
    'containerLogs',
    sh`${enter(t)} && ${engineOf(t.compose.command)} logs --tail ${lines} ${id} 2>&1 | tail -c 2000`,
  );
}
