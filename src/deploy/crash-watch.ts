/**
 * The health gate's crash watch for one target: after a failed probe, one round trip reads the state and
 * restart count of the release's containers through the engine (src/remote/containers.ts), and a crash
 * loop (src/health/crash.ts) ends the gate at once with the container's last exit code and log lines.
 * A healthy release pays nothing: its probes pass and the watch never runs.
 */
import { CrashJudge, describeCrash } from '../health/crash';
import type { GateWatch } from '../health/gate';
import type { Tenant } from '../registry/model';
import { containerLogTail, parseContainerRuns, parseLogTail } from '../remote/containers';
import type { Script } from '../remote/shell';
import { sanitizeLine } from '../report/sanitize';
import type { Clock } from '../ports';
import type { TargetShell } from './shell';

/** What a strategy gives the watch: the script listing its containers, and the IDs that ran before the switch. */
export interface CrashWatchSpec {
  script: Script;
  before: readonly string[];
}

/** `since`: when the switch started (the restarts are counted from it). */
export function crashWatch(
  tenant: Tenant,
  spec: CrashWatchSpec,
  shell: TargetShell,
  clock: Clock,
  since: number,
): GateWatch {
  const judge = new CrashJudge(new Set(spec.before));
  return async () => {
    const r = await shell.exec(spec.script);
    if (r.code !== 0) return undefined; // the engine could not tell: the gate judges as before
    const crash = judge.judge(parseContainerRuns(r.stdout));
    if (!crash) return undefined;
    const seconds = (clock.now() - since) / 1000;
    const lines = (await lastLogLines(tenant, crash.id, shell, clock)) ?? [];
    return describeCrash(
      crash,
      seconds,
      lines
        .map((l) => sanitizeLine(l).trim())
        .filter(Boolean)
        .slice(-5),
    );
  };
}

/** The engine may fail to read a container that is restarting right then: asked up to 3 times, 250 ms apart. */
async function lastLogLines(
  tenant: Tenant,
  id: string,
  shell: TargetShell,
  clock: Clock,
): Promise<string[] | undefined> {
  for (let attempt = 1; ; attempt++) {
    const r = await shell.exec(containerLogTail(tenant, id)).catch(() => undefined);
    const lines = r?.code === 0 ? parseLogTail(r.stdout) : undefined;
    if (lines || attempt === 3) return lines;
    await clock.sleep(250);
  }
}
