/**
 * Crash loops, judged while the health gate runs (pure). A release whose container keeps exiting is
 * failed at once, not at the gate's deadline: a container restarted twice or more since the switch, or
 * a new container that exited with an error and has no restart policy to bring it back. A container
 * that restarts once and then answers is left to the gate, as before.
 *
 * Restarts are counted from the switch: a container the deploy found running (`before`) counts from
 * the first time the gate saw it; a new one (made by the switch) from zero.
 */
import type { ContainerRun } from '../remote/containers';

/** Restarts since the switch that make a crash loop (one is a hiccup the gate may still pass). */
export const CRASH_RESTARTS = 2;

const EXITED = new Set(['exited', 'stopped', 'dead']);
const NO_RESTART = new Set(['', 'no']);

export interface Crash {
  id: string;
  /** Restarts since the switch (0 for a container that exited and stays down). */
  restarts: number;
  /** Its last exit code; undefined when it runs again and no look saw it exited (podman resets it). */
  exitCode?: number;
}

export class CrashJudge {
  private readonly baseline = new Map<string, number>();
  /** The last exit code other than 0 each container showed. */
  private readonly exits = new Map<string, number>();

  /** `before`: the IDs of the containers that ran before the switch. */
  constructor(private readonly before: ReadonlySet<string>) {}

  /** The first container of `runs` that crash-loops or died, else undefined. */
  judge(runs: readonly ContainerRun[]): Crash | undefined {
    for (const r of runs) {
      const old = this.before.has(r.id);
      if (!this.baseline.has(r.id)) this.baseline.set(r.id, old ? r.restarts : 0);
      const restarts = r.restarts - this.baseline.get(r.id)!;
      if (r.exitCode !== 0) this.exits.set(r.id, r.exitCode);
      const exitCode = EXITED.has(r.status) ? r.exitCode : this.exits.get(r.id);
      if (restarts >= CRASH_RESTARTS)
        return { id: r.id, restarts, ...(exitCode === undefined ? {} : { exitCode }) };
      if (!old && EXITED.has(r.status) && r.exitCode !== 0 && NO_RESTART.has(r.policy))
        return { id: r.id, restarts, exitCode: r.exitCode };
    }
    return undefined;
  }
}

/** "container 0123456789ab restarted 4 times in 6.0 s; last exit code 3; last log lines: …". */
export function describeCrash(c: Crash, seconds: number, logLines: readonly string[]): string {
  const what =
    c.restarts > 0
      ? `restarted ${c.restarts} times in ${seconds.toFixed(1)} s`
      : `exited after ${seconds.toFixed(1)} s and is not restarted (no restart policy)`;
  const logs = logLines.length ? `; last log lines: ${logLines.join(' | ')}` : '';
  const code =
    c.exitCode === undefined
      ? 'last exit code not known (it was running again)'
      : `last exit code ${c.exitCode}`;
  return `container ${c.id.slice(0, 12)} ${what}; ${code}${logs}`;
}
